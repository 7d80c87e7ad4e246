//! X-Auth-Assertion against the real binary: the echo upstream reports the assertion it
//! received, and the test verifies it as an upstream would, with the gateway's JWKS.

use crate::common::*;
use http::StatusCode;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

const ASSERTION_SECTION: &str = r#"[assertion]
kid = "assert-1"
alg = "EdDSA"
private_key = "assertion.pem"
ttl = "30s"
"#;

/// Two upstreams that want assertions (alpha, beta) and one that does not (plain), all the
/// same echo process, so only the gateway's configuration tells them apart.
fn routes(url: &str) -> String {
    format!(
        r#"[upstreams.alpha]
url = "{url}"
assertion = true

[upstreams.beta]
url = "{url}"
assertion = true

[upstreams.plain]
url = "{url}"

[[routes]]
path = "/alpha/**"
upstream = "alpha"

[[routes]]
path = "/beta/**"
upstream = "beta"

[[routes]]
path = "/plain/**"
upstream = "plain"

[[routes]]
path = "/public/**"
upstream = "alpha"
auth = "none"
"#
    )
}

async fn gateway() -> (Gateway, Upstream) {
    let up = Upstream::echo().await;
    let dir = TestDir::new();
    dir.write("assertion.pem", &ed25519_pem().0);
    let cfg = GatewayConfig::new(routes(&up.url())).extra(ASSERTION_SECTION);
    (Gateway::start_in(dir, cfg).await, up)
}

/// The assertion the echo upstream received on `path`, if any.
async fn seen_assertion(
    gw: &Gateway,
    path: &str,
    token: &str,
    extra: &[(&str, &str)],
) -> Option<String> {
    let mut request = gw.client().get(path).bearer(token);
    for (name, value) in extra {
        request = request.header(name, value);
    }
    let resp = request.send_h1().await;
    assert_eq!(resp.status, StatusCode::OK, "{path}: {}", resp.text());
    resp.echoed_header("x-auth-assertion")
}

async fn jwks(gw: &Gateway) -> JwkSet {
    let resp = gw.client().get("/.well-known/jwks.json").send_h1().await;
    assert_eq!(resp.status, StatusCode::OK);
    serde_json::from_slice(&resp.body).expect("a JWK Set")
}

/// What an upstream named `audience` does: key by kid from the JWKS, EdDSA only, its own
/// audience, the gateway's issuer, an unexpired `exp`, and `typ` = "assertion".
fn verify(set: &JwkSet, assertion: &str, audience: &str) -> Result<Value, ErrorKind> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|e| e.into_kind())?;
    let kid = header.kid.ok_or(ErrorKind::InvalidToken)?;
    let jwk = set.find(&kid).ok_or(ErrorKind::InvalidToken)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.into_kind())?;
    let mut validation = Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[audience]);
    validation.set_issuer(&["portcullis"]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .map_err(|e| e.into_kind())?
        .claims;
    if claims["typ"] != "assertion" {
        return Err(ErrorKind::InvalidToken);
    }
    Ok(claims)
}

#[tokio::test]
async fn upstream_verifies_the_assertion_with_the_gateway_jwks() {
    let (gw, _up) = gateway().await;
    let token = gw.token("alice", &["admin", "ops"]);
    let assertion = seen_assertion(
        &gw,
        "/alpha/orders/7",
        &token,
        &[("x-request-id", "req-42")],
    )
    .await
    .expect("alpha receives an assertion");
    let claims = verify(&jwks(&gw).await, &assertion, "alpha").expect("assertion verifies");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["roles"], serde_json::json!(["admin", "ops"]));
    assert_eq!(claims["route"], "/alpha/**");
    assert_eq!(claims["rid"], "req-42");
    assert_eq!(claims["aud"], "alpha");
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 30, "the configured ttl");
    assert!((iat - now_secs()).abs() <= 5, "iat is now: {iat}");
    let header = jsonwebtoken::decode_header(&assertion).unwrap();
    assert_eq!(header.kid.as_deref(), Some("assert-1"));
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert!(
        !assertion.contains(&token),
        "the access token is not embedded"
    );
}

#[tokio::test]
async fn an_assertion_replayed_to_another_upstream_fails_its_audience_check() {
    let (gw, _up) = gateway().await;
    let set = jwks(&gw).await;
    let token = gw.token("alice", &[]);
    let for_alpha = seen_assertion(&gw, "/alpha/x", &token, &[]).await.unwrap();
    assert_eq!(
        verify(&set, &for_alpha, "beta"),
        Err(ErrorKind::InvalidAudience)
    );
    let for_beta = seen_assertion(&gw, "/beta/x", &token, &[]).await.unwrap();
    assert_eq!(verify(&set, &for_beta, "beta").unwrap()["aud"], "beta");
    assert_eq!(
        verify(&set, &for_beta, "alpha"),
        Err(ErrorKind::InvalidAudience)
    );
    // Each request gets its own assertion.
    let again = seen_assertion(&gw, "/alpha/x", &token, &[]).await.unwrap();
    let jti = |a: &str| verify(&set, a, "alpha").unwrap()["jti"].clone();
    assert_ne!(jti(&for_alpha), jti(&again));
}

#[tokio::test]
async fn a_client_sent_assertion_never_reaches_an_upstream() {
    let (gw, _up) = gateway().await;
    let set = jwks(&gw).await;
    let token = gw.token("alice", &["admin"]);
    let genuine = seen_assertion(&gw, "/alpha/x", &token, &[]).await.unwrap();
    let mallory = gw.token("mallory", &[]);
    for name in ["X-Auth-Assertion", "x_auth_assertion", "X.Auth.Assertion"] {
        let forged = [(name, genuine.as_str())];
        // Replaced on an assertion upstream: the subject is mallory's, not alice's.
        let replaced = seen_assertion(&gw, "/alpha/x", &mallory, &forged)
            .await
            .unwrap();
        assert_ne!(replaced, genuine);
        assert_eq!(verify(&set, &replaced, "alpha").unwrap()["sub"], "mallory");
        // Removed where the gateway adds none.
        assert_eq!(
            seen_assertion(&gw, "/plain/x", &mallory, &forged).await,
            None,
            "{name}"
        );
        let resp = gw
            .client()
            .get("/public/x")
            .header(name, &genuine)
            .send_h1()
            .await;
        assert_eq!(resp.status, StatusCode::OK);
        assert!(
            !resp
                .echoed_header_names()
                .iter()
                .any(|h| h.contains("assertion")),
            "{name}: {:?}",
            resp.echoed_header_names()
        );
    }
}

#[tokio::test]
async fn an_assertion_is_not_an_access_token() {
    let (gw, _up) = gateway().await;
    let token = gw.token("alice", &["admin"]);
    let assertion = seen_assertion(&gw, "/alpha/x", &token, &[]).await.unwrap();
    let resp = gw
        .client()
        .get("/alpha/x")
        .bearer(&assertion)
        .send_h1()
        .await;
    assert_invalid_token(&resp, "unknown key id", &assertion);
}

#[tokio::test]
async fn jwks_publishes_the_assertion_key_beside_the_token_key() {
    let (gw, _up) = gateway().await;
    let set = jwks(&gw).await;
    let kids: Vec<&str> = set
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.as_deref())
        .collect();
    assert_eq!(kids, ["main", "assert-1"]);
}

#[test]
fn assertion_misconfigurations_are_reported_with_line_and_column() {
    let dir = TestDir::new();
    dir.write("hmac.txt", &"k".repeat(64));
    let routes = r#"[upstreams.api]
url = "http://127.0.0.1:9"
assertion = true
"#;
    let config = Gateway::prepare(&dir, &GatewayConfig::new(routes));
    let out = run_cli(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let expected = format!(
        "{}:3:13: upstream \"api\": assertion = true needs an [assertion] key in gateway.toml",
        dir.join("routes.toml").display()
    );
    assert!(out.stderr.contains(&expected), "{}", out.stderr);

    let bad = [
        (
            "kid = \"main\"\nprivate_key = \"a.pem\"",
            "differ from every [[keys]] kid",
        ),
        (
            "kid = \"a\"\nalg = \"HS256\"\nprivate_key = \"hmac.txt\"",
            "must be asymmetric",
        ),
        (
            "kid = \"a\"\nprivate_key = \"a.pem\"\nttl = \"2m\"",
            "ttl must be whole seconds from 1s to 60s",
        ),
        (
            "kid = \"a\"\nprivate_key = \"missing.pem\"",
            "cannot read assertion private key",
        ),
    ];
    dir.write("a.pem", &ed25519_pem().0);
    for (section, message) in bad {
        let cfg = GatewayConfig::new(routes).extra(&format!("[assertion]\n{section}\n"));
        let config = Gateway::prepare(&dir, &cfg);
        let out = run_cli(&["check", "--config", config.to_str().unwrap()]);
        assert_eq!(out.code, Some(1), "{section}: {out:?}");
        let gateway = format!("{}:", config.display());
        let line = out.stderr.lines().find(|l| l.contains(message));
        assert!(
            line.is_some_and(|l| l.starts_with(&format!("error: {gateway}"))),
            "{section}: {}",
            out.stderr
        );
    }

    let named_like_audience =
        "[upstreams.portcullis]\nurl = \"http://127.0.0.1:9\"\nassertion = true\n";
    let cfg = GatewayConfig::new(named_like_audience).extra(
        "[assertion]
kid = \"a\"
private_key = \"a.pem\"
",
    );
    let config = Gateway::prepare(&dir, &cfg);
    let out = run_cli(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("may not be named like the gateway's token audience"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn an_external_issuers_user_gets_an_assertion_from_the_gateway() {
    let key = IdpKey::generate("idp-1", "RS256");
    let idp = Idp::start(vec![key.clone()]).await;
    let up = Upstream::echo().await;
    let dir = TestDir::new();
    dir.write("assertion.pem", &ed25519_pem().0);
    let issuer = format!(
        "[[issuers]]\nissuer = \"{}\"\naudience = \"orders-api\"\ndiscovery_url = \"{}\"\nroles_claim = \"realm_access.roles\"\n",
        idp.issuer,
        idp.discovery_url()
    );
    let cfg = GatewayConfig::new(routes(&up.url()))
        .extra(ASSERTION_SECTION)
        .extra(&issuer);
    let gw = Gateway::start_in(dir, cfg).await;
    let token = idp.sign(&key, &idp.claims("kc-7", &["billing"]));
    let assertion = seen_assertion(&gw, "/beta/x", &token, &[]).await.unwrap();
    let claims = verify(&jwks(&gw).await, &assertion, "beta").expect("verifies");
    // Signed by the gateway, whoever issued the access token: one key for upstreams to trust.
    assert_eq!(claims["iss"], "portcullis");
    assert_eq!(claims["sub"], "kc-7");
    assert_eq!(claims["roles"], serde_json::json!(["billing"]));
    let kid = jsonwebtoken::decode_header(&assertion).unwrap().kid;
    assert_eq!(kid.as_deref(), Some("assert-1"));
}
