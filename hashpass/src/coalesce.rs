//! The newest of a stream of updates, written at most once per interval
//! (docs/protocol.md#message-rate): the first update after a quiet interval is written at once,
//! later ones are held until the interval ends, and of those only the newest is written. So a
//! burst of any length costs two writes, and the final value is never lost.
//!
//! Timed in milliseconds of the runtime's monotonic clock
//! ([`monotonic_millis`](crate::clock::monotonic_millis)), like the socket's
//! [`MessageBudget`](crate::message_budget::MessageBudget): how often a shared store is written
//! is a matter of real time.

/// One kind of update, coalesced.
#[derive(Debug, Clone)]
pub(crate) struct Coalesced<T> {
    /// The newest update not yet written.
    held: Option<T>,
    /// Before this moment (milliseconds) a new update is held; from it on one is written.
    quiet_from: u64,
}

impl<T> Coalesced<T> {
    /// Nothing held, the next update written at once.
    pub(crate) fn new(now: u64) -> Self {
        Self {
            held: None,
            quiet_from: now,
        }
    }

    /// An update at `now`: it is returned to be written at once when the last write is at least
    /// `interval` old (replacing anything held), or else held (replacing an older held update).
    /// Times in milliseconds.
    pub(crate) fn offer(&mut self, update: T, now: u64, interval: u64) -> Option<T> {
        if now >= self.quiet_from {
            self.held = None;
            self.quiet_from = now.saturating_add(interval);
            Some(update)
        } else {
            self.held = Some(update);
            None
        }
    }

    /// The held update, if its time has come at `now`, to be written now.
    pub(crate) fn due(&mut self, now: u64, interval: u64) -> Option<T> {
        if now < self.quiet_from {
            return None;
        }
        let update = self.held.take()?;
        self.quiet_from = now.saturating_add(interval);
        Some(update)
    }

    /// When the held update is to be written, if one is held.
    pub(crate) fn deadline(&self) -> Option<u64> {
        self.held.as_ref().map(|_| self.quiet_from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: u64 = 1_000;

    #[test]
    fn the_first_update_goes_out_at_once_and_a_burst_costs_two_writes() {
        let start = 5_000;
        let mut rate = Coalesced::new(start);
        assert_eq!(rate.offer(1, start, INTERVAL), Some(1));
        assert_eq!(rate.deadline(), None);
        for i in 2..=10_000 {
            let at = start + i / 20;
            assert_eq!(rate.offer(i, at, INTERVAL), None);
        }
        assert_eq!(rate.deadline(), Some(start + INTERVAL));
        assert_eq!(rate.due(start + 999, INTERVAL), None);
        // The newest is written when the interval ends; nothing else is left.
        assert_eq!(rate.due(start + INTERVAL, INTERVAL), Some(10_000));
        assert_eq!(rate.deadline(), None);
        assert_eq!(rate.due(start + 3 * INTERVAL, INTERVAL), None);
    }

    #[test]
    fn updates_slower_than_the_interval_are_each_written_at_once() {
        let start = 0;
        let mut reports = Coalesced::new(start);
        for i in 0..10u64 {
            let at = start + 2 * INTERVAL * i;
            assert_eq!(reports.offer(i, at, INTERVAL), Some(i));
        }
    }

    #[test]
    fn writes_stay_an_interval_apart() {
        let start = 0;
        let mut mining = Coalesced::new(start);
        let mut writes = vec![start];
        assert!(mining.offer(true, start, INTERVAL).is_some());
        // A steady stream for ten seconds, one update every 10 ms, the held one written when due.
        for ms in (10..10_000).step_by(10) {
            let now = start + ms;
            if mining.due(now, INTERVAL).is_some()
                || mining.offer(ms % 20 == 0, now, INTERVAL).is_some()
            {
                writes.push(now);
            }
        }
        assert!(writes.len() <= 11, "{} writes", writes.len());
        for pair in writes.windows(2) {
            assert!(pair[1] - pair[0] >= INTERVAL, "{pair:?}");
        }
        // The last one (at 9990 ms: false) is still held, to be written at its deadline.
        let deadline = mining.deadline().expect("the last update is held");
        assert_eq!(mining.due(deadline, INTERVAL), Some(false));
    }

    #[test]
    fn an_update_after_its_deadline_replaces_the_held_one_and_goes_out() {
        let start = 0;
        let mut mining = Coalesced::new(start);
        mining.offer("start", start, INTERVAL);
        assert_eq!(mining.offer("stop", start + INTERVAL / 2, INTERVAL), None);
        // The timer has not fired yet when the next update arrives: that one is newest.
        assert_eq!(
            mining.offer("start", start + 2 * INTERVAL, INTERVAL),
            Some("start")
        );
        assert_eq!(mining.deadline(), None);
    }
}
