//! Counters for /metrics, kept in atomics so that recording costs no lock on the hot path.
//!
//! Per-route request counts live in each compiled route (see `snapshot::RouteStats`); a
//! reload hands a route's counters to its successor with the same labels
//! (`Snapshot::adopt_counters`), so no counter goes back.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::config::snapshot::Snapshot;
use crate::reject::{DenyReason, Reject};

/// Upper bounds (seconds) of the upstream latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Statuses the gateway answers itself, each with its own counter.
const GATEWAY_STATUSES: [u16; 14] = [
    400, 401, 403, 404, 405, 409, 413, 415, 429, 431, 501, 502, 503, 504,
];

/// Login outcomes.
#[derive(Debug, Clone, Copy)]
pub enum LoginOutcome {
    /// Credentials accepted.
    Ok = 0,
    /// Wrong user or password.
    Failed = 1,
    /// Refused by throttling.
    Throttled = 2,
    /// Store or hash pool unavailable.
    Unavailable = 3,
}

const LOGIN_LABELS: [&str; 4] = ["ok", "failed", "throttled", "unavailable"];

/// The revocation store's state, as /metrics shows it.
#[derive(Debug, Clone, Copy)]
pub struct StoreState {
    /// Entries in the store (the mirror's, for Redis).
    pub revocations: usize,
    /// The mirror's subscription is up and it reloaded since.
    pub in_sync: bool,
    /// How long the mirror has been out of sync (zero while in sync).
    pub stale_for: std::time::Duration,
    /// How many times Sentinel named a new master.
    pub master_changes: u64,
}

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Connections open now.
    pub open_connections: AtomicI64,
    /// Idle HTTP/1.1 connections parked now (holding only their socket and TLS session).
    pub parked_connections: AtomicI64,
    /// Successful reloads.
    pub reloads_ok: AtomicU64,
    /// Rejected reloads.
    pub reloads_failed: AtomicU64,
    gateway_answers: [AtomicU64; GATEWAY_STATUSES.len()],
    auth_allowed: AtomicU64,
    denials: [AtomicU64; DenyReason::ALL.len()],
    logins: [AtomicU64; 4],
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    /// Records an answer the gateway gave itself.
    pub fn gateway_answer(&self, reject: Reject) {
        let status = reject.status().as_u16();
        if let Some(i) = GATEWAY_STATUSES.iter().position(|s| *s == status) {
            self.gateway_answers[i].fetch_add(1, Relaxed);
        }
    }

    /// Records an authorization decision on a protected route.
    pub fn auth_decision(&self, denied: Option<DenyReason>) {
        match denied {
            None => self.auth_allowed.fetch_add(1, Relaxed),
            Some(reason) => self.denials[reason as usize].fetch_add(1, Relaxed),
        };
    }

    /// Records a login outcome.
    pub fn login(&self, outcome: LoginOutcome) {
        self.logins[outcome as usize].fetch_add(1, Relaxed);
    }

    /// Records the time to an upstream's response head.
    pub fn upstream_latency(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.latency_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Relaxed);
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self, snap: &Snapshot, store: &StoreState) -> String {
        let mut out = String::with_capacity(4096);
        render_routes(&mut out, snap);
        render_stalls(&mut out, snap);
        crate::issuers::report::metrics(&mut out, &snap.issuers);
        out.push_str("# TYPE portcullis_gateway_responses_total counter\n");
        for (status, count) in GATEWAY_STATUSES.iter().zip(&self.gateway_answers) {
            let _ = writeln!(
                out,
                "portcullis_gateway_responses_total{{status=\"{status}\"}} {}",
                count.load(Relaxed)
            );
        }
        out.push_str("# TYPE portcullis_auth_decisions_total counter\n");
        let _ = writeln!(
            out,
            "portcullis_auth_decisions_total{{decision=\"allow\",reason=\"\"}} {}",
            self.auth_allowed.load(Relaxed)
        );
        for (reason, count) in DenyReason::ALL.iter().zip(&self.denials) {
            let _ = writeln!(
                out,
                "portcullis_auth_decisions_total{{decision=\"deny\",reason=\"{}\"}} {}",
                reason.label(),
                count.load(Relaxed)
            );
        }
        out.push_str("# TYPE portcullis_logins_total counter\n");
        for (label, count) in LOGIN_LABELS.iter().zip(&self.logins) {
            let _ = writeln!(
                out,
                "portcullis_logins_total{{outcome=\"{label}\"}} {}",
                count.load(Relaxed)
            );
        }
        self.render_latency(&mut out);
        let gauges = [
            (
                "portcullis_open_connections",
                "gauge",
                self.open_connections.load(Relaxed).to_string(),
            ),
            (
                "portcullis_parked_connections",
                "gauge",
                self.parked_connections.load(Relaxed).to_string(),
            ),
            (
                "portcullis_revocations",
                "gauge",
                store.revocations.to_string(),
            ),
            (
                "portcullis_revocation_store_in_sync",
                "gauge",
                u8::from(store.in_sync).to_string(),
            ),
            (
                "portcullis_revocation_mirror_stale_seconds",
                "gauge",
                format!("{:.3}", store.stale_for.as_secs_f64()),
            ),
            (
                "portcullis_redis_master_changes_total",
                "counter",
                store.master_changes.to_string(),
            ),
            (
                "portcullis_config_reloads_total{result=\"ok\"}",
                "counter",
                self.reloads_ok.load(Relaxed).to_string(),
            ),
            (
                "portcullis_config_reloads_total{result=\"failed\"}",
                "counter",
                self.reloads_failed.load(Relaxed).to_string(),
            ),
            (
                "portcullis_log_lines_dropped_total",
                "counter",
                crate::control::log::dropped_lines().to_string(),
            ),
        ];
        for (name, kind, value) in gauges {
            let family = name.split('{').next().unwrap_or(name);
            let _ = writeln!(out, "# TYPE {family} {kind}\n{name} {value}");
        }
        out
    }

    fn render_latency(&self, out: &mut String) {
        out.push_str("# TYPE portcullis_upstream_latency_seconds histogram\n");
        for (bound, count) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "portcullis_upstream_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                count.load(Relaxed)
            );
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(
            out,
            "portcullis_upstream_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "portcullis_upstream_latency_seconds_sum {sum}\nportcullis_upstream_latency_seconds_count {count}");
    }
}

fn render_routes(out: &mut String, snap: &Snapshot) {
    out.push_str("# TYPE portcullis_requests_total counter\n");
    for index in 0..snap.routes.len() {
        let Some(route) = snap.routes.get(index) else {
            continue;
        };
        for (class, count) in ["1xx", "2xx", "3xx", "4xx", "5xx"]
            .iter()
            .zip(&route.stats.by_class)
        {
            let _ = writeln!(
                out,
                "portcullis_requests_total{{route=\"{}\",origin=\"{}\",status=\"{class}\"}} {}",
                escape(&route.pattern),
                escape(&route.origin),
                count.load(Relaxed)
            );
        }
    }
}

/// Responses cut for a stalled body, per upstream that some route uses.
fn render_stalls(out: &mut String, snap: &Snapshot) {
    out.push_str("# TYPE portcullis_upstream_read_timeouts_total counter\n");
    let mut stalls = std::collections::BTreeMap::new();
    for index in 0..snap.routes.len() {
        if let Some(route) = snap.routes.get(index) {
            stalls.insert(route.upstream.name.as_str(), route.upstream.stalls());
        }
    }
    for (name, count) in stalls {
        let name = escape(name);
        let _ = writeln!(
            out,
            "portcullis_upstream_read_timeouts_total{{upstream=\"{name}\"}} {count}"
        );
    }
}

/// Escapes a label value (backslash, quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
