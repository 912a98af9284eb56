//! The error codes the server puts in [`ServerFrame::Error`](crate::ServerFrame::Error).
//!
//! Codes below [`APP_MIN`] are reserved for the server; a game's own handler errors use
//! [`APP_MIN`] and above. A client can branch on the code and show the message.

/// The request named a route that the server does not have.
pub const UNKNOWN_ROUTE: u16 = 1;
/// The request's body could not be decoded as the route's request type.
pub const BAD_BODY: u16 = 2;
/// The handler panicked; the server caught it and keeps running.
pub const INTERNAL: u16 = 3;
/// The envelope was malformed after its callback id (for example a route that is not UTF-8).
pub const BAD_FRAME: u16 = 4;
/// The connection sent more than its inbound rate allows.
pub const RATE_LIMITED: u16 = 5;
/// The server is shutting down and will not handle the request.
pub const SHUTTING_DOWN: u16 = 6;
/// Version 2 only: the request's `seq` says it was taken already, so it is not run again, and
/// its answer is no longer held to be sent again (it was acknowledged, or the replay buffer
/// dropped it).
pub const STALE_REQUEST: u16 = 7;
/// Only from a node of a cluster: the call must be made on another node. The message is the
/// URL to make it on, a ticket included (PROTOCOL.md section 12.2): connect there and send the
/// same request again.
pub const REDIRECT: u16 = 8;
/// The server's queue for slow work (its job pool) is full: the request was not handled.
/// Retry later, with backoff.
pub const BUSY: u16 = 9;
/// The route requires an authenticated connection and this one is not (or an `auth` request's
/// token was refused). Authenticate and retry (PROTOCOL.md section 13).
pub const UNAUTHENTICATED: u16 = 10;
/// The route requires a role the connection's identity does not have. Do not retry as is.
pub const FORBIDDEN: u16 = 11;

/// The first code available to applications (handler errors).
pub const APP_MIN: u16 = 1000;

/// A short, stable name for a code, for logs and metrics.
pub fn name(code: u16) -> &'static str {
    match code {
        UNKNOWN_ROUTE => "unknown_route",
        BAD_BODY => "bad_body",
        INTERNAL => "internal",
        BAD_FRAME => "bad_frame",
        RATE_LIMITED => "rate_limited",
        SHUTTING_DOWN => "shutting_down",
        STALE_REQUEST => "stale_request",
        REDIRECT => "redirect",
        BUSY => "busy",
        UNAUTHENTICATED => "unauthenticated",
        FORBIDDEN => "forbidden",
        c if c >= APP_MIN => "app",
        _ => "reserved",
    }
}
