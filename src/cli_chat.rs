//! `clawos chat`: talk to your agent through the running Gateway from a terminal.

use anyhow::{bail, Context, Result};
use clawos_events::Durability;
use clawos_replay::Home;

use crate::cli_gateway::{gateway_address, get_json};

/// `clawos chat`: attach to the running Gateway as a terminal channel, with the recent
/// history of your session first.
pub async fn chat(home: &Home) -> Result<()> {
    let Some(addr) = gateway_address(home) else {
        bail!(
            "no Gateway is running for {} (start one with `clawos gateway`)",
            home.dir().display()
        );
    };
    let token = std::fs::read_to_string(home.dir().join("chat.token"))
        .with_context(|| format!("cannot read {}/chat.token", home.dir().display()))?;
    let admin = crate::cli_secrets::admin_token(home, Durability::Full).await?;
    let me = clawos_channels::terminal::local_address();
    if let Ok(sessions) = get_json(&format!("http://{addr}/api/sessions"), Some(&admin)).await {
        let mine = sessions
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s["identity"] == me.as_str())
            .max_by_key(|s| s["last_seq"].as_u64().unwrap_or(0));
        if let Some(s) = mine {
            let id = s["session_id"].as_str().unwrap_or_default();
            let active = s["active_branch"].as_str().unwrap_or("main");
            if let Ok(detail) =
                get_json(&format!("http://{addr}/api/sessions/{id}"), Some(&admin)).await
            {
                let branches = detail[0]["branches"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if let Some(b) = branches.iter().find(|b| b["branch"]["name"] == active) {
                    let t = b["transcript"].as_array().cloned().unwrap_or_default();
                    for m in t.iter().rev().take(20).rev() {
                        let who = if m["role"] == "user" { "you" } else { "pi" };
                        println!("{who}> {}", m["text"].as_str().unwrap_or(""));
                    }
                }
            }
        }
    }
    let identity = clawos_channels::client::ChannelIdentity {
        bus_url: format!("ws://{addr}/bus"),
        name: clawos_kernel::CHAT_CHANNEL.to_string(),
        kind: "terminal".into(),
        token: token.trim().to_string(),
    };
    clawos_channels::terminal::run(identity, true).await?;
    Ok(())
}
