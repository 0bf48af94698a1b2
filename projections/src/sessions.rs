//! Sessions, their branch trees, the messages in them and compaction markers.
//!
//! Every message gets a parent: the head of its branch when it arrived. A branch is a
//! named head; `BranchCreated` at a message starts a new head there without copying
//! anything, so the messages form a tree. `SessionCompacted` only adds a marker: the
//! messages it covers stay where they are.

use std::collections::BTreeMap;

use clawos_events::{EventPayload, RecordedEvent};
use serde::{Deserialize, Serialize};

use crate::changes::Changes;
use crate::fold::{decode_state, Projection};
use crate::value::Table;
use crate::{row, ProjectionError};

/// The branch every session starts on.
pub const MAIN_BRANCH: &str = "main";

/// `sessions(session_id, identity, agent, active_branch, started_seq, last_seq, messages)`.
pub const SESSIONS: Table = Table {
    name: "sessions",
    columns: &[
        "session_id",
        "identity",
        "agent",
        "active_branch",
        "started_seq",
        "last_seq",
        "messages",
    ],
    key_len: 1,
};

/// `branches(session_id, name, head_seq, fork_seq, created_seq)`.
pub const BRANCHES: Table = Table {
    name: "branches",
    columns: &["session_id", "name", "head_seq", "fork_seq", "created_seq"],
    key_len: 2,
};

/// `messages(seq, session_id, branch, parent_seq, role, channel, address, text, ts_ms)`.
pub const MESSAGES: Table = Table {
    name: "messages",
    columns: &[
        "seq",
        "session_id",
        "branch",
        "parent_seq",
        "role",
        "channel",
        "address",
        "text",
        "ts_ms",
    ],
    key_len: 1,
};

/// `compactions(seq, session_id, branch, covers_through, summary, model)`.
pub const COMPACTIONS: Table = Table {
    name: "compactions",
    columns: &[
        "seq",
        "session_id",
        "branch",
        "covers_through",
        "summary",
        "model",
    ],
    key_len: 1,
};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct BranchState {
    head: Option<u64>,
    fork: Option<u64>,
    created: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SessionState {
    identity: String,
    agent: String,
    active: String,
    started: u64,
    last: u64,
    messages: u64,
    branches: BTreeMap<String, BranchState>,
}

/// The sessions projection. Its state is every session with its branch heads: what it needs
/// to give the next message its parent.
#[derive(Default)]
pub struct Sessions {
    sessions: BTreeMap<String, SessionState>,
}

impl Sessions {
    fn write_session(id: &str, s: &SessionState, out: &mut Changes) {
        out.upsert(
            &SESSIONS,
            row![
                id,
                &s.identity,
                &s.agent,
                &s.active,
                s.started,
                s.last,
                s.messages
            ],
        );
    }

    fn write_branch(id: &str, name: &str, b: &BranchState, out: &mut Changes) {
        out.upsert(&BRANCHES, row![id, name, b.head, b.fork, b.created]);
    }

    #[allow(clippy::too_many_arguments)]
    fn add_message(
        &mut self,
        event: &RecordedEvent,
        id: &str,
        branch: &str,
        role: &str,
        channel: &str,
        address: &str,
        text: &str,
        out: &mut Changes,
    ) {
        let Some(s) = self.sessions.get_mut(id) else {
            tracing::warn!(
                seq = event.seq,
                session = id,
                "message for a session that never started"
            );
            return;
        };
        let b = s
            .branches
            .entry(branch.to_string())
            .or_insert_with(|| BranchState {
                head: None,
                fork: None,
                created: event.seq,
            });
        let parent = b.head;
        b.head = Some(event.seq);
        out.upsert(
            &MESSAGES,
            row![
                event.seq,
                id,
                branch,
                parent,
                role,
                channel,
                address,
                text,
                event.ts_ms
            ],
        );
        Self::write_branch(id, branch, b, out);
        s.last = event.seq;
        s.messages += 1;
        Self::write_session(id, s, out);
    }
}

impl Projection for Sessions {
    fn name(&self) -> &'static str {
        "sessions"
    }
    fn tables(&self) -> &'static [&'static Table] {
        &[&SESSIONS, &BRANCHES, &MESSAGES, &COMPACTIONS]
    }
    fn wants(&self, kind: &str) -> bool {
        matches!(
            kind,
            "SessionStarted"
                | "MessageReceived"
                | "MessageSent"
                | "BranchCreated"
                | "BranchSwitched"
                | "SessionCompacted"
                | "HookReceived"
                | "CronFired"
                | "SessionClosed"
        )
    }
    fn apply(&mut self, event: &RecordedEvent, payload: &EventPayload, out: &mut Changes) {
        let Some(id) = event.session_id() else {
            return;
        };
        match payload {
            EventPayload::SessionStarted(s) => {
                if self.sessions.contains_key(id) {
                    return;
                }
                let mut state = SessionState {
                    identity: s.identity.clone(),
                    agent: s.agent.clone(),
                    active: MAIN_BRANCH.to_string(),
                    started: event.seq,
                    last: event.seq,
                    messages: 0,
                    branches: BTreeMap::new(),
                };
                let main = BranchState {
                    head: None,
                    fork: None,
                    created: event.seq,
                };
                Self::write_branch(id, MAIN_BRANCH, &main, out);
                state.branches.insert(MAIN_BRANCH.to_string(), main);
                Self::write_session(id, &state, out);
                self.sessions.insert(id.to_string(), state);
            }
            // A closed session leaves the list; its branches and messages stay readable.
            EventPayload::SessionClosed(_) if self.sessions.remove(id).is_some() => {
                out.delete(&SESSIONS, row![id]);
            }
            EventPayload::MessageReceived(m) => self.add_message(
                event,
                id,
                &m.branch,
                if m.addressed { "user" } else { "context" },
                &m.channel,
                &m.sender,
                &m.text,
                out,
            ),
            EventPayload::CronFired(f) => {
                let Some(branch) = self.sessions.get(id).map(|s| s.active.clone()) else {
                    return;
                };
                let address = format!("cron:{}", f.job_id);
                self.add_message(
                    event, id, &branch, "user", "@cron", &address, &f.prompt, out,
                );
            }
            EventPayload::HookReceived(h) => {
                let Some(branch) = self.sessions.get(id).map(|s| s.active.clone()) else {
                    return;
                };
                let address = format!("hook:{}", h.hook);
                self.add_message(event, id, &branch, "user", "@hooks", &address, &h.text, out);
            }
            // Replies to chat commands carry no branch: they are not conversation.
            EventPayload::MessageSent(m) if m.branch.is_empty() => {}
            EventPayload::MessageSent(m) => self.add_message(
                event,
                id,
                &m.branch,
                "assistant",
                &m.channel,
                &m.to,
                &m.text,
                out,
            ),
            EventPayload::BranchCreated(b) => {
                let Some(s) = self.sessions.get_mut(id) else {
                    return;
                };
                if s.branches.contains_key(&b.branch) {
                    return;
                }
                let state = BranchState {
                    head: b.at_message,
                    fork: b.at_message,
                    created: event.seq,
                };
                Self::write_branch(id, &b.branch, &state, out);
                s.branches.insert(b.branch.clone(), state);
                if b.switch_to {
                    s.active = b.branch.clone();
                }
                s.last = event.seq;
                Self::write_session(id, s, out);
            }
            EventPayload::BranchSwitched(b) => {
                let Some(s) = self.sessions.get_mut(id) else {
                    return;
                };
                if s.branches.contains_key(&b.branch) {
                    s.active = b.branch.clone();
                    s.last = event.seq;
                    Self::write_session(id, s, out);
                }
            }
            EventPayload::SessionCompacted(c) => {
                if !self.sessions.contains_key(id) {
                    return;
                }
                out.upsert(
                    &COMPACTIONS,
                    row![
                        event.seq,
                        id,
                        &c.branch,
                        c.covers_through,
                        &c.summary,
                        &c.model
                    ],
                );
            }
            _ => {}
        }
    }
    /// The state is exactly the `sessions` and `branches` rows: nothing to save.
    fn save_state(&self) -> Vec<u8> {
        Vec::new()
    }
    fn load_state(&mut self, bytes: &[u8]) -> Result<(), ProjectionError> {
        self.sessions = decode_state(self.name(), bytes)?;
        Ok(())
    }
    fn state_tables(&self) -> &'static [&'static Table] {
        &[&SESSIONS, &BRANCHES]
    }
    fn restore(&mut self, rows: &crate::MemoryTables) -> Result<(), ProjectionError> {
        use crate::Value;
        let int = |r: &[Value], i: usize| match r.get(i) {
            Some(Value::Int(v)) => Some(*v as u64),
            _ => None,
        };
        let text = |r: &[Value], i: usize| match r.get(i) {
            Some(Value::Text(t)) => t.clone(),
            _ => String::new(),
        };
        self.sessions.clear();
        for r in rows.rows(SESSIONS.name) {
            self.sessions.insert(
                text(&r, 0),
                SessionState {
                    identity: text(&r, 1),
                    agent: text(&r, 2),
                    active: text(&r, 3),
                    started: int(&r, 4).unwrap_or(0),
                    last: int(&r, 5).unwrap_or(0),
                    messages: int(&r, 6).unwrap_or(0),
                    branches: BTreeMap::new(),
                },
            );
        }
        for r in rows.rows(BRANCHES.name) {
            if let Some(s) = self.sessions.get_mut(&text(&r, 0)) {
                s.branches.insert(
                    text(&r, 1),
                    BranchState {
                        head: int(&r, 2),
                        fork: int(&r, 3),
                        created: int(&r, 4).unwrap_or(0),
                    },
                );
            }
        }
        Ok(())
    }
}
