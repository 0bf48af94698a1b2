//! One live connection to an agent process: frames out through a writer task, frames in
//! routed to the turns waiting for them, a ping every [`HEARTBEAT_INTERVAL`]. A frame that
//! breaks the protocol (garbage, a turn the process was not given, a flood) cuts the
//! process off: the link closes and the supervisor kills it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clawos_agents::remote::codec::{FrameCodec, FrameError};
use clawos_agents::remote::protocol::{FromAgent, SummaryText, ToAgent};
use clawos_agents::ContextMessage;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::codec::{FramedRead, FramedWrite};
use uuid::Uuid;

/// How often the Gateway pings an agent process.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);
/// Frames of one turn waiting to be recorded before the process counts as flooding.
pub const TURN_QUEUE: usize = 1024;
/// Most reply fragments one turn may stream.
pub const MAX_FRAGMENTS_PER_TURN: u32 = 50_000;
/// Cancelled turns remembered, whose late frames are dropped rather than refused.
const CANCELLED_TURNS_KEPT: usize = 256;
/// Longest a compaction summary may take.
pub const SUMMARY_TIMEOUT: Duration = Duration::from_secs(180);

/// Why a link closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// In words.
    pub reason: String,
    /// The process broke the protocol (it is killed, not waited for).
    pub cut_off: bool,
    /// The turn whose frames broke it, when one did (that turn is not run again).
    pub culprit: Option<Uuid>,
}

struct Route {
    frames: mpsc::Sender<FromAgent>,
    fragments: u32,
}

#[derive(Default)]
struct Routes {
    turns: HashMap<Uuid, Route>,
    cancelled: VecDeque<Uuid>,
    summaries: HashMap<u64, oneshot::Sender<Result<SummaryText, String>>>,
}

/// A live connection to an agent process.
pub struct Link {
    out: mpsc::UnboundedSender<ToAgent>,
    routes: Mutex<Routes>,
    next_request: AtomicU64,
    started: Instant,
    last_heard: Mutex<Option<Instant>>,
    closed: watch::Sender<Option<Closed>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn frame_kind(frame: &FromAgent) -> &'static str {
    match frame {
        FromAgent::Step { .. } => "step",
        FromAgent::Call { .. } => "call",
        FromAgent::Delta { .. } => "delta",
        FromAgent::Done { .. } => "done",
        FromAgent::Failed { .. } => "failed",
        FromAgent::Summary { .. } => "summary",
        FromAgent::Pong { .. } => "pong",
    }
}

impl Link {
    /// Start serving a process whose hello was accepted: `read` and `write` are its
    /// pipes, already switched to the agreed encoding.
    pub fn start<R, W>(
        read: FramedRead<R, FrameCodec>,
        write: FramedWrite<W, FrameCodec>,
    ) -> Arc<Link>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (out, outbox) = mpsc::unbounded_channel();
        let link = Arc::new(Link {
            out,
            routes: Mutex::default(),
            next_request: AtomicU64::new(1),
            started: Instant::now(),
            last_heard: Mutex::new(None),
            closed: watch::channel(None).0,
        });
        tokio::spawn(read_frames(link.clone(), read));
        tokio::spawn(write_frames(link.clone(), outbox, write));
        tokio::spawn(ping(link.clone()));
        link
    }

    /// Send a frame; false when the link is closed.
    pub fn send(&self, frame: ToAgent) -> bool {
        !self.is_closed() && self.out.send(frame).is_ok()
    }

    /// Take the frames of `turn` from now on.
    pub fn open_turn(&self, turn: Uuid) -> Result<mpsc::Receiver<FromAgent>, Closed> {
        let (tx, rx) = mpsc::channel(TURN_QUEUE);
        let mut routes = lock(&self.routes);
        if let Some(c) = self.closed() {
            return Err(c);
        }
        routes.turns.insert(
            turn,
            Route {
                frames: tx,
                fragments: 0,
            },
        );
        Ok(rx)
    }

    /// `turn` is over; with `cancel`, the process is told to stop it, and what it still
    /// sends for the turn is dropped (after an answer, more is a protocol error).
    pub fn end_turn(&self, turn: Uuid, cancel: Option<String>) {
        {
            let mut routes = lock(&self.routes);
            routes.turns.remove(&turn);
            if cancel.is_some() {
                routes.cancelled.push_back(turn);
                if routes.cancelled.len() > CANCELLED_TURNS_KEPT {
                    routes.cancelled.pop_front();
                }
            }
        }
        if let Some(reason) = cancel {
            self.send(ToAgent::Cancel { turn, reason });
        }
    }

    /// Ask the process for a compaction summary, waiting up to [`SUMMARY_TIMEOUT`].
    pub async fn summarize(&self, history: Vec<ContextMessage>) -> Result<SummaryText, String> {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.routes).summaries.insert(request, tx);
        // However this ends, the request is forgotten.
        struct Forget<'a>(&'a Link, u64);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                lock(&self.0.routes).summaries.remove(&self.1);
            }
        }
        let _forget = Forget(self, request);
        if !self.send(ToAgent::Summarize { request, history }) {
            return Err(self.closed_reason());
        }
        match tokio::time::timeout(SUMMARY_TIMEOUT, rx).await {
            Ok(answer) => answer.map_err(|_| self.closed_reason())?,
            Err(_) => Err(format!("no summary within {SUMMARY_TIMEOUT:?}")),
        }
    }

    /// Close the link because the process broke the protocol (in `culprit`'s frames,
    /// when one turn's).
    pub fn cut_off(&self, why: String, culprit: Option<Uuid>) {
        self.close_with(Closed {
            reason: format!("cut off: {why}"),
            cut_off: true,
            culprit,
        });
    }

    /// Close the link (the process exited, or the Gateway stops).
    pub fn close(&self, why: String) {
        self.close_with(Closed {
            reason: why,
            cut_off: false,
            culprit: None,
        });
    }

    /// A frame of ours that cannot be written (too large): the one waiting for it is
    /// answered with `why`, and the link stays up.
    fn undeliverable(&self, frame: ToAgent, why: String) {
        tracing::warn!(%why, "a frame to an agent process was not sent");
        match frame {
            ToAgent::Answer { turn, call, .. } => {
                self.send(ToAgent::Answer {
                    turn,
                    call,
                    result: Err(why),
                });
            }
            ToAgent::Turn(request) => {
                let turn = request.input.turn_id;
                let route = lock(&self.routes)
                    .turns
                    .get(&turn)
                    .map(|r| r.frames.clone());
                if let Some(frames) = route {
                    let _ = frames.try_send(FromAgent::Failed {
                        turn,
                        error: format!("the turn could not be sent to the agent: {why}"),
                    });
                }
            }
            ToAgent::Summarize { request, .. } => {
                if let Some(tx) = lock(&self.routes).summaries.remove(&request) {
                    let _ = tx.send(Err(why));
                }
            }
            ToAgent::Cancel { .. } | ToAgent::Ping { .. } | ToAgent::Shutdown => {}
        }
    }

    fn close_with(&self, closed: Closed) {
        let mut routes = lock(&self.routes);
        let first = self.closed.send_if_modified(|c| {
            if c.is_some() {
                return false;
            }
            *c = Some(closed.clone());
            true
        });
        if first {
            if closed.cut_off {
                tracing::warn!(reason = %closed.reason, "agent process cut off");
            }
            // Every waiting turn and summary sees its channel end.
            routes.turns.clear();
            routes.summaries.clear();
        }
    }

    /// Why the link closed, when it did.
    pub fn closed(&self) -> Option<Closed> {
        self.closed.borrow().clone()
    }

    /// Whether the link closed (no copy of the reason; every frame sent asks).
    pub fn is_closed(&self) -> bool {
        self.closed.borrow().is_some()
    }

    /// Whether the process was cut off (every frame a turn handles asks).
    pub fn is_cut_off(&self) -> bool {
        self.closed.borrow().as_ref().is_some_and(|c| c.cut_off)
    }

    fn closed_reason(&self) -> String {
        self.closed()
            .map(|c| c.reason)
            .unwrap_or_else(|| "the agent process went away".into())
    }

    /// Wait until the link closes.
    pub async fn wait_closed(&self) -> Closed {
        let mut rx = self.closed.subscribe();
        let seen = rx
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|c| c.clone());
        seen.unwrap_or_else(|| Closed {
            reason: "closed".into(),
            cut_off: false,
            culprit: None,
        })
    }

    /// Time since the process last sent a frame, and whether it ever did since its hello
    /// (an agent loading a model answers its first ping late).
    pub fn silence(&self) -> (Duration, bool) {
        match *lock(&self.last_heard) {
            Some(t) => (t.elapsed(), true),
            None => (self.started.elapsed(), false),
        }
    }

    /// Deliver one frame from the process to whoever waits for it; `Err` names how it
    /// broke the protocol, and the turn whose frame did.
    fn route(&self, frame: FromAgent) -> Result<(), (String, Option<Uuid>)> {
        let mut routes = lock(&self.routes);
        if let FromAgent::Summary { request, result } = frame {
            return match routes.summaries.remove(&request) {
                Some(tx) => {
                    let _ = tx.send(result);
                    Ok(())
                }
                None => Err((
                    format!("it sent a summary for request {request}, which it was not asked for"),
                    None,
                )),
            };
        }
        let Some(turn) = frame.turn() else {
            return Ok(()); // a pong
        };
        let kind = frame_kind(&frame);
        let Some(route) = routes.turns.get_mut(&turn) else {
            if routes.cancelled.contains(&turn) {
                return Ok(()); // late frames of a cancelled turn
            }
            return Err((
                format!(
                    "it sent a `{kind}` frame for turn {turn}, which it was not given or had \
                     answered"
                ),
                None,
            ));
        };
        if kind == "delta" {
            route.fragments += 1;
            if route.fragments > MAX_FRAGMENTS_PER_TURN {
                return Err((
                    format!(
                        "it sent more than {MAX_FRAGMENTS_PER_TURN} reply fragments in turn {turn}"
                    ),
                    Some(turn),
                ));
            }
        }
        match route.frames.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err((
                format!(
                    "it flooded turn {turn}: more than {TURN_QUEUE} frames waiting to be recorded"
                ),
                Some(turn),
            )),
            // The turn ended between the lookup and now.
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
        }
    }
}

async fn read_frames<R>(link: Arc<Link>, mut read: FramedRead<R, FrameCodec>)
where
    R: AsyncRead + Unpin,
{
    let mut closed = link.closed.subscribe();
    loop {
        let next = tokio::select! {
            f = read.next() => f,
            _ = closed.wait_for(Option::is_some) => return,
        };
        let bytes = match next {
            None => return link.close("the agent process closed its stdout".into()),
            Some(Err(FrameError::Io(e))) => {
                return link.close(format!("reading from the agent process failed: {e}"))
            }
            Some(Err(e)) => return link.cut_off(format!("it sent {e}"), None),
            Some(Ok(b)) => b,
        };
        *lock(&link.last_heard) = Some(Instant::now());
        let frame = match read.decoder().parse::<FromAgent>(&bytes) {
            Ok(f) => f,
            Err(e) => return link.cut_off(format!("it sent {e}"), None),
        };
        if let Err((why, culprit)) = link.route(frame) {
            return link.cut_off(why, culprit);
        }
    }
}

async fn write_frames<W>(
    link: Arc<Link>,
    mut outbox: mpsc::UnboundedReceiver<ToAgent>,
    mut write: FramedWrite<W, FrameCodec>,
) where
    W: AsyncWrite + Unpin,
{
    let mut closed = link.closed.subscribe();
    loop {
        let frame = tokio::select! {
            f = outbox.recv() => f,
            _ = closed.wait_for(Option::is_some) => None,
        };
        let Some(frame) = frame else {
            return;
        };
        match write.send(&frame).await {
            Ok(()) => {}
            Err(FrameError::Io(e)) => {
                return link.close(format!("writing to the agent process failed: {e}"))
            }
            Err(e) => link.undeliverable(frame, e.to_string()),
        }
    }
}

async fn ping(link: Arc<Link>) {
    let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
    let mut n = 0;
    loop {
        tick.tick().await;
        n += 1;
        if !link.send(ToAgent::Ping { n }) {
            return;
        }
    }
}
