//! Rotating the `[second_factor]` key: the new key in `key_file`, the old one in
//! `previous_key_file`; secrets and recovery codes sealed under the old key keep working,
//! `portcullis user rekey` re-seals every secret under the new one, and once the old key is
//! removed only what was re-sealed opens. Bad keys are config errors at their line, and a
//! key that is gone fails closed.

use std::time::Duration;

use http::StatusCode;

use crate::common::*;
use crate::second_factor::{cli, code, gateway, login, unbase32, until_status};

/// Another base64 key of 32 bytes.
const NEW_KEY: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=\n";

/// Rewrites the `[second_factor]` key lines of gateway.toml (those before `issuer`).
fn set_keys(gw: &Gateway, keys: &str) {
    let text = std::fs::read_to_string(&gw.config_path).expect("gateway.toml");
    let start = text.find("[second_factor]\n").expect("the section") + "[second_factor]\n".len();
    let end = start + text[start..].find("issuer = ").expect("issuer line");
    let mut rewritten = text.clone();
    rewritten.replace_range(start..end, &format!("{keys}\n"));
    std::fs::write(&gw.config_path, rewritten).expect("write gateway.toml");
}

/// The recovery codes `user totp` printed.
fn recovery_codes(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("recovery codes"))
        .skip(1)
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Configuration reloads the gateway has made, from /metrics.
async fn reloads(gw: &Gateway) -> f64 {
    let (_, body) = plain_get(gw.admin, "/metrics")
        .await
        .expect("admin listener");
    body.lines()
        .find_map(|l| {
            l.strip_prefix("portcullis_config_reloads_total{result=\"ok\"}")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// Sets the key lines and waits until the gateway has reloaded since.
async fn rotate(gw: &Gateway, keys: &str) {
    let before = reloads(gw).await;
    set_keys(gw, keys);
    gw.signal("HUP");
    eventually(Duration::from_secs(15), || async {
        let now = reloads(gw).await;
        (now > before).then_some(()).ok_or(format!("{now} reloads"))
    })
    .await
    .expect("reloaded");
}

/// A code of a step after `spent` that is still accepted now.
fn fresh_code(secret: &[u8], spent: u64) -> String {
    let now = portcullis::runtime::unix_now() / 30;
    code(secret, if now > spent { 0 } else { 1 })
}

#[tokio::test]
async fn a_key_rotation_keeps_every_factor_working_and_rekey_moves_secrets_to_the_new_key() {
    let (gw, _echo) = gateway("").await;
    std::fs::write(gw.config_path.with_file_name("new.key"), NEW_KEY).expect("new key");
    let enrolled = cli(&gw, &["user", "totp", "alice"]);
    assert_eq!(enrolled.code, Some(0), "{enrolled:?}");
    let codes = recovery_codes(&enrolled.stdout);
    assert_eq!(codes.len(), 10, "{enrolled:?}");
    let secret = enrolled
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("secret (to type in by hand): "))
        .map(unbase32)
        .expect("the secret line");
    let users = gw.config_path.with_file_name("users.toml");
    let sealed_old = std::fs::read_to_string(&users).expect("users.toml");
    until_status(&gw, "alice", None, StatusCode::UNAUTHORIZED).await;

    // A previous key alone is a config error at its line.
    set_keys(&gw, "previous_key_file = \"second-factor.key\"");
    let check = cli(&gw, &["check"]);
    assert_ne!(check.code, Some(0), "{check:?}");
    assert!(
        check.stderr.contains("a previous key needs the new one"),
        "{check:?}"
    );
    assert!(
        check.stderr.contains("gateway.toml:"),
        "file:line: {check:?}"
    );

    rotate(
        &gw,
        "key_file = \"new.key\"\nprevious_key_file = \"second-factor.key\"",
    )
    .await;
    // Old-key secret and old-key recovery code, through the previous key.
    let spent = portcullis::runtime::unix_now() / 30;
    let by_code = login(&gw, "alice", Some(&code(&secret, 0))).await;
    assert_eq!(by_code.status, StatusCode::OK, "{}", by_code.text());
    let by_old_recovery = login(&gw, "alice", Some(&codes[0])).await;
    assert_eq!(
        by_old_recovery.status,
        StatusCode::OK,
        "{}",
        by_old_recovery.text()
    );

    let rekeyed = cli(&gw, &["user", "rekey"]);
    assert_eq!(rekeyed.code, Some(0), "{rekeyed:?}");
    assert!(
        rekeyed.stdout.contains("re-sealed 1 TOTP secret"),
        "{rekeyed:?}"
    );
    let sealed_new = std::fs::read_to_string(&users).expect("users.toml");
    assert_ne!(sealed_old, sealed_new, "the secret was sealed again");
    let again = cli(&gw, &["user", "rekey"]);
    assert!(
        again
            .stdout
            .contains("re-sealed 0 TOTP secret(s) under the current key (1 already were)"),
        "{again:?}"
    );

    // The old key gone: the re-sealed secret opens; old recovery codes no longer do.
    rotate(&gw, "key_file = \"new.key\"").await;
    let refused = login(&gw, "alice", Some(&codes[1])).await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        refused.text()
    );
    let by_new_key = login(&gw, "alice", Some(&fresh_code(&secret, spent))).await;
    assert_eq!(by_new_key.status, StatusCode::OK, "{}", by_new_key.text());

    // A users.toml sealed under a key the gateway does not have: rekey names the user.
    std::fs::write(&users, &sealed_old).expect("users.toml");
    let stuck = cli(&gw, &["user", "rekey"]);
    assert_ne!(stuck.code, Some(0), "{stuck:?}");
    assert!(
        stuck.stderr.contains("open with neither key") && stuck.stderr.contains("alice"),
        "{stuck:?}"
    );
}

/// `portcullis check` on gateway.toml with these `[second_factor]` key lines: its stderr,
/// after asserting that it failed at a line of gateway.toml.
fn refused_config(gw: &Gateway, keys: &str) -> String {
    set_keys(gw, keys);
    let check = cli(gw, &["check"]);
    assert_ne!(check.code, Some(0), "{keys}: {check:?}");
    assert!(
        check.stderr.contains("gateway.toml:"),
        "file:line: {check:?}"
    );
    check.stderr
}

#[tokio::test]
async fn bad_second_factor_keys_are_refused_at_their_line_and_a_lost_key_fails_closed() {
    let (gw, _echo) = gateway("").await;
    let enrolled = cli(&gw, &["user", "totp", "alice"]);
    assert_eq!(enrolled.code, Some(0), "{enrolled:?}");
    until_status(&gw, "alice", None, StatusCode::UNAUTHORIZED).await;

    std::fs::write(gw.config_path.with_file_name("short.key"), "c2hvcnQ=\n").expect("key");
    let short = refused_config(&gw, "key_file = \"short.key\"");
    assert!(short.contains("must be 32 bytes"), "{short}");
    let unset = refused_config(&gw, "key_env = \"PORTCULLIS_TEST_UNSET_2FA_KEY\"");
    assert!(
        unset.contains("PORTCULLIS_TEST_UNSET_2FA_KEY is not set"),
        "{unset}"
    );
    let both = refused_config(
        &gw,
        "key_file = \"second-factor.key\"\nkey_env = \"PORTCULLIS_TEST_UNSET_2FA_KEY\"",
    );
    assert!(
        both.contains("give key_file or key_env, not both"),
        "{both}"
    );
    set_keys(&gw, "key_file = \"second-factor.key\"");
    let text = std::fs::read_to_string(&gw.config_path).expect("gateway.toml");
    std::fs::write(
        &gw.config_path,
        text.replace("issuer = \"Test Co\"", "issuer = \"Test:Co\""),
    )
    .expect("gateway.toml");
    let colon = refused_config(&gw, "key_file = \"second-factor.key\"");
    assert!(colon.contains("without ':'"), "{colon}");
    std::fs::write(&gw.config_path, text).expect("gateway.toml");

    // The key removed while alice has a sealed secret: her sign-in is refused (503), never
    // let in on the password alone; bob, without a factor, still signs in.
    rotate(&gw, "").await;
    let alice = login(&gw, "alice", None).await;
    assert_eq!(
        alice.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        alice.text()
    );
    assert!(
        alice.text().contains("second factor not configured"),
        "{}",
        alice.text()
    );
    let bob = login(&gw, "bob", None).await;
    assert_eq!(bob.status, StatusCode::OK, "{}", bob.text());
}
