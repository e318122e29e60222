//! The one conversion from [`ReftError`] to a JS error. The stable code travels as a
//! `[ERR_…]` prefix of the message, which `src/errors.ts` turns into `ReftError.code` (napi's
//! async-task rejections only carry napi's own `Status` as `code`).

use napi::{Error, Status};
use reft_core::ReftError;

/// Converts a core error into a napi error whose message starts with `[CODE]`.
pub fn to_napi(e: ReftError) -> Error {
    let status = match &e {
        ReftError::InvalidConfig { .. } | ReftError::OutOfRange { .. } | ReftError::Shape { .. } => Status::InvalidArg,
        _ => Status::GenericFailure,
    };
    Error::new(status, format!("[{}] {e}", e.code()))
}

/// An error with one of our codes, raised by the binding itself.
pub fn coded(code: &str, msg: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, format!("[{code}] {msg}"))
}

/// The error for a handle used after `dispose()`.
pub fn disposed(what: &str) -> Error {
    coded("ERR_DISPOSED", format!("this {what} was disposed"))
}

/// Runs `f`, turning a panic into an `ERR_BACKEND` error instead of aborting the process.
pub fn guard<T>(f: impl FnOnce() -> napi::Result<T>) -> napi::Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(coded("ERR_BACKEND", format!("internal error (panic): {msg}")))
        }
    }
}

/// `Result<T, ReftError>` → napi result.
pub trait IntoNapi<T> {
    fn napi(self) -> napi::Result<T>;
}

impl<T> IntoNapi<T> for Result<T, ReftError> {
    fn napi(self) -> napi::Result<T> {
        self.map_err(to_napi)
    }
}
