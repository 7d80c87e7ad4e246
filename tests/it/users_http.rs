//! `[users] backend = "http"`: the password check is delegated to an existing backend;
//! its 200 becomes a token pair with its roles, its 401 the usual 401, its silence a 503.

use std::time::Duration;

use crate::common::*;
use http::StatusCode;
use serde_json::json;

const BOB_PW: &str = "bob's backend password";

async fn gateway(backend: &CredentialBackend) -> (Gateway, MockUpstream) {
    let up = MockUpstream::start(Mode::Record).await;
    let users = format!(
        "backend = \"http\"\nurl = \"{}\"\ntimeout = \"500ms\"\nhash_workers = 2\n",
        backend.url()
    );
    let gw = AuthSetup::new(&up.url())
        .users_section(&users)
        .start()
        .await;
    (gw, up)
}

#[tokio::test]
async fn login_through_the_backend_carries_its_roles() {
    let backend = CredentialBackend::start("bob", BOB_PW, &["ops"]).await;
    let (gw, up) = gateway(&backend).await;
    let pair = gw.login_ok("bob", BOB_PW).await;
    let claims = pair.access_claims();
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["roles"], json!(["ops"]));
    assert_eq!(
        backend.seen(),
        vec![json!({ "username": "bob", "password": BOB_PW })]
    );
    let api = gw.get_api(&pair.access).await;
    assert_eq!(api.status, StatusCode::OK, "body: {}", api.text());
    let roles = up.seen()[0].headers.get("x-auth-roles").cloned();
    assert_eq!(
        roles.as_ref().map(|v| v.as_bytes()),
        Some(b"ops".as_slice())
    );
    // ops is not admin.
    let admin = gw
        .client()
        .get("/admin/x")
        .bearer(&pair.access)
        .send_h1()
        .await;
    assert_eq!(admin.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn wrong_password_at_the_backend_is_the_usual_401() {
    let backend = CredentialBackend::start("bob", BOB_PW, &["ops"]).await;
    let (gw, _up) = gateway(&backend).await;
    assert_bad_credentials(&gw.login("bob", "not bob's password").await);
    assert_bad_credentials(&gw.login("nobody", "not bob's password").await);
}

#[tokio::test]
async fn refresh_keeps_the_roles_the_backend_gave() {
    let backend = CredentialBackend::start("bob", BOB_PW, &["ops", "dev"]).await;
    let (gw, _up) = gateway(&backend).await;
    let pair = gw.login_ok("bob", BOB_PW).await;
    let next = Pair::from_response(&gw.refresh(&pair.refresh).await);
    assert_eq!(next.access_claims()["roles"], json!(["ops", "dev"]));
    assert_eq!(next.access_claims()["sub"], "bob");
    assert_eq!(
        backend.seen().len(),
        1,
        "a refresh does not ask the backend"
    );
}

#[tokio::test]
async fn slow_backend_is_503_with_retry_after() {
    let backend = CredentialBackend::start("bob", BOB_PW, &["ops"]).await;
    let (gw, _up) = gateway(&backend).await;
    backend.slow_down(Duration::from_secs(3));
    let resp = gw.login("bob", BOB_PW).await;
    assert_eq!(
        resp.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "body: {}",
        resp.text()
    );
    assert!(
        resp.header("retry-after").is_some(),
        "503 without Retry-After"
    );
    assert_no_token_in(&resp, BOB_PW);
}

#[tokio::test]
async fn unreachable_backend_is_503() {
    let backend = CredentialBackend::start("bob", BOB_PW, &["ops"]).await;
    let (gw, _up) = gateway(&backend).await;
    drop(backend);
    let resp = gw.login("bob", BOB_PW).await;
    assert_eq!(
        resp.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "body: {}",
        resp.text()
    );
}

#[tokio::test]
async fn a_role_holding_a_comma_from_the_backend_is_left_out_of_the_token() {
    // The gateway says 403 on /admin; the upstream must not read "staff,admin" as admin.
    let backend = CredentialBackend::start("bob", BOB_PW, &["staff,admin", "ops"]).await;
    let (gw, up) = gateway(&backend).await;
    let pair = gw.login_ok("bob", BOB_PW).await;
    assert_eq!(pair.access_claims()["roles"], json!(["ops"]));
    let api = gw.get_api(&pair.access).await;
    assert_eq!(api.status, StatusCode::OK, "body: {}", api.text());
    let roles = up.seen()[0].headers.get("x-auth-roles").cloned();
    assert_eq!(
        roles.as_ref().map(|v| v.as_bytes()),
        Some(b"ops".as_slice())
    );
    let admin = gw
        .client()
        .get("/admin/x")
        .bearer(&pair.access)
        .send_h1()
        .await;
    assert_eq!(admin.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_sub_from_the_backend_the_user_header_cannot_carry_is_503() {
    let backend = CredentialBackend::start("bob\n", BOB_PW, &["ops"]).await;
    let (gw, up) = gateway(&backend).await;
    let resp = gw.login("bob", BOB_PW).await;
    assert_eq!(
        resp.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "body: {}",
        resp.text()
    );
    assert!(up.seen().is_empty());
}
