//! Supervision of one agent process: start it, check its hello, hand its link to the
//! agent's slot, watch it (exit, heartbeats, a cut-off), record `AgentStarted` and
//! `AgentExited`, and start it again with exponential backoff.

use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawos_agents::remote::codec::FrameCodec;
use clawos_agents::remote::protocol::{
    Encoding, Hello, HelloAnswer, ToAgent, ENV_AGENT_NAME, ENV_AGENT_PROTOCOL, ENV_AGENT_TOKEN,
    PROTOCOL_VERSION,
};
use clawos_events::{stream, AgentExited, AgentStarted, ExpectedVersion, NewEvent};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio_util::codec::{FramedRead, FramedWrite};

use super::link::{Link, HEARTBEAT_INTERVAL};
use super::plan::AgentProcessSpec;
use super::AgentSlot;
use crate::gateway::Gateway;
use crate::supervisor::{
    status_parts, BACKOFF_CAP, BACKOFF_START, HEALTHY_AFTER, HEARTBEAT_DEADLINE,
};
use crate::tokens;

/// Longest an agent process may take to say its hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest it may take after the hello to answer its first ping (loading a local model).
pub const READY_DEADLINE: Duration = Duration::from_secs(300);
/// How long a process told to stop has before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

async fn record(gw: &Gateway, agent: &str, event: NewEvent) {
    if let Err(e) = gw
        .log()
        .append(
            &stream::agent_process(agent),
            ExpectedVersion::Any,
            vec![event],
        )
        .await
    {
        tracing::error!(%agent, error = %e, "cannot record an agent process event");
    }
}

async fn exited(
    gw: &Gateway,
    slot: &AgentSlot,
    agent: &str,
    status: Option<ExitStatus>,
    reason: String,
) {
    slot.vacate(&reason);
    let (code, signal) = status.as_ref().map(status_parts).unwrap_or((None, None));
    let event = AgentExited {
        agent: agent.to_string(),
        code,
        signal,
        reason,
    };
    record(gw, agent, NewEvent::new(event)).await;
}

/// Read the process's hello and answer it; the agreed encoding.
async fn hello<R, W>(
    spec: &AgentProcessSpec,
    token: &str,
    read: &mut FramedRead<R, FrameCodec>,
    write: &mut FramedWrite<W, FrameCodec>,
) -> Result<Encoding, String>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let frame = match tokio::time::timeout(HELLO_TIMEOUT, read.next()).await {
        Err(_) => return Err(format!("no hello within {HELLO_TIMEOUT:?}")),
        Ok(None) => return Err("it closed its stdout before its hello".into()),
        Ok(Some(Err(e))) => return Err(format!("its hello is not a frame: {e}")),
        Ok(Some(Ok(f))) => f,
    };
    let refusal = match read.decoder().parse::<Hello>(&frame) {
        Err(e) => format!("its first line is not a hello: {e}"),
        Ok(h) if h.protocol != PROTOCOL_VERSION => format!(
            "it speaks protocol {}; this Gateway speaks {PROTOCOL_VERSION}",
            h.protocol
        ),
        Ok(h) if h.agent != spec.name => format!(
            "it says it is `{}`; it was started as `{}`",
            h.agent, spec.name
        ),
        Ok(h) if !tokens::same(&h.token, token) => "its token is not the one it was given".into(),
        Ok(h) => {
            let welcome = HelloAnswer::Welcome {
                protocol: PROTOCOL_VERSION,
                encoding: h.encoding,
                secrets: spec.secrets.clone(),
                heartbeat_ms: HEARTBEAT_INTERVAL.as_millis() as u64,
            };
            write
                .send(&welcome)
                .await
                .map_err(|e| format!("cannot answer its hello: {e}"))?;
            read.decoder_mut().switch_to(h.encoding);
            write.encoder_mut().switch_to(h.encoding);
            return Ok(h.encoding);
        }
    };
    let _ = write
        .send(&HelloAnswer::Refused {
            reason: refusal.clone(),
        })
        .await;
    Err(format!("hello refused: {refusal}"))
}

fn describe(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => "exited".into(),
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "ended".into(),
    }
}

async fn kill(child: &mut Child) -> Option<ExitStatus> {
    let _ = child.start_kill();
    child.wait().await.ok()
}

/// Why a watched process ended, its status, and whether the Gateway is stopping.
async fn watch_process(
    child: &mut Child,
    link: &Link,
    slot: &AgentSlot,
    shutdown: &mut watch::Receiver<bool>,
) -> (String, Option<ExitStatus>, bool) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            status = child.wait() => {
                let reason = status.as_ref().map(describe).unwrap_or_else(|e| format!("lost: {e}"));
                return (reason, status.ok(), false);
            }
            closed = link.wait_closed() => {
                if closed.cut_off {
                    return (closed.reason, kill(child).await, false);
                }
                // Its pipe closed: it is on its way out.
                let status = match tokio::time::timeout(STOP_GRACE, child.wait()).await {
                    Ok(s) => s.ok(),
                    Err(_) => kill(child).await,
                };
                let reason = status.as_ref().map(describe).unwrap_or(closed.reason);
                return (reason, status, false);
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    // Turns lost now are not run again: there is no process to come.
                    slot.stop();
                    link.send(ToAgent::Shutdown);
                    let status = match tokio::time::timeout(STOP_GRACE, child.wait()).await {
                        Ok(s) => s.ok(),
                        Err(_) => kill(child).await,
                    };
                    return ("Gateway shutdown".into(), status, true);
                }
            }
            _ = tick.tick() => {
                let (silent, heard) = link.silence();
                let deadline = if heard { HEARTBEAT_DEADLINE } else { READY_DEADLINE };
                if silent > deadline {
                    let status = kill(child).await;
                    return (format!("no answer to pings for {deadline:?}; killed"), status, false);
                }
            }
        }
    }
}

/// Start the process once and watch it until it ends; true when the Gateway stops.
async fn run_once(
    gw: &Gateway,
    spec: &AgentProcessSpec,
    slot: &AgentSlot,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let token = tokens::random_token();
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .env(ENV_AGENT_NAME, &spec.name)
        .env(ENV_AGENT_TOKEN, &token)
        .env(ENV_AGENT_PROTOCOL, PROTOCOL_VERSION.to_string())
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    crate::supervisor::die_with_parent(&mut cmd, spec.memory_limit_mb.map(|mb| mb << 20));
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let why = format!("could not start {}: {e}", spec.program.display());
            exited(gw, slot, &spec.name, None, why).await;
            return false;
        }
    };
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let status = kill(&mut child).await;
        exited(gw, slot, &spec.name, status, "its pipes are missing".into()).await;
        return false;
    };
    let mut read = FramedRead::new(stdout, FrameCodec::default());
    let mut write = FramedWrite::new(stdin, FrameCodec::default());
    let said = tokio::select! {
        r = hello(spec, &token, &mut read, &mut write) => Some(r),
        _ = shutdown.wait_for(|s| *s) => None,
    };
    let encoding = match said {
        None => {
            slot.stop();
            let status = kill(&mut child).await;
            exited(gw, slot, &spec.name, status, "Gateway shutdown".into()).await;
            return true;
        }
        Some(Err(why)) => {
            tracing::error!(agent = %spec.name, %why, "agent process refused");
            let status = kill(&mut child).await;
            exited(gw, slot, &spec.name, status, why).await;
            return false;
        }
        Some(Ok(e)) => e,
    };
    let link = Link::start(read, write);
    let started = AgentStarted {
        agent: spec.name.clone(),
        pid: child.id().unwrap_or(0),
        protocol: PROTOCOL_VERSION,
        encoding: match encoding {
            Encoding::Json => "json".into(),
            Encoding::Bincode => "bincode".into(),
        },
    };
    record(gw, &spec.name, NewEvent::new(started)).await;
    slot.install(link.clone());
    let (reason, status, stopping) = watch_process(&mut child, &link, slot, shutdown).await;
    link.close(reason.clone());
    if !stopping {
        tracing::warn!(agent = %spec.name, %reason, "agent process ended");
    }
    exited(gw, slot, &spec.name, status, reason).await;
    stopping
}

/// Run the agent process of `spec` until the Gateway shuts down, restarting it with
/// exponential backoff; its links go into `slot`.
pub async fn supervise(gw: Arc<Gateway>, spec: AgentProcessSpec, slot: Arc<AgentSlot>) {
    let mut backoff = BACKOFF_START;
    let mut shutdown = gw.shutdown_signal();
    loop {
        if *shutdown.borrow() {
            slot.stop();
            return;
        }
        let started = Instant::now();
        if run_once(&gw, &spec, &slot, &mut shutdown).await {
            return;
        }
        if started.elapsed() >= HEALTHY_AFTER {
            backoff = BACKOFF_START;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait_for(|s| *s) => {
                slot.stop();
                return;
            }
        }
        backoff = (backoff * 2).min(BACKOFF_CAP);
    }
}
