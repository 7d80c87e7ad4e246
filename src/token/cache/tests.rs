use std::sync::Arc;

use super::*;
use crate::token::keys::{KeyMaterial, KeySpec};
use crate::token::mint::mint;
use crate::token::test_support::{expect, grant, ring_for, ISSUER};
use crate::token::Alg;

const NOW: u64 = 1_700_000_000;

fn access(ring: &KeyRing, now: u64) -> String {
    mint(ring, ISSUER, "api", grant(TokenType::Access), now)
        .unwrap()
        .0
}

fn check(ring: &KeyRing, token: &str, now: u64) -> Result<Arc<Claims>, TokenError> {
    verify(ring, &expect(), token, TokenType::Access, now)
}

#[test]
fn a_hit_answers_like_a_full_verification() {
    let ring = ring_for(Alg::EdDSA);
    let token = access(&ring, NOW);
    let first = check(&ring, &token, NOW).unwrap();
    assert_eq!(cached(&ring), 1);
    let second = check(&ring, &token, NOW + 1).unwrap();
    assert_eq!(cached(&ring), 1);
    let uncached = verify::verify(&ring, &expect(), &token, TokenType::Access, NOW).unwrap();
    for claims in [&first, &second] {
        assert_eq!(
            (&claims.sub, &claims.jti, &claims.roles, claims.exp),
            (&uncached.sub, &uncached.jti, &uncached.roles, uncached.exp)
        );
    }
}

#[test]
fn a_cached_token_is_refused_past_exp() {
    let ring = ring_for(Alg::HS256);
    let token = access(&ring, NOW);
    check(&ring, &token, NOW).unwrap();
    let leeway = expect().leeway_secs;
    // grant() lives 900 s; exp + leeway is the first refused second.
    assert!(check(&ring, &token, NOW + 900 + leeway - 1).is_ok());
    assert_eq!(
        check(&ring, &token, NOW + 900 + leeway).unwrap_err(),
        TokenError::Expired
    );
    assert_eq!(cached(&ring), 1, "the refusal came from the cached entry");
}

#[test]
fn a_cached_token_is_held_to_the_current_expectations_and_type() {
    let ring = ring_for(Alg::HS256);
    let token = access(&ring, NOW);
    check(&ring, &token, NOW).unwrap();
    let mut other = expect();
    other.audience = "billing".into();
    let wrong_aud = verify(&ring, &other, &token, TokenType::Access, NOW);
    assert_eq!(wrong_aud.unwrap_err(), TokenError::WrongAudience);
    let mut other = expect();
    other.issuer = "https://elsewhere.test".into();
    let wrong_iss = verify(&ring, &other, &token, TokenType::Access, NOW);
    assert_eq!(wrong_iss.unwrap_err(), TokenError::WrongIssuer);
    let as_refresh = verify(&ring, &expect(), &token, TokenType::Refresh, NOW);
    assert_eq!(as_refresh.unwrap_err(), TokenError::WrongType);
    // Not yet valid: the cached entry is checked against the time given, not when it was cached.
    assert_eq!(
        check(&ring, &token, NOW - 3600).unwrap_err(),
        TokenError::NotYetValid
    );
}

#[test]
fn refused_tokens_are_never_cached() {
    let ring = ring_for(Alg::HS256);
    let token = access(&ring, NOW);
    let (rest, sig) = token.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { 'B' } else { 'A' };
    let forged = format!("{rest}.{flipped}{}", &sig[1..]);
    for _ in 0..3 {
        assert_eq!(
            check(&ring, &forged, NOW).unwrap_err(),
            TokenError::BadSignature
        );
    }
    assert_eq!(
        check(&ring, "not.a.token", NOW).unwrap_err(),
        TokenError::Malformed
    );
    assert_eq!(cached(&ring), 0);
    // An expired but well-signed token is not cached either.
    assert_eq!(
        check(&ring, &token, NOW + 86_400).unwrap_err(),
        TokenError::Expired
    );
    assert_eq!(cached(&ring), 0);
}

#[test]
fn a_new_ring_starts_empty_and_does_not_honour_the_old_rings_tokens() {
    let old = ring_for(Alg::HS256);
    let token = access(&old, NOW);
    check(&old, &token, NOW).unwrap();
    assert_eq!(cached(&old), 1);
    // A reload that drops the key: same kid, another secret.
    let spec = KeySpec {
        kid: "hs256".into(),
        alg: Alg::HS256,
        material: KeyMaterial::Secret(vec![7; 64]),
        verify_only: false,
    };
    let new = KeyRing::new(vec![spec], "hs256").unwrap();
    assert_ne!(new.generation(), old.generation());
    assert_eq!(
        check(&new, &token, NOW).unwrap_err(),
        TokenError::BadSignature
    );
    assert_eq!(cached(&new), 0);
    assert_eq!(cached(&old), 0, "the old ring's entries were dropped");
}

#[test]
fn clones_of_a_ring_share_its_cache() {
    let ring = ring_for(Alg::HS256);
    let token = access(&ring, NOW);
    check(&ring, &token, NOW).unwrap();
    let clone = ring.clone();
    assert_eq!(clone.generation(), ring.generation());
    assert_eq!(cached(&clone), 1);
}

#[test]
fn the_cache_stays_bounded_under_many_distinct_tokens() {
    let ring = ring_for(Alg::HS256);
    for i in 0..(CAPACITY + CAPACITY / 2) {
        let token = access(&ring, NOW + i as u64 % 60);
        check(&ring, &token, NOW + 60).unwrap();
        assert!(cached(&ring) <= CAPACITY);
    }
    assert!(cached(&ring) >= CAPACITY / 2, "eviction keeps most entries");
}

#[test]
fn expired_entries_are_evicted_first() {
    let ring = ring_for(Alg::HS256);
    let early = access(&ring, NOW);
    check(&ring, &early, NOW).unwrap();
    // Fill the rest with tokens minted later, then overflow once the early one has expired.
    for i in 1..CAPACITY {
        check(&ring, &access(&ring, NOW + 600 + i as u64 % 10), NOW + 600).unwrap();
    }
    assert_eq!(cached(&ring), CAPACITY);
    let late = NOW + 900 + 1;
    check(&ring, &access(&ring, late), late).unwrap();
    // Only the early token (exp = NOW + 900) had expired: one out, one in.
    assert_eq!(cached(&ring), CAPACITY);
}

#[test]
fn long_tokens_are_verified_every_time() {
    let ring = ring_for(Alg::HS256);
    let mut g = grant(TokenType::Access);
    g.extra
        .insert("pad".into(), "x".repeat(MAX_CACHED_LEN).into());
    let (token, _) = mint(&ring, ISSUER, "api", g, NOW).unwrap();
    assert!(token.len() > MAX_CACHED_LEN);
    check(&ring, &token, NOW).unwrap();
    assert_eq!(cached(&ring), 0);
}

#[test]
fn a_token_in_a_cached_tokens_slot_is_verified_in_full() {
    let ring = ring_for(Alg::HS256);
    let token = access(&ring, NOW);
    check(&ring, &token, NOW).unwrap();
    // Another payload under the cached token's signature: the same last bytes, so the same
    // slot; the entry is not its own, so it is verified, and the MAC refuses it.
    let (header, rest) = token.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let other = access(&ring, NOW + 1);
    let (_, other_rest) = other.split_once('.').unwrap();
    let (other_payload, _) = other_rest.split_once('.').unwrap();
    let forged = format!("{header}.{other_payload}.{sig}");
    let slot = |t: &str| CACHE.with_borrow(|cache| cache.slot(t));
    assert_eq!(slot(&forged), slot(&token));
    for _ in 0..2 {
        assert_eq!(
            check(&ring, &forged, NOW).unwrap_err(),
            TokenError::BadSignature
        );
    }
    // The cached token still hits, with its own claims.
    assert_eq!(check(&ring, &token, NOW).unwrap().iat, NOW);
    assert_eq!(cached(&ring), 1);
}

#[test]
fn two_tokens_in_one_slot_never_share_claims() {
    let ring = ring_for(Alg::HS256);
    let (alice, bob) = (access(&ring, NOW), access(&ring, NOW + 5));
    let claims = |token: &str| {
        Arc::new(verify::verify(&ring, &expect(), token, TokenType::Access, NOW + 5).unwrap())
    };
    let (alice_claims, bob_claims) = (claims(&alice), claims(&bob));
    assert_ne!(alice_claims.jti, bob_claims.jti);
    // Both forced into one slot, as a hash collision would put them.
    let mut cache = ThreadCache {
        generation: ring.generation().get(),
        keys: RandomState::new(),
        entries: HashMap::default(),
    };
    let slot = 7;
    cache.store(slot, &alice, Arc::clone(&alice_claims), NOW);
    assert_eq!(cache.lookup(slot, &alice).unwrap().jti, alice_claims.jti);
    assert!(cache.lookup(slot, &bob).is_none(), "bob's token is a miss");
    cache.store(slot, &bob, Arc::clone(&bob_claims), NOW);
    assert!(
        cache.lookup(slot, &alice).is_none(),
        "alice's entry was replaced"
    );
    assert_eq!(cache.lookup(slot, &bob).unwrap().jti, bob_claims.jti);
    assert_eq!(cache.entries.len(), 1);
    // A prefix, an extension or a one-byte change of the cached token is a miss too.
    let mut changed = bob.clone().into_bytes();
    changed[10] ^= 1;
    let changed = String::from_utf8(changed).unwrap();
    for other in [&bob[..bob.len() - 1], &format!("{bob}A"), &changed] {
        assert!(cache.lookup(slot, other).is_none(), "{other}");
    }
}

#[test]
fn each_verification_gets_the_claims_of_its_own_token() {
    let ring = ring_for(Alg::HS256);
    let tokens: Vec<String> = (0..64).map(|i| access(&ring, NOW + i)).collect();
    for round in 0..2 {
        for (i, token) in tokens.iter().enumerate() {
            let claims = check(&ring, token, NOW + 64).unwrap();
            assert_eq!(claims.iat, NOW + i as u64, "round {round}");
        }
    }
    assert_eq!(cached(&ring), tokens.len());
}
