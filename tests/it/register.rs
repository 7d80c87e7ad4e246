//! POST /auth/register: only when enabled; 201 and a user who can log in, 409 for a taken
//! name in any case, 400 for an invalid name or a weak password; concurrent registrations
//! all land in users.toml and survive a restart.

use std::time::Duration;

use crate::common::*;
use http::StatusCode;
use serde_json::json;

const ALICE_PW: &str = "correct horse battery";

fn open_registration(setup: AuthSetup) -> AuthSetup {
    setup.users("registration = true\ndefault_roles = [\"member\"]\nhash_queue = 64")
}

async fn gateway(registration: bool) -> (Gateway, MockUpstream) {
    let up = MockUpstream::start(Mode::Record).await;
    let mut setup = AuthSetup::new(&up.url()).user("alice", ALICE_PW, &["admin"]);
    if registration {
        setup = open_registration(setup);
    }
    (setup.start().await, up)
}

/// The names in the gateway's users.toml, as written.
fn names_in_users_file(gw: &Gateway) -> Vec<String> {
    let text = std::fs::read_to_string(gw.dir.join("users.toml")).expect("users.toml");
    let doc: toml::Value = toml::from_str(&text).expect("users.toml is TOML");
    doc["users"]
        .as_array()
        .expect("[[users]]")
        .iter()
        .map(|u| u["name"].as_str().expect("a name").to_string())
        .collect()
}

#[tokio::test]
async fn registered_user_can_log_in_with_the_default_roles() {
    let (gw, _up) = gateway(true).await;
    let pw = "a long enough secret";
    let resp = gw.register("carol", pw).await;
    assert_eq!(resp.status, StatusCode::CREATED, "body: {}", resp.text());
    assert_eq!(
        resp.json(),
        json!({ "username": "carol", "roles": ["member"] })
    );
    assert!(names_in_users_file(&gw).contains(&"carol".to_string()));
    let text = std::fs::read_to_string(gw.dir.join("users.toml")).expect("users.toml");
    assert!(!text.contains(pw), "users.toml holds a password");

    let pair = gw.login_ok("carol", pw).await;
    assert_eq!(pair.access_claims()["roles"], json!(["member"]));
    let api = gw.get_api(&pair.access).await;
    assert_eq!(api.status, StatusCode::OK, "body: {}", api.text());
}

#[tokio::test]
async fn register_refuses_a_taken_name_in_any_case() {
    let (gw, _up) = gateway(true).await;
    let pw = "a long enough secret";
    for name in ["alice", "Alice", "ALICE"] {
        let resp = gw.register(name, pw).await;
        assert_eq!(resp.status, StatusCode::CONFLICT, "{name}: {}", resp.text());
    }
    assert_eq!(gw.register("dave", pw).await.status, StatusCode::CREATED);
    let again = gw.register("Dave", "another long secret").await;
    assert_eq!(again.status, StatusCode::CONFLICT, "body: {}", again.text());
    // The first registration keeps its password.
    gw.login_ok("dave", pw).await;
    assert_bad_credentials(&gw.login("dave", "another long secret").await);
}

#[tokio::test]
async fn register_refuses_weak_passwords() {
    let (gw, _up) = gateway(true).await;
    for pw in [
        "short",
        "elevenchars",
        "xx-carol-xx-carol",
        "CAROL is my name!",
    ] {
        let resp = gw.register("carol", pw).await;
        assert_eq!(
            resp.status,
            StatusCode::BAD_REQUEST,
            "{pw:?}: {}",
            resp.text()
        );
        assert!(!resp.text().contains(pw), "the password is echoed");
    }
    assert!(!names_in_users_file_or_empty(&gw).contains(&"carol".to_string()));
    let ok = gw.register("carol", "twelve chars").await;
    assert_eq!(ok.status, StatusCode::CREATED, "body: {}", ok.text());
}

fn names_in_users_file_or_empty(gw: &Gateway) -> Vec<String> {
    if gw.dir.join("users.toml").exists() {
        names_in_users_file(gw)
    } else {
        Vec::new()
    }
}

#[tokio::test]
async fn register_refuses_invalid_names() {
    let (gw, _up) = gateway(true).await;
    let long = "a".repeat(65);
    let names = [
        "",
        "-carol",
        ".carol",
        "_carol",
        "car ol",
        "carol@example",
        "car/ol",
        "cärol",
        "carol\n",
        &long,
    ];
    for name in names {
        let resp = gw.register(name, "a long enough secret").await;
        assert_eq!(
            resp.status,
            StatusCode::BAD_REQUEST,
            "{name:?}: {}",
            resp.text()
        );
    }
    let max = "a".repeat(64);
    // (A one-letter name rules out passwords holding that letter: none here has a "c".)
    for name in ["c", "carol.o_k-1", "9lives", max.as_str()] {
        let resp = gw.register(name, "a long enough password").await;
        assert_eq!(
            resp.status,
            StatusCode::CREATED,
            "{name:?}: {}",
            resp.text()
        );
    }
}

#[tokio::test]
async fn register_is_404_when_registration_is_off() {
    let (gw, up) = gateway(false).await;
    let resp = gw.register("carol", "a long enough secret").await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND, "body: {}", resp.text());
    assert!(up.seen().is_empty(), "forwarded: {:?}", up.seen_targets());
    assert!(!names_in_users_file(&gw).contains(&"carol".to_string()));
}

#[tokio::test]
async fn fifty_concurrent_registrations_all_survive_a_restart() {
    let up = MockUpstream::start(Mode::Record).await;
    let setup = open_registration(AuthSetup::new(&up.url()));
    let cfg = setup.config();
    let gw = setup.start().await;
    let name = |i: usize| format!("user{i:02}");
    let password = |i: usize| format!("password number {i:02}");

    let client = gw.client();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let body = json!({ "username": name(i), "password": password(i) });
                client
                    .post("/auth/register")
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    // 50 argon2 hashes on 2 workers, sharing 2 cores with other tests.
                    .deadline(Duration::from_secs(120))
                    .send_h1()
                    .await
            })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let resp = t.await.expect("register task");
        assert_eq!(
            resp.status,
            StatusCode::CREATED,
            "{}: {}",
            name(i),
            resp.text()
        );
    }
    let mut names = names_in_users_file(&gw);
    names.sort();
    let expected: Vec<String> = (0..50).map(name).collect();
    assert_eq!(names, expected, "users.toml after 50 registrations");

    let gw = Gateway::start_in(gw.stop(), cfg).await;
    for i in (0..50).step_by(5) {
        gw.login_ok(&name(i), &password(i)).await;
    }
}

#[tokio::test]
async fn racing_registrations_of_one_name_create_it_once() {
    let (gw, _up) = gateway(true).await;
    let password = |i: usize| format!("racing password {i}");
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let client = gw.client();
            let name = if i % 2 == 0 { "frank" } else { "Frank" };
            let body = json!({ "username": name, "password": password(i) }).to_string();
            tokio::spawn(async move {
                client
                    .post("/auth/register")
                    .header("content-type", "application/json")
                    .body(body)
                    .send_h1()
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let resp = t.await.expect("register task");
        match resp.status {
            StatusCode::CREATED => winners.push(i),
            StatusCode::CONFLICT => {}
            s => panic!("unexpected {s}: {}", resp.text()),
        }
    }
    assert_eq!(winners.len(), 1, "created more than once: {winners:?}");
    let frank: Vec<String> = names_in_users_file(&gw)
        .into_iter()
        .filter(|n| n.eq_ignore_ascii_case("frank"))
        .collect();
    assert_eq!(frank, vec!["frank".to_string()], "stored once, folded");
    gw.login_ok("frank", &password(winners[0])).await;
}
