//! The second factor across instances: two gateways on one real redis-server (users,
//! revocations, throttle and the spent-code guard all there). A code or a recovery code
//! used on one is refused on the other.

use http::StatusCode;

use crate::common::*;

const PASSWORD: &str = "correct horse battery";
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n";

async fn gateway(redis: &Redis, upstream_url: &str) -> Gateway {
    let extra = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\n\n\
         [second_factor]\nkey_file = \"second-factor.key\"\n",
        redis.url()
    );
    AuthSetup::new(upstream_url)
        .users_section("backend = \"redis\"\nhash_workers = 2\n")
        .file("second-factor.key", KEY)
        .extra(&extra)
        .start()
        .await
}

/// RFC 6238 (HMAC-SHA1, 6 digits, 30 s) at `offset` steps from now, written here.
fn totp(secret: &[u8], offset: i64) -> String {
    use aws_lc_rs::hmac;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &(((now / 30) + offset) as u64).to_be_bytes());
    let mac = mac.as_ref();
    let at = usize::from(mac[19] & 0x0f);
    let bin = u32::from_be_bytes([mac[at] & 0x7f, mac[at + 1], mac[at + 2], mac[at + 3]]);
    format!("{:06}", bin % 1_000_000)
}

fn unbase32(text: &str) -> Vec<u8> {
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u64, 0u32);
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {text}"),
        };
        buffer = (buffer << 5) | u64::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// A field of alice's user hash, read with redis-cli.
fn hget(redis: &Redis, field: &str) -> String {
    let out = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "HGET",
            "portcullis:user:alice",
            field,
        ])
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn login(gw: &Gateway, otp: &str) -> Response {
    let body = serde_json::json!({ "username": "alice", "password": PASSWORD, "otp": otp });
    gw.post_json("/auth/login", &body).await
}

#[tokio::test]
async fn a_code_or_recovery_code_spent_on_one_instance_is_refused_on_the_other() {
    let redis = Redis::start().await;
    let up = Upstream::echo().await;
    let a = gateway(&redis, &up.url()).await;
    let b = gateway(&redis, &up.url()).await;
    let added = add_user(&a.config_arg(), "alice", PASSWORD, &[]);
    assert_eq!(added.code, Some(0), "{added:?}");
    let out = run_cli(&["user", "totp", "alice", "--config", &a.config_arg()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let secret = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("secret (to type in by hand): "))
        .map(|s| unbase32(s.trim()))
        .expect("secret line");
    let codes: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("recovery codes"))
        .skip(1)
        .map(str::trim)
        .collect();
    assert_eq!(codes.len(), 10, "{out:?}");
    let stored = hget(&redis, "totp");
    assert!(stored.starts_with("v1."), "sealed in Redis: {stored}");

    let without = b.login("alice", PASSWORD).await;
    assert_eq!(
        without.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        without.text()
    );
    let code = totp(&secret, 0);
    let on_a = login(&a, &code).await;
    assert_eq!(on_a.status, StatusCode::OK, "{}", on_a.text());
    let on_b = login(&b, &code).await;
    assert_eq!(on_b.status, StatusCode::UNAUTHORIZED, "{}", on_b.text());
    assert!(on_b.text().contains("already used"), "{}", on_b.text());

    let recovery_on_b = login(&b, codes[0]).await;
    assert_eq!(
        recovery_on_b.status,
        StatusCode::OK,
        "{}",
        recovery_on_b.text()
    );
    let recovery_on_a = login(&a, codes[0]).await;
    assert_eq!(
        recovery_on_a.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        recovery_on_a.text()
    );
    let left = hget(&redis, "recovery");
    assert_eq!(left.split_whitespace().count(), 9, "{left}");
    assert!(
        !left.contains(&codes[1].replace('-', "")),
        "digests only: {left}"
    );
}
