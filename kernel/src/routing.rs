//! The routing state: identities, bindings, each identity's current session and active
//! branch, and pairing, held in memory for decisions. It mirrors read models: it is seeded
//! from them ([`RoutingState::seeded`], every table it mirrors) and then folds the events
//! after their position ([`RoutingState::apply`]), so it is always what the read models
//! would say at the log's head. A test folds random logs both ways and compares.
//! Routing decisions read it (`gateway::decide`); the decisions become events
//! (`SessionStarted`, `MessageReceived` in the chosen session's stream).

use std::collections::{BTreeMap, HashMap};

use clawos_events::{BindingSet, EventPayload, LogStore, NewEvent, RecordedEvent, SessionStarted};
use clawos_projections::views::RoutingSeed;
use regex::Regex;

/// The branch every session starts on.
const MAIN: &str = "main";

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
    /// (session id, branch) of every branch: a switch goes only to one of them.
    pub branches: std::collections::HashSet<(String, String)>,
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

    /// State as the read models hold it at `position` (see [`RoutingSeed`]).
    pub fn seeded(seed: RoutingSeed, position: u64) -> Self {
        let mut state = RoutingState {
            position,
            ..RoutingState::default()
        };
        state.identities.extend(seed.identities);
        for set in seed.bindings {
            let regex = compile(&set);
            state
                .bindings
                .insert(set.binding_id.clone(), Binding { set, regex });
        }
        for s in seed.sessions {
            state
                .branches
                .insert((s.session_id.clone(), MAIN.to_string()));
            state
                .active_branch
                .insert(s.session_id.clone(), s.active_branch);
            state.sessions.insert((s.identity, s.agent), s.session_id);
        }
        state.branches.extend(seed.branches);
        state.paired.extend(seed.paired);
        for p in seed.pairing_requests {
            state
                .pairing_requests
                .insert((p.channel, p.address), p.expires_at_ms);
        }
        state
    }

    /// The agent of session `id`, if it exists.
    pub fn agent_of_session(&self, id: &str) -> Option<&str> {
        self.sessions
            .iter()
            .find(|(_, s)| s.as_str() == id)
            .map(|((_, agent), _)| agent.as_str())
    }

    /// The active branch of session `id` (`main` for a session not seen yet).
    pub fn branch_of(&self, id: &str) -> &str {
        self.active_branch
            .get(id)
            .map(String::as_str)
            .unwrap_or("main")
    }

    /// Whether `address` was approved on `channel` by `clawos pairing approve`.
    pub fn is_paired(&self, channel: &str, address: &str) -> bool {
        self.paired
            .contains(&(channel.to_string(), address.to_string()))
    }

    /// The current session of `identity` with `agent`, or `fresh_id` with the
    /// `SessionStarted` event that opens it (to append before anything else in it).
    pub fn session_for(
        &self,
        identity: &str,
        agent: &str,
        fresh_id: &str,
    ) -> (String, Vec<NewEvent>) {
        if let Some(s) = self
            .sessions
            .get(&(identity.to_string(), agent.to_string()))
        {
            return (s.clone(), Vec::new());
        }
        let s = fresh_id.to_string();
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
                let regex = compile(&b);
                self.bindings
                    .insert(b.binding_id.clone(), Binding { set: b, regex });
            }
            EventPayload::BindingRemoved(b) => {
                self.bindings.remove(&b.binding_id);
            }
            // Sessions and branches follow the `sessions` read model's rules exactly: a
            // session starts once, a branch is created once, a switch needs the branch.
            EventPayload::SessionStarted(s) => {
                if self.active_branch.contains_key(&s.session_id) {
                    return;
                }
                self.active_branch
                    .insert(s.session_id.clone(), MAIN.to_string());
                self.branches
                    .insert((s.session_id.clone(), MAIN.to_string()));
                self.sessions.insert((s.identity, s.agent), s.session_id);
            }
            // A closed session no longer takes its owner's messages.
            EventPayload::SessionClosed(c) => {
                self.sessions.retain(|_, s| *s != c.session_id);
            }
            EventPayload::BranchCreated(b) => {
                let Some(id) = event.session_id() else { return };
                if !self.active_branch.contains_key(id)
                    || !self.branches.insert((id.to_string(), b.branch.clone()))
                {
                    return;
                }
                if b.switch_to {
                    self.active_branch.insert(id.to_string(), b.branch);
                }
            }
            EventPayload::BranchSwitched(b) => {
                let Some(id) = event.session_id() else { return };
                if self.branches.contains(&(id.to_string(), b.branch.clone())) {
                    self.active_branch.insert(id.to_string(), b.branch);
                }
            }
            EventPayload::PairingRequested(p) => {
                // A paired sender has nothing to wait for (the `pairing` read model's rule).
                if self
                    .paired
                    .contains(&(p.channel.clone(), p.address.clone()))
                {
                    return;
                }
                self.pairing_requests
                    .insert((p.channel, p.address), p.expires_at_ms);
            }
            EventPayload::PairingApproved(p) => {
                self.pairing_requests
                    .remove(&(p.channel.clone(), p.address.clone()));
                self.paired.insert((p.channel, p.address));
            }
            _ => {}
        }
    }
}

/// A binding's body regex, compiled (a regex that does not compile matches nothing;
/// `clawos bind add` refuses one).
fn compile(b: &BindingSet) -> Option<Regex> {
    b.scope
        .body_regex
        .as_deref()
        .and_then(|r| Regex::new(r).ok())
}

/// Fold every event after the state's position, including ones other processes appended
/// (CLI commands), so a decision sees the log's head.
pub async fn catch_up(
    store: &LogStore,
    state: &mut RoutingState,
) -> Result<(), crate::KernelError> {
    loop {
        let page = store.read_from(state.position + 1, 1024).await?;
        if page.is_empty() {
            return Ok(());
        }
        for e in &page {
            state.apply(e);
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

    // ---- the mirror: seeded from the read models at any point, then folded, equals the
    // whole log folded. A kind the state handles but the seed misses fails here.

    use clawos_events::{
        stream, BranchCreated, BranchSwitched, IdentityLinked, PairingApproved, PairingRequested,
        SessionStarted,
    };
    use clawos_projections::views::RoutingSeed;
    use clawos_projections::{projection, MemoryRunner};
    use proptest::prelude::*;

    fn pick<'a>(names: &[&'a str], i: u8) -> &'a str {
        names[i as usize % names.len()]
    }

    /// One event of a small vocabulary, so that streams, names and keys collide often.
    fn event(op: u8, a: u8, b: u8, c: u8) -> (String, EventPayload) {
        let sessions = ["s1", "s2", "s3"];
        let people = ["ann", "bob", "cy"];
        let agents = ["pi", "coder"];
        let branches = ["main", "idea", "alt"];
        let channels = ["hooks", "irc"];
        let s = pick(&sessions, a);
        match op % 9 {
            0 => (
                stream::session(s),
                SessionStarted {
                    session_id: s.into(),
                    identity: pick(&people, b).into(),
                    agent: pick(&agents, c).into(),
                }
                .into(),
            ),
            1 => (
                stream::identity(pick(&people, b)),
                IdentityLinked {
                    identity: pick(&people, b).into(),
                    address: format!("webhook:{}", pick(&people, c)),
                }
                .into(),
            ),
            2 => (
                stream::BINDINGS.into(),
                BindingSet {
                    binding_id: format!("b{}", a % 3),
                    agent: pick(&agents, b).into(),
                    scope: BindingScope {
                        channel: c.is_multiple_of(2).then(|| pick(&channels, c).into()),
                        body_regex: c.is_multiple_of(3).then(|| "^@".into()),
                        ..Default::default()
                    },
                    priority: i32::from(b % 3),
                }
                .into(),
            ),
            3 => (
                stream::BINDINGS.into(),
                clawos_events::BindingRemoved {
                    binding_id: format!("b{}", a % 3),
                }
                .into(),
            ),
            4 | 5 => (
                stream::session(s),
                BranchCreated {
                    branch: pick(&branches, b).into(),
                    at_message: None,
                    switch_to: c.is_multiple_of(2),
                }
                .into(),
            ),
            6 => (
                stream::session(s),
                BranchSwitched {
                    branch: pick(&branches, b).into(),
                }
                .into(),
            ),
            7 => (
                stream::PAIRING.into(),
                PairingRequested {
                    channel: pick(&channels, a).into(),
                    address: format!("webhook:{}", pick(&people, b)),
                    code_hash: format!("h{c}"),
                    expires_at_ms: i64::from(c) * 1000,
                }
                .into(),
            ),
            _ => (
                stream::PAIRING.into(),
                PairingApproved {
                    channel: pick(&channels, a).into(),
                    address: format!("webhook:{}", pick(&people, b)),
                }
                .into(),
            ),
        }
    }

    /// Everything a decision reads, in a comparable order.
    fn canonical(s: &RoutingState) -> String {
        let mut identities: Vec<_> = s.identities.iter().collect();
        identities.sort();
        let bindings: Vec<_> = s
            .bindings
            .values()
            .map(|b| format!("{:?}", b.set))
            .collect();
        let mut sessions: Vec<_> = s.sessions.iter().collect();
        sessions.sort();
        let mut active: Vec<_> = s.active_branch.iter().collect();
        active.sort();
        let mut branches: Vec<_> = s.branches.iter().collect();
        branches.sort();
        let mut paired: Vec<_> = s.paired.iter().collect();
        paired.sort();
        let mut requests: Vec<_> = s.pairing_requests.iter().collect();
        requests.sort();
        format!(
            "{identities:?}\n{bindings:?}\n{sessions:?}\n{active:?}\n{branches:?}\n{paired:?}\n{requests:?}"
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn seeded_from_the_read_models_at_any_seq_equals_folding_the_whole_log(
            ops in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()), 0..60),
            cut in any::<prop::sample::Index>(),
        ) {
            let log: Vec<RecordedEvent> = ops
                .iter()
                .enumerate()
                .map(|(i, (op, a, b, c))| {
                    let (stream, payload) = event(*op, *a, *b, *c);
                    RecordedEvent::detached(i as u64 + 1, &stream, &payload).unwrap()
                })
                .collect();
            let cut = if log.is_empty() { 0 } else { cut.index(log.len() + 1) };
            let mut whole = RoutingState::default();
            for e in &log {
                whole.apply(e);
            }
            let mut runner = MemoryRunner::new(projection::all());
            for e in &log[..cut] {
                runner.apply(e).unwrap();
            }
            let mut seeded = RoutingState::seeded(RoutingSeed::from_tables(&runner.tables), cut as u64);
            for e in &log[cut..] {
                seeded.apply(e);
            }
            prop_assert_eq!(canonical(&seeded), canonical(&whole));
        }
    }
}
