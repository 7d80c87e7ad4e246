//! The password page over sockets: a signed-in person changes their password from a form;
//! the old password and every other session stop working, this browser stays signed in,
//! and only this browser's own page can do it.

use http::StatusCode;

use crate::common::*;

const OLD: &str = "correct horse battery";
const NEW: &str = "a much longer new passphrase";
const ACCESS: &str = "__Host-portcullis-access";
const CSRF: &str = "__Host-portcullis-csrf";
const SIGN_IN: &str = "[cookies]\nenabled = true\n\n[sign_in]\nenabled = true\n";

/// A browser's cookies after a JSON login in cookie mode.
struct Browser {
    cookies: String,
    csrf: String,
    access: String,
}

fn set_cookie(resp: &Response, name: &str) -> Option<String> {
    resp.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

async fn sign_in(gw: &Gateway, password: &str) -> Response {
    let body = serde_json::json!({ "username": "alice", "password": password }).to_string();
    gw.client()
        .post("/auth/login")
        .header("content-type", "application/json")
        .body(body)
        .send_h1()
        .await
}

async fn browser(gw: &Gateway) -> Browser {
    let resp = sign_in(gw, OLD).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    let access = set_cookie(&resp, ACCESS).expect("access cookie");
    let csrf = set_cookie(&resp, CSRF).expect("csrf cookie");
    Browser {
        cookies: format!("{ACCESS}={access}; {CSRF}={csrf}"),
        csrf,
        access,
    }
}

async fn gateway() -> (Gateway, Upstream) {
    let echo = Upstream::echo().await;
    let gw = AuthSetup::new(&echo.url())
        .user("alice", OLD, &["reader"])
        .extra(SIGN_IN)
        .start()
        .await;
    (gw, echo)
}

fn submit(gw: &Gateway, browser: &Browser, fields: &str) -> RequestBuilder {
    gw.client()
        .post("/auth/change-password")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .header("cookie", &browser.cookies)
        .body(fields.to_string())
}

fn fields(csrf: &str, current: &str, new: &str, confirm: &str) -> String {
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    format!(
        "csrf={}&password={}&new_password={}&confirm={}",
        enc(csrf),
        enc(current),
        enc(new),
        enc(confirm)
    )
}

async fn api_status(gw: &Gateway, access: &str) -> StatusCode {
    gw.client()
        .get("/api/x")
        .bearer(access)
        .send_h1()
        .await
        .status
}

#[tokio::test]
async fn the_page_changes_the_password_signs_out_other_sessions_and_keeps_this_one() {
    let (gw, _echo) = gateway().await;
    let this = browser(&gw).await;
    let other = browser(&gw).await;

    let shown = gw
        .client()
        .get("/auth/change-password")
        .header("sec-fetch-mode", "navigate")
        .header("cookie", &this.cookies)
        .send_h1()
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text());
    let html = shown.text();
    assert!(html.contains("autocomplete=\"new-password\""), "{html}");
    assert!(html.contains(&format!("value=\"{}\"", this.csrf)), "{html}");
    assert!(
        shown.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("form-action 'self'"),
        "{:?}",
        shown.headers
    );

    let done = submit(&gw, &this, &fields(&this.csrf, OLD, NEW, NEW))
        .send_h1()
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert!(
        done.text().contains("Your password was changed"),
        "{}",
        done.text()
    );
    let renewed = set_cookie(&done, ACCESS).expect("a new access cookie");
    assert_eq!(api_status(&gw, &renewed).await, StatusCode::OK);
    assert_eq!(claims_of(&renewed)["amr"], serde_json::json!(["pwd"]));

    assert_eq!(
        api_status(&gw, &other.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api_status(&gw, &this.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(sign_in(&gw, OLD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in(&gw, NEW).await.status, StatusCode::OK);
}

#[tokio::test]
async fn wrong_current_password_mismatch_weak_password_and_foreign_forms_change_nothing() {
    let (gw, _echo) = gateway().await;
    let this = browser(&gw).await;
    let cases = [
        (
            fields(&this.csrf, "wrong password!!", NEW, NEW),
            StatusCode::UNAUTHORIZED,
            "current password is wrong",
        ),
        (
            fields(&this.csrf, OLD, NEW, "something else entirely"),
            StatusCode::BAD_REQUEST,
            "differ",
        ),
        (
            fields(&this.csrf, OLD, "short", "short"),
            StatusCode::BAD_REQUEST,
            "at least 12 characters",
        ),
        (
            fields("0123456789abcdef0123456789abcdef", OLD, NEW, NEW),
            StatusCode::FORBIDDEN,
            "expired",
        ),
    ];
    for (body, status, says) in cases {
        let resp = submit(&gw, &this, &body).send_h1().await;
        assert_eq!(resp.status, status, "{body}: {}", resp.text());
        assert!(resp.text().contains(says), "{body}: {}", resp.text());
        assert!(
            set_cookie(&resp, ACCESS).is_none(),
            "no new session: {body}"
        );
    }
    let cross_site = submit(&gw, &this, &fields(&this.csrf, OLD, NEW, NEW))
        .header("origin", "https://evil.example")
        .send_h1()
        .await;
    assert_eq!(
        cross_site.status,
        StatusCode::FORBIDDEN,
        "{}",
        cross_site.text()
    );
    let as_json = gw
        .client()
        .post("/auth/change-password")
        .header("content-type", "application/json")
        .header("cookie", &this.cookies)
        .body("{}")
        .send_h1()
        .await;
    assert_eq!(as_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    assert_eq!(
        api_status(&gw, &this.access).await,
        StatusCode::OK,
        "still signed in"
    );
    assert_eq!(
        sign_in(&gw, OLD).await.status,
        StatusCode::OK,
        "password unchanged"
    );
}

#[tokio::test]
async fn without_a_session_the_page_sends_the_browser_to_sign_in_and_back() {
    let (gw, _echo) = gateway().await;
    let resp = gw
        .client()
        .get("/auth/change-password")
        .header("sec-fetch-mode", "navigate")
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::FOUND);
    let location = resp.headers["location"].to_str().unwrap();
    assert!(
        location.starts_with("/auth/sign-in?rd=https%3A%2F%2F"),
        "{location}"
    );
    assert!(
        location.ends_with("%2Fauth%2Fchange-password"),
        "{location}"
    );
}
