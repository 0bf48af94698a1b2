//! Ingest: an inbound message (or a hook) from dedupe to its committed events. The
//! decision itself is [`super::decide::decide`]; this module reads what it needs, appends
//! what it decided, and queues the turn.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clawos_channels::protocol::Inbound;
use clawos_events::{inbound_dedupe_key, stream, ExpectedVersion, LogError, NewEvent};

use super::decide::{decide, Admission, Decision, Fresh, Groups, Held};
use super::Gateway;
use crate::config::DmPolicy;
use crate::routing;
use crate::KernelError;

/// How many times a decision is taken again after its stream moved under it.
const DECISION_ATTEMPTS: usize = 5;

/// Outcome of ingesting an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    /// Seq of the event that recorded it (the original one for a re-send; the pairing
    /// request for an unknown sender); 0 when it was held and nothing was recorded.
    pub seq: u64,
    /// It was a re-send.
    pub duplicate: bool,
}

impl Ingested {
    const HELD: Ingested = Ingested {
        seq: 0,
        duplicate: false,
    };
}

impl Gateway {
    /// Route an inbound message from `channel` into a session and start a turn for it.
    /// Resolves after the message is committed; a re-send returns the original seq.
    pub async fn ingest(
        self: &Arc<Self>,
        channel: &str,
        m: Inbound,
    ) -> Result<Ingested, KernelError> {
        let key = inbound_dedupe_key(channel, &m.external_id);
        if let Some(seq) = self.log.find_dedupe(&key).await? {
            return Ok(Ingested {
                seq,
                duplicate: true,
            });
        }
        let admission = match self.config.channels.get(channel) {
            Some(c) => Admission {
                policy: c.policy(),
                allow: &c.allow,
                pairing_ttl: Duration::from_secs(self.config.gateway.pairing_ttl_secs),
                groups: Groups {
                    policy: c.group_policy.unwrap_or_default(),
                    per_group: Some(&c.groups),
                    keywords: &c.keywords,
                },
            },
            None => Admission::OPEN,
        };
        for _ in 0..DECISION_ATTEMPTS {
            let mut routing = self.routing.lock().await;
            // The pairing stream's version is read before the state is brought to the
            // head, so a pairing decision appends only if nothing moved since it looked.
            // Only a channel under the pairing policy can decide to pair.
            let pairing_version = if admission.policy == DmPolicy::Pairing {
                self.log.stream_version(stream::PAIRING).await?
            } else {
                0
            };
            routing::catch_up(&self.log, &mut routing).await?;
            let decision = decide(
                channel,
                &m,
                &routing,
                &admission,
                &self.config.gateway.default_agent,
                &Fresh::draw(),
            );
            match decision {
                Decision::Held(why) => {
                    self.held(channel, &m.sender, why);
                    return Ok(Ingested::HELD);
                }
                Decision::Pair { events } => {
                    drop(routing);
                    match self
                        .log
                        .append(
                            stream::PAIRING,
                            ExpectedVersion::Exact(pairing_version),
                            events,
                        )
                        .await
                    {
                        Ok(a) => {
                            return Ok(Ingested {
                                seq: a.first_seq,
                                duplicate: a.duplicate,
                            })
                        }
                        // An approval or another code landed meanwhile: decide again.
                        Err(LogError::Conflict { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Decision::Route(route) => {
                    // A new session's stream must not exist yet; an existing one takes
                    // messages in any order.
                    let expected = if route.new_session {
                        ExpectedVersion::NoStream
                    } else {
                        drop(routing);
                        ExpectedVersion::Any
                    };
                    let started = Instant::now();
                    let appended = self
                        .log
                        .append(&stream::session(&route.session), expected, route.events)
                        .await?;
                    self.metrics.append(started.elapsed().as_micros() as u64);
                    if appended.duplicate {
                        return Ok(Ingested {
                            seq: appended.first_seq,
                            duplicate: true,
                        });
                    }
                    self.metrics.message_in(channel);
                    if route.answer {
                        self.dispatch(&route.session, &route.agent, appended.last_seq);
                    }
                    return Ok(Ingested {
                        seq: appended.last_seq,
                        duplicate: false,
                    });
                }
            }
        }
        Err(KernelError::Contended(format!(
            "message {} from {}: the pairing stream kept changing; the channel sends it again",
            m.external_id, m.sender
        )))
    }

    fn held(&self, channel: &str, sender: &str, why: Held) {
        match why {
            Held::NotAllowed => {
                tracing::warn!(%channel, %sender, "message refused: sender not on the allowlist")
            }
            Held::CodeLive => {
                tracing::info!(%channel, %sender, "pairing code already issued; message held")
            }
            Held::TooManyCodes => {
                tracing::warn!(%channel, %sender, "pairing refused: too many codes pending on this channel");
                self.metrics.auth_refused("pairing");
            }
        }
    }

    /// Start a turn from an outside system (`POST /hooks/agent`): in the given session, or
    /// in the current session of `identity` (default `hook:NAME`) with the default agent.
    pub async fn hook(
        self: &Arc<Self>,
        hook: &str,
        session_id: Option<String>,
        identity: Option<String>,
        text: String,
    ) -> Result<(u64, String), KernelError> {
        let mut routing = self.routing.lock().await;
        routing::catch_up(&self.log, &mut routing).await?;
        let (session, agent, mut events) = match session_id {
            Some(id) => {
                let agent = routing
                    .agent_of_session(&id)
                    .ok_or_else(|| KernelError::NotFound(format!("no session {id}")))?
                    .to_string();
                (id, agent, Vec::new())
            }
            None => {
                let identity = identity.unwrap_or_else(|| format!("hook:{hook}"));
                let agent = self.config.gateway.default_agent.clone();
                let (session, start) =
                    routing.session_for(&identity, &agent, &Fresh::draw().session_id);
                (session, agent, start)
            }
        };
        let expected = if events.is_empty() {
            ExpectedVersion::Any
        } else {
            ExpectedVersion::NoStream
        };
        events.push(NewEvent::new(clawos_events::HookReceived {
            hook: hook.to_string(),
            session_id: Some(session.clone()),
            text,
        }));
        let appended = self
            .log
            .append(&stream::session(&session), expected, events)
            .await?;
        drop(routing);
        self.dispatch(&session, &agent, appended.last_seq);
        Ok((appended.last_seq, session))
    }
}
