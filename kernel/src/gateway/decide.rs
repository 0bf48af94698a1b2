//! The routing decision for an inbound message, apart from all I/O: given the facts of
//! the message, the routing state (a mirror of the read models) and what was drawn fresh
//! for it (time, ids, a pairing code), which identity, policy outcome, agent and session
//! it gets, and the events to append. `ingest.rs` reads, calls [`decide`], appends.

use std::time::Duration;

use clawos_channels::protocol::Inbound;
use clawos_events::{
    inbound_dedupe_key, CommandReceived, MessageReceived, MessageSent, NewEvent, PairingRequested,
};
use uuid::Uuid;

use crate::config::{DmPolicy, GroupConfig, GroupPolicy};
use crate::routing::{MessageFacts, RoutingState};

/// Most live pairing codes one channel holds at a time: a flood of unknown senders gets
/// no more codes (and no replies) until some expire or are approved.
pub const MAX_PENDING_PAIRINGS: usize = 16;

/// Who may talk through the channel a message came from.
#[derive(Debug, Clone, Copy)]
pub struct Admission<'a> {
    /// The channel's policy for direct messages.
    pub policy: DmPolicy,
    /// Addresses or identities always let in.
    pub allow: &'a [String],
    /// How long a pairing code lives.
    pub pairing_ttl: Duration,
    /// When a group message gets an answer.
    pub groups: Groups<'a>,
}

impl Admission<'_> {
    /// A channel the configuration does not name (`clawos chat`): everyone is let in.
    pub const OPEN: Admission<'static> = Admission {
        policy: DmPolicy::Open,
        allow: &[],
        pairing_ttl: Duration::from_secs(3600),
        groups: Groups::DEFAULT,
    };
}

/// A channel's group rules: when a message in a group addresses the agent.
#[derive(Debug, Clone, Copy)]
pub struct Groups<'a> {
    /// The channel's `group_policy`.
    pub policy: GroupPolicy,
    /// Per-group overrides.
    pub per_group: Option<&'a std::collections::BTreeMap<String, GroupConfig>>,
    /// Words that address the agent as a mention does.
    pub keywords: &'a [String],
}

impl Groups<'_> {
    /// `mention` everywhere, no keywords.
    pub const DEFAULT: Groups<'static> = Groups {
        policy: GroupPolicy::Mention,
        per_group: None,
        keywords: &[],
    };

    /// Whether `m`, posted in group `chat`, asks for an answer.
    pub fn addressed(&self, chat: &str, m: &Inbound) -> bool {
        let policy = self
            .per_group
            .and_then(|g| g.get(chat))
            .and_then(|g| g.policy)
            .unwrap_or(self.policy);
        match policy {
            GroupPolicy::Always => true,
            GroupPolicy::Never => false,
            GroupPolicy::Mention => {
                let text = m.text.to_lowercase();
                m.mentioned
                    || self
                        .keywords
                        .iter()
                        .any(|k| !k.is_empty() && text.contains(&k.to_lowercase()))
            }
        }
    }
}

/// The identity that owns a group's session: the group itself, on its channel.
pub fn group_identity(channel: &str, chat: &str) -> String {
    format!("group:{channel}/{chat}")
}

/// What was drawn for this message outside the decision: the time and fresh ids.
#[derive(Debug, Clone)]
pub struct Fresh {
    /// Now, unix ms.
    pub now_ms: i64,
    /// The id a new session would get.
    pub session_id: String,
    /// The delivery id of a notice to the sender.
    pub delivery_id: Uuid,
    /// The code a pairing request would carry.
    pub pairing_code: String,
}

impl Fresh {
    /// Draw from the clock and the OS random source.
    pub fn draw() -> Self {
        Fresh {
            now_ms: crate::clock::now_ms(),
            session_id: Uuid::now_v7().to_string(),
            delivery_id: Uuid::now_v7(),
            pairing_code: crate::tokens::pairing_code(),
        }
    }
}

/// Why a message was not routed and nothing was appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The sender is not on the channel's allowlist.
    NotAllowed,
    /// The sender already holds a live pairing code.
    CodeLive,
    /// The channel holds [`MAX_PENDING_PAIRINGS`] live codes already.
    TooManyCodes,
}

/// The decision for one inbound message.
#[derive(Debug)]
pub enum Decision {
    /// Nothing is appended; the message is dropped with a log line.
    Held(Held),
    /// An unknown sender under the pairing policy: append `events` (`PairingRequested`
    /// with the message's dedupe key, then the notice to the sender) to the `pairing`
    /// stream. The message itself goes to no agent.
    Pair {
        /// The events to append.
        events: Vec<NewEvent>,
    },
    /// Append `events` to the session's stream, then queue a turn.
    Route(Route),
}

/// Where a routed message goes.
#[derive(Debug)]
pub struct Route {
    /// The session (new or current).
    pub session: String,
    /// The agent that answers.
    pub agent: String,
    /// `SessionStarted` when the session is new, then the message (`MessageReceived`,
    /// or `CommandReceived` for a chat command), carrying its dedupe key.
    pub events: Vec<NewEvent>,
    /// The session did not exist.
    pub new_session: bool,
    /// The message asks for an answer (a turn); otherwise it is only context.
    pub answer: bool,
}

/// The event recording `m` from `channel` on `branch`: `CommandReceived` for a chat
/// command that asks for an answer, `MessageReceived` otherwise (without its dedupe key).
pub fn inbound_event(channel: &str, m: &Inbound, branch: &str, answer: bool) -> NewEvent {
    if answer && crate::commands::is_command(&m.text) {
        NewEvent::new(CommandReceived {
            channel: channel.to_string(),
            external_id: m.external_id.clone(),
            sender: m.sender.clone(),
            chat: m.chat.clone(),
            text: m.text.trim().to_string(),
        })
    } else {
        NewEvent::new(MessageReceived {
            channel: channel.to_string(),
            external_id: m.external_id.clone(),
            sender: m.sender.clone(),
            chat: m.chat.clone(),
            text: m.text.clone(),
            attachments: m.attachments.clone(),
            branch: branch.to_string(),
            sent_at_ms: m.sent_at_ms,
            addressed: answer,
        })
    }
}

/// Decide what happens to `m`, which arrived on `channel`.
pub fn decide(
    channel: &str,
    m: &Inbound,
    state: &RoutingState,
    admission: &Admission<'_>,
    default_agent: &str,
    fresh: &Fresh,
) -> Decision {
    let identity = state.identity_of(&m.sender);
    let allowed = admission
        .allow
        .iter()
        .any(|a| *a == m.sender || *a == identity);
    match admission.policy {
        DmPolicy::Open => {}
        DmPolicy::Allowlist if allowed => {}
        DmPolicy::Allowlist => return Decision::Held(Held::NotAllowed),
        DmPolicy::Pairing if allowed || state.is_paired(channel, &m.sender) => {}
        DmPolicy::Pairing => return pair(channel, m, state, admission, fresh),
    }
    let agent = state.agent_for(
        &MessageFacts {
            identity: &identity,
            sender: &m.sender,
            chat: m.chat.as_deref(),
            channel,
            text: &m.text,
        },
        default_agent,
    );
    // A group's conversation is the group's own session; a person's direct messages are
    // theirs.
    let (owner, answer) = match &m.chat {
        None => (identity, true),
        Some(chat) => (
            group_identity(channel, chat),
            admission.groups.addressed(chat, m),
        ),
    };
    let (session, mut events) = state.session_for(&owner, &agent, &fresh.session_id);
    let new_session = !events.is_empty();
    let key = inbound_dedupe_key(channel, &m.external_id);
    let inbound = inbound_event(channel, m, state.branch_of(&session), answer);
    events.push(inbound.dedupe(key));
    Decision::Route(Route {
        session,
        agent,
        events,
        new_session,
        answer,
    })
}

/// An unknown sender under the pairing policy: a one-time code (at most one live code per
/// sender and [`MAX_PENDING_PAIRINGS`] per channel), and a notice telling the sender how
/// to get approved, threaded on their message so every channel shows it to them.
fn pair(
    channel: &str,
    m: &Inbound,
    state: &RoutingState,
    admission: &Admission<'_>,
    fresh: &Fresh,
) -> Decision {
    let now = fresh.now_ms;
    let mine = (channel.to_string(), m.sender.clone());
    if state
        .pairing_requests
        .get(&mine)
        .is_some_and(|expires| *expires > now)
    {
        return Decision::Held(Held::CodeLive);
    }
    let live = state
        .pairing_requests
        .iter()
        .filter(|((c, _), expires)| c == channel && **expires > now)
        .count();
    if live >= MAX_PENDING_PAIRINGS {
        return Decision::Held(Held::TooManyCodes);
    }
    let ttl = admission.pairing_ttl.max(Duration::from_secs(1));
    let code = &fresh.pairing_code;
    let text = format!(
        "clawos: this Gateway does not know you yet. Your pairing code is {code}. Ask its \
         owner to run `clawos pairing approve {code}` (valid for {}), then write again.",
        humantime::format_duration(ttl)
    );
    Decision::Pair {
        events: vec![
            NewEvent::new(PairingRequested {
                channel: channel.to_string(),
                address: m.sender.clone(),
                code_hash: crate::tokens::code_hash(code),
                expires_at_ms: now + ttl.as_millis() as i64,
            })
            .dedupe(inbound_dedupe_key(channel, &m.external_id)),
            NewEvent::new(MessageSent {
                delivery_id: fresh.delivery_id,
                agent: "clawos".into(),
                branch: String::new(),
                channel: channel.to_string(),
                to: m.sender.clone(),
                chat: m.chat.clone(),
                text,
                in_reply_to: None,
                reply_key: Some(m.external_id.clone()),
                attachments: vec![],
            }),
        ],
    }
}

#[cfg(test)]
mod tests {
    //! Given the events the routing state folded, when a message arrives, then this
    //! decision and these events. No SQLite, no clock.

    use super::*;
    use clawos_events::{
        BindingScope, BindingSet, BranchCreated, BranchSwitched, EventPayload, IdentityLinked,
        PairingApproved, RecordedEvent, SessionStarted,
    };

    fn given(events: Vec<(&str, EventPayload)>) -> RoutingState {
        let mut state = RoutingState::default();
        for (i, (stream, payload)) in events.into_iter().enumerate() {
            state.apply(&RecordedEvent::detached(i as u64 + 1, stream, &payload).unwrap());
        }
        state
    }

    fn message(sender: &str, text: &str) -> Inbound {
        Inbound {
            external_id: "x1".into(),
            sender: sender.into(),
            chat: None,
            text: text.into(),
            attachments: vec![],
            sent_at_ms: 0,
            mentioned: true,
        }
    }

    fn fresh(now_ms: i64) -> Fresh {
        Fresh {
            now_ms,
            session_id: "s-new".into(),
            delivery_id: Uuid::nil(),
            pairing_code: "ABCD2345".into(),
        }
    }

    fn pairing() -> Admission<'static> {
        Admission {
            policy: DmPolicy::Pairing,
            allow: &[],
            pairing_ttl: Duration::from_secs(600),
            groups: Groups::DEFAULT,
        }
    }

    /// A code for `address` on channel `webhook`, expiring at `expires_at_ms`.
    fn requested(address: &str, expires_at_ms: i64) -> (&'static str, EventPayload) {
        (
            "pairing",
            PairingRequested {
                channel: "webhook".into(),
                address: address.into(),
                code_hash: "h".into(),
                expires_at_ms,
            }
            .into(),
        )
    }

    /// The decision for `text` from `sender` on an open `channel`.
    fn when_open(channel: &str, sender: &str, text: &str, state: &RoutingState) -> Decision {
        decide(
            channel,
            &message(sender, text),
            state,
            &Admission::OPEN,
            "pi",
            &fresh(0),
        )
    }

    /// The decision for `sender` writing on `channel` under the pairing policy at `now_ms`.
    fn when_pairing(channel: &str, sender: &str, state: &RoutingState, now_ms: i64) -> Decision {
        decide(
            channel,
            &message(sender, "hi"),
            state,
            &pairing(),
            "pi",
            &fresh(now_ms),
        )
    }

    fn payloads(events: &[NewEvent]) -> Vec<&EventPayload> {
        events.iter().map(|e| &e.payload).collect()
    }

    fn session_started(id: &str, identity: &str, agent: &str) -> EventPayload {
        SessionStarted {
            session_id: id.into(),
            identity: identity.into(),
            agent: agent.into(),
        }
        .into()
    }

    /// `text` from alice in `#room` on channel `irc`, mentioned or not, under `groups`.
    fn in_group(text: &str, mentioned: bool, groups: Groups<'_>, state: &RoutingState) -> Route {
        let mut m = message("irc:alice@net", text);
        m.chat = Some("#room".into());
        m.mentioned = mentioned;
        let admission = Admission {
            groups,
            ..Admission::OPEN
        };
        match decide("irc", &m, state, &admission, "pi", &fresh(0)) {
            Decision::Route(r) => r,
            other => panic!("not routed: {other:?}"),
        }
    }

    fn addressed(r: &Route) -> bool {
        r.events
            .iter()
            .any(|e| matches!(&e.payload, EventPayload::MessageReceived(m) if m.addressed))
    }

    #[test]
    fn a_group_has_its_own_session_and_answers_only_when_addressed() {
        let state = given(vec![(
            "session:s1",
            session_started("s1", "irc:alice@net", "pi"),
        )]);
        // Not alice's direct session: the group's own.
        let r = in_group("hello all", false, Groups::DEFAULT, &state);
        assert_eq!((r.session.as_str(), r.new_session), ("s-new", true));
        assert!(matches!(&payloads(&r.events)[0],
            EventPayload::SessionStarted(s) if s.identity == group_identity("irc", "#room")));
        assert!(!r.answer && !addressed(&r), "unaddressed: context only");
        let r = in_group("hello all", true, Groups::DEFAULT, &state);
        assert!(r.answer && addressed(&r), "a mention gets an answer");
        let keywords = vec!["Pi".to_string()];
        let by_keyword = Groups {
            keywords: &keywords,
            ..Groups::DEFAULT
        };
        assert!(in_group("what does pi think", false, by_keyword, &state).answer);
        let always = Groups {
            policy: GroupPolicy::Always,
            ..Groups::DEFAULT
        };
        assert!(in_group("hello", false, always, &state).answer);
        let mut quiet = std::collections::BTreeMap::new();
        quiet.insert(
            "#room".to_string(),
            GroupConfig {
                policy: Some(GroupPolicy::Never),
            },
        );
        let never_here = Groups {
            policy: GroupPolicy::Always,
            per_group: Some(&quiet),
            keywords: &[],
        };
        assert!(!in_group("clawbot: hi", true, never_here, &state).answer);
        // A command in a group that is not addressed is only context, not a command.
        let r = in_group("/branch x", false, Groups::DEFAULT, &state);
        assert!(matches!(
            payloads(&r.events)[1],
            EventPayload::MessageReceived(_)
        ));
    }

    #[test]
    fn a_first_message_opens_a_session_with_the_default_agent() {
        let state = given(vec![]);
        let Decision::Route(r) = when_open("terminal", "terminal:alice", "hi", &state) else {
            panic!("not routed")
        };
        assert_eq!(
            (r.session.as_str(), r.agent.as_str(), r.new_session),
            ("s-new", "pi", true)
        );
        assert!(matches!(
            payloads(&r.events)[..],
            [
                EventPayload::SessionStarted(_),
                EventPayload::MessageReceived(_)
            ]
        ));
        assert_eq!(
            r.events[1].dedupe_key.as_deref(),
            Some(inbound_dedupe_key("terminal", "x1").as_str())
        );
    }

    #[test]
    fn a_linked_address_continues_its_identitys_session_on_the_active_branch() {
        let state = given(vec![
            ("session:s1", session_started("s1", "terminal:alice", "pi")),
            (
                "identity:terminal:alice",
                IdentityLinked {
                    identity: "terminal:alice".into(),
                    address: "webhook:al".into(),
                }
                .into(),
            ),
            (
                "session:s1",
                BranchCreated {
                    branch: "idea".into(),
                    at_message: None,
                    switch_to: false,
                }
                .into(),
            ),
            (
                "session:s1",
                BranchSwitched {
                    branch: "idea".into(),
                }
                .into(),
            ),
        ]);
        let Decision::Route(r) = when_open("webhook", "webhook:al", "still me", &state) else {
            panic!("not routed")
        };
        assert_eq!((r.session.as_str(), r.new_session), ("s1", false));
        match payloads(&r.events)[..] {
            [EventPayload::MessageReceived(m)] => assert_eq!(m.branch, "idea"),
            ref other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_most_specific_binding_picks_the_agent_and_its_own_session() {
        let state = given(vec![
            ("session:s1", session_started("s1", "irc:bob@libera", "pi")),
            (
                "bindings",
                BindingSet {
                    binding_id: "b1".into(),
                    agent: "coder".into(),
                    scope: BindingScope {
                        body_regex: Some("^@code ".into()),
                        ..Default::default()
                    },
                    priority: 0,
                }
                .into(),
            ),
        ]);
        let Decision::Route(r) = when_open("irc", "irc:bob@libera", "@code fix it", &state) else {
            panic!("not routed")
        };
        assert_eq!(
            (r.agent.as_str(), r.session.as_str(), r.new_session),
            ("coder", "s-new", true)
        );
    }

    #[test]
    fn a_chat_command_is_recorded_as_a_command() {
        let Decision::Route(r) = when_open(
            "terminal",
            "terminal:alice",
            " /branch idea ",
            &given(vec![]),
        ) else {
            panic!("not routed")
        };
        match payloads(&r.events)[..] {
            [_, EventPayload::CommandReceived(c)] => assert_eq!(c.text, "/branch idea"),
            ref other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_allowlist_holds_strangers_and_admits_listed_identities() {
        let allow = vec!["terminal:alice".to_string()];
        let admission = Admission {
            policy: DmPolicy::Allowlist,
            allow: &allow,
            pairing_ttl: Duration::from_secs(1),
            groups: Groups::DEFAULT,
        };
        let state = given(vec![(
            "identity:terminal:alice",
            IdentityLinked {
                identity: "terminal:alice".into(),
                address: "webhook:al".into(),
            }
            .into(),
        )]);
        assert!(matches!(
            decide(
                "webhook",
                &message("webhook:eve", "hi"),
                &state,
                &admission,
                "pi",
                &fresh(0)
            ),
            Decision::Held(Held::NotAllowed)
        ));
        assert!(matches!(
            decide(
                "webhook",
                &message("webhook:al", "hi"),
                &state,
                &admission,
                "pi",
                &fresh(0)
            ),
            Decision::Route(_)
        ));
    }

    #[test]
    fn an_unknown_sender_gets_a_code_threaded_on_their_message() {
        let Decision::Pair { events } = decide(
            "webhook",
            &message("webhook:eve", "hi"),
            &given(vec![]),
            &pairing(),
            "pi",
            &fresh(1_000),
        ) else {
            panic!("no pairing")
        };
        match payloads(&events)[..] {
            [EventPayload::PairingRequested(p), EventPayload::MessageSent(n)] => {
                assert_eq!(p.code_hash, crate::tokens::code_hash("ABCD2345"));
                assert_eq!(p.expires_at_ms, 601_000);
                assert!(n.text.contains("ABCD2345"), "{}", n.text);
                assert_eq!(n.reply_key.as_deref(), Some("x1"));
                assert_eq!(n.to, "webhook:eve");
            }
            ref other => panic!("{other:?}"),
        }
        assert_eq!(
            events[0].dedupe_key.as_deref(),
            Some(inbound_dedupe_key("webhook", "x1").as_str())
        );
    }

    #[test]
    fn a_live_code_holds_the_next_message_and_an_expired_one_is_renewed() {
        let state = given(vec![requested("webhook:eve", 5_000)]);
        assert!(matches!(
            when_pairing("webhook", "webhook:eve", &state, 4_999),
            Decision::Held(Held::CodeLive)
        ));
        assert!(matches!(
            when_pairing("webhook", "webhook:eve", &state, 5_000),
            Decision::Pair { .. }
        ));
    }

    #[test]
    fn an_approved_sender_is_routed() {
        let state = given(vec![
            requested("webhook:eve", 5_000),
            (
                "pairing",
                PairingApproved {
                    channel: "webhook".into(),
                    address: "webhook:eve".into(),
                }
                .into(),
            ),
        ]);
        assert!(matches!(
            when_pairing("webhook", "webhook:eve", &state, 10_000),
            Decision::Route(_)
        ));
        // Approval is per channel.
        assert!(matches!(
            when_pairing("other", "webhook:eve", &state, 10_000),
            Decision::Pair { .. }
        ));
    }

    #[test]
    fn a_channel_full_of_live_codes_gives_no_more() {
        let events = (0..MAX_PENDING_PAIRINGS)
            .map(|i| requested(&format!("webhook:s{i}"), 9_000))
            .collect();
        let state = given(events);
        assert!(matches!(
            when_pairing("webhook", "webhook:new", &state, 1_000),
            Decision::Held(Held::TooManyCodes)
        ));
        assert!(matches!(
            when_pairing("webhook", "webhook:new", &state, 9_000),
            Decision::Pair { .. }
        ));
    }
}
