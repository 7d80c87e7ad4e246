//! The in-memory revocation store: revoked jtis, subjects and families, and spent refresh
//! tokens, for a single instance (and, later, as the Redis store's local mirror).
//!
//! Shared state: `is_revoked` runs on every proxied request on every worker thread, so its
//! read must not contend. A store-wide counter answers "nothing revoked at all" with one
//! atomic load; past it, each map is split into shards by a hash of the key, so readers on
//! different cores rarely touch the same lock (a read lock still writes its lock word).
//!
//! The locks are `std::sync` ones, not tokio's: every critical section is a few hash-map
//! operations and none spans an `.await`, and an async mutex only pays off when a guard must
//! be held across one (tokio-rs/mini-redis `src/db.rs` makes the same choice). The one longer
//! section is `redeem`, which signs a token pair under the spent-token mutex; only the refresh
//! endpoint takes that mutex, and holding it is what lets one of two racing redemptions mint.
//!
//! Poisoning: each critical section leaves its map consistent (one insert, one retain, or a
//! mint that records nothing until it succeeded), so a poisoned lock is recovered, not passed on.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use super::{Pair, Redeem};

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
}

/// A redeemed refresh token.
struct Spent {
    /// Until when a repeat redemption gets the same pair back.
    grace_until: u64,
    /// Until when the record is kept, so a later reuse is still recognised.
    keep_until: u64,
    /// The pair issued; dropped by `purge` once the grace interval is over.
    pair: Option<Pair>,
}

/// Revocations and spent refresh tokens held in this process.
pub struct MemoryStore {
    /// Entries in `jtis`, `subjects` and `families` together: the hot path's fast exit.
    revoked: AtomicUsize,
    /// jti -> expiry.
    jtis: Sharded,
    /// sub -> revoked-before time.
    subjects: Sharded,
    /// fam -> expiry.
    families: Sharded,
    /// Refresh jti -> its redemption; only the refresh endpoint touches it.
    spent: Mutex<HashMap<Box<str>, Spent>>,
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
            spent: Mutex::new(HashMap::new()),
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
    pub fn redeem<E>(
        &self,
        jti: &str,
        fam: &str,
        exp: u64,
        now: u64,
        grace: u64,
        mint: impl FnOnce() -> Result<Pair, E>,
    ) -> Result<Redeem, E> {
        let mut spent = self.spent_lock();
        if self.family_revoked(fam, now) {
            return Ok(Redeem::Reuse);
        }
        if let Some(record) = spent.get(jti) {
            return Ok(match &record.pair {
                Some(pair) if now < record.grace_until => Redeem::Issued(pair.clone()),
                _ => {
                    self.revoke_family(fam, exp);
                    Redeem::Reuse
                }
            });
        }
        // Minted under the lock: a racing redemption of the same jti waits here, then finds
        // the record and gets this pair back instead of minting a second one.
        let pair = mint()?;
        let grace_until = now.saturating_add(grace);
        let record = Spent {
            grace_until,
            keep_until: exp.max(grace_until),
            pair: Some(pair.clone()),
        };
        spent.insert(jti.into(), record);
        Ok(Redeem::Issued(pair))
    }

    fn spent_lock(&self) -> MutexGuard<'_, HashMap<Box<str>, Spent>> {
        self.spent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops expired revocations and spent records, and pairs past their grace interval;
    /// returns how many entries were dropped. Subject cut-offs are kept: they carry no expiry.
    pub fn purge(&self, now: u64) -> usize {
        let revoked = self.jtis.purge(now) + self.families.purge(now);
        self.revoked.fetch_sub(revoked, Ordering::Release);
        let mut spent = self.spent_lock();
        let before = spent.len();
        spent.retain(|_, record| record.keep_until > now);
        for record in spent.values_mut() {
            if record.grace_until <= now {
                // Nobody can get this pair back any more; don't keep live tokens in memory.
                record.pair = None;
            }
        }
        revoked + (before - spent.len())
    }

    /// Entries held: revoked jtis, subjects and families, plus spent refresh records.
    pub fn len(&self) -> usize {
        self.revoked.load(Ordering::Acquire) + self.spent_lock().len()
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
    fn purge_drops_spent_pairs_after_grace_but_keeps_the_record_until_expiry() {
        let store = MemoryStore::new();
        let pair = || {
            Ok::<_, ()>(Pair {
                access_token: "a".into(),
                refresh_token: "r".into(),
            })
        };
        assert!(store.redeem("j", "f", NOW + 100, NOW, 5, pair).is_ok());
        assert_eq!(store.purge(NOW + 5), 0);
        assert!(store.spent_lock()["j"].pair.is_none());
        assert_eq!(store.len(), 1);
        assert_eq!(store.purge(NOW + 100), 1);
        assert!(store.is_empty());
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
