//! The arena's session tokens: what `register`, `signin` and `guest` hand out and the arena's
//! [`Authenticator`] accepts (PROTOCOL.md 8.8).
//!
//! A token is `<claims>.<tag>`, both URL-safe base64 without padding: the claims are the
//! text `<account id>.<expiry, Unix seconds>.<name>`, the tag their HMAC-SHA-256 under the
//! arena's [`SessionKey`]. Only the arena reads the claims, so their form is its own; the tag
//! makes them unforgeable without the key. Verifying needs no I/O: the key is in memory.
//!
//! The key is 32 random bytes in a file next to the database (`<db>.key`, created with the
//! database, readable by its owner only), so tokens survive a restart and a new database
//! (a new file) invalidates every old token with it.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{KeyInit, Mac};
use ticksock_server::{Authenticator, Identity};

use crate::store::{AccountId, StoreError};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// How long a session token is good for: a day of play; then the client signs in again.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// The key's length in bytes: SHA-256's block-sized security, 256 bits.
const KEY_BYTES: usize = 32;
/// The longest token [`SessionKey::verify`] reads: longer than any the arena issues (an
/// id, an expiry and a 32-byte name, in base64, plus the tag), so a huge one costs nothing.
const MAX_TOKEN_LEN: usize = 256;

/// What a session token says: whose it is and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClaims {
    /// The account.
    pub account: AccountId,
    /// The account's name, which the connection is bound to.
    pub name: String,
    /// When the token stops being accepted.
    pub expires: SystemTime,
}

/// Why a token was refused. Its text goes back to the client (PROTOCOL.md 13.2), so it says
/// what is wrong without helping a forger. (A refusal the authenticator turns into text, not
/// an error of the crate: [`StoreError`] is that.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of this arena's form.
    Malformed,
    /// The tag does not match: made with another key (another database) or altered.
    Forged,
    /// Past its expiry: sign in again.
    Expired,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Malformed => "not a session token",
            Self::Forged => "the session token is not valid here",
            Self::Expired => "the session token has expired",
        })
    }
}

/// The key that signs and checks session tokens. `Debug` does not show it.
#[derive(Clone)]
pub struct SessionKey {
    mac: HmacSha256,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// A key from these bytes (tests, or a key kept elsewhere).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        // HMAC is defined for keys of any length, so this cannot fail.
        let mac = <HmacSha256 as KeyInit>::new_from_slice(bytes).expect("HMAC takes a key of any length");
        Self { mac }
    }

    /// The key file that goes with the database at `db`: `<db>.key`.
    pub fn path_for(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(".key");
        PathBuf::from(name)
    }

    /// Reads the key from `path`, or makes a random one there if the file does not exist.
    /// A file of any other length than a key's is refused rather than replaced: replacing it
    /// would sign every player out, and it may be someone's mistake to fix.
    ///
    /// Two programs starting at once on a new database agree on one key: the key is written
    /// whole to a file of this process's own and then linked to `path`, which fails for the
    /// second one, which then reads the first one's.
    pub fn load_or_create(path: &Path) -> Result<Self, StoreError> {
        let error = |why: String| StoreError::KeyFile { path: path.to_owned(), why };
        match std::fs::File::open(path) {
            Ok(file) => return Self::read(file).map_err(error),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(error(e.to_string())),
        }
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| error(format!("no randomness: {e}")))?;
        let mut draft = path.as_os_str().to_owned();
        draft.push(format!(".{}.new", std::process::id()));
        let draft = PathBuf::from(draft);
        let written = write_private(&draft, &bytes).and_then(|()| std::fs::hard_link(&draft, path));
        let _ = std::fs::remove_file(&draft);
        match written {
            Ok(()) => Ok(Self::from_bytes(&bytes)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let file = std::fs::File::open(path).map_err(|e| error(e.to_string()))?;
                Self::read(file).map_err(error)
            }
            Err(e) => Err(error(e.to_string())),
        }
    }

    /// The key in a key file.
    fn read(file: std::fs::File) -> Result<Self, String> {
        let mut bytes = Vec::with_capacity(KEY_BYTES);
        file.take(KEY_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        if bytes.len() != KEY_BYTES {
            return Err(format!("holds {} bytes, not a {KEY_BYTES}-byte key", bytes.len()));
        }
        Ok(Self::from_bytes(&bytes))
    }

    /// A token for `account` named `name`, good from `now` for [`SESSION_LIFETIME`].
    pub fn issue(&self, account: AccountId, name: &str, now: SystemTime) -> String {
        let expires = (now + SESSION_LIFETIME).duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = B64.encode(format!("{account}.{expires}.{name}"));
        let tag = self.tag(&claims);
        format!("{claims}.{}", B64.encode(tag))
    }

    /// What `token` says, if this key made it and it has not expired at `now`.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<SessionClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (claims, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let tag = B64.decode(tag).map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac.clone();
        mac.update(claims.as_bytes());
        // Constant-time: a forger learns nothing from how long a refusal took.
        mac.verify_slice(&tag).map_err(|_| TokenError::Forged)?;
        let text = B64.decode(claims).map_err(|_| TokenError::Malformed)?;
        let text = String::from_utf8(text).map_err(|_| TokenError::Malformed)?;
        let mut parts = text.splitn(3, '.');
        let (Some(account), Some(expires), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Malformed);
        };
        let account = AccountId(account.parse().map_err(|_| TokenError::Malformed)?);
        let expires = UNIX_EPOCH + Duration::from_secs(expires.parse().map_err(|_| TokenError::Malformed)?);
        if now >= expires {
            return Err(TokenError::Expired);
        }
        Ok(SessionClaims { account, name: name.to_owned(), expires })
    }

    fn tag(&self, claims: &str) -> Vec<u8> {
        let mut mac = self.mac.clone();
        mac.update(claims.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// The arena's [`Authenticator`]: a session token of its own [`SessionKey`] is the account's
/// name, with no roles, until the token's expiry.
#[derive(Debug, Clone)]
pub struct SessionAuthenticator {
    key: SessionKey,
}

impl SessionAuthenticator {
    /// Accepts the tokens `key` signs.
    pub fn new(key: SessionKey) -> Self {
        Self { key }
    }
}

/// Writes `bytes` to a new file at `path` that only its owner may read, flushed to the disk: a
/// token signed with a key the disk lost would be refused after a power cut.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

impl Authenticator for SessionAuthenticator {
    fn verify(&self, token: &str) -> Result<Identity, String> {
        let claims = self.key.verify(token, SystemTime::now()).map_err(|e| e.to_string())?;
        Ok(Identity { user: claims.name, roles: Vec::new(), expires: Some(claims.expires) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SessionKey {
        SessionKey::from_bytes(&[7; KEY_BYTES])
    }

    #[test]
    fn a_token_carries_its_claims_until_it_expires() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = key().issue(AccountId(17), "ann.b", now);
        let claims = key().verify(&token, now).expect("good");
        assert_eq!(claims.account, AccountId(17));
        assert_eq!(claims.name, "ann.b", "a dot in the name survives");
        assert_eq!(claims.expires, now + SESSION_LIFETIME);
        assert!(key().verify(&token, now + SESSION_LIFETIME - Duration::from_secs(1)).is_ok());
        assert_eq!(key().verify(&token, now + SESSION_LIFETIME), Err(TokenError::Expired));
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)), "URL-safe: {token}");
    }

    #[test]
    fn another_key_or_an_altered_token_is_refused() {
        let now = SystemTime::now();
        let token = key().issue(AccountId(1), "ann", now);
        assert_eq!(SessionKey::from_bytes(&[8; KEY_BYTES]).verify(&token, now), Err(TokenError::Forged));
        let (claims, tag) = token.split_once('.').expect("two parts");
        let other = key().issue(AccountId(2), "ann", now);
        let (other_claims, _) = other.split_once('.').expect("two parts");
        assert_eq!(key().verify(&format!("{other_claims}.{tag}"), now), Err(TokenError::Forged));
        for bad in ["", "x", claims, &format!("{claims}.!!"), &"a".repeat(10_000)] {
            assert_eq!(key().verify(bad, now), Err(TokenError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn the_key_file_is_made_once_and_read_back() {
        let dir = std::env::temp_dir().join(format!("ticksock-session-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = SessionKey::path_for(&dir.join("arena.db"));
        assert_eq!(path, dir.join("arena.db.key"));
        let now = SystemTime::now();
        let token = SessionKey::load_or_create(&path).expect("made").issue(AccountId(3), "cyd", now);
        let again = SessionKey::load_or_create(&path).expect("read");
        assert_eq!(again.verify(&token, now).map(|c| c.name), Ok("cyd".to_owned()), "survives a restart");
        std::fs::write(&path, b"short").expect("writes");
        let e = SessionKey::load_or_create(&path).expect_err("a damaged key");
        assert!(e.to_string().contains("holds 5 bytes"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
