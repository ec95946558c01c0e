//! The one error type of the core. Every fallible core call returns it; the web shell turns
//! it into a debug log line and an `error` notification in one place (`web::api`).
//!
//! Messages are static strings on purpose: `format!` pulls float and integer formatting
//! machinery into the Wasm, which costs kilobytes (see DESIGN.md, "Size").

/// Why the core refused a call. The call changed nothing when this is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// An event name that is empty or longer than 200 characters.
    EventName,
    /// Properties or traits that are not a JSON object.
    NotAnObject,
    /// Properties or traits over 32 KB of JSON.
    TooLarge,
    /// Properties nested deeper than [`crate::event::MAX_DEPTH`].
    TooDeep,
    /// A number that is NaN or infinite (or does not fit a double).
    NotFinite,
    /// Text that is not valid JSON.
    BadJson,
    /// A timestamp that is not ISO 8601 (`2026-11-23T19:33:11.000Z`).
    BadTimestamp,
    /// A user id that is empty or longer than 200 characters.
    UserId,
    /// A consent choice that names an unknown category or is not a boolean.
    BadConsent,
    /// Options given to `init` that cannot be read.
    BadOptions,
    /// A campaign that was skipped, and why.
    Campaign(&'static str),
    /// A page signal that cannot be read.
    BadSignal,
    /// A popup outcome that cannot be read.
    BadOutcome,
    /// An email address that does not look like one.
    BadEmail,
    /// A `recommend` call that cannot be ranked, and why.
    Recommend(&'static str),
}

impl Error {
    /// A sentence a web developer can act on.
    pub fn message(self) -> &'static str {
        match self {
            Error::EventName => "event name must be a string of 1 to 200 characters",
            Error::NotAnObject => "properties must be a plain JSON object",
            Error::TooLarge => "properties must be at most 32 KB of JSON",
            Error::TooDeep => "properties must not nest deeper than 16 levels",
            Error::NotFinite => "numbers must be finite (no NaN or Infinity)",
            Error::BadJson => "not valid JSON",
            Error::BadTimestamp => "timestamp must be an ISO 8601 date-time such as 2026-11-23T19:33:11.000Z",
            Error::UserId => "userId must be a string of 1 to 200 characters",
            Error::BadConsent => "consent takes {analytics, personalization, marketing} as booleans",
            Error::BadOptions => {
                "some options could not be read and were ignored (an unreadable consent mode means opt-in)"
            }
            Error::Campaign(why) | Error::Recommend(why) => why,
            Error::BadSignal => "unreadable page signal",
            Error::BadOutcome => "a popup outcome needs a campaign id and an action",
            Error::BadEmail => "not a valid email address",
        }
    }
}
