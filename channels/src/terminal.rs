//! The terminal channel: each line on stdin is a message from the local user; replies are
//! printed to stdout. End of input (Ctrl-D) ends the channel with exit status 0.

use std::io::Write;

use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

use crate::client::{connect, ChannelIdentity};
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

/// Run the terminal channel until stdin closes.
pub async fn run(identity: ChannelIdentity, prompt: bool) -> Result<(), ChannelError> {
    let sender = local_address();
    let (bus, mut deliveries, client) = connect(identity);
    let printer = tokio::spawn({
        let bus = bus.clone();
        async move {
            while let Some(d) = deliveries.recv().await {
                {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "pi> {}", d.text);
                    let _ = out.flush();
                }
                let _ = bus.delivered(d.delivery_id).await;
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
