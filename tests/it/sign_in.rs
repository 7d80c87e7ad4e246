//! The sign-in pages over sockets: who is redirected and who keeps the 401, the form and its
//! login-CSRF defences, where `rd` may lead, renewal on the way to a page, and bad forms.

use http::{StatusCode, Version};

use crate::common::*;

const PASSWORD: &str = "correct horse battery";
const ACCESS: &str = "__Host-portcullis-access";
const REFRESH: &str = "__Secure-portcullis-refresh";
const CSRF: &str = "__Host-portcullis-csrf";
const FORM: &str = "__Host-portcullis-sign-in";
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

const SIGN_IN: &str = "[cookies]\nenabled = true\n\n[sign_in]\nenabled = true\nallowed_redirect_hosts = [\"app.example.com\"]\n";

async fn gateway(login: &str) -> (Gateway, Upstream) {
    let echo = Upstream::echo().await;
    let mut setup = AuthSetup::new(&echo.url())
        .user("alice", PASSWORD, &["reader"])
        .extra(SIGN_IN)
        .routes("[[routes]]\npath = \"/machine/**\"\nupstream = \"api\"\nsign_in = false\n");
    if !login.is_empty() {
        setup = setup.login(login);
    }
    (setup.start().await, echo)
}

/// The value a response sets for cookie `name` (None if it does not set it).
fn set_cookie(resp: &Response, name: &str) -> Option<String> {
    resp.headers.get_all("set-cookie").iter().find_map(|v| {
        let text = v.to_str().ok()?;
        let (first, _) = text.split_once(';')?;
        let (n, value) = first.split_once('=')?;
        (n == name).then(|| value.to_string())
    })
}

/// A navigation as Chromium sends it.
fn navigate(gw: &Gateway, method: &str, path: &str) -> RequestBuilder {
    gw.client()
        .request(method, path)
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-site", "none")
        .header("accept", BROWSER_ACCEPT)
}

/// The sign-in form's anti-CSRF value and its cookie, as a browser gets them.
async fn open_form(gw: &Gateway) -> String {
    let page = navigate(gw, "GET", "/auth/sign-in?rd=%2Fapi%2Fx")
        .send_h1()
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    set_cookie(&page, FORM).expect("the form sets its cookie")
}

fn form_body(username: &str, password: &str, rd: &str, csrf: &str) -> String {
    let enc = |s: &str| -> String { form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    format!(
        "username={}&password={}&rd={}&csrf={}",
        enc(username),
        enc(password),
        enc(rd),
        enc(csrf)
    )
}

fn post_form(gw: &Gateway, csrf_cookie: &str, body: String) -> RequestBuilder {
    post_form_with(gw, csrf_cookie, body, &[])
}

/// The form's POST as Chromium sends it, with some of its headers replaced.
fn post_form_with(
    gw: &Gateway,
    csrf_cookie: &str,
    body: String,
    replaced: &[(&str, &str)],
) -> RequestBuilder {
    let origin = format!("https://{}", gw.authority());
    let cookie = format!("{FORM}={csrf_cookie}");
    let defaults = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("sec-fetch-site", "same-origin"),
        ("sec-fetch-mode", "navigate"),
        ("origin", origin.as_str()),
        ("cookie", cookie.as_str()),
    ];
    let mut request = gw.client().post("/auth/sign-in").body(body);
    for (name, value) in defaults {
        let value = replaced
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(value, |(_, v)| *v);
        request = request.header(name, value);
    }
    request
}

#[tokio::test]
async fn a_navigation_without_a_session_is_redirected_and_every_other_request_keeps_its_401() {
    let (gw, _echo) = gateway("").await;
    let expected = format!(
        "/auth/sign-in?rd=https%3A%2F%2F{}%2Fapi%2Fx%3Fy%3D1",
        gw.authority().replace(':', "%3A")
    );
    for version in [Version::HTTP_11, Version::HTTP_2] {
        for method in ["GET", "HEAD"] {
            let resp = navigate(&gw, method, "/api/x?y=1").send(version).await;
            assert_eq!(resp.status, StatusCode::FOUND, "{method} {version:?}");
            assert_eq!(resp.header("location").as_deref(), Some(expected.as_str()));
            assert_eq!(resp.header("cache-control").as_deref(), Some("no-store"));
        }
        // A browser without fetch metadata: Accept decides.
        let old = gw
            .client()
            .get("/api/x?y=1")
            .header("accept", BROWSER_ACCEPT);
        assert_eq!(old.send(version).await.status, StatusCode::FOUND);
    }
    let api_calls = [
        gw.client()
            .get("/api/x")
            .header("accept", "application/json"),
        gw.client().get("/api/x"),
        gw.client()
            .get("/api/x")
            .header("sec-fetch-mode", "cors")
            .header("accept", BROWSER_ACCEPT),
        navigate(&gw, "GET", "/api/x").bearer("not.a.token"),
        navigate(&gw, "POST", "/api/x"),
        navigate(&gw, "GET", "/machine/x"),
    ];
    for call in api_calls {
        let resp = call.send_h1().await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{}", resp.text());
        assert!(resp.header("www-authenticate").is_some());
        assert!(resp.json()["error"].is_string());
    }
    // Public routes and a signed-in user who lacks a role are not sent to sign in.
    assert_eq!(
        navigate(&gw, "GET", "/public/x").send_h1().await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_form_signs_in_and_sends_the_browser_back_with_a_session() {
    let (gw, _echo) = gateway("").await;
    let page = navigate(&gw, "GET", "/auth/sign-in?rd=%2Fapi%2Fx")
        .send_h1()
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.header("content-security-policy").unwrap_or_default();
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self' https://app.example.com",
        "style-src 'nonce-",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert_eq!(page.header("x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        page.header("referrer-policy").as_deref(),
        Some("same-origin")
    );
    assert!(page
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/html"));
    let html = page.text();
    assert!(
        html.contains("<label for=\"username\">") && html.contains("<label for=\"password\">"),
        "{html}"
    );
    assert!(
        !html.contains("<script") && !html.contains("src="),
        "{html}"
    );
    let csrf = set_cookie(&page, FORM).expect("form cookie");
    assert!(html.contains(&csrf), "the form carries the value");

    let resp = post_form(
        &gw,
        &csrf,
        form_body("alice", PASSWORD, "/api/x?y=1", &csrf),
    )
    .send_h1()
    .await;
    assert_eq!(resp.status, StatusCode::SEE_OTHER, "{}", resp.text());
    let home = format!("https://{}", gw.authority());
    assert_eq!(resp.header("location"), Some(format!("{home}/api/x?y=1")));
    assert_eq!(
        set_cookie(&resp, FORM).as_deref(),
        Some(""),
        "the form cookie is spent"
    );
    let access = set_cookie(&resp, ACCESS).expect("access cookie");
    let session_csrf = set_cookie(&resp, CSRF).expect("csrf cookie");
    assert!(set_cookie(&resp, REFRESH).is_some());
    let back = navigate(&gw, "GET", "/api/x?y=1")
        .header(
            "cookie",
            &format!("{ACCESS}={access}; {CSRF}={session_csrf}"),
        )
        .send_h2()
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text());
    assert_eq!(back.echoed_header("x-auth-user").as_deref(), Some("alice"));
}

#[tokio::test]
async fn login_csrf_is_refused_however_it_is_tried() {
    let (gw, _echo) = gateway("").await;
    let csrf = open_form(&gw).await;
    let good = || form_body("alice", PASSWORD, "/api/x", &csrf);
    let foreign = "https://evil.example";
    let attempts = [
        ("no form cookie", post_form(&gw, "", good())),
        ("another cookie", post_form(&gw, &"0".repeat(32), good())),
        (
            "no form value",
            post_form(&gw, &csrf, form_body("alice", PASSWORD, "/api/x", "")),
        ),
        (
            "cross-site",
            post_form(&gw, &csrf, good()).header("sec-fetch-site", "cross-site"),
        ),
        (
            "same-site",
            post_form(&gw, &csrf, good()).header("sec-fetch-site", "same-site"),
        ),
        (
            "foreign origin",
            post_form(&gw, &csrf, good()).header("origin", foreign),
        ),
    ];
    for (what, attempt) in attempts {
        let resp = attempt.send_h1().await;
        assert_eq!(
            resp.status,
            StatusCode::FORBIDDEN,
            "{what}: {}",
            resp.text()
        );
        assert!(set_cookie(&resp, ACCESS).is_none(), "{what}");
    }
    // A no-referrer page sends `Origin: null`: the form value alone decides.
    let null_origin = gw
        .client()
        .post("/auth/sign-in")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "null")
        .header("cookie", &format!("{FORM}={csrf}"))
        .body(good());
    assert_eq!(null_origin.send_h1().await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn rd_never_leads_off_site() {
    let (gw, _echo) = gateway("").await;
    let own = gw.authority();
    let followed = [
        ("/api/page", format!("https://{own}/api/page")),
        (
            "https://app.example.com/x",
            "https://app.example.com/x".to_string(),
        ),
    ];
    let refused = [
        "//evil.example",
        "/\\evil.example",
        "https:evil.example",
        "https://good@evil.example",
        "https://app.example.com@evil.example/",
        "javascript:alert(1)",
        "data:text/html,x",
        "/%2F%2Fevil.example",
        "/%252F%252Fevil.example",
        "/%5Cevil.example",
        "/x%0d%0aSet-Cookie:%20a=b",
        "/x%00",
        "https://evil.example/",
        "https://xn--app-xyz.example.com/",
        "https://аpp.example.com/",
        "http://app.example.com/",
        "/\t/evil.example",
    ];
    // Without a session, GET /auth/refresh passes a valid rd on to the sign-in page and
    // drops an invalid one: the validation, seen from outside, one request each.
    for (rd, target) in &followed {
        let location = renewal_location(&gw, rd).await;
        let encoded: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
        assert_eq!(location, format!("/auth/sign-in?rd={encoded}"), "{rd}");
    }
    for rd in refused {
        assert_eq!(renewal_location(&gw, rd).await, "/auth/sign-in", "{rd:?}");
    }
    // And the form's own redirect, for the two cases a sign-in costs an argon2 hash on.
    for (rd, target) in [
        ("//evil.example", format!("https://{own}/")),
        ("/api/page", format!("https://{own}/api/page")),
    ] {
        let csrf = open_form(&gw).await;
        let resp = post_form(&gw, &csrf, form_body("alice", PASSWORD, rd, &csrf))
            .send_h1()
            .await;
        assert_eq!(resp.status, StatusCode::SEE_OTHER);
        assert_eq!(resp.header("location"), Some(target));
    }
}

async fn renewal_location(gw: &Gateway, rd: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    let resp = navigate(gw, "GET", &format!("/auth/refresh?rd={encoded}"))
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::FOUND, "{rd}: {}", resp.text());
    resp.header("location").expect("a Location")
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_page_and_throttling_says_when() {
    let (gw, _echo) =
        gateway("max_failures_per_user = 2\nmax_failures_per_ip = 100\nwindow = \"15m\"").await;
    let csrf = open_form(&gw).await;
    for (user, password) in [("nobody", "x"), ("alice", "wrong")] {
        let resp = post_form(&gw, &csrf, form_body(user, password, "/api/x", &csrf))
            .send_h1()
            .await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{user}");
        assert!(
            resp.text().contains("Wrong username or password."),
            "{}",
            resp.text()
        );
        assert!(set_cookie(&resp, ACCESS).is_none());
    }
    let resp = post_form(&gw, &csrf, form_body("alice", "wrong", "/api/x", &csrf))
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    let throttled = post_form(&gw, &csrf, form_body("alice", PASSWORD, "/api/x", &csrf))
        .send_h1()
        .await;
    assert_eq!(
        throttled.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        throttled.text()
    );
    let retry = throttled.header("retry-after").expect("Retry-After");
    assert!(
        throttled
            .text()
            .contains(&format!("Try again in {retry} seconds")),
        "{}",
        throttled.text()
    );
}

#[tokio::test]
async fn an_expired_access_cookie_is_renewed_on_the_way_and_a_revoked_session_goes_to_sign_in() {
    let (gw, _echo) = gateway("").await;
    let csrf = open_form(&gw).await;
    let signed_in = post_form(&gw, &csrf, form_body("alice", PASSWORD, "/api/x", &csrf))
        .send_h1()
        .await;
    let refresh = set_cookie(&signed_in, REFRESH).expect("refresh cookie");
    let session_csrf = set_cookie(&signed_in, CSRF).expect("csrf cookie");
    // The browser dropped the expired access cookie; the CSRF cookie says a session may live.
    let resp = navigate(&gw, "GET", "/api/x")
        .header("cookie", &format!("{CSRF}={session_csrf}"))
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::FOUND);
    let renew = resp.header("location").expect("Location");
    assert!(renew.starts_with("/auth/refresh?rd="), "{renew}");
    let both = format!("{CSRF}={session_csrf}; {REFRESH}={refresh}");
    let renewed = navigate(&gw, "GET", &renew)
        .header("cookie", &both)
        .send_h1()
        .await;
    assert_eq!(renewed.status, StatusCode::FOUND, "{}", renewed.text());
    assert_eq!(
        renewed.header("location"),
        Some(format!("https://{}/api/x", gw.authority()))
    );
    let access = set_cookie(&renewed, ACCESS).expect("a new access cookie");
    let next_csrf = set_cookie(&renewed, CSRF).expect("a new csrf cookie");
    let page = navigate(&gw, "GET", "/api/x")
        .header("cookie", &format!("{ACCESS}={access}; {CSRF}={next_csrf}"))
        .send_h1()
        .await;
    assert_eq!(page.echoed_header("x-auth-user").as_deref(), Some("alice"));

    // Signed out elsewhere: the family is revoked, renewal fails, the cookies are cleared.
    let logout = gw
        .client()
        .post("/auth/logout")
        .header("cookie", &format!("{ACCESS}={access}; {CSRF}={next_csrf}"))
        .header("x-csrf-token", &next_csrf)
        .send_h1()
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.text());
    let stale = navigate(&gw, "GET", "/api/x")
        .header("cookie", &format!("{ACCESS}={access}; {CSRF}={next_csrf}"))
        .send_h1()
        .await;
    assert_eq!(stale.status, StatusCode::FOUND);
    let renew = stale.header("location").expect("Location");
    let new_refresh = set_cookie(&renewed, REFRESH).expect("refresh");
    let failed = navigate(&gw, "GET", &renew)
        .header(
            "cookie",
            &format!("{CSRF}={next_csrf}; {REFRESH}={new_refresh}"),
        )
        .send_h1()
        .await;
    assert_eq!(failed.status, StatusCode::FOUND);
    assert!(failed
        .header("location")
        .unwrap_or_default()
        .starts_with("/auth/sign-in?rd="));
    assert_eq!(
        set_cookie(&failed, CSRF).as_deref(),
        Some(""),
        "stale cookies cleared"
    );
}

#[tokio::test]
async fn malformed_or_huge_forms_get_a_clear_page() {
    let (gw, _echo) = gateway("").await;
    let csrf = open_form(&gw).await;
    let cases = [
        (
            "huge",
            post_form(&gw, &csrf, format!("username={}", "a".repeat(20_000))),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "json",
            post_form_with(
                &gw,
                &csrf,
                "{}".into(),
                &[("content-type", "application/json")],
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "two content types",
            post_form(&gw, &csrf, "{}".into()).header("content-type", "application/json"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "twice",
            post_form(&gw, &csrf, format!("csrf={csrf}&csrf={csrf}&username=a")),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (what, request, status) in cases {
        let resp = request.send_h1().await;
        assert_eq!(resp.status, status, "{what}: {}", resp.text());
        assert!(
            resp.header("content-type")
                .unwrap_or_default()
                .starts_with("text/html"),
            "{what}"
        );
        assert!(resp.header("content-security-policy").is_some(), "{what}");
    }
    let not_utf8 = post_form(&gw, &csrf, String::new()).body(&b"username=\xff\xfe"[..]);
    assert_eq!(not_utf8.send_h1().await.status, StatusCode::BAD_REQUEST);
    let put = gw.client().request("PUT", "/auth/sign-in").send_h1().await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn sign_in_without_cookie_mode_or_with_a_bad_host_is_a_config_error() {
    let echo = Upstream::echo().await;
    let dir = TestDir::new();
    let cfg = GatewayConfig::standard(&echo.url()).extra(
        "[sign_in]\nenabled = true\nallowed_redirect_hosts = [\"https://app.example.com\"]\n",
    );
    let config = Gateway::prepare(&dir, &cfg);
    let out = run_cli_in(
        dir.path(),
        &["check", "--config", config.to_str().expect("utf-8")],
    );
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("needs [cookies] enabled = true"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("invalid redirect host \"https://app.example.com\""),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("gateway.toml:"), "{}", out.stderr);
}

/// Signs alice in through the form; the session's access and CSRF cookie values.
async fn signed_in(gw: &Gateway) -> (String, String) {
    let csrf = open_form(gw).await;
    let resp = post_form(gw, &csrf, form_body("alice", PASSWORD, "/api/x", &csrf))
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::SEE_OTHER, "{}", resp.text());
    let access = set_cookie(&resp, ACCESS).expect("access cookie");
    (access, set_cookie(&resp, CSRF).expect("csrf cookie"))
}

fn sign_out_post(gw: &Gateway, cookies: &str, csrf_field: &str) -> RequestBuilder {
    gw.client()
        .post("/auth/sign-out")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .header("cookie", cookies)
        .body(format!("csrf={csrf_field}"))
}

#[tokio::test]
async fn sign_out_asks_first_then_ends_the_whole_session_and_only_from_its_own_page() {
    let (gw, _echo) = gateway("").await;
    let nobody = navigate(&gw, "GET", "/auth/sign-out").send_h1().await;
    assert_eq!(nobody.status, StatusCode::OK);
    assert!(nobody.text().contains("You are not signed in."));

    let (access, csrf) = signed_in(&gw).await;
    let cookies = format!("{ACCESS}={access}; {CSRF}={csrf}");
    // Only the CSRF cookie left (access expired): renew first, then come back here.
    let stale = navigate(&gw, "GET", "/auth/sign-out")
        .header("cookie", &format!("{CSRF}={csrf}"))
        .send_h2()
        .await;
    assert_eq!(stale.status, StatusCode::FOUND);
    let location = stale.header("location").unwrap_or_default();
    assert!(
        location.starts_with("/auth/refresh?rd=https%3A%2F%2F"),
        "{location}"
    );
    assert!(location.ends_with("%2Fauth%2Fsign-out"), "{location}");

    let confirm = navigate(&gw, "GET", "/auth/sign-out")
        .header("cookie", &cookies)
        .send_h1()
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(
        confirm
            .text()
            .contains("Signed in as <strong>alice</strong>"),
        "{}",
        confirm.text()
    );
    assert!(
        confirm.text().contains(&csrf),
        "the form repeats the CSRF cookie"
    );

    let refused = [
        sign_out_post(&gw, &cookies, "wrong"),
        sign_out_post(&gw, &cookies, &csrf).header("origin", "https://evil.example"),
        sign_out_post(&gw, &format!("{ACCESS}={access}"), &csrf),
    ];
    for attempt in refused {
        let resp = attempt.send_h1().await;
        assert_eq!(resp.status, StatusCode::FORBIDDEN, "{}", resp.text());
        assert_eq!(
            set_cookie(&resp, ACCESS),
            None,
            "a refused sign-out clears nothing"
        );
    }
    let page = navigate(&gw, "GET", "/api/x")
        .header("cookie", &cookies)
        .send_h1()
        .await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "the session survived the refused attempts"
    );

    let done = sign_out_post(&gw, &cookies, &csrf).send_h1().await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert!(done.text().contains("You have been signed out."));
    assert_eq!(set_cookie(&done, ACCESS).as_deref(), Some(""));
    assert_eq!(set_cookie(&done, CSRF).as_deref(), Some(""));
    // A copy of the old access cookie is revoked, and goes to sign in again.
    let copy = navigate(&gw, "GET", "/api/x")
        .header("cookie", &format!("{ACCESS}={access}"))
        .send_h1()
        .await;
    assert_eq!(copy.status, StatusCode::FOUND);
    assert!(copy
        .header("location")
        .unwrap_or_default()
        .starts_with("/auth/sign-in?rd="));
    let api = gw.client().get("/api/x").bearer(&access).send_h1().await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
}
