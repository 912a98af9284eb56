//! Where a bot connects ([`Target`]), and what it needs to follow a redirect (PROTOCOL.md
//! 12.2): the calls that may be answered with Error `redirect` (8) kept so they can be sent
//! again ([`Resendable`]), a redirect under way ([`Following`]), and whether a redirect's URL
//! can be followed ([`check_redirect`]). The I/O of following is the bot's (`bot.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use ticksock_client::connection::{resolve, upgrade_request};
use ticksock_client::{CallId, Connection, Session, Versions};

/// At most this many redirects are followed for one call (PROTOCOL.md 12.2); one more fails
/// the call.
pub(crate) const MAX_REDIRECTS: u32 = 3;

/// A server URL and its address, resolved once.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub url: Arc<str>,
    pub addr: SocketAddr,
}

impl Target {
    pub(crate) fn new(url: &str, addr: SocketAddr) -> Self {
        Self { url: url.into(), addr }
    }
}

/// A call that may be redirected: what to send again, and how many redirects it followed.
#[derive(Debug, Clone)]
pub(crate) struct Resendable {
    pub route: &'static str,
    pub body: Vec<u8>,
    pub hops: u32,
}

/// A redirect being followed: the new connection is being opened; once it is welcomed the
/// call is sent again there, and the old link (kept until then) is closed with 1000.
pub(crate) struct Following {
    /// The id the scenario knows the call by (its first sending's).
    pub original: CallId,
    pub call: Resendable,
    /// The old session and its connection, closed once the new link is welcomed.
    pub old: Option<(Session, Option<Connection>)>,
    /// The call's id on the new session, once sent again.
    pub resent: Option<CallId>,
}

/// Why a redirect was not followed, or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RedirectFailure {
    /// The message is no `ws://` URL the bot can connect to.
    BadUrl,
    /// The call was redirected [`MAX_REDIRECTS`] times already.
    TooMany,
    /// The new connection failed, or closed before the call's answer (a refused ticket's
    /// 4002 close, right after the welcome, is one).
    Closed,
}

/// Where a redirect with `message` leads, for a call that followed `hops` redirects already;
/// or why it is not followed. The URL is taken as it is (12.2), only checked to be one the
/// client library can connect to. Resolving a host name blocks; a cluster's URLs are
/// addresses, as a rule.
pub(crate) fn check_redirect(message: &str, hops: u32) -> Result<Target, RedirectFailure> {
    if hops >= MAX_REDIRECTS {
        return Err(RedirectFailure::TooMany);
    }
    // The bots open plain sockets (`Connection::open`): a `wss://` node is not for them.
    if !message.starts_with("ws://") {
        return Err(RedirectFailure::BadUrl);
    }
    upgrade_request(message, Versions::V1Only).map_err(|_| RedirectFailure::BadUrl)?;
    let addr = resolve(message).map_err(|_| RedirectFailure::BadUrl)?;
    Ok(Target::new(message, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_is_followed_three_times_at_most_and_only_to_a_ws_url() {
        let url = "ws://127.0.0.1:9102/?ticket=AAECAwQ.ZXhhbXBsZQ";
        let target = check_redirect(url, 0).expect("a node's URL with a ticket");
        assert_eq!(&*target.url, url, "taken as it is, ticket included");
        assert_eq!(target.addr, "127.0.0.1:9102".parse().expect("an address"));
        assert!(check_redirect(url, MAX_REDIRECTS - 1).is_ok());
        assert_eq!(check_redirect(url, MAX_REDIRECTS).err(), Some(RedirectFailure::TooMany));
        for bad in ["", "no url", "http://127.0.0.1:9102/", "wss://127.0.0.1:9102/", "ws:///x"] {
            assert_eq!(check_redirect(bad, 0).err(), Some(RedirectFailure::BadUrl), "{bad:?}");
        }
    }
}
