//! One deadline per request. Every storage attempt, the dead-letter queue and the answer happen
//! inside it, in that order, each phase leaving room for the next: storage retries stop early
//! enough for the dead-letter queue to be tried, and the queue early enough for the answer to be
//! recorded. Retries happen inside the deadline, never beyond it.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// The default: half of the ingest function's default 10 s timeout.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);

/// The phases of a request, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Claiming the idempotency key and writing the raw object (with retries).
    Storage,
    /// Handing the batch to the dead-letter queue.
    DeadLetter,
    /// Recording the answer for later retries.
    Answer,
}

#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    started: Instant,
    total: Duration,
}

/// The phase ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request deadline ({0:?}) was reached")]
pub struct Expired(pub Duration);

impl Deadline {
    pub fn starting_now(total: Duration) -> Self {
        Self {
            started: Instant::now(),
            total,
        }
    }

    pub fn total(&self) -> Duration {
        self.total
    }

    /// When `phase` must be over: storage ends with a quarter of the deadline left (at most 1.5
    /// s), the dead-letter queue with a tenth left (at most 0.5 s), the answer at the deadline.
    pub fn end_of(&self, phase: Phase) -> Instant {
        let reserve = match phase {
            Phase::Storage => (self.total / 4).min(Duration::from_millis(1500)),
            Phase::DeadLetter => (self.total / 10).min(Duration::from_millis(500)),
            Phase::Answer => Duration::ZERO,
        };
        self.started + self.total - reserve
    }

    /// Time left in `phase`.
    pub fn left_in(&self, phase: Phase) -> Duration {
        self.end_of(phase).saturating_duration_since(Instant::now())
    }

    /// Runs `fut` until the end of `phase`; a future still running then is dropped.
    pub async fn run<T>(&self, phase: Phase, fut: impl Future<Output = T>) -> Result<T, Expired> {
        tokio::time::timeout_at(self.end_of(phase), fut)
            .await
            .map_err(|_| Expired(self.total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_leave_room_for_the_next() {
        let d = Deadline::starting_now(Duration::from_secs(5));
        assert!(d.end_of(Phase::Storage) < d.end_of(Phase::DeadLetter));
        assert!(d.end_of(Phase::DeadLetter) < d.end_of(Phase::Answer));
        assert_eq!(
            d.end_of(Phase::Answer) - d.end_of(Phase::Storage),
            Duration::from_millis(1250)
        );
        let long = Deadline::starting_now(Duration::from_secs(60));
        assert_eq!(
            long.end_of(Phase::Answer) - long.end_of(Phase::Storage),
            Duration::from_millis(1500)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_future_is_cut_at_its_phase_end() {
        let d = Deadline::starting_now(Duration::from_secs(4));
        let r = d
            .run(Phase::Storage, tokio::time::sleep(Duration::from_secs(10)))
            .await;
        assert_eq!(r, Err(Expired(Duration::from_secs(4))));
        assert!(d.left_in(Phase::Storage).is_zero());
        assert_eq!(d.left_in(Phase::Answer), Duration::from_secs(1));
    }
}
