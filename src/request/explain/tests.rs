//! `explain` on a snapshot loaded from inline TOML, one test per outcome.

use super::*;
use crate::config::test_support::{write_material, GATEWAY};
use crate::config::{load, Source};
use crate::token::mint::{self, Grant};

const ROUTES: &str = r#"
[upstreams.api]
url = "http://127.0.0.1:9/base"
[[routes]]
path = "/public/**"
methods = ["GET", "HEAD"]
upstream = "api"
auth = "none"
[[routes]]
host = "admin.example.com"
path = "/admin/**"
upstream = "api"
roles_any = ["admin"]
claims = { tenant = "acme" }
strip_prefix = "/admin"
[[routes]]
path = "/api/**"
upstream = "api"
"#;

const NOW: u64 = 1_800_000_000;

fn snapshot() -> Snapshot {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path();
    write_material(p);
    std::fs::write(p.join("gateway.toml"), GATEWAY).expect("write gateway");
    std::fs::write(p.join("routes.toml"), ROUTES).expect("write routes");
    let loaded = load(&Source::File(p.join("gateway.toml")));
    loaded
        .unwrap_or_else(|e| panic!("test config must load:\n{e}"))
        .snapshot
}

fn token(snap: &Snapshot, roles: &[&str], extra: serde_json::Value) -> String {
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    let grant = Grant {
        sub: "alice",
        roles: &roles,
        extra: extra.as_object().cloned().unwrap_or_default(),
        typ: TokenType::Access,
        fam: None,
        ttl_secs: 900,
        authn: Default::default(),
    };
    let (token, _) =
        mint::mint(&snap.keys, "portcullis", "portcullis", grant, NOW).expect("mint test token");
    token
}

fn run(
    snap: &Snapshot,
    method: Method,
    path: &str,
    host: Option<&str>,
    token: Option<&str>,
) -> Explanation {
    explain(snap, &method, path, host, token, NOW)
}

#[test]
fn public_route_is_allowed_without_a_token() {
    let snap = snapshot();
    let e = run(&snap, Method::GET, "/public/a?x=1", None, None);
    assert!(e.allowed());
    let text = e.to_string();
    assert!(text.contains("route: /public/** (rule #1 at "), "{text}");
    assert!(text.contains("routes.toml:5:8)"), "{text}");
    assert!(text.contains("  methods: GET,HEAD\n"), "{text}");
    assert!(
        text.contains("  forwarded as: /public/a?x=1 (http://127.0.0.1:9/base/public/a?x=1)"),
        "{text}"
    );
    assert!(text.ends_with("decision: allow (auth = none)\n"), "{text}");
}

#[test]
fn valid_token_with_the_role_and_claim_is_allowed_as_its_subject() {
    let snap = snapshot();
    let t = token(
        &snap,
        &["admin", "dev"],
        serde_json::json!({"tenant": "acme"}),
    );
    let e = run(
        &snap,
        Method::DELETE,
        "/admin/users/7",
        Some("Admin.Example.com:8443"),
        Some(&t),
    );
    assert!(e.allowed(), "{e}");
    let text = e.to_string();
    assert!(text.contains("  host: admin.example.com\n"), "{text}");
    assert!(
        text.contains("  roles_any: admin\n  claims: tenant = \"acme\"\n"),
        "{text}"
    );
    assert!(
        text.contains("  strip_prefix: /admin\n  forwarded as: /users/7 "),
        "{text}"
    );
    assert!(
        text.contains("revocation: not checked (explain runs offline)"),
        "{text}"
    );
    assert!(
        text.ends_with("decision: allow as alice (roles: admin,dev)\n"),
        "{text}"
    );
    assert!(!text.contains(&t), "the token is never echoed");
}

#[test]
fn required_route_without_a_token_is_401_missing_bearer_token() {
    let snap = snapshot();
    let e = run(&snap, Method::GET, "/api/x", None, None);
    assert_eq!(e.verdict, Verdict::Deny(Reject::Token(TokenError::Missing)));
    assert!(!e.allowed());
    assert!(
        e.to_string()
            .ends_with("decision: deny 401: missing bearer token\n"),
        "{e}"
    );
}

#[test]
fn bad_and_expired_tokens_are_401_with_the_reason() {
    let snap = snapshot();
    let e = run(&snap, Method::GET, "/api/x", None, Some("not a jwt"));
    assert_eq!(
        e.verdict,
        Verdict::Deny(Reject::Token(TokenError::Malformed))
    );
    let t = token(&snap, &[], serde_json::json!({}));
    let later = explain(&snap, &Method::GET, "/api/x", None, Some(&t), NOW + 3600);
    assert!(
        later
            .to_string()
            .ends_with("decision: deny 401: token expired\n"),
        "{later}"
    );
}

#[test]
fn missing_role_or_claim_is_403_and_names_the_subject() {
    let snap = snapshot();
    let host = Some("admin.example.com");
    let t = token(&snap, &["dev"], serde_json::json!({"tenant": "acme"}));
    let e = run(&snap, Method::GET, "/admin/x", host, Some(&t));
    let text = e.to_string();
    assert!(
        text.contains("token: valid for alice (roles: dev)\n"),
        "{text}"
    );
    assert!(
        text.ends_with("decision: deny 403: missing role\n"),
        "{text}"
    );
    let t = token(&snap, &["admin"], serde_json::json!({"tenant": "evil"}));
    let e = run(&snap, Method::GET, "/admin/x", host, Some(&t));
    assert!(
        e.to_string()
            .ends_with("decision: deny 403: claim mismatch\n"),
        "{e}"
    );
}

#[test]
fn unmatched_request_is_404_and_host_routes_need_their_host() {
    let snap = snapshot();
    for (method, path, host) in [
        (Method::POST, "/public/a", None),
        (Method::GET, "/nowhere", None),
        (Method::GET, "/admin/x", None),
        (Method::GET, "/admin/x", Some("other.example.com")),
    ] {
        let e = run(&snap, method, path, host, None);
        assert_eq!(e.verdict, Verdict::Deny(Reject::NoRoute), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("route: none; no route matches; the upstream never sees it\n"),
            "{text}"
        );
        assert!(
            text.ends_with("decision: deny 404: no route matches the request\n"),
            "{text}"
        );
    }
}

#[test]
fn path_tricks_are_400_with_the_reason_and_dot_segments_are_resolved() {
    let snap = snapshot();
    let e = run(&snap, Method::GET, "/public/%2e%2e/api/x", None, None);
    assert!(e.to_string().contains("normalized path: /api/x\n"), "{e}");
    assert_eq!(e.verdict, Verdict::Deny(Reject::Token(TokenError::Missing)));
    for (path, reason) in [
        ("/public/a%2Fb", "encoded slash in path"),
        ("/public/../../etc", "path climbs above the root"),
        ("public", "path does not start with '/'"),
    ] {
        let e = run(&snap, Method::GET, path, None, None);
        assert!(
            e.to_string()
                .ends_with(&format!("decision: deny 400: {reason}\n")),
            "{e}"
        );
    }
    let e = run(&snap, Method::GET, "/public/a", Some("a@b"), None);
    assert!(
        e.to_string()
            .ends_with("decision: deny 400: invalid Host (expected host[:port])\n"),
        "{e}"
    );
}

#[test]
fn gateway_endpoints_are_answered_by_the_gateway() {
    let snap = snapshot();
    let e = run(&snap, Method::POST, "/auth/login", None, None);
    assert_eq!(e.verdict, Verdict::Gateway(Endpoint::Login));
    assert!(e.allowed());
    assert!(
        e.to_string()
            .contains("answered by the gateway: login endpoint"),
        "{e}"
    );
    let jwks = run(&snap, Method::GET, endpoints::JWKS_PATH, None, None);
    assert_eq!(jwks.verdict, Verdict::Gateway(Endpoint::Jwks));
    let wrong = run(&snap, Method::GET, "/auth/refresh", None, None);
    assert_eq!(wrong.verdict, Verdict::Deny(Reject::MethodNotAllowed));
    assert!(!wrong.allowed());
}
