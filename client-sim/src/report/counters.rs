//! [`Counters`]: the counts every worker keeps, added up at the end (one field per thing
//! counted, each said what it counts; the merge names every field, so a new one cannot be
//! forgotten there).

use serde::Serialize;

/// Counts kept by each worker and added up at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Bots started.
    pub bots_launched: u64,
    /// Bots that got the server's welcome at least once.
    pub bots_connected: u64,
    /// Connection attempts (TCP connect + upgrade), first ones and reconnects.
    pub connect_attempts: u64,
    /// Attempts that ended before the welcome (refused, upgrade failed, timed out).
    pub connect_failures: u64,
    /// Connections that reached the welcome.
    pub connections: u64,
    /// Connections beyond each bot's first (after a drop).
    pub reconnects: u64,
    /// Welcomed connections that dropped during the run.
    pub disconnects: u64,
    /// Bots whose session gave up reconnecting.
    pub gave_up: u64,
    /// Calls made (accepted by the session).
    pub calls: u64,
    /// Calls the session refused at once (offline queue full, too many pending).
    pub refused: u64,
    /// Calls answered with a reply.
    pub replied: u64,
    /// Calls answered with an error reply.
    pub errored: u64,
    /// Calls that timed out.
    pub timed_out: u64,
    /// Calls in flight when their connection dropped.
    pub disconnected_calls: u64,
    /// Echo replies whose body differed from the request's.
    pub echo_mismatches: u64,
    /// Pushes received, all topics.
    pub pushes: u64,
    /// Pushes on `state`.
    pub pushes_state: u64,
    /// Pushes on `chat`.
    pub pushes_chat: u64,
    /// Pushes on `presence`.
    pub pushes_presence: u64,
    /// Pushes on other topics.
    pub pushes_other: u64,
    /// Pushes that did not decode as their topic's type.
    pub bad_pushes: u64,
    /// State ticks a bot never saw (a gap of more than one in consecutive `state` pushes).
    pub ticks_skipped: u64,
    /// Protocol violations the client detected (undecodable frames, frames before the welcome).
    pub protocol_errors: u64,
    /// Churn: cycles completed (connect, login, join, then a clean close or a planned drop).
    pub cycles: u64,
    /// Churn: cycles that ended with the WebSocket closing handshake (the server answered the
    /// close frame and closed the TCP connection).
    pub clean_closes: u64,
    /// Churn: cycles that ended by dropping the socket without a close frame, on purpose.
    pub abrupt_drops: u64,
    /// Churn: cycles abandoned because something went wrong (each also counts an error).
    pub cycle_failures: u64,
    /// Churn: closing handshakes that did not end in the server closing the connection in
    /// time (`--call-timeout`), or ended in a reset.
    pub unclean_closes: u64,
    /// Churn: connections the server dropped in the middle of a cycle; idle: connections that
    /// dropped at all.
    pub unexpected_drops: u64,
    /// Pushes decoded in full as their topic's type (the first `state` push of each connection,
    /// or every push with `--validate-pushes`).
    pub pushes_decoded: u64,
    /// Faults: connections killed with a TCP reset (`SO_LINGER` 0, then close).
    pub kills_rst: u64,
    /// Faults: connections killed by silence, their socket held open (half-open).
    pub kills_half_open: u64,
    /// Faults: half-open connections the server closed within the hold (or shortly after).
    pub half_open_found: u64,
    /// Faults: half-open connections still open a second after the hold: the server did not
    /// find them dead in time (or the socket could not be held).
    pub half_open_missed: u64,
    /// `--faults`: first sessions killed right after the welcome, before sending anything.
    pub kills_fresh_before: u64,
    /// `--faults`: first sessions killed right after their first frame (the `login`) went out.
    pub kills_fresh_after: u64,
    /// `--faults`: half-open kills drawn as early reconnects (within half the server's idle
    /// timeout).
    pub kills_early: u64,
    /// `--faults`: half-open links still open (the server had not found them dead) when their
    /// bot reconnected: early reconnects, as measured.
    pub old_links_open_at_reconnect: u64,
    /// `--faults`: of those, the links the server closed within a second of the resume.
    pub old_links_ended_by_resume: u64,
    /// `--faults`: old links still open a second after their session resumed (must be 0).
    pub old_links_not_ended: u64,
    /// `--faults`: outages that ended with the bot reconnecting to resume its session.
    pub resumes_attempted: u64,
    /// `--faults`: resumes the server accepted.
    pub resumes_ok: u64,
    /// `--faults`: resumes the server refused (by reason in [`Report::resume`](super::Report::resume)).
    pub resumes_failed: u64,
    /// `--faults`: resumes accepted inside the window (where they must be).
    pub resumed_inside: u64,
    /// `--faults`: resumes accepted near an edge of the window (either outcome allowed).
    pub resumed_edge: u64,
    /// `--faults`: resumes accepted clearly outside the window (must be 0).
    pub resumed_outside: u64,
    /// `--faults`: resumes refused inside the window (must be 0).
    pub failed_inside: u64,
    /// `--faults`: of those, sessions killed right after their welcome, before their first
    /// frame (a server gap: see `tests/server_gaps.rs`).
    pub failed_inside_before_first_frame: u64,
    /// `--faults`: resumes refused near an edge of the window.
    pub failed_edge: u64,
    /// `--faults`: resumes refused outside the window (where they must be).
    pub failed_outside: u64,
    /// `--faults`: sessions that ended although their bot had not killed their link (must be 0).
    pub sessions_ended_unplanned: u64,
    /// `--faults`: links on which the server chose version 1 (must be 0: nothing to resume).
    pub links_not_v2: u64,
    /// `--faults`: `once` calls made.
    pub calls_once: u64,
    /// `--faults`: `once` answers other than 1: a request the server ran twice (must be 0).
    pub once_ran_twice: u64,
    /// Version 2: calls answered `stale_request`: the server ran them and lost the answer.
    pub answers_lost: u64,
    /// Version 2: calls that failed because their session ended (a refused resume): their
    /// fate is unknown, and the client said so. Not errors.
    pub calls_failed_session_ended: u64,
    /// `--faults`: moves not made because the bot was offline with enough calls queued.
    pub moves_skipped_offline: u64,
    /// `--faults`: `state` pushes whose tick did not increase on their session (must be 0).
    pub pushes_duplicated: u64,
    /// Redirects (Error `redirect`, PROTOCOL.md 12.2) followed: a new connection to the URL
    /// they named, the call sent again there.
    pub redirects_followed: u64,
    /// Redirects that failed because the new connection failed, or closed before the call's
    /// answer (a refused ticket's 4002 close, or a drop). The call's failure counts as an
    /// error too.
    pub redirects_failed_closed: u64,
    /// Redirects not followed: the call had been redirected 3 times already (its error reply
    /// counts as an error too).
    pub redirects_failed_too_many: u64,
    /// Redirects not followed: the message is no `ws://` URL (its error reply counts too).
    pub redirects_failed_bad_url: u64,
    /// Whisper: pushes on `whisper` that were not a whisper of this run (must be 0).
    pub whispers_unknown: u64,
    /// `--accounts guest`: guest accounts made (`guest` answered a session token).
    pub guests_created: u64,
    /// `--accounts guest`: `guest` calls that failed (each an error of its call too; by kind
    /// in [`AccountFigures::failures`](super::AccountFigures::failures)).
    pub guest_failures: u64,
    /// `--accounts guest`: `auth` calls answered with the account: one per server session.
    pub auths_ok: u64,
    /// `--accounts guest`: `auth` calls that failed (each an error of its call too; by code
    /// in [`AccountFigures::failures`](super::AccountFigures::failures)).
    pub auth_failures: u64,
    /// `--persist-per-sec`: `flush_stats` calls made.
    pub persist_calls: u64,
    /// `--persist-per-sec`: `flush_stats` calls answered with the totals (committed).
    pub persist_replied: u64,
    /// `--persist-per-sec`: `flush_stats` calls that failed (each an error of its call too).
    pub persist_failed: u64,
    /// Bytes of push bodies received, all topics.
    pub push_bytes: u64,
    /// Bytes of the bodies of the state pushes: `state`, or `replica` with `--replication`.
    pub state_bytes: u64,
    /// `--replication`: `replica` pushes applied to the bot's mirror.
    pub replica_updates: u64,
    /// `--replication`: of which full snapshots (no baseline).
    pub replica_full: u64,
    /// `--replication`: `replica` pushes the mirror refused (undecodable, an unknown baseline, out of order): must be 0.
    pub replica_not_applied: u64,
    /// `--replication`: `replica_ack` calls made.
    pub replica_acks: u64,
    /// `--replication`: acknowledgements answered `accepted`.
    pub replica_acks_accepted: u64,
    /// `--replication`: acknowledgements answered `stale` (an older one arrived after a newer one).
    pub replica_acks_stale: u64,
    /// `--replication`: acknowledgements answered `unknown` (a tick the server no longer holds).
    pub replica_acks_unknown: u64,
    /// `--replication`: digests compared: the server's digest of the view it last sent, against the mirror's view of that tick.
    pub digest_checks: u64,
    /// `--replication`: of which different: must be 0.
    pub digest_mismatches: u64,
    /// `--replication`: digests of a tick the bot's mirror never held: an update lost or refused (must be 0).
    pub digest_tick_unseen: u64,
    /// `--replication`: `replica_digest` answered none (no update sent yet to this connection, or a server without `--replica-digests`).
    pub digest_absent: u64,
    /// `--replication`: digests compared that were the first after a `join` (the view built from that join's full snapshot).
    pub digest_after_join: u64,
    /// `--link-loss-every`: links reset on purpose (the bot reconnects and joins again).
    pub link_losses: u64,
    /// `--replication`: times a bot's own avatar, as its mirror shows it, changed interest cell (`--aoi-cell`).
    pub cell_crossings: u64,
}

impl Counters {
    /// Adds `o` to these counts. (Every field is named, so a new counter that is not added
    /// here does not compile.)
    pub fn merge(&mut self, o: &Counters) {
        let Counters {
            bots_launched,
            bots_connected,
            connect_attempts,
            connect_failures,
            connections,
            reconnects,
            disconnects,
            gave_up,
            calls,
            refused,
            replied,
            errored,
            timed_out,
            disconnected_calls,
            echo_mismatches,
            pushes,
            pushes_state,
            pushes_chat,
            pushes_presence,
            pushes_other,
            bad_pushes,
            ticks_skipped,
            protocol_errors,
            cycles,
            clean_closes,
            abrupt_drops,
            cycle_failures,
            unclean_closes,
            unexpected_drops,
            pushes_decoded,
            kills_rst,
            kills_half_open,
            half_open_found,
            half_open_missed,
            kills_fresh_before,
            kills_fresh_after,
            kills_early,
            old_links_open_at_reconnect,
            old_links_ended_by_resume,
            old_links_not_ended,
            resumes_attempted,
            resumes_ok,
            resumes_failed,
            resumed_inside,
            resumed_edge,
            resumed_outside,
            failed_inside,
            failed_inside_before_first_frame,
            failed_edge,
            failed_outside,
            sessions_ended_unplanned,
            links_not_v2,
            calls_once,
            once_ran_twice,
            answers_lost,
            calls_failed_session_ended,
            moves_skipped_offline,
            pushes_duplicated,
            redirects_followed,
            redirects_failed_closed,
            redirects_failed_too_many,
            redirects_failed_bad_url,
            whispers_unknown,
            guests_created,
            guest_failures,
            auths_ok,
            auth_failures,
            persist_calls,
            persist_replied,
            persist_failed,
            push_bytes,
            state_bytes,
            replica_updates,
            replica_full,
            replica_not_applied,
            replica_acks,
            replica_acks_accepted,
            replica_acks_stale,
            replica_acks_unknown,
            digest_checks,
            digest_mismatches,
            digest_tick_unseen,
            digest_absent,
            digest_after_join,
            link_losses,
            cell_crossings,
        } = o;
        self.bots_launched += bots_launched;
        self.bots_connected += bots_connected;
        self.connect_attempts += connect_attempts;
        self.connect_failures += connect_failures;
        self.connections += connections;
        self.reconnects += reconnects;
        self.disconnects += disconnects;
        self.gave_up += gave_up;
        self.calls += calls;
        self.refused += refused;
        self.replied += replied;
        self.errored += errored;
        self.timed_out += timed_out;
        self.disconnected_calls += disconnected_calls;
        self.echo_mismatches += echo_mismatches;
        self.pushes += pushes;
        self.pushes_state += pushes_state;
        self.pushes_chat += pushes_chat;
        self.pushes_presence += pushes_presence;
        self.pushes_other += pushes_other;
        self.bad_pushes += bad_pushes;
        self.ticks_skipped += ticks_skipped;
        self.protocol_errors += protocol_errors;
        self.cycles += cycles;
        self.clean_closes += clean_closes;
        self.abrupt_drops += abrupt_drops;
        self.cycle_failures += cycle_failures;
        self.unclean_closes += unclean_closes;
        self.unexpected_drops += unexpected_drops;
        self.pushes_decoded += pushes_decoded;
        self.kills_rst += kills_rst;
        self.kills_half_open += kills_half_open;
        self.half_open_found += half_open_found;
        self.half_open_missed += half_open_missed;
        self.kills_fresh_before += kills_fresh_before;
        self.kills_fresh_after += kills_fresh_after;
        self.kills_early += kills_early;
        self.old_links_open_at_reconnect += old_links_open_at_reconnect;
        self.old_links_ended_by_resume += old_links_ended_by_resume;
        self.old_links_not_ended += old_links_not_ended;
        self.resumes_attempted += resumes_attempted;
        self.resumes_ok += resumes_ok;
        self.resumes_failed += resumes_failed;
        self.resumed_inside += resumed_inside;
        self.resumed_edge += resumed_edge;
        self.resumed_outside += resumed_outside;
        self.failed_inside += failed_inside;
        self.failed_inside_before_first_frame += failed_inside_before_first_frame;
        self.failed_edge += failed_edge;
        self.failed_outside += failed_outside;
        self.sessions_ended_unplanned += sessions_ended_unplanned;
        self.links_not_v2 += links_not_v2;
        self.calls_once += calls_once;
        self.once_ran_twice += once_ran_twice;
        self.answers_lost += answers_lost;
        self.calls_failed_session_ended += calls_failed_session_ended;
        self.moves_skipped_offline += moves_skipped_offline;
        self.pushes_duplicated += pushes_duplicated;
        self.redirects_followed += redirects_followed;
        self.redirects_failed_closed += redirects_failed_closed;
        self.redirects_failed_too_many += redirects_failed_too_many;
        self.redirects_failed_bad_url += redirects_failed_bad_url;
        self.whispers_unknown += whispers_unknown;
        self.guests_created += guests_created;
        self.guest_failures += guest_failures;
        self.auths_ok += auths_ok;
        self.auth_failures += auth_failures;
        self.persist_calls += persist_calls;
        self.persist_replied += persist_replied;
        self.persist_failed += persist_failed;
        self.push_bytes += push_bytes;
        self.state_bytes += state_bytes;
        self.replica_updates += replica_updates;
        self.replica_full += replica_full;
        self.replica_not_applied += replica_not_applied;
        self.replica_acks += replica_acks;
        self.replica_acks_accepted += replica_acks_accepted;
        self.replica_acks_stale += replica_acks_stale;
        self.replica_acks_unknown += replica_acks_unknown;
        self.digest_checks += digest_checks;
        self.digest_mismatches += digest_mismatches;
        self.digest_tick_unseen += digest_tick_unseen;
        self.digest_absent += digest_absent;
        self.digest_after_join += digest_after_join;
        self.link_losses += link_losses;
        self.cell_crossings += cell_crossings;
    }

    /// What counts as an error for the exit status: timeouts, error replies, failed connects,
    /// calls lost to a dropped connection, calls refused, anything the client found wrong in
    /// what the server sent, (churn) closing handshakes the server did not complete and
    /// connections it dropped mid-cycle, (faults) half-open connections the server did not
    /// close, and (`--faults`) every check that must come to zero: answers lost, requests run
    /// twice, pushes repeated, resumes refused inside the window or accepted outside it, old
    /// links the resume did not end, sessions ended unplanned, links without version 2; (whisper)
    /// pushes on `whisper` that are no whisper of the run. (Kills,
    /// and calls failed with a session that ended outside the window, are not errors.)
    pub fn errors(&self) -> u64 {
        self.timed_out
            + self.errored
            + self.connect_failures
            + self.disconnected_calls
            + self.refused
            + self.echo_mismatches
            + self.bad_pushes
            + self.protocol_errors
            + self.unclean_closes
            + self.unexpected_drops
            + self.half_open_missed
            + self.answers_lost
            + self.once_ran_twice
            + self.pushes_duplicated
            + self.failed_inside
            + self.resumed_outside
            + self.old_links_not_ended
            + self.sessions_ended_unplanned
            + self.links_not_v2
            + self.whispers_unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_add_up_what_counts() {
        let c =
            Counters { timed_out: 1, errored: 2, connect_failures: 3, replied: 100, ..Counters::default() };
        assert_eq!(c.errors(), 6);
        let mut total = Counters::default();
        total.merge(&c);
        total.merge(&c);
        assert_eq!(total.errors(), 12);
        assert_eq!(total.replied, 200);
    }
}
