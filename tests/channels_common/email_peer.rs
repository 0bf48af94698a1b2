//! The test mail system (Dovecot IMAP + aiosmtpd submission, run by
//! `tests/peers/email/start.sh`) and a person on it: sends mail by SMTP (STARTTLS, AUTH)
//! and reads their INBOX over IMAP, the way a mail program would.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::net::TcpStream;

use super::conformance::{Heard, Peer, Person};
use crate::gateway_common::free_port;

/// The mail domain.
pub const DOMAIN: &str = "clawos.test";
/// The bot's address.
pub const BOT: &str = "bot@clawos.test";
/// The bot's password (IMAP and SMTP).
pub const BOT_PASSWORD: &str = "bot-pass";
/// The people of the test mail system (each one's password is `NAME-pass`).
pub const PEOPLE: &[&str] = &["alice", "bob", "carol", "dave"];

fn peers_dir() -> PathBuf {
    super::peers_dir("email")
}

/// A running mail system in its own folder.
pub struct MailSystem {
    /// Its folder (config, certificate, mail, logs).
    pub dir: tempfile::TempDir,
    /// IMAP with STARTTLS.
    pub imap: u16,
    /// IMAP over TLS.
    pub imaps: u16,
    /// SMTP submission with STARTTLS.
    pub smtp: u16,
    /// SMTP submission over TLS.
    pub smtps: u16,
    /// How long the last start took.
    pub started_in: Duration,
}

impl MailSystem {
    /// Start it; panics naming what is missing when Dovecot or aiosmtpd is not installed
    /// (`bash tests/run.sh` installs them).
    pub fn start() -> Self {
        let venv = std::env::var_os("CLAWOS_EMAIL_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".peers/email-venv"));
        assert!(
            Path::new("/usr/sbin/dovecot").exists() && venv.join("bin/python").exists(),
            "the email tests need Dovecot and aiosmtpd: `bash tests/peers/email/install.sh` \
             (`bash tests/run.sh` runs it)"
        );
        // A short folder under /tmp: Dovecot's sockets need a short path, and the mail
        // user needs search permission on every parent.
        let dir = tempfile::Builder::new()
            .prefix("clawos-mail")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let users: String = std::iter::once("bot")
            .chain(PEOPLE.iter().copied())
            .map(|u| format!("{u}:{{PLAIN}}{u}-pass::::::\n"))
            .collect();
        std::fs::write(dir.path().join("users"), users).expect("users file");
        let mut mail = MailSystem {
            dir,
            imap: free_port(),
            imaps: free_port(),
            smtp: free_port(),
            smtps: free_port(),
            started_in: Duration::ZERO,
        };
        mail.up();
        mail
    }

    fn script(&self, name: &str, args: &[String]) {
        let out = Command::new("bash")
            .arg(peers_dir().join(name))
            .arg(self.dir.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run a mail system script");
        assert!(
            out.status.success(),
            "{name} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Start both servers (again), on the same ports and mail.
    pub fn up(&mut self) {
        let t = Instant::now();
        let ports = [self.imap, self.imaps, self.smtp, self.smtps].map(|p| p.to_string());
        self.script("start.sh", &ports);
        self.started_in = t.elapsed();
    }

    /// Stop both servers and wait until they are gone.
    pub fn down(&self) {
        self.script("stop.sh", &[]);
    }

    /// Take IDLE out of Dovecot's capabilities (until the next start), for a client that
    /// must poll: the setting is appended and the master reloads its configuration.
    pub async fn without_idle(&self) {
        use std::io::Write;
        let conf = self.dir.path().join("dovecot.conf");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .expect("dovecot.conf");
        writeln!(
            f,
            "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ UIDPLUS"
        )
        .expect("write dovecot.conf");
        let pid = std::fs::read_to_string(self.dir.path().join("dovecot.pid")).expect("pid");
        let hup = Command::new("kill")
            .args(["-HUP", pid.trim()])
            .status()
            .expect("kill");
        assert!(hup.success(), "reload Dovecot");
        // The reload restarts the login and auth processes.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    /// The certificate both servers present (trusted as the only root).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    /// A `[channels.NAME]` section for the bot: IMAPS and SMTP with STARTTLS, or (with
    /// `starttls_imap`) IMAP with STARTTLS and SMTPS; `extra` lines go at its end.
    pub fn section(&self, name: &str, starttls_imap: bool, password: &str, extra: &str) -> String {
        let (imap, imap_tls, smtp, smtp_tls) = if starttls_imap {
            (self.imap, "starttls", self.smtps, "tls")
        } else {
            (self.imaps, "tls", self.smtp, "starttls")
        };
        format!(
            "[channels.{name}]\nkind = \"email\"\naddress = \"{BOT}\"\ndisplay_name = \"Claw\"\n\
             imap_server = \"127.0.0.1:{imap}\"\nimap_tls = \"{imap_tls}\"\n\
             smtp_server = \"127.0.0.1:{smtp}\"\nsmtp_tls = \"{smtp_tls}\"\n\
             tls_ca_file = \"{}\"\nsecret = \"{password}\"\n{extra}\n",
            self.ca_file().display()
        )
    }
}

impl Drop for MailSystem {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(peers_dir().join("stop.sh"))
            .arg(self.dir.path())
            .status();
    }
}

/// A mail as a person's mail program shows it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub subject: String,
    pub message_id: String,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub auto_submitted: Option<String>,
    pub text: String,
    pub file: Option<(String, Vec<u8>)>,
}

fn ids(v: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    match v {
        mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
        mail_parser::HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Read a raw mail.
pub fn parse(raw: &[u8]) -> Mail {
    use mail_parser::MimeHeaders;
    let m = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a mail");
    let file = m.attachments().next().map(|a| {
        (
            a.attachment_name().unwrap_or_default().to_string(),
            a.contents().to_vec(),
        )
    });
    Mail {
        from: m
            .from()
            .and_then(|f| f.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_lowercase(),
        subject: m.subject().unwrap_or_default().to_string(),
        message_id: m.message_id().unwrap_or_default().to_string(),
        in_reply_to: ids(m.in_reply_to()),
        references: ids(m.references()),
        auto_submitted: m.header_raw("Auto-Submitted").map(|v| v.trim().to_string()),
        text: m
            .body_text(0)
            .map(|t| t.replace("\r\n", "\n").trim_end().to_string())
            .unwrap_or_default(),
        file,
    }
}

/// A person: an SMTP account to send with and an IMAP session on their INBOX.
pub struct MailPerson {
    pub name: String,
    imap: async_imap::Session<TcpStream>,
    smtp: AsyncSmtpTransport<Tokio1Executor>,
    last_uid: u32,
    inbox: VecDeque<Mail>,
}

impl MailPerson {
    /// Log in as `name`; only mail arriving from now on is heard.
    pub async fn connect(mail: &MailSystem, name: &str) -> Self {
        let tcp = TcpStream::connect(("127.0.0.1", mail.imap))
            .await
            .expect("connect to IMAP");
        let mut client = async_imap::Client::new(tcp);
        client
            .read_response()
            .await
            .expect("IMAP greeting")
            .expect("IMAP greeting");
        let mut imap = client
            .login(name, format!("{name}-pass"))
            .await
            .map_err(|(e, _)| e)
            .expect("IMAP login");
        let inbox = imap.select("INBOX").await.expect("SELECT INBOX");
        let pem = std::fs::read(mail.ca_file()).expect("tls.crt");
        let tls = TlsParameters::builder("127.0.0.1".into())
            .certificate_store(CertificateStore::None)
            .add_root_certificate(Certificate::from_pem(&pem).expect("certificate"))
            .build_rustls()
            .expect("TLS");
        let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(mail.smtp)
            .tls(Tls::Required(tls))
            .credentials(Credentials::new(name.into(), format!("{name}-pass")))
            .build();
        MailPerson {
            name: name.into(),
            imap,
            smtp,
            last_uid: inbox.uid_next.unwrap_or(1).saturating_sub(1),
            inbox: VecDeque::new(),
        }
    }

    /// Their address.
    pub fn email(&self) -> String {
        format!("{}@{DOMAIN}", self.name)
    }

    /// Send a mail to `to`; its Message-ID.
    pub async fn send(
        &self,
        to: &str,
        subject: &str,
        body: &str,
        reply_to: Option<&Mail>,
        file: Option<(&str, &str, &[u8])>,
    ) -> String {
        let id = format!("{}.{}@{DOMAIN}", self.name, uuid::Uuid::now_v7().simple());
        let mut b = lettre::Message::builder()
            .from(Mailbox::new(None, self.email().parse().expect("from")))
            .to(Mailbox::new(None, to.parse().expect("to")))
            .subject(subject)
            .message_id(Some(format!("<{id}>")));
        if let Some(r) = reply_to {
            let mut refs = r.references.clone();
            refs.push(r.message_id.clone());
            let refs: Vec<String> = refs.iter().map(|r| format!("<{r}>")).collect();
            b = b
                .in_reply_to(format!("<{}>", r.message_id))
                .references(refs.join(" "));
        }
        let text = SinglePart::plain(body.to_string());
        let m = match file {
            None => b.singlepart(text),
            Some((name, mime, bytes)) => b.multipart(
                MultiPart::mixed().singlepart(text).singlepart(
                    Attachment::new(name.into())
                        .body(bytes.to_vec(), ContentType::parse(mime).expect("mime")),
                ),
            ),
        };
        self.smtp
            .send(m.expect("a mail"))
            .await
            .unwrap_or_else(|e| panic!("{} cannot send: {e}", self.name));
        id
    }

    /// The next mail in their INBOX, if one arrives within `within`.
    pub async fn next_mail(&mut self, within: Duration) -> Option<Mail> {
        use futures::TryStreamExt;
        let deadline = Instant::now() + within;
        loop {
            if let Some(m) = self.inbox.pop_front() {
                return Some(m);
            }
            self.imap.noop().await.expect("NOOP");
            let from = self.last_uid + 1;
            let found = self
                .imap
                .uid_search(format!("UID {from}:*"))
                .await
                .expect("UID SEARCH");
            let mut uids: Vec<u32> = found.into_iter().filter(|u| *u >= from).collect();
            uids.sort_unstable();
            for uid in uids {
                let fetched: Vec<async_imap::types::Fetch> = self
                    .imap
                    .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
                    .await
                    .expect("UID FETCH")
                    .try_collect()
                    .await
                    .expect("UID FETCH");
                for f in fetched.iter().filter(|f| f.uid == Some(uid)) {
                    if let Some(raw) = f.body() {
                        self.inbox.push_back(parse(raw));
                    }
                }
                self.last_uid = uid;
            }
            if self.inbox.is_empty() {
                if Instant::now() >= deadline {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The conformance suite's view of email.
pub struct EmailPeer {
    pub mail: MailSystem,
}

/// The reply length the suite's channel is given (so a long reply is split in a few
/// mails, as `max_chars` allows).
pub const SUITE_MAX_CHARS: usize = 2000;

impl Peer for EmailPeer {
    type P = MailPerson;

    fn kind(&self) -> &'static str {
        "email"
    }

    fn channel_section(&self, name: &str, _groups: &[&str]) -> String {
        self.mail.section(
            name,
            false,
            BOT_PASSWORD,
            &format!("max_chars = {SUITE_MAX_CHARS}\ndm_policy = \"open\"\n"),
        )
    }

    fn bot(&self) -> &str {
        BOT
    }

    fn max_len(&self) -> usize {
        SUITE_MAX_CHARS
    }

    async fn person(&self, name: &str) -> MailPerson {
        MailPerson::connect(&self.mail, name).await
    }

    fn stop_server(&mut self) {
        self.mail.down();
    }

    fn start_server(&mut self) {
        self.mail.up();
    }

    fn attachments(&self) -> bool {
        true
    }

    fn catches_up(&self) -> bool {
        true
    }

    fn groups(&self) -> bool {
        false
    }
}

impl Person for MailPerson {
    fn address(&self) -> String {
        format!("email:{}", self.email())
    }

    async fn join(&mut self, _group: &str, _bot: &str) {
        panic!("email has no groups (the peer says so)");
    }

    /// A new mail whose subject is the start of the text (so the text reaches the agent
    /// as it is).
    async fn say(&mut self, group: Option<&str>, bot: &str, text: &str) {
        assert!(group.is_none(), "email has no groups");
        let subject: String = text.chars().take(60).collect();
        self.send(bot, subject.trim_end(), text, None, None).await;
    }

    async fn hear(&mut self, bot: &str, within: Duration) -> Option<Heard> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self.next_mail(left).await?;
            if m.from == bot {
                return Some(Heard {
                    group: None,
                    text: m.text,
                    file: m.file,
                });
            }
        }
    }

    async fn wait_for_bot(&mut self, _group: Option<&str>, _bot: &str, _within: Duration) {
        // Mail waits in the bot's mailbox until the bot reads it: nothing to wait for.
    }

    async fn send_file(&mut self, bot: &str, name: &str, mime: &str, bytes: &[u8]) {
        self.send(bot, name, "", None, Some((name, mime, bytes)))
            .await;
    }
}
