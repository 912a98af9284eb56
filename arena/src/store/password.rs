//! Password hashes: Argon2id with the `argon2` crate's default parameters, stored as PHC
//! strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
//!
//! The defaults are OWASP's recommendation for Argon2id: 19 MiB of memory, 2 passes, 1 lane,
//! a 16-byte random salt. A hash costs tens of milliseconds of one core and 19 MiB, which is
//! why it runs on the job pool and never on the tick. The PHC string carries its parameters,
//! so stronger ones later still verify the old hashes.

use super::StoreError;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::sync::OnceLock;

/// How many random bytes salt a hash (the PHC string format's recommended length).
const SALT_LEN: usize = 16;

/// Hashes `password` with a fresh random salt, as a PHC string.
pub(crate) fn hash(password: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt)?;
    Ok(hash_with_salt(password, &salt))
}

fn hash_with_salt(password: &str, salt: &[u8; SALT_LEN]) -> String {
    let salt = SaltString::encode_b64(salt).expect("16 bytes is within a PHC salt's 4..=64");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("the default parameters are valid and passwords are capped far below Argon2's 4 GiB")
        .to_string()
}

/// Whether `password` matches `stored`, a PHC string from [`hash`]. A stored string that does
/// not parse is damage, not a wrong password.
pub(crate) fn verify(password: &str, stored: &str) -> Result<bool, StoreError> {
    let parsed = PasswordHash::new(stored)
        .map_err(|error| StoreError::Corrupt(format!("a stored password hash does not parse: {error}")))?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Spends the time of one [`verify`] and answers nothing: for a name that has no account, so
/// that "no such name" takes as long as "wrong password" and a guesser cannot tell which
/// names exist by timing `verify`.
pub(crate) fn verify_nothing(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    // The same parameters as every real hash, so the same cost; a fixed salt, since no one
    // can log in with it (no account points at it).
    let dummy = DUMMY.get_or_init(|| hash_with_salt("no account has this password", &[0; SALT_LEN]));
    // Whatever it answers, the caller answers `BadCredentials`.
    let _ = verify(password, dummy);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let stored = hash("correct horse").expect("hashes");
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(verify("correct horse", &stored).expect("parses"));
        assert!(!verify("correct horsf", &stored).expect("parses"));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        assert_ne!(hash("pw").expect("hashes"), hash("pw").expect("hashes"));
    }

    #[test]
    fn a_stored_hash_that_does_not_parse_is_damage() {
        assert!(matches!(verify("pw", "not a phc string"), Err(StoreError::Corrupt(_))));
    }
}
