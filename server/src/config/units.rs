//! Durations on the command line: a whole number in the unit the flag's name ends with
//! (`--idle-timeout-ms`, `--min-turn-interval-us`, `--shutdown-timeout-secs`), both ways.

use std::num::ParseIntError;
use std::time::Duration;

/// Reads a `…-ms` flag.
pub(crate) fn millis(text: &str) -> Result<Duration, ParseIntError> {
    text.parse().map(Duration::from_millis)
}

/// Reads a `…-us` flag.
pub(crate) fn micros(text: &str) -> Result<Duration, ParseIntError> {
    text.parse().map(Duration::from_micros)
}

/// Reads a `…-secs` flag.
pub(crate) fn secs(text: &str) -> Result<Duration, ParseIntError> {
    text.parse().map(Duration::from_secs)
}

/// A duration as a `…-ms` flag's value (a default shown in the help).
pub(crate) fn in_millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// A duration as a `…-us` flag's value.
pub(crate) fn in_micros(duration: Duration) -> String {
    duration.as_micros().to_string()
}

/// A duration as a `…-secs` flag's value.
pub(crate) fn in_secs(duration: Duration) -> String {
    duration.as_secs().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unit_reads_back_what_it_writes() {
        let d = Duration::from_secs(3);
        assert_eq!(millis(&in_millis(d)), Ok(d));
        assert_eq!(micros(&in_micros(d)), Ok(d));
        assert_eq!(secs(&in_secs(d)), Ok(d));
        assert_eq!(millis("1500"), Ok(Duration::from_millis(1500)));
        assert_eq!(micros("100"), Ok(Duration::from_micros(100)));
    }

    #[test]
    fn only_whole_non_negative_numbers_are_read() {
        for bad in ["", "1.5", "-1", "1s", "ten"] {
            assert!(millis(bad).is_err(), "{bad:?}");
        }
    }
}
