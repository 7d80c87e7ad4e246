//! `portcullis user list | add | passwd | disable | enable | delete | roles` on the file
//! store: users.toml keeps its comments, blank lines and permissions through every edit,
//! errors say what is wrong and change nothing, and a running gateway follows the file.

use crate::common::*;
use http::StatusCode;

const ALICE_PW: &str = "correct horse battery";
const ALICE_NEW_PW: &str = "a brand new passphrase";
const OPS_PW: &str = "the ops team's secret";

/// A users.toml as an operator keeps it: a header, a blank line, a commented user.
fn hand_kept_users() -> String {
    format!(
        "# Staging users. Ask #ops before adding one.\n\
         # Hashes come from `portcullis hash-password`.\n\
         \n\
         # the on-call account\n\
         [[users]]\n\
         name = \"ops\"\n\
         hash = \"{}\"   # rotated 2024-05\n\
         roles = [\"ops\"]\n",
        hash_password(OPS_PW)
    )
}

const HEADER: &str = "# Staging users. Ask #ops before adding one.\n\
    # Hashes come from `portcullis hash-password`.\n\n";

/// `portcullis user ARGS --config CONFIG` with `stdin` piped in.
fn user_cmd(config: &str, args: &[&str], stdin: &str) -> CliOutput {
    let mut all = vec!["user"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--config", config]);
    run_cli_stdin(&all, stdin)
}

/// Like `user_cmd`, and the command must succeed.
fn user_ok(config: &str, args: &[&str], stdin: &str) -> CliOutput {
    let out = user_cmd(config, args, stdin);
    assert_eq!(out.code, Some(0), "user {args:?}: {out:?}");
    out
}

/// The rows of `user list`, header left out, each split on whitespace.
fn rows(config: &str) -> Vec<Vec<String>> {
    let out = user_ok(config, &["list"], "");
    assert!(!out.stdout.contains("argon2"), "list shows a hash: {out:?}");
    out.stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn row(name: &str, roles: &str, status: &str) -> Vec<String> {
    vec![name.into(), roles.into(), status.into()]
}

/// A gateway config (not started) in `dir` whose users.toml is `users`.
fn prepared(dir: &TestDir, users: &str) -> String {
    dir.write("users.toml", users);
    let cfg = AuthSetup::new("http://127.0.0.1:9").config();
    let path = Gateway::prepare(dir, &cfg);
    path.to_str().expect("utf-8 temp path").to_string()
}

fn assert_layout_kept(text: &str) {
    assert!(text.starts_with(HEADER), "header comment lost:\n{text}");
    assert!(!text.contains("\n\n\n"), "stray blank lines:\n{text}");
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn every_subcommand_edits_users_toml_keeping_comments_layout_and_mode() {
    let dir = TestDir::new();
    let config = prepared(&dir, &hand_kept_users());
    let users_toml = dir.join("users.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let group_readable = std::fs::Permissions::from_mode(0o640);
        std::fs::set_permissions(&users_toml, group_readable).unwrap();
    }
    let read = || std::fs::read_to_string(&users_toml).unwrap();

    let added = user_ok(
        &config,
        &["add", "Alice", "--role", "admin"],
        &format!("{ALICE_PW}\n"),
    );
    assert!(added.stdout.contains("added alice to"), "{added:?}");
    let text = read();
    assert_layout_kept(&text);
    assert!(
        text.contains("roles = [\"ops\"]\n\n[[users]]\nname = \"alice\""),
        "alice is not one blank line below ops:\n{text}"
    );
    assert!(text.contains("# the on-call account\n[[users]]\nname = \"ops\""));
    assert!(text.contains("\"   # rotated 2024-05\n"), "{text}");
    assert_eq!(
        rows(&config),
        vec![
            row("alice", "admin", "enabled"),
            row("ops", "ops", "enabled")
        ]
    );

    let before = read();
    user_ok(&config, &["passwd", "alice"], &format!("{ALICE_NEW_PW}\n"));
    let after = read();
    assert_ne!(before, after, "passwd changed nothing");
    assert_eq!(
        before
            .lines()
            .filter(|l| !l.starts_with("hash"))
            .collect::<Vec<_>>(),
        after
            .lines()
            .filter(|l| !l.starts_with("hash"))
            .collect::<Vec<_>>(),
        "passwd changed more than a hash line"
    );

    user_ok(&config, &["roles", "alice", "--set", "admin,ops"], "");
    user_ok(&config, &["disable", "ALICE"], "");
    assert_eq!(rows(&config)[0], row("alice", "admin,ops", "disabled"));
    user_ok(&config, &["enable", "alice"], "");
    assert_eq!(rows(&config)[0], row("alice", "admin,ops", "enabled"));
    user_ok(&config, &["roles", "alice", "--set", ""], "");
    assert_eq!(rows(&config)[0], row("alice", "-", "enabled"));
    assert_layout_kept(&read());

    user_ok(&config, &["delete", "ops"], "");
    let text = read();
    assert_layout_kept(&text);
    assert!(
        !text.contains("on-call"),
        "the deleted user's own comment stays:\n{text}"
    );
    assert_eq!(rows(&config), vec![row("alice", "-", "enabled")]);
    #[cfg(unix)]
    assert_eq!(mode(&users_toml), 0o640, "permissions not kept");
}

#[test]
fn mistakes_are_named_and_change_nothing() {
    let dir = TestDir::new();
    let config = prepared(&dir, &hand_kept_users());
    let users_toml = dir.join("users.toml");
    let before = std::fs::read_to_string(&users_toml).unwrap();
    let cases: [(&[&str], &str, &str); 7] = [
        (&["disable", "nobody"], "", "no such user"),
        (
            &["passwd", "nobody"],
            "a long enough password\n",
            "no such user",
        ),
        (&["delete", "nobody"], "", "no such user"),
        (&["add", "OPS"], "a long enough password\n", "taken"),
        (
            &["add", "bad name!"],
            "a long enough password\n",
            "invalid user name",
        ),
        (
            &["roles", "ops", "--set", "admin,,x"],
            "",
            "cannot be carried",
        ),
        (&["passwd", "ops"], "short\n", "at least 12 characters"),
    ];
    for (args, stdin, expected) in cases {
        let out = user_cmd(&config, args, stdin);
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert!(out.stderr.contains(expected), "{args:?}: {out:?}");
        let now = std::fs::read_to_string(&users_toml).unwrap();
        assert_eq!(now, before, "{args:?} changed users.toml");
    }
}

#[test]
fn an_invalid_users_toml_is_reported_by_line_and_left_alone() {
    let dir = TestDir::new();
    let broken = format!("{}rle = [\"x\"]\n", hand_kept_users());
    let config = prepared(&dir, &broken);
    let out = user_cmd(&config, &["disable", "ops"], "");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("users.toml:9:1"), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join("users.toml")).unwrap(),
        broken
    );
}

#[tokio::test]
async fn a_running_gateway_follows_every_change() {
    let up = Upstream::echo().await;
    // Polling logs in with a password the gateway may not know yet: no throttle here.
    let gw = AuthSetup::new(&up.url())
        .user("alice", ALICE_PW, &["user"])
        .login("max_failures_per_user = 100000\nmax_failures_per_ip = 100000\nwindow = \"15m\"")
        .start()
        .await;
    let config = gw.config_arg();
    let logs_in = |name: &'static str, pw: &'static str, ok: bool| {
        let gw = &gw;
        async move {
            eventually(DEADLINE, || async {
                let status = gw.login(name, pw).await.status;
                match (status == StatusCode::OK) == ok {
                    true => Ok(()),
                    false => Err(format!("login {name}: {status}")),
                }
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", gw.log()));
        }
    };
    user_ok(&config, &["passwd", "alice"], &format!("{ALICE_NEW_PW}\n"));
    logs_in("alice", ALICE_NEW_PW, true).await;
    assert_bad_credentials(&gw.login("alice", ALICE_PW).await);
    user_ok(&config, &["roles", "alice", "--set", "admin"], "");
    eventually(DEADLINE, || async {
        let pair = gw.login_ok("alice", ALICE_NEW_PW).await;
        match pair.access_claims()["roles"] == serde_json::json!(["admin"]) {
            true => Ok(()),
            false => Err(format!("roles: {}", pair.access_claims()["roles"])),
        }
    })
    .await
    .unwrap();
    user_ok(&config, &["disable", "alice"], "");
    logs_in("alice", ALICE_NEW_PW, false).await;
    user_ok(&config, &["enable", "alice"], "");
    logs_in("alice", ALICE_NEW_PW, true).await;
    user_ok(&config, &["delete", "alice"], "");
    logs_in("alice", ALICE_NEW_PW, false).await;
}
