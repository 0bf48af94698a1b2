//! An operator connection's events, folded from the log as it grows and from the reply
//! fragments of running turns: `chat` (delta, final, error, aborted), `agent` (a run's
//! lifecycle), `exec.approval.requested|resolved`, `device.pair.requested|resolved`.
//! Each is sent only if the connection's scopes allow it.
//!
//! A run is the turn answering one trigger. Its id is the `chat.send` idempotency key when
//! the trigger came from `/ws`, the trigger event's id otherwise; its session key is the
//! session's `agent:<agent>:<owner>`.

use std::collections::HashMap;
use std::sync::Arc;

use clawos_events::{EventPayload, RecordedEvent};
use clawos_projections::views;
use serde_json::{json, Value};
use uuid::Uuid;

use super::conn::{broadcast, Conn, WS_CHANNEL};
use crate::approvals::APPROVAL_TIMEOUT;
use crate::gateway::operator::ABORTED;
use crate::gateway::Gateway;
use crate::session_keys::key_of;

/// A run seen by the feed.
#[derive(Debug, Clone)]
struct Run {
    id: String,
    key: String,
    /// The `chat` events sent for it.
    seq: u64,
    /// The reply so far.
    text: String,
}

/// What the feed knows: session keys, and runs by trigger seq.
struct Fold {
    keys: HashMap<String, String>,
    runs: HashMap<u64, Run>,
    /// A turn's reply, waiting for the event that ends the turn.
    replies: HashMap<Uuid, (u64, String)>,
    protocol: u32,
}

fn text_message(text: &str) -> Value {
    json!({"role": "assistant", "content": [{"type": "text", "text": text}],
           "timestamp": crate::clock::now_ms()})
}

impl Fold {
    async fn key_of_session(&mut self, gw: &Gateway, session: &str) -> String {
        if let Some(k) = self.keys.get(session) {
            return k.clone();
        }
        let key = match views::session_owner(gw.read_models(), session).await {
            Ok(Some((owner, agent))) => key_of(&agent, &owner),
            _ => format!("session:{session}"),
        };
        self.keys.insert(session.to_string(), key.clone());
        key
    }

    /// The run answering the event at `trigger_seq`.
    async fn run(&mut self, gw: &Gateway, trigger_seq: u64) -> Option<&mut Run> {
        if !self.runs.contains_key(&trigger_seq) {
            let trigger = gw.log().get(trigger_seq).await.ok()??;
            let session = trigger.session_id()?.to_string();
            let id = match trigger.decode() {
                Ok(EventPayload::MessageReceived(m)) if m.channel == WS_CHANNEL => m.external_id,
                _ => trigger.id.to_string(),
            };
            let key = self.key_of_session(gw, &session).await;
            // Runs end; only the recent ones are worth keeping.
            if self.runs.len() > 1024 {
                self.runs.clear();
            }
            self.runs.insert(
                trigger_seq,
                Run {
                    id,
                    key,
                    seq: 0,
                    text: String::new(),
                },
            );
        }
        self.runs.get_mut(&trigger_seq)
    }

    fn chat(&self, run: &mut Run, state: &str, extra: Value) -> Value {
        run.seq += 1;
        let mut p = json!({"runId": run.id, "sessionKey": run.key, "seq": run.seq, "state": state});
        if let (Value::Object(p), Value::Object(extra)) = (&mut p, extra) {
            p.extend(extra);
        }
        broadcast("chat", p)
    }

    async fn delta(&mut self, gw: &Gateway, trigger_seq: u64, fragment: &str) -> Option<Value> {
        let protocol = self.protocol;
        let mut run = self.run(gw, trigger_seq).await?.clone();
        run.text.push_str(fragment);
        let mut extra = json!({"message": text_message(&run.text)});
        if protocol >= 4 {
            extra["deltaText"] = json!(fragment);
        }
        let frame = self.chat(&mut run, "delta", extra);
        self.runs.insert(trigger_seq, run);
        Some(frame)
    }

    /// The frames one log event becomes.
    async fn event(&mut self, gw: &Gateway, e: &RecordedEvent) -> Vec<Value> {
        let Ok(payload) = e.decode() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match payload {
            EventPayload::SessionStarted(s) => {
                self.keys
                    .insert(s.session_id.clone(), key_of(&s.agent, &s.identity));
            }
            EventPayload::AgentTurnStarted(t) => {
                if let Some(run) = self.run(gw, t.trigger_seq).await {
                    let (id, key) = (run.id.clone(), run.key.clone());
                    out.push(agent_event(&id, &key, "start"));
                }
            }
            EventPayload::MessageSent(m) => {
                let Some(trigger) = m.in_reply_to else {
                    return out;
                };
                match e.correlation_id {
                    // The end of the turn (in the same append) says how it went.
                    Some(turn) => {
                        self.replies.insert(turn, (trigger, m.text.clone()));
                    }
                    // A chat command's answer: final at once.
                    None => {
                        if let Some(mut run) = self.run(gw, trigger).await.cloned() {
                            out.push(self.chat(
                                &mut run,
                                "final",
                                json!({"message": text_message(&m.text)}),
                            ));
                            self.runs.remove(&trigger);
                        }
                    }
                }
                if m.channel == WS_CHANNEL {
                    let _ = gw.delivered(WS_CHANNEL, m.delivery_id).await;
                }
            }
            EventPayload::AgentTurnFinished(f) => {
                if let Some((trigger, text)) = self.replies.remove(&f.turn_id) {
                    if let Some(mut run) = self.run(gw, trigger).await.cloned() {
                        out.push(self.chat(
                            &mut run,
                            "final",
                            json!({"message": text_message(&text), "stopReason": "stop"}),
                        ));
                        out.push(agent_event(&run.id, &run.key, "end"));
                        self.runs.remove(&trigger);
                    }
                }
            }
            EventPayload::AgentTurnFailed(f) => {
                if let Some((trigger, _)) = self.replies.remove(&f.turn_id) {
                    if let Some(mut run) = self.run(gw, trigger).await.cloned() {
                        let state = if f.reason.starts_with(ABORTED) {
                            "aborted"
                        } else {
                            "error"
                        };
                        out.push(self.chat(&mut run, state, json!({"errorMessage": f.reason})));
                        out.push(agent_event(&run.id, &run.key, "error"));
                        self.runs.remove(&trigger);
                    }
                }
            }
            EventPayload::ApprovalRequested(a) => {
                let key = self.key_of_session(gw, &a.session_id).await;
                out.push(broadcast(
                    "exec.approval.requested",
                    json!({"id": a.approval_id.to_string(),
                           "request": {"command": a.action, "sessionKey": key,
                                       "sessionId": a.session_id, "runId": a.turn_id.to_string()},
                           "createdAtMs": e.ts_ms,
                           "expiresAtMs": e.ts_ms + APPROVAL_TIMEOUT.as_millis() as i64}),
                ));
            }
            EventPayload::ApprovalAnswered(a) => out.push(broadcast(
                "exec.approval.resolved",
                json!({"id": a.approval_id.to_string(),
                       "decision": if a.approved { "allow-once" } else { "deny" },
                       "resolvedBy": a.by, "ts": e.ts_ms}),
            )),
            EventPayload::DevicePairingRequested(r) => out.push(broadcast(
                "device.pair.requested",
                json!({"requestId": r.request_id.to_string(), "deviceId": r.device_id,
                       "publicKey": r.public_key, "displayName": r.display_name,
                       "platform": r.platform, "clientId": r.client, "role": r.role,
                       "scopes": r.scopes, "remoteIp": r.remote, "ts": e.ts_ms}),
            )),
            EventPayload::NodeEventReported(n) => out.push(broadcast(
                "node.event",
                json!({"nodeId": n.node_id, "event": n.event,
                       "payload": serde_json::from_str::<Value>(&n.payload).unwrap_or(Value::Null),
                       "ts": e.ts_ms}),
            )),
            EventPayload::DevicePairingResolved(r) => out.push(broadcast(
                "device.pair.resolved",
                json!({"requestId": r.request_id.to_string(), "deviceId": r.device_id,
                       "decision": if r.approved { "approved" } else { "rejected" },
                       "ts": e.ts_ms}),
            )),
            _ => {}
        }
        out
    }
}

fn agent_event(run: &str, key: &str, phase: &str) -> Value {
    broadcast(
        "agent",
        json!({"runId": run, "sessionKey": key, "stream": "lifecycle", "seq": 1,
               "ts": crate::clock::now_ms(), "data": {"phase": phase}}),
    )
}

/// Follow the log from its head (and the reply fragments) for `conn` until it closes.
pub async fn follow(gw: Arc<Gateway>, conn: Arc<Conn>) {
    let mut deltas = gw.subscribe_deltas();
    let mut sub = gw.log().subscribe(gw.log().head() + 1);
    let mut fold = Fold {
        keys: HashMap::new(),
        runs: HashMap::new(),
        replies: HashMap::new(),
        protocol: conn.admitted.protocol,
    };
    loop {
        let frames = tokio::select! {
            d = deltas.recv() => match d {
                Ok(d) if !d.text.is_empty() => fold.delta(&gw, d.trigger_seq, &d.text).await.into_iter().collect(),
                Ok(_) => Vec::new(),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Vec::new(),
                Err(_) => return,
            },
            e = sub.next() => match e {
                Ok(e) => fold.event(&gw, &e).await,
                Err(_) => return,
            },
        };
        for f in frames {
            let event = f["event"].as_str().unwrap_or_default().to_string();
            if conn.receives(&event) && conn.out.send(f).await.is_err() {
                return;
            }
        }
    }
}

/// `events.subscribe`: every log event from `from`, live, as `log` events.
pub async fn log_events(gw: Arc<Gateway>, from: u64, out: tokio::sync::mpsc::Sender<Value>) {
    let mut sub = gw.log().subscribe(from);
    while let Ok(e) = sub.next().await {
        let payload = clawos_replay::export::event_json(&e);
        if out.send(broadcast("log", payload)).await.is_err() {
            return;
        }
    }
}
