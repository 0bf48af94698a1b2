//! Chat commands, understood in every channel: `/help`, `/status`, `/branches`,
//! `/branch NAME`, `/switch NAME`, `/fork SEQ`, `/compact`. A command is recorded as
//! `CommandReceived`, runs in its session's queue (after the turns before it), and its
//! effects (`BranchCreated`, `BranchSwitched`, `SessionCompacted`) and its answer commit
//! together. Commands and their answers never enter the message tree.

use clawos_agents::{Agent, ContextMessage};
use clawos_events::{BranchCreated, BranchSwitched, EventPayload, NewEvent, SessionCompacted};
use clawos_projections::views;
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

/// Run `text` for `session` (the projections have applied the command's seq).
pub async fn run(
    pool: &SqlitePool,
    session: &str,
    text: &str,
    agent: Option<&dyn Agent>,
) -> Result<Outcome, KernelError> {
    let tables = views::load_session(pool, session).await?;
    let Some(s) = views::sessions(&tables).into_iter().next() else {
        return answer(format!("no session {session}"));
    };
    let branches = views::branches(&tables, session);
    let active = branches.iter().find(|b| b.name == s.active_branch);
    let head = active.and_then(|b| b.head_seq);
    let mut words = text.split_whitespace();
    let cmd = words.next().unwrap_or("");
    let arg = words.next();
    match (cmd, arg) {
        ("/help", _) => answer(
            COMMANDS
                .iter()
                .map(|(c, d)| format!("{c:<14} {d}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        ("/status", _) => answer(format!(
            "session {} with agent {}, branch {} ({} branches), {} messages, last message {}",
            s.session_id,
            s.agent,
            s.active_branch,
            branches.len(),
            s.messages,
            head.map(|h| h.to_string()).unwrap_or_else(|| "none".into())
        )),
        ("/branches", _) => answer(
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
                return answer("a branch name is 1-64 letters, digits, `-`, `_` or `.`");
            }
            if branches.iter().any(|b| b.name == name) {
                return answer(format!(
                    "branch {name} exists; `/switch {name}` to continue on it"
                ));
            }
            Ok(Outcome {
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
                return answer(format!("no branch {name}; `/branches` lists them"));
            }
            Ok(Outcome {
                events: vec![NewEvent::new(BranchSwitched {
                    branch: name.to_string(),
                })],
                answer: format!("now on branch {name}"),
            })
        }
        ("/fork", Some(seq)) => {
            let Ok(seq) = seq.parse::<u64>() else {
                return answer("usage: /fork SEQ (a message number; `/status` shows the last)");
            };
            let is_message = tables
                .tables
                .get(clawos_projections::sessions::MESSAGES.name)
                .is_some_and(|m| m.contains_key(&vec![clawos_projections::Value::Int(seq as i64)]));
            if !is_message {
                return answer(format!("{seq} is not a message of this session"));
            }
            let name = format!("fork-{seq}");
            if branches.iter().any(|b| b.name == name) {
                return answer(format!(
                    "branch {name} exists; `/switch {name}` to continue on it"
                ));
            }
            Ok(Outcome {
                events: vec![NewEvent::new(BranchCreated {
                    branch: name.clone(),
                    at_message: Some(seq),
                    switch_to: true,
                })],
                answer: format!("now on new branch {name}, forked at message {seq}"),
            })
        }
        ("/compact", _) => {
            let Some(head) = head else {
                return answer("nothing to compact yet");
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
                    branch: s.active_branch.clone(),
                    covers_through: head,
                    summary: summary.text.clone(),
                    model: summary.model,
                })],
                answer: format!(
                    "compacted {} messages of branch {}; the original messages stay in the log",
                    history.len(),
                    s.active_branch
                ),
            })
        }
        (c, None) => answer(format!("{c} needs an argument; `/help` lists the commands")),
        _ => answer("unknown command; `/help` lists the commands"),
    }
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
}
