//! The agent's side of the protocol: run an [`Agent`] in a process of its own, taking
//! turns from the Gateway on one pipe and answering on the other. Everything the agent
//! records or asks for goes back to the Gateway as a frame; this process never opens
//! the log.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use clawos_events::{Attachment, EventPayload};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, FramedWrite};
use uuid::Uuid;

use super::codec::{FrameCodec, FrameError};
use super::protocol::{
    FromAgent, Hello, HelloAnswer, HostCall, HostValue, Step, SummaryText, ToAgent, TurnRequest,
};
use crate::{Agent, AgentError, Recalled, TurnRecorder};

/// Why an agent process stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A frame could not be read or written.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The Gateway refused the hello.
    #[error("the Gateway refused this agent: {0}")]
    Refused(String),
    /// The Gateway closed the pipe before answering the hello.
    #[error("the Gateway closed the pipe before answering the hello")]
    NoAnswer,
}

type Pending = Arc<Mutex<HashMap<(Uuid, u64), oneshot::Sender<Result<HostValue, String>>>>>;

/// A hello the Gateway accepted: the pipes, in the agreed encoding, and the secrets the
/// agent's configuration names.
pub struct Session<R, W> {
    read: FramedRead<R, FrameCodec>,
    write: FramedWrite<W, FrameCodec>,
    /// Vault secrets by name.
    pub secrets: BTreeMap<String, String>,
}

/// Say `hello` on `writer` and read the Gateway's answer from `reader`.
pub async fn handshake<R, W>(
    reader: R,
    writer: W,
    hello: &Hello,
) -> Result<Session<R, W>, ServeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut read = FramedRead::new(reader, FrameCodec::default());
    let mut write = FramedWrite::new(writer, FrameCodec::default());
    write.send(hello).await?;
    let frame = read.next().await.ok_or(ServeError::NoAnswer)??;
    match read.decoder().parse::<HelloAnswer>(&frame)? {
        HelloAnswer::Refused { reason } => Err(ServeError::Refused(reason)),
        HelloAnswer::Welcome {
            encoding, secrets, ..
        } => {
            read.decoder_mut().switch_to(encoding);
            write.encoder_mut().switch_to(encoding);
            Ok(Session {
                read,
                write,
                secrets,
            })
        }
    }
}

impl<R, W> Session<R, W>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    /// Serve `agent` until the Gateway says `shutdown` or closes the pipe. Turns run
    /// concurrently; each one's records and service calls wait for the Gateway's answer.
    pub async fn serve(self, agent: Arc<dyn Agent>) -> Result<(), ServeError> {
        let Session {
            mut read,
            mut write,
            ..
        } = self;
        let (out, mut outbox) = mpsc::unbounded_channel::<FromAgent>();
        let pending: Pending = Arc::default();
        let waiting = pending.clone();
        let writer: JoinHandle<Result<(), FrameError>> = tokio::spawn(async move {
            while let Some(frame) = outbox.recv().await {
                match write.send(&frame).await {
                    Ok(()) => {}
                    Err(FrameError::Io(e)) => return Err(FrameError::Io(e)),
                    // Too large to send: whoever waits for it hears why; the pipe stays.
                    Err(e) => {
                        if let Some(instead) = undeliverable(frame, e.to_string(), &waiting) {
                            write.send(&instead).await?;
                        }
                    }
                }
            }
            Ok(())
        });
        let mut turns: HashMap<Uuid, JoinHandle<()>> = HashMap::new();
        let result = loop {
            let frame = match read.next().await {
                None => break Ok(()),
                Some(Err(e)) => break Err(e.into()),
                Some(Ok(f)) => f,
            };
            let frame = match read.decoder().parse::<ToAgent>(&frame) {
                Ok(f) => f,
                Err(e) => break Err(e.into()),
            };
            turns.retain(|_, t| !t.is_finished());
            match frame {
                ToAgent::Turn(request) => {
                    let turn = request.input.turn_id;
                    let task = tokio::spawn(run_turn(
                        agent.clone(),
                        request,
                        out.clone(),
                        pending.clone(),
                    ));
                    turns.insert(turn, task);
                }
                ToAgent::Answer { turn, call, result } => {
                    let waiting = lock(&pending).remove(&(turn, call));
                    if let Some(w) = waiting {
                        let _ = w.send(result);
                    }
                }
                ToAgent::Cancel { turn, reason } => {
                    tracing::info!(%turn, %reason, "turn cancelled by the Gateway");
                    if let Some(t) = turns.remove(&turn) {
                        t.abort();
                    }
                    lock(&pending).retain(|(t, _), _| *t != turn);
                }
                ToAgent::Summarize { request, history } => {
                    let (agent, out) = (agent.clone(), out.clone());
                    tokio::spawn(async move {
                        let result = agent
                            .summarize(&history)
                            .await
                            .map(|s| SummaryText {
                                text: s.text,
                                model: s.model,
                            })
                            .map_err(|e| e.to_string());
                        let _ = out.send(FromAgent::Summary { request, result });
                    });
                }
                ToAgent::Ping { n } => {
                    let _ = out.send(FromAgent::Pong { n });
                }
                ToAgent::Shutdown => break Ok(()),
            }
        };
        for (_, t) in turns {
            t.abort();
        }
        drop(out);
        // What was queued goes out before the process ends.
        match writer.await {
            Ok(Err(e)) if result.is_ok() => Err(e.into()),
            _ => result,
        }
    }
}

/// What to do about a frame that could not be written: a waiting record or call fails
/// with `why`; a reply too large becomes the turn's failure; a summary, an error.
fn undeliverable(frame: FromAgent, why: String, pending: &Pending) -> Option<FromAgent> {
    tracing::warn!(%why, "a frame to the Gateway was not sent");
    match frame {
        FromAgent::Step { turn, call, .. } | FromAgent::Call { turn, call, .. } => {
            if let Some(w) = lock(pending).remove(&(turn, call)) {
                let _ = w.send(Err(why));
            }
            None
        }
        FromAgent::Done { turn, .. } => Some(FromAgent::Failed {
            turn,
            error: format!("the reply could not be sent: {why}"),
        }),
        FromAgent::Summary { request, .. } => Some(FromAgent::Summary {
            request,
            result: Err(why),
        }),
        FromAgent::Delta { .. } | FromAgent::Failed { .. } | FromAgent::Pong { .. } => None,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn run_turn(
    agent: Arc<dyn Agent>,
    request: TurnRequest,
    out: mpsc::UnboundedSender<FromAgent>,
    pending: Pending,
) {
    let turn = request.input.turn_id;
    let recorder = RemoteRecorder {
        turn,
        next_call: AtomicU64::new(1),
        out: out.clone(),
        pending,
    };
    let frame = match agent.run_turn(request.input, &recorder).await {
        Ok(o) => FromAgent::Done {
            turn,
            reply: o.reply,
            steps: o.steps,
            attachments: o.attachments,
        },
        Err(e) => FromAgent::Failed {
            turn,
            error: e.to_string(),
        },
    };
    let _ = out.send(frame);
}

/// A [`TurnRecorder`] whose every record and service call is a frame to the Gateway.
struct RemoteRecorder {
    turn: Uuid,
    next_call: AtomicU64,
    out: mpsc::UnboundedSender<FromAgent>,
    pending: Pending,
}

fn gone() -> AgentError {
    AgentError::Record("the Gateway is gone".into())
}

fn unexpected(value: HostValue) -> AgentError {
    AgentError::Record(format!("unexpected answer from the Gateway: {value:?}"))
}

impl RemoteRecorder {
    async fn ask(&self, make: impl FnOnce(u64) -> FromAgent) -> Result<HostValue, AgentError> {
        let call = self.next_call.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert((self.turn, call), tx);
        self.out.send(make(call)).map_err(|_| gone())?;
        match rx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(why)) => Err(AgentError::Refused(why)),
            Err(_) => Err(gone()),
        }
    }

    async fn call(&self, request: HostCall) -> Result<HostValue, AgentError> {
        let turn = self.turn;
        self.ask(|call| FromAgent::Call {
            turn,
            call,
            request,
        })
        .await
    }
}

#[async_trait]
impl TurnRecorder for RemoteRecorder {
    async fn record(&self, payload: EventPayload) -> Result<u64, AgentError> {
        let Some(step) = Step::from_payload(payload) else {
            return Err(AgentError::Refused(
                "an agent process records turn steps only".into(),
            ));
        };
        let turn = self.turn;
        match self
            .ask(|call| FromAgent::Step { turn, call, step })
            .await?
        {
            HostValue::Seq(seq) => Ok(seq),
            other => Err(unexpected(other)),
        }
    }

    fn delta(&self, text: &str) {
        let _ = self.out.send(FromAgent::Delta {
            turn: self.turn,
            text: text.to_string(),
        });
    }

    async fn remember(&self, text: &str, tags: &[String]) -> Result<Uuid, AgentError> {
        match self
            .call(HostCall::Remember {
                text: text.into(),
                tags: tags.to_vec(),
            })
            .await?
        {
            HostValue::Id(id) => Ok(id),
            other => Err(unexpected(other)),
        }
    }

    async fn forget(&self, id: Uuid) -> Result<bool, AgentError> {
        match self.call(HostCall::Forget { id }).await? {
            HostValue::Bool(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    async fn recall(&self, query: &str, limit: usize) -> Result<Vec<Recalled>, AgentError> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        match self
            .call(HostCall::Recall {
                query: query.into(),
                limit,
            })
            .await?
        {
            HostValue::Recalled(r) => Ok(r.into_iter().map(Into::into).collect()),
            other => Err(unexpected(other)),
        }
    }

    async fn schedule(&self, schedule: &str, prompt: &str) -> Result<Uuid, AgentError> {
        match self
            .call(HostCall::Schedule {
                schedule: schedule.into(),
                prompt: prompt.into(),
            })
            .await?
        {
            HostValue::Id(id) => Ok(id),
            other => Err(unexpected(other)),
        }
    }

    async fn cron_jobs(&self) -> Result<Vec<String>, AgentError> {
        match self.call(HostCall::CronJobs).await? {
            HostValue::Lines(l) => Ok(l),
            other => Err(unexpected(other)),
        }
    }

    async fn cancel_cron(&self, id: Uuid) -> Result<bool, AgentError> {
        match self.call(HostCall::CancelCron { id }).await? {
            HostValue::Bool(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    async fn approve(&self, action: &str) -> Result<bool, AgentError> {
        match self
            .call(HostCall::Approve {
                action: action.into(),
            })
            .await?
        {
            HostValue::Bool(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    async fn nodes(&self) -> Result<Vec<String>, AgentError> {
        match self.call(HostCall::Nodes).await? {
            HostValue::Lines(l) => Ok(l),
            other => Err(unexpected(other)),
        }
    }

    async fn nodes_offering(&self, command: &str) -> Vec<String> {
        match self
            .call(HostCall::NodesOffering {
                command: command.into(),
            })
            .await
        {
            Ok(HostValue::Lines(l)) => l,
            _ => Vec::new(),
        }
    }

    async fn invoke_node(
        &self,
        node: &str,
        command: &str,
        params: serde_json::Value,
    ) -> Result<String, AgentError> {
        match self
            .call(HostCall::InvokeNode {
                node: node.into(),
                command: command.into(),
                params: params.to_string(),
            })
            .await?
        {
            HostValue::Text(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }

    async fn session_command(&self, command: &str) -> Result<String, AgentError> {
        match self
            .call(HostCall::SessionCommand {
                command: command.into(),
            })
            .await?
        {
            HostValue::Text(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }

    async fn store_media(
        &self,
        name: &str,
        mime: &str,
        bytes: Vec<u8>,
    ) -> Result<Attachment, AgentError> {
        match self
            .call(HostCall::StoreMedia {
                name: name.into(),
                mime: mime.into(),
                bytes,
            })
            .await?
        {
            HostValue::Attachment(a) => Ok(a),
            other => Err(unexpected(other)),
        }
    }

    async fn load_media(&self, attachment: &Attachment) -> Result<Vec<u8>, AgentError> {
        match self
            .call(HostCall::LoadMedia {
                attachment: attachment.clone(),
            })
            .await?
        {
            HostValue::Bytes(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }
}
