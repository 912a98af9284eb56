//! Which names `login` may not take: those of accounts (registered, or being registered) and
//! guests' (`guest-` and a number). A name typed at `login` proves nothing, so it must not
//! let anyone chat or play as an account's owner; the owner signs in and sends the token.
//!
//! The set lives on the logic thread: filled from the database at start
//! ([`Accounts::names_at_open`](crate::accounts::Accounts::names_at_open)), a name reserved
//! when its `register` starts (so a `login` cannot slip in while the job runs) and kept or
//! released when the job ends. Memory: one `String` per account (about 40 bytes each); a game
//! with millions of accounts would ask the database instead, on the job pool.

use std::collections::HashSet;

use crate::store::GUEST_PREFIX;

/// The names `login` refuses.
#[derive(Debug, Default)]
pub struct ReservedNames {
    accounts: HashSet<String>,
    registering: HashSet<String>,
}

impl ReservedNames {
    /// The accounts' names at start.
    pub fn new(accounts: impl IntoIterator<Item = String>) -> Self {
        Self { accounts: accounts.into_iter().collect(), registering: HashSet::new() }
    }

    /// Whether `name` belongs to an account, to one being registered, or to guests.
    pub fn is_reserved(&self, name: &str) -> bool {
        name.starts_with(GUEST_PREFIX) || self.accounts.contains(name) || self.registering.contains(name)
    }

    /// Reserves `name` for a `register` that starts; `false` if an account has it or is
    /// being registered with it. (A guest's name is the store's to refuse, as invalid.)
    pub fn start_registering(&mut self, name: &str) -> bool {
        if self.accounts.contains(name) || self.registering.contains(name) {
            return false;
        }
        self.registering.insert(name.to_owned());
        true
    }

    /// The `register` of `name` ended: the account exists (`created`), or the name is free
    /// again.
    pub fn end_registering(&mut self, name: &str, created: bool) {
        self.registering.remove(name);
        if created {
            self.accounts.insert(name.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_names_in_registration_and_guests_are_reserved_until_a_failed_registration_ends() {
        let mut names = ReservedNames::new(["ann".to_owned()]);
        assert!(names.is_reserved("ann"));
        assert!(names.is_reserved("guest-7"));
        assert!(!names.is_reserved("Ann"), "byte for byte, as the database compares");
        assert!(!names.start_registering("ann"));
        assert!(names.start_registering("bob"));
        assert!(names.is_reserved("bob"), "reserved while the job runs");
        assert!(!names.start_registering("bob"), "one registration at a time");
        names.end_registering("bob", false);
        assert!(!names.is_reserved("bob"), "free again after a failure");
        assert!(names.start_registering("bob"));
        names.end_registering("bob", true);
        assert!(names.is_reserved("bob"));
    }
}
