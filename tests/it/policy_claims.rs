//! Route policies on scopes, forbidden roles and nested claims, against the real binary.
//!
//! Tokens are signed in the test with the key the gateway trusts, carrying the claims an
//! external identity provider would put there (`scope`, `scp`, nested objects).

use crate::common::*;
use http::StatusCode;
use serde_json::{json, Value};

fn routes(upstream_url: &str) -> String {
    format!(
        r#"[upstreams.api]
url = "{upstream_url}"

[[routes]]
path = "/orders/read/**"
upstream = "api"
scopes_any = ["orders:read", "orders:admin"]

[[routes]]
path = "/orders/write/**"
upstream = "api"
scopes_all = ["orders:read", "orders:write"]

[[routes]]
path = "/staff/**"
upstream = "api"
roles_any = ["staff"]
roles_none = ["suspended", "contractor"]

[[routes]]
path = "/tenant/**"
upstream = "api"
claims = {{ "org.tenant" = "acme", groups = {{ contains = "ops" }}, plan = {{ one_of = ["pro", "team"] }} }}

[[routes]]
path = "/legacy/**"
upstream = "api"
claims = {{ tenant = "acme", level = 3, verified = true }}

[[routes]]
path = "/namespaced/**"
upstream = "api"
claims = {{ "[https://example.com/claims].tenant" = "acme" }}
"#
    )
}

async fn gateway() -> (Gateway, Upstream) {
    let up = Upstream::echo().await;
    let gw = Gateway::start(GatewayConfig::new(routes(&up.url()))).await;
    (gw, up)
}

/// A valid access token for alice with `roles` and the extra claims in `extra`.
fn token(gw: &Gateway, roles: &[&str], extra: Value) -> String {
    let mut claims = gw.claims("alice", roles);
    for (name, value) in extra.as_object().expect("extra claims are an object") {
        claims[name] = value.clone();
    }
    gw.sign(&gw.header(), &claims)
}

async fn get(gw: &Gateway, path: &str, token: &str) -> Response {
    gw.client().get(path).bearer(token).send_h1().await
}

async fn assert_allowed(gw: &Gateway, path: &str, token: &str) {
    let resp = get(gw, path, token).await;
    assert_eq!(resp.status, StatusCode::OK, "{path}: {}", resp.text());
    assert_eq!(resp.json()["path"], path, "the upstream answered");
}

/// 403 insufficient_scope with `reason`, in the body, the challenge and the audit log.
async fn assert_denied(gw: &Gateway, path: &str, token: &str, reason: &str) {
    let resp = get(gw, path, token).await;
    assert_eq!(
        resp.status,
        StatusCode::FORBIDDEN,
        "{path}: {}",
        resp.text()
    );
    let body = resp.json();
    assert_eq!(body["error"], "insufficient_scope", "{path}: {body}");
    assert_eq!(body["error_description"], reason, "{path}: {body}");
    let challenge = resp.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#)
            && challenge.contains(&format!(r#"error_description="{reason}""#)),
        "{challenge}"
    );
    assert_no_token_in(&resp, token);
}

#[tokio::test]
async fn scope_string_and_scp_array_both_grant_scopes() {
    let (gw, _up) = gateway().await;
    let string = token(&gw, &[], json!({"scope": "profile orders:read email"}));
    assert_allowed(&gw, "/orders/read/1", &string).await;
    let okta = token(&gw, &[], json!({"scp": ["orders:admin"]}));
    assert_allowed(&gw, "/orders/read/1", &okta).await;
    // Microsoft Entra ID writes scp as a space-delimited string.
    let entra = token(&gw, &[], json!({"scp": "orders:write orders:read"}));
    assert_allowed(&gw, "/orders/write/1", &entra).await;
    // Both claims present: the union.
    let both = token(
        &gw,
        &[],
        json!({"scope": "orders:read", "scp": ["orders:write"]}),
    );
    assert_allowed(&gw, "/orders/write/1", &both).await;
}

#[tokio::test]
async fn missing_scope_is_403_with_the_reason() {
    let (gw, _up) = gateway().await;
    let none = token(&gw, &["admin"], json!({}));
    assert_denied(&gw, "/orders/read/1", &none, "missing scope").await;
    let read_only = token(&gw, &[], json!({"scope": "orders:read"}));
    assert_denied(&gw, "/orders/write/1", &read_only, "missing scope").await;
    // No prefix, substring or case games.
    let near = token(
        &gw,
        &[],
        json!({"scope": "orders:reader ORDERS:READ orders"}),
    );
    assert_denied(&gw, "/orders/read/1", &near, "missing scope").await;
    // A role of the same name is not a scope.
    let role = token(&gw, &["orders:read"], json!({}));
    assert_denied(&gw, "/orders/read/1", &role, "missing scope").await;
    let audit = gw.audit_events_at_least("denied", 1).await;
    assert!(
        audit
            .iter()
            .any(|l| l.contains("reason=\"missing scope\"") && l.contains("sub=\"alice\"")),
        "{audit:?}"
    );
}

#[tokio::test]
async fn scope_claims_of_the_wrong_type_grant_nothing() {
    let (gw, _up) = gateway().await;
    for extra in [
        json!({"scope": ["orders:read"]}),
        json!({"scope": {"orders:read": true}}),
        json!({"scp": {"orders:read": true}}),
        json!({"scp": [["orders:read"]]}),
        json!({"scp": ["orders:read orders:write"]}),
    ] {
        let t = token(&gw, &[], extra.clone());
        let path = if extra.to_string().contains("write") {
            "/orders/write/1"
        } else {
            "/orders/read/1"
        };
        assert_denied(&gw, path, &t, "missing scope").await;
    }
}

#[tokio::test]
async fn roles_none_denies_a_listed_role() {
    let (gw, _up) = gateway().await;
    assert_allowed(&gw, "/staff/home", &token(&gw, &["staff"], json!({}))).await;
    let suspended = token(&gw, &["staff", "suspended"], json!({}));
    assert_denied(&gw, "/staff/home", &suspended, "forbidden role").await;
    let contractor = token(&gw, &["contractor"], json!({}));
    assert_denied(&gw, "/staff/home", &contractor, "forbidden role").await;
    // Only `roles` counts: the same word in another claim is not a role.
    let elsewhere = token(
        &gw,
        &["staff"],
        json!({"groups": ["suspended"], "scope": "suspended"}),
    );
    assert_allowed(&gw, "/staff/home", &elsewhere).await;
    let audit = gw.audit_events_at_least("denied", 1).await;
    assert!(
        audit
            .iter()
            .any(|l| l.contains("reason=\"forbidden role\"")),
        "{audit:?}"
    );
}

#[tokio::test]
async fn nested_claims_with_equality_membership_and_allowed_values() {
    let (gw, _up) = gateway().await;
    let good = json!({"org": {"tenant": "acme"}, "groups": ["dev", "ops"], "plan": "team"});
    assert_allowed(&gw, "/tenant/x", &token(&gw, &[], good.clone())).await;
    let variants = [
        ("org", json!({"tenant": "evil"})),
        ("org", json!({"tenant": {"name": "acme"}})),
        ("org", json!([{"tenant": "acme"}])),
        ("groups", json!(["dev"])),
        ("plan", json!("free")),
    ];
    for (claim, value) in variants {
        let mut claims = good.clone();
        claims[claim] = value;
        let t = token(&gw, &[], claims.clone());
        assert_denied(&gw, "/tenant/x", &t, "claim mismatch").await;
    }
    // The dotted name at the top level is a different claim, not org.tenant.
    let flat = json!({"org.tenant": "acme", "groups": ["ops"], "plan": "pro"});
    assert_denied(&gw, "/tenant/x", &token(&gw, &[], flat), "claim mismatch").await;
    let missing = json!({"groups": ["ops"], "plan": "pro"});
    assert_denied(
        &gw,
        "/tenant/x",
        &token(&gw, &[], missing),
        "claim mismatch",
    )
    .await;
    let namespaced = json!({"https://example.com/claims": {"tenant": "acme"}});
    assert_allowed(&gw, "/namespaced/x", &token(&gw, &[], namespaced)).await;
}

#[tokio::test]
async fn type_confusion_never_matches() {
    let (gw, _up) = gateway().await;
    let base = json!({"org": {"tenant": "acme"}, "groups": ["ops"], "plan": "pro"});
    let confused = [
        // A string where an array condition is expected, and the reverse.
        ("groups", json!("ops")),
        ("groups", json!("dev ops")),
        ("plan", json!(["pro"])),
        ("plan", json!(["pro", "team"])),
        ("org", json!({"tenant": ["acme"]})),
    ];
    for (claim, value) in confused {
        let mut claims = base.clone();
        claims[claim] = value.clone();
        let t = token(&gw, &[], claims);
        assert_denied(&gw, "/tenant/x", &t, "claim mismatch").await;
    }
    let legacy = json!({"tenant": "acme", "level": 3, "verified": true});
    assert_allowed(&gw, "/legacy/x", &token(&gw, &[], legacy.clone())).await;
    for (claim, value) in [
        ("tenant", json!(["acme"])),
        ("level", json!("3")),
        ("level", json!(3.0)),
        ("verified", json!("true")),
        ("verified", json!(1)),
    ] {
        let mut claims = legacy.clone();
        claims[claim] = value;
        let t = token(&gw, &[], claims);
        assert_denied(&gw, "/legacy/x", &t, "claim mismatch").await;
    }
}

#[test]
fn bad_policies_are_config_errors_with_line_and_column() {
    let dir = TestDir::new();
    let routes = r#"[upstreams.api]
url = "http://127.0.0.1:9"

[[routes]]
path = "/a/**"
upstream = "api"
claims = { plan = { any_of = ["pro"] } }

[[routes]]
path = "/b/**"
upstream = "api"
claims = { plan = { one_of = [] }, "org..tenant" = "acme" }

[[routes]]
path = "/c/**"
upstream = "api"
scopes_any = []
scopes_all = ["orders read"]
roles_none = [""]

[[routes]]
path = "/d/**"
upstream = "api"
claims = { groups = ["ops"], exp = 5, ratio = 1.5 }

[[routes]]
path = "/e/**"
upstream = "api"
auth = "none"
scopes_any = ["x"]
"#;
    let config = Gateway::prepare(&dir, &GatewayConfig::new(routes));
    let out = run_cli(&["check", "--config", config.to_str().expect("utf-8 path")]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let file = dir.join("routes.toml");
    let at = |line: usize, col: usize, message: &str| {
        let expected = format!("{}:{line}:{col}: {message}", file.display());
        assert!(
            out.stderr.contains(&expected),
            "missing {expected:?} in\n{}",
            out.stderr
        );
    };
    at(7, 19, "claim \"plan\": unknown claim operator \"any_of\" (expected one of: equals, contains, one_of)");
    at(
        12,
        19,
        "claim \"plan\": one_of must list at least one value",
    );
    at(12, 36, "invalid claim path \"org..tenant\": empty name");
    at(17, 14, "scopes_any must list at least one scope");
    at(18, 14, "scopes_all: invalid scope \"orders read\"");
    at(
        19,
        14,
        "roles_none: invalid role \"\" (expected a non-empty name)",
    );
    at(24, 21, "claim \"groups\": an array is not a claim value");
    at(24, 30, "claim \"exp\" is checked by token verification");
    at(24, 47, "claim \"ratio\": a float is not a claim value");
    at(29, 8, "auth = \"none\" cannot be combined with");
}

#[tokio::test]
async fn explain_shows_the_new_conditions_and_agrees_with_the_gateway() {
    let (gw, _up) = gateway().await;
    let config = gw.config_arg();
    let explain = |path: &str, token: &str| {
        run_cli(&[
            "explain", "--config", &config, "GET", path, "--token", token,
        ])
    };
    let read_only = token(&gw, &[], json!({"scope": "orders:read"}));
    let out = explain("/orders/write/1", &read_only);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stdout
            .contains("  scopes_all: orders:read,orders:write\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.ends_with("decision: deny 403: missing scope\n"),
        "{}",
        out.stdout
    );
    assert_denied(&gw, "/orders/write/1", &read_only, "missing scope").await;

    let out = explain("/staff/x", &token(&gw, &["staff"], json!({})));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("  roles_none: suspended,contractor\n"),
        "{}",
        out.stdout
    );

    let wrong_plan = json!({"org": {"tenant": "acme"}, "groups": ["ops"], "plan": ["pro"]});
    let out = explain("/tenant/x", &token(&gw, &[], wrong_plan));
    assert_eq!(out.code, Some(2), "{out:?}");
    let expected = "  claims: groups contains \"ops\", org.tenant = \"acme\", plan one of [\"pro\", \"team\"]\n";
    assert!(out.stdout.contains(expected), "{}", out.stdout);
    assert!(
        out.stdout.ends_with("decision: deny 403: claim mismatch\n"),
        "{}",
        out.stdout
    );
}

/// `[[issuers]]` for a Keycloak-like provider: roles at realm_access.roles.
fn issuer_section(idp: &Idp) -> String {
    format!(
        "[[issuers]]\nissuer = \"{}\"\naudience = \"orders-api\"\ndiscovery_url = \"{}\"\nroles_claim = \"realm_access.roles\"\n",
        idp.issuer,
        idp.discovery_url()
    )
}

#[tokio::test]
async fn external_issuer_tokens_are_held_to_scopes_roles_none_and_nested_claims() {
    let key = IdpKey::generate("okta-1", "RS256");
    let idp = Idp::start(vec![key.clone()]).await;
    let up = Upstream::echo().await;
    let cfg = GatewayConfig::new(routes(&up.url())).extra(&issuer_section(&idp));
    let gw = Gateway::start(cfg).await;
    let provider = |roles: &[&str], extra: Value| {
        let mut claims = idp.claims("00u1okta", roles);
        for (name, value) in extra.as_object().expect("an object") {
            claims[name] = value.clone();
        }
        idp.sign(&key, &claims)
    };
    let okta = provider(&[], json!({"scp": ["orders:read", "openid"]}));
    assert_allowed(&gw, "/orders/read/1", &okta).await;
    let no_scope = provider(&[], json!({}));
    assert_denied(&gw, "/orders/read/1", &no_scope, "missing scope").await;
    // roles_none reads the roles the issuer's roles_claim yields.
    let suspended = provider(&["staff", "suspended"], json!({}));
    assert_denied(&gw, "/staff/x", &suspended, "forbidden role").await;
    assert_allowed(&gw, "/staff/x", &provider(&["staff"], json!({}))).await;
    let nested = json!({"org": {"tenant": "acme"}, "groups": ["ops"], "plan": "pro"});
    assert_allowed(&gw, "/tenant/x", &provider(&[], nested)).await;
    // A string where the route wants array membership: refused, as for the gateway's tokens.
    let flat = json!({"org": {"tenant": "acme"}, "groups": "ops", "plan": "pro"});
    assert_denied(&gw, "/tenant/x", &provider(&[], flat), "claim mismatch").await;
}
