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

fn check(ring: &KeyRing, token: &str, now: u64) -> Result<Claims, TokenError> {
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
