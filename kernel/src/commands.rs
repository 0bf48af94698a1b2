//! Chat commands, understood in every channel: `/help`, `/status`, `/branches`,
//! `/branch NAME`, `/switch NAME`, `/fork SEQ`, `/compact`. A command is recorded as
//! `CommandReceived`, runs in its session's queue (after the turns before it), and its
//! effects (`BranchCreated`, `BranchSwitched`, `SessionCompacted`) and its answer commit
//! together. Commands and their answers never enter the message tree.

use clawos_agents::{Agent, ContextMessage};
use clawos_events::{BranchCreated, BranchSwitched, EventPayload, NewEvent, SessionCompacted};
use clawos_projections::{views, MemoryTables};
use sqlx::SqlitePool;

use crate::KernelError;

/// The commands with a one-line description each.
pub const COMMANDS: &[(&str, &str)] = &[
    ("/help", "this list"),
    ("/status", "session, agent, branch and message count"),
    ("/branches", "the branches of this session (* is active)"),
    (
        "/branch NAME",
        "start branch NAME at the last message and switch to it",
    ),
    ("/switch NAME", "continue on branch NAME"),
    (
        "/fork SEQ",
        "start a branch at message SEQ and switch to it",
    ),
    (
        "/compact",
        "summarise this branch so far; later turns see the summary instead",
    ),
];

/// Whether a message is a chat command (its first word is one of [`COMMANDS`]).
pub fn is_command(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or("");
    COMMANDS
        .iter()
        .any(|(c, _)| c.split_whitespace().next() == Some(first))
}

/// What running a command produced: events to append with the answer, and the answer.
#[derive(Debug)]
pub struct Outcome {
    /// Effects (may be empty).
    pub events: Vec<NewEvent>,
    /// Text for the sender.
    pub answer: String,
}

fn answer(text: impl Into<String>) -> Result<Outcome, KernelError> {
    Ok(Outcome {
        events: vec![],
        answer: text.into(),
    })
}

/// Whether `name` is a valid branch name: 1-64 ASCII letters, digits, `-`, `_` or `.`.
pub fn valid_branch_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What a command decided from the session's rows, before any I/O.
#[derive(Debug)]
pub enum Decided {
    /// The outcome, complete: events (maybe none) and the answer.
    Done(Outcome),
    /// `/compact`: summarise `branch` up to message `head` (the summary needs the history
    /// and maybe an LLM, which [`run`] brings).
    Compact {
        /// The branch compacted.
        branch: String,
        /// Its last message.
        head: u64,
    },
}

fn done(text: impl Into<String>) -> Decided {
    Decided::Done(Outcome {
        events: vec![],
        answer: text.into(),
    })
}

/// Decide what `text` does in `session`, from the session's rows alone (a pure function:
/// given/when/then tests fold events with `MemoryRunner` and call it).
pub fn decide(session: &str, text: &str, tables: &MemoryTables) -> Decided {
    let Some(s) = views::sessions(tables)
        .into_iter()
        .find(|s| s.session_id == session)
    else {
        return done(format!("no session {session}"));
    };
    let branches = views::branches(tables, session);
    let active = branches.iter().find(|b| b.name == s.active_branch);
    let head = active.and_then(|b| b.head_seq);
    let mut words = text.split_whitespace();
    let cmd = words.next().unwrap_or("");
    let arg = words.next();
    match (cmd, arg) {
        ("/help", _) => done(
            COMMANDS
                .iter()
                .map(|(c, d)| format!("{c:<14} {d}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        ("/status", _) => done(format!(
            "session {} with agent {}, branch {} ({} branches), {} messages, last message {}",
            s.session_id,
            s.agent,
            s.active_branch,
            branches.len(),
            s.messages,
            head.map(|h| h.to_string()).unwrap_or_else(|| "none".into())
        )),
        ("/branches", _) => done(
            branches
                .iter()
                .map(|b| {
                    format!(
                        "{} {} (head {}{})",
                        if b.name == s.active_branch { "*" } else { " " },
                        b.name,
                        b.head_seq
                            .map(|h| h.to_string())
                            .unwrap_or_else(|| "none".into()),
                        b.fork_seq
                            .map(|f| format!(", forked at {f}"))
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        ("/branch", Some(name)) => {
            if !valid_branch_name(name) {
                return done("a branch name is 1-64 letters, digits, `-`, `_` or `.`");
            }
            if branches.iter().any(|b| b.name == name) {
                return done(format!(
                    "branch {name} exists; `/switch {name}` to continue on it"
                ));
            }
            Decided::Done(Outcome {
                events: vec![NewEvent::new(BranchCreated {
                    branch: name.to_string(),
                    at_message: head,
                    switch_to: true,
                })],
                answer: format!(
                    "now on new branch {name}, starting from message {}",
                    head.map(|h| h.to_string()).unwrap_or_else(|| "none".into())
                ),
            })
        }
        ("/switch", Some(name)) => {
            if !branches.iter().any(|b| b.name == name) {
                return done(format!("no branch {name}; `/branches` lists them"));
            }
            Decided::Done(Outcome {
                events: vec![NewEvent::new(BranchSwitched {
                    branch: name.to_string(),
                })],
                answer: format!("now on branch {name}"),
            })
        }
        ("/fork", Some(seq)) => {
            let Ok(seq) = seq.parse::<u64>() else {
                return done("usage: /fork SEQ (a message number; `/status` shows the last)");
            };
            let is_message =
                views::message_in(tables, seq).is_some_and(|(owner, _)| owner == session);
            if !is_message {
                return done(format!("{seq} is not a message of this session"));
            }
            let name = format!("fork-{seq}");
            if branches.iter().any(|b| b.name == name) {
                return done(format!(
                    "branch {name} exists; `/switch {name}` to continue on it"
                ));
            }
            Decided::Done(Outcome {
                events: vec![NewEvent::new(BranchCreated {
                    branch: name.clone(),
                    at_message: Some(seq),
                    switch_to: true,
                })],
                answer: format!("now on new branch {name}, forked at message {seq}"),
            })
        }
        ("/compact", _) => match head {
            None => done("nothing to compact yet"),
            Some(head) => Decided::Compact {
                branch: s.active_branch.clone(),
                head,
            },
        },
        (c, None) => done(format!("{c} needs an argument; `/help` lists the commands")),
        _ => done("unknown command; `/help` lists the commands"),
    }
}

/// Run `text` for `session` (the read models have applied the command's seq): decide from
/// the session's rows, then, for `/compact`, read the history and summarise it.
pub async fn run(
    pool: &SqlitePool,
    session: &str,
    text: &str,
    agent: Option<&dyn Agent>,
) -> Result<Outcome, KernelError> {
    let tables = views::load_session(pool, session).await?;
    let (branch, head) = match decide(session, text, &tables) {
        Decided::Done(outcome) => return Ok(outcome),
        Decided::Compact { branch, head } => (branch, head),
    };
    let history: Vec<ContextMessage> = views::ancestors(pool, head, u32::MAX)
        .await?
        .into_iter()
        .map(|m| ContextMessage {
            role: m.role,
            text: m.text,
        })
        .collect();
    if history.len() < 2 {
        return answer("nothing to compact yet");
    }
    let summary = match agent {
        Some(a) => match a.summarize(&history).await {
            Ok(s) => s,
            Err(e) => return answer(format!("compaction failed: {e}")),
        },
        None => clawos_agents::extractive_summary(&history),
    };
    Ok(Outcome {
        events: vec![NewEvent::new(SessionCompacted {
            branch: branch.clone(),
            covers_through: head,
            summary: summary.text.clone(),
            model: summary.model,
        })],
        answer: format!(
            "compacted {} messages of branch {branch}; the original messages stay in the log",
            history.len(),
        ),
    })
}

/// Whether an event is a chat command.
pub fn command_of(payload: &EventPayload) -> Option<&str> {
    match payload {
        EventPayload::CommandReceived(c) => Some(&c.text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_recognised_by_their_first_word_only() {
        assert!(is_command("/branch idea"));
        assert!(is_command("/help"));
        assert!(is_command("  /compact"));
        assert!(!is_command("/etc/hosts is broken"));
        assert!(!is_command("please /branch"));
        assert!(!is_command(""));
    }

    // ---- given these events, when this command, then these events and this answer ----

    use clawos_events::{MessageReceived, RecordedEvent, SessionStarted};
    use clawos_projections::{projection, MemoryRunner};

    fn given(events: Vec<EventPayload>) -> MemoryTables {
        let mut runner = MemoryRunner::new(projection::all());
        for (i, p) in events.iter().enumerate() {
            let e = RecordedEvent::detached(i as u64 + 1, "session:s1", p).unwrap();
            runner.apply(&e).unwrap();
        }
        runner.tables
    }

    fn a_session_with_two_messages() -> MemoryTables {
        let message = |text: &str| -> EventPayload {
            MessageReceived {
                channel: "terminal".into(),
                external_id: text.into(),
                sender: "terminal:ann".into(),
                chat: None,
                text: text.into(),
                attachments: vec![],
                branch: "main".into(),
                sent_at_ms: 0,
                addressed: true,
            }
            .into()
        };
        given(vec![
            SessionStarted {
                session_id: "s1".into(),
                identity: "terminal:ann".into(),
                agent: "pi".into(),
            }
            .into(),
            message("one"),
            message("two"),
        ])
    }

    fn events_and_answer(d: Decided) -> (Vec<EventPayload>, String) {
        match d {
            Decided::Done(o) => (o.events.into_iter().map(|e| e.payload).collect(), o.answer),
            Decided::Compact { .. } => panic!("not a complete outcome: {d:?}"),
        }
    }

    #[test]
    fn branch_starts_at_the_head_and_switches_once() {
        let t = a_session_with_two_messages();
        let (events, answer) = events_and_answer(decide("s1", "/branch idea", &t));
        assert_eq!(
            events,
            vec![EventPayload::BranchCreated(BranchCreated {
                branch: "idea".into(),
                at_message: Some(3),
                switch_to: true
            })]
        );
        assert!(answer.contains("starting from message 3"), "{answer}");
        let (events, answer) = events_and_answer(decide("s1", "/branch main", &t));
        assert!(events.is_empty());
        assert!(answer.contains("exists"), "{answer}");
        let (events, _) = events_and_answer(decide("s1", "/branch no/slashes", &t));
        assert!(events.is_empty());
    }

    #[test]
    fn switch_and_fork_need_what_they_name() {
        let t = a_session_with_two_messages();
        let (events, answer) = events_and_answer(decide("s1", "/switch idea", &t));
        assert!(
            events.is_empty() && answer.contains("no branch idea"),
            "{answer}"
        );
        let (events, _) = events_and_answer(decide("s1", "/switch main", &t));
        assert_eq!(
            events,
            vec![EventPayload::BranchSwitched(BranchSwitched {
                branch: "main".into()
            })]
        );
        let (events, answer) = events_and_answer(decide("s1", "/fork 1", &t));
        assert!(
            events.is_empty() && answer.contains("not a message"),
            "{answer}"
        );
        let (events, _) = events_and_answer(decide("s1", "/fork 2", &t));
        assert!(
            matches!(&events[..], [EventPayload::BranchCreated(b)] if b.branch == "fork-2" && b.at_message == Some(2))
        );
    }

    #[test]
    fn compact_asks_for_a_summary_of_the_active_branch_and_status_reads_rows() {
        let t = a_session_with_two_messages();
        assert!(matches!(
            decide("s1", "/compact", &t),
            Decided::Compact { ref branch, head: 3 } if branch == "main"
        ));
        let (_, status) = events_and_answer(decide("s1", "/status", &t));
        assert!(
            status.contains("2 messages") && status.contains("branch main"),
            "{status}"
        );
        let (_, missing) = events_and_answer(decide("s9", "/status", &t));
        assert_eq!(missing, "no session s9");
    }
}
