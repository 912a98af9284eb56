//! Guest device tokens: 32 random bytes, given to the client once as URL-safe base64
//! (43 characters) and stored only as their SHA-256.
//!
//! A fast hash is enough here, unlike for passwords: a token has 256 bits of entropy, so
//! nobody can guess one from its hash however fast they hash; the hash only keeps a stolen
//! copy of the database from being a list of working tokens.

use super::StoreError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::fmt;

/// How many random bytes a token carries.
const TOKEN_BYTES: usize = 32;

/// A guest's device token, as the client keeps it and sends it back to
/// [`verify_guest`](super::Store::verify_guest). It is a password: `Debug` does not show it,
/// so that it cannot slip into a log.
#[derive(Clone, PartialEq, Eq)]
pub struct GuestToken(String);

impl GuestToken {
    /// Draws a new token from the operating system's random source.
    pub(crate) fn generate() -> Result<Self, StoreError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The token's text, to hand to the client.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The token's text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for GuestToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GuestToken(..)")
    }
}

/// The hash stored for a token's text, or [`StoreError::Invalid`] if the text is not a token
/// (any other length or alphabet) and so cannot match any account.
pub(crate) fn token_hash(token: &str) -> Result<[u8; 32], StoreError> {
    let invalid = || StoreError::Invalid {
        what: "token",
        why: format!("a guest token is {TOKEN_BYTES} bytes in URL-safe base64 without padding"),
    };
    // Checked before decoding so a huge string costs nothing.
    if token.len() != TOKEN_BYTES.div_ceil(3) * 4 - 1 {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    if bytes.len() != TOKEN_BYTES {
        return Err(invalid());
    }
    Ok(Sha256::digest(&bytes).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_43_characters_and_hashes() {
        let token = GuestToken::generate().expect("random");
        assert_eq!(token.as_str().len(), 43);
        let hash = token_hash(token.as_str()).expect("its own token parses");
        assert_eq!(hash, token_hash(token.as_str()).expect("parses"), "the hash is stable");
        assert_ne!(token, GuestToken::generate().expect("random"));
    }

    #[test]
    fn text_that_is_not_a_token_is_refused() {
        let token = GuestToken::generate().expect("random").into_string();
        for bad in [String::new(), "x".repeat(10_000), format!("{}!", &token[..42]), token[..42].to_string()]
        {
            assert!(matches!(token_hash(&bad), Err(StoreError::Invalid { what: "token", .. })), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_the_token() {
        let token = GuestToken::generate().expect("random");
        assert!(!format!("{token:?}").contains(token.as_str()));
    }
}
