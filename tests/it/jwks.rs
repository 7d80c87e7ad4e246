//! GET /.well-known/jwks.json: the public half of each asymmetric key, enough for anyone to
//! verify a token the gateway issued; never an HMAC secret, never a private component.

use crate::common::*;
use http::StatusCode;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

const ALICE_PW: &str = "correct horse battery";

/// The JWKS document, with the checks every key in it must pass.
async fn jwks(gw: &Gateway) -> (Value, JwkSet) {
    let resp = gw.client().get("/.well-known/jwks.json").send_h1().await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    let ctype = resp.header("content-type").unwrap_or_default();
    assert!(ctype.starts_with("application/"), "content-type {ctype:?}");
    let raw = resp.json();
    for key in raw["keys"].as_array().expect("a keys array") {
        assert!(key["kid"].is_string(), "key without kid: {key}");
        assert!(key["alg"].is_string(), "key without alg: {key}");
        assert_eq!(key["use"], "sig", "key: {key}");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(
                key.get(private).is_none(),
                "private member {private}: {key}"
            );
        }
    }
    let set: JwkSet = serde_json::from_value(raw.clone()).expect("a JWK set");
    (raw, set)
}

#[tokio::test]
async fn login_token_verifies_with_the_jwks_key_of_its_kid() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = AuthSetup::new(&up.url())
        .user("alice", ALICE_PW, &["admin"])
        .start()
        .await;
    let pair = gw.login_ok("alice", ALICE_PW).await;
    let (_, set) = jwks(&gw).await;

    let header = jsonwebtoken::decode_header(&pair.access).expect("token header");
    let kid = header.kid.expect("token carries a kid");
    let jwk: &Jwk = set.find(&kid).expect("the token's kid is in the JWKS");
    let key = DecodingKey::from_jwk(jwk).expect("usable JWK");

    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_issuer(&["portcullis"]);
    v.set_audience(&["portcullis"]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(&pair.access, &key, &v).expect("verifies");
    assert_eq!(data.claims["sub"], "alice");

    let mut wrong_aud = v.clone();
    wrong_aud.set_audience(&["someone-else"]);
    assert!(jsonwebtoken::decode::<Value>(&pair.access, &key, &wrong_aud).is_err());
}

#[tokio::test]
async fn jwks_lists_retired_keys_and_never_an_hmac_secret() {
    let up = MockUpstream::start(Mode::Record).await;
    let (_, retired_pub) = ed25519_pem();
    let secret = "s".repeat(48);
    let keys = "[[keys]]\nkid = \"old\"\nalg = \"EdDSA\"\npublic_key = \"old.pub.pem\"\n\
                verify_only = true\n\n[[keys]]\nkid = \"mac\"\nalg = \"HS256\"\n\
                secret_file = \"mac.key\"\nverify_only = true\n";
    let gw = AuthSetup::new(&up.url())
        .file("old.pub.pem", &retired_pub)
        .file("mac.key", &secret)
        .extra(keys)
        .start()
        .await;
    let (raw, set) = jwks(&gw).await;
    let kids: Vec<&str> = set
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.as_deref())
        .collect();
    assert!(kids.contains(&"main"), "kids {kids:?}");
    assert!(kids.contains(&"old"), "kids {kids:?}");
    assert!(!kids.contains(&"mac"), "HMAC key published: {raw}");
    assert!(!raw.to_string().contains(&secret), "HMAC secret published");
}
