//! [`CalendarError`]: everything the calendar skill can fail with, worded for the model.

/// A failure of the calendar skill; the text is what the model is shown.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// The server refused the credentials (HTTP 401).
    #[error("{account}: the server refused the username or password (HTTP 401 at {url})")]
    Unauthorized {
        /// Account name.
        account: String,
        /// URL that answered 401.
        url: String,
    },
    /// The server is down or unreachable, or timed out.
    #[error("{account}: cannot reach {url}: {reason}")]
    Unreachable {
        /// Account name.
        account: String,
        /// URL asked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The server answered with an unexpected status.
    #[error("{account}: {method} {url} answered HTTP {status}{detail}")]
    Status {
        /// Account name.
        account: String,
        /// HTTP method.
        method: String,
        /// URL asked.
        url: String,
        /// Status code.
        status: u16,
        /// A short excerpt of the body (with a leading separator) or nothing.
        detail: String,
    },
    /// The server's answer could not be understood.
    #[error("{account}: the server's answer could not be read: {reason}")]
    BadAnswer {
        /// Account name.
        account: String,
        /// What was wrong with it.
        reason: String,
    },
    /// No calendar of that name.
    #[error("no calendar `{name}`; calendars: {known}")]
    UnknownCalendar {
        /// The name asked for.
        name: String,
        /// The real calendars, comma separated.
        known: String,
    },
    /// A write to a read-only calendar (an ICS feed, or no write privilege).
    #[error("calendar `{0}` is read-only; create, update and delete are refused")]
    ReadOnly(String),
    /// No event with that uid.
    #[error("no event with uid `{uid}` in `{calendar}`")]
    NotFound {
        /// The uid asked for.
        uid: String,
        /// Calendar searched.
        calendar: String,
    },
    /// The event changed on the server since it was read (ETag mismatch, HTTP 412).
    #[error(
        "event `{0}` was changed by someone else meanwhile (HTTP 412); read it again and retry"
    )]
    Conflict(String),
    /// An event with that uid exists already.
    #[error("an event with uid `{0}` exists already")]
    Exists(String),
    /// A date or time argument is not understood.
    #[error("bad time `{value}`: {reason}")]
    BadTime {
        /// The argument as given.
        value: String,
        /// Why.
        reason: String,
    },
    /// Another argument is missing or wrong.
    #[error("{0}")]
    BadArgument(String),
    /// Calendar data (ICS) that cannot be parsed or used.
    #[error("bad calendar data: {0}")]
    BadIcs(String),
}

impl CalendarError {
    /// A [`CalendarError::BadTime`].
    pub fn time(value: &str, reason: impl Into<String>) -> Self {
        CalendarError::BadTime {
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
