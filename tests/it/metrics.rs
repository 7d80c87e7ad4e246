//! /metrics counters move as requests are made; the access log has one line per request.

use crate::common::*;

/// The value of one exact sample line in the exposition.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{metrics}"))
}

async fn metrics(gw: &Gateway) -> String {
    let (status, body) = plain_get(gw.admin, "/metrics").await.expect("GET /metrics");
    assert_eq!(status, 200);
    body
}

#[tokio::test]
async fn counters_move_with_requests() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let before = metrics(&gw).await;
    let api_2xx = "portcullis_requests_total{route=\"/api/**\",origin=";
    assert!(before.contains(api_2xx), "{before}");

    let token = gw.token("alice", &["user"]);
    let ok = gw
        .client()
        .get("/api/x")
        .header("authorization", &format!("Bearer {token}"))
        .send_h1()
        .await;
    assert_eq!(ok.status, 200);
    let denied = gw.client().get("/api/x").send_h1().await;
    assert_eq!(denied.status, 401);
    let missing = gw.client().get("/nowhere").send_h1().await;
    assert_eq!(missing.status, 404);

    let after = metrics(&gw).await;
    let line = |status: &str| {
        after
            .lines()
            .find(|l| l.starts_with(api_2xx) && l.contains(&format!("status=\"{status}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {status} line for /api/** in:\n{after}"))
    };
    assert_eq!(line("2xx"), 1.0, "{after}");
    assert_eq!(line("4xx"), 1.0, "{after}");
    assert_eq!(
        sample(&after, "portcullis_gateway_responses_total{status=\"404\"}"),
        1.0
    );
    assert_eq!(
        sample(&after, "portcullis_gateway_responses_total{status=\"401\"}"),
        1.0
    );
    let missing_token =
        "portcullis_auth_decisions_total{decision=\"deny\",reason=\"missing bearer token\"}";
    assert_eq!(sample(&after, missing_token), 1.0);
    assert_eq!(
        sample(
            &after,
            "portcullis_auth_decisions_total{decision=\"allow\",reason=\"\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&after, "portcullis_upstream_latency_seconds_count"),
        1.0
    );
    // Gauges: present with a value (`sample` panics otherwise); their level depends on timing.
    sample(&after, "portcullis_open_connections");
    assert_eq!(sample(&after, "portcullis_revocation_store_in_sync"), 1.0);
}

#[tokio::test]
async fn access_log_has_one_line_per_request_and_no_token() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let token = gw.token("alice", &["user"]);
    let resp = gw
        .client()
        .get("/api/logged")
        .header("authorization", &format!("Bearer {token}"))
        .header("x-request-id", "trace-me-123")
        .send_h1()
        .await;
    assert_eq!(resp.status, 200);
    let line = eventually(std::time::Duration::from_secs(5), || async {
        gw.log()
            .lines()
            .find(|l| l.contains("access") && l.contains("trace-me-123"))
            .map(str::to_string)
            .ok_or("no access line yet".to_string())
    })
    .await
    .expect("access line");
    for field in [
        "/api/logged",
        "/api/**",
        "status=200",
        "alice",
        "upstream_ms",
    ] {
        assert!(line.contains(field), "{field} missing from {line}");
    }
    for field in ["duration_ms=", "upstream_ms="] {
        let value = line
            .split(field)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("{field} missing from {line}"));
        let decimals = value.split('.').nth(1).map_or(0, str::len);
        assert!(
            decimals <= 3,
            "{field}{value}: more than microseconds in {line}"
        );
    }
    assert!(!gw.log().contains(&token), "a token reached the log");
}

/// The 2xx count of the `/api/**` route.
fn api_2xx(metrics: &str) -> f64 {
    metrics
        .lines()
        .find(|l| {
            l.starts_with("portcullis_requests_total{route=\"/api/**\"")
                && l.contains("status=\"2xx\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no 2xx line for /api/** in:\n{metrics}"))
}

/// Waits until `portcullis_config_reloads_total{result="ok"}` reaches `n`.
async fn reloaded(gw: &Gateway, n: f64) -> String {
    let series = "portcullis_config_reloads_total{result=\"ok\"}";
    eventually(DEADLINE, || async {
        let text = metrics(gw).await;
        match sample(&text, series) >= n {
            true => Ok(text),
            false => Err(format!("{} reloads", sample(&text, series))),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gw.log()))
}

#[tokio::test]
async fn route_counters_go_on_across_user_changes_and_reloads() {
    let up = Upstream::echo().await;
    let gw = AuthSetup::new(&up.url())
        .user("alice", "correct horse battery", &["user"])
        .start()
        .await;
    let token = gw.token("alice", &["user"]);
    for _ in 0..3 {
        assert_eq!(gw.get_api(&token).await.status, 200);
    }
    assert_eq!(api_2xx(&metrics(&gw).await), 3.0);

    // A user added with the CLI rewrites users.toml; the gateway reloads on its own.
    let config = gw.config_arg();
    let out = add_user(&config, "bob", "a long enough password", &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(api_2xx(&reloaded(&gw, 1.0).await), 3.0);

    gw.signal("HUP");
    assert_eq!(api_2xx(&reloaded(&gw, 2.0).await), 3.0);
    // And the route counts on, on the new configuration.
    assert_eq!(gw.get_api(&token).await.status, 200);
    assert_eq!(api_2xx(&metrics(&gw).await), 4.0);
}
