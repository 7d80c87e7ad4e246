use serde_json::{json, Value};

use super::*;
use crate::token::keys::{KeyRing, KeySpec};
use crate::token::test_support::{kid, material};

/// The gateway's own JWKS for an RS256, ES256, ES384 and EdDSA ring: real public keys.
fn published() -> Vec<Value> {
    let specs = [Alg::RS256, Alg::ES256, Alg::ES384, Alg::EdDSA]
        .into_iter()
        .map(|alg| KeySpec {
            kid: kid(alg),
            alg,
            material: material(alg),
            verify_only: false,
        })
        .collect();
    let ring = KeyRing::new(specs, "rs256").unwrap();
    let set = crate::token::jwks::jwks(&ring);
    set["keys"].as_array().unwrap().clone()
}

fn without(mut jwk: Value, field: &str) -> Value {
    jwk.as_object_mut().unwrap().remove(field);
    jwk
}

fn set(keys: Vec<Value>) -> Vec<u8> {
    json!({ "keys": keys }).to_string().into_bytes()
}

const ASYMMETRIC: [Alg; 5] = [Alg::RS256, Alg::PS256, Alg::ES256, Alg::ES384, Alg::EdDSA];

#[test]
fn keys_are_pinned_to_their_own_alg_and_the_allowed_ones() {
    let keys = parse(&set(published()), AlgSet::of(&ASYMMETRIC)).unwrap();
    assert_eq!(keys.skipped, 0);
    let algs = |kid: &str| keys.keys[kid].algs;
    // Each published JWK names its alg, which pins it even though RSA could also do PS256.
    assert_eq!(algs("rs256"), AlgSet::of(&[Alg::RS256]));
    assert_eq!(algs("es256"), AlgSet::of(&[Alg::ES256]));
    assert_eq!(algs("es384"), AlgSet::of(&[Alg::ES384]));
    assert_eq!(algs("eddsa"), AlgSet::of(&[Alg::EdDSA]));
}

#[test]
fn a_jwk_without_alg_serves_every_allowed_alg_of_its_key_type() {
    let rsa = without(published()[0].clone(), "alg");
    let keys = parse(&set(vec![rsa.clone()]), AlgSet::of(&ASYMMETRIC)).unwrap();
    assert_eq!(
        keys.keys["rs256"].algs,
        AlgSet::of(&[Alg::RS256, Alg::PS256])
    );
    let only_ps = parse(&set(vec![rsa]), AlgSet::of(&[Alg::PS256, Alg::ES256])).unwrap();
    assert_eq!(only_ps.keys["rs256"].algs, AlgSet::of(&[Alg::PS256]));
}

#[test]
fn unusable_entries_are_skipped_not_fatal() {
    let keys = published();
    let mut enc = keys[1].clone();
    enc["use"] = "enc".into();
    enc["kid"] = "enc".into();
    let mut short_rsa = keys[0].clone();
    short_rsa["kid"] = "short".into();
    short_rsa["n"] = "AQAB".into();
    let mut duplicate = keys[1].clone();
    duplicate["kid"] = "rs256".into();
    let mut odd_alg = keys[1].clone();
    odd_alg["kid"] = "odd".into();
    odd_alg["alg"] = "ES512".into();
    let entries = vec![
        keys[0].clone(),
        without(keys[1].clone(), "kid"),
        json!({ "kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA" }),
        json!({ "kty": "EC", "crv": "secp256k1", "kid": "k1", "x": "AA", "y": "AA" }),
        enc,
        short_rsa,
        duplicate,
        odd_alg,
        json!("not an object"),
    ];
    let parsed = parse(&set(entries), AlgSet::of(&ASYMMETRIC)).unwrap();
    assert_eq!(parsed.keys.keys().collect::<Vec<_>>(), ["rs256"]);
    assert_eq!(parsed.skipped, 8);
    assert_eq!(parsed.keys["rs256"].algs, AlgSet::of(&[Alg::RS256]));
}

#[test]
fn a_set_with_no_allowed_key_is_an_error() {
    let err = parse(&set(published()), AlgSet::of(&[Alg::PS256])).unwrap_err();
    assert!(err.contains("no usable signing key (4 skipped"), "{err}");
    assert!(parse(b"<html>", AlgSet::of(&ASYMMETRIC))
        .unwrap_err()
        .contains("not JSON"));
    let no_keys = parse(b"{\"keys\": {}}", AlgSet::of(&ASYMMETRIC)).unwrap_err();
    assert_eq!(no_keys, "JWKS has no \"keys\" array");
}

#[test]
fn hmac_is_never_taken_from_a_key_set_even_if_allowed() {
    let oct = json!({ "kty": "oct", "kid": "h", "alg": "HS256", "k": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc" });
    let err = parse(&set(vec![oct]), AlgSet::of(&[Alg::HS256])).unwrap_err();
    assert!(err.contains("no usable signing key"), "{err}");
}

#[test]
fn cache_control_max_age() {
    assert_eq!(max_age("public, max-age=300"), Some(300));
    assert_eq!(max_age("Max-Age=\"60\", must-revalidate"), Some(60));
    assert_eq!(max_age("no-cache"), Some(0));
    assert_eq!(max_age("max-age=300, no-store"), Some(0));
    assert_eq!(max_age("private"), None);
    assert_eq!(max_age("max-age=soon"), None);
}
