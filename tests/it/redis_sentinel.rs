//! Two gateways on a real Sentinel deployment (master, replica, three sentinels, an ACL user
//! whose password is read from a file): a failover loses no revocation and answers no
//! proxied request 5xx (the mirror decides within `max_mirror_staleness`), logins, refreshes
//! and logouts answer 2xx or, while no master is reachable, 503 (a logout answered 204 holds
//! afterwards), later revocations go to the new master, and nothing is ever written to a
//! replica.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use http::StatusCode;

const JTIS: &str = "portcullis:revoked:jti";
const EVENTS: &str = "portcullis:events";
const ALICE_PW: &str = "correct horse battery";

fn store(set: &SentinelSet, extra: &str) -> String {
    format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\npassword_file = \"{}\"\non_error = \"deny\"\n{extra}",
        set.url(),
        set.password_file().display()
    )
}

/// Both gateways, the second verifying the first one's tokens and logging in the same
/// users, and their upstream; with a TLS set, trusting its certificate.
async fn pair(set: &SentinelSet, extra: &str) -> (Gateway, Gateway, Upstream) {
    let up = Upstream::echo().await;
    let mut setup = AuthSetup::new(&up.url())
        .user("alice", ALICE_PW, &["user"])
        .extra(&store(set, extra));
    if let Some(ca) = set.tls_cert_file() {
        setup = setup.env("SSL_CERT_FILE", ca.to_str().expect("a UTF-8 path"));
    }
    let (a, b) = setup.start_two().await;
    (a, b, up)
}

async fn get(gw: &Gateway, token: &str) -> StatusCode {
    let auth = format!("Bearer {token}");
    gw.client()
        .get("/api/x")
        .header("authorization", &auth)
        .send_h1()
        .await
        .status
}

fn jti_of(token: &str) -> String {
    claims_of(token)["jti"]
        .as_str()
        .expect("jti claim")
        .to_string()
}

/// Revokes `token` through `gw`'s admin listener, retrying until it is acknowledged.
async fn revoke(gw: &Gateway, token: &str, within: Duration) -> Result<(), String> {
    let jti = jti_of(token);
    let config = gw.config_arg();
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

/// Until every gateway refuses `token`.
async fn refused_everywhere(gws: &[&Gateway], token: &str, within: Duration) -> Result<(), String> {
    eventually(within, || async {
        for gw in gws {
            let status = get(gw, token).await;
            if status != StatusCode::UNAUTHORIZED {
                return Err(format!("answered {status}"));
            }
        }
        Ok(())
    })
    .await
}

/// True once the key holds `jti` on the server at `port`.
async fn holds(set: &SentinelSet, port: u16, jti: &str) -> bool {
    let score = set.command(port, &["ZSCORE", JTIS, jti]).await;
    score.trim().parse::<f64>().is_ok()
}

/// What the gateways answered while the load ran.
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
                    let status = get(gw, token).await;
                    counts.requests.fetch_add(1, Ordering::Relaxed);
                    if status.is_server_error() {
                        counts.server_errors.fetch_add(1, Ordering::Relaxed);
                    } else if status == StatusCode::OK && is_revoked {
                        counts.revoked_let_through.fetch_add(1, Ordering::Relaxed);
                    } else if status == StatusCode::OK {
                        counts.live_ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    });
    (tally, task)
}

async fn in_sync(gw: &Gateway) -> Result<(), String> {
    let (_, metrics) = plain_get(gw.admin, "/metrics").await?;
    metrics
        .lines()
        .any(|l| l == "portcullis_revocation_store_in_sync 1")
        .then_some(())
        .ok_or_else(|| "mirror not in sync".to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_master_loses_no_revocation_and_the_next_goes_to_the_new_master() {
    let mut set = SentinelSet::start().await;
    // A bound far above any failover here, so that a loaded machine cannot turn the wait
    // into 503s: the mirror decides throughout.
    let (a, b, _up) = pair(&set, "max_mirror_staleness = \"60s\"\n").await;
    let (old, live, new) = (
        a.token("alice", &["user"]),
        a.token("bob", &["user"]),
        a.token("carol", &["user"]),
    );
    assert_eq!(get(&b, &old).await, StatusCode::OK);
    revoke(&a, &old, Duration::from_secs(10))
        .await
        .expect("revoked");
    refused_everywhere(&[&a, &b], &old, Duration::from_secs(5))
        .await
        .expect("both gateways refuse the revoked token");
    assert!(
        holds(&set, set.master_port(), &jti_of(&old)).await,
        "written to the master"
    );
    // Acknowledged before the kill, and replicated: the new master will have it too.
    let replicated = eventually(Duration::from_secs(10), || async {
        holds(&set, set.replica_port(), &jti_of(&old))
            .await
            .then_some(())
            .ok_or("not on the replica yet".to_string())
    });
    replicated.await.expect("the replica holds the revocation");

    let (a, b) = (Arc::new(a), Arc::new(b));
    let stop = Arc::new(AtomicBool::new(false));
    let (tally, running) = load(
        [a.clone(), b.clone()],
        old.clone(),
        live.clone(),
        stop.clone(),
    );
    let (sessions, cycling) =
        session_cycles([a.clone(), b.clone()], "alice", ALICE_PW, stop.clone());
    // Both loads run a while first: a cycle each way at least.
    let cycled = sessions.more_cycles(2, Duration::from_secs(10)).await;
    cycled.expect("sessions run before the kill");
    let killed = Instant::now();
    set.kill_master();
    set.wait_for_master(set.replica_port(), Duration::from_secs(30))
        .await;
    let promoted = killed.elapsed();

    revoke(&b, &new, Duration::from_secs(20))
        .await
        .expect("a revocation after the failover is acknowledged");
    let acknowledged = killed.elapsed();
    assert!(
        holds(&set, set.replica_port(), &jti_of(&new)).await,
        "the new revocation is on the new master"
    );
    refused_everywhere(&[&a, &b], &new, Duration::from_secs(10))
        .await
        .expect("both gateways enforce the new revocation");
    for gw in [&a, &b] {
        let synced = eventually(Duration::from_secs(15), || in_sync(gw)).await;
        assert!(synced.is_ok(), "mirror never resynced:\n{}", gw.log());
    }
    let cycled = sessions.more_cycles(2, Duration::from_secs(10)).await;
    cycled.expect("sessions go on after the failover");
    stop.store(true, Ordering::Relaxed);
    running.await.expect("the load ran");
    cycling.await.expect("the sessions ran");

    let through = tally.revoked_let_through.load(Ordering::Relaxed);
    let errors = tally.server_errors.load(Ordering::Relaxed);
    let requests = tally.requests.load(Ordering::Relaxed);
    println!(
        "failover: new master after {promoted:?}, first revocation acknowledged after \
         {acknowledged:?}; {requests} requests, {errors} answered 5xx, {through} revoked let through"
    );
    println!("failover sessions: {}", sessions.figures(killed));
    assert_eq!(
        through, 0,
        "a revoked token got through during the failover"
    );
    assert!(tally.live_ok.load(Ordering::Relaxed) > 0);
    let faults = sessions.fault_samples();
    assert_eq!(sessions.faults(), 0, "neither 2xx nor 503: {faults:?}");
    for access in sessions.logged_out() {
        refused_everywhere(&[&a, &b], &access, Duration::from_secs(10))
            .await
            .expect("a logout answered 204 holds on both gateways");
    }
    refused_everywhere(&[&a, &b], &old, Duration::from_secs(1))
        .await
        .expect("the revocation from before the kill is still enforced");
    assert!(
        a.log().contains("redis master changed") || b.log().contains("redis master changed"),
        "the switch to the new master is logged:\n{}",
        a.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_switchover_writes_find_the_new_master_instead_of_the_demoted_one() {
    switchover(SentinelSet::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_tls_after_a_switchover_writes_and_the_mirror_follow_the_new_master() {
    switchover(SentinelSet::start_tls().await).await;
}

/// `SENTINEL FAILOVER` on `set` with two gateways: a revocation made afterwards on A is
/// written to the new master and reaches B through the mirror (resubscribed on the new
/// master); one made before stays enforced on both.
async fn switchover(set: SentinelSet) {
    let (a, b, _up) = pair(&set, "").await;
    let (first, second) = (a.token("alice", &["user"]), a.token("bob", &["user"]));
    revoke(&a, &first, Duration::from_secs(10))
        .await
        .expect("revoked");

    // A graceful failover: the old master lives on as a replica, which refuses writes
    // with READONLY.
    let answer = set
        .sentinel_command(&["SENTINEL", "FAILOVER", MASTER_NAME])
        .await;
    assert!(answer.contains("OK"), "{answer}");
    // A revocation while the switchover runs: acknowledged by one master or the other. If
    // the old one took it after the replica broke away, Redis lost it, and A's mirror
    // writes it back once it finds the new master.
    let during = a.token("carol", &["user"]);
    revoke(&a, &during, Duration::from_secs(30))
        .await
        .expect("a revocation during the switchover is acknowledged");
    set.wait_for_master(set.replica_port(), Duration::from_secs(30))
        .await;
    let demoted = eventually(Duration::from_secs(30), || async {
        let role = set.command(set.master_port(), &["ROLE"]).await;
        role.starts_with("slave")
            .then_some(())
            .ok_or(format!("old master's role: {role}"))
    });
    demoted.await.expect("the old master is a replica now");

    revoke(&a, &second, Duration::from_secs(20))
        .await
        .expect("the revocation is acknowledged");
    assert!(holds(&set, set.replica_port(), &jti_of(&second)).await);
    refused_everywhere(&[&a, &b], &second, Duration::from_secs(5))
        .await
        .expect("enforced on both gateways");
    refused_everywhere(&[&a, &b], &first, Duration::from_secs(1))
        .await
        .expect("still enforced");
    refused_everywhere(&[&a, &b], &during, Duration::from_secs(10))
        .await
        .expect("the revocation made during the switchover is enforced on both");
    let kept = eventually(Duration::from_secs(40), || async {
        holds(&set, set.replica_port(), &jti_of(&during))
            .await
            .then_some(())
            .ok_or("not on the new master".to_string())
    });
    kept.await
        .expect("the new master holds the revocation made during the switchover");
    for gw in [&a, &b] {
        let synced = eventually(Duration::from_secs(15), || in_sync(gw)).await;
        assert!(synced.is_ok(), "mirror never resynced:\n{}", gw.log());
    }
    // Both mirrors listen on the new master, not on the demoted one (where replicated
    // events would still arrive until it is gone).
    let subscribed = eventually(Duration::from_secs(15), || async {
        let out = set
            .command(set.replica_port(), &["PUBSUB", "NUMSUB", EVENTS])
            .await;
        (out.lines().nth(1).map(str::trim) == Some("2"))
            .then_some(())
            .ok_or(out)
    });
    subscribed
        .await
        .expect("both gateways subscribed on the new master");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_min_replica_acks_a_revocation_no_replica_took_is_not_acknowledged() {
    let mut set = SentinelSet::start().await;
    let acks = "min_replica_acks = 1\nreplica_ack_timeout = \"300ms\"\n";
    let (a, _b, _up) = pair(&set, acks).await;
    let (first, second) = (a.token("alice", &["user"]), a.token("bob", &["user"]));
    revoke(&a, &first, Duration::from_secs(10))
        .await
        .expect("acknowledged once the replica holds it");
    assert!(holds(&set, set.replica_port(), &jti_of(&first)).await);

    set.kill_replica();
    let jti = jti_of(&second);
    let out = tokio::task::spawn_blocking(move || {
        run_cli(&["revoke", "--config", &a.config_arg(), "--jti", &jti])
    })
    .await
    .expect("the CLI ran");
    assert_ne!(
        out.code,
        Some(0),
        "acknowledged without a replica: {}",
        out.stdout
    );
    assert!(out.stderr.contains("503"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_tls_with_an_acl_user_a_revocation_crosses_gateways_and_reaches_the_replica() {
    // Sentinels, master and replica speak TLS only (replication too); the gateways log in
    // as the ACL user (the default user is off) with the password from a file, and trust
    // the nodes' certificate through SSL_CERT_FILE.
    let set = SentinelSet::start_tls().await;
    assert!(set.url().starts_with("rediss+sentinel://portcullis@"));
    let (a, b, _up) = pair(&set, "min_replica_acks = 1\n").await;
    let (first, second) = (a.token("alice", &["user"]), a.token("bob", &["user"]));
    assert_eq!(get(&b, &first).await, StatusCode::OK);
    revoke(&a, &first, Duration::from_secs(10))
        .await
        .expect("revoked, and acknowledged by the replica");
    refused_everywhere(&[&a, &b], &first, Duration::from_secs(5))
        .await
        .expect("both gateways refuse the revoked token");
    assert!(holds(&set, set.master_port(), &jti_of(&first)).await);
    assert!(holds(&set, set.replica_port(), &jti_of(&first)).await);
    assert_eq!(get(&a, &second).await, StatusCode::OK);
}
