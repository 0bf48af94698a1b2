//! Given/when/then tests of every read model, folded in memory by `MemoryRunner` (no
//! SQLite): given these events, then these rows, and then this view.
//!
//! Row cases are data: a name, the events (stream + payload; seqs are their positions
//! from 1, times are seq * 1000 ms), and the exact rows expected in one table. View cases
//! fold the same way and compare a view's output.

use clawos_events::*;
use clawos_projections::views::{self, RoutingSeed};
use clawos_projections::{projection, row, MemoryRunner, MemoryTables, Row};
use uuid::Uuid;

// ---- the harness -------------------------------------------------------------------------

/// One event of a history: its stream and payload.
type Given = (String, EventPayload);

/// A recorded event at `seq` (ids and hashes are placeholders: projections ignore them).
fn recorded(seq: u64, stream: &str, payload: &EventPayload) -> RecordedEvent {
    let version = 1; // projections never read the stream version
    RecordedEvent {
        seq,
        id: Uuid::from_u128(seq as u128),
        stream: stream.to_string(),
        stream_version: version,
        ts_ms: seq as i64 * 1000,
        kind: payload.kind().to_string(),
        schema_version: payload.schema_version(),
        causation_id: None,
        correlation_id: None,
        dedupe_key: None,
        payload: payload.encode().expect("encodable payload"),
        hash: [0; 32],
    }
}

/// Fold a history through every projection, in memory.
fn fold(given: &[Given]) -> MemoryTables {
    let mut runner = MemoryRunner::new(projection::all());
    for (i, (stream, payload)) in given.iter().enumerate() {
        runner
            .apply(&recorded(i as u64 + 1, stream, payload))
            .expect("every test event decodes");
    }
    runner.tables
}

/// A row case: given `given`, then table `table` holds exactly `rows` (in key order).
struct Case {
    name: &'static str,
    given: Vec<Given>,
    table: &'static str,
    rows: Vec<Row>,
}

fn check(cases: Vec<Case>) {
    for c in cases {
        let t = fold(&c.given);
        assert_eq!(
            t.rows(c.table),
            c.rows,
            "case `{}`: rows of `{}`",
            c.name,
            c.table
        );
    }
}

fn on(stream: impl Into<String>, payload: impl Into<EventPayload>) -> Given {
    (stream.into(), payload.into())
}

fn null() -> clawos_projections::Value {
    clawos_projections::Value::Null
}

// ---- event builders ------------------------------------------------------------------------

fn s(id: &str) -> String {
    stream::session(id)
}

fn start(session: &str, identity: &str, agent: &str) -> Given {
    on(
        s(session),
        SessionStarted {
            session_id: session.into(),
            identity: identity.into(),
            agent: agent.into(),
        },
    )
}

fn receive(session: &str, channel: &str, sender: &str, text: &str, branch: &str) -> Given {
    on(
        s(session),
        MessageReceived {
            channel: channel.into(),
            external_id: format!("ext-{text}"),
            sender: sender.into(),
            chat: None,
            text: text.into(),
            attachments: vec![],
            branch: branch.into(),
            sent_at_ms: 0,
            addressed: true,
        },
    )
}

fn send(session: &str, delivery: u128, channel: &str, to: &str, text: &str, branch: &str) -> Given {
    on(
        s(session),
        MessageSent {
            delivery_id: Uuid::from_u128(delivery),
            agent: "pi".into(),
            branch: branch.into(),
            channel: channel.into(),
            to: to.into(),
            chat: None,
            text: text.into(),
            in_reply_to: None,
            reply_key: None,
            attachments: vec![],
        },
    )
}

fn ack(channel: &str, delivery: u128) -> Given {
    on(
        stream::channel(channel),
        DeliveryAcked {
            channel: channel.into(),
            delivery_id: Uuid::from_u128(delivery),
        },
    )
}

fn link(identity: &str, address: &str) -> Given {
    on(
        stream::identity(identity),
        IdentityLinked {
            identity: identity.into(),
            address: address.into(),
        },
    )
}

fn bind(id: &str, agent: &str, scope: BindingScope, priority: i32) -> Given {
    on(
        stream::BINDINGS,
        BindingSet {
            binding_id: id.into(),
            agent: agent.into(),
            scope,
            priority,
        },
    )
}

fn unbind(id: &str) -> Given {
    on(
        stream::BINDINGS,
        BindingRemoved {
            binding_id: id.into(),
        },
    )
}

fn channel_up(channel: &str, pid: u32) -> Given {
    on(
        stream::channel(channel),
        ChannelStarted {
            channel: channel.into(),
            kind: "webhook".into(),
            pid,
        },
    )
}

fn channel_link(channel: &str, up: bool, detail: &str) -> Given {
    on(
        stream::channel(channel),
        ChannelLinkChanged {
            channel: channel.into(),
            up,
            detail: detail.into(),
        },
    )
}

fn channel_down(channel: &str, code: Option<i32>, signal: Option<i32>) -> Given {
    on(
        stream::channel(channel),
        ChannelExited {
            channel: channel.into(),
            code,
            signal,
            reason: "gone".into(),
        },
    )
}

fn turn(n: u128) -> Uuid {
    Uuid::from_u128(0x7000 + n)
}

fn turn_start(session: &str, n: u128, trigger: u64) -> Given {
    on(
        s(session),
        AgentTurnStarted {
            turn_id: turn(n),
            agent: "pi".into(),
            branch: "main".into(),
            trigger_seq: trigger,
        },
    )
}

fn tool_call(session: &str, n: u128) -> Given {
    on(
        s(session),
        ToolCalled {
            turn_id: turn(n),
            call_id: "c1".into(),
            tool: "shell".into(),
            arguments: "{}".into(),
        },
    )
}

fn turn_done(session: &str, n: u128) -> Given {
    on(
        s(session),
        AgentTurnFinished {
            turn_id: turn(n),
            steps: 1,
        },
    )
}

fn turn_failed(session: &str, n: u128) -> Given {
    on(
        s(session),
        AgentTurnFailed {
            turn_id: turn(n),
            reason: "timed out".into(),
        },
    )
}

fn job(n: u128) -> Uuid {
    Uuid::from_u128(0xc000 + n)
}

fn cron_add(session: &str, n: u128, schedule: &str) -> Given {
    on(
        s(session),
        CronScheduled {
            job_id: job(n),
            session_id: session.into(),
            schedule: schedule.into(),
            prompt: format!("prompt {n}"),
        },
    )
}

fn cron_fire(session: &str, n: u128, due: i64) -> Given {
    on(
        s(session),
        CronFired {
            job_id: job(n),
            due_at_ms: due,
            prompt: format!("prompt {n}"),
        },
    )
}

fn cron_rm(session: &str, n: u128) -> Given {
    on(s(session), CronCancelled { job_id: job(n) })
}

fn mem(n: u128) -> Uuid {
    Uuid::from_u128(0xe000 + n)
}

fn remember(n: u128, identity: Option<&str>, text: &str, tags: &[&str]) -> Given {
    on(
        stream::MEMORY,
        MemoryWritten {
            memory_id: mem(n),
            identity: identity.map(String::from),
            agent: Some("pi".into()),
            text: text.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            source_seq: Some(1),
        },
    )
}

fn forget(n: u128) -> Given {
    on(stream::MEMORY, MemoryForgotten { memory_id: mem(n) })
}

fn pair_request(channel: &str, address: &str, code: &str, expires: i64) -> Given {
    on(
        stream::PAIRING,
        PairingRequested {
            channel: channel.into(),
            address: address.into(),
            code_hash: code.into(),
            expires_at_ms: expires,
        },
    )
}

fn pair_approve(channel: &str, address: &str) -> Given {
    on(
        stream::PAIRING,
        PairingApproved {
            channel: channel.into(),
            address: address.into(),
        },
    )
}

fn approval(n: u128) -> Uuid {
    Uuid::from_u128(0xa000 + n)
}

fn ask(n: u128, session: &str, action: &str) -> Given {
    on(
        stream::APPROVALS,
        ApprovalRequested {
            approval_id: approval(n),
            session_id: session.into(),
            turn_id: turn(n),
            action: action.into(),
        },
    )
}

fn answer(n: u128, approved: bool, by: &str) -> Given {
    on(
        stream::APPROVALS,
        ApprovalAnswered {
            approval_id: approval(n),
            approved,
            by: by.into(),
        },
    )
}

fn scope() -> BindingScope {
    BindingScope::default()
}

// ---- identities --------------------------------------------------------------------------

#[test]
fn identities_rows() {
    check(vec![
        Case {
            name: "a link maps the address to the identity",
            given: vec![link("alice", "irc:alice@libera")],
            table: "identity_addresses",
            rows: vec![row!["irc:alice@libera", "alice", 1i64]],
        },
        Case {
            name: "relinking an address moves it (last link wins)",
            given: vec![
                link("alice", "irc:a@libera"),
                link("bob", "terminal:b@local"),
                link("bob", "irc:a@libera"),
            ],
            table: "identity_addresses",
            rows: vec![
                row!["irc:a@libera", "bob", 3i64],
                row!["terminal:b@local", "bob", 2i64],
            ],
        },
    ]);
}

#[test]
fn identities_views() {
    let t = fold(&[link("zed", "b@x"), link("amy", "c@x"), link("amy", "a@x")]);
    let all: Vec<(String, String)> = views::identities_in(&t)
        .into_iter()
        .map(|i| (i.address, i.identity))
        .collect();
    assert_eq!(
        all,
        [("a@x", "amy"), ("b@x", "zed"), ("c@x", "amy")]
            .map(|(a, i)| (a.to_string(), i.to_string()))
    );
}

// ---- sessions ------------------------------------------------------------------------------

#[test]
fn sessions_rows() {
    let conversation = vec![
        start("s1", "alice", "pi"),                              // 1
        receive("s1", "irc", "irc:alice", "hi", "main"),         // 2
        send("s1", 1, "irc", "irc:alice", "hello", "main"),      // 3
        send("s1", 2, "irc", "irc:alice", "/status answer", ""), // 4: a command's answer
        on(
            s("s1"),
            BranchCreated {
                // 5
                branch: "alt".into(),
                at_message: Some(2),
                switch_to: true,
            },
        ),
        receive("s1", "irc", "irc:alice", "other", "alt"), // 6
    ];
    check(vec![
        Case {
            name: "a session starts on main with an empty branch",
            given: vec![start("s1", "alice", "pi")],
            table: "branches",
            rows: vec![row!["s1", "main", null(), null(), 1i64]],
        },
        Case {
            name: "a second SessionStarted for the same id changes nothing",
            given: vec![start("s1", "alice", "pi"), start("s1", "bob", "coder")],
            table: "sessions",
            rows: vec![row!["s1", "alice", "pi", "main", 1i64, 1i64, 0i64]],
        },
        Case {
            name: "messages chain by parent; command answers stay out; a fork branches",
            given: conversation.clone(),
            table: "messages",
            rows: vec![
                row![
                    2i64,
                    "s1",
                    "main",
                    null(),
                    "user",
                    "irc",
                    "irc:alice",
                    "hi",
                    2000i64
                ],
                row![
                    3i64,
                    "s1",
                    "main",
                    2i64,
                    "assistant",
                    "irc",
                    "irc:alice",
                    "hello",
                    3000i64
                ],
                row![
                    6i64,
                    "s1",
                    "alt",
                    2i64,
                    "user",
                    "irc",
                    "irc:alice",
                    "other",
                    6000i64
                ],
            ],
        },
        Case {
            name: "the session row counts messages and follows the switch",
            given: conversation.clone(),
            table: "sessions",
            rows: vec![row!["s1", "alice", "pi", "alt", 1i64, 6i64, 3i64]],
        },
        Case {
            name: "branch heads and fork points",
            given: conversation,
            table: "branches",
            rows: vec![
                row!["s1", "alt", 6i64, 2i64, 5i64],
                row!["s1", "main", 3i64, null(), 1i64],
            ],
        },
        Case {
            name: "a message of a session that never started is dropped",
            given: vec![receive("nope", "irc", "irc:x", "lost", "main")],
            table: "messages",
            rows: vec![],
        },
        Case {
            name: "switching to an unknown branch changes nothing",
            given: vec![
                start("s1", "alice", "pi"),
                on(
                    s("s1"),
                    BranchSwitched {
                        branch: "ghost".into(),
                    },
                ),
            ],
            table: "sessions",
            rows: vec![row!["s1", "alice", "pi", "main", 1i64, 1i64, 0i64]],
        },
        Case {
            name: "cron fires and hooks are user messages from @ channels on the active branch",
            given: vec![
                start("s1", "alice", "pi"),
                cron_add("s1", 1, "every 1h"),
                cron_fire("s1", 1, 5000),
                on(
                    s("s1"),
                    HookReceived {
                        hook: "ci".into(),
                        session_id: Some("s1".into()),
                        text: "build failed".into(),
                    },
                ),
            ],
            table: "messages",
            rows: vec![
                row![
                    3i64,
                    "s1",
                    "main",
                    null(),
                    "user",
                    "@cron",
                    format!("cron:{}", job(1)),
                    "prompt 1",
                    3000i64
                ],
                row![
                    4i64,
                    "s1",
                    "main",
                    3i64,
                    "user",
                    "@hooks",
                    "hook:ci",
                    "build failed",
                    4000i64
                ],
            ],
        },
        Case {
            name: "a compaction is a marker",
            given: vec![
                start("s1", "alice", "pi"),
                receive("s1", "irc", "irc:alice", "hi", "main"),
                on(
                    s("s1"),
                    SessionCompacted {
                        branch: "main".into(),
                        covers_through: 2,
                        summary: "said hi".into(),
                        model: "m".into(),
                    },
                ),
            ],
            table: "compactions",
            rows: vec![row![3i64, "s1", "main", 2i64, "said hi", "m"]],
        },
    ]);
}

#[test]
fn sessions_views() {
    let t = fold(&[
        start("s1", "alice", "pi"),                       // 1
        receive("s1", "irc", "irc:alice", "one", "main"), // 2
        send("s1", 1, "irc", "irc:alice", "two", "main"), // 3
        on(
            s("s1"),
            SessionCompacted {
                // 4
                branch: "main".into(),
                covers_through: 3,
                summary: "first".into(),
                model: "m".into(),
            },
        ),
        cron_add("s1", 1, "every 1h"), // 5
        cron_fire("s1", 1, 9),         // 6: last user message, @cron
        on(
            s("s1"),
            SessionCompacted {
                // 7: covers a message not in the context below
                branch: "alt".into(),
                covers_through: 99,
                summary: "elsewhere".into(),
                model: "m".into(),
            },
        ),
    ]);
    let seqs: Vec<u64> = views::transcript(&t, "s1", "main")
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(seqs, [2, 3, 6]);
    assert_eq!(
        views::session_owner_in(&t, "s1"),
        Some(("alice".into(), "pi".into()))
    );
    assert_eq!(views::session_owner_in(&t, "s2"), None);
    assert_eq!(views::message_branch_in(&t, 3).as_deref(), Some("main"));
    assert_eq!(
        views::message_branch_in(&t, 4),
        None,
        "a compaction is no message"
    );
    assert_eq!(
        views::last_user_route_in(&t, "s1"),
        Some(("irc".into(), "irc:alice".into())),
        "the @cron message is not where the person writes from"
    );
    assert_eq!(
        views::latest_compaction_in(&t, "s1", &[2, 3, 6]),
        Some((3, "first".into()))
    );
    assert_eq!(views::latest_compaction_in(&t, "s1", &[2]), None);
    assert_eq!(views::message_count_in(&t, "s1"), 3);
    let (session, m) = views::message_in(&t, 2).expect("message 2");
    assert_eq!(
        (session.as_str(), m.role.as_str(), m.text.as_str()),
        ("s1", "user", "one")
    );
}

// ---- bindings --------------------------------------------------------------------------------

#[test]
fn bindings_rows() {
    let full = BindingScope {
        identity: Some("alice".into()),
        chat: Some("#home".into()),
        channel: Some("irc".into()),
        sender_domain: Some("libera".into()),
        body_regex: Some("^code".into()),
    };
    check(vec![
        Case {
            name: "a binding's scope fills its columns",
            given: vec![bind("b1", "coder", full, -3)],
            table: "bindings",
            rows: vec![row![
                "b1", "coder", "alice", "#home", "irc", "libera", "^code", -3i64, 1i64
            ]],
        },
        Case {
            name: "setting an id again replaces it; removing deletes it",
            given: vec![
                bind("b1", "pi", scope(), 0),
                bind("b2", "pi", scope(), 0),
                bind("b1", "coder", scope(), 5),
                unbind("b2"),
            ],
            table: "bindings",
            rows: vec![row![
                "b1",
                "coder",
                null(),
                null(),
                null(),
                null(),
                null(),
                5i64,
                3i64
            ]],
        },
        Case {
            name: "removing an unknown binding changes nothing",
            given: vec![unbind("nope")],
            table: "bindings",
            rows: vec![],
        },
    ]);
}

#[test]
fn bindings_view_gives_back_what_was_set() {
    let set = BindingSet {
        binding_id: "b1".into(),
        agent: "coder".into(),
        scope: BindingScope {
            chat: Some("#work".into()),
            ..scope()
        },
        priority: 7,
    };
    let t = fold(&[
        on(stream::BINDINGS, set.clone()),
        bind("b0", "pi", scope(), 0),
    ]);
    let all = views::bindings_in(&t);
    assert_eq!(all.len(), 2);
    assert_eq!(all[1], set);
}

// ---- channels --------------------------------------------------------------------------------

#[test]
fn channels_rows() {
    check(vec![
        Case {
            name: "a start is up with its pid",
            given: vec![channel_up("hooks", 42)],
            table: "channels",
            rows: vec![row![
                "hooks",
                "webhook",
                "up",
                42i64,
                1i64,
                0i64,
                null(),
                1i64,
                null()
            ]],
        },
        Case {
            name: "an exit by code is down with how it ended",
            given: vec![
                channel_up("hooks", 42),
                channel_down("hooks", Some(3), None),
            ],
            table: "channels",
            rows: vec![row![
                "hooks",
                "webhook",
                "down",
                null(),
                1i64,
                1i64,
                "exit code 3: gone",
                2i64,
                null()
            ]],
        },
        Case {
            name: "an exit by signal, then a restart",
            given: vec![
                channel_up("hooks", 42),
                channel_down("hooks", None, Some(9)),
                channel_up("hooks", 43),
            ],
            table: "channels",
            rows: vec![row![
                "hooks",
                "webhook",
                "up",
                43i64,
                2i64,
                1i64,
                "signal 9: gone",
                3i64,
                null()
            ]],
        },
        Case {
            name: "the link to the service is the last one reported",
            given: vec![
                channel_up("hooks", 42),
                channel_link("hooks", false, "authentication refused: bad password"),
                channel_link("hooks", true, "connected"),
            ],
            table: "channels",
            rows: vec![row![
                "hooks",
                "webhook",
                "up",
                42i64,
                1i64,
                0i64,
                null(),
                3i64,
                "up: connected"
            ]],
        },
    ]);
}

#[test]
fn channel_status_view() {
    let t = fold(&[
        channel_up("b", 1),
        channel_down("b", None, None),
        channel_up("b", 2),
        channel_up("a", 5),
    ]);
    let v = views::channel_status_in(&t);
    assert_eq!(v.len(), 2);
    assert_eq!(
        (v[0].channel.as_str(), v[0].restarts, v[0].pid),
        ("a", 0, Some(5))
    );
    assert_eq!(
        (
            v[1].channel.as_str(),
            v[1].restarts,
            v[1].starts,
            v[1].exits
        ),
        ("b", 1, 2, 1)
    );
    assert_eq!(v[1].last_exit.as_deref(), Some("unknown status: gone"));
    let json = serde_json::to_value(&v[1]).expect("json");
    for field in [
        "channel",
        "kind",
        "state",
        "pid",
        "starts",
        "exits",
        "restarts",
        "last_exit",
    ] {
        assert!(json.get(field).is_some(), "{field} in {json}");
    }
}

// ---- deliveries ------------------------------------------------------------------------------

#[test]
fn deliveries_rows() {
    check(vec![
        Case {
            name: "every reply is a delivery, command answers included",
            given: vec![
                start("s1", "a", "pi"),
                send("s1", 1, "irc", "irc:a", "x", "main"),
                send("s1", 2, "irc", "irc:a", "y", ""),
            ],
            table: "deliveries",
            rows: vec![
                row![
                    Uuid::from_u128(1).to_string(),
                    "irc",
                    2i64,
                    "s1",
                    "irc:a",
                    null()
                ],
                row![
                    Uuid::from_u128(2).to_string(),
                    "irc",
                    3i64,
                    "s1",
                    "irc:a",
                    null()
                ],
            ],
        },
        Case {
            name: "an ack is recorded even for an unknown delivery",
            given: vec![ack("irc", 9)],
            table: "delivery_acks",
            rows: vec![row![Uuid::from_u128(9).to_string(), "irc", 1i64]],
        },
    ]);
}

#[test]
fn deliveries_views() {
    let t = fold(&[
        start("s1", "a", "pi"),                     // 1
        send("s1", 1, "irc", "irc:a", "x", "main"), // 2
        send("s1", 2, "web", "web:a", "y", "main"), // 3
        send("s1", 3, "irc", "irc:a", "z", "main"), // 4
        ack("irc", 1),
        ack("irc", 77),
    ]);
    assert_eq!(views::pending_deliveries_in(&t, "irc"), [4]);
    assert_eq!(views::pending_deliveries_in(&t, "web"), [3]);
    assert_eq!(views::pending_deliveries_in(&t, "none"), Vec::<u64>::new());
    assert_eq!(views::delivery_backlog_in(&t), 2);
    let by: Vec<(String, u64)> = views::pending_by_channel_in(&t).into_iter().collect();
    assert_eq!(by, [("irc".to_string(), 1), ("web".to_string(), 1)]);
}

// ---- audit and recovery ---------------------------------------------------------------------

#[test]
fn audit_rows() {
    check(vec![
        Case {
            name: "a started turn is running",
            given: vec![turn_start("s1", 1, 7)],
            table: "audit_turns",
            rows: vec![row![
                turn(1).to_string(),
                "s1",
                "pi",
                "main",
                7i64,
                1i64,
                null(),
                "running",
                null()
            ]],
        },
        Case {
            name: "finished and failed turns",
            given: vec![
                turn_start("s1", 1, 7),
                turn_start("s1", 2, 8),
                turn_done("s1", 1),
                turn_failed("s1", 2),
                turn_done("s1", 3),
            ],
            table: "audit_turns",
            rows: vec![
                row![
                    turn(1).to_string(),
                    "s1",
                    "pi",
                    "main",
                    7i64,
                    1i64,
                    3i64,
                    "finished",
                    null()
                ],
                row![
                    turn(2).to_string(),
                    "s1",
                    "pi",
                    "main",
                    8i64,
                    2i64,
                    4i64,
                    "failed",
                    "timed out"
                ],
            ],
        },
    ]);
}

#[test]
fn audit_steps_are_recorded_by_seq_also_of_turns_never_started() {
    let t = fold(&[
        turn_start("s1", 1, 7),
        tool_call("s1", 1),
        tool_call("s1", 5),
    ]);
    let steps = t.rows("audit_steps");
    let head: Vec<Row> = steps.iter().map(|r| r[..4].to_vec()).collect();
    assert_eq!(
        head,
        [
            row![2i64, turn(1).to_string(), "s1", "ToolCalled"],
            row![3i64, turn(5).to_string(), "s1", "ToolCalled"],
        ]
    );
    let clawos_projections::Value::Text(detail) = &steps[0][4] else {
        panic!("detail is JSON text: {:?}", steps[0][4]);
    };
    let detail: serde_json::Value = serde_json::from_str(detail).expect("JSON");
    assert_eq!(
        detail,
        serde_json::json!({"tool": "shell", "call_id": "c1", "arguments": "{}"})
    );
}

#[test]
fn audit_and_recovery_views() {
    let t = fold(&[
        start("s1", "alice", "pi"),                     // 1
        receive("s1", "irc", "irc:alice", "a", "main"), // 2: answered (finished)
        turn_start("s1", 1, 2),                         // 3
        tool_call("s1", 1),                             // 4
        turn_done("s1", 1),                             // 5
        receive("s1", "irc", "irc:alice", "b", "main"), // 6: turn still running -> unanswered
        turn_start("s1", 2, 6),                         // 7
        receive("s1", "irc", "irc:alice", "c", "main"), // 8: failed turn -> answered
        turn_start("s1", 3, 8),                         // 9
        turn_failed("s1", 3),                           // 10
        receive("s1", "irc", "irc:alice", "d", "main"), // 11: no turn -> unanswered
        send("s1", 1, "irc", "irc:alice", "e", "main"), // 12: assistant, never "unanswered"
        receive("s1", "irc", "irc:alice", "f", "main"), // 13: after up_to
        turn_start("s1", 4, 11),                        // 14: started after up_to, answers 11
    ]);
    let audit = views::audit_session_in(&t, "s1");
    assert_eq!(audit.len(), 4);
    assert_eq!(audit[0].status, "finished");
    assert_eq!(audit[0].steps.len(), 1);
    assert_eq!(audit[0].steps[0].detail["tool"], "shell");
    assert_eq!(audit[2].detail.as_deref(), Some("timed out"));
    assert!(views::audit_session_in(&t, "s2").is_empty());

    let up_to = 12;
    assert_eq!(
        views::unanswered_messages_in(&t, up_to),
        [(6, "s1".to_string(), "pi".to_string())],
        "11 is answered by a turn of the new process"
    );
    assert_eq!(
        views::unanswered_messages_in(&t, 13),
        [
            (6, "s1".to_string(), "pi".to_string()),
            (13, "s1".to_string(), "pi".to_string())
        ],
        "13 has no turn; 11's turn started after up_to"
    );
    assert_eq!(
        views::running_turns_in(&t, up_to),
        [(turn(2).to_string(), "s1".to_string())],
        "the turn started at 14 is the new process's own"
    );
    assert_eq!(views::running_turns_in(&t, 20).len(), 2);
}

// ---- cron ----------------------------------------------------------------------------------

#[test]
fn cron_rows() {
    check(vec![
        Case {
            name: "scheduling records when",
            given: vec![cron_add("s1", 1, "every 30m")],
            table: "cron_jobs",
            rows: vec![row![
                job(1).to_string(),
                "s1",
                "every 30m",
                "prompt 1",
                1000i64,
                null(),
                0i64,
                0i64
            ]],
        },
        Case {
            name: "fires count and keep the last due time; cancelling marks it",
            given: vec![
                cron_add("s1", 1, "every 30m"),
                cron_fire("s1", 1, 111),
                cron_fire("s1", 1, 222),
                cron_rm("s1", 1),
            ],
            table: "cron_jobs",
            rows: vec![row![
                job(1).to_string(),
                "s1",
                "every 30m",
                "prompt 1",
                1000i64,
                222i64,
                2i64,
                1i64
            ]],
        },
        Case {
            name: "fires and cancels of unknown jobs change nothing",
            given: vec![cron_fire("s1", 4, 1), cron_rm("s1", 4)],
            table: "cron_jobs",
            rows: vec![],
        },
    ]);
}

#[test]
fn cron_views() {
    let t = fold(&[
        cron_add("s1", 1, "every 1h"),
        cron_add("s2", 2, "every 2h"),
        cron_add("s1", 3, "every 3h"),
        cron_rm("s1", 3),
        cron_fire("s2", 2, 50),
    ]);
    let ids = |v: Vec<views::CronJobView>| v.into_iter().map(|j| j.job_id).collect::<Vec<_>>();
    assert_eq!(
        ids(views::cron_jobs_in(&t)),
        [job(1), job(2), job(3)].map(|j| j.to_string())
    );
    assert_eq!(
        ids(views::active_cron_jobs_in(&t)),
        [job(1), job(2)].map(|j| j.to_string())
    );
    assert_eq!(
        ids(views::session_cron_jobs_in(&t, "s1")),
        [job(1).to_string()]
    );
    let two = views::cron_job_in(&t, job(2)).expect("job 2");
    assert_eq!(
        (two.fired, two.last_due_ms, two.cancelled),
        (1, Some(50), false)
    );
    assert!(views::cron_job_in(&t, job(3)).is_some_and(|j| j.cancelled));
    assert!(views::cron_job_in(&t, job(9)).is_none());
}

// ---- memories ------------------------------------------------------------------------------

#[test]
fn memories_rows() {
    check(vec![
        Case {
            name: "a memory with its tags as JSON",
            given: vec![remember(1, Some("alice"), "likes tea", &["food", "drink"])],
            table: "memories",
            rows: vec![row![
                mem(1).to_string(),
                "alice",
                "pi",
                "likes tea",
                r#"["food","drink"]"#,
                1i64,
                1i64
            ]],
        },
        Case {
            name: "forgetting deletes the row",
            given: vec![
                remember(1, Some("alice"), "likes tea", &[]),
                remember(2, None, "office closes at 6", &[]),
                forget(1),
            ],
            table: "memories",
            rows: vec![row![
                mem(2).to_string(),
                null(),
                "pi",
                "office closes at 6",
                "[]",
                1i64,
                2i64
            ]],
        },
    ]);
}

#[test]
fn memories_views() {
    let t = fold(&[
        remember(1, Some("alice"), "one", &["x"]),
        remember(2, Some("bob"), "two", &[]),
        remember(3, Some("alice"), "three", &[]),
        remember(4, None, "four", &[]),
        forget(3),
    ]);
    let texts = |v: Vec<views::MemoryView>| v.into_iter().map(|m| m.text).collect::<Vec<_>>();
    assert_eq!(texts(views::memories_in(&t, None)), ["four", "two", "one"]);
    assert_eq!(texts(views::memories_in(&t, Some("alice"))), ["one"]);
    let one = views::memory_in(&t, mem(1)).expect("memory 1");
    assert_eq!(one.tags, ["x"]);
    assert_eq!(one.identity.as_deref(), Some("alice"));
    assert!(views::memory_in(&t, mem(3)).is_none());
}

// ---- pairing ---------------------------------------------------------------------------------

#[test]
fn pairing_rows() {
    check(vec![
        Case {
            name: "a request holds the code's hash and expiry",
            given: vec![pair_request("hooks", "eve", "h1", 5000)],
            table: "pairing_requests",
            rows: vec![row!["hooks", "eve", "h1", 5000i64, 1i64]],
        },
        Case {
            name: "a new code for the same sender replaces the old one",
            given: vec![
                pair_request("hooks", "eve", "h1", 5000),
                pair_request("hooks", "mal", "h2", 5000),
                pair_request("hooks", "eve", "h3", 9000),
            ],
            table: "pairing_requests",
            rows: vec![
                row!["hooks", "eve", "h3", 9000i64, 3i64],
                row!["hooks", "mal", "h2", 5000i64, 2i64],
            ],
        },
        Case {
            name: "approval deletes the request",
            given: vec![
                pair_request("hooks", "eve", "h1", 5000),
                pair_request("irc", "eve", "h2", 5000),
                pair_approve("hooks", "eve"),
            ],
            table: "pairing_requests",
            rows: vec![row!["irc", "eve", "h2", 5000i64, 2i64]],
        },
        Case {
            name: "approval admits the sender; the first approval is kept",
            given: vec![
                pair_request("hooks", "eve", "h1", 5000),
                pair_approve("hooks", "eve"),
                pair_approve("hooks", "eve"),
            ],
            table: "paired",
            rows: vec![row!["hooks", "eve", 2i64]],
        },
        Case {
            name: "a paired sender's later request is not pending",
            given: vec![
                pair_approve("hooks", "eve"),
                pair_request("hooks", "eve", "h9", 5000),
            ],
            table: "pairing_requests",
            rows: vec![],
        },
    ]);
}

#[test]
fn pairing_views_and_routing_seed() {
    let t = fold(&[
        link("alice", "irc:alice"),               // 1
        bind("b1", "coder", scope(), 1),          // 2
        start("s2", "bob", "pi"),                 // 3
        start("s1", "alice", "pi"),               // 4
        pair_request("hooks", "eve", "h1", 5000), // 5
        pair_request("hooks", "mal", "h2", 7000), // 6
        pair_approve("hooks", "eve"),             // 7
        on(
            s("s2"),
            BranchSwitched {
                branch: "main".into(),
            },
        ),
    ]);
    let pending = views::pairing_requests_in(&t);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].address, "mal");
    assert!(pending[0].is_live(6999) && !pending[0].is_live(7000));
    assert_eq!(
        views::pairing_request_by_code_in(&t, "h2").map(|r| r.requested_seq),
        Some(6)
    );
    assert_eq!(
        views::pairing_request_by_code_in(&t, "h1"),
        None,
        "approved"
    );
    assert!(views::is_paired_in(&t, "hooks", "eve"));
    assert!(!views::is_paired_in(&t, "hooks", "mal"));
    assert_eq!(views::paired_in(&t)[0].approved_seq, 7);

    let seed = RoutingSeed::from_tables(&t);
    assert_eq!(
        seed.identities,
        [("irc:alice".to_string(), "alice".to_string())]
    );
    assert_eq!(seed.bindings.len(), 1);
    assert_eq!(seed.bindings[0].agent, "coder");
    let order: Vec<&str> = seed
        .sessions
        .iter()
        .map(|s| s.session_id.as_str())
        .collect();
    assert_eq!(order, ["s2", "s1"], "by started_seq, not by id");
    assert_eq!(seed.sessions[1].identity, "alice");
    assert_eq!(seed.sessions[1].active_branch, "main");
    assert_eq!(seed.paired, [("hooks".to_string(), "eve".to_string())]);
    assert_eq!(seed.pairing_requests, pending);
    assert_eq!(
        RoutingSeed::from_tables(&MemoryTables::default()),
        RoutingSeed::default()
    );
}

// ---- approvals -------------------------------------------------------------------------------

#[test]
fn approvals_rows() {
    let id = |n| approval(n).to_string();
    let t1 = turn(1).to_string();
    check(vec![
        Case {
            name: "a request is pending",
            given: vec![ask(1, "s1", "shell: ls")],
            table: "approvals",
            rows: vec![row![
                id(1),
                "s1",
                t1.clone(),
                "shell: ls",
                1i64,
                null(),
                null(),
                null()
            ]],
        },
        Case {
            name: "the first answer wins",
            given: vec![
                ask(1, "s1", "shell: ls"),
                answer(1, true, "cli"),
                answer(1, false, "timeout"),
            ],
            table: "approvals",
            rows: vec![row![
                id(1),
                "s1",
                t1.clone(),
                "shell: ls",
                1i64,
                2i64,
                1i64,
                "cli"
            ]],
        },
        Case {
            name: "a refusal",
            given: vec![ask(1, "s1", "shell: rm"), answer(1, false, "timeout")],
            table: "approvals",
            rows: vec![row![
                id(1),
                "s1",
                t1.clone(),
                "shell: rm",
                1i64,
                2i64,
                0i64,
                "timeout"
            ]],
        },
        Case {
            name: "an answer to nothing, and a repeated request, change nothing",
            given: vec![
                answer(2, true, "cli"),
                ask(1, "s1", "shell: ls"),
                ask(1, "s9", "shell: other"),
            ],
            table: "approvals",
            rows: vec![row![
                id(1),
                "s1",
                t1,
                "shell: ls",
                2i64,
                null(),
                null(),
                null()
            ]],
        },
    ]);
}

#[test]
fn approvals_views() {
    let t = fold(&[
        ask(2, "s1", "shell: b"),
        ask(1, "s1", "shell: a"),
        answer(2, false, "cli"),
        ask(3, "s2", "shell: c"),
    ]);
    let ids = |v: Vec<views::ApprovalView>| v.into_iter().map(|a| a.action).collect::<Vec<_>>();
    assert_eq!(
        ids(views::approvals_in(&t, false)),
        ["shell: b", "shell: a", "shell: c"]
    );
    assert_eq!(ids(views::approvals_in(&t, true)), ["shell: a", "shell: c"]);
    let two = views::approval_in(&t, approval(2)).expect("approval 2");
    assert_eq!(
        (two.is_pending(), two.approved, two.answered_by.as_deref()),
        (false, Some(false), Some("cli"))
    );
    assert!(views::approval_in(&t, approval(1)).is_some_and(|a| a.is_pending()));
    assert_eq!(views::approval_in(&t, approval(9)), None);
}
