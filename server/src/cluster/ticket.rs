//! Redirect tickets (PROTOCOL.md 12.3): made by the node that redirects, redeemed once by the
//! node they name, within their lifetime. Signed with HMAC-SHA-256 under the cluster's secret
//! (kept in Redis), so redeeming one is arithmetic on the logic thread, with no I/O.
//!
//! Form: `base64url(bincode(Claims)) "." base64url(first 16 bytes of the MAC)`.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use ticksock_protocol::MAX_TICKET_LEN;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// How many bytes of the MAC a ticket carries: 128 bits, beyond guessing within a ticket's
/// seconds of life.
const MAC_BYTES: usize = 16;

/// Why a ticket was not accepted (all answered alike, with close 4002).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Not of the ticket form, or too long.
    #[error("malformed ticket")]
    Malformed,
    /// The MAC does not match: made without the cluster's secret.
    #[error("forged ticket")]
    Forged,
    /// Made for another node, or for an earlier run of this one (whose used tickets this
    /// run does not know).
    #[error("ticket for another node")]
    OtherNode,
    /// Its lifetime has passed.
    #[error("expired ticket")]
    Expired,
    /// Redeemed already.
    #[error("ticket used already")]
    Used,
}

/// Who a ticket says the connection is: its user and, for a game with an authenticator, its
/// identity (PROTOCOL.md 13), so that a redirected player keeps its roles and expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    /// The user.
    pub user: String,
    /// Its identity: roles, and when it expires (Unix ms); `None`: not authenticated.
    pub auth: Option<(Vec<String>, Option<u64>)>,
}

impl Carried {
    /// A user without an identity.
    pub fn user(user: &str) -> Self {
        Self { user: user.to_owned(), auth: None }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    who: Option<Carried>,
    node: String,
    /// The node's epoch: a ticket is good for the run of the node it was made for.
    epoch: u64,
    expires_ms: u64,
    nonce: u64,
}

/// The tickets of one node: making them for others, redeeming its own.
pub struct Tickets {
    mac: HmacSha256,
    me: String,
    epoch: u64,
    lifetime_ms: u64,
    /// Redeemed nonces until their ticket would have expired.
    used: HashMap<u64, u64>,
}

impl std::fmt::Debug for Tickets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tickets").field("me", &self.me).field("used", &self.used.len()).finish()
    }
}

impl Tickets {
    /// The tickets of node `me` in its run `epoch`, under the cluster's `secret`, each valid
    /// for `lifetime_ms`.
    pub fn new(secret: &[u8], me: &str, epoch: u64, lifetime_ms: u64) -> Self {
        let mac = <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC takes a key of any length");
        Self { mac, me: me.to_owned(), epoch, lifetime_ms, used: HashMap::new() }
    }

    /// A ticket for `node` in its run `epoch` carrying `who`, made at `now_ms` (Unix
    /// milliseconds). `None` if that is too long for a ticket ([`MAX_TICKET_LEN`]).
    pub fn issue(
        &self,
        who: Option<&Carried>,
        node: &str,
        epoch: u64,
        now_ms: u64,
        nonce: u64,
    ) -> Option<String> {
        let claims = Claims {
            who: who.cloned(),
            node: node.to_owned(),
            epoch,
            expires_ms: now_ms + self.lifetime_ms,
            nonce,
        };
        let body = B64.encode(super::wire::encode(&claims));
        let mut mac = self.mac.clone();
        mac.update(body.as_bytes());
        let tag = mac.finalize().into_bytes();
        let ticket = format!("{body}.{}", B64.encode(&tag[..MAC_BYTES]));
        (ticket.len() <= MAX_TICKET_LEN).then_some(ticket)
    }

    /// Redeems a ticket offered to this node at `now_ms`: who it carries.
    pub fn redeem(&mut self, ticket: &str, now_ms: u64) -> Result<Option<Carried>, TicketError> {
        if ticket.len() > MAX_TICKET_LEN {
            return Err(TicketError::Malformed);
        }
        let (body, tag) = ticket.split_once('.').ok_or(TicketError::Malformed)?;
        let tag = B64.decode(tag).map_err(|_| TicketError::Malformed)?;
        let mut mac = self.mac.clone();
        mac.update(body.as_bytes());
        mac.verify_truncated_left(&tag).map_err(|_| TicketError::Forged)?;
        if tag.len() != MAC_BYTES {
            return Err(TicketError::Forged);
        }
        let bytes = B64.decode(body).map_err(|_| TicketError::Malformed)?;
        let claims: Claims = super::wire::decode(&bytes).ok_or(TicketError::Malformed)?;
        if claims.node != self.me || claims.epoch != self.epoch {
            return Err(TicketError::OtherNode);
        }
        if now_ms >= claims.expires_ms {
            return Err(TicketError::Expired);
        }
        self.used.retain(|_, expires| *expires > now_ms);
        if self.used.insert(claims.nonce, claims.expires_ms).is_some() {
            return Err(TicketError::Used);
        }
        Ok(claims.who)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000;

    #[test]
    fn a_ticket_is_redeemed_once_on_its_node_within_its_lifetime() {
        let a = Tickets::new(b"secret", "a", 1, 10_000);
        let mut b = Tickets::new(b"secret", "b", 1, 10_000);
        let ticket = a.issue(Some(&Carried::user("ann")), "b", 1, T0, 1).expect("short");
        assert!(ticket.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c)), "{ticket}");
        assert_eq!(b.redeem(&ticket, T0 + 9_999), Ok(Some(Carried::user("ann"))));
        assert_eq!(b.redeem(&ticket, T0 + 9_999), Err(TicketError::Used));
        let late = a.issue(Some(&Carried::user("ann")), "b", 1, T0, 2).expect("short");
        assert_eq!(b.redeem(&late, T0 + 10_000), Err(TicketError::Expired));
        let for_c = a.issue(None, "c", 1, T0, 3).expect("short");
        assert_eq!(b.redeem(&for_c, T0), Err(TicketError::OtherNode));
    }

    #[test]
    fn a_ticket_is_good_for_the_run_of_the_node_it_was_made_for_only() {
        let a = Tickets::new(b"secret", "a", 1, 10_000);
        let ticket = a.issue(Some(&Carried::user("ann")), "b", 7, T0, 1).expect("short");
        let mut b = Tickets::new(b"secret", "b", 7, 10_000);
        assert_eq!(b.redeem(&ticket, T0), Ok(Some(Carried::user("ann"))));
        // b restarts within the ticket's lifetime: the new run does not know it was used.
        let mut b_again = Tickets::new(b"secret", "b", 8, 10_000);
        assert_eq!(b_again.redeem(&ticket, T0 + 1), Err(TicketError::OtherNode));
    }

    #[test]
    fn a_ticket_carries_the_identity_so_a_redirected_player_keeps_its_roles_and_expiry() {
        let a = Tickets::new(b"secret", "a", 1, 10_000);
        let mut b = Tickets::new(b"secret", "b", 1, 10_000);
        let who = Carried { user: "ann".into(), auth: Some((vec!["admin".into()], Some(T0 + 60_000))) };
        let ticket = a.issue(Some(&who), "b", 1, T0, 1).expect("short");
        assert_eq!(b.redeem(&ticket, T0), Ok(Some(who)));
    }

    #[test]
    fn forged_and_malformed_tickets_are_refused() {
        let a = Tickets::new(b"secret", "a", 1, 10_000);
        let mut b = Tickets::new(b"secret", "b", 1, 10_000);
        let mut thief = Tickets::new(b"guess", "b", 1, 10_000);
        let forged = Tickets::new(b"guess", "x", 1, 10_000)
            .issue(Some(&Carried::user("root")), "b", 1, T0, 1)
            .expect("short");
        assert_eq!(b.redeem(&forged, T0), Err(TicketError::Forged));
        let good = a.issue(Some(&Carried::user("ann")), "b", 1, T0, 2).expect("short");
        assert_eq!(thief.redeem(&good, T0), Err(TicketError::Forged));
        // The same claims with another user, under the old MAC.
        let (_, tag) = good.split_once('.').expect("dot");
        let other = a.issue(Some(&Carried::user("eve")), "b", 1, T0, 2).expect("short");
        let (body, _) = other.split_once('.').expect("dot");
        assert_eq!(b.redeem(&format!("{body}.{tag}"), T0), Err(TicketError::Forged));
        for bad in ["", ".", "abc", "a.b", "!!.!!", &"x".repeat(MAX_TICKET_LEN + 1)] {
            assert!(matches!(b.redeem(bad, T0), Err(TicketError::Malformed | TicketError::Forged)), "{bad}");
        }
        assert_eq!(
            a.issue(Some(&Carried::user(&"n".repeat(600))), "b", 1, T0, 1),
            None,
            "too long for a URL"
        );
    }
}
