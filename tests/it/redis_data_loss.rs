//! A redis-server restarted without persistence comes back empty: the gateways write back
//! every revocation their mirrors hold, so none is forgotten, by them or by an instance
//! started afterwards.

use std::time::Duration;

use crate::common::*;
use http::StatusCode;

const JTIS: &str = "portcullis:revoked:jti";

fn store(redis: &Redis) -> String {
    format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\non_error = \"deny\"\n",
        redis.url()
    )
}

fn jti_of(token: &str) -> String {
    claims_of(token)["jti"]
        .as_str()
        .expect("jti claim")
        .to_string()
}

async fn get(gw: &Gateway, token: &str) -> StatusCode {
    gw.get_api(token).await.status
}

#[tokio::test]
async fn revocations_lost_by_a_redis_restart_without_persistence_are_written_back() {
    let mut redis = Redis::start_volatile().await;
    let up = Upstream::echo().await;
    let cfg = GatewayConfig::standard(&up.url()).extra(&store(&redis));
    let gw = Gateway::start(cfg.clone()).await;
    let token = gw.token("alice", &["user"]);
    let by_subject = gw.token("mallory", &["user"]);
    let out = run_cli(&[
        "revoke",
        "--config",
        &gw.config_arg(),
        "--jti",
        &jti_of(&token),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = run_cli(&["revoke", "--config", &gw.config_arg(), "--sub", "mallory"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    redis.restart().await;
    // The gateway follows the restarted server and puts both revocations back.
    let back = eventually(Duration::from_secs(15), || async {
        let score = redis.command(&["ZSCORE", JTIS, &jti_of(&token)]).await;
        let cut = redis
            .command(&["HGET", "portcullis:revoked:sub", "mallory"])
            .await;
        (score.starts_with('$')
            && !score.starts_with("$-1")
            && cut.starts_with('$')
            && !cut.starts_with("$-1"))
        .then_some(())
        .ok_or(format!("ZSCORE {score:?}, HGET {cut:?}"))
    })
    .await;
    assert!(back.is_ok(), "{back:?}\n{}", gw.log());
    // The log line reaches stderr from the log thread a moment after the write.
    let logged = eventually(Duration::from_secs(5), || async {
        gw.log()
            .contains("written back")
            .then_some(())
            .ok_or("no 'written back' in the log".to_string())
    });
    assert!(logged.await.is_ok(), "{}", gw.log());
    assert_eq!(get(&gw, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&gw, &by_subject).await, StatusCode::UNAUTHORIZED);
    // An instance started after the loss learns them from Redis.
    let dir = TestDir::new();
    dir.write("main.pem", &gw.signing_key_pem);
    dir.write("main.pub.pem", &gw.public_key_pem);
    let fresh = Gateway::start_in(dir, cfg).await;
    assert_eq!(get(&fresh, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&fresh, &by_subject).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(&fresh, &gw.token("bob", &["user"])).await,
        StatusCode::OK
    );
}

const ALICE_PW: &str = "correct horse battery";

#[tokio::test]
async fn after_a_data_loss_a_spent_refresh_token_is_not_accepted_again() {
    let mut redis = Redis::start_volatile().await;
    let up = Upstream::echo().await;
    let gw = AuthSetup::new(&up.url())
        .user("alice", ALICE_PW, &["user"])
        .tokens("refresh_reuse_grace = \"1s\"")
        .extra(&store(&redis))
        .start()
        .await;
    let first = gw.login_ok("alice", ALICE_PW).await;
    let next = Pair::from_response(&gw.refresh(&first.refresh).await);

    redis.restart().await;
    // The gateway notices the loss at its resync and marks when it happened.
    let noticed = eventually(Duration::from_secs(15), || async {
        let lost_at = redis
            .command(&["HGET", "portcullis:epoch", "lost_at"])
            .await;
        // A bulk reply "$1" is "0": nothing noticed yet; a time has 10 digits.
        (lost_at == "$10")
            .then_some(())
            .ok_or(format!("lost_at {lost_at:?}"))
    })
    .await;
    assert!(noticed.is_ok(), "{noticed:?}\n{}", gw.log());
    // The spent token's family record is gone: without the marker it would mint a pair.
    let replay = gw.refresh(&first.refresh).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.text());
    gw.audit_events_at_least("refresh_record_lost", 1).await;
    // The current token predates the loss too: its user signs in again, and from then on
    // rotation works as before.
    assert_eq!(
        gw.refresh(&next.refresh).await.status,
        StatusCode::UNAUTHORIZED
    );
    // (A login in the very second the loss was noticed counts as before it.)
    let rotated = eventually(Duration::from_secs(5), || async {
        let again = gw.login_ok("alice", ALICE_PW).await;
        let rotated = gw.refresh(&again.refresh).await;
        (rotated.status == StatusCode::OK)
            .then_some(())
            .ok_or(format!("{} {}", rotated.status, rotated.text()))
    })
    .await;
    assert!(rotated.is_ok(), "{rotated:?}");
}
