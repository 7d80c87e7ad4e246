//! Path normalization and route matching: no spelling of a path reaches a route it should not.
//! Requests are written byte for byte over TLS so no client library can tidy the path first.

use crate::common::*;
use http::StatusCode;

async fn gateway() -> (Gateway, MockUpstream) {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    (gw, up)
}

/// Status must be a refusal (400, or 401/403 from the admin route's policy), and the upstream
/// must never have seen an /admin path.
async fn assert_never_reaches_admin(
    gw: &Gateway,
    up: &MockUpstream,
    path: &str,
    headers: &[(&str, &str)],
) {
    let resp = gw.client().raw_get(path, headers).await;
    assert!(
        [400, 401, 403].contains(&resp.status),
        "{path:?} answered {} (want 400/401/403):\n{}",
        resp.status,
        resp.all
    );
    let leaked: Vec<String> = up
        .seen_targets()
        .into_iter()
        .filter(|t| t.contains("admin"))
        .collect();
    assert!(
        leaked.is_empty(),
        "{path:?} reached the upstream as {leaked:?}"
    );
}

const TRICKS: &[&str] = &[
    "/public/../admin/x",
    "/public/%2e%2e/admin/x",
    "/public/%2E%2E/admin/x",
    "/%2e%2e/admin",
    "/admin%2Fx",
    "/admin%2fx",
    "//admin/x",
    "/admin/./x",
    "/./admin/x",
    "/public/..%2Fadmin/x",
    "/public/%2e%2e%2fadmin/x",
    "/public\\..\\admin/x",
    "/public/%5C..%5Cadmin/x",
    "/%61dmin/x",
    "/public/..;/admin/x",
    "/admin;x/secret",
];

#[tokio::test]
async fn path_tricks_never_reach_admin_without_a_token() {
    let (gw, up) = gateway().await;
    for path in TRICKS {
        assert_never_reaches_admin(&gw, &up, path, &[]).await;
    }
}

#[tokio::test]
async fn path_tricks_never_reach_admin_with_a_non_admin_token() {
    let (gw, up) = gateway().await;
    let auth = format!("Bearer {}", gw.token("bob", &["user"]));
    for path in TRICKS {
        assert_never_reaches_admin(&gw, &up, path, &[("Authorization", &auth)]).await;
    }
}

#[tokio::test]
async fn path_tricks_over_http2_never_reach_admin() {
    let (gw, up) = gateway().await;
    for path in [
        "/public/../admin/x",
        "/%2e%2e/admin",
        "//admin/x",
        "/admin/./x",
        "/admin%2Fx",
    ] {
        let resp = gw.client().get(path).send_h2().await;
        assert!(
            [400, 401, 403].contains(&resp.status.as_u16()),
            "h2 {path:?} answered {}: {}",
            resp.status,
            resp.text()
        );
    }
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn dot_segments_resolve_before_matching() {
    // `/public/../admin/x` is `/admin/x`: the admin policy applies, so no token -> 401.
    let (gw, up) = gateway().await;
    for path in [
        "/public/../admin/x",
        "//admin/x",
        "/admin/./x",
        "/admin/y/../x",
    ] {
        let resp = gw.client().raw_get(path, &[]).await;
        assert_eq!(resp.status, 401, "{path:?}:\n{}", resp.all);
    }
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn normalized_path_is_what_the_upstream_sees() {
    let (gw, up) = gateway().await;
    let auth = format!("Bearer {}", gw.token("root", &["admin"]));
    let cases = [
        ("/public/../admin/x", "/admin/x"),
        ("//admin//x", "/admin/x"),
        ("/admin/./x/", "/admin/x/"),
        ("/admin/a/b/../c", "/admin/a/c"),
        ("/admin/%7Euser/%41bc", "/admin/~user/Abc"),
    ];
    for (sent, expected) in cases {
        let resp = gw.client().raw_get(sent, &[("Authorization", &auth)]).await;
        assert_eq!(resp.status, 200, "{sent:?}:\n{}", resp.all);
        let seen = up.seen_targets();
        assert_eq!(
            seen.last().map(String::as_str),
            Some(expected),
            "{sent:?} forwarded as {seen:?}"
        );
    }
}

#[tokio::test]
async fn query_string_is_forwarded_unchanged() {
    let (gw, up) = gateway().await;
    let resp = gw
        .client()
        .raw_get("/public/search?q=a%2Fb&x=..%2F", &[])
        .await;
    assert_eq!(resp.status, 200, "{}", resp.all);
    assert_eq!(
        up.seen_targets(),
        vec!["/public/search?q=a%2Fb&x=..%2F".to_string()]
    );
}

#[tokio::test]
async fn dot_dot_above_root_is_400() {
    let (gw, up) = gateway().await;
    for path in [
        "/..",
        "/../public/x",
        "/public/../../public/x",
        "/%2e%2e/public/x",
        "/public/%2e%2e/%2E%2E/public/x",
    ] {
        let resp = gw.client().raw_get(path, &[]).await;
        assert_eq!(resp.status, 400, "{path:?}:\n{}", resp.all);
    }
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn encoded_slash_is_400() {
    let (gw, up) = gateway().await;
    for path in ["/public%2Fx", "/public/a%2fb", "/admin%2Fx"] {
        let resp = gw.client().raw_get(path, &[]).await;
        assert_eq!(resp.status, 400, "{path:?}:\n{}", resp.all);
    }
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn backslash_raw_or_encoded_is_400() {
    let (gw, up) = gateway().await;
    for path in [
        "/public/a%5Cb",
        "/public/a%5cb",
        "/public\\x",
        "/public/a\\..\\b",
    ] {
        let resp = gw.client().raw_get(path, &[]).await;
        assert_eq!(resp.status, 400, "{path:?}:\n{}", resp.all);
    }
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn nul_and_malformed_escapes_are_400() {
    let (gw, up) = gateway().await;
    for path in ["/public/a%00b", "/public/%zz", "/public/%4", "/public/a%"] {
        let resp = gw.client().raw_get(path, &[]).await;
        assert_eq!(resp.status, 400, "{path:?}:\n{}", resp.all);
    }
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn unmatched_path_is_404_and_upstream_sees_nothing() {
    let (gw, up) = gateway().await;
    let resp = gw.client().get("/nowhere/at/all").send_h1().await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND, "body: {}", resp.text());
    let resp = gw
        .client()
        .get("/")
        .bearer(&gw.token("root", &["admin"]))
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND, "body: {}", resp.text());
    // `/publicity` is not below `/public`.
    let resp = gw.client().get("/publicity").send_h1().await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND, "body: {}", resp.text());
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn method_outside_the_route_list_does_not_match() {
    // /public/** is GET/HEAD only; a POST there matches no route.
    let (gw, up) = gateway().await;
    let resp = gw.client().post("/public/x").body("data").send_h1().await;
    assert!(
        resp.status == StatusCode::NOT_FOUND,
        "POST /public/x answered {}: {}",
        resp.status,
        resp.text()
    );
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn double_star_matches_the_prefix_itself() {
    let (gw, up) = gateway().await;
    let resp = gw.client().get("/public").send_h1().await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    assert_eq!(up.seen_targets(), vec!["/public".to_string()]);
}

#[tokio::test]
async fn single_star_matches_exactly_one_segment() {
    let up = MockUpstream::start(Mode::Record).await;
    let routes = format!(
        r#"[upstreams.api]
url = "{}"

[[routes]]
path = "/users/*/profile"
upstream = "api"
auth = "none"
"#,
        up.url()
    );
    let gw = Gateway::start(GatewayConfig::new(routes)).await;
    let c = gw.client();
    assert_eq!(
        c.get("/users/42/profile").send_h1().await.status,
        StatusCode::OK
    );
    assert_eq!(
        c.get("/users/42/43/profile").send_h1().await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.get("/users/profile").send_h1().await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(up.seen_targets(), vec!["/users/42/profile".to_string()]);
}

#[tokio::test]
async fn first_matching_route_wins() {
    let up = MockUpstream::start(Mode::Record).await;
    let routes = format!(
        r#"[upstreams.api]
url = "{}"

[[routes]]
path = "/docs/private/**"
upstream = "api"
roles_any = ["staff"]

[[routes]]
path = "/docs/**"
upstream = "api"
auth = "none"
"#,
        up.url()
    );
    let gw = Gateway::start(GatewayConfig::new(routes)).await;
    let c = gw.client();
    assert_eq!(c.get("/docs/readme").send_h1().await.status, StatusCode::OK);
    assert_eq!(
        c.get("/docs/private/plan").send_h1().await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(up.seen_targets(), vec!["/docs/readme".to_string()]);
}

#[tokio::test]
async fn absolute_form_request_target_is_policed_like_origin_form() {
    let (gw, up) = gateway().await;
    let port = gw.https.port();
    for target in [
        format!("https://localhost:{port}/admin/x"),
        format!("https://localhost:{port}/public/../admin/x"),
        format!("https://localhost:{port}//admin/x"),
        "http://evil.example/public/%2e%2e/admin/x".to_string(),
    ] {
        let req =
            format!("GET {target} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n");
        let resp = gw.client().raw(req.as_bytes()).await;
        assert!(
            [400, 401, 403, 404].contains(&resp.status),
            "{target:?} answered {}:\n{}",
            resp.status,
            resp.all
        );
    }
    let leaked: Vec<String> = up
        .seen_targets()
        .into_iter()
        .filter(|t| t.contains("admin"))
        .collect();
    assert!(
        leaked.is_empty(),
        "absolute-form request reached the upstream as {leaked:?}"
    );
}

#[tokio::test]
async fn request_target_without_leading_slash_is_400() {
    let (gw, up) = gateway().await;
    for target in ["admin/x", "public/x", "*"] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let resp = gw.client().raw(req.as_bytes()).await;
        assert_eq!(resp.status, 400, "{target:?}:\n{}", resp.all);
    }
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}
