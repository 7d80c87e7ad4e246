//! Sign-in behind a front proxy: forward-auth sends browser navigations to the sign-in page
//! (a real nginx with the README's snippet; Traefik's headers over a socket).

use crate::common::*;

const PASSWORD: &str = "correct horse battery";
const ACCESS: &str = "__Host-portcullis-access";
const BROWSER: [(&str, &str); 2] = [
    ("Sec-Fetch-Mode", "navigate"),
    ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
];

async fn gateway(echo: &Upstream, trust: &str) -> Gateway {
    let extra = format!(
        "[cookies]\nenabled = true\n\n[sign_in]\nenabled = true\n\n[forward_auth]\nenabled = true\ntrust = \"{trust}\"\n"
    );
    AuthSetup::new(&echo.url())
        .user("alice", PASSWORD, &["reader"])
        .extra(&extra)
        .start()
        .await
}

/// The access cookie of a fresh login.
async fn access_cookie(gw: &Gateway) -> String {
    let resp = gw.login("alice", PASSWORD).await;
    let cookie = resp
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(ACCESS))
        .expect("an access cookie");
    cookie.split(';').next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn nginx_sends_navigations_to_the_sign_in_page_and_api_calls_keep_their_401() {
    let echo = Upstream::echo().await;
    let gw = gateway(&echo, "nginx").await;
    let nginx = Nginx::start(&gw, &echo.url())
        .await
        .unwrap_or_else(|reason| panic!("nginx is needed (.ci/run installs it): {reason}"));

    let navigation = nginx.request("GET", "/api/report?y=1", &BROWSER).await;
    assert_eq!(
        navigation.status,
        302,
        "{}\n{}",
        navigation.all,
        nginx.log()
    );
    // nginx makes the relative Location absolute on its own host.
    let location = navigation.header("location").unwrap_or_default();
    assert!(location.starts_with("http://localhost"), "{location}");
    assert!(
        location.ends_with("/auth/sign-in?rd=%2Fapi%2Freport%3Fy%3D1"),
        "{location}"
    );
    let api = nginx.request("GET", "/api/report", &[]).await;
    assert_eq!(api.status, 401, "{}", api.all);
    assert!(
        api.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer")),
        "the challenge survives: {}",
        api.all
    );
    let page = nginx
        .request("GET", "/auth/sign-in?rd=%2Fapi%2Freport", &BROWSER)
        .await;
    assert_eq!(page.status, 200, "{}", page.all);
    assert!(page.body.contains("<form method=\"post\""), "{}", page.body);

    let cookie = access_cookie(&gw).await;
    let mut signed_in = BROWSER.to_vec();
    signed_in.push(("Cookie", &cookie));
    let allowed = nginx.request("GET", "/api/report", &signed_in).await;
    assert_eq!(allowed.status, 200, "{}", allowed.all);
    assert!(
        allowed.body.contains(r#""x-auth-user":"alice""#),
        "{}",
        allowed.body
    );
}

#[tokio::test]
async fn traefik_gets_the_redirect_itself() {
    let echo = Upstream::echo().await;
    let gw = gateway(&echo, "traefik").await;
    let mut headers = vec![
        ("X-Forwarded-Method", "GET"),
        ("X-Forwarded-Uri", "/api/report?y=1"),
        ("X-Forwarded-Host", "app.example.com"),
    ];
    let api = gw.client().raw_get("/auth/verify", &headers).await;
    assert_eq!(api.status, 401, "{}", api.all);
    headers.extend(BROWSER);
    let navigation = gw.client().raw_get("/auth/verify", &headers).await;
    assert_eq!(navigation.status, 302, "{}", navigation.all);
    assert_eq!(
        navigation.header("location").as_deref(),
        Some("/auth/sign-in?rd=%2Fapi%2Freport%3Fy%3D1")
    );
    let post = [
        ("X-Forwarded-Method", "POST"),
        ("X-Forwarded-Uri", "/api/x"),
        ("X-Forwarded-Host", "a.example"),
        BROWSER[0],
    ];
    assert_eq!(gw.client().raw_get("/auth/verify", &post).await.status, 401);
}
