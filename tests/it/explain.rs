//! `portcullis explain`: what the gateway would do with a request, said offline, and the
//! running gateway answering that same request the same way.

use crate::common::*;
use http::StatusCode;

/// Exit codes of `explain`.
const ALLOW: Option<i32> = Some(0);
const CONFIG_ERROR: Option<i32> = Some(1);
const DENY: Option<i32> = Some(2);

/// A gateway on the standard routes in front of the echo upstream.
async fn gateway() -> (Gateway, Upstream) {
    let echo = Upstream::echo().await;
    let gw = Gateway::start(GatewayConfig::standard(&echo.url())).await;
    (gw, echo)
}

/// `portcullis explain` on the gateway's own config, and the live gateway's status for
/// the same method, path, Host and token.
async fn explain_and_send(
    gw: &Gateway,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (CliOutput, StatusCode) {
    let config = gw.config_arg();
    let host = gw.authority();
    let mut args = vec![
        "explain", "--config", &config, "--host", &host, method, path,
    ];
    if let Some(token) = token {
        args.extend(["--token", token]);
    }
    let explained = run_cli(&args);
    let mut request = gw.client().request(method, path);
    if let Some(token) = token {
        request = request.bearer(token);
    }
    (explained, request.send_h1().await.status)
}

/// The `decision:` line of an explanation.
fn decision(out: &CliOutput) -> &str {
    out.stdout
        .lines()
        .find(|l| l.starts_with("decision: "))
        .unwrap_or_else(|| panic!("no decision line: {out:?}"))
}

#[tokio::test]
async fn allowed_request_names_the_route_the_subject_and_the_forwarded_path() {
    let (gw, _echo) = gateway().await;
    let token = gw.token("alice", &["admin", "dev"]);
    let (out, live) = explain_and_send(&gw, "GET", "/api/orders?limit=5", Some(&token)).await;
    assert_eq!(out.code, ALLOW, "{out:?}");
    assert_eq!(live, StatusCode::OK);
    assert_eq!(
        decision(&out),
        "decision: allow as alice (roles: admin,dev)"
    );
    let routes_toml = gw.dir.join("routes.toml");
    let origin = format!("route: /api/** (rule #4 at {}:", routes_toml.display());
    assert!(out.stdout.contains(&origin), "{}", out.stdout);
    assert!(
        out.stdout.contains("  upstream: api\n  auth: required\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("  forwarded as: /api/orders?limit=5 (http://"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("revocation: not checked (explain runs offline)"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains(&token), "explain echoes the token");
}

#[tokio::test]
async fn public_route_is_allowed_without_a_token() {
    let (gw, _echo) = gateway().await;
    let (out, live) = explain_and_send(&gw, "GET", "/public/index.html", None).await;
    assert_eq!((out.code, live), (ALLOW, StatusCode::OK), "{out:?}");
    assert_eq!(decision(&out), "decision: allow (auth = none)");
    assert!(
        out.stdout.contains("  methods: GET,HEAD\n"),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn required_route_without_a_token_is_a_401() {
    let (gw, _echo) = gateway().await;
    let (out, live) = explain_and_send(&gw, "GET", "/api/orders", None).await;
    assert_eq!(
        (out.code, live),
        (DENY, StatusCode::UNAUTHORIZED),
        "{out:?}"
    );
    assert_eq!(decision(&out), "decision: deny 401: missing bearer token");
}

#[tokio::test]
async fn token_signed_by_another_key_is_a_401_with_the_reason() {
    let (gw, _echo) = gateway().await;
    let other =
        jsonwebtoken::EncodingKey::from_ed_pem(ed25519_pem().0.as_bytes()).expect("ed25519 PEM");
    let forged = jsonwebtoken::encode(&gw.header(), &gw.claims("mallory", &["admin"]), &other)
        .expect("sign");
    let (out, live) = explain_and_send(&gw, "GET", "/admin/users", Some(&forged)).await;
    assert_eq!(
        (out.code, live),
        (DENY, StatusCode::UNAUTHORIZED),
        "{out:?}"
    );
    assert_eq!(decision(&out), "decision: deny 401: bad signature");
}

#[tokio::test]
async fn valid_token_without_the_role_is_a_403() {
    let (gw, _echo) = gateway().await;
    let token = gw.token("bob", &["dev"]);
    let (out, live) = explain_and_send(&gw, "DELETE", "/admin/users/7", Some(&token)).await;
    assert_eq!((out.code, live), (DENY, StatusCode::FORBIDDEN), "{out:?}");
    assert!(
        out.stdout.contains("  roles_any: admin\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("token: valid for bob (roles: dev)\n"),
        "{}",
        out.stdout
    );
    assert_eq!(decision(&out), "decision: deny 403: missing role");
}

#[tokio::test]
async fn unmatched_request_is_a_404_that_never_reaches_the_upstream() {
    let (gw, _echo) = gateway().await;
    // /public/** is GET and HEAD only, so a POST there matches nothing either.
    for (method, path) in [("GET", "/nowhere"), ("POST", "/public/form")] {
        let (out, live) = explain_and_send(&gw, method, path, None).await;
        assert_eq!((out.code, live), (DENY, StatusCode::NOT_FOUND), "{out:?}");
        assert!(
            out.stdout
                .contains("route: none; no route matches; the upstream never sees it\n"),
            "{}",
            out.stdout
        );
        assert_eq!(
            decision(&out),
            "decision: deny 404: no route matches the request"
        );
    }
}

#[tokio::test]
async fn path_trick_is_a_400_with_the_reason() {
    let (gw, _echo) = gateway().await;
    let (out, live) = explain_and_send(&gw, "GET", "/public/a%2Fb", None).await;
    assert_eq!((out.code, live), (DENY, StatusCode::BAD_REQUEST), "{out:?}");
    assert_eq!(decision(&out), "decision: deny 400: encoded slash in path");
}

#[test]
fn invalid_configuration_exits_1_with_the_error() {
    let dir = TestDir::new();
    let config = dir.write("gateway.toml", "[listen]\naddr = \"nowhere\"\n");
    let out = run_cli(&[
        "explain",
        "--config",
        config.to_str().expect("utf-8 path"),
        "GET",
        "/",
    ]);
    assert_eq!(out.code, CONFIG_ERROR, "{out:?}");
    assert!(out.stderr.contains("invalid configuration"), "{out:?}");
    assert!(out.stderr.contains("gateway.toml:2:8:"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
}
