//! Forward-auth: `/auth/verify` answers for a front proxy exactly as the gateway's own proxy
//! would, for nginx `auth_request` (a real nginx in front of the echo upstream) and for
//! Traefik ForwardAuth headers; nothing is forwarded, and nothing missing is guessed.

use crate::common::*;

const NGINX: &str = "[forward_auth]\nenabled = true\ntrust = \"nginx\"\n";
const TRAEFIK: &str = "[forward_auth]\nenabled = true\ntrust = \"traefik\"\n";

async fn nginx_gateway() -> (Gateway, MockUpstream) {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).extra(NGINX)).await;
    (gw, up)
}

/// GET /auth/verify as nginx would send it (Host is the original host).
async fn verify(gw: &Gateway, method: &str, uri: &str, token: Option<&str>) -> RawResponse {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("X-Original-Method", method), ("X-Original-URI", uri)];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    gw.client().raw_get("/auth/verify", &headers).await
}

#[tokio::test]
async fn verify_answers_200_with_identity_or_the_proxys_refusal() {
    let (gw, up) = nginx_gateway().await;
    let alice = gw.token("alice", &["reader", "ops"]);
    let ok = verify(&gw, "GET", "/api/me", Some(&alice)).await;
    assert_eq!(ok.status, 200, "{}", ok.all);
    assert_eq!(ok.header("x-auth-user").as_deref(), Some("alice"));
    assert_eq!(ok.header("x-auth-roles").as_deref(), Some("reader,ops"));
    assert_eq!(ok.header("cache-control").as_deref(), Some("no-store"));

    let missing = verify(&gw, "GET", "/api/me", None).await;
    assert_eq!(missing.status, 401, "{}", missing.all);
    assert_eq!(
        missing.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"portcullis\"")
    );
    let forbidden = verify(&gw, "GET", "/admin/x", Some(&alice)).await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.all);
    assert!(
        forbidden.body.contains("missing role"),
        "{}",
        forbidden.body
    );

    // auth = "none": allowed, and no identity even with a token.
    let public = verify(&gw, "GET", "/public/x", Some(&alice)).await;
    assert_eq!(public.status, 200, "{}", public.all);
    assert_eq!(public.header("x-auth-user"), None);
    // /public/** is GET/HEAD only: a DELETE matches no route.
    assert_eq!(verify(&gw, "DELETE", "/public/x", None).await.status, 404);
    assert!(up.seen().is_empty(), "forward-auth forwarded something");
}

#[tokio::test]
async fn verify_gives_the_proxys_answer_for_every_path_trick() {
    let (gw, up) = nginx_gateway().await;
    let user = gw.token("bob", &["reader"]);
    let bearer = format!("Bearer {user}");
    let cases = [
        "/public/x",
        "/public/%2e%2e/admin/x",
        "/public/%2E%2E/admin/x",
        "//admin/x",
        "/admin%2Fx",
        "/public/..%2Fadmin/x",
        "/public/../admin/x",
        "/%2e%2e/admin",
        "/./admin/x",
        "/%61dmin/x",
        "/public/..;/admin/x",
        "/admin;x/secret",
        "/public/%5C..%5Cadmin/x",
        "/public/%00",
        "/public/x?next=/admin/x",
        "/admin/x?/public/x",
        "/api/%2e/me",
    ];
    for path in cases {
        let proxied = gw
            .client()
            .raw_get(path, &[("Authorization", &bearer)])
            .await;
        let verified = verify(&gw, "GET", path, Some(&user)).await;
        assert_eq!(
            verified.status, proxied.status,
            "{path:?}: verify said {} but the proxy said {}\n{}",
            verified.status, proxied.status, verified.all
        );
    }
    let reached_admin = up
        .seen_targets()
        .iter()
        .any(|t| t.split('?').next().unwrap_or_default().contains("admin"));
    assert!(!reached_admin, "{:?}", up.seen_targets());
}

#[tokio::test]
async fn missing_or_malformed_original_request_is_400_never_an_allow() {
    let (gw, _up) = nginx_gateway().await;
    let c = gw.client();
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("no headers", &[]),
        ("no URI", &[("X-Original-Method", "GET")]),
        ("no method", &[("X-Original-URI", "/public/x")]),
        (
            "empty URI",
            &[("X-Original-Method", "GET"), ("X-Original-URI", "")],
        ),
        (
            "relative",
            &[("X-Original-Method", "GET"), ("X-Original-URI", "public/x")],
        ),
        (
            "absolute",
            &[
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "http://evil/public/x"),
            ],
        ),
        (
            "asterisk",
            &[("X-Original-Method", "GET"), ("X-Original-URI", "*")],
        ),
        (
            "bad method",
            &[
                ("X-Original-Method", "G E T"),
                ("X-Original-URI", "/public/x"),
            ],
        ),
        (
            "two URIs",
            &[
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/public/x"),
                ("X-Original-URI", "/admin/x"),
            ],
        ),
    ];
    for (what, headers) in cases {
        let resp = c.raw_get("/auth/verify", headers).await;
        assert_eq!(resp.status, 400, "{what}: {}", resp.all);
        assert!(
            resp.body.contains("invalid_request"),
            "{what}: {}",
            resp.body
        );
    }
}

#[tokio::test]
async fn headers_of_the_untrusted_kind_are_ignored() {
    let (gw, _up) = nginx_gateway().await;
    // nginx is trusted: Traefik's headers describe nothing.
    let traefik_only = gw
        .client()
        .raw_get(
            "/auth/verify",
            &[
                ("X-Forwarded-Method", "GET"),
                ("X-Forwarded-Uri", "/public/x"),
                ("X-Forwarded-Host", "localhost"),
            ],
        )
        .await;
    assert_eq!(traefik_only.status, 400, "{}", traefik_only.all);

    let up = MockUpstream::start(Mode::Record).await;
    let traefik = Gateway::start(GatewayConfig::standard(&up.url()).extra(TRAEFIK)).await;
    let nginx_only = traefik
        .client()
        .raw_get(
            "/auth/verify",
            &[
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "/public/x"),
            ],
        )
        .await;
    assert_eq!(nginx_only.status, 400, "{}", nginx_only.all);
}

/// Routes where the host decides: admin.example.com needs the admin role everywhere.
fn host_routes(url: &str) -> String {
    format!(
        r#"[upstreams.api]
url = "{url}"

[[routes]]
host = "admin.example.com"
path = "/**"
upstream = "api"
roles_any = ["admin"]

[[routes]]
path = "/public/**"
upstream = "api"
auth = "none"

[[routes]]
path = "/api/**"
upstream = "api"
"#
    )
}

async fn traefik(gw: &Gateway, method: &str, uri: &str, host: Option<&str>) -> RawResponse {
    let mut headers = vec![("X-Forwarded-Method", method), ("X-Forwarded-Uri", uri)];
    if let Some(host) = host {
        headers.push(("X-Forwarded-Host", host));
    }
    gw.client().raw_get("/auth/verify", &headers).await
}

#[tokio::test]
async fn traefik_headers_carry_method_uri_and_host() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::new(host_routes(&up.url())).extra(TRAEFIK)).await;
    let public = traefik(&gw, "GET", "/public/x", Some("www.example.com")).await;
    assert_eq!(public.status, 200, "{}", public.all);
    assert_eq!(public.header("x-auth-user"), None);
    // The same path on the admin host falls under the host's rule.
    for host in [
        "admin.example.com",
        "ADMIN.example.com:443",
        "admin.example.com.",
    ] {
        let admin = traefik(&gw, "GET", "/public/x", Some(host)).await;
        assert_eq!(admin.status, 401, "{host}: {}", admin.all);
    }
    let admin_token = format!("Bearer {}", gw.token("root", &["admin"]));
    let allowed = gw
        .client()
        .raw_get(
            "/auth/verify",
            &[
                ("X-Forwarded-Method", "POST"),
                ("X-Forwarded-Uri", "/anything?x=1"),
                ("X-Forwarded-Host", "admin.example.com"),
                ("Authorization", &admin_token),
            ],
        )
        .await;
    assert_eq!(allowed.status, 200, "{}", allowed.all);
    assert_eq!(allowed.header("x-auth-user").as_deref(), Some("root"));
    // Traefik always sends the host: without it the host rules could be dodged.
    assert_eq!(traefik(&gw, "GET", "/public/x", None).await.status, 400);
    for bad in [
        "x@admin.example.com",
        "admin.example.com, www.example.com",
        "a b",
    ] {
        let resp = traefik(&gw, "GET", "/public/x", Some(bad)).await;
        assert_eq!(resp.status, 400, "{bad:?}: {}", resp.all);
    }
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn a_revoked_token_is_refused_by_verify_too() {
    let (gw, _up) = nginx_gateway().await;
    let token = gw.token("carol", &["reader"]);
    assert_eq!(
        verify(&gw, "GET", "/api/me", Some(&token)).await.status,
        200
    );
    let jti = claims_of(&token)["jti"].as_str().expect("jti").to_string();
    gw.revoke_cli(&["--jti", &jti]);
    let resp = verify(&gw, "GET", "/api/me", Some(&token)).await;
    assert_eq!(resp.status, 401, "{}", resp.all);
    assert!(resp.body.contains("token revoked"), "{}", resp.body);
}

#[tokio::test]
async fn callers_outside_the_configured_ranges_are_refused() {
    let up = MockUpstream::start(Mode::Record).await;
    let extra = format!("{NGINX}callers = [\"10.0.0.0/8\"]\n");
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).extra(&extra)).await;
    let resp = verify(&gw, "GET", "/public/x", None).await;
    assert_eq!(resp.status, 403, "{}", resp.all);
    assert!(resp.body.contains("access_denied"), "{}", resp.body);
}

#[tokio::test]
async fn forward_auth_is_off_by_default_and_needs_a_trust() {
    let (gw_up, gw) = {
        let up = MockUpstream::start(Mode::Record).await;
        let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
        (up, gw)
    };
    // Off: /auth/verify is just a path no route matches.
    assert_eq!(verify(&gw, "GET", "/public/x", None).await.status, 404);
    drop(gw_up);

    let dir = TestDir::new();
    let cfg =
        GatewayConfig::standard("http://127.0.0.1:9").extra("[forward_auth]\nenabled = true\n");
    let config = Gateway::prepare(&dir, &cfg);
    let out = run_cli(&["check", "--config", config.to_str().expect("utf-8 path")]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("trust = \"nginx\" or \"traefik\""),
        "{out:?}"
    );
}

/// A real nginx with `auth_request` in front of the echo upstream.
#[tokio::test]
async fn nginx_auth_request_enforces_the_gateways_decisions() {
    let echo = Upstream::echo().await;
    let gw = Gateway::start(GatewayConfig::standard(&echo.url()).extra(NGINX)).await;
    let nginx = match Nginx::start(&gw, &echo.url()).await {
        Ok(nginx) => nginx,
        Err(reason) => {
            eprintln!("SKIPPED: nginx cannot be installed or found here ({reason})");
            return;
        }
    };
    let user = format!("Bearer {}", gw.token("alice", &["reader"]));
    let admin = format!("Bearer {}", gw.token("root", &["admin"]));

    let allowed = nginx
        .request("GET", "/api/me", &[("Authorization", &user)])
        .await;
    assert_eq!(allowed.status, 200, "{}\n{}", allowed.all, nginx.log());
    assert!(
        allowed.body.contains(r#""x-auth-user":"alice""#),
        "{}",
        allowed.body
    );
    assert!(
        allowed.body.contains(r#""x-auth-roles":"reader""#),
        "{}",
        allowed.body
    );

    let cases: &[(&str, &str, Option<&str>, u16)] = &[
        ("GET", "/api/me", None, 401),
        ("GET", "/admin/x", Some(&user), 403),
        ("GET", "/admin/x", Some(&admin), 200),
        ("POST", "/api/me", Some(&user), 200),
        ("DELETE", "/api/me", None, 401),
        ("GET", "/public/%2e%2e/admin/x", Some(&user), 403),
        ("GET", "/%61dmin/x", Some(&user), 403),
        ("GET", "/admin/x?/public/x", None, 401),
    ];
    for (method, path, auth, want) in cases {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", *a)).collect();
        let via_nginx = nginx.request(method, path, &headers).await;
        assert_eq!(
            via_nginx.status,
            *want,
            "{method} {path}: {}\n{}",
            via_nginx.all,
            nginx.log()
        );
        // The gateway's own proxy gives the same answer.
        let direct = gw
            .client()
            .raw(raw_request(method, path, &headers).as_bytes())
            .await;
        assert_eq!(
            direct.status, *want,
            "{method} {path} via the gateway: {}",
            direct.all
        );
    }

    // A public route: allowed, and an identity the client forged never reaches the upstream.
    let forged = nginx
        .request(
            "GET",
            "/public/x",
            &[("X-Auth-User", "root"), ("X-Auth-Roles", "admin")],
        )
        .await;
    assert_eq!(forged.status, 200, "{}", forged.all);
    assert!(!forged.body.contains("x-auth-user"), "{}", forged.body);
    assert!(!forged.body.contains("x-auth-roles"), "{}", forged.body);
    // A route that does not exist is not an allow (nginx turns the 404 into a 500).
    let none = nginx.request("DELETE", "/public/x", &[]).await;
    assert_eq!(none.status, 500, "{}", none.all);
}

fn raw_request(method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    req
}
