//! External issuers: a Keycloak-like provider on loopback, its keys fetched by the gateway,
//! its tokens verified, revoked and authorized like the gateway's own (attacks: issuers_attacks.rs).

use crate::common::*;
use http::StatusCode;
use serde_json::{json, Value};

async fn get(gw: &Gateway, path: &str, token: &str) -> Response {
    gw.client().get(path).bearer(token).send_h1().await
}

async fn admin_get(gw: &Gateway, path: &str) -> (u16, String) {
    plain_get(gw.admin, path).await.expect("admin listener")
}

/// The value of one series in /metrics.
async fn metric(gw: &Gateway, series: &str) -> Option<f64> {
    let (_, body) = admin_get(gw, "/metrics").await;
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn provider_token_is_accepted_with_roles_from_the_nested_claim() {
    let key = IdpKey::generate("rsa-1", "RS256");
    let idp = Idp::start(vec![key.clone()]).await;
    let echo = Upstream::echo().await;
    let gw = idp.gateway(&echo.url(), "").await;
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));

    let admin = idp.sign(&key, &idp.claims("f3a1-uuid", &["admin", "offline_access"]));
    let resp = get(&gw, "/admin/report", &admin).await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    assert_eq!(
        resp.echoed_header("x-auth-user").as_deref(),
        Some("f3a1-uuid")
    );
    assert_eq!(
        resp.echoed_header("x-auth-roles").as_deref(),
        Some("admin,offline_access")
    );

    // Roles are read at realm_access.roles only: a top-level "roles" grants nothing.
    let mut claims = idp.claims("bob", &["viewer"]);
    claims["roles"] = json!(["admin"]);
    let viewer = idp.sign(&key, &claims);
    assert_eq!(
        get(&gw, "/api/orders", &viewer).await.status,
        StatusCode::OK
    );
    let denied = get(&gw, "/admin/report", &viewer).await;
    assert_eq!(
        denied.status,
        StatusCode::FORBIDDEN,
        "body: {}",
        denied.text()
    );

    // The gateway's own tokens keep working beside the provider's, with their own checks.
    let own = get(&gw, "/admin/report", &gw.token("alice", &["admin"])).await;
    assert_eq!(own.status, StatusCode::OK, "body: {}", own.text());
    let mut refresh = gw.claims("alice", &["admin"]);
    refresh["typ"] = json!("refresh");
    refresh["fam"] = json!("family-1");
    let refresh = gw.sign(&gw.header(), &refresh);
    let resp = get(&gw, "/admin/report", &refresh).await;
    assert_invalid_token(&resp, "wrong token type", &refresh);
}

#[tokio::test]
async fn rotated_key_is_accepted_after_one_refetch() {
    let old = IdpKey::generate("rsa-2025", "RS256");
    let idp = Idp::start(vec![old.clone()]).await;
    let echo = Upstream::echo().await;
    let gw = idp.gateway(&echo.url(), "").await;
    assert_eq!(idp.jwks_fetches(), 1);

    let new = IdpKey::generate("rsa-2026", "RS256");
    idp.publish(vec![new.clone(), old.clone()]);
    let token = idp.sign(&new, &idp.claims("carol", &["admin"]));
    // The first request names an unknown kid: 401 at once, and a refetch off the request path.
    let first = get(&gw, "/api/orders", &token).await;
    assert_invalid_token(&first, "unknown key id", &token);
    eventually(DEADLINE, || async {
        match get(&gw, "/api/orders", &token).await.status {
            StatusCode::OK => Ok(()),
            other => Err(format!("still {other}")),
        }
    })
    .await
    .expect("token with the new kid accepted");
    assert_eq!(idp.jwks_fetches(), 2, "exactly one refetch");
    // Discovery was read once; the refetch went straight to the cached jwks_uri.
    assert_eq!(idp.discovery_fetches(), 1);
    let old_token = idp.sign(&old, &idp.claims("carol", &["admin"]));
    assert_eq!(
        get(&gw, "/api/orders", &old_token).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_flood_of_random_kids_causes_at_most_one_fetch_per_interval() {
    let key = IdpKey::generate("rsa-1", "RS256");
    let idp = Idp::start(vec![key.clone()]).await;
    let up = MockUpstream::start(Mode::Record).await;
    let gw = idp.gateway(&up.url(), "").await;
    assert_eq!(idp.jwks_fetches(), 1);

    let claims = idp.claims("mallory", &["admin"]);
    let tokens: Vec<String> = (0..1000)
        .map(|i| {
            let header = json!({ "alg": "RS256", "kid": format!("random-{i}-{}", now_secs()) });
            sign_raw(&header, &claims, &key)
        })
        .collect();
    let statuses = h2_flood(&gw, &tokens).await;
    assert!(
        statuses.iter().all(|s| s == "401 unknown key id"),
        "{:?}",
        statuses.iter().find(|s| *s != "401 unknown key id")
    );
    // The first unknown kid may refetch (interval "1h"), none of the other 999.
    eventually(DEADLINE, || async {
        match idp.jwks_fetches() {
            2 => Ok(()),
            n => Err(format!("{n} fetches")),
        }
    })
    .await
    .expect("the one refetch happened");
    // A real new key is not fetched either until the interval is over: the limit holds.
    let new = IdpKey::generate("rsa-2", "RS256");
    idp.publish(vec![new.clone(), key.clone()]);
    let token = idp.sign(&new, &idp.claims("carol", &[]));
    assert_invalid_token(
        &get(&gw, "/api/orders", &token).await,
        "unknown key id",
        &token,
    );
    let series = format!(
        "portcullis_issuer_jwks_fetches_total{{issuer=\"{}\",result=\"ok\"}}",
        idp.issuer
    );
    assert_eq!(metric(&gw, &series).await, Some(2.0));
    assert_eq!(idp.jwks_fetches(), 2, "fetches after 1001 unknown kids");
    assert!(up.seen().is_empty());
}

/// Sends every token to /api/orders over one HTTP/2 connection, 50 at a time; returns
/// "STATUS error_description" for each.
async fn h2_flood(gw: &Gateway, tokens: &[String]) -> Vec<String> {
    let tls = gw.client().connect_tls(&[b"h2"]).await.expect("TLS");
    let (send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    let mut out = Vec::new();
    for batch in tokens.chunks(50) {
        let mut set = tokio::task::JoinSet::new();
        for token in batch {
            let mut send = send.clone();
            let request = http::Request::get(format!("https://{}/api/orders", gw.authority()))
                .header("authorization", format!("Bearer {token}"))
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .expect("request");
            set.spawn(async move {
                let resp = send.send_request(request).await.expect("h2 send");
                let status = resp.status().as_u16();
                let body = http_body_util::BodyExt::collect(resp.into_body())
                    .await
                    .expect("body")
                    .to_bytes();
                let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                format!(
                    "{status} {}",
                    json["error_description"].as_str().unwrap_or("")
                )
            });
        }
        out.extend(set.join_all().await);
    }
    out
}

#[tokio::test]
async fn cached_keys_keep_verifying_while_the_provider_is_down() {
    let key = IdpKey::generate("rsa-1", "RS256");
    let idp = Idp::start(vec![key.clone()]).await;
    let echo = Upstream::echo().await;
    let gw = idp.gateway(&echo.url(), "").await;
    let token = idp.sign(&key, &idp.claims("dave", &["admin"]));
    assert_eq!(get(&gw, "/api/orders", &token).await.status, StatusCode::OK);
    let (status, body) = admin_get(&gw, "/readyz").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!("issuer {}: jwks ok (1 keys)", idp.issuer)),
        "{body}"
    );

    idp.stop();
    // An unknown kid makes the gateway try the provider now; that fetch fails.
    let probe = sign_raw(
        &json!({ "alg": "RS256", "kid": "rsa-next" }),
        &idp.claims("x", &[]),
        &key,
    );
    assert_invalid_token(
        &get(&gw, "/api/orders", &probe).await,
        "unknown key id",
        &probe,
    );
    let stale = eventually(DEADLINE, || async {
        let (status, body) = admin_get(&gw, "/readyz").await;
        match body.contains("jwks stale, 1 cached keys in use") {
            true => Ok((status, body)),
            false => Err(body),
        }
    })
    .await
    .expect("readyz reports the stale JWKS");
    // Reported, not a 503: the cached keys serve, as Envoy's cached JWKS does.
    assert_eq!(stale.0, 200, "{}", stale.1);
    let up_series = format!("portcullis_issuer_jwks_up{{issuer=\"{}\"}}", idp.issuer);
    assert_eq!(metric(&gw, &up_series).await, Some(0.0));
    let resp = get(&gw, "/api/orders", &token).await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());

    // A reload while the provider is down keeps the cached keys too, and the counts.
    let fetched_ok = format!(
        "portcullis_issuer_jwks_fetches_total{{issuer=\"{}\",result=\"ok\"}}",
        idp.issuer
    );
    let ok_before = metric(&gw, &fetched_ok).await;
    assert!(ok_before >= Some(1.0), "{ok_before:?}");
    let reloads = "portcullis_config_reloads_total{result=\"ok\"}";
    gw.signal("HUP");
    eventually(DEADLINE, || async {
        match metric(&gw, reloads).await {
            Some(n) if n >= 1.0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .expect("reloaded");
    assert_eq!(
        metric(&gw, &fetched_ok).await,
        ok_before,
        "the count went back"
    );
    let resp = get(&gw, "/api/orders", &token).await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
}

#[tokio::test]
async fn provider_tokens_are_revoked_by_subject_and_by_jti() {
    let key = IdpKey::generate("rsa-1", "RS256");
    let idp = Idp::start(vec![key.clone()]).await;
    let echo = Upstream::echo().await;
    let gw = idp.gateway(&echo.url(), "").await;
    let claims = idp.claims("frank", &["admin"]);
    let jti = claims["jti"].as_str().expect("jti").to_string();
    let by_jti = idp.sign(&key, &claims);
    let other = idp.sign(&key, &idp.claims("grace", &["admin"]));
    assert_eq!(
        get(&gw, "/api/orders", &by_jti).await.status,
        StatusCode::OK
    );

    gw.revoke_cli(&["--jti", &jti]);
    assert_invalid_token(
        &get(&gw, "/api/orders", &by_jti).await,
        "token revoked",
        &by_jti,
    );
    assert_eq!(get(&gw, "/api/orders", &other).await.status, StatusCode::OK);

    // A token without jti is still covered by a subject-wide revocation.
    let mut no_jti = idp.claims("grace", &["admin"]);
    no_jti.as_object_mut().expect("object").remove("jti");
    let no_jti = idp.sign(&key, &no_jti);
    assert_eq!(
        get(&gw, "/api/orders", &no_jti).await.status,
        StatusCode::OK
    );
    gw.revoke_cli(&["--sub", "grace"]);
    for token in [&other, &no_jti] {
        assert_invalid_token(
            &get(&gw, "/api/orders", token).await,
            "token revoked",
            token,
        );
    }
}

#[tokio::test]
async fn plain_jwks_url_and_cache_control_floor() {
    let key = IdpKey::generate("rsa-1", "RS256");
    let idp = Idp::start(vec![key.clone()]).await;
    // no-cache asks for a refetch every time: the floor (refresh_min) paces it instead.
    idp.cache_control("no-cache");
    let echo = Upstream::echo().await;
    let toml = format!(
        "[[issuers]]\nissuer = \"{}\"\naudience = \"orders-api\"\njwks_url = \"{}\"\nrefresh_min = \"1s\"\nrefresh_max = \"1h\"\n",
        idp.issuer,
        idp.jwks_url()
    );
    let gw = Gateway::start(GatewayConfig::standard(&echo.url()).extra(&toml)).await;
    assert_eq!(idp.discovery_fetches(), 0);
    let token = idp.sign(&key, &idp.claims("hana", &[]));
    assert_eq!(get(&gw, "/api/orders", &token).await.status, StatusCode::OK);
    // Refreshed on schedule at the floor: the next fetch picks up a rotated key unasked.
    let next = IdpKey::generate("rsa-2", "RS256");
    idp.publish(vec![next.clone()]);
    eventually(DEADLINE, || async {
        match idp.jwks_fetches() {
            n if n >= 3 => Ok(()),
            n => Err(format!("{n} fetches")),
        }
    })
    .await
    .expect("scheduled refreshes");
    let token = idp.sign(&next, &idp.claims("hana", &[]));
    assert_eq!(get(&gw, "/api/orders", &token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn https_provider_is_verified_against_the_trust_store() {
    let key = IdpKey::generate("rsa-1", "RS256");
    let idp = Idp::start_tls(vec![key.clone()]).await;
    assert!(idp.discovery_url().starts_with("https://127.0.0.1:"));
    let echo = Upstream::echo().await;
    let token = idp.sign(&key, &idp.claims("ivan", &["admin"]));

    let trusting = GatewayConfig::standard(&echo.url())
        .extra(&idp.issuer_toml(""))
        .env("SSL_CERT_FILE", idp.ca_file().to_str().expect("utf-8"));
    let gw = Gateway::start(trusting).await;
    let resp = get(&gw, "/api/orders", &token).await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    assert_eq!((idp.discovery_fetches(), idp.jwks_fetches()), (1, 1));

    // Without the private CA the certificate is unknown: no keys, the provider's tokens are
    // refused, and /readyz says why (still 200: the gateway's own tokens work).
    let blind = idp.gateway(&echo.url(), "").await;
    assert_invalid_token(
        &get(&blind, "/api/orders", &token).await,
        "unknown key id",
        &token,
    );
    let (status, body) = admin_get(&blind, "/readyz").await;
    assert_eq!(status, 200);
    assert!(body.contains("jwks unreachable, no keys"), "{body}");
    assert!(body.to_ascii_lowercase().contains("certificate"), "{body}");
    assert_eq!(
        idp.discovery_fetches(),
        1,
        "no discovery answer without a TLS handshake"
    );
    let own = get(&blind, "/api/orders", &blind.token("alice", &[])).await;
    assert_eq!(own.status, StatusCode::OK, "body: {}", own.text());
}

#[tokio::test]
async fn bad_issuer_configuration_is_reported_with_its_line() {
    let dir = TestDir::new();
    let cfg = GatewayConfig::standard("http://127.0.0.1:9").extra(
        r#"[[issuers]]
issuer = "https://idp.example.com/realms/main"
audience = "api"
jwks_url = "http://idp.example.com/certs"
algorithms = ["HS256"]
roles_claim = "realm_access..roles"
"#,
    );
    let config = Gateway::prepare(&dir, &cfg);
    let (cert, key, _) = tls_cert();
    dir.write("cert.pem", &cert);
    dir.write("key.pem", &key);
    let out = run_cli(&["check", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(out.code, Some(1), "{out:?}");
    for expected in [
        "must be https:// (http:// only to a loopback address)",
        "HS256 is not allowed for an external issuer",
        "is not a dotted claim path",
    ] {
        assert!(
            out.stderr.contains(expected),
            "missing {expected:?} in:\n{}",
            out.stderr
        );
    }
    assert!(out.stderr.contains("gateway.toml:"), "{}", out.stderr);
}
