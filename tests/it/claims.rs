//! The gateway's own tokens, claim by claim: `iat` never ahead of the clock (nor out of
//! reach of `revoke --sub`), no claim written twice, and a `sub` and roles that reach the
//! upstream's identity headers exactly as the gateway judged them.

use crate::common::*;
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey};

/// The standard routes, plus one that needs `tenant = "acme"`.
fn routes(upstream_url: &str) -> String {
    format!(
        "{}\n[[routes]]\npath = \"/acme/**\"\nupstream = \"api\"\nclaims = {{ tenant = \"acme\" }}\n",
        standard_routes(upstream_url)
    )
}

async fn gateway() -> (Gateway, Upstream) {
    let echo = Upstream::echo().await;
    let gw = Gateway::start(GatewayConfig::new(routes(&echo.url()))).await;
    (gw, echo)
}

/// A token signed with the gateway's key over `payload` exactly as written: serde would
/// never write a member twice.
fn sign_text(gw: &Gateway, header: &str, payload: &str) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.as_bytes()),
        b64url(payload.as_bytes())
    );
    let key = EncodingKey::from_ed_pem(gw.signing_key_pem.as_bytes()).expect("ed25519 PEM");
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::EdDSA).expect("sign");
    format!("{input}.{sig}")
}

const HEADER: &str = r#"{"alg":"EdDSA","typ":"JWT","kid":"main"}"#;

/// A valid access-token payload for alice, `tail` spliced in before the closing brace.
fn payload(tail: &str) -> String {
    let now = now_secs();
    format!(
        r#"{{"iss":"portcullis","aud":"portcullis","sub":"alice","iat":{now},"nbf":{now},"exp":{},"jti":"j1","roles":["dev"],"typ":"access"{tail}}}"#,
        now + 900
    )
}

async fn get(gw: &Gateway, path: &str, token: &str) -> Response {
    gw.client().get(path).bearer(token).send_h1().await
}

/// alice's token issued `ahead` seconds from now (nbf now, so only `iat` is ahead).
fn dated_ahead(gw: &Gateway, ahead: i64) -> String {
    let mut claims = gw.claims("alice", &["dev"]);
    let now = now_secs();
    claims["iat"] = (now + ahead).into();
    claims["exp"] = (now + ahead + 900).into();
    gw.sign(&gw.header(), &claims)
}

#[tokio::test]
async fn a_token_issued_in_the_future_is_refused() {
    let (gw, _echo) = gateway().await;
    for ahead in [3600, 365 * 86400] {
        let token = dated_ahead(&gw, ahead);
        let resp = get(&gw, "/api/orders", &token).await;
        assert_invalid_token(&resp, "token issued in the future", &token);
    }
}

#[tokio::test]
async fn revoke_by_subject_covers_a_token_dated_ahead_within_the_leeway() {
    // leeway is 30s: a clock 25s ahead issued this one before the revocation.
    let (gw, _echo) = gateway().await;
    let ahead = dated_ahead(&gw, 25);
    let plain = gw.token("alice", &["dev"]);
    for token in [&ahead, &plain] {
        assert_eq!(get(&gw, "/api/orders", token).await.status, StatusCode::OK);
    }
    gw.revoke_cli(&["--sub", "alice"]);
    for token in [&plain, &ahead] {
        let resp = get(&gw, "/api/orders", token).await;
        assert_invalid_token(&resp, "token revoked", token);
    }
}

#[tokio::test]
async fn a_claim_written_twice_is_malformed_at_any_depth() {
    let (gw, _echo) = gateway().await;
    let once = sign_text(&gw, HEADER, &payload(r#","tenant":"acme""#));
    assert_eq!(get(&gw, "/acme/x", &once).await.status, StatusCode::OK);
    let tails = [
        r#","tenant":"evil","tenant":"acme""#,
        r#","tenant":"acme","org":{"id":1,"id":2}"#,
        r#","tenant":"acme","groups":[{"n":"a","n":"b"}]"#,
    ];
    for tail in tails {
        let token = sign_text(&gw, HEADER, &payload(tail));
        let resp = get(&gw, "/acme/x", &token).await;
        assert_invalid_token(&resp, "malformed token", &token);
    }
    let header = r#"{"alg":"EdDSA","typ":"JWT","kid":"main","x":1,"x":2}"#;
    let token = sign_text(&gw, header, &payload(r#","tenant":"acme""#));
    assert_invalid_token(
        &get(&gw, "/acme/x", &token).await,
        "malformed token",
        &token,
    );
}

#[tokio::test]
async fn a_role_holding_a_comma_never_reaches_the_upstream_as_two_roles() {
    let (gw, _echo) = gateway().await;
    let token = gw.token("alice", &["staff,admin", "dev", " admin"]);
    let resp = get(&gw, "/api/orders", &token).await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    assert_eq!(resp.echoed_header("x-auth-roles").as_deref(), Some("dev"));
    let admin = get(&gw, "/admin/x", &token).await;
    assert_eq!(
        admin.status,
        StatusCode::FORBIDDEN,
        "body: {}",
        admin.text()
    );
    // The token command refuses to mint one.
    let cfg = gw.config_arg();
    let args = [
        "token",
        "--config",
        &cfg,
        "--sub",
        "alice",
        "--role",
        "staff,admin",
    ];
    let out = run_cli(&args);
    assert_ne!(out.code, Some(0), "minted: {out:?}");
}

#[tokio::test]
async fn a_sub_the_user_header_cannot_carry_is_refused() {
    let (gw, _echo) = gateway().await;
    for sub in ["al\nice", " admin", "admin\u{7f}"] {
        let token = gw.token(sub, &["dev"]);
        let resp = get(&gw, "/api/orders", &token).await;
        assert_invalid_token(&resp, "malformed token", &token);
    }
    let cfg = gw.config_arg();
    let out = run_cli(&["token", "--config", &cfg, "--sub", "al\nice"]);
    assert_ne!(out.code, Some(0), "minted: {out:?}");
}

#[tokio::test]
async fn user_add_refuses_names_and_roles_the_headers_cannot_carry() {
    let up = MockUpstream::start(Mode::Record).await;
    let dir = TestDir::new();
    let config = Gateway::prepare(&dir, &AuthSetup::new(&up.url()).config());
    let config = config.to_str().expect("utf-8 temp path");
    let password = "correct horse battery";
    let role = |r: &str| vec![r.to_string()];
    for (name, roles) in [
        ("al\nice", role("dev")),
        (" alice", role("dev")),
        ("alice", role("staff,admin")),
        ("alice", role(" admin")),
    ] {
        let out = add_user(config, name, password, &roles);
        assert_ne!(out.code, Some(0), "{name:?} {roles:?} added: {out:?}");
    }
    let ok = add_user(config, "alice", password, &role("staff"));
    assert_eq!(ok.code, Some(0), "{ok:?}");
}

#[tokio::test]
async fn a_missing_claim_is_named_in_the_refusal() {
    let (gw, _echo) = gateway().await;
    for claim in ["jti", "exp", "typ"] {
        let mut claims = gw.claims("alice", &["dev"]);
        claims.as_object_mut().expect("object").remove(claim);
        let token = gw.sign(&gw.header(), &claims);
        let reason = format!("missing claim {claim}");
        assert_invalid_token(&get(&gw, "/api/orders", &token).await, &reason, &token);
    }
}
