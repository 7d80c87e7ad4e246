//! A gateway that loses Redis keeps deciding proxied requests from its mirror for
//! `max_mirror_staleness`; login and logout follow `on_error` meanwhile, and logout never
//! answers 204 without Redis.

use std::time::Duration;

use crate::common::*;
use http::StatusCode;

const ALICE_PW: &str = "correct horse battery";

async fn metric(gw: &Gateway, name: &str) -> Option<String> {
    let (_, metrics) = plain_get(gw.admin, "/metrics").await.ok()?;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_string))
}

#[tokio::test]
async fn a_lost_redis_leaves_the_mirror_deciding_within_max_mirror_staleness() {
    let mut redis = Redis::start().await;
    let up = Upstream::echo().await;
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\non_error = \"deny\"\n\
         max_mirror_staleness = \"1h\"\n",
        redis.url()
    );
    let gw = AuthSetup::new(&up.url())
        .user("alice", ALICE_PW, &["user"])
        .extra(&store)
        .start()
        .await;
    let (revoked, live) = (
        gw.login_ok("alice", ALICE_PW).await,
        gw.login_ok("alice", ALICE_PW).await,
    );
    assert_eq!(
        gw.logout(&revoked.access, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        gw.get_api(&revoked.access).await.status,
        StatusCode::UNAUTHORIZED
    );

    redis.kill();
    let noticed = eventually(Duration::from_secs(15), || async {
        match metric(&gw, "portcullis_revocation_store_in_sync")
            .await
            .as_deref()
        {
            Some("0") => Ok(()),
            other => Err(format!("in_sync {other:?}")),
        }
    });
    noticed.await.expect("the gateway notices Redis is gone");
    // The mirror decides: the live token passes, the revoked one does not, no 503.
    assert_eq!(gw.get_api(&live.access).await.status, StatusCode::OK);
    assert_eq!(
        gw.get_api(&revoked.access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let (ready, body) = plain_get(gw.admin, "/readyz").await.expect("readyz");
    assert_eq!(
        ready, 200,
        "within the staleness bound the instance stays ready: {body}"
    );
    assert!(body.contains("within max_mirror_staleness"), "{body}");
    let stale: f64 = metric(&gw, "portcullis_revocation_mirror_stale_seconds")
        .await
        .and_then(|v| v.parse().ok())
        .expect("the staleness gauge");
    assert!(stale >= 0.0);
    // No master: no login under on_error = "deny", and no logout that Redis did not take.
    let login = gw.login("alice", ALICE_PW).await;
    assert_eq!(
        login.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        login.text()
    );
    let logout = gw.logout(&live.access, Some(&live.refresh)).await;
    assert_eq!(
        logout.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        logout.text()
    );
    assert_eq!(gw.get_api(&live.access).await.status, StatusCode::OK);

    redis.restart().await;
    let back = eventually(Duration::from_secs(15), || async {
        let resp = gw.logout(&live.access, Some(&live.refresh)).await;
        (resp.status == StatusCode::NO_CONTENT)
            .then_some(())
            .ok_or(format!("logout answered {}", resp.status))
    });
    back.await.expect("logout works again once Redis is back");
    assert_eq!(
        gw.get_api(&live.access).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Logins come back with the mirror (it resubscribes with a backoff of up to 2 s).
    let resynced = eventually(Duration::from_secs(15), || async {
        match metric(&gw, "portcullis_revocation_store_in_sync")
            .await
            .as_deref()
        {
            Some("1") => Ok(()),
            other => Err(format!("in_sync {other:?}")),
        }
    });
    resynced
        .await
        .expect("the mirror resyncs with the restarted Redis");
    gw.login_ok("alice", ALICE_PW).await;
}
