//! Why a version 2 resume failed: the `reason` of a
//! [`ServerFrame::ResumeFailed`](crate::v2::ServerFrame::ResumeFailed) (`docs/PROTOCOL.md`
//! section 11.5).
//!
//! A failed resume never closes the link: it carries on as the new session of its Welcome.
//! Reasons 1 to 4 mean the earlier session is gone; 5 to 8 leave it untouched, waiting for its
//! real owner.

/// No session with that `conn_id` ever existed in this run of the server.
pub const UNKNOWN_SESSION: u16 = 1;
/// The session ended: its grace passed, its replay buffer overflowed, or it was closed.
pub const ENDED: u16 = 2;
/// The server no longer holds every frame after the client's `received` count.
pub const GAP_LOST: u16 = 3;
/// The `epoch` is not this server run's: the server restarted (or it is another server).
pub const RESTARTED: u16 = 4;
/// The secret is not the session's.
pub const BAD_SECRET: u16 = 5;
/// The secret was the session's, but a later resume has replaced it.
pub const SUPERSEDED: u16 = 6;
/// `received` is more than the server ever sent on the session.
pub const BAD_COUNT: u16 = 7;
/// The Resume was not the first frame on the link, or the link speaks version 1.
pub const NOT_FIRST: u16 = 8;

/// A short, stable name for a reason, for logs and metrics; `"reserved"` for a code no
/// version defines.
pub fn name(code: u16) -> &'static str {
    match code {
        UNKNOWN_SESSION => "unknown_session",
        ENDED => "ended",
        GAP_LOST => "gap_lost",
        RESTARTED => "restarted",
        BAD_SECRET => "bad_secret",
        SUPERSEDED => "superseded",
        BAD_COUNT => "bad_count",
        NOT_FIRST => "not_first",
        _ => "reserved",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_the_name_of_section_11_5() {
        let named = [
            (UNKNOWN_SESSION, "unknown_session"),
            (ENDED, "ended"),
            (GAP_LOST, "gap_lost"),
            (RESTARTED, "restarted"),
            (BAD_SECRET, "bad_secret"),
            (SUPERSEDED, "superseded"),
            (BAD_COUNT, "bad_count"),
            (NOT_FIRST, "not_first"),
        ];
        for (index, (code, expected)) in named.into_iter().enumerate() {
            assert_eq!(usize::from(code), index + 1, "reasons are numbered 1, 2, 3, ...");
            assert_eq!(name(code), expected);
        }
        assert_eq!(name(0), "reserved");
        assert_eq!(name(9), "reserved");
    }
}
