//! A Redis Cluster master killed under load (three masters, one replica each): the
//! replica takes its slots over, two gateways keep answering proxied requests from their
//! mirrors, no revocation acknowledged before the kill and replicated is lost, and a
//! revocation after the failover is written to the new master. Meanwhile a second client
//! logs in, refreshes and logs out on both gateways: each step answers 2xx or, while no
//! master serves the revocation slot, 503, and every logout answered 204 holds on both
//! gateways afterwards. (Without
//! `min_replica_acks`: the promoted replica has no replica of its own, so `WAIT 1` would
//! refuse every revocation after the failover, by design, until one joins.)
//! The test prints the figures BENCHMARKS.md quotes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use http::StatusCode;

/// Where the revocation store keeps revoked jtis on a cluster: the prefix is the hash tag.
const JTIS: &str = "{portcullis:}revoked:jti";

const ALICE_PW: &str = "correct horse battery";

fn setup(cluster: &Cluster, upstream: &str) -> AuthSetup {
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\non_error = \"deny\"\n\
         max_mirror_staleness = \"60s\"\n",
        cluster.url()
    );
    AuthSetup::new(upstream)
        .user("alice", ALICE_PW, &["user"])
        .extra(&store)
}

fn jti_of(token: &str) -> String {
    claims_of(token)["jti"]
        .as_str()
        .expect("jti claim")
        .to_string()
}

/// Revokes `token` through `gw`'s admin listener, retrying until it is acknowledged.
async fn revoke(gw: &Gateway, token: &str, within: Duration) -> Result<(), String> {
    let (config, jti) = (gw.config_arg(), jti_of(token));
    eventually(within, || {
        let (config, jti) = (config.clone(), jti.clone());
        async move {
            let out = tokio::task::spawn_blocking(move || {
                run_cli(&["revoke", "--config", &config, "--jti", &jti])
            })
            .await
            .expect("the CLI ran");
            (out.code == Some(0))
                .then_some(())
                .ok_or(format!("revoke: {} {}", out.stdout, out.stderr))
        }
    })
    .await
}

async fn refused_everywhere(gws: &[&Gateway], token: &str) -> Result<(), String> {
    eventually(Duration::from_secs(10), || async {
        for gw in gws {
            let status = gw.get_api(token).await.status;
            if status != StatusCode::UNAUTHORIZED {
                return Err(format!("answered {status}"));
            }
        }
        Ok(())
    })
    .await
}

#[derive(Default)]
struct Tally {
    revoked_let_through: AtomicU64,
    live_ok: AtomicU64,
    server_errors: AtomicU64,
    requests: AtomicU64,
}

/// Sends a revoked and a live token to both gateways in turn until `stop`.
fn load(
    gws: [Arc<Gateway>; 2],
    revoked: String,
    live: String,
    stop: Arc<AtomicBool>,
) -> (Arc<Tally>, tokio::task::JoinHandle<()>) {
    let tally = Arc::new(Tally::default());
    let counts = tally.clone();
    let task = tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            for gw in &gws {
                for (token, is_revoked) in [(&revoked, true), (&live, false)] {
                    let status = gw.get_api(token).await.status;
                    counts.requests.fetch_add(1, Ordering::Relaxed);
                    let counter = match (status, is_revoked) {
                        (s, _) if s.is_server_error() => &counts.server_errors,
                        (StatusCode::OK, true) => &counts.revoked_let_through,
                        (StatusCode::OK, false) => &counts.live_ok,
                        _ => continue,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    (tally, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_cluster_master_loses_no_revocation_and_the_next_goes_to_its_replica() {
    let mut cluster = Cluster::start_with_replicas().await;
    let up = Upstream::echo().await;
    let (a, b) = setup(&cluster, &up.url()).start_two().await;
    let (old, live, new) = (
        a.token("alice", &["user"]),
        a.token("bob", &["user"]),
        a.token("carol", &["user"]),
    );
    revoke(&a, &old, Duration::from_secs(10))
        .await
        .expect("revoked");
    refused_everywhere(&[&a, &b], &old)
        .await
        .expect("both refuse it");

    let slot = cluster.slot_of(JTIS).await;
    let owner = cluster.owner(slot).await;
    let replicated = eventually(Duration::from_secs(10), || async {
        let info = cluster.on(owner, &["INFO", "replication"]).await;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        let master = field("master_repl_offset:").ok_or(info.clone())?;
        let replica = field("slave0:").ok_or(info.clone())?;
        replica
            .contains(&format!("offset={master},"))
            .then_some(())
            .ok_or(info.clone())
    });
    replicated
        .await
        .expect("the replica caught up before the kill");
    let (a, b) = (Arc::new(a), Arc::new(b));
    let stop = Arc::new(AtomicBool::new(false));
    let (tally, running) = load([a.clone(), b.clone()], old.clone(), live, stop.clone());
    let (sessions, cycling) =
        session_cycles([a.clone(), b.clone()], "alice", ALICE_PW, stop.clone());
    // Both loads run a while first: a cycle each way at least.
    let cycled = sessions.more_cycles(2, Duration::from_secs(10)).await;
    cycled.expect("sessions run before the kill");
    let killed = Instant::now();
    cluster.kill(owner);
    let promoted = eventually(Duration::from_secs(30), || async {
        let now = cluster.owner(slot).await;
        (now != owner)
            .then_some(now)
            .ok_or(format!("slot {slot} still on {owner}"))
    });
    let new_owner = promoted.await.expect("the replica took the slot over");
    let promoted = killed.elapsed();
    revoke(&b, &new, Duration::from_secs(30))
        .await
        .expect("a revocation after the failover is acknowledged");
    let acknowledged = killed.elapsed();
    let held = cluster
        .on(new_owner, &["ZSCORE", JTIS, &jti_of(&new)])
        .await;
    assert!(
        held.trim().parse::<f64>().is_ok(),
        "on the new master: {held}"
    );
    refused_everywhere(&[&a, &b], &new)
        .await
        .expect("both enforce the new revocation");
    let cycled = sessions.more_cycles(2, Duration::from_secs(10)).await;
    cycled.expect("sessions go on after the failover");
    stop.store(true, Ordering::Relaxed);
    running.await.expect("the load ran");
    cycling.await.expect("the sessions ran");

    let through = tally.revoked_let_through.load(Ordering::Relaxed);
    let errors = tally.server_errors.load(Ordering::Relaxed);
    let requests = tally.requests.load(Ordering::Relaxed);
    println!(
        "cluster failover: slot {slot} on a new master after {promoted:?}, first revocation \
         acknowledged after {acknowledged:?}; {requests} requests, {errors} answered 5xx, \
         {through} revoked let through"
    );
    println!("cluster failover sessions: {}", sessions.figures(killed));
    assert_eq!(
        through, 0,
        "a revoked token got through during the failover"
    );
    assert!(tally.live_ok.load(Ordering::Relaxed) > 0);
    let faults = sessions.fault_samples();
    assert_eq!(sessions.faults(), 0, "neither 2xx nor 503: {faults:?}");
    for access in sessions.logged_out() {
        refused_everywhere(&[&a, &b], &access)
            .await
            .expect("a logout answered 204 holds on both gateways");
    }
    refused_everywhere(&[&a, &b], &old)
        .await
        .expect("the revocation from before the kill holds");
    let kept = cluster
        .on(new_owner, &["ZSCORE", JTIS, &jti_of(&old)])
        .await;
    assert!(
        kept.trim().parse::<f64>().is_ok(),
        "the replica had it: {kept}"
    );
}
