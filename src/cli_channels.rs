//! `clawos channels add KIND`: a walk through a channel's settings. The answers become a
//! `[channels.NAME]` section of `clawos.toml` (checked before it is written) and the
//! password goes into the vault, never into the file.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use clawos_events::Durability;
use clawos_kernel::config::{Config, DEFAULT_CONFIG};
use clawos_replay::Home;

/// `clawos channels ...`
#[derive(Subcommand)]
pub enum ChannelsCommand {
    /// Add a channel, asking for its settings (`irc`, `matrix`, `xmpp`, `email`).
    Add {
        /// The kind of channel.
        kind: String,
        /// Its name in clawos.toml (default: the kind).
        #[arg(long)]
        name: Option<String>,
    },
    /// Link a WhatsApp channel (`kind = "whatsapp-web"`) to a phone: shows QR codes to
    /// scan (or a pairing code, with `pair_phone` set) until the phone links it.
    Pair {
        /// The channel's name in clawos.toml.
        name: String,
    },
}

/// Asks questions on stdin (a prompt on stderr when it is a terminal).
pub(crate) struct Asker<R: BufRead> {
    input: R,
    interactive: bool,
}

impl Asker<std::io::StdinLock<'static>> {
    /// An asker on this process's stdin.
    pub(crate) fn stdin() -> Self {
        let stdin = std::io::stdin();
        Asker {
            interactive: stdin.is_terminal(),
            input: stdin.lock(),
        }
    }
}

impl<R: BufRead> Asker<R> {
    /// One answer; an empty one is `default`; end of input without a default is an error.
    pub(crate) fn ask(&mut self, question: &str, default: Option<&str>) -> Result<String> {
        if self.interactive {
            match default {
                Some(d) => eprint!("{question} [{d}]: "),
                None => eprint!("{question}: "),
            }
            std::io::stderr().flush()?;
        }
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 && default.is_none() {
            bail!("no answer to `{question}` (end of input)");
        }
        let answer = line.trim().to_string();
        Ok(if answer.is_empty() {
            default.unwrap_or_default().to_string()
        } else {
            answer
        })
    }

    /// A secret: a hidden prompt on a terminal, else one line of stdin.
    pub(crate) fn secret(&mut self, question: &str) -> Result<String> {
        if self.interactive {
            return Ok(rpassword::prompt_password(format!("{question}: "))?);
        }
        self.ask(question, None)
    }
}

/// `s` as a TOML string (quoted, escaped).
pub(crate) fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The IRC questions; returns the section and the password, if any.
fn ask_irc<R: BufRead>(a: &mut Asker<R>, name: &str) -> Result<(String, Option<String>)> {
    let server = a.ask("IRC server (host:port)", Some("irc.libera.chat:6697"))?;
    let tls = a.ask("use TLS? (yes/no)", Some("yes"))?;
    let tls = !matches!(tls.to_lowercase().as_str(), "no" | "n" | "false");
    let nick = a.ask("the bot's nick", Some("clawbot"))?;
    let channels = list(&a.ask("channels to join, comma-separated (e.g. #clawos)", Some(""))?);
    let auth = a.ask("log in with sasl, nickserv or none", Some("sasl"))?;
    let mut section = format!(
        "\n[channels.{name}]\nkind = \"irc\"\nserver = {}\ntls = {tls}\nnick = {}\nchannels = [{}]\nauth = {}\n",
        quoted(&server),
        quoted(&nick),
        channels,
        quoted(&auth)
    );
    let password = if auth == "none" {
        None
    } else {
        section.push_str(&format!("secret_name = {}\n", quoted(name)));
        Some(a.secret("the account's password (kept in the vault)")?)
    };
    section.push_str("# Who may talk in private: \"pairing\" (default), \"allowlist\" or \"open\".\ndm_policy = \"pairing\"\n# In channels: answer when \"mention\"ed (default), \"always\" or \"never\".\ngroup_policy = \"mention\"\n");
    Ok((section, password))
}

/// The Matrix questions; returns the section and the password.
fn ask_matrix<R: BufRead>(a: &mut Asker<R>, name: &str) -> Result<(String, Option<String>)> {
    let homeserver = a.ask("homeserver URL", Some("https://matrix.org"))?;
    let user_id = a.ask("the bot's user id (@name:server)", None)?;
    let rooms = list(&a.ask(
        "rooms to join, comma-separated (!id or #alias:server)",
        Some(""),
    )?);
    let invites = a.ask("accept room invites from: all, listed or none", Some("all"))?;
    let password = a.secret("the bot account's password (kept in the vault)")?;
    let section = format!(
        "\n[channels.{name}]\nkind = \"matrix\"\nhomeserver = {}\nuser_id = {}\nrooms = [{}]\ninvites = {}\nsecret_name = {}\n\
         # Who may talk in direct chats: \"pairing\" (default), \"allowlist\" or \"open\".\ndm_policy = \"pairing\"\n\
         # In rooms: answer when \"mention\"ed (default), \"always\" or \"never\".\ngroup_policy = \"mention\"\n",
        quoted(&homeserver),
        quoted(&user_id),
        rooms,
        quoted(&invites),
        quoted(name)
    );
    Ok((section, Some(password)))
}

/// The Discord questions; returns the section and the bot token.
fn ask_discord<R: BufRead>(a: &mut Asker<R>, name: &str) -> Result<(String, Option<String>)> {
    let api_url = a.ask("REST API base URL", Some("https://discord.com/api/v10"))?;
    let token =
        a.secret("the bot token (developer portal, your application, Bot; kept in the vault)")?;
    let section = format!(
        "\n[channels.{name}]\nkind = \"discord\"\napi_url = {}\nsecret_name = {}\n\
         # Who may talk in DMs: \"pairing\" (default), \"allowlist\" or \"open\".\ndm_policy = \"pairing\"\n\
         # In guild channels: answer when \"mention\"ed (default), \"always\" or \"never\".\ngroup_policy = \"mention\"\n",
        quoted(&api_url),
        quoted(name)
    );
    Ok((section, Some(token)))
}

/// The XMPP questions; returns the section and the password.
fn ask_xmpp<R: BufRead>(a: &mut Asker<R>, name: &str) -> Result<(String, Option<String>)> {
    let jid = a.ask("the bot's account (JID, name@example.org)", None)?;
    let server = a.ask(
        "server host:port (empty: the JID's domain, port 5222)",
        Some(""),
    )?;
    let rooms = list(&a.ask(
        "group chats to join, comma-separated (room@conference.example.org)",
        Some(""),
    )?);
    let password = a.secret("the account's password (kept in the vault)")?;
    let server = if server.is_empty() {
        String::new()
    } else {
        format!("server = {}\n", quoted(&server))
    };
    let section = format!(
        "\n[channels.{name}]\nkind = \"xmpp\"\njid = {}\n{server}rooms = [{rooms}]\nsecret_name = {}\n\
         # Who may talk in 1:1 chats: \"pairing\" (default), \"allowlist\" or \"open\".\ndm_policy = \"pairing\"\n\
         # In group chats: answer when \"mention\"ed (default), \"always\" or \"never\".\ngroup_policy = \"mention\"\n",
        quoted(&jid),
        quoted(name)
    );
    Ok((section, Some(password)))
}

/// The email questions; returns the section and the password.
fn ask_email<R: BufRead>(a: &mut Asker<R>, name: &str) -> Result<(String, Option<String>)> {
    let address = a.ask("the bot's address (bot@example.com)", None)?;
    let domain = address
        .split_once('@')
        .map(|(_, d)| d)
        .unwrap_or("example.com");
    let imap = a.ask("IMAP server host:port", Some(&format!("imap.{domain}:993")))?;
    let imap_tls = a.ask("IMAP security: tls or starttls", Some("tls"))?;
    let smtp = a.ask(
        "SMTP submission server host:port",
        Some(&format!("smtp.{domain}:465")),
    )?;
    let smtp_tls = a.ask("SMTP security: tls or starttls", Some("tls"))?;
    let ca = a.ask(
        "a CA file to trust besides the public roots (empty: none)",
        Some(""),
    )?;
    let password = a.secret("the mailbox password (kept in the vault)")?;
    let ca = if ca.is_empty() {
        String::new()
    } else {
        format!("tls_ca_file = {}\n", quoted(&ca))
    };
    let section = format!(
        "\n[channels.{name}]\nkind = \"email\"\naddress = {}\nimap_server = {}\nimap_tls = {}\n\
         smtp_server = {}\nsmtp_tls = {}\n{ca}secret_name = {}\n\
         # Who may write: \"allowlist\" with allow = [\"email:you@example.com\"] is safest for mail.\n\
         dm_policy = \"allowlist\"\nallow = []\n",
        quoted(&address),
        quoted(&imap),
        quoted(&imap_tls),
        quoted(&smtp),
        quoted(&smtp_tls),
        quoted(name)
    );
    Ok((section, Some(password)))
}

/// The Telegram questions; returns the section and the bot token.
fn ask_telegram<R: BufRead>(a: &mut Asker<R>, name: &str) -> Result<(String, Option<String>)> {
    use clawos_channels::telegram::settings::DEFAULT_API_URL;
    let url = a.ask("the Bot API URL", Some(DEFAULT_API_URL))?;
    let token = a.secret("the bot token from @BotFather (kept in the vault)")?;
    let api = if url == DEFAULT_API_URL {
        String::new()
    } else {
        format!("api_url = {}\n", quoted(&url))
    };
    let section = format!(
        "\n[channels.{name}]\nkind = \"telegram\"\n{api}secret_name = {}\n\
         # Who may talk in private chats: \"pairing\" (default), \"allowlist\" or \"open\".\ndm_policy = \"pairing\"\n\
         # In groups: answer when \"mention\"ed (@username, or a reply to the bot; default), \"always\" or \"never\".\ngroup_policy = \"mention\"\n",
        quoted(name)
    );
    Ok((section, Some(token)))
}

/// The WhatsApp Cloud API questions; returns the section and the secret
/// `ACCESS_TOKEN:APP_SECRET`.
fn ask_whatsapp<R: BufRead>(a: &mut Asker<R>, name: &str) -> Result<(String, Option<String>)> {
    use clawos_channels::whatsapp::settings::DEFAULT_API_URL;
    let url = a.ask("the Graph API URL", Some(DEFAULT_API_URL))?;
    let number = a.ask("the phone number id (WhatsApp Manager, API Setup)", None)?;
    let listen = a.ask("where the webhook listens", Some("127.0.0.1:8444"))?;
    let verify = a.ask(
        "the webhook's verify token (as typed in the Meta app)",
        None,
    )?;
    let secret = a.secret(
        "ACCESS_TOKEN:APP_SECRET (the permanent token, a colon, the app secret; kept in the vault)",
    )?;
    let api = if url == DEFAULT_API_URL {
        String::new()
    } else {
        format!("api_url = {}\n", quoted(&url))
    };
    let section = format!(
        "\n[channels.{name}]\nkind = \"whatsapp\"\n{api}phone_number_id = {}\nwebhook_listen = {}\n\
         verify_token = {}\nsecret_name = {}\n\
         # Who may write: \"pairing\" (default), \"allowlist\" or \"open\".\ndm_policy = \"pairing\"\n",
        quoted(&number),
        quoted(&listen),
        quoted(&verify),
        quoted(name)
    );
    Ok((section, Some(secret)))
}

/// The Signal questions; returns the section (signal-cli has no password).
fn ask_signal<R: BufRead>(a: &mut Asker<R>, name: &str) -> Result<(String, Option<String>)> {
    let url = a.ask(
        "the signal-cli daemon's URL (signal-cli -a +NUMBER daemon --http)",
        Some(clawos_channels::signal::settings::DEFAULT_URL),
    )?;
    let account = a.ask(
        "the bot's number, registered or linked in signal-cli (+E.164)",
        None,
    )?;
    let dir = a.ask(
        "signal-cli's attachments folder (empty: ~/.local/share/signal-cli/attachments)",
        Some(""),
    )?;
    let bot_name = a.ask("a name that addresses the bot in groups", Some("clawbot"))?;
    let dir = if dir.is_empty() {
        String::new()
    } else {
        format!("attachments_dir = {}\n", quoted(&dir))
    };
    let section = format!(
        "\n[channels.{name}]\nkind = \"signal\"\nurl = {}\naccount = {}\n{dir}name = {}\n\
         # Who may talk in direct messages: \"pairing\" (default), \"allowlist\" or \"open\".\ndm_policy = \"pairing\"\n\
         # In groups: answer when \"mention\"ed (default), \"always\" or \"never\".\ngroup_policy = \"mention\"\n",
        quoted(&url),
        quoted(&account),
        quoted(&bot_name)
    );
    Ok((section, None))
}

/// The Slack questions; returns the section and the app's two tokens (`xapp-…:xoxb-…`).
fn ask_slack<R: BufRead>(a: &mut Asker<R>, name: &str) -> Result<(String, Option<String>)> {
    use clawos_channels::slack::settings::{tokens_of, DEFAULT_API_URL};
    let url = a.ask("the Web API URL", Some(DEFAULT_API_URL))?;
    let app = a.secret("the app-level token, xapp-… (Socket Mode; kept in the vault)")?;
    let bot = a.secret("the bot token, xoxb-… (kept in the vault)")?;
    let pair = format!("{}:{}", app.trim(), bot.trim());
    tokens_of(&pair).map_err(|e| anyhow::anyhow!(e))?;
    let api = if url == DEFAULT_API_URL {
        String::new()
    } else {
        format!("api_url = {}\n", quoted(&url))
    };
    let section = format!(
        "\n[channels.{name}]\nkind = \"slack\"\n{api}secret_name = {}\n\
         # Who may talk in direct messages: \"pairing\" (default), \"allowlist\" or \"open\".\ndm_policy = \"pairing\"\n\
         # In channels: answer when \"mention\"ed (default), \"always\" or \"never\".\ngroup_policy = \"mention\"\n",
        quoted(name)
    );
    Ok((section, Some(pair)))
}

/// The iMessage (BlueBubbles) questions; returns the section and the server password.
fn ask_imessage<R: BufRead>(a: &mut Asker<R>, name: &str) -> Result<(String, Option<String>)> {
    let url = a.ask("the BlueBubbles server's URL (http://HOST:1234)", None)?;
    let bot_name = a.ask("a name that addresses the bot in groups", Some("clawbot"))?;
    let private = a.ask(
        "does the server have the Private API (threaded replies)? (yes/no)",
        Some("no"),
    )?;
    let private = matches!(private.to_lowercase().as_str(), "yes" | "y" | "true");
    let password = a.secret("the BlueBubbles server password (kept in the vault)")?;
    let section = format!(
        "\n[channels.{name}]\nkind = \"imessage\"\nurl = {}\nname = {}\nprivate_api = {private}\nsecret_name = {}\n\
         # Who may talk in direct chats: \"pairing\" (default), \"allowlist\" or \"open\".\ndm_policy = \"pairing\"\n\
         # In group chats: answer when \"mention\"ed (default), \"always\" or \"never\".\ngroup_policy = \"mention\"\n",
        quoted(&url),
        quoted(&bot_name),
        quoted(name)
    );
    Ok((section, Some(password)))
}

/// A comma-separated answer as a TOML list's items.
fn list(answer: &str) -> String {
    answer
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(quoted)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `clawos channels add KIND`.
pub async fn run(home: &Home, durability: Durability, cmd: ChannelsCommand) -> Result<()> {
    match cmd {
        ChannelsCommand::Add { kind, name } => add(home, durability, kind, name).await,
        ChannelsCommand::Pair { name } => crate::cli_phone_link::pair(home, &name).await,
    }
}

/// `clawos channels add KIND [--name NAME]`.
pub(crate) async fn add(
    home: &Home,
    durability: Durability,
    kind: String,
    name: Option<String>,
) -> Result<()> {
    let name = name.unwrap_or_else(|| kind.clone());
    let path = home.dir().join("clawos.toml");
    let current = if path.exists() {
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?
    } else {
        DEFAULT_CONFIG.to_string()
    };
    if Config::parse(&current)?.channels.contains_key(&name) {
        bail!("clawos.toml already has a channel named {name}; choose another with --name");
    }
    let mut asker = Asker::stdin();
    let (section, password) = match kind.as_str() {
        "irc" => ask_irc(&mut asker, &name)?,
        "matrix" => ask_matrix(&mut asker, &name)?,
        "discord" => ask_discord(&mut asker, &name)?,
        "xmpp" => ask_xmpp(&mut asker, &name)?,
        "email" => ask_email(&mut asker, &name)?,
        "signal" => ask_signal(&mut asker, &name)?,
        "imessage" => ask_imessage(&mut asker, &name)?,
        "whatsapp" => ask_whatsapp(&mut asker, &name)?,
        "whatsapp-web" => ask_whatsapp_web(&mut asker, &name)?,
        "telegram" => ask_telegram(&mut asker, &name)?,
        "slack" => ask_slack(&mut asker, &name)?,
        other => bail!(
            "`clawos channels add` knows {}, not `{other}`",
            clawos_kernel::config::CHANNEL_KINDS[2..].join(", ")
        ),
    };
    let updated = format!("{}\n{section}", current.trim_end());
    Config::parse(&updated).context("the answers do not make a valid channel")?;
    if let Some(p) = password {
        clawos_kernel::vault::check_name(&name)?;
        let vault = crate::cli_secrets::open_vault(home).await?;
        let log = home.open_log(durability).await?;
        vault.set_recorded(&log, &name, p.as_bytes()).await?;
        log.close().await;
        vault.close().await;
        println!("stored the password in the vault as `{name}`");
    }
    std::fs::create_dir_all(home.dir())?;
    std::fs::write(&path, updated).with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "added [channels.{name}] to {}; `clawos doctor` checks it can reach its server, and it starts with the Gateway",
        path.display()
    );
    if kind == "whatsapp-web" {
        println!("now link it to the phone: `clawos channels pair {name}`");
    }
    Ok(())
}

/// The questions for WhatsApp as a linked device; no secret (the linked session is kept
/// in the channel's state folder once paired).
fn ask_whatsapp_web<R: BufRead>(a: &mut Asker<R>, name: &str) -> Result<(String, Option<String>)> {
    let phone = a.ask(
        "the phone's number to pair by code, with its country code (empty: scan a QR code)",
        Some(""),
    )?;
    let bot_name = a.ask("a name that addresses the bot in groups", Some("clawbot"))?;
    let phone = if phone.is_empty() {
        String::new()
    } else {
        format!("pair_phone = {}\n", quoted(&phone))
    };
    let section = format!(
        "\n[channels.{name}]\nkind = \"whatsapp-web\"\n{phone}name = {}\n\
         # Who may talk in direct messages: \"pairing\" (default), \"allowlist\" or \"open\".\ndm_policy = \"pairing\"\n\
         # In groups: answer when \"mention\"ed (default), \"always\" or \"never\".\ngroup_policy = \"mention\"\n",
        quoted(&bot_name)
    );
    Ok((section, None))
}
