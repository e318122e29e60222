//! The one conversion from [`ReftError`] to a JS error: the stable code travels as a `[ERR_…]`
//! prefix of the message, as in the napi binding, so `toReftError` in src/errors.ts reads both.

use reft_core::ReftError;
use wasm_bindgen::JsError;

/// Converts a core error into a JS `Error` whose message starts with `[CODE]`.
pub fn to_js(e: ReftError) -> JsError {
    JsError::new(&format!("[{}] {e}", e.code()))
}

/// An error with one of our codes, raised by the binding itself.
pub fn coded(code: &str, msg: impl std::fmt::Display) -> JsError {
    JsError::new(&format!("[{code}] {msg}"))
}

/// The error for a handle used after `dispose()`.
pub fn disposed(what: &str) -> JsError {
    coded("ERR_DISPOSED", format!("this {what} was disposed"))
}

/// `Result<T, ReftError>` → a result that throws in JS.
pub trait IntoJs<T> {
    fn js(self) -> Result<T, JsError>;
}

impl<T> IntoJs<T> for Result<T, ReftError> {
    fn js(self) -> Result<T, JsError> {
        self.map_err(to_js)
    }
}
