//! [`AppError`]: what a handler returns when it refuses a call.

use std::borrow::Cow;

/// An error a handler returns; the caller gets it as an error reply with the same callback id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    /// The code the client branches on. Codes below [`APP_MIN`](ticksock_protocol::error_code::APP_MIN) are the server's
    /// own (see [`ticksock_protocol::error_code`]); a game's own codes start at `APP_MIN`.
    pub code: u16,
    /// A human-readable explanation.
    pub message: Cow<'static, str>,
}

impl AppError {
    /// An error with a code and a message.
    pub fn new(code: u16, message: impl Into<Cow<'static, str>>) -> Self {
        Self { code, message: message.into() }
    }
}
