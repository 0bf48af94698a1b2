//! Whole-system tests of projections and replay (ARCHITECTURE.md invariants I1, I5, I10 and I11):
//! incrementally built tables equal rebuilt ones under generated event sequences,
//! state-at(N) equals the live tables at N, and fork/export/state-at through the CLI.

mod common;

use std::collections::BTreeMap;

use clawos_events::{stream, EventPayload, ExpectedVersion, LogStore, NewEvent};
use clawos_projections::sessions::{BRANCHES, COMPACTIONS, MESSAGES, SESSIONS};
use clawos_projections::{projection, views, MemoryTables, Row, Runner, Value};
use clawos_replay::{fork, rebuild, state_at, ReplayError};
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use uuid::Uuid;

// ---- invariant 1 under generated event sequences ----------------------------------------

/// One step of a generated history. Indices are resolved against what exists so far
/// (modulo the list length), so every sequence is meaningful and many are odd.
#[derive(Debug, Clone)]
enum Op {
    Start {
        s: u8,
    },
    Receive {
        s: u8,
        branch: u8,
        text: String,
        redeliver: Option<u8>,
    },
    Send {
        s: u8,
        branch: u8,
        text: String,
        reply: bool,
    },
    Branch {
        s: u8,
        at: Option<u8>,
        name: u8,
        switch: bool,
    },
    Switch {
        s: u8,
        name: u8,
    },
    Compact {
        s: u8,
        at: u8,
    },
    Link {
        who: u8,
        address: u8,
    },
    BindSet {
        id: u8,
        agent: u8,
        chat: Option<u8>,
        priority: i8,
    },
    BindRemove {
        id: u8,
    },
    ChannelUp {
        c: u8,
        pid: u16,
    },
    ChannelDown {
        c: u8,
        code: Option<i8>,
        signal: Option<u8>,
    },
    AgentUp {
        a: u8,
        pid: u16,
    },
    AgentDown {
        a: u8,
        code: Option<i8>,
        signal: Option<u8>,
    },
    TurnStart {
        s: u8,
    },
    TurnStep {
        turn: u8,
        tool: bool,
    },
    TurnEnd {
        turn: u8,
        failed: bool,
    },
    Ack {
        delivery: u8,
        bogus: bool,
    },
    PairRequest {
        c: u8,
        who: u8,
        code: u8,
        expires: u8,
    },
    PairApprove {
        c: u8,
        who: u8,
    },
    Ask {
        s: u8,
    },
    Answer {
        approval: u8,
        approved: bool,
        bogus: bool,
    },
    CronAdd {
        s: u8,
    },
    CronFire {
        job: u8,
        bogus: bool,
    },
    CronCancel {
        job: u8,
    },
    Remember {
        who: Option<u8>,
    },
    Forget {
        memory: u8,
    },
}

const BRANCH_NAMES: [&str; 4] = ["main", "alt", "x", "y"];
const CHANNELS: [&str; 3] = ["terminal", "irc-libera", "webhook"];
const AGENTS: [&str; 2] = ["pi", "shout"];

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z ]{0,10}", "\\PC{0,8}"]
}

fn op() -> impl Strategy<Value = Op> {
    let s = 0u8..4;
    prop_oneof![
        2 => s.clone().prop_map(|s| Op::Start { s }),
        6 => (s.clone(), 0u8..4, text(), proptest::option::weighted(0.15, any::<u8>()))
            .prop_map(|(s, branch, text, redeliver)| Op::Receive { s, branch, text, redeliver }),
        4 => (s.clone(), 0u8..4, text(), any::<bool>())
            .prop_map(|(s, branch, text, reply)| Op::Send { s, branch, text, reply }),
        2 => (s.clone(), proptest::option::weighted(0.8, any::<u8>()), 0u8..4, any::<bool>())
            .prop_map(|(s, at, name, switch)| Op::Branch { s, at, name, switch }),
        1 => (s.clone(), 0u8..4).prop_map(|(s, name)| Op::Switch { s, name }),
        1 => (s.clone(), any::<u8>()).prop_map(|(s, at)| Op::Compact { s, at }),
        1 => (0u8..3, 0u8..5).prop_map(|(who, address)| Op::Link { who, address }),
        1 => (0u8..3, 0u8..2, proptest::option::of(0u8..2), any::<i8>())
            .prop_map(|(id, agent, chat, priority)| Op::BindSet { id, agent, chat, priority }),
        1 => (0u8..3).prop_map(|id| Op::BindRemove { id }),
        1 => (0u8..3, any::<u16>()).prop_map(|(c, pid)| Op::ChannelUp { c, pid }),
        1 => (0u8..3, proptest::option::of(any::<i8>()), proptest::option::of(1u8..32))
            .prop_map(|(c, code, signal)| Op::ChannelDown { c, code, signal }),
        1 => (0u8..2, any::<u16>()).prop_map(|(a, pid)| Op::AgentUp { a, pid }),
        1 => (0u8..2, proptest::option::of(any::<i8>()), proptest::option::of(1u8..32))
            .prop_map(|(a, code, signal)| Op::AgentDown { a, code, signal }),
        2 => s.prop_map(|s| Op::TurnStart { s }),
        3 => (any::<u8>(), any::<bool>()).prop_map(|(turn, tool)| Op::TurnStep { turn, tool }),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(turn, failed)| Op::TurnEnd { turn, failed }),
        2 => (any::<u8>(), proptest::bool::weighted(0.1))
            .prop_map(|(delivery, bogus)| Op::Ack { delivery, bogus }),
        1 => (0u8..2, 0u8..3, 0u8..4, any::<u8>())
            .prop_map(|(c, who, code, expires)| Op::PairRequest { c, who, code, expires }),
        1 => (0u8..2, 0u8..3).prop_map(|(c, who)| Op::PairApprove { c, who }),
        1 => (0u8..4).prop_map(|s| Op::Ask { s }),
        1 => (any::<u8>(), any::<bool>(), proptest::bool::weighted(0.1))
            .prop_map(|(approval, approved, bogus)| Op::Answer { approval, approved, bogus }),
        1 => (0u8..4).prop_map(|s| Op::CronAdd { s }),
        1 => (any::<u8>(), proptest::bool::weighted(0.1))
            .prop_map(|(job, bogus)| Op::CronFire { job, bogus }),
        1 => any::<u8>().prop_map(|job| Op::CronCancel { job }),
        1 => proptest::option::of(0u8..3).prop_map(|who| Op::Remember { who }),
        1 => any::<u8>().prop_map(|memory| Op::Forget { memory }),
    ]
}

/// Turns generated ops into append requests, remembering the seqs the log handed out.
#[derive(Default)]
struct Script {
    messages: BTreeMap<u8, Vec<u64>>,
    external_ids: Vec<(String, String)>,
    deliveries: Vec<(String, Uuid)>,
    turns: Vec<(u8, Uuid)>,
    approvals: Vec<Uuid>,
    jobs: Vec<(u8, Uuid)>,
    memories: Vec<Uuid>,
    n: u64,
}

fn pick<T: Clone>(v: &[T], i: u8) -> Option<T> {
    (!v.is_empty()).then(|| v[i as usize % v.len()].clone())
}

impl Script {
    fn session(s: u8) -> String {
        stream::session(&format!("s{s}"))
    }

    /// The request for one op: (stream, events).
    fn request(&mut self, op: &Op) -> (String, Vec<NewEvent>) {
        self.n += 1;
        let n = self.n;
        match op {
            Op::Start { s } => (
                Self::session(*s),
                vec![started(&format!("s{s}"), &format!("person-{s}"), "pi")],
            ),
            Op::Receive {
                s,
                branch,
                text,
                redeliver,
            } => {
                let (channel, ext) = match redeliver.and_then(|i| pick(&self.external_ids, i)) {
                    Some(old) => old,
                    None => {
                        let c = CHANNELS[n as usize % CHANNELS.len()].to_string();
                        let e = format!("ext-{n}");
                        self.external_ids.push((c.clone(), e.clone()));
                        (c, e)
                    }
                };
                let sender = format!("{channel}:person-{s}");
                (
                    Self::session(*s),
                    vec![inbound(
                        &channel,
                        &ext,
                        &sender,
                        text,
                        BRANCH_NAMES[*branch as usize],
                    )],
                )
            }
            Op::Send {
                s,
                branch,
                text,
                reply,
            } => {
                let d = Uuid::from_u128(n as u128);
                let channel = CHANNELS[n as usize % CHANNELS.len()];
                self.deliveries.push((channel.to_string(), d));
                let to = self.messages.get(s).and_then(|m| m.last().copied());
                (
                    Self::session(*s),
                    vec![sent(
                        d,
                        channel,
                        &format!("{channel}:person-{s}"),
                        text,
                        BRANCH_NAMES[*branch as usize],
                        if *reply { to } else { None },
                    )],
                )
            }
            Op::Branch {
                s,
                at,
                name,
                switch,
            } => {
                let msgs = self.messages.get(s).cloned().unwrap_or_default();
                let at = at.and_then(|i| pick(&msgs, i));
                (
                    Self::session(*s),
                    vec![branch_created(BRANCH_NAMES[*name as usize], at, *switch)],
                )
            }
            Op::Switch { s, name } => (
                Self::session(*s),
                vec![branch_switched(BRANCH_NAMES[*name as usize])],
            ),
            Op::Compact { s, at } => {
                let msgs = self.messages.get(s).cloned().unwrap_or_default();
                let through = pick(&msgs, *at).unwrap_or(0);
                (
                    Self::session(*s),
                    vec![compacted(
                        BRANCH_NAMES[*at as usize % 2],
                        through,
                        &format!("summary {n}"),
                    )],
                )
            }
            Op::Link { who, address } => (
                stream::identity(&format!("person-{who}")),
                vec![linked(
                    &format!("person-{who}"),
                    &format!("irc:nick{address}@libera"),
                )],
            ),
            Op::BindSet {
                id,
                agent,
                chat,
                priority,
            } => (
                stream::BINDINGS.to_string(),
                vec![binding_set(
                    &format!("b{id}"),
                    ["pi", "coder"][*agent as usize],
                    chat.map(|c| ["#home", "#work"][c as usize]),
                    *priority as i32,
                )],
            ),
            Op::BindRemove { id } => (
                stream::BINDINGS.to_string(),
                vec![binding_removed(&format!("b{id}"))],
            ),
            Op::ChannelUp { c, pid } => (
                stream::channel(CHANNELS[*c as usize]),
                vec![channel_started(CHANNELS[*c as usize], *pid as u32)],
            ),
            Op::ChannelDown { c, code, signal } => (
                stream::channel(CHANNELS[*c as usize]),
                vec![channel_exited(
                    CHANNELS[*c as usize],
                    code.map(i32::from),
                    signal.map(i32::from),
                )],
            ),
            Op::AgentUp { a, pid } => (
                stream::agent_process(AGENTS[*a as usize]),
                vec![NewEvent::new(clawos_events::AgentStarted {
                    agent: AGENTS[*a as usize].into(),
                    pid: *pid as u32,
                    protocol: 1,
                    encoding: if *a == 0 { "bincode" } else { "json" }.into(),
                })],
            ),
            Op::AgentDown { a, code, signal } => (
                stream::agent_process(AGENTS[*a as usize]),
                vec![NewEvent::new(clawos_events::AgentExited {
                    agent: AGENTS[*a as usize].into(),
                    code: code.map(i32::from),
                    signal: signal.map(i32::from),
                    reason: "gone".into(),
                })],
            ),
            Op::TurnStart { s } => {
                let turn = Uuid::from_u128((1 << 64) | n as u128);
                self.turns.push((*s, turn));
                let trigger = self
                    .messages
                    .get(s)
                    .and_then(|m| m.last().copied())
                    .unwrap_or(0);
                (Self::session(*s), vec![turn_started(turn, "main", trigger)])
            }
            Op::TurnStep { turn, tool } => {
                // A turn with no open turn yet records a step of an unknown turn.
                let (s, t) = pick(&self.turns, *turn).unwrap_or((0, Uuid::from_u128(7)));
                let mut events = vec![
                    llm_requested(t),
                    llm_responded(t, &format!("step {n}"), tool.then_some("shell")),
                ];
                if *tool {
                    events.push(tool_called(t, &format!("c{n}"), "shell"));
                    events.push(tool_returned(t, &format!("c{n}"), "ok", (n % 3) as i32));
                }
                (Self::session(s), events)
            }
            Op::TurnEnd { turn, failed } => {
                let (s, t) = pick(&self.turns, *turn).unwrap_or((1, Uuid::from_u128(9)));
                let e = if *failed {
                    turn_failed(t, "provider timed out")
                } else {
                    turn_finished(t, 2)
                };
                (Self::session(s), vec![e])
            }
            Op::Ack { delivery, bogus } => {
                let (c, d) = match pick(&self.deliveries, *delivery) {
                    Some(x) if !*bogus => x,
                    _ => (
                        "terminal".to_string(),
                        Uuid::from_u128(n as u128 + 1_000_000),
                    ),
                };
                (stream::channel(&c), vec![acked(&c, d)])
            }
            Op::PairRequest {
                c,
                who,
                code,
                expires,
            } => (
                stream::PAIRING.to_string(),
                vec![NewEvent::new(clawos_events::PairingRequested {
                    channel: CHANNELS[*c as usize].to_string(),
                    address: format!("person-{who}"),
                    code_hash: format!("hash-{code}"),
                    expires_at_ms: *expires as i64 * 1000,
                })],
            ),
            Op::PairApprove { c, who } => (
                stream::PAIRING.to_string(),
                vec![NewEvent::new(clawos_events::PairingApproved {
                    channel: CHANNELS[*c as usize].to_string(),
                    address: format!("person-{who}"),
                })],
            ),
            Op::Ask { s } => {
                let id = Uuid::from_u128((2 << 64) | n as u128);
                self.approvals.push(id);
                let turn = pick(&self.turns, n as u8).map(|t| t.1).unwrap_or_default();
                (
                    stream::APPROVALS.to_string(),
                    vec![NewEvent::new(clawos_events::ApprovalRequested {
                        approval_id: id,
                        session_id: format!("s{s}"),
                        turn_id: turn,
                        action: format!("shell: step {n}"),
                    })],
                )
            }
            Op::Answer {
                approval,
                approved,
                bogus,
            } => {
                let id = match pick(&self.approvals, *approval) {
                    Some(id) if !*bogus => id,
                    _ => Uuid::from_u128((3 << 64) | n as u128),
                };
                (
                    stream::APPROVALS.to_string(),
                    vec![NewEvent::new(clawos_events::ApprovalAnswered {
                        approval_id: id,
                        approved: *approved,
                        by: ["cli", "timeout"][n as usize % 2].to_string(),
                    })],
                )
            }
            Op::CronAdd { s } => {
                let id = Uuid::from_u128((4 << 64) | n as u128);
                self.jobs.push((*s, id));
                (
                    Self::session(*s),
                    vec![NewEvent::new(clawos_events::CronScheduled {
                        job_id: id,
                        session_id: format!("s{s}"),
                        schedule: "every 1h".into(),
                        prompt: format!("job {n}"),
                    })],
                )
            }
            Op::CronFire { job, bogus } => {
                let (s, id) = match pick(&self.jobs, *job) {
                    Some(j) if !*bogus => j,
                    _ => (0, Uuid::from_u128((5 << 64) | n as u128)),
                };
                (
                    Self::session(s),
                    vec![NewEvent::new(clawos_events::CronFired {
                        job_id: id,
                        due_at_ms: n as i64 * 60_000,
                        prompt: format!("fire {n}"),
                    })],
                )
            }
            Op::CronCancel { job } => {
                let (s, id) = pick(&self.jobs, *job).unwrap_or((1, Uuid::from_u128(11)));
                (
                    Self::session(s),
                    vec![NewEvent::new(clawos_events::CronCancelled { job_id: id })],
                )
            }
            Op::Remember { who } => {
                let id = Uuid::from_u128((6 << 64) | n as u128);
                self.memories.push(id);
                let last = self.messages.values().flatten().max().copied();
                (
                    stream::MEMORY.to_string(),
                    vec![NewEvent::new(clawos_events::MemoryWritten {
                        memory_id: id,
                        identity: who.map(|w| format!("person-{w}")),
                        agent: Some("pi".into()),
                        text: format!("memory {n}"),
                        tags: vec![format!("t{}", n % 3)],
                        source_seq: last,
                    })],
                )
            }
            Op::Forget { memory } => {
                let id = pick(&self.memories, *memory).unwrap_or(Uuid::from_u128(12));
                (
                    stream::MEMORY.to_string(),
                    vec![NewEvent::new(clawos_events::MemoryForgotten {
                        memory_id: id,
                    })],
                )
            }
        }
    }

    /// Record what an append returned (message seqs for later forks and compactions).
    fn appended(&mut self, op: &Op, a: &clawos_events::Appended) {
        if a.duplicate {
            return;
        }
        if let Op::Receive { s, .. } | Op::Send { s, .. } = op {
            self.messages.entry(*s).or_default().push(a.first_seq);
        }
    }
}

async fn all_checkpoints_at(pool: &sqlx::SqlitePool, seq: u64) -> bool {
    checkpoints(pool)
        .await
        .iter()
        .all(|(_, s, _)| *s as u64 == seq)
}

async fn rebuild_case(ops: Vec<Op>, batches: Vec<u8>) -> Result<(), TestCaseError> {
    let home = Home::new();
    let store = open_log(&home.log()).await;
    let live = open_projections(&home.projections()).await;
    let mut runner = Runner::open(live.clone(), projection::all()).await.unwrap();
    let mut script = Script::default();

    let mut i = 0;
    let mut batch_no = 0;
    while i < ops.len() {
        let size = batches[batch_no % batches.len()] as usize;
        for op in &ops[i..(i + size).min(ops.len())] {
            let (s, events) = script.request(op);
            let a = store
                .append(&s, ExpectedVersion::Any, events)
                .await
                .unwrap();
            script.appended(op, &a);
        }
        i += size;
        batch_no += 1;
        // Every other batch, resume from the checkpoint with fresh projection instances,
        // as after a restart.
        if batch_no % 2 == 0 {
            runner = Runner::open(live.clone(), projection::all()).await.unwrap();
        }
        let c = runner.catch_up(&store, |_| {}).await.unwrap();
        prop_assert_eq!(c.position, store.head());
    }
    let head = store.head();
    prop_assert!(all_checkpoints_at(&live, head).await || head == 0);

    let incremental = dump_all(&live).await;
    let incremental_cp = checkpoints(&live).await;

    // Rebuild into a second projection database.
    let other = open_projections(&home.file("rebuilt.db")).await;
    let report = rebuild::rebuild(&store, &other, None, |_| {})
        .await
        .unwrap();
    prop_assert_eq!(report.events, head);
    prop_assert_eq!(&dump_all(&other).await, &incremental);
    prop_assert_eq!(&checkpoints(&other).await, &incremental_cp);

    // Rebuild in place (what `clawos replay rebuild` does).
    rebuild::rebuild(&store, &live, None, |_| {}).await.unwrap();
    prop_assert_eq!(&dump_all(&live).await, &incremental);
    prop_assert_eq!(&checkpoints(&live).await, &incremental_cp);

    // The in-memory fold used by time travel agrees too.
    let mem = state_at::state_at(&store, head, None).await.unwrap();
    prop_assert_eq!(&non_empty(&mem.tables), &incremental);

    // Every view reads the same from the live tables as from the same rows in memory.
    views_agree(&live, &mem.tables, head).await?;

    store.close().await;
    live.close().await;
    other.close().await;
    Ok(())
}

/// Each view's live form (SQL over the projection file) gives what its pure form gives
/// over the same rows in memory.
async fn views_agree(
    pool: &sqlx::SqlitePool,
    t: &MemoryTables,
    head: u64,
) -> Result<(), TestCaseError> {
    let (seed, at) = views::load_routing_seed_at(pool).await.unwrap();
    prop_assert_eq!(&seed, &views::RoutingSeed::from_tables(t));
    prop_assert_eq!(at, head);
    prop_assert_eq!(views::load_routing_seed(pool).await.unwrap(), seed);
    let mut ids = views::identities_in(t);
    ids.sort_by(|a, b| (&a.identity, &a.address).cmp(&(&b.identity, &b.address)));
    prop_assert_eq!(&views::identities(pool).await.unwrap(), &ids);
    for i in &ids {
        prop_assert_eq!(
            views::linked_identity(pool, &i.address).await.unwrap(),
            Some(i.identity.clone())
        );
    }
    prop_assert_eq!(views::linked_identity(pool, "nobody").await.unwrap(), None);
    prop_assert_eq!(views::bindings(pool).await.unwrap(), views::bindings_in(t));

    for c in CHANNELS {
        prop_assert_eq!(
            views::pending_deliveries(pool, c).await.unwrap(),
            views::pending_deliveries_in(t, c)
        );
    }
    prop_assert_eq!(
        views::delivery_backlog(pool).await.unwrap(),
        views::delivery_backlog_in(t)
    );
    prop_assert_eq!(
        views::pending_by_channel(pool).await.unwrap(),
        views::pending_by_channel_in(t)
    );
    prop_assert_eq!(
        views::channel_status(pool).await.unwrap(),
        views::channel_status_in(t)
    );

    for up_to in [0, head / 3, head / 2, head] {
        prop_assert_eq!(
            views::unanswered_messages(pool, up_to).await.unwrap(),
            views::unanswered_messages_in(t, up_to)
        );
        prop_assert_eq!(
            views::running_turns(pool, up_to).await.unwrap(),
            views::running_turns_in(t, up_to)
        );
    }

    for s in 0..4u8 {
        let id = format!("s{s}");
        prop_assert_eq!(
            views::session_owner(pool, &id).await.unwrap(),
            views::session_owner_in(t, &id)
        );
        prop_assert_eq!(
            views::last_user_route(pool, &id).await.unwrap(),
            views::last_user_route_in(t, &id)
        );
        prop_assert_eq!(
            views::message_count(pool, &id).await.unwrap(),
            views::message_count_in(t, &id)
        );
        prop_assert_eq!(
            views::load_session_view(pool, &id).await.unwrap(),
            views::sessions(t).into_iter().find(|v| v.session_id == id)
        );
        prop_assert_eq!(
            views::load_branches(pool, &id).await.unwrap(),
            views::branches(t, &id)
        );
        for b in views::branches(t, &id) {
            let context: Vec<u64> = views::transcript(t, &id, &b.name)
                .iter()
                .map(|m| m.seq)
                .collect();
            prop_assert_eq!(
                views::latest_compaction(pool, &id, &context).await.unwrap(),
                views::latest_compaction_in(t, &id, &context)
            );
        }
        prop_assert_eq!(
            views::session_cron_jobs(pool, &id).await.unwrap(),
            views::session_cron_jobs_in(t, &id)
        );
        prop_assert_eq!(
            views::audit_session(pool, &id).await.unwrap(),
            views::audit_session_in(t, &id)
        );
    }
    for seq in (1..=head).step_by(3) {
        prop_assert_eq!(
            views::message_branch(pool, seq).await.unwrap(),
            views::message_branch_in(t, seq)
        );
        prop_assert_eq!(
            views::message(pool, seq).await.unwrap(),
            views::message_in(t, seq)
        );
    }

    let pending = views::pairing_requests_in(t);
    prop_assert_eq!(&views::pairing_requests(pool).await.unwrap(), &pending);
    prop_assert_eq!(views::paired(pool).await.unwrap(), views::paired_in(t));
    for code in 0..4 {
        let hash = format!("hash-{code}");
        prop_assert_eq!(
            views::pairing_request_by_code(pool, &hash).await.unwrap(),
            views::pairing_request_by_code_in(t, &hash)
        );
    }
    for c in CHANNELS {
        for who in 0..3 {
            let address = format!("person-{who}");
            prop_assert_eq!(
                views::is_paired(pool, c, &address).await.unwrap(),
                views::is_paired_in(t, c, &address)
            );
        }
    }

    for pending_only in [false, true] {
        prop_assert_eq!(
            views::approvals(pool, pending_only).await.unwrap(),
            views::approvals_in(t, pending_only)
        );
    }
    for a in views::approvals_in(t, false) {
        let id = Uuid::parse_str(&a.approval_id).unwrap();
        prop_assert_eq!(views::approval(pool, id).await.unwrap(), Some(a));
    }

    prop_assert_eq!(
        views::cron_jobs(pool).await.unwrap(),
        views::cron_jobs_in(t)
    );
    prop_assert_eq!(
        views::active_cron_jobs(pool).await.unwrap(),
        views::active_cron_jobs_in(t)
    );
    for j in views::cron_jobs_in(t) {
        let id = Uuid::parse_str(&j.job_id).unwrap();
        prop_assert_eq!(views::cron_job(pool, id).await.unwrap(), Some(j));
    }

    for who in [None, Some("person-0"), Some("person-1"), Some("nobody")] {
        prop_assert_eq!(
            views::memories(pool, who).await.unwrap(),
            views::memories_in(t, who)
        );
    }
    for m in views::memories_in(t, None) {
        let id = Uuid::parse_str(&m.memory_id).unwrap();
        prop_assert_eq!(
            views::memory_owned_by(pool, id, "person-0").await.unwrap(),
            m.identity.as_deref() == Some("person-0")
        );
        prop_assert_eq!(views::memory(pool, id).await.unwrap(), Some(m));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilt_tables_equal_incrementally_built_tables() {
    let strategy = (
        proptest::collection::vec(op(), 1..90),
        proptest::collection::vec(1u8..7, 1..6),
    );
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    let result = tokio::task::block_in_place(|| {
        runner.run(&strategy, |(ops, batches)| {
            handle.block_on(rebuild_case(ops, batches))
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ---- invariant 5: a failed batch is not applied twice -----------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_retry_after_a_failed_flush_applies_each_event_once() {
    let home = Home::new();
    let store = open_log(&home.log()).await;
    let pool = open_projections(&home.projections()).await;
    let s = "session:s1";
    store
        .append_one(s, started("s1", "alice", "pi"))
        .await
        .unwrap();
    store
        .append_one(s, inbound("terminal", "1", "terminal:alice", "one", "main"))
        .await
        .unwrap();
    let mut runner = Runner::open(pool.clone(), projection::all()).await.unwrap();
    runner.catch_up(&store, |_| {}).await.unwrap();

    store
        .append_one(s, inbound("terminal", "2", "terminal:alice", "two", "main"))
        .await
        .unwrap();
    store
        .append_one(s, branch_created("alt", Some(2), true))
        .await
        .unwrap();
    // Make the next flush fail (as a full disk or an I/O error would), then heal it.
    sqlx::query("ALTER TABLE messages RENAME TO messages_away")
        .execute(&pool)
        .await
        .unwrap();
    assert!(runner.catch_up(&store, |_| {}).await.is_err());
    for (_, seq, _) in checkpoints(&pool).await {
        assert_eq!(seq, 2, "a failed batch must not move a checkpoint");
    }
    sqlx::query("ALTER TABLE messages_away RENAME TO messages")
        .execute(&pool)
        .await
        .unwrap();
    let c = runner.catch_up(&store, |_| {}).await.unwrap();
    assert_eq!(c.position, 4);

    // A failure after the rows, while saving the last projection's checkpoint: the whole
    // batch rolls back, so no projection may consider it applied.
    store
        .append_one(
            s,
            inbound("terminal", "3", "terminal:alice", "three", "alt"),
        )
        .await
        .unwrap();
    store
        .append_one(
            s,
            sent(
                Uuid::from_u128(5),
                "terminal",
                "terminal:alice",
                "3!",
                "alt",
                Some(5),
            ),
        )
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER fail_audit BEFORE INSERT ON projection_checkpoints \
         WHEN NEW.name = 'audit' BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert!(runner.catch_up(&store, |_| {}).await.is_err());
    assert_eq!(runner.position(), 4);
    for (_, seq, _) in checkpoints(&pool).await {
        assert_eq!(seq, 4, "a failed batch must not move a checkpoint");
    }
    sqlx::query("DROP TRIGGER fail_audit")
        .execute(&pool)
        .await
        .unwrap();
    let c = runner.catch_up(&store, |_| {}).await.unwrap();
    assert_eq!(c.position, 6);

    let rebuilt = open_projections(&home.file("rebuilt.db")).await;
    rebuild::rebuild(&store, &rebuilt, None, |_| {})
        .await
        .unwrap();
    let live = dump_all(&pool).await;
    assert_eq!(live, dump_all(&rebuilt).await);
    assert_eq!(checkpoints(&pool).await, checkpoints(&rebuilt).await);
    let msg3: &Row = &live["messages"][&vec![Value::Int(3)]];
    assert_eq!(msg3[3], Value::Int(2), "parent of message 3");
    assert_eq!(live["messages"].len(), 4);
    assert_eq!(live["deliveries"].len(), 1);
    store.close().await;
}

// ---- two processes on one projection file ---------------------------------------------

/// A runner whose file another process moved on or reset (a `clawos replay rebuild` while
/// the Gateway runs) takes the committed state instead of writing its next batch on top:
/// the tables end up as a rebuild makes them, never a mix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_takes_the_committed_state_after_another_process_moved_or_reset_it() {
    let home = Home::new();
    let store = open_log(&home.log()).await;
    let pool = open_projections(&home.projections()).await;
    let s1 = stream::session("s1");
    store
        .append_one(&s1, started("s1", "alice", "pi"))
        .await
        .unwrap();
    store
        .append_one(
            &s1,
            inbound("terminal", "1", "terminal:alice", "one", "main"),
        )
        .await
        .unwrap();
    store
        .append_one(stream::PAIRING, pairing_requested("hooks", "eve", "h1"))
        .await
        .unwrap();
    let mut gateway = Runner::open(pool.clone(), projection::all()).await.unwrap();
    let mut cli = Runner::open(pool.clone(), projection::all()).await.unwrap();
    gateway.catch_up(&store, |_| {}).await.unwrap();

    // Moved on: the other runner folded 1..=3 elsewhere; this one continues from there.
    store
        .append_one(
            &s1,
            inbound("terminal", "2", "terminal:alice", "two", "main"),
        )
        .await
        .unwrap();
    let c = cli.catch_up(&store, |_| {}).await.unwrap();
    assert_eq!(
        (c.position, c.events),
        (4, 1),
        "only event 4 was folded here"
    );
    gateway.catch_up(&store, |_| {}).await.unwrap();

    // Reset under it, as a rebuild does before its fold.
    Runner::reset(&pool, &projection::all()).await.unwrap();
    store
        .append_one(stream::PAIRING, pairing_approved("hooks", "eve"))
        .await
        .unwrap();
    let c = gateway.catch_up(&store, |_| {}).await.unwrap();
    assert_eq!(c.position, 5);

    let rebuilt = open_projections(&home.file("rebuilt.db")).await;
    rebuild::rebuild(&store, &rebuilt, None, |_| {})
        .await
        .unwrap();
    let live = dump_all(&pool).await;
    assert_eq!(live, dump_all(&rebuilt).await);
    assert_eq!(checkpoints(&pool).await, checkpoints(&rebuilt).await);
    assert_eq!(live["sessions"].values().next().unwrap()[6], Value::Int(2));
    store.close().await;
}

// ---- pairing and approvals: SQLite runner == in-memory fold --------------------------

/// The two read models whose state is their rows (`paired`, `approvals`), caught up one
/// event at a time with a fresh runner each time (so their state is restored from the
/// rows before every event), give the rows the in-memory fold gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_and_approvals_rows_equal_in_sqlite_and_in_memory() {
    let home = Home::new();
    let store = open_log(&home.log()).await;
    let pool = open_projections(&home.projections()).await;
    let t = Uuid::from_u128(0x7001);
    let history = [
        (stream::PAIRING, pairing_requested("hooks", "eve", "h1")),
        (stream::PAIRING, pairing_requested("hooks", "mal", "h2")),
        (stream::PAIRING, pairing_requested("hooks", "eve", "h3")),
        (stream::PAIRING, pairing_approved("hooks", "eve")),
        (stream::PAIRING, pairing_requested("hooks", "eve", "h4")),
        (stream::PAIRING, pairing_approved("hooks", "eve")),
        (
            stream::APPROVALS,
            approval_requested(1, "s1", t, "shell: ls"),
        ),
        (
            stream::APPROVALS,
            approval_requested(2, "s1", t, "shell: rm"),
        ),
        (stream::APPROVALS, approval_answered(1, true, "cli")),
        (stream::APPROVALS, approval_answered(1, false, "timeout")),
        (stream::APPROVALS, approval_answered(3, true, "cli")),
        (
            stream::APPROVALS,
            approval_requested(2, "s9", t, "shell: again"),
        ),
    ];
    for (s, e) in history {
        store.append_one(s, e).await.unwrap();
        let mut runner = Runner::open(pool.clone(), projection::all()).await.unwrap();
        runner.catch_up(&store, |_| {}).await.unwrap();
    }
    let live = dump_all(&pool).await;
    let mem = state_at::state_at(&store, store.head(), None)
        .await
        .unwrap();
    let mem = non_empty(&mem.tables);
    for table in ["pairing_requests", "paired", "approvals"] {
        assert_eq!(live.get(table), mem.get(table), "table {table}");
    }
    assert_eq!(live["paired"].len(), 1);
    assert_eq!(live["paired"].values().next().unwrap()[2], Value::Int(4));
    assert_eq!(live["pairing_requests"].len(), 1, "only mal waits");
    let live_tables = MemoryTables { tables: live };
    let answered: Vec<Option<bool>> = views::approvals_in(&live_tables, false)
        .iter()
        .map(|a| a.approved)
        .collect();
    assert_eq!(answered, [Some(true), None]);
    store.close().await;
}

/// `clawos pairing` and `clawos approvals` answer from the read models: what is pending,
/// what was answered, and an answer is appended once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_and_approvals_cli_read_the_read_models() {
    let home = Home::new();
    let store = open_log(&home.log()).await;
    let hash = clawos_kernel::tokens::code_hash;
    let request = |address: &str, code: &str, expires_at_ms: i64| {
        NewEvent::new(clawos_events::PairingRequested {
            channel: "hooks".into(),
            address: address.into(),
            code_hash: hash(code),
            expires_at_ms,
        })
    };
    let id = Uuid::from_u128(0xb001);
    for (s, e) in [
        (stream::PAIRING, request("eve@x", "ABCD2345", i64::MAX / 2)),
        (stream::PAIRING, request("old@x", "EXPIRED1", 1)),
        (
            stream::APPROVALS,
            approval_requested(0xb001, "s1", Uuid::from_u128(7), "shell: ls"),
        ),
    ] {
        store.append_one(s, e).await.unwrap();
    }
    store.close().await;
    let cli = |args: &[&str]| run_clawos(home.path(), args);

    let (ok, out, err) = cli(&["pairing", "list"]);
    assert!(ok, "{err}");
    assert!(out.contains("eve@x") && !out.contains("old@x"), "{out}");
    let (ok, _, err) = cli(&["pairing", "approve", "EXPIRED1"]);
    assert!(!ok && err.contains("expired"), "{err}");
    let (ok, out, err) = cli(&["pairing", "approve", "ABCD2345"]);
    assert!(ok && out.contains("approved: eve@x"), "{out} {err}");
    let (ok, _, err) = cli(&["pairing", "approve", "ABCD2345"]);
    assert!(!ok && err.contains("no pending pairing request"), "{err}");
    let (ok, out, _) = cli(&["pairing", "list"]);
    assert!(ok && out.contains("no pending pairing requests"), "{out}");
    assert!(out.contains("eve@x") && out.contains("paired"), "{out}");

    let (ok, out, err) = cli(&["approvals", "list"]);
    assert!(ok && out.contains(&id.to_string()), "{out} {err}");
    let (ok, out, err) = cli(&["approvals", "approve", &id.to_string()]);
    assert!(ok && out.contains("approved"), "{out} {err}");
    let (ok, out, _) = cli(&["approvals", "deny", &id.to_string()]);
    assert!(
        ok && out.contains("already answered: approved by cli"),
        "{out}"
    );
    let (ok, _, err) = cli(&["approvals", "deny", &Uuid::from_u128(9).to_string()]);
    assert!(!ok && err.contains("no approval request"), "{err}");
    let (_, out, _) = cli(&["approvals", "list"]);
    assert!(out.contains("nothing waits for approval"), "{out}");

    let store = open_log(&home.log()).await;
    let kinds: Vec<String> = store
        .read_from(1, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "PairingRequested",
            "PairingRequested",
            "ApprovalRequested",
            "PairingApproved",
            "ApprovalAnswered"
        ]
    );
    store.close().await;
}

// ---- invariant 11: state-at(N) is the live state at N -----------------------------------

/// A scripted conversation across two sessions with every session-level event kind.
fn conversation() -> Vec<(String, NewEvent)> {
    let s1 = stream::session("s1");
    let s2 = stream::session("s2");
    let t1 = Uuid::from_u128(0x7001);
    let t2 = Uuid::from_u128(0x7002);
    let d1 = Uuid::from_u128(0xd001);
    let d2 = Uuid::from_u128(0xd002);
    let d3 = Uuid::from_u128(0xd003);
    let terminal = stream::channel("terminal");
    vec![
        /* 1 */ (stream::identity("alice"), linked("alice", "terminal:alice")),
        /* 2 */ (stream::BINDINGS.into(), binding_set("b1", "pi", None, 0)),
        /* 3 */ (terminal.clone(), channel_started("terminal", 4242)),
        /* 4 */ (s1.clone(), started("s1", "alice", "pi")),
        /* 5 */
        (
            s1.clone(),
            inbound(
                "terminal",
                "m1",
                "terminal:alice",
                "hi, what's the date?",
                "main",
            ),
        ),
        /* 6 */ (s1.clone(), turn_started(t1, "main", 5)),
        /* 7 */ (s1.clone(), llm_requested(t1)),
        /* 8 */ (s1.clone(), llm_responded(t1, "", Some("shell"))),
        /* 9 */ (s1.clone(), tool_called(t1, "c1", "shell")),
        /* 10 */ (s1.clone(), tool_returned(t1, "c1", "Tue", 0)),
        /* 11 */ (s1.clone(), llm_responded(t1, "It is Tuesday.", None)),
        /* 12 */ (s1.clone(), turn_finished(t1, 2)),
        /* 13 */
        (
            s1.clone(),
            sent(
                d1,
                "terminal",
                "terminal:alice",
                "It is Tuesday.",
                "main",
                Some(5),
            ),
        ),
        /* 14 */ (terminal.clone(), acked("terminal", d1)),
        /* 15 */ (s2.clone(), started("s2", "bob", "pi")),
        /* 16 */
        (
            s2.clone(),
            inbound("terminal", "m2", "terminal:bob", "hello", "main"),
        ),
        /* 17 */
        (
            s1.clone(),
            inbound("terminal", "m3", "terminal:alice", "and tomorrow?", "main"),
        ),
        /* 18 */
        (
            s1.clone(),
            sent(
                d2,
                "terminal",
                "terminal:alice",
                "Wednesday.",
                "main",
                Some(17),
            ),
        ),
        /* 19 */ (s1.clone(), branch_created("alt", Some(13), true)),
        /* 20 */
        (
            s1.clone(),
            inbound(
                "terminal",
                "m4",
                "terminal:alice",
                "actually, in French?",
                "alt",
            ),
        ),
        /* 21 */
        (
            s2.clone(),
            sent(d3, "terminal", "terminal:bob", "hi bob", "main", Some(16)),
        ),
        /* 22 */ (s1.clone(), compacted("main", 17, "alice asked for dates")),
        /* 23 */ (s1.clone(), branch_switched("main")),
        /* 24 */
        (
            s1.clone(),
            inbound("terminal", "m5", "terminal:alice", "back on main", "main"),
        ),
        /* 25 */ (s2.clone(), branch_created("empty", None, false)),
        /* 26 */ (s2.clone(), turn_started(t2, "main", 16)),
        /* 27 */ (s2.clone(), turn_failed(t2, "provider timed out")),
        /* 28 */ (stream::BINDINGS.into(), binding_removed("b1")),
        /* 29 */ (terminal, channel_exited("terminal", None, Some(9))),
        /* 30 */ (stream::identity("bob"), linked("bob", "terminal:bob")),
        /* -- */
        (
            s1.clone(),
            inbound("terminal", "m1", "terminal:alice", "resent", "main"),
        ),
        /* 31 */
        (
            s2.clone(),
            inbound("terminal", "m6", "terminal:bob", "still there?", "main"),
        ),
        /* 32 */
        (
            s2.clone(),
            NewEvent::new(clawos_events::CronScheduled {
                job_id: Uuid::from_u128(0xc001),
                session_id: "s2".into(),
                schedule: "every 1h".into(),
                prompt: "check in".into(),
            }),
        ),
        /* 33 */
        (
            s2.clone(),
            NewEvent::new(clawos_events::CronFired {
                job_id: Uuid::from_u128(0xc001),
                due_at_ms: 3_600_000,
                prompt: "check in".into(),
            }),
        ),
        /* 34 */
        (
            s2.clone(),
            NewEvent::new(clawos_events::CronCancelled {
                job_id: Uuid::from_u128(0xc001),
            }),
        ),
        /* 35 */
        (
            stream::MEMORY.into(),
            NewEvent::new(clawos_events::MemoryWritten {
                memory_id: Uuid::from_u128(0xa001),
                identity: Some("bob".into()),
                agent: Some("pi".into()),
                text: "likes tea".into(),
                tags: vec!["drinks".into()],
                source_seq: Some(31),
            }),
        ),
        /* 36 */
        (
            stream::MEMORY.into(),
            NewEvent::new(clawos_events::MemoryWritten {
                memory_id: Uuid::from_u128(0xa002),
                identity: Some("bob".into()),
                agent: None,
                text: "forget me".into(),
                tags: vec![],
                source_seq: None,
            }),
        ),
        /* 37 */
        (
            stream::MEMORY.into(),
            NewEvent::new(clawos_events::MemoryForgotten {
                memory_id: Uuid::from_u128(0xa002),
            }),
        ),
        /* 38 */
        (
            stream::PAIRING.into(),
            pairing_requested("terminal", "terminal:carol", "hash-c"),
        ),
        /* 39 */
        (
            stream::PAIRING.into(),
            pairing_requested("webhook", "webhook:dave", "hash-d"),
        ),
        /* 40 */
        (
            stream::PAIRING.into(),
            pairing_approved("terminal", "terminal:carol"),
        ),
        /* 41 */
        (
            stream::APPROVALS.into(),
            approval_requested(0xb001, "s2", t2, "shell: ls"),
        ),
        /* 42 */
        (
            stream::APPROVALS.into(),
            approval_answered(0xb001, true, "cli"),
        ),
        /* 43 */ (stream::DEVICES.into(), device_requested(0xd1, "phone")),
        /* 44 */
        (
            stream::DEVICES.into(),
            NewEvent::new(clawos_events::DevicePairingResolved {
                request_id: Uuid::from_u128(0xd1),
                device_id: "phone".into(),
                approved: true,
                by: "cli".into(),
            }),
        ),
        /* 45 */
        (
            stream::DEVICES.into(),
            NewEvent::new(clawos_events::DeviceTokenIssued {
                device_id: "phone".into(),
                role: "operator".into(),
                scopes: vec!["operator.read".into()],
                generation: 1,
            }),
        ),
        /* 46 */ (stream::DEVICES.into(), device_requested(0xd2, "laptop")),
        /* 47 */
        (
            stream::DEVICES.into(),
            NewEvent::new(clawos_events::DeviceSetupCodeIssued {
                code_hash: "h1".into(),
                expires_at_ms: 99_000,
            }),
        ),
        /* 48 */
        (
            stream::DEVICES.into(),
            NewEvent::new(clawos_events::DeviceSetupCodeUsed {
                code_hash: "h1".into(),
                device_id: "laptop".into(),
            }),
        ),
        /* 49 */
        (
            s1.clone(),
            NewEvent::new(clawos_events::CanvasPresented {
                turn_id: t1,
                agent: "pi".into(),
                kind: "markdown".into(),
                title: Some("plan".into()),
                content: "- one".into(),
            }),
        ),
        /* 50 */
        (
            s2.clone(),
            NewEvent::new(clawos_events::CanvasPresented {
                turn_id: t2,
                agent: "pi".into(),
                kind: "html".into(),
                title: None,
                content: "<b>hi</b>".into(),
            }),
        ),
        /* 51 */
        (
            s2.clone(),
            NewEvent::new(clawos_events::CanvasCleared {
                turn_id: t2,
                agent: "pi".into(),
            }),
        ),
        /* 52 */
        (
            stream::agent_process("pi"),
            NewEvent::new(clawos_events::AgentStarted {
                agent: "pi".into(),
                pid: 4242,
                protocol: 1,
                encoding: "bincode".into(),
            }),
        ),
        /* 53 */
        (
            stream::agent_process("pi"),
            NewEvent::new(clawos_events::AgentExited {
                agent: "pi".into(),
                code: None,
                signal: Some(9),
                reason: "killed by signal 9".into(),
            }),
        ),
    ]
}

fn device_requested(id: u128, device: &str) -> NewEvent {
    NewEvent::new(clawos_events::DevicePairingRequested {
        request_id: Uuid::from_u128(id),
        device_id: device.into(),
        public_key: "key".into(),
        role: "operator".into(),
        scopes: vec!["operator.read".into()],
        client: "cli/cli".into(),
        platform: "linux".into(),
        display_name: device.into(),
        remote: "127.0.0.1".into(),
    })
}

fn pairing_requested(channel: &str, address: &str, code_hash: &str) -> NewEvent {
    NewEvent::new(clawos_events::PairingRequested {
        channel: channel.into(),
        address: address.into(),
        code_hash: code_hash.into(),
        expires_at_ms: 99_000,
    })
}

fn pairing_approved(channel: &str, address: &str) -> NewEvent {
    NewEvent::new(clawos_events::PairingApproved {
        channel: channel.into(),
        address: address.into(),
    })
}

fn approval_requested(id: u128, session: &str, turn: Uuid, action: &str) -> NewEvent {
    NewEvent::new(clawos_events::ApprovalRequested {
        approval_id: Uuid::from_u128(id),
        session_id: session.into(),
        turn_id: turn,
        action: action.into(),
    })
}

fn approval_answered(id: u128, approved: bool, by: &str) -> NewEvent {
    NewEvent::new(clawos_events::ApprovalAnswered {
        approval_id: Uuid::from_u128(id),
        approved,
        by: by.into(),
    })
}

/// Rows of `table` whose `column` equals `value`.
fn filtered(t: &Tables, table: &str, column: usize, value: &str) -> BTreeMap<Row, Row> {
    t.get(table)
        .map(|rows| {
            rows.iter()
                .filter(|(_, r)| r[column] == Value::Text(value.into()))
                .map(|(k, r)| (k.clone(), r.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_at_n_equals_the_live_tables_when_n_was_applied() {
    let home = Home::new();
    let store = open_log(&home.log()).await;
    let pool = open_projections(&home.projections()).await;
    let mut runner = Runner::open(pool.clone(), projection::all()).await.unwrap();

    // Live dumps after each event, indexed by seq (index 0: the empty state).
    let mut live: Vec<Tables> = vec![Tables::new()];
    for (s, e) in conversation() {
        let a = store.append_one(&s, e).await.unwrap();
        if a.duplicate {
            continue; // the resent m1: nothing appended, nothing to record
        }
        assert_eq!(a.first_seq, live.len() as u64);
        let c = runner.catch_up(&store, |_| {}).await.unwrap();
        assert_eq!(c.position, a.first_seq);
        live.push(dump_all(&pool).await);
    }
    let head = store.head();
    assert_eq!(head, 53);
    assert_eq!(live.len() as u64, head + 1);
    // The conversation did build something in every table.
    for t in all_tables() {
        assert!(
            live.iter().any(|d| d.contains_key(t.name)),
            "{} stayed empty",
            t.name
        );
    }

    let session_tables = [
        (SESSIONS.name, 0),
        (BRANCHES.name, 0),
        (MESSAGES.name, 1),
        (COMPACTIONS.name, 1),
        ("deliveries", 3),
        ("audit_turns", 1),
        ("audit_steps", 2),
    ];
    for n in 0..=head {
        let at = state_at::state_at(&store, n, None).await.unwrap();
        assert_eq!(at.seq, n);
        assert_eq!(
            non_empty(&at.tables),
            live[n as usize],
            "state-at({n}) differs"
        );
        for session in ["s1", "s2"] {
            let at = state_at::state_at(&store, n, Some(session)).await.unwrap();
            let mine = non_empty(&at.tables);
            for (table, column) in session_tables {
                assert_eq!(
                    mine.get(table).cloned().unwrap_or_default(),
                    filtered(&live[n as usize], table, column, session),
                    "state-at({n}, {session}): table {table} differs"
                );
            }
            // Views render the same from both.
            let live_tables = MemoryTables {
                tables: live[n as usize].clone(),
            };
            for b in views::branches(&at.tables, session) {
                assert_eq!(
                    views::transcript(&at.tables, session, &b.name),
                    views::transcript(&live_tables, session, &b.name)
                );
            }
        }
    }
    assert!(matches!(
        state_at::state_at(&store, head + 1, None).await,
        Err(ReplayError::BeyondHead { .. })
    ));

    // Spot checks of what the history means.
    let at = state_at::state_at(&store, 20, Some("s1")).await.unwrap();
    let alt: Vec<u64> = views::transcript(&at.tables, "s1", "alt")
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(alt, [5, 13, 20]);
    let main: Vec<u64> = views::transcript(&at.tables, "s1", "main")
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(main, [5, 13, 17, 18]);
    assert_eq!(views::sessions(&at.tables)[0].active_branch, "alt");
    let now = state_at::state_at(&store, head, Some("s1")).await.unwrap();
    assert_eq!(views::sessions(&now.tables)[0].active_branch, "main");
    assert_eq!(
        views::compactions(&now.tables, "s1", "main")[0].covers_through,
        17
    );

    // The CLI prints the same snapshot as the live tables rendered through the views.
    for n in [5u64, 19, 24, head] {
        let (ok, out, err) = run_clawos(
            home.path(),
            &[
                "replay",
                "state-at",
                "--seq",
                &n.to_string(),
                "--session",
                "s1",
                "--json",
            ],
        );
        assert!(ok, "{err}");
        let cli: serde_json::Value = serde_json::from_str(&out).unwrap();
        let live_s1 = MemoryTables {
            tables: session_tables[..4]
                .iter()
                .map(|(t, c)| (t.to_string(), filtered(&live[n as usize], t, *c, "s1")))
                .collect(),
        };
        let expected = serde_json::to_value(state_at::snapshot(&live_s1)).unwrap();
        assert_eq!(cli, expected, "CLI state-at {n}");
    }
    store.close().await;
}

// ---- invariant 10: fork -------------------------------------------------------------------

async fn transcript_seqs(store: &LogStore, session: &str, branch: &str) -> Vec<u64> {
    let at = state_at::state_at(store, store.head(), Some(session))
        .await
        .unwrap();
    views::transcript(&at.tables, session, branch)
        .iter()
        .map(|m| m.seq)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_branches_at_a_message_without_touching_history() {
    let home = Home::new();
    let store = open_log(&home.log()).await;
    let s1 = stream::session("s1");
    store
        .append_one(&s1, started("s1", "alice", "pi"))
        .await
        .unwrap();
    let mut main = Vec::new();
    for i in 0..6 {
        let e = if i % 2 == 0 {
            inbound(
                "terminal",
                &format!("m{i}"),
                "terminal:alice",
                &format!("q{i}"),
                "main",
            )
        } else {
            sent(
                Uuid::from_u128(i),
                "terminal",
                "terminal:alice",
                &format!("a{i}"),
                "main",
                None,
            )
        };
        main.push(store.append_one(&s1, e).await.unwrap().first_seq);
        // Another session interleaves.
        if i == 2 {
            store
                .append_one("session:s2", started("s2", "bob", "pi"))
                .await
                .unwrap();
            store
                .append_one(
                    "session:s2",
                    inbound("terminal", "b1", "terminal:bob", "hey", "main"),
                )
                .await
                .unwrap();
        }
    }
    let before_head = store.head();
    let mut conn = raw_conn(&home.log()).await;
    let before = raw_events(&mut conn).await;
    assert_eq!(transcript_seqs(&store, "s1", "main").await, main);

    // Fork at the third message of main.
    let at = main[2];
    let (a, name) = fork::fork(&store, "s1", at, None, false).await.unwrap();
    assert_eq!(name, format!("fork-{at}"));
    assert_eq!(a.first_seq, before_head + 1);
    let e = store.get(a.first_seq).await.unwrap().unwrap();
    assert_eq!(e.stream, s1);
    assert_eq!(
        e.decode().unwrap(),
        EventPayload::BranchCreated(clawos_events::BranchCreated {
            branch: name.clone(),
            at_message: Some(at),
            switch_to: false
        })
    );
    assert_eq!(transcript_seqs(&store, "s1", &name).await, main[..3]);

    // New messages on the fork diverge; main is unchanged.
    let f1 = store
        .append_one(
            &s1,
            inbound("terminal", "f1", "terminal:alice", "other way", &name),
        )
        .await
        .unwrap()
        .first_seq;
    let f2 = store
        .append_one(
            &s1,
            sent(
                Uuid::from_u128(99),
                "terminal",
                "terminal:alice",
                "ok",
                &name,
                Some(f1),
            ),
        )
        .await
        .unwrap()
        .first_seq;
    let mut forked = main[..3].to_vec();
    forked.extend([f1, f2]);
    assert_eq!(transcript_seqs(&store, "s1", &name).await, forked);
    assert_eq!(transcript_seqs(&store, "s1", "main").await, main);
    // A message after the fork on main still extends main, not the fork.
    let m7 = store
        .append_one(
            &s1,
            inbound("terminal", "m7", "terminal:alice", "main again", "main"),
        )
        .await
        .unwrap()
        .first_seq;
    let mut main2 = main.clone();
    main2.push(m7);
    assert_eq!(transcript_seqs(&store, "s1", "main").await, main2);
    assert_eq!(transcript_seqs(&store, "s1", &name).await, forked);

    // History before the fork is byte-for-byte the same.
    let after = raw_events(&mut conn).await;
    assert_eq!(after[..before.len()], before[..]);

    // Errors: not a message, a message of another session, a taken name, no session.
    let start_seq = 1;
    assert!(matches!(
        fork::fork(&store, "s1", start_seq, Some("nope"), false).await,
        Err(ReplayError::NotAMessage { seq: 1, .. })
    ));
    assert!(matches!(
        fork::fork(&store, "s1", a.first_seq, Some("nope"), false).await,
        Err(ReplayError::NotAMessage { .. })
    ));
    let bobs_message = store
        .read_stream("session:s2", u64::MAX)
        .await
        .unwrap()
        .iter()
        .find(|e| e.kind == "MessageReceived")
        .unwrap()
        .seq;
    assert!(matches!(
        fork::fork(&store, "s1", bobs_message, Some("nope"), false).await,
        Err(ReplayError::NotAMessage { .. })
    ));
    assert!(matches!(
        fork::fork(&store, "s1", main[0], Some(&name), false).await,
        Err(ReplayError::BranchExists { .. })
    ));
    assert!(matches!(
        fork::fork(&store, "s1", main[0], Some("main"), false).await,
        Err(ReplayError::BranchExists { .. })
    ));
    assert!(matches!(
        fork::fork(&store, "nobody", 2, None, false).await,
        Err(ReplayError::NoSuchSession(_))
    ));
    // A branch that exists because messages were written on it (no BranchCreated) is taken
    // too: a BranchCreated for it would be ignored by the projection, and the "fork" would
    // silently continue the old branch.
    let side = store
        .append_one(
            &s1,
            inbound("terminal", "s1", "terminal:alice", "aside", "side"),
        )
        .await
        .unwrap()
        .first_seq;
    assert!(matches!(
        fork::fork(&store, "s1", main[1], Some("side"), false).await,
        Err(ReplayError::BranchExists { .. })
    ));
    assert_eq!(transcript_seqs(&store, "s1", "side").await, [side]);
    let head = store.head();
    store.close().await;

    // The CLI on the same file: fork with switch, export, state-at.
    let dir = home.path();
    let (ok, out, err) = run_clawos(
        dir,
        &[
            "replay",
            "fork",
            "--session",
            "s1",
            "--at",
            &main[4].to_string(),
            "--name",
            "cli",
            "--switch",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("branch `cli` created"), "{out}");
    assert!(out.contains(&format!("event seq {}", head + 1)), "{out}");
    let (ok, _, err) = run_clawos(
        dir,
        &[
            "replay",
            "fork",
            "--session",
            "s1",
            "--at",
            &main[1].to_string(),
            "--name",
            "cli",
        ],
    );
    assert!(!ok, "a taken name must fail");
    assert!(err.contains("already has a branch named `cli`"), "{err}");
    let (ok, _, err) = run_clawos(dir, &["replay", "fork", "--session", "s1", "--at", "1"]);
    assert!(!ok);
    assert!(err.contains("not a message"), "{err}");

    let (ok, out, err) = run_clawos(dir, &["replay", "export", "--session", "s1"]);
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    let store = open_log(&home.log()).await;
    let stream_events = store.read_stream(&s1, u64::MAX).await.unwrap();
    assert_eq!(lines.len(), stream_events.len());
    for (l, e) in lines.iter().zip(&stream_events) {
        assert!(l.is_object());
        assert_eq!(l["seq"], e.seq);
        assert_eq!(l["kind"], e.kind.as_str());
        assert_eq!(l["stream"], "session:s1");
        assert_eq!(l["stream_version"], e.stream_version);
        assert_eq!(l["hash"], serde_json::json!(hex(&e.hash)));
        assert!(l.get("decode_error").is_none());
        let decoded = serde_json::to_value(e.decode().unwrap()).unwrap();
        assert_eq!(l["payload"], decoded["payload"]);
    }
    let last = lines.last().unwrap();
    assert_eq!(last["kind"], "BranchCreated");
    assert_eq!(last["payload"]["branch"], "cli");
    assert_eq!(last["payload"]["switch_to"], true);

    let (ok, out, err) = run_clawos(
        dir,
        &[
            "replay",
            "state-at",
            "--seq",
            &(head + 1).to_string(),
            "--session",
            "s1",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let snap: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sessions = snap.as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["session"]["session_id"], "s1");
    assert_eq!(sessions[0]["session"]["active_branch"], "cli");
    let cli_branch = sessions[0]["branches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["branch"]["name"] == "cli")
        .expect("cli branch");
    let seqs: Vec<u64> = cli_branch["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, main[..5]);
    assert_eq!(cli_branch["branch"]["fork_seq"], main[4]);
    // Before the fork existed there is no such branch.
    let (ok, out, _) = run_clawos(
        dir,
        &[
            "replay",
            "state-at",
            "--seq",
            &head.to_string(),
            "--session",
            "s1",
            "--json",
        ],
    );
    assert!(ok);
    assert!(!out.contains("\"cli\""), "{out}");
    let (ok, _, err) = run_clawos(dir, &["replay", "state-at", "--seq", "9999", "--json"]);
    assert!(!ok);
    assert!(err.contains("beyond the end of the log"), "{err}");
    store.close().await;
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
