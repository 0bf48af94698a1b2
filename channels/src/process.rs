//! A channel process's entry (`clawos channel KIND`): the kind named on its command
//! line; its bus identity, settings and secret from the environment the Gateway set.

use std::net::SocketAddr;

use crate::client::ChannelIdentity;
use crate::platform::{Adapter, KindSettings};
use crate::protocol::{ENV_CHANNEL_SECRET, ENV_CHANNEL_SETTINGS};
use crate::ChannelError;

/// The kinds of channel this build has, as `clawos.toml` names them.
pub const KINDS: &[&str] = &[
    "terminal",
    "webhook",
    "irc",
    "matrix",
    "xmpp",
    "email",
    "telegram",
    "slack",
    "discord",
    "signal",
    "imessage",
    "whatsapp",
    "whatsapp-web",
];

/// Why a channel process could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A kind this build does not have.
    #[error("unknown channel kind `{0}` (this build has: {known})", known = KINDS.join(", "))]
    UnknownKind(String),
    /// The Gateway's settings for it do not read or do not check.
    #[error("{kind} settings: {why}")]
    Settings {
        /// The kind.
        kind: String,
        /// What is wrong.
        why: String,
    },
    /// The channel itself stopped with an error.
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

/// Run the channel of `kind` until the Gateway goes away or refuses it.
pub async fn run(kind: &str) -> Result<(), ProcessError> {
    use crate as ch;
    match kind {
        "terminal" => {
            let id = ChannelIdentity::from_env("terminal")?;
            let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
            ch::terminal::run(id, interactive).await?;
        }
        "webhook" => {
            let id = ChannelIdentity::from_env("webhook")?;
            let var = |k: &str| std::env::var(k).map_err(|_| ChannelError::MissingEnv(k.into()));
            let listen: SocketAddr =
                var(ch::webhook::ENV_LISTEN)?
                    .parse()
                    .map_err(|e| ProcessError::Settings {
                        kind: kind.into(),
                        why: format!("bad listen address: {e}"),
                    })?;
            ch::webhook::run(id, listen, var(ch::webhook::ENV_SECRET)?).await?;
        }
        "irc" => adapter(kind, ch::irc::IrcAdapter::new).await?,
        "matrix" => adapter(kind, ch::matrix::MatrixAdapter::new).await?,
        "xmpp" => adapter(kind, ch::xmpp::XmppAdapter::new).await?,
        "email" => adapter(kind, ch::email::EmailAdapter::new).await?,
        "telegram" => adapter(kind, ch::telegram::TelegramAdapter::new).await?,
        "slack" => adapter(kind, ch::slack::SlackAdapter::new).await?,
        "discord" => adapter(kind, ch::discord::DiscordAdapter::new).await?,
        "signal" => adapter(kind, ch::signal::SignalAdapter::new).await?,
        "imessage" => adapter(kind, ch::imessage::ImessageAdapter::new).await?,
        "whatsapp" => adapter(kind, ch::whatsapp::WhatsappAdapter::new).await?,
        "whatsapp-web" => adapter(kind, ch::whatsapp_web::WhatsappWebAdapter::new).await?,
        other => return Err(ProcessError::UnknownKind(other.into())),
    }
    Ok(())
}

/// Run a platform adapter of `kind`, built from the settings and the secret the Gateway
/// put in the environment.
async fn adapter<S, A>(
    kind: &str,
    build: impl FnOnce(S, Option<String>) -> A,
) -> Result<(), ProcessError>
where
    S: KindSettings,
    A: Adapter,
{
    let id = ChannelIdentity::from_env(kind)?;
    let settings = || -> Result<S, String> {
        let json = std::env::var(ENV_CHANNEL_SETTINGS)
            .map_err(|_| format!("{ENV_CHANNEL_SETTINGS} is not set"))?;
        let s: S =
            serde_json::from_str(&json).map_err(|e| format!("{ENV_CHANNEL_SETTINGS}: {e}"))?;
        s.validate()?;
        Ok(s)
    };
    let settings = settings().map_err(|why| ProcessError::Settings {
        kind: kind.into(),
        why,
    })?;
    let secret = std::env::var(ENV_CHANNEL_SECRET).ok();
    crate::platform::runner::run(id, build(settings, secret)).await?;
    Ok(())
}
