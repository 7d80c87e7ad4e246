//! Cookie mode: the pair in `__Host-`/`__Secure-` cookies, CSRF double submit on unsafe
//! methods, a bearer header always first, and no token ever reaching an upstream.

use std::collections::BTreeMap;

use crate::common::*;

const ACCESS: &str = "__Host-portcullis-access";
const REFRESH: &str = "__Secure-portcullis-refresh";
const CSRF: &str = "__Host-portcullis-csrf";
const PASSWORD: &str = "correct horse battery";

async fn gateway(extra: &str) -> (Gateway, Upstream) {
    let echo = Upstream::echo().await;
    let gw = AuthSetup::new(&echo.url())
        .user("alice", PASSWORD, &["reader"])
        .extra(extra)
        .start()
        .await;
    (gw, echo)
}

async fn cookie_gateway() -> (Gateway, Upstream) {
    gateway("[cookies]\nenabled = true\n").await
}

/// Set-Cookie headers by cookie name: (value, attributes as written).
fn set_cookies(resp: &Response) -> BTreeMap<String, (String, Vec<String>)> {
    resp.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let text = v.to_str().expect("ASCII Set-Cookie");
            let mut parts = text.split("; ");
            let (name, value) = parts
                .next()
                .and_then(|p| p.split_once('='))
                .expect("name=value first");
            let attrs = parts.map(str::to_string).collect();
            (name.to_string(), (value.to_string(), attrs))
        })
        .collect()
}

/// A logged-in browser: its cookies, as it would send them back.
struct Browser {
    access: String,
    refresh: String,
    csrf: String,
}

impl Browser {
    async fn login(gw: &Gateway) -> Browser {
        let resp = gw.login("alice", PASSWORD).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        let set = set_cookies(&resp);
        let get = |name: &str| set.get(name).map(|(v, _)| v.clone()).expect(name);
        Browser {
            access: get(ACCESS),
            refresh: get(REFRESH),
            csrf: get(CSRF),
        }
    }
    /// The Cookie header sent to a path under `/` (the refresh cookie is not among them).
    fn site_cookies(&self) -> String {
        format!("theme=dark; {ACCESS}={}; {CSRF}={}", self.access, self.csrf)
    }
    fn refresh_cookies(&self) -> String {
        format!("{}; {REFRESH}={}", self.site_cookies(), self.refresh)
    }
}

#[tokio::test]
async fn login_sets_the_cookies_with_the_right_attributes() {
    let (gw, _echo) = cookie_gateway().await;
    let resp = gw.login("alice", PASSWORD).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let pair = Pair::from_response(&resp);
    let set = set_cookies(&resp);
    assert_eq!(set.len(), 3, "{set:?}");
    let attrs = |name: &str| set[name].1.join("; ");
    assert_eq!(set[ACCESS].0, pair.access);
    assert_eq!(
        attrs(ACCESS),
        "Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=900"
    );
    assert_eq!(set[REFRESH].0, pair.refresh);
    // Scoped to the refresh endpoint: never sent along with proxied requests.
    assert_eq!(
        attrs(REFRESH),
        "Path=/auth/refresh; Secure; HttpOnly; SameSite=Strict; Max-Age=1209600"
    );
    assert!(set[CSRF].0.len() >= 32, "{:?}", set[CSRF]);
    assert_eq!(
        attrs(CSRF),
        "Path=/; Secure; SameSite=Strict; Max-Age=1209600"
    );
    assert!(set
        .values()
        .all(|(_, a)| !a.iter().any(|x| x.starts_with("Domain"))));
}

#[tokio::test]
async fn same_site_is_configurable() {
    let (gw, _echo) = gateway("[cookies]\nenabled = true\nsame_site = \"Lax\"\n").await;
    let set = set_cookies(&gw.login("alice", PASSWORD).await);
    assert!(
        set.values()
            .all(|(_, a)| a.contains(&"SameSite=Lax".to_string())),
        "{set:?}"
    );
}

#[tokio::test]
async fn a_cookie_authenticated_get_works_and_the_upstream_never_sees_a_token() {
    let (gw, _echo) = cookie_gateway().await;
    let b = Browser::login(&gw).await;
    let resp = gw
        .client()
        .get("/api/me")
        .header("cookie", &b.refresh_cookies())
        .send_h1()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.echoed_header("x-auth-user").as_deref(), Some("alice"));
    assert_eq!(resp.echoed_header("cookie").as_deref(), Some("theme=dark"));
    // Over HTTP/2 too.
    let h2 = gw
        .client()
        .get("/api/me")
        .header("cookie", &b.site_cookies())
        .send_h2()
        .await;
    assert_eq!(h2.status, 200, "{}", h2.text());
    assert_eq!(h2.echoed_header("cookie").as_deref(), Some("theme=dark"));
}

#[tokio::test]
async fn unsafe_methods_by_cookie_need_the_csrf_header() {
    let (gw, _echo) = cookie_gateway().await;
    let b = Browser::login(&gw).await;
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let resp = gw
            .client()
            .request(method, "/api/me")
            .header("cookie", &b.site_cookies())
            .send_h1()
            .await;
        assert_eq!(resp.status, 403, "{method} without CSRF: {}", resp.text());
        assert_eq!(
            resp.json()["error_description"],
            "missing or wrong CSRF token"
        );
    }
    let ok = gw
        .client()
        .post("/api/me")
        .header("cookie", &b.site_cookies())
        .header("x-csrf-token", &b.csrf)
        .send_h1()
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.echoed_header("x-auth-user").as_deref(), Some("alice"));
    let wrong = format!("{}x", b.csrf);
    let other = gw
        .client()
        .post("/api/me")
        .header("cookie", &b.site_cookies())
        .header("x-csrf-token", &wrong)
        .send_h1()
        .await;
    assert_eq!(other.status, 403, "{}", other.text());
    // The header alone proves nothing: the cookie must be there to compare with.
    let no_cookie = format!("{ACCESS}={}", b.access);
    let lone = gw
        .client()
        .post("/api/me")
        .header("cookie", &no_cookie)
        .header("x-csrf-token", &b.csrf)
        .send_h1()
        .await;
    assert_eq!(lone.status, 403, "{}", lone.text());
}

#[tokio::test]
async fn a_bearer_header_always_wins_over_a_cookie() {
    let (gw, _echo) = cookie_gateway().await;
    let b = Browser::login(&gw).await;
    let bob = gw.token("bob", &["reader"]);
    let resp = gw
        .client()
        .post("/api/me")
        .bearer(&bob)
        .header("cookie", &b.site_cookies())
        .send_h1()
        .await;
    // Bearer-authenticated: no CSRF needed, and the identity is the header's.
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.echoed_header("x-auth-user").as_deref(), Some("bob"));
    // A bad header is not rescued by a good cookie.
    let bad = gw
        .client()
        .get("/api/me")
        .bearer("not.a.token")
        .header("cookie", &b.site_cookies())
        .send_h1()
        .await;
    assert_eq!(bad.status, 401, "{}", bad.text());
}

#[tokio::test]
async fn the_refresh_cookie_is_never_an_access_token() {
    let (gw, _echo) = cookie_gateway().await;
    let b = Browser::login(&gw).await;
    let refresh_only = format!("{REFRESH}={}", b.refresh);
    let resp = gw
        .client()
        .get("/api/me")
        .header("cookie", &refresh_only)
        .send_h1()
        .await;
    assert_eq!(resp.status, 401, "{}", resp.text());
    assert_eq!(resp.json()["error"], "missing_token");
    // Even planted in the access cookie, a refresh token is the wrong type.
    let planted = format!("{ACCESS}={}", b.refresh);
    let resp = gw
        .client()
        .get("/api/me")
        .header("cookie", &planted)
        .send_h1()
        .await;
    assert_invalid_token(&resp, "wrong token type", &b.refresh);
    // Two access cookies (one tossed in by a sibling domain): ambiguous, refused.
    let twins = format!("{ACCESS}={}; {ACCESS}={}", b.access, b.access);
    let resp = gw
        .client()
        .get("/api/me")
        .header("cookie", &twins)
        .send_h1()
        .await;
    assert_eq!(resp.status, 401, "{}", resp.text());
}

#[tokio::test]
async fn refresh_by_cookie_needs_csrf_and_rotates_the_cookies() {
    let (gw, _echo) = cookie_gateway().await;
    let b = Browser::login(&gw).await;
    let without = gw
        .client()
        .post("/auth/refresh")
        .header("cookie", &b.refresh_cookies())
        .send_h1()
        .await;
    assert_eq!(without.status, 403, "{}", without.text());
    let resp = gw
        .client()
        .post("/auth/refresh")
        .header("cookie", &b.refresh_cookies())
        .header("x-csrf-token", &b.csrf)
        .send_h1()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let set = set_cookies(&resp);
    assert_ne!(set[REFRESH].0, b.refresh);
    assert_ne!(set[CSRF].0, b.csrf);
    // No cookie and no body: nothing to refresh with.
    let none = gw.client().post("/auth/refresh").send_h1().await;
    assert_eq!(none.status, 401, "{}", none.text());
    // The JSON body still works for clients that are not browsers.
    assert_eq!(gw.refresh(&set[REFRESH].0).await.status, 200);
}

#[tokio::test]
async fn logout_clears_the_cookies_and_revokes_the_session() {
    let (gw, _echo) = cookie_gateway().await;
    let b = Browser::login(&gw).await;
    let no_csrf = gw
        .client()
        .post("/auth/logout")
        .header("cookie", &b.site_cookies())
        .send_h1()
        .await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.text());
    let resp = gw
        .client()
        .post("/auth/logout")
        .header("cookie", &b.site_cookies())
        .header("x-csrf-token", &b.csrf)
        .send_h1()
        .await;
    assert_eq!(resp.status, 204, "{}", resp.text());
    let set = set_cookies(&resp);
    for name in [ACCESS, REFRESH, CSRF] {
        let (value, attrs) = &set[name];
        assert!(value.is_empty(), "{name}: {value}");
        assert!(
            attrs.contains(&"Max-Age=0".to_string()),
            "{name}: {attrs:?}"
        );
    }
    assert!(set[REFRESH].1.contains(&"Path=/auth/refresh".to_string()));
    // Logging out with an access cookie the gateway refuses (expired, say): 401, and the
    // cookies are cleared anyway.
    let dead = format!("{ACCESS}=not.a.token; {CSRF}={}", b.csrf);
    let again = gw
        .client()
        .post("/auth/logout")
        .header("cookie", &dead)
        .header("x-csrf-token", &b.csrf)
        .send_h1()
        .await;
    assert_eq!(again.status, 401, "{}", again.text());
    assert_eq!(
        set_cookies(&again)[ACCESS].1.last().map(String::as_str),
        Some("Max-Age=0")
    );
    let after = gw
        .client()
        .get("/api/me")
        .header("cookie", &b.site_cookies())
        .send_h1()
        .await;
    assert_eq!(after.status, 401, "{}", after.text());
    assert_invalid_grant_or_revoked(&gw.refresh(&b.refresh).await);
}

fn assert_invalid_grant_or_revoked(resp: &Response) {
    assert_eq!(resp.status, 401, "{}", resp.text());
    let error = resp.json()["error"].clone();
    assert!(
        error == "invalid_grant" || error == "invalid_token",
        "{}",
        resp.text()
    );
}

#[tokio::test]
async fn a_cross_site_form_cannot_log_a_victim_in() {
    let (gw, _echo) = cookie_gateway().await;
    // What a cross-site HTML form can send: no JSON content type, so no preflight-free login.
    let resp = gw
        .client()
        .post("/auth/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username=alice&password={PASSWORD}"))
        .send_h1()
        .await;
    assert_eq!(resp.status, 415, "{}", resp.text());
    assert!(resp.headers.get("set-cookie").is_none());
}

#[tokio::test]
async fn cookies_are_off_by_default() {
    let (gw, _echo) = gateway("").await;
    let resp = gw.login("alice", PASSWORD).await;
    assert!(resp.headers.get("set-cookie").is_none());
    let pair = Pair::from_response(&resp);
    let cookie = format!("{ACCESS}={}", pair.access);
    let resp = gw
        .client()
        .get("/api/me")
        .header("cookie", &cookie)
        .send_h1()
        .await;
    assert_eq!(resp.status, 401, "{}", resp.text());
    // Not stripped either: without cookie mode they are just the client's cookies.
    let public = gw
        .client()
        .get("/public/x")
        .header("cookie", &cookie)
        .send_h1()
        .await;
    assert!(public.echoed_header("cookie").is_some());
}

#[tokio::test]
async fn forward_auth_applies_the_same_cookie_and_csrf_rules() {
    let extra = "[cookies]\nenabled = true\n[forward_auth]\nenabled = true\ntrust = \"nginx\"\n";
    let (gw, _echo) = gateway(extra).await;
    let b = Browser::login(&gw).await;
    let cookies = b.site_cookies();
    let ask = |method: &'static str, csrf: Option<String>| {
        let mut headers = vec![
            ("X-Original-Method".to_string(), method.to_string()),
            ("X-Original-URI".to_string(), "/api/me".to_string()),
            ("Cookie".to_string(), cookies.clone()),
        ];
        if let Some(csrf) = csrf {
            headers.push(("X-CSRF-Token".to_string(), csrf));
        }
        let c = gw.client();
        async move {
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            c.raw_get("/auth/verify", &h).await
        }
    };
    let get = ask("GET", None).await;
    assert_eq!(get.status, 200, "{}", get.all);
    assert_eq!(get.header("x-auth-user").as_deref(), Some("alice"));
    assert_eq!(ask("POST", None).await.status, 403);
    assert_eq!(ask("POST", Some(b.csrf.clone())).await.status, 200);
}

#[tokio::test]
async fn bad_cookie_settings_are_config_errors() {
    for (section, expected) in [
        ("same_site = \"strict\"", "unknown variant `strict`"),
        ("csrf_header = \"Cookie\"", "cannot be the CSRF header"),
        ("csrf_header = \"X CSRF\"", "cannot be the CSRF header"),
    ] {
        let dir = TestDir::new();
        let cfg = GatewayConfig::standard("http://127.0.0.1:9")
            .extra(&format!("[cookies]\nenabled = true\n{section}\n"));
        let config = Gateway::prepare(&dir, &cfg);
        let out = run_cli(&["check", "--config", config.to_str().expect("utf-8 path")]);
        assert_eq!(out.code, Some(1), "{section}: {out:?}");
        assert!(out.stderr.contains(expected), "{section}: {out:?}");
        assert!(out.stderr.contains("gateway.toml:"), "{section}: {out:?}");
    }
}
