//! The `audit` log target: every auth event of a session is recorded, and nothing secret
//! (password, token, password hash) ever appears anywhere in the gateway's output.

use crate::common::*;
use http::StatusCode;

const ALICE_PW: &str = "correct horse battery";
const WRONG_PW: &str = "wrong horse battery";
const ALICE_NEW_PW: &str = "registered password 2";

/// Every string that must never be logged: tokens whole and their signatures.
fn token_secrets(pairs: &[&Pair]) -> Vec<String> {
    let mut out = Vec::new();
    for p in pairs {
        for t in [&p.access, &p.refresh] {
            out.push(t.clone());
            out.push(t.rsplit('.').next().expect("a signature").to_string());
        }
    }
    out
}

/// The argon2 PHC strings in users.toml, and their salt and hash parts.
fn hashes_in(users_toml: &str) -> Vec<String> {
    let doc: toml::Value = toml::from_str(users_toml).expect("users.toml is TOML");
    let mut out = Vec::new();
    for u in doc["users"].as_array().expect("[[users]]") {
        let phc = u["hash"].as_str().expect("a hash").to_string();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        out.extend(phc.rsplit('$').take(2).map(str::to_string));
        out.push(phc);
    }
    out
}

#[tokio::test]
async fn audit_log_records_a_whole_session_and_never_a_secret() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = AuthSetup::new(&up.url())
        .tokens("refresh_reuse_grace = \"1s\"")
        .users("registration = true")
        .user("alice", ALICE_PW, &["admin"])
        .start()
        .await;

    // login ok, login failed, refresh, reuse after the grace.
    let first = gw.login_ok("alice", ALICE_PW).await;
    assert_bad_credentials(&gw.login("alice", WRONG_PW).await);
    assert_bad_credentials(&gw.login("nobody", WRONG_PW).await);
    let second = Pair::from_response(&gw.refresh(&first.refresh).await);
    let reuse = eventually(DEADLINE, || async {
        let resp = gw.refresh(&first.refresh).await;
        match resp.status {
            StatusCode::OK => Err("still within the grace".to_string()),
            _ => Ok(resp),
        }
    })
    .await
    .expect("reuse detected after the grace");
    assert_invalid_grant(&reuse);

    // register, logout, revoke by jti and by subject.
    let created = gw.register("zoe", ALICE_NEW_PW).await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "body: {}",
        created.text()
    );
    let third = gw.login_ok("alice", ALICE_PW).await;
    let out = gw.logout(&third.access, Some(&third.refresh)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "body: {}", out.text());
    let fourth = gw.login_ok("zoe", ALICE_NEW_PW).await;
    let jti = fourth.access_claims()["jti"]
        .as_str()
        .expect("jti")
        .to_string();
    gw.revoke_cli(&["--jti", &jti]);
    gw.revoke_cli(&["--sub", "alice"]);
    // A denied request with a revoked token.
    assert_eq!(
        gw.get_api(&fourth.access).await.status,
        StatusCode::UNAUTHORIZED
    );

    let events = [
        "login_ok",
        "login_failed",
        "refresh",
        "refresh_reuse_detected",
        "logout",
        "revoke",
    ];
    eventually(DEADLINE, || async {
        match events.iter().find(|e| gw.audit_events(e).is_empty()) {
            Some(missing) => Err(format!("no audit event {missing}")),
            None => Ok(()),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n--- log ---\n{}", gw.log()));
    assert!(
        gw.audit_events("login_failed").len() >= 2,
        "one login_failed per failure"
    );
    let revokes = gw.audit_events("revoke");
    assert!(
        revokes.iter().any(|l| l.contains(&jti)),
        "revoke names the jti"
    );

    let log = gw.log();
    let users = std::fs::read_to_string(gw.dir.join("users.toml")).expect("users.toml");
    let mut secrets = vec![
        ALICE_PW.to_string(),
        WRONG_PW.to_string(),
        ALICE_NEW_PW.to_string(),
    ];
    secrets.extend(token_secrets(&[&first, &second, &third, &fourth]));
    secrets.extend(hashes_in(&users));
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "the log holds a secret: {s}");
    }
}

#[tokio::test]
async fn a_password_typed_as_the_username_is_not_logged() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = AuthSetup::new(&up.url())
        .user("alice", ALICE_PW, &["user"])
        .start()
        .await;
    let typed = "Tr0ub4dor&3 horse";
    let resp = gw.login(typed, ALICE_PW).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    let failed = gw.audit_events_at_least("login_failed", 1).await;
    assert_eq!(failed.len(), 1, "{}", gw.log());
    assert!(failed[0].contains("<invalid name>"), "{}", failed[0]);
    assert!(
        !gw.log().to_lowercase().contains("tr0ub4dor"),
        "the typed name reached the log"
    );
}
