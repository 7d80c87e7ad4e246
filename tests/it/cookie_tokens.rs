//! Cookie mode keeps the tokens out of reach of page script: a login or refresh answer a
//! browser page can read says when the session expires, never what its tokens are.

use crate::common::*;

const ACCESS: &str = "__Host-portcullis-access";
const REFRESH: &str = "__Secure-portcullis-refresh";
const CSRF: &str = "__Host-portcullis-csrf";
const PASSWORD: &str = "correct horse battery";

async fn cookie_gateway() -> (Gateway, Upstream) {
    let echo = Upstream::echo().await;
    let gw = AuthSetup::new(&echo.url())
        .user("alice", PASSWORD, &["reader"])
        .extra("[cookies]\nenabled = true\n")
        .start()
        .await;
    (gw, echo)
}

/// The value of the Set-Cookie for `name`.
fn set_cookie(resp: &Response, name: &str) -> String {
    let prefix = format!("{name}=");
    resp.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&prefix))
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no Set-Cookie {name}"))
        .to_string()
}

/// A 200 whose body says when the session expires and holds none of `tokens`.
fn assert_body_without_tokens(resp: &Response, tokens: &[&str]) {
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json();
    assert!(body.get("access_token").is_none(), "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["expires_in"], 900, "{body}");
    assert_eq!(body["refresh_expires_in"], 1_209_600, "{body}");
    for token in tokens {
        assert!(!resp.text().contains(token), "a token in the body: {body}");
    }
}

/// What a page's `fetch` sends: the browser adds `Origin` and `Sec-Fetch-*` itself.
fn browser_login(gw: &Gateway) -> RequestBuilder {
    let body = serde_json::json!({ "username": "alice", "password": PASSWORD });
    gw.client()
        .post("/auth/login")
        .header("content-type", "application/json")
        .header("origin", "https://localhost")
        .header("sec-fetch-site", "same-origin")
        .header("sec-fetch-mode", "cors")
        .body(body.to_string())
}

#[tokio::test]
async fn cookie_mode_keeps_tokens_out_of_a_browser_pages_reach() {
    let (gw, _echo) = cookie_gateway().await;
    let login = browser_login(&gw).send_h1().await;
    let (access, refresh, csrf) = (
        set_cookie(&login, ACCESS),
        set_cookie(&login, REFRESH),
        set_cookie(&login, CSRF),
    );
    assert_body_without_tokens(&login, &[&access, &refresh]);
    // What an XSS would do: refresh by cookie, with the CSRF value it can read.
    let cookies = format!("{ACCESS}={access}; {CSRF}={csrf}; {REFRESH}={refresh}");
    let resp = gw
        .client()
        .post("/auth/refresh")
        .header("cookie", &cookies)
        .header("x-csrf-token", &csrf)
        .send_h1()
        .await;
    let next = set_cookie(&resp, REFRESH);
    assert_body_without_tokens(&resp, &[&set_cookie(&resp, ACCESS), &next]);
    // The cookies themselves work.
    let me = gw
        .client()
        .get("/api/me")
        .header("cookie", &format!("{ACCESS}={}", set_cookie(&resp, ACCESS)))
        .send_h1()
        .await;
    assert_eq!(me.status, 200, "{}", me.text());
    // A JSON-body refresh from a page gets cookies only, too.
    let body = serde_json::json!({ "refresh_token": next }).to_string();
    let resp = gw
        .client()
        .post("/auth/refresh")
        .header("content-type", "application/json")
        .header("origin", "https://localhost")
        .body(body)
        .send_h1()
        .await;
    assert_body_without_tokens(&resp, &[&set_cookie(&resp, REFRESH)]);
}

#[tokio::test]
async fn a_client_that_is_not_a_browser_still_gets_the_pair_in_the_body() {
    let (gw, _echo) = cookie_gateway().await;
    // No Origin, no Sec-Fetch-*: a page's script cannot send a request like this.
    let pair = gw.login_ok("alice", PASSWORD).await;
    let next = Pair::from_response(&gw.refresh(&pair.refresh).await);
    assert_eq!(gw.get_api(&next.access).await.status, 200);
}
