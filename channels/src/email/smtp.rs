//! The SMTP side: replies sent by submission (implicit TLS or STARTTLS, then AUTH),
//! threaded on the mail they answer.
//!
//! A reply is `text/plain` in UTF-8 holding the agent's Markdown as it is (Markdown grew
//! out of plain-text mail conventions, and reads well unrendered; no HTML part, so no
//! markup from a model reaches a mail reader's HTML engine). Its subject is `Re:` the
//! subject of the mail it answers, with `In-Reply-To` and `References` from the thread.
//! Each mail says `Auto-Submitted: auto-replied` (RFC 3834), so vacation notices and
//! other robots do not answer it.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use uuid::Uuid;

use super::read::bare_subject;
use super::settings::{EmailSettings, Security};
use super::threads::Threads;
use crate::platform::{AdapterError, Outgoing};

/// Longest one SMTP command may wait for its answer.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(60);

/// `Auto-Submitted: auto-replied`.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-replied".into())
    }
}

/// An SMTP error, as the platform should treat it.
pub fn smtp_error(e: &lettre::transport::smtp::Error, user: &str) -> AdapterError {
    if let Some(code) = e.status() {
        let code = code.to_string();
        if e.is_permanent() && ["530", "534", "535", "538"].contains(&code.as_str()) {
            return AdapterError::AuthRefused(format!(
                "the SMTP server refused the login of {user} ({e})"
            ));
        }
        if e.is_permanent() {
            return AdapterError::Refused(format!("the SMTP server refused the mail: {e}"));
        }
        return AdapterError::Link(format!("the SMTP server cannot take mail now: {e}"));
    }
    if e.is_response() {
        AdapterError::Protocol(format!("the SMTP server's answer cannot be read: {e}"))
    } else if e.is_client() {
        AdapterError::Config(format!("SMTP: {e}"))
    } else {
        AdapterError::Link(format!("SMTP: {e}"))
    }
}

/// The sending half: an SMTP transport (one pooled, logged-in connection) and the threads
/// of the mails read.
pub struct Sender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
    user: String,
    threads: Arc<Threads>,
}

impl Sender {
    /// Log in to the SMTP server (so a wrong password or an unreachable server shows at
    /// once, not at the first reply).
    pub async fn connect(
        settings: &EmailSettings,
        password: &str,
        threads: Arc<Threads>,
    ) -> Result<Self, AdapterError> {
        let (host, port) = settings.smtp_host_port()?;
        let mut tls = TlsParameters::builder(host.to_string())
            .certificate_store(CertificateStore::WebpkiRoots);
        if let Some(ca) = &settings.tls_ca_file {
            let bad = |e: &dyn std::fmt::Display| {
                AdapterError::Config(format!("tls_ca_file {}: {e}", ca.display()))
            };
            let pem = std::fs::read(ca).map_err(|e| bad(&e))?;
            tls = tls.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| bad(&e))?);
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| AdapterError::Config(format!("TLS for {}: {e}", settings.smtp_server)))?;
        let tls = match settings.smtp_tls {
            Security::Tls => Tls::Wrapper(tls),
            Security::Starttls => Tls::Required(tls),
        };
        let user = settings.smtp_user().to_string();
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .credentials(Credentials::new(user.clone(), password.to_string()))
            .hello_name(ClientId::Domain(settings.domain().to_string()))
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        match transport.test_connection().await {
            Ok(true) => {}
            Ok(false) => {
                return Err(AdapterError::Link(format!(
                    "{} does not answer NOOP",
                    settings.smtp_server
                )))
            }
            Err(e) => return Err(smtp_error(&e, &user)),
        }
        let address = settings
            .address
            .parse()
            .map_err(|e| AdapterError::Config(format!("address {}: {e}", settings.address)))?;
        Ok(Sender {
            transport,
            from: Mailbox::new(settings.display_name.clone(), address),
            domain: settings.domain().to_string(),
            user,
            threads,
        })
    }

    /// The mail for `message`, and its Message-ID (without angle brackets).
    pub fn compose(&self, message: &Outgoing) -> Result<(lettre::Message, String), AdapterError> {
        if message.chat.is_some() {
            return Err(AdapterError::Refused("email has no group chats".into()));
        }
        let to = message.to.strip_prefix("email:").unwrap_or(&message.to);
        let to: lettre::Address = to.parse().map_err(|e| {
            AdapterError::Refused(format!("`{}` is not an email address: {e}", message.to))
        })?;
        let thread = message
            .in_reply_to
            .as_deref()
            .and_then(|id| self.threads.get(id));
        // A mail without a Message-ID (its external id is `uid:…`) cannot be referred to.
        let answered = message
            .in_reply_to
            .as_deref()
            .filter(|id| !id.starts_with("uid:"));
        let subject = match &thread {
            Some(t) => match bare_subject(&t.subject) {
                "" => "Re: (no subject)".to_string(),
                s => format!("Re: {s}"),
            },
            None => fresh_subject(message),
        };
        let id = format!("{}@{}", Uuid::now_v7().simple(), self.domain);
        let mut mail = lettre::Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(subject)
            .date_now()
            .message_id(Some(format!("<{id}>")))
            .header(AutoSubmitted);
        if let Some(answered) = answered {
            let refs = thread
                .map(|t| t.references)
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| vec![answered.to_string()]);
            let refs: Vec<String> = refs.iter().map(|r| format!("<{r}>")).collect();
            mail = mail
                .in_reply_to(format!("<{answered}>"))
                .references(refs.join(" "));
        }
        let text =
            (!message.text.trim().is_empty()).then(|| SinglePart::plain(message.text.clone()));
        let file = match &message.file {
            Some(file) => {
                let bytes = file.read()?;
                let mime = file
                    .attachment
                    .mime
                    .as_deref()
                    .and_then(|m| ContentType::parse(m).ok())
                    .unwrap_or_else(|| {
                        ContentType::parse("application/octet-stream")
                            .unwrap_or(ContentType::TEXT_PLAIN)
                    });
                Some(Attachment::new(file.attachment.name.clone()).body(bytes, mime))
            }
            None => None,
        };
        let built = match (text, file) {
            (Some(text), None) => mail.singlepart(text),
            (Some(text), Some(file)) => {
                mail.multipart(MultiPart::mixed().singlepart(text).singlepart(file))
            }
            (None, Some(file)) => mail.multipart(MultiPart::mixed().singlepart(file)),
            (None, None) => return Err(AdapterError::Refused("an empty reply".into())),
        };
        let built = built.map_err(|e| AdapterError::Refused(format!("building the mail: {e}")))?;
        Ok((built, id))
    }

    /// Send one mail; its Message-ID.
    pub async fn send(&self, message: &Outgoing) -> Result<Option<String>, AdapterError> {
        let (mail, id) = self.compose(message)?;
        self.transport
            .send(mail)
            .await
            .map_err(|e| smtp_error(&e, &self.user))?;
        Ok(Some(id))
    }
}

/// The subject of a mail that answers nothing known (a scheduled message, or a reply
/// whose thread was forgotten): its first line, or the file's name.
fn fresh_subject(message: &Outgoing) -> String {
    let first = message
        .text
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .find(|l| !l.is_empty());
    match (first, &message.file) {
        (Some(line), _) if line.chars().count() > 70 => {
            let cut: String = line.chars().take(69).collect();
            format!("{}…", cut.trim_end())
        }
        (Some(line), _) => line.to_string(),
        (None, Some(file)) => file.attachment.name.clone(),
        (None, None) => "(no subject)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_subject_is_the_first_line() {
        let m = |text: &str| Outgoing {
            to: "email:a@b.c".into(),
            chat: None,
            text: text.into(),
            in_reply_to: None,
            file: None,
        };
        assert_eq!(fresh_subject(&m("\n# Reminder\n\ncall mom")), "Reminder");
        assert_eq!(fresh_subject(&m("")), "(no subject)");
        let long = "word ".repeat(30);
        let s = fresh_subject(&m(&long));
        assert!(s.ends_with('…') && s.chars().count() <= 70, "{s}");
    }
}
