//! Back-channel logout by provider session (`sid`): a logout at the provider ends the
//! gateway session that provider session started and no other of the person's; a logout
//! token naming only a `sid` does the same; forged logout tokens are refused.

use serde_json::{json, Value};

use crate::common::*;

/// "corp", whose client asks the provider for `sid` in ID and logout tokens.
async fn with_sids() -> OidcSetup {
    let spec = ProviderSpec::new("corp", "Corporate login")
        .client(json!({ "backchannel_logout_session_required": true }));
    OidcSetup::start(vec![spec], "").await
}

/// POSTs a logout token to corp's back-channel endpoint; the status.
fn post_logout(s: &OidcSetup, token: &str) -> String {
    post_logout_to(&s.gw, token)
}

/// POSTs a logout token to corp's back-channel endpoint on `gw`; the status.
fn post_logout_to(gw: &Gateway, token: &str) -> String {
    let body = format!("logout_token={token}");
    let url = format!(
        "https://127.0.0.1:{}/auth/backchannel-logout/corp",
        gw.https.port()
    );
    let out = std::process::Command::new("curl")
        .args(["-k", "-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["--data", &body])
        .arg(url)
        .output()
        .expect("curl is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The claims of the browser's access cookie (not verified: the test reads its own).
fn access_claims(browser: &CurlBrowser) -> Value {
    let jar = browser.jar();
    let line = jar
        .lines()
        .find(|l| l.contains("portcullis-access"))
        .expect("an access cookie");
    let token = line.rsplit('\t').next().expect("cookie value");
    claims_of(token)
}

/// Waits until `browser` is no longer let in at /api/check.
async fn until_signed_out(s: &OidcSetup, browser: &CurlBrowser) {
    eventually(DEADLINE, || async {
        match s.who(browser, "/api/check") {
            Ok(_) => Err("still signed in".to_string()),
            Err(_) => Ok(()),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", s.gw.log(), s.provider().log()));
}

#[tokio::test]
async fn a_logout_at_the_provider_ends_only_the_session_it_started() {
    let s = with_sids().await;
    let laptop = CurlBrowser::new();
    let phone = CurlBrowser::new();
    s.sign_in_at("corp", &laptop, "alice");
    s.sign_in_at("corp", &phone, "alice");
    let (a, b) = (access_claims(&laptop), access_claims(&phone));
    assert!(a["idp_sid"].is_string(), "the provider's sid is kept: {a}");
    assert_ne!(a["idp_sid"], b["idp_sid"], "two provider sessions");

    // The laptop signs out at the provider: its logout form, then the back-channel call.
    let confirm = laptop.get(&format!("{}/session/end", s.provider().issuer()));
    let xsrf = confirm
        .attr("name=\"xsrf\"", "value")
        .expect("the provider's logout form");
    let action = confirm.attr("<form", "action").expect("form action");
    let url = match action.starts_with('/') {
        true => format!("{}{action}", s.provider().issuer()),
        false => action,
    };
    laptop.post_form(&url, &[("xsrf", &xsrf), ("logout", "yes")], false);
    until_signed_out(&s, &laptop).await;

    assert_eq!(
        s.who(&phone, "/api/still"),
        Ok("corp:alice".to_string()),
        "the phone's session was started by another provider session"
    );
    let renewed = phone.get_once(&s.url("/auth/refresh?rd=%2Fapi%2Fx"));
    assert_eq!(renewed.status, 302, "{renewed:?}");
    assert_eq!(renewed.location, s.url("/api/x"), "and it still renews");
    let events = s.gw.audit_events_at_least("backchannel_logout", 1).await;
    assert!(
        events.iter().any(|l| l.contains("by_sid=true")),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_logout_token_naming_only_a_sid_ends_that_session() {
    let s = with_sids().await;
    let laptop = CurlBrowser::new();
    let phone = CurlBrowser::new();
    s.sign_in_at("corp", &laptop, "alice");
    s.sign_in_at("corp", &phone, "alice");
    // A refresh first: the sid record follows the family's renewed tokens.
    let renewed = laptop.get_once(&s.url("/auth/refresh?rd=%2Fapi%2Fx"));
    assert_eq!(renewed.status, 302, "{renewed:?}");
    let sid = access_claims(&laptop)["idp_sid"]
        .as_str()
        .expect("sid kept across the refresh")
        .to_string();
    let now = now_secs();
    let token = s.provider().sign(&json!({
        "iss": s.provider().issuer(), "aud": "portcullis", "iat": now, "exp": now + 120,
        "jti": "sid-only", "sid": sid,
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    }));
    assert_eq!(post_logout(&s, &token), "200");
    until_signed_out(&s, &laptop).await;
    let renewal = laptop.get_once(&s.url("/auth/refresh?rd=%2Fapi%2Fx"));
    assert!(
        renewal.location.contains("/auth/sign-in"),
        "the family is ended, not just the access token: {renewal:?}"
    );
    assert_eq!(s.who(&phone, "/api/still"), Ok("corp:alice".to_string()));
    // A sid the gateway never saw, with no sub, ends nothing and is not an error.
    let unknown = s.provider().sign(&json!({
        "iss": s.provider().issuer(), "aud": "portcullis", "iat": now, "exp": now + 120,
        "jti": "unknown-sid", "sid": "never-seen",
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    }));
    assert_eq!(post_logout(&s, &unknown), "200");
    assert_eq!(s.who(&phone, "/api/still"), Ok("corp:alice".to_string()));
}

#[tokio::test]
async fn a_logout_token_signed_by_another_key_or_naming_nobody_is_refused() {
    let s = with_sids().await;
    let browser = CurlBrowser::new();
    s.sign_in_at("corp", &browser, "alice");
    let now = now_secs();
    let claims = |jti: &str| {
        json!({
            "iss": s.provider().issuer(), "aud": "portcullis", "iat": now, "exp": now + 120,
            "jti": jti, "sub": "alice",
            "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
        })
    };
    let forged = s.provider().sign_with_other_key(&claims("forged"));
    assert_eq!(post_logout(&s, &forged), "400", "another key, same kid");
    let mut nobody = claims("nobody");
    nobody.as_object_mut().expect("object").remove("sub");
    assert_eq!(
        post_logout(&s, &s.provider().sign(&nobody)),
        "400",
        "no sub, no sid"
    );
    let mut bad_sid = claims("bad-sid");
    bad_sid["sid"] = json!(42);
    assert_eq!(
        post_logout(&s, &s.provider().sign(&bad_sid)),
        "400",
        "a sid not a string"
    );
    let mut expired = claims("expired");
    expired["iat"] = json!(now - 7200);
    expired["exp"] = json!(now - 3600);
    assert_eq!(
        post_logout(&s, &s.provider().sign(&expired)),
        "400",
        "expired"
    );
    assert_eq!(s.who(&browser, "/api/still"), Ok("corp:alice".to_string()));
    let refused =
        s.gw.audit_events_at_least("backchannel_logout_refused", 4)
            .await;
    assert!(
        refused.iter().any(|l| l.contains("bad signature")),
        "{refused:?}"
    );
    assert!(
        refused.iter().any(|l| l.contains("neither sub nor sid")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_providers_sign_out_sends_the_browser_back_to_the_post_logout_redirect_uri() {
    let spec = ProviderSpec::new("corp", "Corporate login")
        .toml("post_logout_redirect_uri = \"/auth/sign-out\"");
    let s = OidcSetup::start(vec![spec], "").await;
    let browser = CurlBrowser::new();
    s.sign_in_at("corp", &browser, "alice");
    let confirm = browser.get_once(&s.url("/auth/sign-out"));
    let csrf = confirm
        .attr("name=\"csrf\"", "value")
        .expect("the sign-out form");
    let out = browser.post_form(
        &s.url("/auth/sign-out"),
        &[("csrf", &csrf), ("rd", "")],
        false,
    );
    assert_eq!(out.status, 303, "{out:?}");
    let back = s.url("/auth/sign-out");
    let encoded = form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>();
    assert!(
        out.location
            .contains(&format!("post_logout_redirect_uri={encoded}")),
        "{out:?}"
    );
    // The provider's confirm form; once confirmed it sends the browser back here.
    let at_provider = browser.get(&out.location);
    let xsrf = at_provider
        .attr("name=\"xsrf\"", "value")
        .expect("the provider's logout form");
    let action = at_provider.attr("<form", "action").expect("form action");
    let issuer = s.provider().issuer();
    let url = match action.starts_with('/') {
        true => format!("{issuer}{action}"),
        false => action,
    };
    let mut next = browser.post_form(&url, &[("xsrf", &xsrf), ("logout", "yes")], false);
    while (300..400).contains(&next.status) && next.location.starts_with(&issuer) {
        next = browser.get_once(&next.location);
    }
    assert!(
        next.location.starts_with(&back),
        "back to the gateway: {next:?}\n{}",
        s.provider().log()
    );
    let landed = browser.get_once(&next.location);
    assert_eq!(landed.status, 200, "{landed:?}");
    assert!(landed.body.contains("not signed in"), "{}", landed.body);
}

#[tokio::test]
async fn with_redis_a_sid_logout_at_one_instance_ends_the_session_on_the_other() {
    let redis = Redis::start().await;
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\n",
        redis.url()
    );
    let spec = ProviderSpec::new("corp", "Corporate login")
        .client(json!({ "backchannel_logout_session_required": true }));
    let s = OidcSetup::start(vec![spec], &store).await;
    let other = s.another_instance().await;
    let laptop = CurlBrowser::new();
    let phone = CurlBrowser::new();
    s.sign_in_at("corp", &laptop, "alice");
    s.sign_in_at("corp", &phone, "alice");
    let sid = access_claims(&laptop)["idp_sid"]
        .as_str()
        .expect("the provider's sid")
        .to_string();
    let now = now_secs();
    let token = s.provider().sign(&json!({
        "iss": s.provider().issuer(), "aud": "portcullis", "iat": now, "exp": now + 120,
        "jti": "at-the-other", "sid": sid,
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    }));
    // The other instance finds the sid the first one noted, and the revocation reaches it.
    assert_eq!(post_logout_to(&other, &token), "200", "{}", other.log());
    until_signed_out(&s, &laptop).await;
    assert_eq!(s.who(&phone, "/api/still"), Ok("corp:alice".to_string()));
    // The jti is spent on every instance.
    assert_eq!(
        post_logout(&s, &token),
        "400",
        "a replay at the first instance"
    );
}
