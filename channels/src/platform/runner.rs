//! The platform's main loop for one adapter: the bus on one side, the service on the
//! other.
//!
//! - Inbound messages are posted to the bus in the order the service gave them (the bus
//!   client re-sends each until the kernel acks it), and the adapter's stream is polled
//!   for the next one only after the kernel committed the last: an adapter that saves its
//!   position in the service after a `yield` never skips a message across a crash.
//! - A delivery is rendered, split and paced, then sent part by part; it is acked to the
//!   kernel only after its last part went out. A link that drops mid-delivery resumes at
//!   the part that failed, so no part is sent twice by this process.
//! - A failed connect or a dropped link is reported over the bus (`clawos status` shows
//!   it) and retried with backoff and jitter; a refusal only a person can fix (bad
//!   password) is retried slowly rather than in a loop.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures::future::OptionFuture;
use futures::StreamExt;

use super::format::render;
use super::pace::{reconnect_delays, Pacer, NEEDS_A_PERSON_DELAY};
use super::split::split;
use super::stream::Growing;
use super::typing::{Place, Typing};
use super::{Adapter, AdapterError, Capabilities, Outbox, Outgoing, OutgoingFile, TextFormat};
use crate::client::{connect, BusHandle, ChannelIdentity, Incoming};
use crate::media::MediaStore;
use crate::protocol::Delivery;
use crate::ChannelError;

/// A delivery being sent: its parts and how many went out.
struct Sending {
    delivery: Delivery,
    parts: Vec<Outgoing>,
    sent: usize,
    /// The message that showed the reply growing: the first part replaces its text.
    edit_first: Option<String>,
}

/// Render and split a reply into the messages the service will get: its text parts, then
/// one message per attachment. A service that takes no files, or a file whose blob is not
/// in the media store, gets a line that names the file instead, so the person knows
/// something was meant for them.
pub fn prepare(
    delivery: &Delivery,
    caps: &Capabilities,
    media: Option<&MediaStore>,
) -> Vec<Outgoing> {
    let mut text = delivery.text.clone();
    let mut files = Vec::new();
    for a in &delivery.attachments {
        let path = a
            .blake3
            .as_deref()
            .and_then(|h| media.and_then(|m| m.path_of(h).ok()))
            .filter(|p| p.is_file());
        match path {
            Some(path) if caps.attachments_out => files.push(OutgoingFile {
                attachment: a.clone(),
                path,
            }),
            Some(_) => text.push_str(&format!(
                "\n\n(attachment {} not sent: this channel cannot carry files)",
                a.name
            )),
            None => {
                tracing::warn!(delivery = %delivery.delivery_id, name = %a.name,
                    hash = ?a.blake3, "an attachment's blob is missing from the media store");
                text.push_str(&format!(
                    "\n\n(attachment {} not sent: its bytes are missing from the media store)",
                    a.name
                ));
            }
        }
    }
    let mut parts = prepare_text(delivery, &text, caps);
    parts.extend(files.into_iter().map(|file| Outgoing {
        to: delivery.to.clone(),
        chat: delivery.chat.clone(),
        text: String::new(),
        in_reply_to: if caps.threads {
            delivery.in_reply_to.clone()
        } else {
            None
        },
        file: Some(file),
    }));
    parts
}

fn prepare_text(delivery: &Delivery, text: &str, caps: &Capabilities) -> Vec<Outgoing> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    let texts: Vec<String> = match caps.text_format {
        // Markup survives splitting only when split first: each part renders alone.
        TextFormat::Markdown | TextFormat::Html => {
            split(text, caps.max_message_len, caps.length_unit)
                .into_iter()
                .map(|p| render(&p, caps.text_format))
                .collect()
        }
        TextFormat::Plain | TextFormat::Irc => {
            let text = render(text, caps.text_format);
            if caps.multiline {
                split(&text, caps.max_message_len, caps.length_unit)
            } else {
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .flat_map(|l| split(l, caps.max_message_len, caps.length_unit))
                    .collect()
            }
        }
    };
    texts
        .into_iter()
        .map(|text| Outgoing {
            to: delivery.to.clone(),
            chat: delivery.chat.clone(),
            text,
            in_reply_to: if caps.threads {
                delivery.in_reply_to.clone()
            } else {
                None
            },
            file: None,
        })
        .collect()
}

/// Run `adapter` until the bus client stops (a refused hello) or the kernel goes away.
pub async fn run<A: Adapter>(
    identity: ChannelIdentity,
    mut adapter: A,
) -> Result<(), ChannelError> {
    let caps = adapter.capabilities();
    let (bus, mut incoming, client) = connect(identity);
    let shape = Shape {
        pacer: Pacer::new(caps.rate_limit),
        caps,
        media: MediaStore::from_env(),
    };
    let mut work = Work::default();
    let mut delays = reconnect_delays();
    loop {
        if client.is_finished() {
            return client.await.unwrap_or(Err(ChannelError::Closed));
        }
        let down = match adapter.connect().await {
            Ok((outbox, inbound)) => {
                let _ = bus.link(true, "connected").await;
                delays = reconnect_delays();
                match serve(&bus, &shape, &outbox, inbound, &mut incoming, &mut work).await {
                    Served::BusClosed => {
                        return client.await.unwrap_or(Err(ChannelError::Closed));
                    }
                    Served::LinkDown(e) => e,
                }
            }
            Err(e) => e,
        };
        let delay = if down.needs_a_person() {
            NEEDS_A_PERSON_DELAY
        } else {
            delays.next().unwrap_or(super::pace::RECONNECT_CAP)
        };
        tracing::warn!(error = %down, "link down; reconnecting in {delay:?}");
        let _ = bus
            .link(
                false,
                format!("{down}; retrying in {}s", delay.as_secs_f32().ceil()),
            )
            .await;
        // Deliveries keep arriving while the link is down; queue them.
        let wait = tokio::time::sleep(delay);
        tokio::pin!(wait);
        let hint = adapter.retry_hint();
        tokio::pin!(hint);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                _ = &mut hint, if down.needs_a_person() => break,
                d = incoming.recv() => match d {
                    // A reply cannot grow while the link is down; it arrives whole.
                    Some(Incoming::Partial { .. }) => {}
                    Some(d) => work.take(d, &shape),
                    None => return client.await.unwrap_or(Err(ChannelError::Closed)),
                },
            }
        }
    }
}

async fn sleep_until(at: Option<std::time::Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

/// Send or edit the message that shows the reply to `key` growing.
async fn show_growing<O: Outbox>(
    shape: &Shape,
    outbox: &O,
    growing: &mut Growing,
    key: &str,
) -> Result<(), AdapterError> {
    let Some((message, edit)) = growing.preview(key, &shape.caps) else {
        return Ok(());
    };
    shape.pacer.ready().await;
    let shown = match &edit {
        Some(id) => outbox.edit(id, &message).await.map(|_| None),
        None => outbox.send(&message).await,
    };
    match shown {
        Ok(id) => growing.shown(key, id),
        // The service would not show it: the final delivery still will.
        Err(AdapterError::Refused(why)) => {
            tracing::warn!(%why, "a growing reply could not be shown");
            growing.shown(key, None);
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

enum Served {
    BusClosed,
    LinkDown(AdapterError),
}

/// What shapes a channel's sending: the service's capabilities, its pacing, and the media
/// store attachments are read from.
struct Shape {
    caps: Capabilities,
    pacer: Pacer,
    media: Option<MediaStore>,
}

/// Outbound work: deliveries queued in order, and replies growing in place.
#[derive(Default)]
struct Work {
    backlog: VecDeque<Sending>,
    growing: Growing,
    typing: Typing,
}

impl Work {
    fn take(&mut self, incoming: Incoming, shape: &Shape) {
        match incoming {
            Incoming::Deliver(d) => {
                if let Some(k) = d.in_reply_to.as_deref() {
                    self.typing.stop(k);
                }
                let edit_first = d
                    .in_reply_to
                    .as_deref()
                    .and_then(|k| self.growing.finish(k));
                queue(&mut self.backlog, d, shape, edit_first);
            }
            Incoming::Partial {
                in_reply_to,
                to,
                chat,
                text,
            } if shape.caps.edits => {
                // The reply shows as it grows: that is better than an indicator.
                self.typing.stop(&in_reply_to);
                self.growing.update(in_reply_to, to, chat, text)
            }
            Incoming::Partial { .. } => {}
            Incoming::Typing {
                in_reply_to,
                to,
                chat,
            } if shape.caps.typing => {
                self.typing
                    .start(in_reply_to, Place { to, chat }, Instant::now())
            }
            Incoming::Typing { .. } => {}
        }
    }
}

fn queue(
    backlog: &mut VecDeque<Sending>,
    delivery: Delivery,
    shape: &Shape,
    edit_first: Option<String>,
) {
    // The kernel re-sends unacked deliveries after a bus reconnect: one copy is enough.
    if backlog
        .iter()
        .any(|s| s.delivery.delivery_id == delivery.delivery_id)
    {
        return;
    }
    let parts = prepare(&delivery, &shape.caps, shape.media.as_ref());
    backlog.push_back(Sending {
        delivery,
        parts,
        sent: 0,
        edit_first,
    });
}

async fn serve<O: Outbox>(
    bus: &BusHandle,
    shape: &Shape,
    outbox: &O,
    mut inbound: super::InboundStream,
    incoming: &mut tokio::sync::mpsc::Receiver<Incoming>,
    work: &mut Work,
) -> Served {
    // The ack of the last inbound message, while the kernel has not committed it.
    let mut committing: Option<tokio::sync::oneshot::Receiver<crate::client::InboundAck>> = None;
    loop {
        // Send what is queued first, one part at a time, reading new work between parts.
        if let Some(front) = work.backlog.front_mut() {
            if front.sent < front.parts.len() {
                shape.pacer.ready().await;
                let part = &front.parts[front.sent];
                let sent = match (front.sent, &front.edit_first) {
                    (0, Some(id)) if part.file.is_none() => {
                        outbox.edit(id, part).await.map(|_| None)
                    }
                    _ => outbox.send(part).await,
                };
                match sent {
                    Ok(_) => front.sent += 1,
                    Err(AdapterError::Refused(why)) => {
                        tracing::warn!(delivery = %front.delivery.delivery_id, %why,
                            "the service refused a reply; it is not sent again");
                        front.sent = front.parts.len();
                    }
                    Err(e) => return Served::LinkDown(e),
                }
            }
            if front.sent >= front.parts.len() {
                let id = front.delivery.delivery_id;
                work.backlog.pop_front();
                if bus.delivered(id).await.is_err() {
                    return Served::BusClosed;
                }
            }
        }
        let idle = work.backlog.is_empty();
        let due = work.growing.next_due(shape.caps.edit_interval);
        let typing = work.typing.next_due();
        tokio::select! {
            biased;
            ack = OptionFuture::from(committing.as_mut()), if committing.is_some() => {
                committing = None;
                if !matches!(ack, Some(Ok(_))) {
                    return Served::BusClosed;
                }
            }
            m = inbound.next(), if committing.is_none() => match m {
                Some(Ok(m)) => match bus.post_inbound(m).await {
                    Ok(ack) => committing = Some(ack),
                    Err(_) => return Served::BusClosed,
                },
                Some(Err(e)) => return Served::LinkDown(e),
                None => return Served::LinkDown(AdapterError::Link("the service closed the connection".into())),
            },
            d = incoming.recv() => match d {
                Some(d) => work.take(d, shape),
                None => return Served::BusClosed,
            },
            // A growing reply is due to be shown (sent, or edited).
            _ = sleep_until(due.as_ref().map(|(_, at)| *at)), if due.is_some() && idle => {
                if let Some((key, _)) = due {
                    if let Err(e) = show_growing(shape, outbox, &mut work.growing, &key).await {
                        return Served::LinkDown(e);
                    }
                }
            }
            // A typing indicator is due (first shown, or renewed).
            _ = sleep_until(typing.as_ref().map(|(_, at)| *at)), if typing.is_some() && idle => {
                if let Some((key, _)) = typing {
                    if let Some(place) = work.typing.sending(&key, Instant::now()) {
                        if let Err(e) = outbox.typing(&place.to, place.chat.as_deref(), &key).await {
                            tracing::debug!(error = %e, "a typing indicator was not shown");
                        }
                    }
                }
            }
            // With work queued, go back to sending at once.
            _ = tokio::time::sleep(Duration::ZERO), if !idle => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{LengthUnit, RateLimit};
    use uuid::Uuid;

    fn caps(format: TextFormat, multiline: bool, max: usize) -> Capabilities {
        let pacing = RateLimit {
            burst: 5,
            every: Duration::from_secs(1),
        };
        Capabilities {
            multiline,
            ..Capabilities::text(max, LengthUnit::Bytes, format, pacing)
        }
    }

    fn delivery(text: &str) -> Delivery {
        Delivery {
            delivery_id: Uuid::nil(),
            to: "irc:alice@test".into(),
            chat: Some("#room".into()),
            text: text.into(),
            in_reply_to: Some("m1".into()),
            seq: 7,
            attachments: vec![],
        }
    }

    #[test]
    fn a_single_line_service_gets_one_message_per_line() {
        let parts = prepare(
            &delivery("**Hi** there.\n\n- a\n- b"),
            &caps(TextFormat::Irc, false, 400),
            None,
        );
        let texts: Vec<&str> = parts.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, vec!["\u{2}Hi\u{2} there.", "- a", "- b"]);
        assert!(parts
            .iter()
            .all(|p| p.chat.as_deref() == Some("#room") && p.in_reply_to.is_none()));
    }

    #[test]
    fn markdown_services_get_split_markdown_with_threads() {
        let mut c = caps(TextFormat::Markdown, true, 30);
        c.threads = true;
        let parts = prepare(
            &delivery("First sentence goes here. Second sentence goes here."),
            &c,
            None,
        );
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.in_reply_to.as_deref() == Some("m1")));
    }

    #[test]
    fn attachments_go_after_the_text_or_are_named_where_they_cannot_go() {
        let dir = tempfile::tempdir().unwrap();
        let media = MediaStore::new(dir.path(), 1024);
        let kept = media
            .put("cat.png", Some("image/png"), b"png bytes")
            .unwrap();
        let mut lost = kept.clone();
        lost.name = "gone.png".into();
        lost.blake3 = Some("0".repeat(64));
        let mut d = delivery("Here you go.");
        d.attachments = vec![kept.clone(), lost];
        let mut c = caps(TextFormat::Plain, true, 400);
        c.attachments_out = true;
        let parts = prepare(&d, &c, Some(&media));
        assert_eq!(parts.len(), 2);
        assert!(parts[0]
            .text
            .contains("gone.png not sent: its bytes are missing"));
        let file = parts[1].file.as_ref().unwrap();
        assert_eq!(file.attachment, kept);
        assert_eq!(file.read().unwrap(), b"png bytes");
        assert!(parts[1].text.is_empty());

        // A text-only service names the file instead.
        let parts = prepare(&d, &caps(TextFormat::Plain, true, 400), Some(&media));
        assert_eq!(parts.len(), 1);
        assert!(parts[0]
            .text
            .contains("cat.png not sent: this channel cannot carry files"));
    }
}
