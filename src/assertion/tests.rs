use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use super::*;
use crate::policy::test_support::claims;
use crate::tools::keygen::generate_private_pem;

const NOW: u64 = 1_700_000_000;

fn signer(alg: Alg, ttl: u64) -> Arc<Signer> {
    let pem = generate_private_pem(alg).unwrap().into_bytes();
    Arc::new(Signer::new("assert-1", alg, pem, "portcullis", ttl).unwrap())
}

fn assertion_for(signer: &Arc<Signer>, audience: &str) -> String {
    let route = RouteAssertion {
        signer: signer.clone(),
        audience: audience.into(),
    };
    let c = claims(&["admin", "ops"], serde_json::json!({"scope": "a"}));
    let value = route.sign("/api/**", &c, Some("rid-1"), NOW).unwrap();
    value.to_str().unwrap().to_owned()
}

/// Verifies with the published JWK, as an upstream would.
fn verify(signer: &Signer, token: &str, audience: &str) -> jsonwebtoken::errors::Result<Value> {
    let entries = signer.jwks_entries();
    let jwk: Jwk = serde_json::from_value(entries[0].clone()).unwrap();
    let key = DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = Validation::new(jwk.common.key_algorithm.unwrap().to_string().parse()?);
    validation.validate_exp = false;
    validation.set_audience(&[audience]);
    validation.set_issuer(&["portcullis"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).map(|data| data.claims)
}

#[test]
fn assertion_carries_identity_route_and_request_and_verifies_with_the_jwk() {
    for alg in [Alg::EdDSA, Alg::ES256, Alg::RS256] {
        let s = signer(alg, 60);
        let token = assertion_for(&s, "api");
        let claims = verify(&s, &token, "api").unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["roles"], serde_json::json!(["admin", "ops"]));
        assert_eq!(claims["route"], "/api/**");
        assert_eq!(claims["rid"], "rid-1");
        assert_eq!(claims["typ"], "assertion");
        assert_eq!(claims["iat"], NOW);
        assert_eq!(claims["exp"], NOW + 60);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 32);
        assert!(claims.get("scope").is_none(), "only the listed claims");
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("assert-1"));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.alg, alg.jwt());
    }
}

#[test]
fn assertion_for_one_upstream_fails_anothers_audience_check() {
    let s = signer(Alg::EdDSA, 60);
    let token = assertion_for(&s, "billing");
    let err = verify(&s, &token, "api").unwrap_err();
    assert_eq!(
        *err.kind(),
        jsonwebtoken::errors::ErrorKind::InvalidAudience
    );
}

#[test]
fn every_assertion_has_its_own_jti() {
    let s = signer(Alg::EdDSA, 60);
    let a = verify(&s, &assertion_for(&s, "api"), "api").unwrap();
    let b = verify(&s, &assertion_for(&s, "api"), "api").unwrap();
    assert_ne!(a["jti"], b["jti"]);
}

#[test]
fn lifetime_is_capped_at_sixty_seconds() {
    let s = signer(Alg::EdDSA, 3600);
    let claims = verify(&s, &assertion_for(&s, "api"), "api").unwrap();
    assert_eq!(claims["exp"], NOW + MAX_TTL_SECS);
    let short = signer(Alg::EdDSA, 5);
    let claims = verify(&short, &assertion_for(&short, "api"), "api").unwrap();
    assert_eq!(claims["exp"], NOW + 5);
}

#[test]
fn hmac_and_mismatched_keys_are_refused() {
    let err = Signer::new("a", Alg::HS256, vec![7; 64], "i", 60).unwrap_err();
    assert!(err.to_string().contains("must be asymmetric"), "{err}");
    let p256 = generate_private_pem(Alg::ES256).unwrap().into_bytes();
    let err = Signer::new("a", Alg::EdDSA, p256, "i", 60).unwrap_err();
    assert_eq!(
        err.to_string(),
        "private_key is not an EdDSA (Ed25519) PKCS#8 PEM key"
    );
}

#[test]
fn published_entry_names_the_assertion_kid_and_no_private_part() {
    let s = signer(Alg::EdDSA, 60);
    let entries = s.jwks_entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["kid"], "assert-1");
    assert_eq!(entries[0]["use"], "sig");
    assert!(entries[0].get("d").is_none());
    assert_eq!(s.kid(), "assert-1");
}
