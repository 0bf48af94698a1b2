//! The supervisor: runs each configured channel as its own OS process with a fresh token,
//! restarts it with exponential backoff when it exits or stops sending heartbeats, and
//! records every start and exit as an event.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawos_channels::protocol::{ENV_BUS_URL, ENV_CHANNEL_NAME, ENV_CHANNEL_TOKEN};
use clawos_events::{stream, ChannelExited, ChannelStarted, ExpectedVersion, NewEvent};
use tokio::process::{Child, Command};

use crate::gateway::Gateway;
use crate::tokens;

/// First restart delay.
pub const BACKOFF_START: Duration = Duration::from_millis(250);
/// Longest restart delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// A channel that ran this long is healthy again: its backoff resets.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// Silence after which a channel is considered hung and killed.
pub const HEARTBEAT_DEADLINE: Duration = Duration::from_secs(10);

/// How to run one channel.
#[derive(Debug, Clone)]
pub struct ChannelSpec {
    /// Instance name.
    pub name: String,
    /// Kind (`terminal`, `webhook`).
    pub kind: String,
    /// Extra environment (never secrets on the command line).
    pub env: Vec<(String, String)>,
    /// Give the process the Gateway's terminal (the terminal channel under `clawos up`).
    pub attach_stdio: bool,
}

/// A child must not outlive the Gateway, even one killed with SIGKILL: the kernel sends
/// it SIGTERM when its parent dies (Linux `PR_SET_PDEATHSIG`). With `memory_limit`, its
/// address space is capped at that many bytes (`RLIMIT_AS`): an allocation past it fails
/// in the child, never in the Gateway.
pub(crate) fn die_with_parent(cmd: &mut Command, memory_limit: Option<u64>) {
    // SAFETY: prctl and setrlimit are async-signal-safe and run in the child between fork
    // and exec, touching no memory of the parent but the copied `memory_limit`.
    unsafe {
        cmd.pre_exec(move || {
            #[cfg(target_os = "linux")]
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(bytes) = memory_limit {
                let limit = libc::rlimit {
                    rlim_cur: bytes as libc::rlim_t,
                    rlim_max: bytes as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Why a supervised process ended.
enum Ended {
    Exited(ExitStatus),
    Hung,
    Shutdown,
}

async fn record(gw: &Gateway, e: NewEvent, channel: &str) {
    if let Err(err) = gw
        .log()
        .append(&stream::channel(channel), ExpectedVersion::Any, vec![e])
        .await
    {
        tracing::error!(%channel, error = %err, "cannot record channel event");
    }
}

/// The exit code and the signal of a process's end.
pub(crate) fn status_parts(s: &ExitStatus) -> (Option<i32>, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    (s.code(), s.signal())
}

/// Run `spec` until the Gateway shuts down. Returns when the channel process exits cleanly
/// and is attached to the terminal (the user left), or at shutdown.
pub async fn supervise(gw: Arc<Gateway>, spec: ChannelSpec, bus_url: String, exe: PathBuf) -> bool {
    let mut backoff = BACKOFF_START;
    let mut shutdown = gw.shutdown_signal();
    loop {
        if *shutdown.borrow() {
            return false;
        }
        let token = tokens::random_token();
        gw.connections().admit(&spec.name, token.clone());
        let mut cmd = Command::new(&exe);
        cmd.arg("channel")
            .arg(&spec.kind)
            .env(ENV_BUS_URL, &bus_url)
            .env(ENV_CHANNEL_NAME, &spec.name)
            .env(ENV_CHANNEL_TOKEN, &token)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true);
        if !spec.attach_stdio {
            cmd.stdin(Stdio::null()).stdout(Stdio::null());
        }
        die_with_parent(&mut cmd, None);
        let started = Instant::now();
        let ended = match cmd.spawn() {
            Err(e) => {
                record(
                    &gw,
                    NewEvent::new(ChannelExited {
                        channel: spec.name.clone(),
                        code: None,
                        signal: None,
                        reason: format!("could not start: {e}"),
                    }),
                    &spec.name,
                )
                .await;
                None
            }
            Ok(child) => {
                let pid = child.id().unwrap_or(0);
                record(
                    &gw,
                    NewEvent::new(ChannelStarted {
                        channel: spec.name.clone(),
                        kind: spec.kind.clone(),
                        pid,
                    }),
                    &spec.name,
                )
                .await;
                let (ended, status) = watch_child(&gw, &spec.name, child, &mut shutdown).await;
                let (code, signal) = status.as_ref().map(status_parts).unwrap_or((None, None));
                let reason = match &ended {
                    Ended::Exited(s) if s.success() => "exited".to_string(),
                    Ended::Exited(_) => "crashed".to_string(),
                    Ended::Hung => format!("no heartbeat for {HEARTBEAT_DEADLINE:?}; killed"),
                    Ended::Shutdown => "Gateway shutdown".to_string(),
                };
                record(
                    &gw,
                    NewEvent::new(ChannelExited {
                        channel: spec.name.clone(),
                        code,
                        signal,
                        reason,
                    }),
                    &spec.name,
                )
                .await;
                Some(ended)
            }
        };
        gw.connections().revoke(&spec.name);
        match ended {
            Some(Ended::Shutdown) => return false,
            Some(Ended::Exited(s)) if s.success() && spec.attach_stdio => return true,
            _ => {}
        }
        if started.elapsed() >= HEALTHY_AFTER {
            backoff = BACKOFF_START;
        }
        gw.metrics().channel_restart(&spec.name);
        tracing::warn!(channel = %spec.name, "channel ended; restarting in {backoff:?}");
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => {}
        }
        backoff = (backoff * 2).min(BACKOFF_CAP);
    }
}

async fn watch_child(
    gw: &Gateway,
    name: &str,
    mut child: Child,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> (Ended, Option<ExitStatus>) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            status = child.wait() => {
                return match status {
                    Ok(s) => (Ended::Exited(s), Some(s)),
                    Err(_) => (Ended::Hung, None),
                };
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    let _ = child.start_kill();
                    let status = child.wait().await.ok();
                    return (Ended::Shutdown, status);
                }
            }
            _ = tick.tick() => {
                let last = gw.connections().last_seen(name);
                let silent_for = last.map(|t| t.elapsed()).unwrap_or_else(|| started.elapsed());
                if silent_for > HEARTBEAT_DEADLINE {
                    let _ = child.start_kill();
                    let status = child.wait().await.ok();
                    return (Ended::Hung, status);
                }
            }
        }
    }
}
