//! A per-thread cache of tokens whose signature and claims have already been verified.
//!
//! Verifying a token costs a signature check plus header and payload parsing on every
//! request; a client sends the same token many times. A hit skips the signature and the
//! parsing but still checks exp, nbf, issuer, audience and type against the current time and
//! expectations, so a cached token is never accepted past its exp. Revocation and policy are
//! the caller's, on every request, as before.
//!
//! - Only tokens that verified are stored, so a flood of forged tokens cannot fill it.
//! - An entry keeps the whole token text and a hit compares it: a hit means the same bytes
//!   that were verified. The map's key is only a slot: a hash of the token's last
//!   [`SLOT_BYTES`] bytes (its signature, for every algorithm), under keys made at random for
//!   each thread, computed once per request for both the lookup and the insert. Tokens that
//!   share a slot (a forged token with a cached token's signature, or a hash collision)
//!   never share an entry: the other token is a miss, and verified in full.
//! - The claims are shared (`Arc`), not copied, between the cache and the requests.
//! - Bounded: at most [`CAPACITY`] entries per thread, tokens of at most [`MAX_CACHED_LEN`]
//!   bytes; when full, expired entries go first, then a quarter of the rest.
//! - Per thread (each tokio worker has its own), so there is no lock at all.
//! - Tied to one key ring: every [`KeyRing`] (a reload builds a new one) has its own
//!   generation, and a thread's cache from another generation is dropped on first use.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Arc;

use super::keys::KeyRing;
use super::verify::{self, Expectations, TokenError};
use super::{Claims, TokenType};

/// Most entries one thread keeps.
pub const CAPACITY: usize = 2048;

/// Longest token that is cached (longer ones are verified every time): bounds the memory a
/// thread's cache can hold to a few MiB.
pub const MAX_CACHED_LEN: usize = 2048;

/// How many bytes at the end of a token choose its slot: within the signature of every
/// algorithm (the shortest, HS256's, is 43 characters), which no two tokens that verified
/// share; hashing the whole token cost ~1,800 instructions a pass.
pub const SLOT_BYTES: usize = 32;

struct ThreadCache {
    generation: u64,
    /// This thread's random hash keys for slots.
    keys: RandomState,
    entries: HashMap<u64, Entry, BuildHasherDefault<SlotHasher>>,
}

/// A verified token and its claims.
struct Entry {
    token: Box<str>,
    claims: Arc<Claims>,
}

thread_local! {
    static CACHE: RefCell<ThreadCache> = RefCell::new(ThreadCache {
        generation: 0,
        keys: RandomState::new(),
        entries: HashMap::default(),
    });
}

/// [`verify::verify`], answered from this thread's cache when `token` verified before.
pub fn verify(
    ring: &KeyRing,
    expect: &Expectations,
    token: &str,
    typ: TokenType,
    now: u64,
) -> Result<Arc<Claims>, TokenError> {
    let generation = ring.generation().get();
    let (slot, hit) = CACHE.with_borrow_mut(|cache| {
        cache.renew(generation);
        let slot = cache.slot(token);
        let hit = cache.lookup(slot, token);
        (slot, hit.map(|claims| hit_answer(claims, expect, typ, now)))
    });
    if let Some(answer) = hit {
        return answer;
    }
    let claims = Arc::new(verify::verify(ring, expect, token, typ, now)?);
    if token.len() <= MAX_CACHED_LEN {
        CACHE.with_borrow_mut(|cache| {
            cache.renew(generation);
            cache.store(slot, token, Arc::clone(&claims), now);
        });
    }
    Ok(claims)
}

/// A cached token's claims, held to the current time and expectations.
fn hit_answer(
    claims: &Arc<Claims>,
    expect: &Expectations,
    typ: TokenType,
    now: u64,
) -> Result<Arc<Claims>, TokenError> {
    verify::check_claims(claims, expect, typ, now).map(|()| Arc::clone(claims))
}

impl ThreadCache {
    /// Drops every entry if they belong to another key ring.
    fn renew(&mut self, generation: u64) {
        if self.generation != generation {
            self.entries.clear();
            self.generation = generation;
        }
    }

    /// The slot `token` is looked up and stored under.
    fn slot(&self, token: &str) -> u64 {
        let tail = &token.as_bytes()[token.len().saturating_sub(SLOT_BYTES)..];
        self.keys.hash_one(tail)
    }

    /// The claims cached for exactly `token` in `slot`; another token there is a miss.
    fn lookup(&self, slot: u64, token: &str) -> Option<&Arc<Claims>> {
        let entry = self.entries.get(&slot)?;
        (*entry.token == *token).then_some(&entry.claims)
    }

    /// Caches `token` in `slot`, in place of whatever token was there.
    fn store(&mut self, slot: u64, token: &str, claims: Arc<Claims>, now: u64) {
        if self.entries.len() >= CAPACITY && !self.entries.contains_key(&slot) {
            self.entries.retain(|_, entry| entry.claims.exp > now);
        }
        if self.entries.len() >= CAPACITY && !self.entries.contains_key(&slot) {
            // Many distinct live tokens: drop a quarter, in the map's (randomly keyed) order.
            let mut seen = 0;
            self.entries.retain(|_, _| {
                seen += 1;
                seen > CAPACITY / 4
            });
        }
        let token = token.into();
        self.entries.insert(slot, Entry { token, claims });
    }
}

/// The map's hasher: a slot is already a keyed hash, so it is used as it is.
#[derive(Default)]
struct SlotHasher(u64);

impl Hasher for SlotHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, slot: u64) {
        self.0 = slot;
    }

    // Only u64 keys reach this map; folded in anyway rather than left to panic.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
}

/// Entries in this thread's cache for `ring`.
#[cfg(test)]
fn cached(ring: &KeyRing) -> usize {
    CACHE.with_borrow(|cache| match cache.generation == ring.generation().get() {
        true => cache.entries.len(),
        false => 0,
    })
}

#[cfg(test)]
mod tests;
