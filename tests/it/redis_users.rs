//! `[users] backend = "redis"`: two gateways sharing one real redis-server share their
//! users, so a user registered on one logs in on the other, and `portcullis user add`
//! writes there too.

use crate::common::*;
use http::StatusCode;

const ALICE_PW: &str = "correct horse battery";
const CAROL_PW: &str = "a long secret passphrase";

/// A gateway whose users and revocations live in `redis`, with registration open.
async fn gateway(redis: &Redis, upstream_url: &str) -> Gateway {
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\n",
        redis.url()
    );
    AuthSetup::new(upstream_url)
        .users_section("backend = \"redis\"\nregistration = true\nhash_workers = 2\n")
        .extra(&store)
        .start()
        .await
}

#[tokio::test]
async fn user_registered_on_one_gateway_logs_in_on_the_other() {
    let redis = Redis::start().await;
    let up = Upstream::echo().await;
    let a = gateway(&redis, &up.url()).await;
    let b = gateway(&redis, &up.url()).await;
    let made = a.register("carol", CAROL_PW).await;
    assert_eq!(made.status, StatusCode::CREATED, "body: {}", made.text());
    let again = b.register("Carol", CAROL_PW).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "body: {}", again.text());
    let resp = b.login("carol", CAROL_PW).await;
    assert_eq!(
        resp.status,
        StatusCode::OK,
        "body: {}\nB's log:\n{}",
        resp.text(),
        b.log()
    );
}

#[tokio::test]
async fn user_add_writes_to_redis() {
    let redis = Redis::start().await;
    let up = Upstream::echo().await;
    let a = gateway(&redis, &up.url()).await;
    let config = a.config_arg();
    let out = add_user(&config, "alice", ALICE_PW, &["admin".to_string()]);
    assert_eq!(out.code, Some(0), "user add: {out:?}");
    let twice = add_user(&config, "alice", ALICE_PW, &[]);
    assert_eq!(twice.code, Some(1), "second user add: {twice:?}");
    assert!(twice.stderr.contains("taken"), "{twice:?}");
    let pair = a.login_ok("alice", ALICE_PW).await;
    assert_eq!(
        claims_of(&pair.access)["roles"],
        serde_json::json!(["admin"])
    );
}

/// `portcullis user ARGS --config CONFIG` with `stdin` piped in; must succeed.
fn user_ok(config: &str, args: &[&str], stdin: &str) -> CliOutput {
    let mut all = vec!["user"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--config", config]);
    let out = run_cli_stdin(&all, stdin);
    assert_eq!(out.code, Some(0), "user {args:?}: {out:?}");
    out
}

#[tokio::test]
async fn every_user_subcommand_works_on_redis_and_logins_follow_at_once() {
    let redis = Redis::start().await;
    let up = Upstream::echo().await;
    // A prefix with glob characters: the listing must match it literally.
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\nprefix = \"app[1]:\"\n",
        redis.url()
    );
    let gw = AuthSetup::new(&up.url())
        .users_section("backend = \"redis\"\nhash_workers = 2\n")
        .extra(&store)
        .start()
        .await;
    let config = gw.config_arg();
    // Another application's user, under a prefix `app[1]:` would match as a glob.
    redis
        .command(&["HSET", "app1:user:eve", "name", "eve", "hash", "x"])
        .await;
    let listed = |out: CliOutput| -> Vec<String> {
        assert!(!out.stdout.contains("argon2"), "{out:?}");
        out.stdout.lines().skip(1).map(str::to_string).collect()
    };

    user_ok(
        &config,
        &["add", "alice", "--role", "user"],
        &format!("{ALICE_PW}\n"),
    );
    user_ok(&config, &["add", "carol"], &format!("{CAROL_PW}\n"));
    let rows = listed(user_ok(&config, &["list"], ""));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].starts_with("alice") && rows[0].contains(" user "),
        "{rows:?}"
    );
    assert!(
        rows[1].starts_with("carol") && rows[1].contains(" - "),
        "{rows:?}"
    );

    let new_pw = "a second long passphrase";
    user_ok(&config, &["passwd", "alice"], &format!("{new_pw}\n"));
    assert_bad_credentials(&gw.login("alice", ALICE_PW).await);
    user_ok(&config, &["roles", "alice", "--set", "admin,ops"], "");
    let pair = gw.login_ok("alice", new_pw).await;
    assert_eq!(
        pair.access_claims()["roles"],
        serde_json::json!(["admin", "ops"])
    );

    user_ok(&config, &["disable", "alice"], "");
    assert!(listed(user_ok(&config, &["list"], ""))[0].ends_with("disabled"));
    assert_bad_credentials(&gw.login("alice", new_pw).await);
    assert_invalid_grant(&gw.refresh(&pair.refresh).await);
    user_ok(&config, &["enable", "alice"], "");
    gw.login_ok("alice", new_pw).await;

    user_ok(&config, &["delete", "carol"], "");
    assert_bad_credentials(&gw.login("carol", CAROL_PW).await);
    let rows = listed(user_ok(&config, &["list"], ""));
    assert_eq!(rows.len(), 1, "{rows:?}");

    for (args, stdin, expected) in [
        (&["delete", "carol"][..], "", "no such user"),
        (
            &["passwd", "nobody"][..],
            "a long enough password\n",
            "no such user",
        ),
        (&["roles", "nobody", "--set", "x"][..], "", "no such user"),
        (&["add", "ALICE"][..], "a long enough password\n", "taken"),
    ] {
        let mut all = vec!["user"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--config", &config]);
        let out = run_cli_stdin(&all, stdin);
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert!(out.stderr.contains(expected), "{args:?}: {out:?}");
    }
    // A change to a missing user wrote nothing: no hash without a password appeared.
    assert_eq!(redis.command(&["EXISTS", "app[1]:user:nobody"]).await, ":0");
}
