//! The channel part of `clawos doctor`: each channel reaches its server and, where the
//! service can say so, its credentials (from the vault or the section) are accepted.

use std::time::Duration;

use clawos_channels::platform::AdapterError;
use clawos_kernel::config::{settings_as, ChannelConfig, Config};
use clawos_kernel::vault::Vault;
use clawos_replay::Home;

/// How long one channel's check may take.
const WITHIN: Duration = Duration::from_secs(5);

/// A channel's secret: the inline `secret`, or the vault's `secret_name` (`None` when
/// neither is there or the vault cannot be opened).
async fn secret_of(vault: Option<&Vault>, c: &ChannelConfig) -> Option<String> {
    if let Some(s) = &c.secret {
        return Some(s.clone());
    }
    let bytes = vault?.get(c.secret_name.as_deref()?).await.ok().flatten()?;
    Some(String::from_utf8_lossy(&bytes).trim().to_string())
}

/// What a check found: the server it tried, and who the service says the bot is (if it
/// says), or why it failed.
type Checked = (String, Result<Option<String>, AdapterError>);

/// Check one channel; `None` for a kind with nothing to reach (terminal, webhook) or
/// settings that do not read (the config check reports those).
async fn check(
    home: &Home,
    name: &str,
    c: &ChannelConfig,
    secret: Option<&str>,
) -> Option<Checked> {
    use clawos_channels as ch;
    let unit = |r: Result<(), AdapterError>| r.map(|()| None);
    let named = |r: Result<String, AdapterError>| r.map(Some);
    Some(match c.kind.as_str() {
        "irc" => {
            let s = settings_as::<ch::irc::IrcSettings>(&c.settings).ok()?;
            let how = if s.tls { "TLS" } else { "plain TCP" };
            let r = unit(ch::irc::link::probe(&s, WITHIN).await);
            (format!("{} ({how})", s.server), r)
        }
        "matrix" => {
            let s = settings_as::<ch::matrix::MatrixSettings>(&c.settings).ok()?;
            let r = unit(ch::matrix::api::probe(&s, WITHIN).await);
            (s.homeserver.clone(), r)
        }
        "xmpp" => {
            let s = settings_as::<ch::xmpp::XmppSettings>(&c.settings).ok()?;
            let target = match s.host_port() {
                Ok((h, p)) => format!("{h}:{p}"),
                Err(_) => s.jid.clone(),
            };
            (target, unit(ch::xmpp::link::probe(&s, WITHIN).await))
        }
        "email" => {
            let s = settings_as::<ch::email::EmailSettings>(&c.settings).ok()?;
            let r = unit(ch::email::imap::probe(&s, WITHIN).await);
            (format!("IMAP {}", s.imap_server), r)
        }
        "signal" => {
            let s = settings_as::<ch::signal::SignalSettings>(&c.settings).ok()?;
            let r = ch::signal::api::probe(&s, WITHIN).await.map(|_| None);
            (format!("signal-cli at {}", s.url), r)
        }
        "discord" => {
            let s = settings_as::<ch::discord::DiscordSettings>(&c.settings).ok()?;
            let r = unit(ch::discord::api::probe(&s, secret, WITHIN).await);
            (s.api_url(), r)
        }
        "telegram" => {
            let s = settings_as::<ch::telegram::TelegramSettings>(&c.settings).ok()?;
            let r = named(ch::telegram::api::probe(&s, secret, WITHIN).await);
            (s.api_url(), r)
        }
        "slack" => {
            let s = settings_as::<ch::slack::SlackSettings>(&c.settings).ok()?;
            let r = named(ch::slack::api::probe(&s, secret, WITHIN).await);
            (s.api_url(), r)
        }
        "whatsapp" => {
            let s = settings_as::<ch::whatsapp::WhatsappSettings>(&c.settings).ok()?;
            let r = match ch::whatsapp::settings::split_secret(secret) {
                Ok((token, _)) => named(ch::whatsapp::api::probe(&s, &token, WITHIN).await),
                Err(e) => Err(e),
            };
            (s.api_url(), r)
        }
        "imessage" => {
            let s = settings_as::<ch::imessage::ImessageSettings>(&c.settings).ok()?;
            let r = unit(ch::imessage::api::probe(&s, secret, WITHIN).await);
            (s.url.clone(), r)
        }
        "whatsapp-web" => {
            // Nothing to dial without a session: whether a phone is linked is the check.
            let dir = home.dir().join("channels").join(name);
            let r = match ch::whatsapp_web::store::SessionStore::open(&dir) {
                Err(e) => Err(AdapterError::Config(e.to_string())),
                Ok(s) => match ch::whatsapp_web::pair::linked_number(&s).await {
                    Some(n) => Ok(Some(format!("+{n}"))),
                    None => Err(AdapterError::AuthRefused(ch::whatsapp_web::not_linked(
                        name,
                    ))),
                },
            };
            ("a linked phone".to_string(), r)
        }
        _ => return None,
    })
}

/// Check every configured channel and print a line each; the number of problems.
pub async fn channels(home: &Home, config: &Config) -> usize {
    let needs_vault = config
        .channels
        .values()
        .any(|c| c.secret.is_none() && c.secret_name.is_some());
    let vault = match needs_vault {
        true => Vault::open(home.dir()).await.ok(),
        false => None,
    };
    let mut problems = 0;
    for (name, c) in &config.channels {
        let secret = secret_of(vault.as_ref(), c).await;
        let Some((target, reached)) = check(home, name, c, secret.as_deref()).await else {
            continue;
        };
        match reached {
            Ok(None) => println!("channel {name} ({}): reaches {target}", c.kind),
            Ok(Some(who)) => println!("channel {name} ({}): reaches {target} as {who}", c.kind),
            Err(e) => {
                problems += 1;
                println!("channel {name} ({}): cannot reach {target}: {e}", c.kind);
            }
        }
    }
    if let Some(v) = vault {
        v.close().await;
    }
    problems
}
