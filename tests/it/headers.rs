//! What the upstream sees: the real identity and forwarding headers, never a forged one.

use crate::common::*;
use http::StatusCode;

async fn gateway_with_echo(cfg: impl FnOnce(String) -> GatewayConfig) -> (Gateway, Upstream) {
    let echo = Upstream::echo().await;
    let gw = Gateway::start(cfg(echo.url())).await;
    (gw, echo)
}

/// `x_auth_user`, `X.Auth.User`, `X-AUTH-ROLES` all fold to `x-auth-...`.
fn folded(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

fn is_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[tokio::test]
async fn forged_identity_headers_never_reach_the_upstream_over_http1_and_http2() {
    let (gw, _echo) = gateway_with_echo(|u| GatewayConfig::standard(&u)).await;
    for version in [http::Version::HTTP_11, http::Version::HTTP_2] {
        let resp = gw
            .client()
            .get("/api/me")
            .bearer(&gw.token("alice", &["user"]))
            .header("X-Auth-User", "admin")
            .header("x_auth_user", "admin")
            .header("X.Auth.User", "admin")
            .header("X-AUTH-ROLES", "admin")
            .header("x-auth-tenant", "acme")
            .header("X_Auth_Roles", "admin")
            .send(version)
            .await;
        assert_eq!(resp.status, StatusCode::OK, "{version:?}: {}", resp.text());
        assert_eq!(resp.echoed_header("x-auth-user").as_deref(), Some("alice"));
        assert_eq!(resp.echoed_header("x-auth-roles").as_deref(), Some("user"));
        for name in resp.echoed_header_names() {
            let f = folded(&name);
            if f.starts_with("x-auth-") {
                assert!(
                    f == "x-auth-user" || f == "x-auth-roles",
                    "{version:?}: client header {name:?} reached the upstream"
                );
                assert_eq!(
                    name, f,
                    "{version:?}: client-spelled {name:?} reached the upstream"
                );
            }
        }
    }
}

#[tokio::test]
async fn forged_identity_is_stripped_on_public_routes_too() {
    let (gw, _echo) = gateway_with_echo(|u| GatewayConfig::standard(&u)).await;
    let resp = gw
        .client()
        .get("/public/x")
        .header("X-Auth-User", "admin")
        .header("x_auth_user", "admin")
        .header("X.Auth.User", "admin")
        .header("X-AUTH-ROLES", "admin")
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    let leaked: Vec<String> = resp
        .echoed_header_names()
        .into_iter()
        .filter(|n| folded(n).starts_with("x-auth-"))
        .collect();
    assert!(
        leaked.is_empty(),
        "identity headers on an anonymous request: {leaked:?}"
    );
}

#[tokio::test]
async fn forwarding_headers_describe_the_client() {
    let (gw, _echo) = gateway_with_echo(|u| GatewayConfig::standard(&u)).await;
    // HTTP/1.1 brings Host (its value is passed on as it is); HTTP/2 brings :authority,
    // which the gateway writes into Host itself.
    for version in [http::Version::HTTP_11, http::Version::HTTP_2] {
        let resp = gw.client().get("/public/x").send(version).await;
        assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
        assert_eq!(
            resp.echoed_header("x-forwarded-for").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            resp.echoed_header("x-forwarded-proto").as_deref(),
            Some("https")
        );
        let fwd_host = resp.echoed_header("x-forwarded-host").unwrap_or_default();
        assert!(
            fwd_host.starts_with("localhost:"),
            "{version:?}: x-forwarded-host = {fwd_host:?}"
        );
        assert_eq!(
            resp.echoed_header("host"),
            Some(fwd_host),
            "{version:?}: the upstream's Host is the request's host"
        );
    }
}

#[tokio::test]
async fn client_sent_forwarded_for_cannot_hide_the_real_client() {
    let (gw, _echo) = gateway_with_echo(|u| GatewayConfig::standard(&u)).await;
    let resp = gw
        .client()
        .get("/public/x")
        .header("X-Forwarded-For", "203.0.113.9")
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    let xff = resp.echoed_header("x-forwarded-for").unwrap_or_default();
    let last = xff.rsplit(',').next().unwrap_or_default().trim();
    assert_eq!(last, "127.0.0.1", "x-forwarded-for = {xff:?}");
}

#[tokio::test]
async fn well_formed_request_id_is_kept() {
    let (gw, _echo) = gateway_with_echo(|u| GatewayConfig::standard(&u)).await;
    let id = "abc-123.DEF_456";
    let resp = gw
        .client()
        .get("/public/x")
        .header("X-Request-Id", id)
        .send_h1()
        .await;
    assert_eq!(resp.echoed_header("x-request-id").as_deref(), Some(id));
}

#[tokio::test]
async fn malformed_request_id_is_replaced() {
    let (gw, _echo) = gateway_with_echo(|u| GatewayConfig::standard(&u)).await;
    let too_long = "a".repeat(129);
    for bad in ["has space", "semi;colon", "<script>", too_long.as_str()] {
        let resp = gw
            .client()
            .get("/public/x")
            .header("X-Request-Id", bad)
            .send_h1()
            .await;
        assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
        let id = resp.echoed_header("x-request-id").unwrap_or_default();
        assert_ne!(id, bad, "malformed request id forwarded as is");
        assert!(
            is_request_id(&id),
            "replacement id {id:?} is not well formed"
        );
    }
}

#[tokio::test]
async fn missing_request_id_is_generated_fresh() {
    let (gw, _echo) = gateway_with_echo(|u| GatewayConfig::standard(&u)).await;
    let a = gw
        .client()
        .get("/public/x")
        .send_h1()
        .await
        .echoed_header("x-request-id")
        .unwrap_or_default();
    let b = gw
        .client()
        .get("/public/x")
        .send_h1()
        .await
        .echoed_header("x-request-id")
        .unwrap_or_default();
    assert!(
        is_request_id(&a) && is_request_id(&b),
        "generated ids {a:?}, {b:?}"
    );
    assert_ne!(a, b, "two requests got the same id");
}

#[tokio::test]
async fn authorization_is_forwarded_by_default() {
    let (gw, _echo) = gateway_with_echo(|u| GatewayConfig::standard(&u)).await;
    let token = gw.token("alice", &["user"]);
    let resp = gw.client().get("/api/x").bearer(&token).send_h1().await;
    assert_eq!(
        resp.echoed_header("authorization"),
        Some(format!("Bearer {token}"))
    );
}

#[tokio::test]
async fn authorization_is_withheld_when_forward_authorization_is_false() {
    let (gw, _echo) = gateway_with_echo(|u| {
        GatewayConfig::standard(&u).extra("[identity]\nforward_authorization = false")
    })
    .await;
    let resp = gw
        .client()
        .get("/api/x")
        .bearer(&gw.token("alice", &["user"]))
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    assert_eq!(resp.echoed_header("x-auth-user").as_deref(), Some("alice"));
    assert_eq!(resp.echoed_header("authorization"), None);
}

#[tokio::test]
async fn identity_header_names_are_configurable() {
    let (gw, _echo) = gateway_with_echo(|u| {
        GatewayConfig::standard(&u)
            .extra("[identity]\nuser = \"X-Auth-Subject\"\nroles = \"X-Auth-Groups\"")
    })
    .await;
    let resp = gw
        .client()
        .get("/api/x")
        .bearer(&gw.token("alice", &["a", "b"]))
        .header("X-Auth-User", "admin")
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    assert_eq!(
        resp.echoed_header("x-auth-subject").as_deref(),
        Some("alice")
    );
    assert_eq!(resp.echoed_header("x-auth-groups").as_deref(), Some("a,b"));
    assert_eq!(
        resp.echoed_header("x-auth-user"),
        None,
        "forged header survived"
    );
}

#[tokio::test]
async fn hop_by_hop_headers_are_not_forwarded() {
    let (gw, _echo) = gateway_with_echo(|u| GatewayConfig::standard(&u)).await;
    let resp = gw
        .client()
        .get("/public/x")
        .header("Connection", "keep-alive, X-Hop")
        .header("X-Hop", "secret")
        .header("Keep-Alive", "timeout=5")
        .header("Proxy-Connection", "keep-alive")
        .header("X-End-To-End", "kept")
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    assert_eq!(
        resp.echoed_header("x-hop"),
        None,
        "header named in Connection was forwarded"
    );
    assert_eq!(resp.echoed_header("keep-alive"), None);
    assert_eq!(resp.echoed_header("proxy-connection"), None);
    assert_eq!(resp.echoed_header("x-end-to-end").as_deref(), Some("kept"));
}

#[tokio::test]
async fn repeated_headers_reach_the_upstream_in_order() {
    let (gw, _echo) = gateway_with_echo(|u| GatewayConfig::standard(&u)).await;
    let resp = gw
        .client()
        .get("/public/x")
        .header("X-Multi", "a")
        .header("X-Multi", "b")
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    assert_eq!(resp.echoed_header("x-multi").as_deref(), Some("a, b"));
}

const HSTS: &str = "max-age=31536000; includeSubDomains";

#[tokio::test]
async fn hsts_is_added_to_every_https_answer_and_never_over_plain_http() {
    let (gw, _echo) = gateway_with_echo(|u| {
        GatewayConfig::standard(&u)
            .listen(&format!("hsts = \"{HSTS}\""))
            .plain()
    })
    .await;
    for version in [http::Version::HTTP_11, http::Version::HTTP_2] {
        let proxied = gw.client().get("/public/x").send(version).await;
        assert_eq!(proxied.status, StatusCode::OK, "{version:?}");
        assert_eq!(
            proxied.header("strict-transport-security").as_deref(),
            Some(HSTS)
        );
        let refused = gw.client().get("/api/x").send(version).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{version:?}");
        assert_eq!(
            refused.header("strict-transport-security").as_deref(),
            Some(HSTS)
        );
    }
    let plain = plain_get_raw(gw.plain.expect("plain listener"), "/public/x")
        .await
        .expect("a plain answer")
        .head;
    assert!(plain.starts_with("HTTP/1.1 200"), "{plain}");
    assert!(
        !plain
            .to_ascii_lowercase()
            .contains("strict-transport-security"),
        "{plain}"
    );
}

#[tokio::test]
async fn no_hsts_unless_configured() {
    let (gw, _echo) = gateway_with_echo(|u| GatewayConfig::standard(&u)).await;
    let resp = gw.client().get("/public/x").send_h1().await;
    assert_eq!(resp.header("strict-transport-security"), None);
}

/// Every value the gateway writes into a forwarded request (target, identity, request id)
/// is cut from a buffer of that request alone, and upstream connections are pooled: many
/// users at once over HTTP/1.1 and HTTP/2 must each see exactly their own.
#[tokio::test]
async fn concurrent_requests_of_different_users_never_see_each_others_values() {
    let (gw, _echo) = gateway_with_echo(|u| GatewayConfig::standard(&u)).await;
    let gw = std::sync::Arc::new(gw);
    let users = (0..8).map(|user| {
        let gw = gw.clone();
        tokio::spawn(async move {
            let (sub, role) = (format!("user-{user}"), format!("role-{user}"));
            let token = gw.token(&sub, &[role.as_str()]);
            let mut fresh_ids = Vec::new();
            for n in 0..12 {
                let version = [http::Version::HTTP_11, http::Version::HTTP_2][n % 2];
                let (path, query) = (format!("/api/{sub}/item-{n}"), format!("n={n}&u={user}"));
                // Half the requests bring their id; the others get a fresh one.
                let id = format!("req-{user}-{n}");
                let mut request = gw.client().get(&format!("{path}?{query}")).bearer(&token);
                if n % 4 < 2 {
                    request = request.header("X-Request-Id", &id);
                }
                let resp = request.send(version).await;
                assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
                let echoed = resp.json();
                let at = format!("{sub} request {n} ({version:?})");
                assert_eq!(echoed["path"], path.as_str(), "{at}");
                assert_eq!(echoed["query"], query.as_str(), "{at}");
                assert_eq!(resp.echoed_header("x-auth-user"), Some(sub.clone()), "{at}");
                assert_eq!(
                    resp.echoed_header("x-auth-roles"),
                    Some(role.clone()),
                    "{at}"
                );
                let echoed_id = resp.echoed_header("x-request-id").unwrap_or_default();
                if n % 4 < 2 {
                    assert_eq!(echoed_id, id, "{at}");
                } else {
                    assert!(
                        is_request_id(&echoed_id) && echoed_id.len() == 32,
                        "{at}: {echoed_id}"
                    );
                    fresh_ids.push(echoed_id);
                }
            }
            fresh_ids
        })
    });
    let mut fresh_ids = std::collections::HashSet::new();
    for user in users.collect::<Vec<_>>() {
        for id in user.await.expect("no user's requests failed") {
            assert!(fresh_ids.insert(id.clone()), "request id {id} given twice");
        }
    }
    assert_eq!(fresh_ids.len(), 8 * 6);
}
