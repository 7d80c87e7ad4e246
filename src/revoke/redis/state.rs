//! Whether the mirror may answer on its own: in sync, or out of sync for less than the
//! configured staleness.
//!
//! The subscriber task marks the mirror in sync once it has subscribed and reloaded, and out
//! of sync the moment the subscription is lost; the request path reads two atomics. While out
//! of sync for less than `max_staleness` the mirror still decides: it misses only what other
//! instances revoked since, and no revocation can be acknowledged anywhere while no master
//! is reachable, so in a failover it misses at most what was in flight when the master died.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::revoke::memory::MemoryStore;

/// `left_sync_ms` of a mirror that was never in sync: stale without bound.
const NEVER_SYNCED: u64 = u64::MAX;

/// What the store and its subscriber task share.
pub(super) struct Shared {
    pub(super) mirror: MemoryStore,
    /// The data-loss marker as last seen.
    pub(super) seen: super::epoch::Seen,
    /// True while the subscription is up and the mirror was reloaded after it came up.
    in_sync: AtomicBool,
    /// When the mirror last left sync, in ms since `epoch` (meaningless while in sync;
    /// `NEVER_SYNCED` before the first sync).
    left_sync_ms: AtomicU64,
    epoch: Instant,
    /// Raised when a command to Redis failed: the subscriber pings at once.
    suspect: tokio::sync::Notify,
}

impl Shared {
    /// An empty mirror, not yet in sync.
    pub(super) fn new() -> Shared {
        Shared {
            mirror: MemoryStore::new(),
            seen: super::epoch::Seen::default(),
            in_sync: AtomicBool::new(false),
            left_sync_ms: AtomicU64::new(NEVER_SYNCED),
            epoch: Instant::now(),
            suspect: tokio::sync::Notify::new(),
        }
    }

    /// A command to Redis failed (no answer in time, connection lost): the subscription
    /// may be gone silent too, so the subscriber checks it now rather than at its next ping.
    pub(super) fn suspect(&self) {
        self.suspect.notify_one();
    }

    /// Resolves once a command failed since the last call (`suspect`).
    pub(super) async fn suspected(&self) {
        self.suspect.notified().await;
    }

    pub(super) fn mark_in_sync(&self) {
        self.in_sync.store(true, Ordering::Release);
    }

    pub(super) fn mark_out_of_sync(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        // The time first, so a reader that sees "out of sync" sees when it happened.
        self.left_sync_ms.store(now, Ordering::Release);
        self.in_sync.store(false, Ordering::Release);
    }

    pub(super) fn in_sync(&self) -> bool {
        self.in_sync.load(Ordering::Acquire)
    }

    /// How long the mirror has been out of sync; zero while in sync.
    pub(super) fn stale_for(&self) -> Duration {
        if self.in_sync() {
            return Duration::ZERO;
        }
        match self.left_sync_ms.load(Ordering::Acquire) {
            NEVER_SYNCED => Duration::MAX,
            left => self
                .epoch
                .elapsed()
                .saturating_sub(Duration::from_millis(left)),
        }
    }

    /// In sync, or out of sync for less than `max_staleness`.
    pub(super) fn usable(&self, max_staleness: Duration) -> bool {
        self.in_sync() || self.stale_for() < max_staleness
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_answers_alone_until_it_has_been_out_of_sync_for_the_bound() {
        let shared = Shared::new();
        assert!(!shared.usable(Duration::from_secs(10)), "never synced");
        shared.mark_in_sync();
        assert!(shared.usable(Duration::ZERO));
        assert_eq!(shared.stale_for(), Duration::ZERO);
        shared.mark_out_of_sync();
        assert!(shared.usable(Duration::from_secs(3600)));
        assert!(
            !shared.usable(Duration::ZERO),
            "a zero bound: out of sync means unusable"
        );
        shared.mark_in_sync();
        assert!(shared.usable(Duration::ZERO));
    }
}
