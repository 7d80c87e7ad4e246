//! Routes that demand how the person signed in (`mfa`, `amr_any`, `max_auth_age`): an API
//! token that falls short gets RFC 9470's challenge, a browser session is sent to add a
//! code on the second-factor page and comes back. Codes here come from this file's own
//! RFC 6238 code, not the gateway's.

use http::StatusCode;

use crate::common::*;

const PASSWORD: &str = "correct horse battery";
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n";
const ACCESS: &str = "__Host-portcullis-access";
const CSRF: &str = "__Host-portcullis-csrf";
const FORM: &str = "__Host-portcullis-sign-in";
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

const CONFIG: &str = "[second_factor]\nkey_file = \"second-factor.key\"\nissuer = \"Test\"\n\n\
[cookies]\nenabled = true\n\n[sign_in]\nenabled = true\n";

const ROUTES: &str = r#"[[routes]]
path = "/secure/**"
upstream = "api"
mfa = true

[[routes]]
path = "/recent/**"
upstream = "api"
max_auth_age = "3s"

[[routes]]
path = "/hardware/**"
upstream = "api"
amr_any = ["hwk"]
"#;

async fn gateway() -> (Gateway, Upstream) {
    let echo = Upstream::echo().await;
    let gw = AuthSetup::new(&echo.url())
        .user("alice", PASSWORD, &["reader"])
        .file("second-factor.key", KEY)
        .extra(CONFIG)
        .routes(ROUTES)
        .start()
        .await;
    (gw, echo)
}

/// RFC 6238 with HMAC-SHA1, 6 digits, 30 s steps, `offset` steps from now.
fn totp(secret: &[u8], offset: i64) -> String {
    use aws_lc_rs::hmac;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let counter = ((now / 30) + offset) as u64;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let at = usize::from(mac[19] & 0x0f);
    let bin = u32::from_be_bytes([mac[at] & 0x7f, mac[at + 1], mac[at + 2], mac[at + 3]]);
    format!("{:06}", bin % 1_000_000)
}

/// RFC 4648 base32 (no padding) back to bytes.
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

/// Enrols `user` from the CLI; the secret as an authenticator app reads it.
fn enrol(gw: &Gateway, user: &str) -> Vec<u8> {
    let out = run_cli(&["user", "totp", user, "--config", &gw.config_arg()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let secret = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("secret (to type in by hand): "))
        .unwrap_or_else(|| panic!("no secret line: {out:?}"));
    unbase32(secret.trim())
}

fn challenge(resp: &Response) -> String {
    resp.header("www-authenticate").unwrap_or_default()
}

#[test]
fn this_files_totp_matches_rfc_6238_appendix_b() {
    // The vector at T = 59 s (counter 1) is 94287082; its last six digits:
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, b"12345678901234567890");
    let mac = hmac::sign(&key, &1u64.to_be_bytes());
    let mac = mac.as_ref();
    let at = usize::from(mac[19] & 0x0f);
    let bin = u32::from_be_bytes([mac[at] & 0x7f, mac[at + 1], mac[at + 2], mac[at + 3]]);
    assert_eq!(bin % 100_000_000, 94_287_082);
}

#[tokio::test]
async fn an_api_token_without_the_factor_gets_the_rfc_9470_challenge_and_one_with_it_passes() {
    let (gw, _echo) = gateway().await;
    let password_only = gw.login_ok("alice", PASSWORD).await;
    let plain = gw.get_api(&password_only.access).await;
    assert_eq!(plain.status, StatusCode::OK, "routes without demands pass");

    let refused = gw
        .client()
        .get("/secure/report")
        .bearer(&password_only.access)
        .send_h1()
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        refused.text()
    );
    let header = challenge(&refused);
    assert!(
        header.contains("error=\"insufficient_user_authentication\"")
            && header.contains("acr_values=\"mfa\""),
        "{header}"
    );
    assert_eq!(refused.json()["error"], "insufficient_user_authentication");
    gw.audit_events_at_least("denied", 1).await;
    assert!(gw
        .audit_events("denied")
        .iter()
        .any(|l| l.contains("second factor") && l.contains("alice")));

    let secret = enrol(&gw, "alice");
    // The file watcher picks up the enrolment within 2 s: until then no code is asked.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while gw.login("alice", PASSWORD).await.status == StatusCode::OK {
        assert!(std::time::Instant::now() < deadline, "enrolment never seen");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let body = serde_json::json!({
        "username": "alice", "password": PASSWORD, "otp": totp(&secret, 0)
    });
    let with_code = gw.post_json("/auth/login", &body).await;
    assert_eq!(with_code.status, StatusCode::OK, "{}", with_code.text());
    let mfa = Pair::from_response(&with_code);
    let passed = gw
        .client()
        .get("/secure/report")
        .bearer(&mfa.access)
        .send_h1()
        .await;
    assert_eq!(passed.status, StatusCode::OK, "{}", passed.text());
    assert_eq!(
        passed.echoed_header("x-auth-user").as_deref(),
        Some("alice")
    );

    // A code is not a hardware key: amr_any = ["hwk"] still says no, naming what would pass.
    let hardware = gw
        .client()
        .get("/hardware/x")
        .bearer(&mfa.access)
        .send_h1()
        .await;
    assert_eq!(hardware.status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge(&hardware).contains("acr_values=\"hwk\""),
        "{}",
        challenge(&hardware)
    );
}

#[tokio::test]
async fn max_auth_age_counts_from_the_sign_in_and_a_refresh_does_not_renew_it() {
    let (gw, _echo) = gateway().await;
    let pair = gw.login_ok("alice", PASSWORD).await;
    let fresh = gw
        .client()
        .get("/recent/x")
        .bearer(&pair.access)
        .send_h1()
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text());
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    let refreshed = Pair::from_response(&gw.refresh(&pair.refresh).await);
    let old = gw
        .client()
        .get("/recent/x")
        .bearer(&refreshed.access)
        .send_h1()
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "{}", old.text());
    let header = challenge(&old);
    assert!(
        header.contains("max_age=\"3\"") && header.contains("too old"),
        "{header}"
    );
    let again = gw.login_ok("alice", PASSWORD).await;
    let ok = gw
        .client()
        .get("/recent/x")
        .bearer(&again.access)
        .send_h1()
        .await;
    assert_eq!(
        ok.status,
        StatusCode::OK,
        "a new sign-in passes: {}",
        ok.text()
    );
}

/// Signs alice in through the form (password only); the session's cookie header value.
async fn browser_session(gw: &Gateway) -> (String, String) {
    let page = gw.client().get("/auth/sign-in").send_h1().await;
    let form_csrf = cookie_set(&page, FORM).expect("form cookie");
    let resp = gw
        .client()
        .post("/auth/sign-in")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .header("cookie", &format!("{FORM}={form_csrf}"))
        .body(format!(
            "username=alice&password={}&csrf={form_csrf}&rd=%2F",
            PASSWORD.replace(' ', "+")
        ))
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::SEE_OTHER, "{}", resp.text());
    let access = cookie_set(&resp, ACCESS).expect("access cookie");
    let csrf = cookie_set(&resp, CSRF).expect("csrf cookie");
    (format!("{ACCESS}={access}; {CSRF}={csrf}"), csrf)
}

fn cookie_set(resp: &Response, name: &str) -> Option<String> {
    resp.headers.get_all("set-cookie").iter().find_map(|v| {
        let (first, _) = v.to_str().ok()?.split_once(';')?;
        let (n, value) = first.split_once('=')?;
        (n == name && !value.is_empty()).then(|| value.to_string())
    })
}

fn navigate(gw: &Gateway, path: &str, cookies: &str) -> RequestBuilder {
    gw.client()
        .get(path)
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-site", "none")
        .header("accept", BROWSER_ACCEPT)
        .header("cookie", cookies)
}

fn post_code(gw: &Gateway, cookies: &str, csrf: &str, code: &str, rd: &str) -> RequestBuilder {
    let rd: String = form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    gw.client()
        .post("/auth/second-factor")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .header("cookie", cookies)
        .body(format!("csrf={csrf}&otp={code}&rd={rd}"))
}

#[tokio::test]
async fn a_browser_session_without_the_factor_adds_a_code_and_comes_back() {
    let (gw, _echo) = gateway().await;
    let (cookies, csrf) = browser_session(&gw).await;
    // Enrolled after this session began: the session has no second factor yet.
    let secret = enrol(&gw, "alice");

    let visit = navigate(&gw, "/secure/report?q=1", &cookies)
        .send_h1()
        .await;
    assert_eq!(visit.status, StatusCode::FOUND, "{}", visit.text());
    let location = visit.header("location").unwrap_or_default();
    assert!(
        location.starts_with("/auth/second-factor?rd=https%3A%2F%2F"),
        "{location}"
    );
    // The file watcher picks up the enrolment within 2 s; until then the page has no code
    // to check against.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let page = loop {
        let page = navigate(&gw, &location, &cookies).send_h1().await;
        let asks_code = page.text().contains("one-time-code") && !page.text().contains("pending");
        if asks_code || std::time::Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(
        page.text().contains("autocomplete=\"one-time-code\""),
        "{}",
        page.text()
    );

    let rd = format!("https://{}/secure/report?q=1", gw.authority());
    let forged = post_code(&gw, &cookies, "not-the-csrf", &totp(&secret, 0), &rd)
        .send_h1()
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text());
    let cross_site = post_code(&gw, &cookies, &csrf, &totp(&secret, 0), &rd)
        .header("sec-fetch-site", "cross-site")
        .send_h1()
        .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    let wrong = if totp(&secret, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let refused = post_code(&gw, &cookies, &csrf, wrong, &rd).send_h1().await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        refused.text()
    );
    assert!(refused.text().contains("refused"), "{}", refused.text());

    let accepted = post_code(&gw, &cookies, &csrf, &totp(&secret, 0), &rd)
        .send_h1()
        .await;
    assert_eq!(
        accepted.status,
        StatusCode::SEE_OTHER,
        "{}",
        accepted.text()
    );
    assert_eq!(accepted.header("location").as_deref(), Some(rd.as_str()));
    let access = cookie_set(&accepted, ACCESS).expect("a new session");
    let claims = claims_of(&access);
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    let new_csrf = cookie_set(&accepted, CSRF).expect("csrf cookie");
    let upgraded = format!("{ACCESS}={access}; {CSRF}={new_csrf}");
    let back = navigate(&gw, "/secure/report?q=1", &upgraded)
        .send_h1()
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text());

    // The weaker session it replaced is over, and the spent code cannot upgrade it again.
    let old = navigate(&gw, "/api/x", &cookies).send_h1().await;
    assert_eq!(old.status, StatusCode::FOUND, "the old session is revoked");
    let replay = post_code(&gw, &upgraded, &new_csrf, &totp(&secret, 0), &rd)
        .send_h1()
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.text());
    assert!(replay.text().contains("already used"), "{}", replay.text());
}

#[tokio::test]
async fn explain_shows_the_sign_in_demands_and_config_errors_name_the_line() {
    let (gw, _echo) = gateway().await;
    let out = run_cli(&["explain", "GET", "/secure/x", "--config", &gw.config_arg()]);
    assert!(out.stdout.contains("mfa: required"), "{out:?}");
    let out = run_cli(&["explain", "GET", "/recent/x", "--config", &gw.config_arg()]);
    assert!(out.stdout.contains("max_auth_age: 3s"), "{out:?}");

    let bad = TestDir::new();
    let routes = format!(
        "{}[[routes]]\npath = \"/x/**\"\nupstream = \"api\"\namr_any = [\"password\"]\n",
        standard_routes("http://127.0.0.1:9")
    );
    let cfg = GatewayConfig::new(routes);
    let config = Gateway::prepare(&bad, &cfg);
    let out = run_cli(&["check", "--config", config.to_str().unwrap()]);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("routes.toml:") && out.stderr.contains("not an RFC 8176 method"),
        "{out:?}"
    );
}

fn post_enrolment(gw: &Gateway, cookies: &str, fields: &[(&str, &str)]) -> RequestBuilder {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    gw.client()
        .post("/auth/second-factor")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .header("cookie", cookies)
        .body(body)
}

/// The value of the hidden input `name` in a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name}: {page}"))
        + marker.len();
    page[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_person_without_a_factor_enrols_on_the_page_with_password_and_first_code() {
    let (gw, _echo) = gateway().await;
    let (cookies, csrf) = browser_session(&gw).await;
    let visit = navigate(&gw, "/secure/x", &cookies).send_h1().await;
    let location = visit.header("location").unwrap_or_default();
    assert!(
        location.starts_with("/auth/second-factor?rd="),
        "{location}"
    );
    let page = navigate(&gw, &location, &cookies).send_h1().await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let html = page.text();
    assert!(html.contains("<svg") && html.contains("QR code"), "{html}");
    let pending = hidden(&html, "pending");
    let key = html
        .split("<code id=\"totp-key\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the key to type in");
    let secret = unbase32(key);
    let rd = format!("https://{}/secure/x", gw.authority());
    let send = |password: &str, code: String, pending: &str| {
        let fields = [
            ("csrf", csrf.as_str()),
            ("rd", rd.as_str()),
            ("pending", pending),
            ("password", password),
            ("otp", code.as_str()),
        ];
        post_enrolment(&gw, &cookies, &fields)
    };

    // A stolen session without the password cannot enrol its own factor.
    let no_password = send("wrong password", totp(&secret, 0), &pending)
        .send_h1()
        .await;
    assert_eq!(
        no_password.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        no_password.text()
    );
    assert_eq!(
        hidden(&no_password.text(), "pending"),
        pending,
        "the same secret is shown again"
    );
    // A secret sealed for someone else, or altered, does not open.
    let mut altered = pending.clone();
    altered.replace_range(10..11, if &altered[10..11] == "A" { "B" } else { "A" });
    let tampered = send(PASSWORD, totp(&secret, 0), &altered).send_h1().await;
    assert_eq!(
        tampered.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        tampered.text()
    );
    let wrong = if totp(&secret, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let wrong_code = send(PASSWORD, wrong.to_string(), &pending).send_h1().await;
    assert_eq!(
        wrong_code.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        wrong_code.text()
    );
    let users = std::fs::read_to_string(gw.config_path.with_file_name("users.toml")).unwrap();
    assert!(
        !users.contains("totp"),
        "nothing saved before a good code: {users}"
    );

    let enrolled = send(PASSWORD, totp(&secret, 0), &pending).send_h1().await;
    assert_eq!(enrolled.status, StatusCode::OK, "{}", enrolled.text());
    let shown = enrolled.text();
    assert!(
        shown.contains(&format!("href=\"{rd}\">Continue")),
        "{shown}"
    );
    let codes = recovery_codes(&shown);
    assert_eq!(codes.len(), 10, "{shown}");
    let access = cookie_set(&enrolled, ACCESS).expect("a new session");
    assert_eq!(
        claims_of(&access)["amr"],
        serde_json::json!(["pwd", "otp", "mfa"])
    );
    let users = std::fs::read_to_string(gw.config_path.with_file_name("users.toml")).unwrap();
    assert!(users.contains(&format!("totp = \"{pending}\"")), "{users}");
    assert!(!users.contains(key), "never in clear: {users}");
    for code in &codes {
        let bare = code.replace('-', "");
        assert!(
            !users.contains(code.as_str()) && !users.contains(&bare),
            "{users}"
        );
    }
    assert!(users.contains("recovery = ["), "{users}");
    assert_eq!(gw.audit_events_at_least("totp_enrolled", 1).await.len(), 1);

    // From now on the password alone is not enough, and the page no longer offers enrolment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while gw.login("alice", PASSWORD).await.status == StatusCode::OK {
        assert!(std::time::Instant::now() < deadline, "enrolment never seen");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let new_csrf = cookie_set(&enrolled, CSRF).expect("csrf cookie");
    let upgraded = format!("{ACCESS}={access}; {CSRF}={new_csrf}");
    let sessions = navigate(&gw, "/auth/sessions", &upgraded).send_h1().await;
    assert!(
        sessions.text().contains("with password and one-time code"),
        "{}",
        sessions.text()
    );
    let page = navigate(&gw, "/auth/second-factor", &upgraded)
        .send_h1()
        .await;
    assert!(!page.text().contains("pending"), "{}", page.text());
}

/// The recovery codes a page lists.
fn recovery_codes(page: &str) -> Vec<String> {
    page.split("<li><code>")
        .skip(1)
        .filter_map(|rest| rest.split('<').next())
        .map(str::to_owned)
        .collect()
}

async fn login_with(gw: &Gateway, otp: &str) -> Response {
    let body = serde_json::json!({ "username": "alice", "password": PASSWORD, "otp": otp });
    gw.post_json("/auth/login", &body).await
}

#[tokio::test]
async fn a_recovery_code_signs_in_once_and_a_new_set_voids_the_old() {
    let (gw, _echo) = gateway().await;
    let out = run_cli(&["user", "totp", "alice", "--config", &gw.config_arg()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let codes: Vec<String> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("recovery codes"))
        .skip(1)
        .map(|l| l.trim().to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{out:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while gw.login("alice", PASSWORD).await.status == StatusCode::OK {
        assert!(std::time::Instant::now() < deadline, "enrolment never seen");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // Typed loosely (upper case, no dash), as people do.
    let typed = codes[0].replace('-', "").to_uppercase();
    let ok = login_with(&gw, &typed).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(
        Pair::from_response(&ok).access_claims()["amr"],
        serde_json::json!(["pwd", "otp", "mfa"])
    );
    let used = gw.audit_events_at_least("recovery_code_used", 1).await;
    assert!(used[0].contains("remaining=9"), "{used:?}");
    let again = login_with(&gw, &codes[0]).await;
    assert_eq!(
        again.status,
        StatusCode::UNAUTHORIZED,
        "used once: {}",
        again.text()
    );
    assert!(again.text().contains("recovery code"), "{}", again.text());
    let made_up = login_with(&gw, "abcde-fghij").await;
    assert_eq!(made_up.status, StatusCode::UNAUTHORIZED);

    let renewed = run_cli(&["user", "recovery", "alice", "--config", &gw.config_arg()]);
    assert_eq!(renewed.code, Some(0), "{renewed:?}");
    // Once the file watcher has the new set, no old code works.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut old_codes = codes[1..].iter();
    loop {
        let Some(old) = old_codes.next() else {
            panic!("the old set kept working");
        };
        if login_with(&gw, old).await.status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the old set still works"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let path = gw.config_path.with_file_name("users.toml");
    let users = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        users.replacen("recovery = [\"", "recovery = [\"abc-", 1),
    )
    .unwrap();
    let check = run_cli(&["user", "list", "--config", &gw.config_arg()]);
    assert_ne!(check.code, Some(0), "{check:?}");
    assert!(
        check
            .stderr
            .contains("recovery is not a list of code digests"),
        "{check:?}"
    );
}
