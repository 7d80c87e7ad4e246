//! /metrics counters move as requests are made; the access log has one line per request,
//! written by a thread of its own: never waited on by a request, flushed at shutdown.

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
    assert_eq!(sample(&after, "portcullis_log_lines_dropped_total"), 0.0);
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

#[tokio::test]
async fn sigterm_writes_the_last_access_lines_before_the_gateway_exits() {
    // Every request is held at the upstream until SIGTERM has started the drain: their
    // lines are logged as they are answered, a moment before the process exits.
    let up = MockUpstream::start(Mode::Held).await;
    let mut gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let ids: Vec<String> = (0..20).map(|n| format!("last-lines-{n}")).collect();
    let mut requests = tokio::task::JoinSet::new();
    for id in &ids {
        let request = gw.client().get("/public/held").header("x-request-id", id);
        requests.spawn(async move { request.send_h1().await.status });
    }
    eventually(std::time::Duration::from_secs(10), || async {
        (up.seen().len() == ids.len()).then_some(()).ok_or(format!(
            "{} of {} at the upstream",
            up.seen().len(),
            ids.len()
        ))
    })
    .await
    .expect("every request reached the upstream");
    gw.signal("TERM");
    up.release();
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.expect("request task"), 200);
    }
    let exit = eventually(std::time::Duration::from_secs(10), || {
        let status = gw.exited();
        async move { status.ok_or("still running".to_string()) }
    })
    .await
    .expect("gateway exited");
    assert!(exit.success(), "exit status {exit:?}");
    let log = gw.log();
    for id in &ids {
        let field = format!("request_id=\"{id}\"");
        let lines = log
            .lines()
            .filter(|l| l.contains("access") && l.contains(&field));
        assert_eq!(lines.count(), 1, "access line of {id}:\n{log}");
    }
    assert!(log.contains("all connections closed; exiting"), "{log}");
}

#[tokio::test]
async fn a_stalled_log_reader_never_holds_up_a_request_and_lost_lines_are_counted() {
    let up = MockUpstream::start(Mode::Record).await;
    let cfg = GatewayConfig::standard(&up.url()).stderr_unread();
    let gw = Gateway::start(cfg).await;
    // Each access line carries the path: about 8 KiB a line. The pipe holds 64 KiB, the log
    // writer's queue 2 MiB; 400 lines overflow both, and a worker that wrote to stderr itself
    // would wait on the full pipe for ever.
    let path = std::sync::Arc::new(format!("/public/{}", "x".repeat(8000)));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let client = gw.client();
        let path = path.clone();
        senders.spawn(async move {
            for _ in 0..50 {
                let request = client
                    .get(&path)
                    .deadline(std::time::Duration::from_secs(10));
                let resp = request
                    .try_send_h1()
                    .await
                    .expect("answered despite the stall");
                assert_eq!(resp.status, 200);
            }
        });
    }
    while let Some(sent) = senders.join_next().await {
        sent.expect("sender task");
    }
    let after = metrics(&gw).await;
    let dropped = sample(&after, "portcullis_log_lines_dropped_total");
    assert!(dropped > 0.0, "no line counted as dropped:\n{after}");
}

#[tokio::test]
async fn the_access_line_names_the_verified_subject_and_never_the_token() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let token = gw.token("alice", &["dev"]);
    let resp = gw.client().get("/api/who").bearer(&token).send_h1().await;
    assert_eq!(resp.status, 200);
    let line = eventually(std::time::Duration::from_secs(5), || async {
        gw.log()
            .lines()
            .find(|l| l.contains("access") && l.contains("path=\"/api/who\""))
            .map(str::to_owned)
            .ok_or("no access line yet".to_string())
    })
    .await
    .expect("access line");
    assert!(line.contains("sub=\"alice\""), "{line}");
    assert!(line.contains("status=200"), "{line}");
    assert!(!line.contains(&token), "{line}");
    // An anonymous request on a public route logs no subject.
    let resp = gw.client().get("/public/anon").send_h1().await;
    assert_eq!(resp.status, 200);
    let anon = eventually(std::time::Duration::from_secs(5), || async {
        gw.log()
            .lines()
            .find(|l| l.contains("access") && l.contains("path=\"/public/anon\""))
            .map(str::to_owned)
            .ok_or("no access line yet".to_string())
    })
    .await
    .expect("access line");
    assert!(anon.contains("sub=\"-\""), "{anon}");
}
