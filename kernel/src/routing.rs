//! The routing state: identities, bindings and each identity's current session, folded
//! from the log in memory. Routing decisions read it; the decisions themselves become
//! events (`SessionStarted`, `MessageReceived` in the chosen session's stream).

use std::collections::{BTreeMap, HashMap};

use clawos_events::{BindingSet, EventPayload, NewEvent, RecordedEvent, SessionStarted};
use regex::Regex;

/// One binding with its compiled regex.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The binding as set.
    pub set: BindingSet,
    /// Compiled body regex.
    pub regex: Option<Regex>,
}

impl Binding {
    /// How specific the binding is: the number of scope fields it constrains.
    pub fn specificity(&self) -> u32 {
        let s = &self.set.scope;
        [
            s.identity.is_some(),
            s.chat.is_some(),
            s.channel.is_some(),
            s.sender_domain.is_some(),
            s.body_regex.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count() as u32
    }

    /// Whether it matches a message.
    pub fn matches(&self, m: &MessageFacts<'_>) -> bool {
        let s = &self.set.scope;
        s.identity.as_deref().is_none_or(|i| i == m.identity)
            && s.chat.as_deref().is_none_or(|c| Some(c) == m.chat)
            && s.channel.as_deref().is_none_or(|c| c == m.channel)
            && s.sender_domain
                .as_deref()
                .is_none_or(|d| sender_domain(m.sender).eq_ignore_ascii_case(d))
            && (s.body_regex.is_none() || self.regex.as_ref().is_some_and(|r| r.is_match(m.text)))
    }
}

/// The domain part of an address (`irc:alice@libera` -> `libera`).
pub fn sender_domain(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

/// What a binding can look at.
pub struct MessageFacts<'a> {
    /// Sender identity.
    pub identity: &'a str,
    /// Sender address.
    pub sender: &'a str,
    /// Chat or group.
    pub chat: Option<&'a str>,
    /// Channel name.
    pub channel: &'a str,
    /// Body.
    pub text: &'a str,
}

/// The in-memory routing state.
#[derive(Debug, Default)]
pub struct RoutingState {
    /// Address -> identity (unlinked addresses are their own identity).
    pub identities: HashMap<String, String>,
    /// Binding id -> binding.
    pub bindings: BTreeMap<String, Binding>,
    /// (identity, agent) -> current session id.
    pub sessions: HashMap<(String, String), String>,
    /// Session id -> active branch.
    pub active_branch: HashMap<String, String>,
    /// (channel, address) pairs approved by `clawos pairing approve`.
    pub paired: std::collections::HashSet<(String, String)>,
    /// (channel, address) -> expiry (unix ms) of the code issued last.
    pub pairing_requests: HashMap<(String, String), i64>,
    /// Seq folded so far.
    pub position: u64,
}

impl RoutingState {
    /// The identity of an address.
    pub fn identity_of(&self, address: &str) -> String {
        self.identities
            .get(address)
            .cloned()
            .unwrap_or_else(|| address.to_string())
    }

    /// The agent for a message: the most specific matching binding, ties broken by priority
    /// then by binding id; the default agent when none matches.
    pub fn agent_for(&self, m: &MessageFacts<'_>, default_agent: &str) -> String {
        self.bindings
            .values()
            .filter(|b| b.matches(m))
            .max_by(|a, b| {
                (
                    a.specificity(),
                    a.set.priority,
                    std::cmp::Reverse(&a.set.binding_id),
                )
                    .cmp(&(
                        b.specificity(),
                        b.set.priority,
                        std::cmp::Reverse(&b.set.binding_id),
                    ))
            })
            .map(|b| b.set.agent.clone())
            .unwrap_or_else(|| default_agent.to_string())
    }

    /// The current session of `identity` with `agent`, or a new session id with the
    /// `SessionStarted` event that opens it (to append before anything else in it).
    pub fn session_for(&self, identity: &str, agent: &str) -> (String, Vec<NewEvent>) {
        if let Some(s) = self
            .sessions
            .get(&(identity.to_string(), agent.to_string()))
        {
            return (s.clone(), Vec::new());
        }
        let s = uuid::Uuid::now_v7().to_string();
        let start = NewEvent::new(SessionStarted {
            session_id: s.clone(),
            identity: identity.to_string(),
            agent: agent.to_string(),
        });
        (s, vec![start])
    }

    /// Fold one event.
    pub fn apply(&mut self, event: &RecordedEvent) {
        self.position = self.position.max(event.seq);
        let Ok(payload) = event.decode() else {
            // An undecodable event cannot change routing; the projection runner reports it.
            return;
        };
        match payload {
            EventPayload::IdentityLinked(l) => {
                self.identities.insert(l.address, l.identity);
            }
            EventPayload::BindingSet(b) => {
                let regex = b
                    .scope
                    .body_regex
                    .as_deref()
                    .and_then(|r| Regex::new(r).ok());
                self.bindings
                    .insert(b.binding_id.clone(), Binding { set: b, regex });
            }
            EventPayload::BindingRemoved(b) => {
                self.bindings.remove(&b.binding_id);
            }
            EventPayload::SessionStarted(s) => {
                self.active_branch
                    .entry(s.session_id.clone())
                    .or_insert_with(|| "main".to_string());
                self.sessions.insert((s.identity, s.agent), s.session_id);
            }
            EventPayload::BranchCreated(b) if b.switch_to => {
                if let Some(id) = event.session_id() {
                    self.active_branch.insert(id.to_string(), b.branch);
                }
            }
            EventPayload::PairingRequested(p) => {
                self.pairing_requests
                    .insert((p.channel, p.address), p.expires_at_ms);
            }
            EventPayload::PairingApproved(p) => {
                self.pairing_requests
                    .remove(&(p.channel.clone(), p.address.clone()));
                self.paired.insert((p.channel, p.address));
            }
            EventPayload::BranchSwitched(b) => {
                if let Some(id) = event.session_id() {
                    self.active_branch.insert(id.to_string(), b.branch);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clawos_events::BindingScope;

    fn binding(id: &str, agent: &str, scope: BindingScope, priority: i32) -> Binding {
        let regex = scope.body_regex.as_deref().map(|r| Regex::new(r).unwrap());
        Binding {
            set: BindingSet {
                binding_id: id.into(),
                agent: agent.into(),
                scope,
                priority,
            },
            regex,
        }
    }

    fn facts<'a>(text: &'a str, channel: &'a str) -> MessageFacts<'a> {
        MessageFacts {
            identity: "alice",
            sender: "irc:alice@libera",
            chat: Some("#rust"),
            channel,
            text,
        }
    }

    #[test]
    fn most_specific_binding_wins_then_priority() {
        let mut s = RoutingState::default();
        s.bindings.insert(
            "a".into(),
            binding(
                "a",
                "by-channel",
                BindingScope {
                    channel: Some("irc".into()),
                    ..Default::default()
                },
                0,
            ),
        );
        s.bindings.insert(
            "b".into(),
            binding(
                "b",
                "coder",
                BindingScope {
                    channel: Some("irc".into()),
                    body_regex: Some("^@pi ".into()),
                    ..Default::default()
                },
                0,
            ),
        );
        s.bindings.insert(
            "c".into(),
            binding(
                "c",
                "domain",
                BindingScope {
                    sender_domain: Some("LIBERA".into()),
                    ..Default::default()
                },
                5,
            ),
        );
        assert_eq!(s.agent_for(&facts("@pi fix it", "irc"), "pi"), "coder");
        // One field each: priority breaks the tie.
        assert_eq!(s.agent_for(&facts("hello", "irc"), "pi"), "domain");
        assert_eq!(s.agent_for(&facts("hello", "terminal"), "pi"), "domain");
        s.bindings.remove("c");
        assert_eq!(s.agent_for(&facts("hello", "terminal"), "pi"), "pi");
    }
}
