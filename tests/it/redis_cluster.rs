//! Two gateways on a real three-master Redis Cluster (`redis-cli --cluster create`): a
//! revocation crosses instances (pub/sub over the cluster bus), a refresh race mints one
//! pair and a replay is reuse, login throttling counts across both, and the revocation
//! slot moving to another node under load (ASK, then MOVED) gives no wrong answer.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use http::StatusCode;

const ALICE_PW: &str = "correct horse battery";
/// Where the revocation store keeps revoked jtis on a cluster: the prefix is the hash tag.
const JTIS: &str = "{portcullis:}revoked:jti";

fn setup(cluster: &Cluster, upstream: &str) -> AuthSetup {
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\non_error = \"deny\"\n",
        cluster.url()
    );
    AuthSetup::new(upstream)
        .user("alice", ALICE_PW, &["user"])
        .tokens("refresh_reuse_grace = \"1s\"")
        .login("max_failures_per_user = 3\nmax_failures_per_ip = 100\nwindow = \"15m\"")
        .extra(&store)
}

/// Both gateways on the cluster, sharing the signing key and the users.
async fn pair(cluster: &Cluster, up: &Upstream) -> (Gateway, Gateway) {
    setup(cluster, &up.url()).start_two().await
}

async fn get(gw: &Gateway, token: &str) -> StatusCode {
    gw.get_api(token).await.status
}

fn jti_of(token: &str) -> String {
    claims_of(token)["jti"]
        .as_str()
        .expect("jti claim")
        .to_string()
}

fn revoke(gw: &Gateway, token: &str) -> CliOutput {
    run_cli(&[
        "revoke",
        "--config",
        &gw.config_arg(),
        "--jti",
        &jti_of(token),
    ])
}

/// Until every gateway answers `token` with `want`.
async fn answered_everywhere(
    gws: &[&Gateway],
    token: &str,
    want: StatusCode,
) -> Result<(), String> {
    eventually(Duration::from_secs(10), || async {
        for gw in gws {
            let status = get(gw, token).await;
            if status != want {
                return Err(format!("answered {status}, want {want}"));
            }
        }
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_on_one_gateway_is_enforced_by_the_other_on_a_cluster() {
    let cluster = Cluster::start().await;
    let up = Upstream::echo().await;
    let (a, b) = pair(&cluster, &up).await;
    let token = a.token("alice", &["user"]);
    assert_eq!(get(&b, &token).await, StatusCode::OK);
    let out = revoke(&a, &token);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let seen = answered_everywhere(&[&a, &b], &token, StatusCode::UNAUTHORIZED).await;
    assert!(seen.is_ok(), "{seen:?}\nB's log:\n{}", b.log());
    assert_eq!(get(&b, &a.token("bob", &["user"])).await, StatusCode::OK);
    // The revocation is in the cluster, under the store's hash tag.
    let score = cluster.command(&["ZSCORE", JTIS, &jti_of(&token)]).await;
    assert!(score.trim().parse::<f64>().is_ok(), "ZSCORE: {score}");
    // Every key a script touches together hashes to one slot.
    let slot = cluster.slot_of(JTIS).await;
    for key in [
        "{portcullis:}revoked:fam",
        "{portcullis:}revoked:sub",
        "{portcullis:}family:f1",
    ] {
        assert_eq!(cluster.slot_of(key).await, slot, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_race_across_two_gateways_on_a_cluster_mints_one_pair_and_a_replay_is_reuse() {
    let cluster = Cluster::start().await;
    let up = Upstream::echo().await;
    let (a, b) = pair(&cluster, &up).await;
    let first = a.login_ok("alice", ALICE_PW).await;
    let (on_a, on_b) = tokio::join!(a.refresh(&first.refresh), b.refresh(&first.refresh));
    // Both answer the pair, whichever claimed first and however close to a second
    // boundary (the grace counts in milliseconds).
    let logs = || format!("A's log:\n{}\nB's log:\n{}", a.log(), b.log());
    assert_eq!(
        on_a.status,
        StatusCode::OK,
        "A: {}\n{}",
        on_a.text(),
        logs()
    );
    assert_eq!(
        on_b.status,
        StatusCode::OK,
        "B: {}\n{}",
        on_b.text(),
        logs()
    );
    let (from_a, from_b) = (Pair::from_response(&on_a), Pair::from_response(&on_b));
    assert_eq!(from_a.refresh, from_b.refresh, "two pairs minted");
    assert_eq!(from_a.access, from_b.access, "two pairs minted");
    assert_eq!(get(&b, &from_a.access).await, StatusCode::OK);
    // Past the 1 s grace, replaying the spent token on B is reuse: the family is revoked
    // on both gateways, the newest access token included.
    let reused = eventually(Duration::from_secs(10), || async {
        let resp = b.refresh(&first.refresh).await;
        let status = resp.status;
        (status == StatusCode::UNAUTHORIZED)
            .then_some(resp)
            .ok_or(format!("B answered {status}"))
    })
    .await
    .expect("reuse detected on B");
    assert_invalid_grant(&reused);
    let revoked = answered_everywhere(&[&a, &b], &from_a.access, StatusCode::UNAUTHORIZED).await;
    assert!(revoked.is_ok(), "{revoked:?}\nA's log:\n{}", a.log());
    let after = a.refresh(&from_a.refresh).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_logins_on_one_gateway_throttle_the_user_on_the_other_on_a_cluster() {
    let cluster = Cluster::start().await;
    let up = Upstream::echo().await;
    let (a, b) = pair(&cluster, &up).await;
    for _ in 0..3 {
        assert_bad_credentials(&a.login("alice", "guess guess guess").await);
    }
    let resp = b.login("alice", ALICE_PW).await;
    assert_eq!(
        resp.status,
        StatusCode::TOO_MANY_REQUESTS,
        "body: {}\nB's log:\n{}",
        resp.text(),
        b.log()
    );
    // The username's and the address's counters are keys of their own, found by the
    // cluster wherever their slots are.
    let failures = cluster
        .command(&["GET", "portcullis:throttle:user:alice"])
        .await;
    assert_eq!(failures.trim(), "3");
    let by_ip = cluster
        .command(&["GET", "portcullis:throttle:ip:127.0.0.1"])
        .await;
    assert_eq!(by_ip.trim(), "3");
}

/// What the gateways answered while the load ran.
#[derive(Default)]
struct Tally {
    revoked_let_through: AtomicU64,
    live_refused: AtomicU64,
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
                    let counter = match (status, is_revoked) {
                        (s, _) if s.is_server_error() => &counts.server_errors,
                        (StatusCode::OK, true) => &counts.revoked_let_through,
                        (StatusCode::OK, false) => continue,
                        (_, false) => &counts.live_refused,
                        (_, true) => continue,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    (tally, task)
}

/// Refreshes on `gw` until it answers, as a client honouring `Retry-After` would: while
/// the slot is half moved, the claim script (two keys, one of them maybe not created yet)
/// is refused with `TRYAGAIN` and the refresh answers 503. The new pair, and how many 503s.
async fn rotate(gw: Arc<Gateway>, refresh: String) -> (Pair, u32) {
    for unavailable in 0..300 {
        let resp = gw.refresh(&refresh).await;
        if resp.status != StatusCode::SERVICE_UNAVAILABLE {
            return (Pair::from_response(&resp), unavailable);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the refresh never got an answer but 503");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_revocation_slot_moving_under_load_gives_no_wrong_answer() {
    let cluster = Cluster::start().await;
    let up = Upstream::echo().await;
    let (a, b) = pair(&cluster, &up).await;
    let (a, b) = (Arc::new(a), Arc::new(b));
    let revoked = a.token("alice", &["user"]);
    assert_eq!(revoke(&a, &revoked).code, Some(0));
    answered_everywhere(&[&a, &b], &revoked, StatusCode::UNAUTHORIZED)
        .await
        .expect("revoked");
    let live = a.token("bob", &["user"]);
    let mut session = a.login_ok("alice", ALICE_PW).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (tally, task) = load([a.clone(), b.clone()], revoked, live, stop.clone());

    let slot = cluster.slot_of(JTIS).await;
    let from = cluster.owner(slot).await;
    let to = cluster.other_than(from);
    let mut later = Vec::new();
    cluster.begin_migration(slot, from, to).await;
    // A rotation through B runs across the whole migration (ASK, TRYAGAIN, then MOVED).
    let rotation = tokio::spawn(rotate(b.clone(), session.refresh.clone()));
    // A revocation through each gateway at each step: before any key moved, after they
    // moved (ASK to the importing node), after the slot is handed over (MOVED).
    for (n, gw) in [&a, &b, &a].into_iter().enumerate() {
        match n {
            1 => assert!(cluster.move_keys(slot, from, to).await > 0, "no key moved"),
            2 => cluster.end_migration(slot, from, to).await,
            _ => {}
        }
        // Let the load run through this step before the next one.
        let seen = tally.requests.load(Ordering::Relaxed);
        let ran = eventually(Duration::from_secs(10), || async {
            let now = tally.requests.load(Ordering::Relaxed);
            (now >= seen + 40)
                .then_some(())
                .ok_or(format!("{now} requests"))
        });
        ran.await.expect("the load runs");
        let token = gw.token(&format!("user{n}"), &["user"]);
        let out = revoke(gw, &token);
        assert_eq!(out.code, Some(0), "step {n}: {}", out.stderr);
        later.push(token);
    }
    let (next, unavailable) = rotation.await.expect("the rotation ran");
    eprintln!("refresh answered 503 {unavailable} times during the migration");
    assert_ne!(next.refresh, session.refresh);
    // Once the slot is handed over, rotation is immediate on both gateways.
    let (next, unavailable) = rotate(a.clone(), next.refresh).await;
    assert_eq!(unavailable, 0, "503 after the migration");
    session = next;
    stop.store(true, Ordering::Relaxed);
    task.await.expect("the load ran");
    assert_eq!(cluster.owner(slot).await, to, "the slot moved");
    for token in &later {
        let refused = answered_everywhere(&[&a, &b], token, StatusCode::UNAUTHORIZED).await;
        assert!(refused.is_ok(), "{refused:?}\nB's log:\n{}", b.log());
    }
    assert_eq!(get(&a, &session.access).await, StatusCode::OK);
    let reuse = a.audit_events("refresh_reuse_detected");
    assert!(
        reuse.is_empty() && b.audit_events("refresh_reuse_detected").is_empty(),
        "false reuse: {reuse:?}"
    );
    let requests = tally.requests.load(Ordering::Relaxed);
    eprintln!(
        "slot migration: {requests} requests, {} answered 5xx",
        tally.server_errors.load(Ordering::Relaxed)
    );
    assert!(requests > 0);
    assert_eq!(
        tally.revoked_let_through.load(Ordering::Relaxed),
        0,
        "a revoked token got through"
    );
    assert_eq!(
        tally.live_refused.load(Ordering::Relaxed),
        0,
        "a live token was refused"
    );
    assert_eq!(
        tally.server_errors.load(Ordering::Relaxed),
        0,
        "5xx during the migration"
    );
    // A gateway started now loads every revocation from the slot's new node.
    let dir = TestDir::new();
    dir.write("main.pem", &a.signing_key_pem);
    dir.write("main.pub.pem", &a.public_key_pem);
    let fresh = Gateway::start_in(dir, setup(&cluster, &up.url()).config()).await;
    for token in &later {
        assert_eq!(get(&fresh, token).await, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_registered_on_a_cluster_log_in_everywhere_and_are_all_listed() {
    let cluster = Cluster::start().await;
    let up = Upstream::echo().await;
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\n",
        cluster.url()
    );
    let setup = || {
        AuthSetup::new(&up.url())
            .users_section("backend = \"redis\"\nregistration = true\nhash_workers = 2\n")
            .extra(&store)
    };
    let a = setup().start().await;
    let b = setup().start().await;
    // Enough names that their keys land on every master.
    let names: Vec<String> = (0..12).map(|n| format!("user{n}")).collect();
    for name in &names {
        let made = a.register(name, ALICE_PW).await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.text());
    }
    let mut owners = std::collections::BTreeSet::new();
    for name in &names {
        owners.insert(
            cluster
                .owner(cluster.slot_of(&format!("portcullis:user:{name}")).await)
                .await,
        );
    }
    assert_eq!(owners.len(), 3, "the users' keys spread over the masters");
    let again = b.register("USER0", ALICE_PW).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
    b.login_ok("user7", ALICE_PW).await;
    // `user list` walks every master, not one.
    let out = run_cli(&["user", "list", "--config", &a.config_arg()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let listed: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(listed.len(), names.len(), "{}", out.stdout);
}
