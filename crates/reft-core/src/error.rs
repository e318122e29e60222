//! The one error type of reft-core. Every variant has a stable code (`ReftError::code`) that the
//! Node binding forwards as `error.code`; messages name the offending field or file.

use std::path::PathBuf;

/// Errors raised by reft-core. Grouped by what went wrong, each with a stable `code()`.
#[derive(Debug, thiserror::Error)]
pub enum ReftError {
    // -- configuration ------------------------------------------------------------------------
    /// A configuration value is invalid (unknown kind, bad rank, malformed JSON, ...).
    #[error("invalid config: {field}: {reason}")]
    InvalidConfig { field: String, reason: String },
    /// A layer, position or token id lies outside what the model or batch allows.
    #[error("out of range: {what} = {value} (allowed: {allowed})")]
    OutOfRange { what: String, value: i64, allowed: String },
    /// Tensor or batch dimensions disagree.
    #[error("shape mismatch: {what}: expected {expected}, got {got}")]
    Shape { what: String, expected: String, got: String },

    // -- models and files ---------------------------------------------------------------------
    /// The architecture or file type is not one reft implements.
    #[error("unsupported model: {0}")]
    UnsupportedModel(String),
    /// A file could not be read or written.
    #[error("i/o error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A file exists but its content is malformed, truncated or inconsistent.
    #[error("bad file format in {path}: {reason}")]
    Format { path: PathBuf, reason: String },

    // -- training -----------------------------------------------------------------------------
    /// The loss or a gradient became NaN or infinite.
    #[error("non-finite value: {0}")]
    NonFinite(String),
    /// A trainable parameter received no gradient (a graph was cut somewhere).
    #[error("no gradient reached parameter {0}")]
    NoGrad(String),
    /// The operation was cancelled by the caller.
    #[error("aborted")]
    Aborted,

    // -- backend ------------------------------------------------------------------------------
    /// An error from the tensor backend (Candle).
    #[error("backend error: {0}")]
    Backend(#[from] candle_core::Error),
}

impl ReftError {
    /// The stable code that reaches JavaScript as `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ReftError::InvalidConfig { .. } => "ERR_INVALID_CONFIG",
            ReftError::OutOfRange { .. } => "ERR_OUT_OF_RANGE",
            ReftError::Shape { .. } => "ERR_SHAPE",
            ReftError::UnsupportedModel(_) => "ERR_UNSUPPORTED_MODEL",
            ReftError::Io { .. } => "ERR_IO",
            ReftError::Format { .. } => "ERR_FORMAT",
            ReftError::NonFinite(_) => "ERR_NON_FINITE",
            ReftError::NoGrad(_) => "ERR_NO_GRAD",
            ReftError::Aborted => "ERR_ABORTED",
            ReftError::Backend(_) => "ERR_BACKEND",
        }
    }

    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ReftError::InvalidConfig { field: field.into(), reason: reason.into() }
    }

    pub(crate) fn range(what: impl Into<String>, value: i64, allowed: impl Into<String>) -> Self {
        ReftError::OutOfRange { what: what.into(), value, allowed: allowed.into() }
    }

    pub(crate) fn shape(
        what: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        ReftError::Shape { what: what.into(), expected: expected.into(), got: got.into() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ReftError::Io { path: path.into(), source }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        ReftError::Format { path: path.into(), reason: reason.into() }
    }
}

/// Result alias used throughout reft-core.
pub type Result<T> = std::result::Result<T, ReftError>;
