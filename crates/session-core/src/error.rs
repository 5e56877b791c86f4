//! The one error type of the engine. Each variant maps to one `ERR_SESSION_*` code in the binding.

use std::fmt;

/// Why an engine or driver operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The filesystem or OS failed (`ERR_SESSION_IO`).
    #[error("{0}")]
    Io(String),
    /// A handler was given an id outside the allowed shapes (`ERR_SESSION_INVALID_ID`).
    #[error("{0}")]
    InvalidId(String),
    /// A constructor option or config value is wrong (`ERR_SESSION_INVALID_OPTION`).
    #[error("{0}")]
    InvalidOption(String),
    /// A value cannot be stored (`ERR_SESSION_VALUE`).
    #[error("{0}")]
    Value(String),
    /// A payload is over a size limit (`ERR_SESSION_TOO_LARGE`).
    #[error("{0}")]
    TooLarge(String),
    /// A server is down, unreachable or not answering (`ERR_SESSION_UNAVAILABLE`).
    #[error("{0}")]
    Unavailable(String),
    /// A lock was held longer than the busy timeout (`ERR_SESSION_BUSY`).
    #[error("{0}")]
    Busy(String),
    /// An operation did not settle in time (`ERR_SESSION_TIMEOUT`).
    #[error("{0}")]
    Timeout(String),
    /// A save kept finding the record changed by other requests, past the retry bound
    /// (`ERR_SESSION_CONFLICT`); nothing was lost: the stored record is the other requests'.
    #[error("{0}")]
    Conflict(String),
    /// A blocked request could not take its session's lock within its wait
    /// (`ERR_SESSION_LOCKED`; the middleware answers 423), or the driver cannot lock.
    #[error("{0}")]
    Locked(String),
    /// A custom handler failed (`ERR_SESSION_HANDLER`).
    #[error("{0}")]
    Handler(String),
    /// The driver cannot do what was asked (`ERR_SESSION_UNSUPPORTED`): memcached and cookie
    /// sessions cannot be listed per user, for instance. The message names the driver.
    #[error("{0}")]
    Unsupported(String),
}

impl SessionError {
    /// The stable `ERR_SESSION_*` code that JS sees as `err.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io(_) => "ERR_SESSION_IO",
            Self::InvalidId(_) => "ERR_SESSION_INVALID_ID",
            Self::InvalidOption(_) => "ERR_SESSION_INVALID_OPTION",
            Self::Value(_) => "ERR_SESSION_VALUE",
            Self::TooLarge(_) => "ERR_SESSION_TOO_LARGE",
            Self::Unavailable(_) => "ERR_SESSION_UNAVAILABLE",
            Self::Busy(_) => "ERR_SESSION_BUSY",
            Self::Timeout(_) => "ERR_SESSION_TIMEOUT",
            Self::Conflict(_) => "ERR_SESSION_CONFLICT",
            Self::Locked(_) => "ERR_SESSION_LOCKED",
            Self::Handler(_) => "ERR_SESSION_HANDLER",
            Self::Unsupported(_) => "ERR_SESSION_UNSUPPORTED",
        }
    }

    /// Whether JS should see this error as a `TypeError` (bad input rather than a failed operation).
    pub fn is_type_error(&self) -> bool {
        matches!(self, Self::InvalidOption(_) | Self::Value(_))
    }

    /// An I/O error for `op` on session `id`, naming at most the first 6 characters of the id.
    pub fn io(op: &str, id: &str, err: impl fmt::Display) -> Self {
        Self::Io(format!("session {op} failed for id {}…: {err}", redact(id)))
    }
}

/// The first 6 characters of an id: enough to correlate logs, too few to hijack a session.
pub fn redact(id: &str) -> &str {
    match id.char_indices().nth(6) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}

/// `Result` with [`SessionError`] as the default error.
pub type Result<T, E = SessionError> = std::result::Result<T, E>;
