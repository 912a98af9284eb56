//! The crate's one error type. Each variant says what the caller does next.

use std::time::Duration;

use ticksock_protocol::BodyError;

/// Everything that can go wrong in this crate, from a call's outcome to a failed connect.
///
/// A call ends in exactly one [`Outcome`](crate::Outcome); [`Outcome::into_result`](crate::Outcome::into_result)
/// turns the failed ones into [`Error::Server`], [`Error::Timeout`], [`Error::Disconnected`],
/// [`Error::AnswerLost`], [`Error::Redirect`] or [`Error::Closed`]. The other variants come from starting a call or from the connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered the call with an error frame. Branch on `code`
    /// ([`ticksock_protocol::error_code`] for the server's own codes, the route's documentation for codes
    /// of 1000 and above); retry only when the code says so (for example `RATE_LIMITED`, later).
    #[error("the server answered error {code} ({}): {message}", ticksock_protocol::error_code::name(*code))]
    Server {
        /// The code the server sent.
        code: u16,
        /// The server's explanation, for logs; never branch on it.
        message: String,
    },
    /// No answer came within the call's timeout. The call's entry is freed and a late answer will
    /// be dropped. Whether the server handled it is unknown: retry only an idempotent call.
    #[error("no answer within the call's timeout")]
    Timeout,
    /// The call was sent and its server session ended before the answer arrived (version 1:
    /// the connection dropped; version 2: the session could not be resumed). The server may or
    /// may not have handled it: retry only an idempotent call, after
    /// [`Event::Connected`](crate::Event::Connected).
    #[error("the connection (its session) ended before the answer arrived")]
    Disconnected,
    /// Version 2: the server had already taken this request and no longer holds its answer
    /// (error `stale_request`, `docs/PROTOCOL.md` 11.6): it ran at most once, and what it
    /// answered is lost. Retry only an idempotent call.
    #[error("the server took the request before and its answer is lost (stale_request)")]
    AnswerLost,
    /// The server redirected the call to another node and the client could not make it there
    /// (why: [`RedirectFailure`](crate::RedirectFailure)). The call did not run where it was
    /// redirected from; retry it later, or report a [`TooMany`](crate::RedirectFailure::TooMany).
    #[error("{0}")]
    Redirect(crate::RedirectFailure),
    /// The call was never sent, or the session is finished: it was closed with
    /// [`Session::close`](crate::Session::close) or stopped for good (see
    /// [`Event::Stopped`](crate::Event::Stopped)). Create a new session to go on.
    #[error("the session is closed; the call was not sent")]
    Closed,
    /// The session gave up reconnecting after this many failed attempts in a row. Create a new
    /// session (or raise [`Config::max_attempts`](crate::Config::max_attempts)) to try again.
    #[error("gave up reconnecting after {attempts} attempts")]
    GaveUp {
        /// How many connection attempts failed in a row.
        attempts: u32,
    },
    /// The session is not connected and its offline queue is full, by count or by bytes; the
    /// call was not queued. Drop it or try again after [`Event::Connected`](crate::Event::Connected);
    /// raise [`Config::max_queued_calls`](crate::Config::max_queued_calls) /
    /// [`Config::max_queued_bytes`](crate::Config::max_queued_bytes) if this happens in normal play.
    #[error(
        "offline queue full: {calls} calls and {bytes} bytes queued, bounds {max_calls} calls and \
         {max_bytes} bytes; this call needs {needed} bytes"
    )]
    QueueFull {
        /// Calls queued now.
        calls: usize,
        /// Bytes queued now.
        bytes: usize,
        /// The bound on calls.
        max_calls: usize,
        /// The bound on bytes.
        max_bytes: usize,
        /// The size of the refused call's frame.
        needed: usize,
    },
    /// This many calls already wait for an answer ([`Config::max_pending`](crate::Config::max_pending)).
    /// Wait for some outcomes before calling again.
    #[error("{max} calls already wait for an answer")]
    TooManyPending {
        /// The bound.
        max: usize,
    },
    /// The request's frame is larger than the server accepts
    /// ([`Config::max_frame_bytes`](crate::Config::max_frame_bytes)); sending it would get the
    /// connection closed with 1009. Send less per call.
    #[error("the request is {bytes} bytes, over the limit of {max}")]
    TooLarge {
        /// The frame's size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The route's name is longer than the server accepts
    /// ([`ticksock_protocol::MAX_ROUTE_LEN`] bytes); no route has such a name. Fix the name.
    #[error("the route name is {len} bytes, over the limit of {max}")]
    RouteTooLong {
        /// The name's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The request did not encode. A bug in the request type (a serde type bincode cannot
    /// encode); do not retry.
    #[error("the request does not encode: {0}")]
    Encode(BodyError),
    /// A reply or push body did not decode as the expected type: the client and the server
    /// disagree on the type (a version mismatch or a wrong type parameter). Do not retry; report.
    #[error("the body does not decode: {0}")]
    Decode(BodyError),
    /// A token the server could not read (`docs/PROTOCOL.md` 13.1: empty, longer than
    /// [`MAX_TOKEN_LEN`](crate::session::MAX_TOKEN_LEN), or not URL-safe); nothing was kept
    /// or sent. The game's sign-in gave something that is not a token: fix that side.
    #[error("bad token: {0}")]
    BadToken(String),
    /// The URL is not a `ws://host:port/path` or `wss://host:port/path` URL this client can
    /// use. Fix the URL.
    #[error("bad URL: {0}")]
    Url(String),
    /// TLS settings did not load (an extra trusted root that does not parse), or a `wss://`
    /// connection could not start. A failed TLS handshake with a server (a certificate not
    /// trusted, say) is [`Error::Io`] with kind `InvalidData`. Fix the roots or the URL.
    #[error("tls: {0}")]
    Tls(String),
    /// A socket operation failed (connection refused, reset, name not resolved). The session
    /// reconnects with backoff on its own; a one-shot caller retries later.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket layer failed: the upgrade was refused (HTTP 503 when the server is full,
    /// 400 when it speaks none of the subprotocols offered) or the peer broke the WebSocket protocol. The
    /// session reconnects with backoff on its own.
    #[error("websocket: {0}")]
    WebSocket(Box<tungstenite::Error>),
    /// The server sent something this client does not understand (an undecodable frame, a
    /// frame before the welcome, another protocol version). The connection is dropped; a
    /// version mismatch stops the session for good. Upgrade the client; report.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The connection was not up within the time given. Check that the server runs and the
    /// URL is right; try again later.
    #[error("not connected within {0:?}")]
    ConnectTimeout(Duration),
}

impl From<tungstenite::Error> for Error {
    fn from(e: tungstenite::Error) -> Self {
        match e {
            tungstenite::Error::Io(e) => Error::Io(e),
            e => Error::WebSocket(Box::new(e)),
        }
    }
}
