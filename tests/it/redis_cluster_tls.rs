//! Two gateways on a three-master Redis Cluster speaking TLS only (clients and the cluster
//! bus) whose default user is off: the gateways log in as an ACL user with the password
//! from a file (`rediss+cluster://portcullis@...`, `password_file`) and trust the nodes'
//! certificate through `SSL_CERT_FILE`. Login, a refresh across gateways, logout, and the
//! revocation reaching the other gateway's mirror over the cluster bus.

use std::time::Duration;

use crate::common::*;
use http::StatusCode;

const ALICE_PW: &str = "correct horse battery";
const JTIS: &str = "{portcullis:}revoked:jti";

fn setup(cluster: &Cluster, upstream: &str) -> AuthSetup {
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\npassword_file = \"{}\"\non_error = \"deny\"\n",
        cluster.url(),
        cluster.password_file().display()
    );
    let ca = cluster.tls_cert_file().expect("a TLS cluster");
    AuthSetup::new(upstream)
        .user("alice", ALICE_PW, &["user"])
        .login("max_failures_per_user = 3\nmax_failures_per_ip = 100\nwindow = \"15m\"")
        .env("SSL_CERT_FILE", ca.to_str().expect("a UTF-8 path"))
        .extra(&store)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_tls_with_an_acl_user_a_cluster_carries_refresh_logout_and_the_mirror() {
    let cluster = Cluster::start_tls().await;
    assert!(cluster.url().starts_with("rediss+cluster://portcullis@"));
    let up = Upstream::echo().await;
    let a = setup(&cluster, &up.url()).start().await;
    let dir = TestDir::new();
    dir.write("main.pem", &a.signing_key_pem);
    dir.write("main.pub.pem", &a.public_key_pem);
    let users = std::fs::read_to_string(a.dir.join("users.toml")).expect("A's users.toml");
    dir.write("users.toml", &users);
    let b = Gateway::start_in(dir, setup(&cluster, &up.url()).config()).await;

    // Throttle counters live on the cluster: three failures on A lock alice out on B.
    for _ in 0..3 {
        assert_eq!(
            a.login("alice", "wrong").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = b.login("alice", ALICE_PW).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.text()
    );
    let counter = cluster
        .command(&["EXISTS", "portcullis:throttle:user:alice"])
        .await;
    assert_eq!(counter.trim(), "1", "the counter is in the cluster");
    cluster
        .command(&["DEL", "portcullis:throttle:user:alice"])
        .await;

    let first = a.login_ok("alice", ALICE_PW).await;
    let next = Pair::from_response(&b.refresh(&first.refresh).await);
    assert_eq!(a.get_api(&next.access).await.status, StatusCode::OK);
    let out = a.logout(&next.access, Some(&next.refresh)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text());
    let seen = refused_everywhere(&[&a, &b], &next.access).await;
    assert!(seen.is_ok(), "{seen:?}\nB's log:\n{}", b.log());
    assert_eq!(
        b.refresh(&next.refresh).await.status,
        StatusCode::UNAUTHORIZED
    );
    let jti = claims_of(&next.access)["jti"]
        .as_str()
        .expect("jti")
        .to_string();
    let score = cluster.command(&["ZSCORE", JTIS, &jti]).await;
    assert!(score.trim().parse::<f64>().is_ok(), "ZSCORE: {score}");
    // The nodes refuse a client that does not log in.
    let anonymous = cluster.anonymous(&["GET", "x"]).await;
    assert!(anonymous.contains("NOAUTH"), "{anonymous}");
}
