//! A per-thread cache of tokens whose signature and claims have already been verified.
//!
//! Verifying a token costs a signature check plus header and payload parsing on every
//! request; a client sends the same token many times. A hit skips the signature and the
//! parsing but still checks exp, nbf, issuer, audience and type against the current time and
//! expectations, so a cached token is never accepted past its exp. Revocation and policy are
//! the caller's, on every request, as before.
//!
//! - Only tokens that verified are stored, so a flood of forged tokens cannot fill it.
//! - The key is the whole token text: a hit means the same bytes that were verified.
//! - Bounded: at most [`CAPACITY`] entries per thread, tokens of at most [`MAX_CACHED_LEN`]
//!   bytes; when full, expired entries go first, then a quarter of the rest.
//! - Per thread (each tokio worker has its own), so there is no lock at all.
//! - Tied to one key ring: every [`KeyRing`] (a reload builds a new one) has its own
//!   generation, and a thread's cache from another generation is dropped on first use.

use std::cell::RefCell;
use std::collections::HashMap;

use super::keys::KeyRing;
use super::verify::{self, Expectations, TokenError};
use super::{Claims, TokenType};

/// Most entries one thread keeps.
pub const CAPACITY: usize = 2048;

/// Longest token that is cached (longer ones are verified every time): bounds the memory a
/// thread's cache can hold to a few MiB.
pub const MAX_CACHED_LEN: usize = 2048;

struct ThreadCache {
    generation: u64,
    entries: HashMap<Box<str>, Claims>,
}

thread_local! {
    static CACHE: RefCell<ThreadCache> = RefCell::new(ThreadCache {
        generation: 0,
        entries: HashMap::new(),
    });
}

/// [`verify::verify`], answered from this thread's cache when `token` verified before.
pub fn verify(
    ring: &KeyRing,
    expect: &Expectations,
    token: &str,
    typ: TokenType,
    now: u64,
) -> Result<Claims, TokenError> {
    let generation = ring.generation().get();
    let hit = CACHE.with_borrow_mut(|cache| {
        if cache.generation != generation {
            cache.entries.clear();
            cache.generation = generation;
        }
        let claims = cache.entries.get(token)?;
        Some(verify::check_claims(claims, expect, typ, now).map(|()| claims.clone()))
    });
    if let Some(answer) = hit {
        return answer;
    }
    let claims = verify::verify(ring, expect, token, typ, now)?;
    if token.len() <= MAX_CACHED_LEN {
        CACHE.with_borrow_mut(|cache| store(cache, generation, token, &claims, now));
    }
    Ok(claims)
}

fn store(cache: &mut ThreadCache, generation: u64, token: &str, claims: &Claims, now: u64) {
    if cache.generation != generation {
        cache.entries.clear();
        cache.generation = generation;
    }
    if cache.entries.len() >= CAPACITY {
        cache.entries.retain(|_, claims| claims.exp > now);
    }
    if cache.entries.len() >= CAPACITY {
        // Many distinct live tokens: drop a quarter, in the map's (randomly seeded) order.
        let mut seen = 0;
        cache.entries.retain(|_, _| {
            seen += 1;
            seen > CAPACITY / 4
        });
    }
    cache.entries.insert(token.into(), claims.clone());
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
