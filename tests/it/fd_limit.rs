//! The open-file limit the gateway runs with: raised at start for `max_connections` (two
//! descriptors per connection, client and upstream), and a warning when the hard limit
//! leaves it short. The gateway is started through `prlimit`, which sets the limits it
//! inherits and execs it.

use crate::common::*;

/// The soft and hard "Max open files" of a running process.
fn open_files(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("no open files line in:\n{limits}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

const SHORT: &str = "the open-file limit is below what max_connections needs";

/// A gateway (and its upstream, kept alive) started by `prlimit --nofile=SOFT:HARD`.
async fn start_limited(max_connections: usize, nofile: &str) -> (Gateway, Upstream) {
    let up = Upstream::echo().await;
    let limit = format!("--nofile={nofile}");
    let cfg = GatewayConfig::standard(&up.url())
        .max_connections(max_connections)
        .launcher(&["prlimit", &limit, "--"]);
    (Gateway::start(cfg).await, up)
}

#[tokio::test]
async fn a_low_soft_limit_is_raised_to_what_max_connections_needs() {
    let (gw, _up) = start_limited(1000, "512:4096").await;
    // 1,000 connections with an upstream socket each, and 256 for everything else.
    assert_eq!(open_files(gw.pid()), (2256, 4096), "{}", gw.log());
    let log = gw.log();
    assert!(log.contains("raised the open-file limit"), "{log}");
    assert!(!log.contains(SHORT), "{log}");
    let resp = gw.client().get("/public/x").send_h1().await;
    assert_eq!(resp.status, 200);
}

#[tokio::test]
async fn a_hard_limit_too_low_is_reached_and_warned_about_by_name() {
    let (gw, _up) = start_limited(1000, "512:1024").await;
    assert_eq!(open_files(gw.pid()), (1024, 1024), "{}", gw.log());
    let log = gw.log();
    let warning = log
        .lines()
        .find(|line| line.contains(SHORT))
        .unwrap_or_else(|| panic!("no warning in:\n{log}"));
    for field in ["WARN", "limit=1024", "max_connections=1000", "needed=2256"] {
        assert!(warning.contains(field), "{field} missing: {warning}");
    }
    let resp = gw.client().get("/public/x").send_h1().await;
    assert_eq!(resp.status, 200);
}

#[tokio::test]
async fn a_limit_high_enough_is_left_as_it_is() {
    let (gw, _up) = start_limited(100, "4000:8000").await;
    assert_eq!(open_files(gw.pid()), (4000, 8000), "{}", gw.log());
    let log = gw.log();
    assert!(!log.contains("raised the open-file limit"), "{log}");
    assert!(!log.contains(SHORT), "{log}");
}
