//! `clawos bench turn`: the overhead of one agent turn outside the LLM (context build from
//! the session projection + the turn's event appends) in a session that already holds many
//! messages. The agent answers instantly, so what is left is the kernel's own cost. The
//! baseline, in the same run, is the turn's three events appended with nothing else. The
//! same agent isolated in a process of its own (`isolation = "process"`) is timed in the
//! same loop, and the idle memory of an agent process (that one, and Pi with a remote
//! provider) is read from `/proc`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clawos_events::{
    stream, AgentTurnFinished, AgentTurnStarted, Durability, ExpectedVersion, MessageReceived,
    MessageSent, NewEvent,
};
use clawos_kernel::agent_host::plan::plan;
use clawos_kernel::agent_host::supervise::supervise;
use clawos_kernel::vault::{keystore::FileStore, Vault};
use clawos_kernel::{Config, Gateway};
use clawos_replay::Home;
use uuid::Uuid;

use super::common::{fill_synthetic, percentile};

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn message(n: u64) -> NewEvent {
    NewEvent::new(MessageReceived {
        channel: "terminal".into(),
        external_id: format!("bench-turn-{n}"),
        sender: "terminal:s0".into(),
        chat: None,
        text: format!("bench question {n}: what did I ask you yesterday?"),
        attachments: vec![],
        branch: "main".into(),
        sent_at_ms: n as i64,
        addressed: true,
    })
}

/// Run the benchmark: a session of about `messages` messages, then `turns` timed turns.
pub(super) async fn bench_turn(messages: u64, turns: u64, durability: Durability) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let home = Home::new(dir.path());
    // One synthetic turn is 11 events holding two messages.
    let events = messages / 2 * 11;
    {
        let store = home.open_log(Durability::Normal).await?;
        fill_synthetic(&store, 1, events).await?;
        store.close().await;
    }
    // `clawos agent NAME` reads the configuration from the state folder.
    let text = format!(
        "[gateway]\ndurability = \"{}\"\n\n[agents.pi]\nkind = \"echo\"\n\n\
         [agents.isolated]\nkind = \"echo\"\nisolation = \"process\"\n\n\
         [agents.remote]\nisolation = \"process\"\nprovider = \"openai\"\n\
         base_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n",
        match durability {
            Durability::Full => "full",
            Durability::Normal => "normal",
        }
    );
    std::fs::write(dir.path().join("clawos.toml"), &text)?;
    let config = Config::parse(&text)?;
    let mut agents =
        clawos_kernel::build_agents(&home, &config, &HashMap::new(), &Default::default())?;
    let hosted = plan(&home, &config, &HashMap::new(), &std::env::current_exe()?)?;
    for h in &hosted {
        agents.insert(h.spec.name.clone(), h.agent.clone());
    }
    let vault = Vault::open_with(
        dir.path(),
        Box::new(FileStore::new(dir.path().join("vault.key"))),
        None,
    )
    .await?;
    let t = Instant::now();
    let gw = Gateway::open(home.clone(), config, agents, Arc::new(vault)).await?;
    let open = t.elapsed();
    for h in hosted {
        let slot = h.agent.slot();
        tokio::spawn(supervise(gw.clone(), h.spec, slot.clone()));
        slot.live(Duration::from_secs(60))
            .await
            .map_err(|why| anyhow::anyhow!("agent process: {why}"))?;
    }
    let session_stream = stream::session("s0");
    let in_session = clawos_projections::views::message_count(gw.read_models(), "s0").await?;

    let mut turn_times = Vec::new();
    let mut process_times = Vec::new();
    let mut base_times = Vec::new();
    for n in 0..turns {
        // The turn: message appended (as ingest does), then the whole turn; in the
        // Gateway, then in the agent's own process.
        for (agent, times) in [("pi", &mut turn_times), ("isolated", &mut process_times)] {
            let m = gw
                .log()
                .append(&session_stream, ExpectedVersion::Any, vec![message(n)])
                .await?;
            let t = Instant::now();
            gw.run_turn("s0", agent, m.first_seq).await?;
            times.push(t.elapsed());
        }
        let m = gw
            .log()
            .append(&session_stream, ExpectedVersion::Any, vec![message(n)])
            .await?;

        // The baseline: the same events a turn writes, appended with nothing else.
        let turn = Uuid::now_v7();
        let t = Instant::now();
        gw.log()
            .append(
                &session_stream,
                ExpectedVersion::Any,
                vec![NewEvent::new(AgentTurnStarted {
                    turn_id: turn,
                    agent: "pi".into(),
                    branch: "main".into(),
                    trigger_seq: m.first_seq,
                })],
            )
            .await?;
        gw.log()
            .append(
                &session_stream,
                ExpectedVersion::Any,
                vec![
                    NewEvent::new(MessageSent {
                        delivery_id: Uuid::now_v7(),
                        agent: "pi".into(),
                        branch: "main".into(),
                        channel: "terminal".into(),
                        to: "terminal:s0".into(),
                        chat: None,
                        text: "baseline".into(),
                        in_reply_to: Some(m.first_seq),
                        reply_key: None,
                        attachments: vec![],
                    }),
                    NewEvent::new(AgentTurnFinished {
                        turn_id: turn,
                        steps: 0,
                    }),
                ],
            )
            .await?;
        base_times.push(t.elapsed());
    }
    turn_times.sort();
    process_times.sort();
    base_times.sort();
    let (t50, t99) = (percentile(&turn_times, 0.5), percentile(&turn_times, 0.99));
    let (b50, b99) = (percentile(&base_times, 0.5), percentile(&base_times, 0.99));
    println!(
        "session: {in_session} messages ({} events in the log), Gateway open {}",
        gw.log().head(),
        ms(open)
    );
    println!("durability: {durability:?}, {turns} turns");
    println!(
        "turn overhead (context build + appends): p50 {} p99 {}",
        ms(t50),
        ms(t99)
    );
    println!(
        "baseline (the turn's appends alone):    p50 {} p99 {}",
        ms(b50),
        ms(b99)
    );
    println!(
        "ratio p50: {:.2}x the baseline; context build ≈ {}",
        t50.as_secs_f64() / b50.as_secs_f64().max(1e-9),
        ms(t50.saturating_sub(b50))
    );
    let (p50, p99) = (
        percentile(&process_times, 0.5),
        percentile(&process_times, 0.99),
    );
    println!(
        "same turn, agent in its own process:    p50 {} p99 {} (+{:.3} ms p50, {:.2}x in-process)",
        ms(p50),
        ms(p99),
        (p50.as_secs_f64() - t50.as_secs_f64()) * 1e3,
        p50.as_secs_f64() / t50.as_secs_f64().max(1e-9)
    );
    gw.projected_through(gw.log().head()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for a in clawos_projections::views::agent_process_status(gw.read_models()).await? {
        let pid = a.pid.unwrap_or(0) as u32;
        let rollup =
            |field: &str| super::gateway::proc_kib(pid, "smaps_rollup", field) as f64 / 1024.0;
        println!(
            "agent process `{}` ({}): idle RSS {:.1} MB, of which private {:.1} MB \
             (the rest is the clawos binary's pages, shared with the Gateway); PSS {:.1} MB",
            a.agent,
            if a.agent == "remote" {
                "Pi, remote provider"
            } else {
                "echo"
            },
            super::gateway::rss_kib(pid) as f64 / 1024.0,
            rollup("Private_Clean:") + rollup("Private_Dirty:"),
            rollup("Pss:")
        );
    }
    println!(
        "Gateway RSS: {:.1} MB",
        super::gateway::rss_kib(std::process::id()) as f64 / 1024.0
    );
    gw.shut_down();
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(())
}
