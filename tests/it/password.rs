//! POST /auth/password: a signed-in user changes their own password. The old password stops
//! working and the new one works at once; every token issued before the change is revoked
//! (the caller's own session gets a fresh pair in the answer); a wrong current password is
//! the login's 401 and counts toward the login throttle; cookie mode needs the CSRF header;
//! the http user store answers 501.

use http::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

const OLD_PW: &str = "correct horse battery";
const NEW_PW: &str = "a brand new passphrase";

async fn gateway(setup: impl FnOnce(AuthSetup) -> AuthSetup) -> (Gateway, Upstream) {
    let up = Upstream::echo().await;
    let gw = setup(AuthSetup::new(&up.url()).user("alice", OLD_PW, &["user"]))
        .start()
        .await;
    (gw, up)
}

fn change_body(current: &str, new: &str) -> String {
    json!({ "current_password": current, "new_password": new }).to_string()
}

/// POST /auth/password with `access` as the bearer token.
async fn change(gw: &Gateway, access: &str, current: &str, new: &str) -> Response {
    gw.client()
        .post("/auth/password")
        .bearer(access)
        .header("content-type", "application/json")
        .body(change_body(current, new))
        .send_h1()
        .await
}

fn assert_error(resp: &Response, status: StatusCode, error: &str) {
    assert_eq!(resp.status, status, "body: {}", resp.text());
    assert_eq!(resp.json()["error"], error, "body: {}", resp.text());
}

#[tokio::test]
async fn the_new_password_replaces_the_old_and_every_earlier_token_is_revoked() {
    let (gw, _up) = gateway(|s| s).await;
    let this_session = gw.login_ok("alice", OLD_PW).await;
    let other_session = gw.login_ok("alice", OLD_PW).await;

    let resp = change(&gw, &this_session.access, OLD_PW, NEW_PW).await;
    let fresh = Pair::from_response(&resp);
    assert_eq!(fresh.access_claims()["sub"], "alice");
    assert_eq!(fresh.access_claims()["roles"], json!(["user"]));
    assert_ne!(
        fresh.access_claims()["fam"],
        this_session.access_claims()["fam"],
        "the fresh pair starts a new family"
    );

    assert_bad_credentials(&gw.login("alice", OLD_PW).await);
    let relogin = gw.login_ok("alice", NEW_PW).await;
    for (what, access) in [
        ("fresh pair", &fresh.access),
        ("new login", &relogin.access),
    ] {
        let api = gw.get_api(access).await;
        assert_eq!(api.status, StatusCode::OK, "{what}: {}", api.text());
    }
    for (what, pair) in [("this", &this_session), ("other", &other_session)] {
        assert_invalid_token(
            &gw.get_api(&pair.access).await,
            "token revoked",
            &pair.access,
        );
        let refreshed = gw.refresh(&pair.refresh).await;
        assert_eq!(
            refreshed.status,
            StatusCode::UNAUTHORIZED,
            "{what} session refresh: {}",
            refreshed.text()
        );
    }
    let next = gw.refresh(&fresh.refresh).await;
    assert_eq!(next.status, StatusCode::OK, "body: {}", next.text());
    let changed = gw.audit_events_at_least("password_changed", 1).await;
    assert_eq!(changed.len(), 1, "{}", gw.log());
}

#[tokio::test]
async fn a_wrong_current_password_is_a_401_throttled_like_a_login_and_changes_nothing() {
    let (gw, _up) = gateway(|s| s.login("max_failures_per_user = 2\nwindow = \"1m\"")).await;
    let pair = gw.login_ok("alice", OLD_PW).await;
    for _ in 0..2 {
        assert_bad_credentials(&change(&gw, &pair.access, "not the password", NEW_PW).await);
    }
    let throttled = change(&gw, &pair.access, OLD_PW, NEW_PW).await;
    assert_error(
        &throttled,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    );
    assert!(throttled.header("retry-after").is_some());
    // One counter with the login: it is throttled too, and nothing changed or was revoked.
    assert_eq!(
        gw.login("alice", OLD_PW).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(gw.get_api(&pair.access).await.status, StatusCode::OK);
    let failed = gw.audit_events_at_least("password_change_failed", 2).await;
    assert_eq!(failed.len(), 2);
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_changes() {
    let (gw, _up) = gateway(|s| s).await;
    let pair = gw.login_ok("alice", OLD_PW).await;
    let anonymous = gw
        .client()
        .post("/auth/password")
        .header("content-type", "application/json")
        .body(change_body(OLD_PW, NEW_PW))
        .send_h1()
        .await;
    assert_error(&anonymous, StatusCode::UNAUTHORIZED, "missing_token");
    let weak = change(&gw, &pair.access, OLD_PW, "short").await;
    assert_error(&weak, StatusCode::BAD_REQUEST, "invalid_request");
    let refresh_token = change(&gw, &pair.refresh, OLD_PW, NEW_PW).await;
    assert_invalid_token(&refresh_token, "wrong token type", &pair.refresh);
    gw.logout(&pair.access, None).await;
    let logged_out = change(&gw, &pair.access, OLD_PW, NEW_PW).await;
    assert_error(&logged_out, StatusCode::UNAUTHORIZED, "invalid_token");
    // The old password still works: nothing was changed.
    gw.login_ok("alice", OLD_PW).await;
}

#[tokio::test]
async fn by_cookie_the_csrf_header_is_needed_and_the_fresh_pair_comes_as_cookies() {
    let (gw, _up) = gateway(|s| s.extra("[cookies]\nenabled = true\n")).await;
    let login = gw.login("alice", OLD_PW).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    let cookie = |name: &str| -> String {
        login
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.split(';').next())
            .unwrap_or_else(|| panic!("no {name} cookie"))
            .to_string()
    };
    let (access, csrf) = (
        cookie("__Host-portcullis-access"),
        cookie("__Host-portcullis-csrf"),
    );
    let cookies = format!("__Host-portcullis-access={access}; __Host-portcullis-csrf={csrf}");
    let post = |with_csrf: bool| {
        let mut req = gw
            .client()
            .post("/auth/password")
            .header("cookie", &cookies)
            .header("origin", &format!("https://{}", gw.authority()))
            .header("content-type", "application/json")
            .body(change_body(OLD_PW, NEW_PW));
        if with_csrf {
            req = req.header("x-csrf-token", &csrf);
        }
        req.send_h1()
    };
    assert_error(&post(false).await, StatusCode::FORBIDDEN, "access_denied");
    let done = post(true).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let body: Value = done.json();
    assert!(
        body.get("access_token").is_none(),
        "a page's script must not read tokens: {body}"
    );
    let set: Vec<_> = done.headers.get_all("set-cookie").iter().collect();
    assert_eq!(set.len(), 3, "{set:?}");
    gw.login_ok("alice", NEW_PW).await;
}

#[tokio::test]
async fn the_http_user_store_answers_501() {
    let backend = CredentialBackend::start("bob", "bob's backend password", &[]).await;
    let up = Upstream::echo().await;
    let users = format!(
        "backend = \"http\"\nurl = \"{}\"\nhash_workers = 2\n",
        backend.url()
    );
    let gw = AuthSetup::new(&up.url())
        .users_section(&users)
        .start()
        .await;
    let pair = gw.login_ok("bob", "bob's backend password").await;
    let resp = change(&gw, &pair.access, "bob's backend password", NEW_PW).await;
    assert_error(&resp, StatusCode::NOT_IMPLEMENTED, "not_supported");
    assert_eq!(
        backend.seen().len(),
        1,
        "only the login reached the backend"
    );
}

#[tokio::test]
async fn on_the_redis_store_the_change_is_seen_by_every_instance() {
    let redis = Redis::start().await;
    let up = Upstream::echo().await;
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\n",
        redis.url()
    );
    let start = || {
        AuthSetup::new(&up.url())
            .users_section("backend = \"redis\"\nhash_workers = 2\n")
            .extra(&store)
    };
    let a = start().user("alice", OLD_PW, &["user"]).start().await;
    let b = start().start().await;
    let on_b = b.login_ok("alice", OLD_PW).await;
    let resp = change(
        &a,
        &a.login_ok("alice", OLD_PW).await.access,
        OLD_PW,
        NEW_PW,
    )
    .await;
    Pair::from_response(&resp);
    assert_bad_credentials(&b.login("alice", OLD_PW).await);
    b.login_ok("alice", NEW_PW).await;
    // B's session, issued before the change, is revoked on B too (the shared revocations).
    eventually(DEADLINE, || async {
        match b.get_api(&on_b.access).await.status {
            StatusCode::UNAUTHORIZED => Ok(()),
            other => Err(format!("{other}")),
        }
    })
    .await
    .expect("B's old session revoked");
}
