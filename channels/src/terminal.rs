//! The terminal channel: each line on stdin is a message from the local user; replies are
//! printed to stdout. End of input (Ctrl-D) ends the channel with exit status 0.

use std::io::Write;

use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

use crate::client::{connect, ChannelIdentity, Incoming};
use crate::protocol::Inbound;
use crate::ChannelError;

/// The address of the local user on the terminal channel.
pub fn local_address() -> String {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "me".to_string());
    format!("terminal:{user}@local")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Print one incoming frame; returns the delivery to ack, if it was one.
fn show(
    shown: &mut std::collections::HashMap<String, String>,
    incoming: Incoming,
) -> Option<uuid::Uuid> {
    let mut out = std::io::stdout().lock();
    match incoming {
        Incoming::Partial {
            in_reply_to, text, ..
        } => {
            // Each frame holds the reply so far: print what is new since the last one.
            let so_far = shown.entry(in_reply_to).or_default();
            if so_far.is_empty() {
                let _ = write!(out, "pi> ");
            }
            let new = text.strip_prefix(so_far.as_str()).unwrap_or("").to_string();
            *so_far = text;
            let _ = write!(out, "{new}");
            let _ = out.flush();
            None
        }
        // A terminal shows the reply as it grows; no indicator before it.
        Incoming::Typing { .. } => None,
        Incoming::Deliver(d) => {
            let streamed = d
                .in_reply_to
                .as_ref()
                .and_then(|k| shown.remove(k))
                .unwrap_or_default();
            if !streamed.is_empty() && streamed == d.text {
                let _ = writeln!(out);
            } else {
                if !streamed.is_empty() {
                    let _ = writeln!(out);
                }
                let _ = writeln!(out, "pi> {}", d.text);
            }
            let _ = out.flush();
            Some(d.delivery_id)
        }
    }
}

/// Run the terminal channel until stdin closes.
pub async fn run(identity: ChannelIdentity, prompt: bool) -> Result<(), ChannelError> {
    let sender = local_address();
    let (bus, mut deliveries, client) = connect(identity);
    let printer = tokio::spawn({
        let bus = bus.clone();
        async move {
            // Replies stream in as fragments; the final delivery then only ends the line
            // when the fragments already showed all of it.
            let mut shown: std::collections::HashMap<String, String> = Default::default();
            while let Some(incoming) = deliveries.recv().await {
                let ack = show(&mut shown, incoming);
                if let Some(id) = ack {
                    let _ = bus.delivered(id).await;
                }
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    if prompt {
        eprintln!("connected as {sender}; type a message, Ctrl-D to leave");
    }
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                let text = line.trim();
                if text.is_empty() { continue; }
                bus.send_inbound(Inbound {
                    external_id: Uuid::now_v7().to_string(),
                    sender: sender.clone(),
                    chat: None,
                    text: text.to_string(),
                    attachments: vec![],
                    mentioned: true,
                    sent_at_ms: now_ms(),
                }).await?;
            }
            result = &mut Box::pin(async { client_done(&client).await }) => {
                return result;
            }
        }
    }
    // Give replies to the last messages a moment to arrive before leaving.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    printer.abort();
    Ok(())
}

async fn client_done(
    client: &tokio::task::JoinHandle<Result<(), ChannelError>>,
) -> Result<(), ChannelError> {
    // Poll the client task without taking ownership: it only ends on a refused hello.
    loop {
        if client.is_finished() {
            return Err(ChannelError::Closed);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
