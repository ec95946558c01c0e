//! Sending over SMTP with lettre: the transport from `--smtp-url`, and the MIME message
//! (text and HTML alternatives, a stable `Message-ID`, `List-Unsubscribe` with RFC 8058
//! one-click).

use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::compose::Email;

/// The SMTP transport and the From address.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Host and port, for logs (no credentials).
    pub describe: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("server", &self.describe).finish_non_exhaustive()
    }
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// The server refused for good (a 5xx answer): retrying will not help.
    pub permanent: bool,
    /// What went wrong, briefly.
    pub text: String,
}

impl Mailer {
    /// A mailer for `url` (see `Settings::smtp_url`) sending from `from`.
    pub fn new(url: &str, from: &str, timeout: Duration) -> Result<Mailer, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("--smtp-url is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "smtp" | "smtps") {
            return Err("--smtp-url must start with smtp:// or smtps://".into());
        }
        let describe = format!(
            "{}://{}:{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or(""),
            parsed.port().map_or_else(|| "default".to_string(), |p| p.to_string())
        );
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("--smtp-url {describe}: {e}"))?
            .timeout(Some(timeout))
            .build();
        let from = if from.is_empty() { "nudge@localhost".parse::<Mailbox>() } else { from.parse::<Mailbox>() }
            .map_err(|e| format!("--mail-from {from:?} is not an address: {e}"))?;
        Ok(Mailer { transport, from, describe })
    }

    /// The From address's domain (for Message-IDs).
    pub fn domain(&self) -> &str {
        self.from.email.domain()
    }

    /// Builds the message for `to` with `message_id` (`<...@...>`).
    pub fn message(&self, to: &str, email: &Email, message_id: &str, unsubscribe_url: &str) -> Result<Message, String> {
        let to: Mailbox = to.parse().map_err(|e| format!("bad recipient: {e}"))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(message_id.to_string()))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{unsubscribe_url}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".into(),
            ))
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("Auto-Submitted"), "auto-generated".into()))
            .multipart(MultiPart::alternative_plain_html(email.text.clone(), email.html.clone()))
            .map_err(|e| format!("cannot build the message: {e}"))
    }

    /// Sends a message; returns once the server accepted it.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    text.push_str(": ");
                    text.push_str(&cause.to_string());
                    source = cause.source();
                }
                Err(SendError { permanent: e.is_permanent(), text: text.chars().take(300).collect() })
            }
        }
    }
}
