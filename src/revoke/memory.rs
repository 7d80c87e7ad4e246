//! The in-memory revocation store: revoked jtis, subjects and families, and one refresh
//! rotation record per family, for a single instance (and as the Redis store's local mirror).
//!
//! Shared state: `is_revoked` runs on every proxied request on every worker thread, so its
//! read must not contend. A store-wide counter answers "nothing revoked at all" with one
//! atomic load; past it, each map is split into shards by a hash of the key, so readers on
//! different cores rarely touch the same lock (a read lock still writes its lock word).
//!
//! The locks are `std::sync` ones, not tokio's: every critical section is a few hash-map
//! operations and none spans an `.await`, and an async mutex only pays off when a guard must
//! be held across one (tokio-rs/mini-redis `src/db.rs` makes the same choice). The rotation
//! records sit behind one mutex that only the refresh endpoint takes; no token is signed under
//! it (the record fixes the successor's ids, and the caller signs after).
//!
//! Poisoning: each critical section leaves its map consistent (one insert, one retain, or
//! one record updated), so a poisoned lock is recovered, not passed on.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use super::rotation::{Families, Redemption, Rotation};

/// Shards per map; a power of two so the hash is masked, not divided.
const SHARDS: usize = 16;

/// Key -> time (an expiry, or a subject's revoked-before time).
type Times = HashMap<Box<str>, u64>;

/// A map from key to time, split into independently locked shards.
struct Sharded {
    /// Entries across all shards, so an empty map is skipped without a lock.
    len: AtomicUsize,
    shards: [RwLock<Times>; SHARDS],
}

impl Sharded {
    fn new() -> Self {
        Sharded {
            len: AtomicUsize::new(0),
            shards: std::array::from_fn(|_| RwLock::new(HashMap::new())),
        }
    }

    fn shard(&self, key: &str) -> &RwLock<Times> {
        // FNV-1a: cheap, and only picks a shard; each shard's HashMap keeps its SipHash
        // (randomly keyed), so a crafted key set still cannot degrade the lookups.
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        // The mask keeps the value below SHARDS, so the cast and the index cannot fail.
        &self.shards[(hash as usize) & (SHARDS - 1)]
    }

    fn get(&self, key: &str) -> Option<u64> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let shard = self
            .shard(key)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard.get(key).copied()
    }

    /// Sets `key` to at least `time` (a later revocation never shortens an earlier one);
    /// returns true when the key is new.
    fn raise(&self, key: &str, time: u64) -> bool {
        let mut shard = self
            .shard(key)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = shard.get_mut(key) {
            *old = (*old).max(time);
            return false;
        }
        shard.insert(key.into(), time);
        self.len.fetch_add(1, Ordering::Release);
        true
    }

    /// Drops entries whose time is at or before `now`; returns how many.
    fn purge(&self, now: u64) -> usize {
        let mut dropped = 0;
        for lock in &self.shards {
            let mut shard = lock.write().unwrap_or_else(PoisonError::into_inner);
            let before = shard.len();
            shard.retain(|_, until| *until > now);
            dropped += before - shard.len();
        }
        self.len.fetch_sub(dropped, Ordering::Release);
        dropped
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Every entry whose time is past `after`, copied out one shard at a time.
    fn entries(&self, after: u64) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for lock in &self.shards {
            let shard = lock.read().unwrap_or_else(PoisonError::into_inner);
            out.extend(
                shard
                    .iter()
                    .filter(|(_, time)| **time > after)
                    .map(|(key, time)| (key.to_string(), *time)),
            );
        }
        out
    }
}

/// A store's revocations in force, as `(id, time)`: for the Redis store to put back what
/// Redis lost.
#[derive(Debug, Default)]
pub struct Entries {
    /// Revoked jtis, with when each revocation ends.
    pub jtis: Vec<(String, u64)>,
    /// Revoked families, with until when.
    pub families: Vec<(String, u64)>,
    /// Subject cut-offs (they carry no expiry).
    pub subjects: Vec<(String, u64)>,
}

/// Revocations and refresh rotation records held in this process.
pub struct MemoryStore {
    /// Entries in `jtis`, `subjects` and `families` together: the hot path's fast exit.
    revoked: AtomicUsize,
    /// jti -> expiry.
    jtis: Sharded,
    /// sub -> revoked-before time.
    subjects: Sharded,
    /// fam -> expiry.
    families: Sharded,
    /// fam -> its rotation record; only the refresh endpoint touches it.
    rotations: Mutex<Families>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("jtis", &self.jtis.len())
            .field("subjects", &self.subjects.len())
            .field("families", &self.families.len())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore {
            revoked: AtomicUsize::new(0),
            jtis: Sharded::new(),
            subjects: Sharded::new(),
            families: Sharded::new(),
            rotations: Mutex::new(Families::default()),
        }
    }

    /// True when the jti, the subject (for tokens issued before its cut-off) or the family is
    /// revoked; an entry counts until its expiry, whether or not `purge` has run.
    pub fn is_revoked(&self, jti: &str, sub: &str, iat: u64, fam: Option<&str>, now: u64) -> bool {
        if self.revoked.load(Ordering::Acquire) == 0 {
            return false;
        }
        self.jtis.get(jti).is_some_and(|exp| now < exp)
            || self.subjects.get(sub).is_some_and(|before| iat < before)
            || fam.is_some_and(|fam| self.family_revoked(fam, now))
    }

    /// True when `fam` is revoked at `now`.
    pub fn family_revoked(&self, fam: &str, now: u64) -> bool {
        self.families.get(fam).is_some_and(|until| now < until)
    }

    /// Revokes one token until `exp`.
    pub fn revoke_jti(&self, jti: &str, exp: u64) {
        self.count(self.jtis.raise(jti, exp));
    }

    /// Revokes every token of `sub` issued before `before`.
    pub fn revoke_subject(&self, sub: &str, before: u64) {
        self.count(self.subjects.raise(sub, before));
    }

    /// Revokes every token carrying `fam` until `until`.
    pub fn revoke_family(&self, fam: &str, until: u64) {
        self.count(self.families.raise(fam, until));
    }

    fn count(&self, added: bool) {
        // Raised after the map insert, so a reader that sees the count also sees the entry.
        if added {
            self.revoked.fetch_add(1, Ordering::Release);
        }
    }

    /// Redeems a refresh token; see `RevocationStore::redeem` for the rules.
    pub fn redeem(&self, r: &Redemption<'_>) -> Rotation {
        let mut rotations = self.rotations_lock();
        if self.family_revoked(r.fam, r.now) {
            return Rotation::Reuse;
        }
        let rotation = rotations.redeem(r);
        if rotation == Rotation::Reuse {
            self.revoke_family(r.fam, r.until);
        }
        rotation
    }

    fn rotations_lock(&self) -> MutexGuard<'_, Families> {
        self.rotations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Every revocation still in force at `now`.
    pub fn entries(&self, now: u64) -> Entries {
        Entries {
            jtis: self.jtis.entries(now),
            families: self.families.entries(now),
            subjects: self.subjects.entries(0),
        }
    }

    /// Drops expired revocations and the records of families with no live token left;
    /// returns how many entries were dropped. Subject cut-offs are kept: they carry no expiry.
    pub fn purge(&self, now: u64) -> usize {
        let revoked = self.jtis.purge(now) + self.families.purge(now);
        self.revoked.fetch_sub(revoked, Ordering::Release);
        revoked + self.rotations_lock().purge(now)
    }

    /// Entries held: revoked jtis, subjects and families, plus rotation records.
    pub fn len(&self) -> usize {
        self.revoked.load(Ordering::Acquire) + self.rotations_lock().len()
    }

    /// True when the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn empty_store_answers_from_the_counter_alone() {
        let store = MemoryStore::new();
        assert!(!store.is_revoked("j", "alice", NOW, Some("f"), NOW));
        assert_eq!(store.revoked.load(Ordering::Acquire), 0);
        assert!(store.is_empty());
    }

    #[test]
    fn jtis_spread_over_several_shards() {
        let map = Sharded::new();
        for i in 0..64 {
            map.raise(&uuid::Uuid::new_v4().to_string(), NOW + i);
        }
        let used = map.shards.iter().filter(|s| !s.read().unwrap().is_empty());
        assert!(used.count() > SHARDS / 2);
        assert_eq!(map.len(), 64);
    }

    #[test]
    fn a_later_revocation_never_shortens_an_earlier_one() {
        let store = MemoryStore::new();
        store.revoke_jti("j", NOW + 100);
        store.revoke_jti("j", NOW + 10);
        assert!(store.is_revoked("j", "alice", NOW, None, NOW + 50));
        store.revoke_subject("alice", NOW);
        store.revoke_subject("alice", NOW - 100);
        assert!(store.is_revoked("k", "alice", NOW - 1, None, NOW));
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn revoked_entries_stop_counting_at_their_expiry_even_before_purge() {
        let store = MemoryStore::new();
        store.revoke_jti("j", NOW + 10);
        store.revoke_family("f", NOW + 10);
        assert!(store.is_revoked("j", "alice", NOW, None, NOW + 9));
        assert!(!store.is_revoked("j", "alice", NOW, None, NOW + 10));
        assert!(!store.is_revoked("x", "alice", NOW, Some("f"), NOW + 10));
    }

    #[test]
    fn debug_shows_counts_only() {
        let store = MemoryStore::new();
        store.revoke_jti("secret-jti", NOW);
        let text = format!("{store:?}");
        assert!(!text.contains("secret-jti"), "{text}");
        assert!(text.contains("jtis: 1"), "{text}");
    }
}
