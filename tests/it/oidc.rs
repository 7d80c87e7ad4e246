//! Signing in through a real OpenID provider (`oidc-provider` run by node, tests/oidc/):
//! the authorization code flow with PKCE, `state`, `nonce` and `iss` checked, the session
//! the callback starts, and the attacks on each of those checks.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn a_person_signs_in_at_the_provider_and_lands_on_the_page_they_asked_for() {
    let s = OidcSetup::corp().await;
    let browser = CurlBrowser::new();
    let sign_in = browser.get(&s.url("/auth/sign-in"));
    assert!(
        sign_in.body.contains("/auth/sign-in/corp?rd="),
        "{}",
        sign_in.body
    );
    assert!(sign_in.body.contains("Corporate login"), "{}", sign_in.body);

    let callback = s.to_callback(&browser, &s.url("/api/report?x=1"), "alice");
    assert!(
        callback.contains("iss="),
        "RFC 9207 iss in the answer: {callback}"
    );
    let landed = browser.get_once(&callback);
    assert_eq!(landed.status, 200, "{landed:?}\n{}", s.gw.log());
    // The continue step: a same-origin page, so the next navigation carries Strict cookies.
    let next = landed
        .attr("id=\"continue\"", "href")
        .expect("a continue link");
    assert_eq!(next, s.url("/api/report?x=1"));

    let page = browser.get_once(&next);
    assert_eq!(page.status, 200, "{page:?}");
    let echoed: serde_json::Value = serde_json::from_str(&page.body).expect("echo json");
    assert_eq!(echoed["headers"]["x-auth-user"], "corp:alice");
    assert_eq!(echoed["headers"]["x-auth-roles"], "staff");
    let logins = s.gw.audit_events_at_least("login_ok", 1).await;
    assert!(
        logins
            .iter()
            .any(|l| l.contains("corp:alice") && l.contains("corp")),
        "{logins:?}"
    );
    let log = s.gw.log();
    let code = callback
        .split("code=")
        .nth(1)
        .and_then(|c| c.split('&').next())
        .unwrap_or("?");
    assert!(!log.contains(code), "the code must not be logged");
}

#[tokio::test]
async fn a_provider_session_refreshes_although_the_person_is_in_no_local_store() {
    let s = OidcSetup::corp().await;
    let browser = CurlBrowser::new();
    let callback = s.to_callback(&browser, "/", "alice");
    assert_eq!(browser.get_once(&callback).status, 200);
    let renewed = browser.get_once(&s.url("/auth/refresh?rd=%2Fapi%2Fagain"));
    assert_eq!(renewed.status, 302, "{renewed:?}\n{}", s.gw.log());
    assert_eq!(
        renewed.location,
        s.url("/api/again"),
        "renewed, not sent to sign in"
    );
    let page = browser.get_once(&renewed.location);
    let echoed: serde_json::Value = serde_json::from_str(&page.body).expect("echo json");
    assert_eq!(echoed["headers"]["x-auth-user"], "corp:alice");
    assert_eq!(echoed["headers"]["x-auth-roles"], "staff");
    // No local password to change: the page says where it is changed, the list links none.
    let password = browser.get_once(&s.url("/auth/change-password"));
    assert_eq!(password.status, 501, "{password:?}");
    assert!(
        password.body.contains("identity provider"),
        "{}",
        password.body
    );
    let sessions = browser.get_once(&s.url("/auth/sessions"));
    assert_eq!(sessions.status, 200, "{sessions:?}");
    assert!(
        !sessions.body.contains("change-password"),
        "{}",
        sessions.body
    );
}

#[tokio::test]
async fn a_callback_with_another_browsers_state_or_none_is_refused() {
    let s = OidcSetup::corp().await;
    let victim = CurlBrowser::new();
    let attacker = CurlBrowser::new();
    // The attacker's own finished sign-in, replayed into the victim's browser (login CSRF).
    let callback = s.to_callback(&attacker, "/", "alice");
    let no_pending = victim.get_once(&callback);
    assert_eq!(no_pending.status, 400, "{no_pending:?}");
    assert!(
        no_pending.body.contains("another browser"),
        "{}",
        no_pending.body
    );
    // The victim has a sign-in of their own pending: the states differ.
    let _ = victim.get(&s.url("/auth/sign-in/corp"));
    let mismatch = victim.get_once(&callback);
    assert_eq!(mismatch.status, 400, "{mismatch:?}");
    assert!(
        !victim.jar().contains("portcullis-access"),
        "no session: {}",
        victim.jar()
    );
    let refused =
        s.gw.audit_events_at_least("provider_sign_in_refused", 2)
            .await;
    assert!(
        refused.iter().any(|l| l.contains("state mismatch")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn an_answer_naming_another_issuer_or_none_is_refused() {
    let s = OidcSetup::corp().await;
    for forge in ["https%3A%2F%2Fevil.example", ""] {
        let browser = CurlBrowser::new();
        let callback = s.to_callback(&browser, "/", "alice");
        let (head, iss_and_rest) = callback.split_once("iss=").expect("iss in the answer");
        let rest = iss_and_rest.split_once('&').map(|(_, r)| r).unwrap_or("");
        let forged = match forge {
            "" => format!("{head}{rest}"),
            other => format!("{head}iss={other}&{rest}"),
        };
        let page = browser.get_once(&forged);
        assert_eq!(page.status, 400, "{forged}: {page:?}");
        assert!(!browser.jar().contains("portcullis-access"), "no session");
    }
    let refused =
        s.gw.audit_events_at_least("provider_sign_in_refused", 2)
            .await;
    assert_eq!(
        refused
            .iter()
            .filter(|l| l.contains("iss mismatch"))
            .count(),
        2,
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_replayed_callback_is_refused_even_with_its_state_cookie() {
    let s = OidcSetup::corp().await;
    let browser = CurlBrowser::new();
    let callback = s.to_callback(&browser, "/", "alice");
    let pending = browser.jar();
    assert_eq!(browser.get_once(&callback).status, 200);
    // Used once: the state cookie is gone.
    assert_eq!(browser.get_once(&callback).status, 400);
    // Put back, the provider still refuses the spent code.
    let thief = CurlBrowser::new();
    thief.set_jar(&pending);
    let replay = thief.get_once(&callback);
    assert_eq!(replay.status, 403, "{replay:?}");
    assert!(!thief.jar().contains("portcullis-access"), "no session");
    let refused =
        s.gw.audit_events_at_least("provider_sign_in_refused", 2)
            .await;
    assert!(
        refused.iter().any(|l| l.contains("invalid_grant")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn an_id_token_for_another_sign_in_nonce_is_refused() {
    let s = OidcSetup::corp().await;
    let browser = CurlBrowser::new();
    let callback = s.to_callback(&browser, "/", "alice");
    // Swap the nonce this browser expects (as if the ID token were replayed from another
    // sign-in): state and PKCE still match, only the nonce differs.
    let jar = browser.jar();
    let line = jar
        .lines()
        .find(|l| l.contains("__Host-portcullis-oidc-corp"))
        .expect("the pending sign-in cookie");
    let value = line.rsplit('\t').next().expect("cookie value");
    let decoded = base64_url_decode(value);
    let n = decoded
        .split('&')
        .find(|p| p.starts_with("n="))
        .expect("nonce field");
    let tampered = decoded.replace(n, "n=0123456789abcdef0123456789abcdef");
    browser.set_jar(&jar.replace(value, &base64_url_encode(&tampered)));
    let page = browser.get_once(&callback);
    assert_eq!(page.status, 403, "{page:?}");
    assert!(!browser.jar().contains("portcullis-access"), "no session");
    let refused =
        s.gw.audit_events_at_least("provider_sign_in_refused", 1)
            .await;
    assert!(refused.iter().any(|l| l.contains("nonce")), "{refused:?}");
}

#[tokio::test]
async fn rd_to_a_foreign_host_lands_on_the_gateways_home() {
    let s = OidcSetup::corp().await;
    let browser = CurlBrowser::new();
    let callback = s.to_callback(&browser, "https://evil.example/steal", "alice");
    let landed = browser.get_once(&callback);
    assert_eq!(landed.status, 200, "{landed:?}");
    let next = landed
        .attr("id=\"continue\"", "href")
        .expect("a continue link");
    assert_eq!(next, s.url("/"));
    assert!(!landed.body.contains("evil.example"), "{}", landed.body);
}

#[tokio::test]
async fn a_sign_out_at_the_provider_ends_the_gateway_session_by_back_channel() {
    let s = OidcSetup::corp().await;
    let browser = CurlBrowser::new();
    let callback = s.to_callback(&browser, "/", "alice");
    assert_eq!(browser.get_once(&callback).status, 200);
    assert_eq!(browser.get_once(&s.url("/api/before")).status, 200);

    // Sign out at the provider: its confirm page, then its form.
    let confirm = browser.get(&format!("{}/session/end", s.provider().issuer()));
    let xsrf = confirm
        .attr("name=\"xsrf\"", "value")
        .expect("the provider's logout form");
    let action = confirm.attr("<form", "action").expect("form action");
    let url = match action.starts_with('/') {
        true => format!("{}{action}", s.provider().issuer()),
        false => action,
    };
    browser.post_form(&url, &[("xsrf", &xsrf), ("logout", "yes")], false);

    let after = s.url("/api/after");
    eventually(DEADLINE, || async {
        match browser.get_once(&after).status {
            200 => Err("still signed in".to_string()),
            _ => Ok(()),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", s.gw.log(), s.provider().log()));
    // Nor can the session be renewed.
    let renewed = browser.get_once(&s.url("/auth/refresh?rd=%2Fapi%2Fx"));
    assert!(renewed.location.contains("/auth/sign-in"), "{renewed:?}");
    let events = s.gw.audit_events_at_least("backchannel_logout", 1).await;
    assert!(
        events.iter().any(|l| l.contains("corp:alice")),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_replayed_or_malformed_logout_token_is_refused() {
    let s = OidcSetup::corp().await;
    let now = now_secs();
    let event = json!({ "http://schemas.openid.net/event/backchannel-logout": {} });
    let claims = |jti: &str| {
        json!({
            "iss": s.provider().issuer(), "aud": "portcullis", "iat": now, "exp": now + 120,
            "jti": jti, "sub": "alice", "events": event,
        })
    };
    let post = |token: &str| {
        let body = format!("logout_token={token}");
        let out = std::process::Command::new("curl")
            .args([
                "-k",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--data",
                &body,
            ])
            .arg(s.url("/auth/backchannel-logout/corp"))
            .output()
            .expect("curl is installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(post(&s.provider().sign(&claims("j1"))), "200");
    assert_eq!(post(&s.provider().sign(&claims("j1"))), "400", "a replay");
    let mut with_nonce = claims("j2");
    with_nonce["nonce"] = json!("n");
    assert_eq!(post(&s.provider().sign(&with_nonce)), "400", "a nonce");
    let mut no_event = claims("j3");
    no_event.as_object_mut().expect("object").remove("events");
    assert_eq!(post(&s.provider().sign(&no_event)), "400", "no event");
    let mut other_client = claims("j4");
    other_client["aud"] = json!("someone-else");
    assert_eq!(
        post(&s.provider().sign(&other_client)),
        "400",
        "another client's"
    );
    let mut no_jti = claims("");
    no_jti.as_object_mut().expect("object").remove("jti");
    assert_eq!(post(&s.provider().sign(&no_jti)), "400", "no jti");
    assert_eq!(post("not.a.token"), "400");
    let refused =
        s.gw.audit_events_at_least("backchannel_logout_refused", 6)
            .await;
    assert_eq!(refused.len(), 6, "{refused:?}");
}

#[tokio::test]
async fn signing_out_of_a_provider_session_goes_on_to_the_providers_sign_out() {
    let s = OidcSetup::corp().await;
    let browser = CurlBrowser::new();
    let callback = s.to_callback(&browser, "/", "alice");
    assert_eq!(browser.get_once(&callback).status, 200);

    let confirm = browser.get_once(&s.url("/auth/sign-out"));
    assert_eq!(confirm.status, 200, "{confirm:?}");
    let csrf = confirm
        .attr("name=\"csrf\"", "value")
        .expect("the sign-out form");
    let out = std::process::Command::new("curl")
        .args(["-k", "-sS", "-D", "-", "-o", "/dev/null"])
        .arg(s.url("/auth/sign-out"))
        .output()
        .expect("curl is installed");
    let headers = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    let form_action = format!("form-action 'self' {}", s.provider().issuer());
    assert!(
        headers.contains(&form_action),
        "the page may post on to the provider: {headers}"
    );

    let signed_out = browser.post_form(
        &s.url("/auth/sign-out"),
        &[("csrf", &csrf), ("rd", "")],
        false,
    );
    assert_eq!(signed_out.status, 303, "{signed_out:?}");
    let end_session = format!("{}/session/end?client_id=portcullis", s.provider().issuer());
    assert_eq!(signed_out.location, end_session);
    assert_ne!(
        browser.get_once(&s.url("/api/x")).status,
        200,
        "signed out here"
    );
    // The provider asks to confirm the end of its own session.
    let at_provider = browser.get(&signed_out.location);
    assert!(
        at_provider.body.contains("op.logoutForm"),
        "{at_provider:?}"
    );
}

#[tokio::test]
async fn a_provider_that_is_down_gets_a_clear_page_not_a_loop() {
    let echo = Upstream::echo().await;
    let down = format!("http://127.0.0.1:{}", free_port());
    let gw = AuthSetup::new(&echo.url())
        .env("CORP_CLIENT_SECRET", OIDC_SECRET)
        .extra(&format!(
            "[cookies]\nenabled = true\n\n[sign_in]\nenabled = true\n\n[[sign_in.providers]]\nid = \"corp\"\nissuer = \"{down}\"\nclient_id = \"portcullis\"\nclient_secret_env = \"CORP_CLIENT_SECRET\"\nfetch_timeout = \"2s\"\n"
        ))
        .start()
        .await;
    let browser = CurlBrowser::new();
    let page = browser.get(&format!(
        "https://127.0.0.1:{}/auth/sign-in/corp?rd=%2F",
        gw.https.port()
    ));
    assert_eq!(page.status, 502, "{page:?}");
    assert!(
        page.body.contains("cannot be reached right now"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("/auth/sign-in"),
        "a way back: {}",
        page.body
    );
}

fn base64_url_decode(value: &str) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .expect("base64url cookie");
    String::from_utf8(bytes).expect("utf-8 cookie")
}

fn base64_url_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn a_person_signs_in_at_the_provider_with_a_real_browser() {
    let s = OidcSetup::corp().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "the browser tests need `npm ci --prefix tests/browser` and Debian's chromium (`.ci/run` installs both)"
    );
    let out = std::process::Command::new("node")
        .arg(dir.join("sign_in_provider.mjs"))
        .env("GATEWAY", s.url(""))
        .output()
        .expect("node runs (apt-get install nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sign_in_provider.mjs failed:\n{stdout}\n{}\ngateway log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.gw.log()
    );
    assert!(
        stdout.contains("ok: upstream sees the provider's person"),
        "{stdout}"
    );
}
