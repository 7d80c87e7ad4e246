//! Bearer tokens: what gets through, and the exact 401/403 answer for everything that does not.

use crate::common::*;
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// A gateway on the standard routes in front of a recording upstream.
async fn gateway() -> (Gateway, MockUpstream) {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    (gw, up)
}

/// Send `token` to a route that needs any valid token; expect the 401 for `reason`,
/// and prove the upstream saw nothing.
async fn assert_rejected(gw: &Gateway, up: &MockUpstream, token: &str, reason: &str) {
    let resp = gw.client().get("/api/orders").bearer(token).send_h1().await;
    assert_invalid_token(&resp, reason, token);
    assert!(
        up.seen().is_empty(),
        "upstream saw a rejected request: {:?}",
        up.seen_targets()
    );
}

fn with_claim(mut claims: Value, k: &str, v: Value) -> Value {
    claims[k] = v;
    claims
}

#[tokio::test]
async fn valid_token_reaches_upstream_with_identity_headers() {
    let echo = Upstream::echo().await;
    let gw = Gateway::start(GatewayConfig::standard(&echo.url())).await;
    let resp = gw
        .client()
        .get("/api/orders?limit=5")
        .bearer(&gw.token("alice", &["admin", "dev"]))
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    let body = resp.json();
    assert_eq!(body["method"], "GET");
    assert_eq!(body["path"], "/api/orders");
    assert_eq!(resp.echoed_header("x-auth-user").as_deref(), Some("alice"));
    assert_eq!(
        resp.echoed_header("x-auth-roles").as_deref(),
        Some("admin,dev")
    );
}

#[tokio::test]
async fn token_from_the_token_command_is_accepted() {
    let echo = Upstream::echo().await;
    let gw = Gateway::start(GatewayConfig::standard(&echo.url())).await;
    let token = gw.cli_token("carol", &["admin", "ops"]);
    let resp = gw
        .client()
        .get("/admin/panel")
        .bearer(&token)
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    assert_eq!(resp.echoed_header("x-auth-user").as_deref(), Some("carol"));
    assert_eq!(
        resp.echoed_header("x-auth-roles").as_deref(),
        Some("admin,ops")
    );
}

#[tokio::test]
async fn missing_token_is_401_with_bare_bearer_challenge() {
    let (gw, up) = gateway().await;
    let resp = gw.client().get("/api/orders").send_h1().await;
    assert_eq!(
        resp.status,
        StatusCode::UNAUTHORIZED,
        "body: {}",
        resp.text()
    );
    assert_eq!(
        resp.header("www-authenticate").as_deref(),
        Some(r#"Bearer realm="portcullis""#)
    );
    assert_eq!(resp.json()["error_description"], "missing bearer token");
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn non_bearer_authorization_is_missing_bearer_token() {
    // RFC 6750 3.1: a request "attempted using an unsupported authentication method" lacks
    // authentication information: bare challenge, no error code.
    let (gw, up) = gateway().await;
    let resp = gw
        .client()
        .get("/api/orders")
        .header("authorization", "Basic YWxpY2U6c2VjcmV0")
        .send_h1()
        .await;
    assert_eq!(
        resp.status,
        StatusCode::UNAUTHORIZED,
        "body: {}",
        resp.text()
    );
    assert_eq!(
        resp.header("www-authenticate").as_deref(),
        Some(r#"Bearer realm="portcullis""#)
    );
    assert_eq!(resp.json()["error_description"], "missing bearer token");
    assert_no_token_in(&resp, "YWxpY2U6c2VjcmV0");
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn malformed_token_is_rejected() {
    let (gw, up) = gateway().await;
    assert_rejected(&gw, &up, "not-a-jwt-at-all", "malformed token").await;
    assert_rejected(&gw, &up, "aaaaaaaa.bbbbbbbb.cccccccc", "malformed token").await;
}

#[tokio::test]
async fn alg_none_token_is_rejected() {
    let (gw, up) = gateway().await;
    let header = b64url(br#"{"alg":"none","typ":"JWT","kid":"main"}"#);
    let payload = b64url(gw.claims("mallory", &["admin"]).to_string().as_bytes());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        let resp = gw.client().get("/admin/x").bearer(&token).send_h1().await;
        assert_eq!(
            resp.status,
            StatusCode::UNAUTHORIZED,
            "alg none got through: {}",
            resp.text()
        );
        let reason = resp.json()["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // `none` is either not an algorithm at all, or not the key's: both are fine.
        assert!(
            reason == "algorithm does not match the key" || reason == "malformed token",
            "unexpected reason {reason:?}"
        );
        assert_invalid_token(&resp, &reason, &token);
    }
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn hs256_token_keyed_with_the_public_key_is_rejected() {
    let (gw, up) = gateway().await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("main".into());
    let key = EncodingKey::from_secret(gw.public_key_pem.as_bytes());
    let token =
        jsonwebtoken::encode(&header, &gw.claims("mallory", &["admin"]), &key).expect("sign");
    assert_rejected(&gw, &up, &token, "algorithm does not match the key").await;
}

#[tokio::test]
async fn token_without_kid_is_rejected() {
    let (gw, up) = gateway().await;
    let mut header = gw.header();
    header.kid = None;
    let token = gw.sign(&header, &gw.claims("alice", &["user"]));
    assert_rejected(&gw, &up, &token, "token has no kid").await;
}

#[tokio::test]
async fn unknown_kid_is_rejected() {
    let (gw, up) = gateway().await;
    let mut header = gw.header();
    header.kid = Some("other".into());
    let token = gw.sign(&header, &gw.claims("alice", &["user"]));
    assert_rejected(&gw, &up, &token, "unknown key id").await;
}

#[tokio::test]
async fn token_signed_by_another_key_is_bad_signature() {
    let (gw, up) = gateway().await;
    let (other_private, _) = ed25519_pem();
    let key = EncodingKey::from_ed_pem(other_private.as_bytes()).expect("ed25519 PEM");
    let token =
        jsonwebtoken::encode(&gw.header(), &gw.claims("mallory", &["admin"]), &key).expect("sign");
    assert_rejected(&gw, &up, &token, "bad signature").await;
}

#[tokio::test]
async fn tampered_payload_is_bad_signature() {
    let (gw, up) = gateway().await;
    let token = gw.token("alice", &["user"]);
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = gw.claims("alice", &["admin"]);
    claims["sub"] = json!("alice");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64url(claims.to_string().as_bytes()),
        parts[2]
    );
    let resp = gw.client().get("/admin/x").bearer(&forged).send_h1().await;
    assert_invalid_token(&resp, "bad signature", &forged);
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn expired_token_is_rejected() {
    let (gw, up) = gateway().await;
    let now = now_secs();
    let claims = gw.claims("alice", &["user"]);
    let claims = with_claim(claims, "iat", json!(now - 3600));
    let claims = with_claim(claims, "nbf", json!(now - 3600));
    let claims = with_claim(claims, "exp", json!(now - 120));
    let token = gw.sign(&gw.header(), &claims);
    assert_rejected(&gw, &up, &token, "token expired").await;
}

#[tokio::test]
async fn token_expired_within_leeway_is_accepted() {
    let (gw, up) = gateway().await;
    let now = now_secs();
    let claims = with_claim(gw.claims("alice", &["user"]), "exp", json!(now - 5));
    let claims = with_claim(claims, "iat", json!(now - 600));
    let claims = with_claim(claims, "nbf", json!(now - 600));
    let resp = gw
        .client()
        .get("/api/x")
        .bearer(&gw.sign(&gw.header(), &claims))
        .send_h1()
        .await;
    assert_eq!(
        resp.status,
        StatusCode::OK,
        "leeway is 30s; body: {}",
        resp.text()
    );
    assert_eq!(up.seen_targets(), vec!["/api/x".to_string()]);
}

#[tokio::test]
async fn token_not_yet_valid_is_rejected() {
    let (gw, up) = gateway().await;
    let now = now_secs();
    let claims = with_claim(gw.claims("alice", &["user"]), "nbf", json!(now + 600));
    let claims = with_claim(claims, "exp", json!(now + 1800));
    let token = gw.sign(&gw.header(), &claims);
    assert_rejected(&gw, &up, &token, "token not yet valid").await;
}

#[tokio::test]
async fn wrong_issuer_is_rejected() {
    let (gw, up) = gateway().await;
    let token = gw.sign(
        &gw.header(),
        &with_claim(gw.claims("alice", &["user"]), "iss", json!("evil")),
    );
    assert_rejected(&gw, &up, &token, "wrong issuer").await;
}

#[tokio::test]
async fn wrong_audience_is_rejected() {
    let (gw, up) = gateway().await;
    let token = gw.sign(
        &gw.header(),
        &with_claim(
            gw.claims("alice", &["user"]),
            "aud",
            json!("some-other-service"),
        ),
    );
    assert_rejected(&gw, &up, &token, "wrong audience").await;
}

#[tokio::test]
async fn refresh_token_is_not_an_access_token() {
    let (gw, up) = gateway().await;
    let claims = with_claim(gw.claims("alice", &["user"]), "typ", json!("refresh"));
    let claims = with_claim(claims, "fam", json!("family-1"));
    let token = gw.sign(&gw.header(), &claims);
    assert_rejected(&gw, &up, &token, "wrong token type").await;
}

#[tokio::test]
async fn missing_role_is_403_insufficient_scope() {
    let (gw, up) = gateway().await;
    let token = gw.token("bob", &["user", "dev"]);
    let resp = gw
        .client()
        .get("/admin/users")
        .bearer(&token)
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN, "body: {}", resp.text());
    let challenge = resp.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer "),
        "WWW-Authenticate: {challenge:?}"
    );
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "WWW-Authenticate: {challenge:?}"
    );
    let body = resp.json();
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(body["error_description"], "missing role");
    assert_no_token_in(&resp, &token);
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn role_grants_the_admin_route() {
    let (gw, up) = gateway().await;
    let resp = gw
        .client()
        .get("/admin/users")
        .bearer(&gw.token("root", &["user", "admin"]))
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    assert_eq!(up.seen_targets(), vec!["/admin/users".to_string()]);
}

#[tokio::test]
async fn public_route_needs_no_token() {
    let echo = Upstream::echo().await;
    let gw = Gateway::start(GatewayConfig::standard(&echo.url())).await;
    let resp = gw.client().get("/public/index.html").send_h1().await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    assert_eq!(resp.json()["path"], "/public/index.html");
    assert_eq!(resp.echoed_header("x-auth-user"), None);
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    // RFC 7235: the auth scheme name is case-insensitive.
    let (gw, up) = gateway().await;
    let token = gw.token("alice", &["user"]);
    for scheme in ["bearer", "BEARER"] {
        let resp = gw
            .client()
            .get("/api/x")
            .header("authorization", &format!("{scheme} {token}"))
            .send_h1()
            .await;
        assert_eq!(resp.status, StatusCode::OK, "{scheme}: {}", resp.text());
    }
    assert_eq!(up.seen().len(), 2);
}

#[tokio::test]
async fn token_in_query_string_is_not_accepted() {
    let (gw, up) = gateway().await;
    let token = gw.token("alice", &["admin"]);
    let resp = gw
        .client()
        .get(&format!("/admin/x?access_token={token}"))
        .send_h1()
        .await;
    assert_eq!(
        resp.status,
        StatusCode::UNAUTHORIZED,
        "body: {}",
        resp.text()
    );
    assert_eq!(resp.json()["error_description"], "missing bearer token");
    assert_no_token_in(&resp, &token);
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn two_authorization_headers_are_rejected() {
    // Which one would the upstream believe? A proxy must not pick.
    let (gw, up) = gateway().await;
    let admin = gw.token("root", &["admin"]);
    let user = gw.token("bob", &["user"]);
    let resp = gw
        .client()
        .get("/admin/x")
        .header("authorization", &format!("Bearer {user}"))
        .header("authorization", &format!("Bearer {admin}"))
        .send_h1()
        .await;
    assert_eq!(
        resp.status,
        StatusCode::UNAUTHORIZED,
        "body: {}",
        resp.text()
    );
    assert_no_token_in(&resp, &admin);
    assert_no_token_in(&resp, &user);
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}
