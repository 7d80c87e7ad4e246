//! External issuers under attack: tokens that must never pass, each with its exact 401.

use crate::common::*;
use http::StatusCode;
use serde_json::{json, Value};

async fn get(gw: &Gateway, path: &str, token: &str) -> Response {
    gw.client().get(path).bearer(token).send_h1().await
}

#[tokio::test]
async fn provider_tokens_are_checked_for_issuer_audience_and_time() {
    let key = IdpKey::generate("rsa-1", "RS256");
    let idp = Idp::start(vec![key.clone()]).await;
    let up = MockUpstream::start(Mode::Record).await;
    let gw = idp.gateway(&up.url(), "").await;
    let cases: [(&str, Value, &str); 5] = [
        ("aud", json!("account"), "wrong audience"),
        ("exp", json!(now_secs() - 120), "token expired"),
        ("nbf", json!(now_secs() + 600), "token not yet valid"),
        (
            "iss",
            json!("https://idp.invalid/realms/other"),
            "wrong issuer",
        ),
        ("sub", Value::Null, "malformed token"),
    ];
    for (claim, value, reason) in cases {
        let mut claims = idp.claims("bob", &["admin"]);
        claims[claim] = value;
        let token = idp.sign(&key, &claims);
        assert_invalid_token(&get(&gw, "/api/orders", &token).await, reason, &token);
    }
    let mut claims = idp.claims("bob", &["admin"]);
    claims.as_object_mut().expect("object").remove("aud");
    let token = idp.sign(&key, &claims);
    assert_invalid_token(
        &get(&gw, "/api/orders", &token).await,
        "missing claim aud",
        &token,
    );
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn provider_issuer_signed_with_the_gateway_key_is_rejected() {
    // The provider publishes an Ed25519 key under the very kid the gateway signs with.
    let twin = IdpKey::generate("main", "EdDSA");
    let idp = Idp::start(vec![twin.clone()]).await;
    let up = MockUpstream::start(Mode::Record).await;
    let gw = idp
        .gateway(&up.url(), "algorithms = [\"RS256\", \"EdDSA\"]")
        .await;

    // iss = the provider, signed by the gateway's key: verified with the provider's keys only.
    let forged = gw.sign(&gw.header(), &idp.claims("mallory", &["admin"]));
    assert_invalid_token(
        &get(&gw, "/api/orders", &forged).await,
        "bad signature",
        &forged,
    );
    // And the reverse: iss = the gateway, signed by the provider's "main".
    let reverse = idp.sign(&twin, &gw.claims("mallory", &["admin"]));
    assert_invalid_token(
        &get(&gw, "/api/orders", &reverse).await,
        "bad signature",
        &reverse,
    );
    // A token of an issuer nobody configured.
    let mut claims = idp.claims("mallory", &["admin"]);
    claims["iss"] = json!("https://evil.example/realms/test");
    let stranger = idp.sign(&twin, &claims);
    assert_invalid_token(
        &get(&gw, "/api/orders", &stranger).await,
        "wrong issuer",
        &stranger,
    );
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn jku_x5u_and_embedded_jwk_headers_are_never_used() {
    let key = IdpKey::generate("rsa-1", "RS256");
    let idp = Idp::start(vec![key.clone()]).await;
    let attacker = IdpKey::generate("evil", "RS256");
    // The attacker's own key server, counting whether the gateway ever asks it.
    let evil = Idp::start(vec![attacker.clone()]).await;
    let up = MockUpstream::start(Mode::Record).await;
    let gw = idp.gateway(&up.url(), "").await;
    let claims = idp.claims("mallory", &["admin"]);
    for kid in ["evil", "rsa-1"] {
        let headers = [
            json!({ "alg": "RS256", "kid": kid, "jku": evil.jwks_url() }),
            json!({ "alg": "RS256", "kid": kid, "x5u": format!("http://{}/cert.pem", evil.addr) }),
            json!({ "alg": "RS256", "kid": kid, "jwk": attacker.jwk }),
        ];
        let reason = if kid == "evil" {
            "unknown key id"
        } else {
            "bad signature"
        };
        for header in headers {
            let token = sign_raw(&header, &claims, &attacker);
            let resp = get(&gw, "/api/orders", &token).await;
            assert_invalid_token(&resp, reason, &token);
        }
    }
    assert_eq!(evil.jwks_fetches() + evil.discovery_fetches(), 0);
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn algorithms_restricts_what_the_issuer_may_use() {
    let rsa = IdpKey::generate("rsa-1", "RS256");
    let ec = IdpKey::generate("ec-1", "ES256");
    let idp = Idp::start(vec![rsa.clone(), ec.clone()]).await;
    let echo = Upstream::echo().await;
    let gw = idp.gateway(&echo.url(), "algorithms = [\"ES256\"]").await;
    let claims = idp.claims("erin", &["admin"]);
    let es = idp.sign(&ec, &claims);
    let resp = get(&gw, "/api/orders", &es).await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    // RS256 is a fine algorithm, but not one this issuer allows.
    let rs = idp.sign(&rsa, &claims);
    let reason = "algorithm does not match the key";
    assert_invalid_token(&get(&gw, "/api/orders", &rs).await, reason, &rs);
}

#[tokio::test]
async fn alg_confusion_is_rejected() {
    let rsa = IdpKey::generate("rsa-1", "RS256");
    let ec = IdpKey::generate("ec-1", "ES256");
    let idp = Idp::start(vec![rsa.clone(), ec.clone()]).await;
    let up = MockUpstream::start(Mode::Record).await;
    let gw = idp
        .gateway(&up.url(), "algorithms = [\"RS256\", \"ES256\"]")
        .await;
    let claims = idp.claims("erin", &["admin"]);
    let reason = "algorithm does not match the key";
    // HS256 with the provider's public key as the HMAC secret, naming each real kid.
    for (kid, secret) in [("rsa-1", &rsa.public_pem), ("ec-1", &ec.public_pem)] {
        let header = json!({ "alg": "HS256", "typ": "JWT", "kid": kid });
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let hmac = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        let sig =
            jsonwebtoken::crypto::sign(input.as_bytes(), &hmac, jsonwebtoken::Algorithm::HS256)
                .expect("hmac");
        let token = format!("{input}.{sig}");
        assert_invalid_token(&get(&gw, "/api/orders", &token).await, reason, &token);
    }
    // An allowed alg on the other key type's kid: each key is pinned to its own algorithm.
    let crossed = sign_raw(&json!({ "alg": "ES256", "kid": "rsa-1" }), &claims, &ec);
    assert_invalid_token(&get(&gw, "/api/orders", &crossed).await, reason, &crossed);
    let crossed = sign_raw(&json!({ "alg": "RS256", "kid": "ec-1" }), &claims, &rsa);
    assert_invalid_token(&get(&gw, "/api/orders", &crossed).await, reason, &crossed);
    // alg "none" never parses.
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","kid":"ec-1"}"#),
        b64(claims.to_string().as_bytes())
    );
    assert_invalid_token(
        &get(&gw, "/api/orders", &none).await,
        "malformed token",
        &none,
    );
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
    // None of this made the gateway refetch: no kid was unknown.
    assert_eq!(idp.jwks_fetches(), 1);
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_not_used() {
    // The document at the configured URL names another issuer (a mix-up, or a URL that
    // was taken over): its jwks_uri is not followed, so its keys never verify anything.
    let key = IdpKey::generate("rsa-1", "RS256");
    let idp = Idp::start(vec![key.clone()]).await;
    idp.advertise_issuer("https://other.example/realms/test");
    let up = MockUpstream::start(Mode::Record).await;
    let gw = idp.gateway(&up.url(), "").await;
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 0));
    let token = idp.sign(&key, &idp.claims("mallory", &["admin"]));
    assert_invalid_token(
        &get(&gw, "/api/orders", &token).await,
        "unknown key id",
        &token,
    );
    let (status, body) = plain_get(gw.admin, "/readyz").await.expect("readyz");
    assert_eq!(status, 200);
    assert!(
        body.contains("jwks unreachable, no keys")
            && body
                .contains("discovery document names issuer \"https://other.example/realms/test\""),
        "{body}"
    );
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn provider_token_issued_in_the_future_is_refused_and_revocation_covers_the_leeway() {
    let key = IdpKey::generate("rsa-1", "RS256");
    let idp = Idp::start(vec![key.clone()]).await;
    let up = MockUpstream::start(Mode::Record).await;
    let gw = idp.gateway(&up.url(), "").await;
    let dated = |ahead: i64| {
        let mut claims = idp.claims("bob", &["admin"]);
        claims["iat"] = json!(now_secs() + ahead);
        claims["exp"] = json!(now_secs() + ahead + 300);
        idp.sign(&key, &claims)
    };
    let far = dated(3600);
    let reason = "token issued in the future";
    assert_invalid_token(&get(&gw, "/api/orders", &far).await, reason, &far);
    // Within the 30s leeway: accepted, and `revoke --sub` must still reach it.
    let near = dated(25);
    assert_eq!(get(&gw, "/api/orders", &near).await.status, StatusCode::OK);
    gw.revoke_cli(&["--sub", "bob"]);
    assert_invalid_token(
        &get(&gw, "/api/orders", &near).await,
        "token revoked",
        &near,
    );
}

#[tokio::test]
async fn provider_token_repeating_a_claim_is_malformed() {
    let key = IdpKey::generate("rsa-1", "RS256");
    let idp = Idp::start(vec![key.clone()]).await;
    let up = MockUpstream::start(Mode::Record).await;
    let gw = idp.gateway(&up.url(), "").await;
    let text = idp.claims("bob", &["admin"]).to_string();
    let header = json!({ "alg": key.alg, "typ": "JWT", "kid": key.kid }).to_string();
    let twice = [
        text.replacen(
            r#""tenant":"acme""#,
            r#""tenant":"evil","tenant":"acme""#,
            1,
        ),
        text.replacen(r#""roles":["#, r#""roles":["x"],"roles":["#, 1),
    ];
    for payload in twice {
        assert_ne!(payload, text, "the claims changed shape");
        let input = format!(
            "{}.{}",
            b64url(header.as_bytes()),
            b64url(payload.as_bytes())
        );
        let sig =
            jsonwebtoken::crypto::sign(input.as_bytes(), &key.encoding_key(), key.algorithm())
                .expect("sign");
        let token = format!("{input}.{sig}");
        assert_invalid_token(
            &get(&gw, "/api/orders", &token).await,
            "malformed token",
            &token,
        );
    }
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}
