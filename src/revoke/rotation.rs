//! Refresh rotation: one record per token family, whatever the number of rotations.
//!
//! A family's record names its *current* refresh token (the only one that may rotate), the
//! *previous* one (spent by the last rotation) and the ids and issue time of the pair that
//! rotation hands out (its *successor*). Presenting the current token rotates: the
//! successor is chosen here, before any token is signed, so that everyone who redeems the
//! previous token within the grace interval (a second tab, another instance, or the same
//! client retrying after a 503) mints the very same pair. Presenting any other token of the
//! family is reuse. A family with no record has never rotated: its first token may.
//!
//! The record lives as long as a token of the family can (`Redemption::until`), so its
//! count is bounded by the number of live families, not by how often they rotate; a
//! fixed-window counter in the same record caps rotations per family (429).
//!
//! This file holds the shared types and the memory store's table; the Redis store keeps
//! the same record as a hash (see `redis/redeem.rs`).

use std::collections::HashMap;

/// What a rotation hands out, fixed when the current token is first redeemed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Successor {
    /// `jti` of the new access token.
    pub access_jti: String,
    /// `jti` of the new refresh token: the family's next current token.
    pub refresh_jti: String,
    /// `iat` (and `nbf`) of both; their `exp` follows from it.
    pub iat: u64,
}

impl Successor {
    /// Fresh random ids issued at `now` (login, and each new rotation).
    pub fn new(now: u64) -> Successor {
        Successor {
            access_jti: crate::token::mint::new_id(),
            refresh_jti: crate::token::mint::new_id(),
            iat: now,
        }
    }
}

/// Rotations allowed per family: `max` within each `window` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshLimit {
    /// Rotations per window (grace replays do not count).
    pub max: u32,
    /// Window length, seconds.
    pub window: u64,
}

/// One redemption of a refresh token.
#[derive(Debug, Clone, Copy)]
pub struct Redemption<'a> {
    /// The presented token's `jti`.
    pub jti: &'a str,
    /// Its `iat`: a token issued before a known loss of the store's records cannot be
    /// told from a replay once its family's record is gone (see `Rotation::Lost`).
    pub issued: u64,
    /// Its `fam`.
    pub fam: &'a str,
    /// Until when the record, and a family revocation reuse triggers, last: the latest
    /// expiry (plus leeway) any token of the family can have, now + refresh TTL + leeway.
    pub until: u64,
    /// The caller's clock, unix seconds.
    pub now: u64,
    /// The same clock in milliseconds: the grace interval counts in them, as whole seconds
    /// would shorten it by up to one (a 1 s grace to nothing for a race across a second).
    pub now_ms: u64,
    /// Milliseconds during which the previous token still gets the successor.
    pub grace_ms: u64,
    /// The per-family rotation limit.
    pub limit: RefreshLimit,
}

/// Outcome of redeeming a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// Mint this pair: a new rotation, or the one already made within the grace interval.
    Mint(Successor),
    /// The token was spent before (or its family revoked): the family is now revoked.
    Reuse,
    /// The family rotated too often; retry after this many seconds. Nothing was recorded.
    Throttled(u64),
    /// The family's record is gone with a Redis data loss and the token predates the loss:
    /// it may be a spent one, so it is refused (the user signs in again). Nothing recorded.
    Lost,
}

/// One family's rotation state.
#[derive(Debug)]
struct Family {
    current: Box<str>,
    previous: Box<str>,
    next: Successor,
    /// Unix milliseconds.
    grace_until_ms: u64,
    keep_until: u64,
    window_start: u64,
    rotations: u32,
}

/// The memory store's records, one per family that has rotated. Not synchronized: the
/// memory store keeps it under a mutex.
#[derive(Debug, Default)]
pub struct Families {
    map: HashMap<Box<str>, Family>,
}

impl Families {
    /// Applies the rotation rules to `r`. `Reuse` leaves the family revocation to the
    /// caller, which owns the revocation set.
    pub fn redeem(&mut self, r: &Redemption<'_>) -> Rotation {
        let Some(family) = self.map.get_mut(r.fam) else {
            let next = Successor::new(r.now);
            self.map
                .insert(r.fam.into(), Family::first(r, next.clone()));
            return Rotation::Mint(next);
        };
        if *family.current == *r.jti {
            return family.rotate(r);
        }
        if *family.previous == *r.jti && r.now_ms < family.grace_until_ms {
            return Rotation::Mint(family.next.clone());
        }
        Rotation::Reuse
    }

    /// Drops the records of families whose every token has expired; returns how many.
    pub fn purge(&mut self, now: u64) -> usize {
        let before = self.map.len();
        self.map.retain(|_, family| family.keep_until > now);
        before - self.map.len()
    }

    /// Records held: one per family that has rotated and may still hold a live token.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no family has a record.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Family {
    fn first(r: &Redemption<'_>, next: Successor) -> Family {
        Family {
            current: next.refresh_jti.as_str().into(),
            previous: r.jti.into(),
            next,
            grace_until_ms: r.now_ms.saturating_add(r.grace_ms),
            keep_until: r.until,
            window_start: r.now,
            rotations: 1,
        }
    }

    fn rotate(&mut self, r: &Redemption<'_>) -> Rotation {
        if r.now >= self.window_start.saturating_add(r.limit.window) {
            (self.window_start, self.rotations) = (r.now, 0);
        }
        if self.rotations >= r.limit.max {
            let reopens = self.window_start.saturating_add(r.limit.window);
            return Rotation::Throttled(reopens.saturating_sub(r.now).max(1));
        }
        let next = Successor::new(r.now);
        self.previous = std::mem::replace(&mut self.current, next.refresh_jti.as_str().into());
        self.next = next.clone();
        self.grace_until_ms = r.now_ms.saturating_add(r.grace_ms);
        self.keep_until = self.keep_until.max(r.until);
        self.rotations += 1;
        Rotation::Mint(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;
    const LIMIT: RefreshLimit = RefreshLimit { max: 3, window: 60 };

    fn redemption(jti: &str, now: u64) -> Redemption<'_> {
        at_ms(jti, now * 1000)
    }

    fn at_ms(jti: &str, now_ms: u64) -> Redemption<'_> {
        let now = now_ms / 1000;
        Redemption {
            jti,
            issued: now,
            fam: "fam1",
            until: now + 1000,
            now,
            now_ms,
            grace_ms: 10_000,
            limit: LIMIT,
        }
    }

    fn minted(rotation: Rotation) -> Successor {
        match rotation {
            Rotation::Mint(next) => next,
            other => panic!("expected a mint, got {other:?}"),
        }
    }

    #[test]
    fn the_current_token_rotates_and_the_previous_one_gets_the_same_successor_within_grace() {
        let mut families = Families::default();
        let next = minted(families.redeem(&redemption("login", NOW)));
        let again = families.redeem(&redemption("login", NOW + 9));
        assert_eq!(again, Rotation::Mint(next.clone()));
        assert_eq!(
            families.redeem(&redemption("login", NOW + 10)),
            Rotation::Reuse
        );
        let third = minted(families.redeem(&redemption(&next.refresh_jti, NOW + 10)));
        assert_ne!(third, next);
        // Older than the previous token: reuse at once, grace or not.
        assert_eq!(
            families.redeem(&redemption("login", NOW + 11)),
            Rotation::Reuse
        );
    }

    #[test]
    fn a_one_second_grace_lasts_a_second_across_a_second_boundary() {
        let mut families = Families::default();
        let one_second = |jti, now_ms| Redemption {
            grace_ms: 1000,
            ..at_ms(jti, now_ms)
        };
        let spent = NOW * 1000 + 990;
        let next = minted(families.redeem(&one_second("login", spent)));
        // 20 ms later, in the next second: the other tab still gets the same pair.
        let again = families.redeem(&one_second("login", spent + 20));
        assert_eq!(again, Rotation::Mint(next.clone()));
        let last = families.redeem(&one_second("login", spent + 999));
        assert_eq!(last, Rotation::Mint(next));
        let late = families.redeem(&one_second("login", spent + 1000));
        assert_eq!(late, Rotation::Reuse);
    }

    #[test]
    fn a_family_keeps_one_record_however_often_it_rotates() {
        let mut families = Families::default();
        let mut jti = "login".to_string();
        for i in 0..10_000 {
            // One rotation a minute: always under the limit.
            jti = minted(families.redeem(&redemption(&jti, NOW + i * 60))).refresh_jti;
        }
        assert_eq!(families.len(), 1);
        assert_eq!(families.purge(NOW + 10_000 * 60 + 1000), 1);
        assert!(families.is_empty());
    }

    #[test]
    fn rotations_beyond_the_limit_are_throttled_until_the_window_reopens() {
        let mut families = Families::default();
        let mut jti = "login".to_string();
        for i in 0..3 {
            jti = minted(families.redeem(&redemption(&jti, NOW + i))).refresh_jti;
        }
        assert_eq!(
            families.redeem(&redemption(&jti, NOW + 3)),
            Rotation::Throttled(57)
        );
        // Throttling spent nothing: the same token rotates once the window reopens.
        minted(families.redeem(&redemption(&jti, NOW + 60)));
    }
}
