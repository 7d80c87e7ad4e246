//! TOTP second factor end to end: enrolment from the CLI (sealed in users.toml, shown as an
//! otpauth:// URI and a QR code), logins that need a current code once, and the sign-in
//! page's code field.

use http::StatusCode;

use crate::common::*;

pub(crate) const PASSWORD: &str = "correct horse battery";
/// Base64 of 32 bytes, as `openssl rand -base64 32` prints it.
pub(crate) const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n";
const SECOND_FACTOR: &str =
    "[second_factor]\nkey_file = \"second-factor.key\"\nissuer = \"Test Co\"\n";

pub(crate) async fn gateway(extra: &str) -> (Gateway, Upstream) {
    let echo = Upstream::echo().await;
    let gw = AuthSetup::new(&echo.url())
        .user("alice", PASSWORD, &["reader"])
        .user("bob", PASSWORD, &["reader"])
        .file("second-factor.key", KEY)
        .extra(SECOND_FACTOR)
        .extra(extra)
        .start()
        .await;
    (gw, echo)
}

pub(crate) fn cli(gw: &Gateway, args: &[&str]) -> CliOutput {
    let config = gw.config_path.to_str().expect("utf-8 path").to_string();
    let mut all = args.to_vec();
    all.extend_from_slice(&["--config", &config]);
    run_cli(&all)
}

/// RFC 4648 base32 (no padding) back to bytes.
pub(crate) fn unbase32(text: &str) -> Vec<u8> {
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {text}"),
        };
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// Enrols alice and returns her secret as the app would read it from the URI.
pub(crate) fn enrol(gw: &Gateway) -> Vec<u8> {
    let out = cli(gw, &["user", "totp", "alice"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let uri = out
        .stdout
        .lines()
        .find(|l| l.starts_with("otpauth://totp/Test%20Co:alice?secret="))
        .unwrap_or_else(|| panic!("no otpauth URI: {out:?}"));
    assert!(uri.contains("&digits=6&period=30"), "{uri}");
    assert!(
        out.stdout.contains('▀') || out.stdout.contains('█'),
        "a QR code: {out:?}"
    );
    let secret = uri
        .split("secret=")
        .nth(1)
        .and_then(|s| s.split('&').next());
    let secret = secret.expect("secret parameter");
    let users = std::fs::read_to_string(gw.config_path.with_file_name("users.toml")).unwrap();
    assert!(
        users.contains("totp = \"v1."),
        "sealed in users.toml: {users}"
    );
    assert!(!users.contains(secret), "never in clear: {users}");
    unbase32(secret)
}

pub(crate) fn code(secret: &[u8], offset_steps: i64) -> String {
    let now = portcullis::runtime::unix_now() as i64;
    let step = (now / 30 + offset_steps) as u64;
    format!("{:06}", portcullis::users::totp::code_at(secret, step))
}

pub(crate) async fn login(gw: &Gateway, user: &str, otp: Option<&str>) -> Response {
    let mut body = serde_json::json!({ "username": user, "password": PASSWORD });
    if let Some(otp) = otp {
        body["otp"] = otp.into();
    }
    gw.post_json("/auth/login", &body).await
}

fn error_of(resp: &Response) -> String {
    let body: serde_json::Value = serde_json::from_str(&resp.text()).unwrap_or_default();
    format!("{} {}", body["error"], body["error_description"])
}

/// A login right after an edit of users.toml may still see the old file (2 s watcher).
pub(crate) async fn until_status(
    gw: &Gateway,
    user: &str,
    otp: Option<&str>,
    want: StatusCode,
) -> Response {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let resp = login(gw, user, otp).await;
        if resp.status == want || std::time::Instant::now() > deadline {
            return resp;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn an_enrolled_user_signs_in_with_a_current_code_and_each_code_works_once() {
    let (gw, _echo) = gateway("").await;
    let secret = enrol(&gw);

    let without = until_status(&gw, "alice", None, StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        without.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        without.text()
    );
    assert!(
        error_of(&without).contains("mfa_required"),
        "{}",
        without.text()
    );
    let wrong_code = if code(&secret, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let wrong = login(&gw, "alice", Some(wrong_code)).await;
    assert!(error_of(&wrong).contains("invalid_otp"), "{}", wrong.text());
    let stale = login(&gw, "alice", Some(&code(&secret, -3))).await;
    assert!(error_of(&stale).contains("invalid_otp"), "{}", stale.text());

    let current = code(&secret, 0);
    let ok = login(&gw, "alice", Some(&current)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let pair = Pair::from_response(&ok);
    assert_eq!(
        pair.access_claims()["amr"],
        serde_json::json!(["pwd", "otp", "mfa"])
    );
    let again = login(&gw, "alice", Some(&current)).await;
    assert!(
        error_of(&again).contains("already used"),
        "{}",
        again.text()
    );
    let refreshed = Pair::from_response(&gw.refresh(&pair.refresh).await);
    assert_eq!(
        refreshed.access_claims()["amr"],
        pair.access_claims()["amr"]
    );

    let bob = login(&gw, "bob", None).await;
    assert_eq!(
        bob.status,
        StatusCode::OK,
        "no factor, no code: {}",
        bob.text()
    );
    assert_eq!(
        Pair::from_response(&bob).access_claims()["amr"],
        serde_json::json!(["pwd"])
    );

    let removed = cli(&gw, &["user", "totp", "alice", "--reset"]);
    assert_eq!(removed.code, Some(0), "{removed:?}");
    let plain = until_status(&gw, "alice", None, StatusCode::OK).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.text());
}

#[tokio::test]
async fn wrong_codes_are_throttled_although_the_password_is_right() {
    let (gw, _echo) = gateway("").await;
    let secret = enrol(&gw);
    until_status(&gw, "alice", None, StatusCode::UNAUTHORIZED).await;
    let wrong_code = if code(&secret, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    // The default limit is 5 failures per user; the right password must not reset it.
    let mut throttled = None;
    for attempt in 0..8 {
        let resp = login(&gw, "alice", Some(wrong_code)).await;
        if resp.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(attempt);
            break;
        }
        assert!(error_of(&resp).contains("invalid_otp"), "{}", resp.text());
    }
    assert!(throttled.is_some(), "eight wrong codes and never throttled");
    let right = login(&gw, "alice", Some(&code(&secret, 0))).await;
    assert_eq!(
        right.status,
        StatusCode::TOO_MANY_REQUESTS,
        "still throttled: {}",
        right.text()
    );
}

#[tokio::test]
async fn the_sign_in_page_asks_for_the_code_and_lets_the_person_in_with_it() {
    let cookies = "[cookies]\nenabled = true\n\n[sign_in]\nenabled = true\n";
    let (gw, _echo) = gateway(cookies).await;
    let secret = enrol(&gw);
    let page = gw.client().get("/auth/sign-in").send_h1().await;
    assert!(
        page.text().contains("autocomplete=\"one-time-code\""),
        "{}",
        page.text()
    );
    let form_cookie = page.headers["set-cookie"].to_str().unwrap();
    let form_cookie = form_cookie.split(';').next().unwrap().to_string();
    let csrf = form_cookie.split('=').nth(1).unwrap().to_string();
    let post = |otp: String| {
        gw.client()
            .post("/auth/sign-in")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .header("cookie", &form_cookie)
            .body(format!(
                "username=alice&password={}&csrf={csrf}&rd=%2Fapi%2Fx&otp={otp}",
                PASSWORD.replace(' ', "+")
            ))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let without = loop {
        let resp = post(String::new()).send_h1().await;
        if resp.status != StatusCode::SEE_OTHER || std::time::Instant::now() > deadline {
            break resp;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        without.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        without.text()
    );
    assert!(
        without.text().contains("one-time code"),
        "{}",
        without.text()
    );
    let signed_in = post(code(&secret, 0)).send_h1().await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.text()
    );
    assert!(signed_in.headers["location"]
        .to_str()
        .unwrap()
        .ends_with("/api/x"));
}

#[tokio::test]
async fn enrolment_without_a_key_and_a_hand_written_secret_are_refused_clearly() {
    let echo = Upstream::echo().await;
    let gw = AuthSetup::new(&echo.url())
        .user("alice", PASSWORD, &["reader"])
        .start()
        .await;
    let out = cli(&gw, &["user", "totp", "alice"]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("[second_factor] key_file or key_env"),
        "{out:?}"
    );
    let users = gw.config_path.with_file_name("users.toml");
    let text = std::fs::read_to_string(&users).unwrap();
    std::fs::write(
        &users,
        text.replacen("roles =", "totp = \"JBSWY3DPEHPK3PXP\"\nroles =", 1),
    )
    .unwrap();
    let check = cli(&gw, &["user", "list"]);
    assert_ne!(check.code, Some(0), "{check:?}");
    assert!(
        check.stderr.contains("totp is not a sealed secret"),
        "{check:?}"
    );
    assert!(check.stderr.contains("users.toml:"), "file:line: {check:?}");
}

#[tokio::test]
async fn a_password_change_keeps_the_second_factor_and_the_sign_in_time_of_the_session() {
    let (gw, _echo) = gateway("").await;
    let secret = enrol(&gw);
    until_status(&gw, "alice", None, StatusCode::UNAUTHORIZED).await;
    let ok = login(&gw, "alice", Some(&code(&secret, 0))).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let pair = Pair::from_response(&ok);
    let before = pair.access_claims();
    let body = serde_json::json!({
        "current_password": PASSWORD,
        "new_password": "a different long passphrase",
    });
    let changed = gw
        .client()
        .post("/auth/password")
        .bearer(&pair.access)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send_h1()
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    let after = Pair::from_response(&changed).access_claims();
    assert_eq!(after["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(after["auth_time"], before["auth_time"], "not a new sign-in");
}
