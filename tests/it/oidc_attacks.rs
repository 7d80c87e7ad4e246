//! A provider's token endpoint answering with a forged or wrong ID token: the real
//! `oidc-provider` rewrites its next ID token as each test asks (tests/oidc/provider.mjs,
//! `/test/tamper`), after a real sign-in with real `state`, PKCE and code. Each is refused
//! with a page that says so, no session, and an audit line with the reason. So is a code
//! injected into another browser's pending sign-in (PKCE).

use serde_json::{json, Value};

use crate::common::*;

/// Signs alice in at the provider, has the provider rewrite the ID token as `how` says,
/// and follows the callback: its page, after checking no session started.
async fn callback_with(s: &OidcSetup, how: Value) -> Page {
    let browser = CurlBrowser::new();
    let callback = s.to_callback(&browser, "/", "alice");
    s.provider().tamper(&how);
    let page = browser.get_once(&callback);
    if page.status != 200 {
        assert!(
            !browser.jar().contains("portcullis-access"),
            "no session: {}",
            browser.jar()
        );
    }
    page
}

/// `how` is refused: 403, the trouble page, and an audit line naming `reason`.
async fn assert_refused(how: Value, reason: &str) {
    let s = OidcSetup::corp().await;
    let page = callback_with(&s, how.clone()).await;
    assert_eq!(page.status, 403, "{how}: {page:?}\n{}", s.gw.log());
    assert!(
        page.body.contains("could not be accepted") && page.body.contains("/auth/sign-in"),
        "a clear page with a way back: {}",
        page.body
    );
    let refused =
        s.gw.audit_events_at_least("provider_sign_in_refused", 1)
            .await;
    assert!(
        refused.iter().any(|l| l.contains(reason)),
        "{how}: expected {reason:?} in {refused:?}"
    );
}

#[tokio::test]
async fn an_id_token_the_provider_signs_again_unchanged_is_accepted() {
    // The control for the tests below: the rewriting itself leaves a good token good.
    let s = OidcSetup::corp().await;
    let page = callback_with(&s, json!({ "sign": "rs256" })).await;
    assert_eq!(page.status, 200, "{page:?}\n{}", s.gw.log());
}

#[tokio::test]
async fn an_id_token_with_alg_none_is_refused() {
    assert_refused(json!({ "sign": "none" }), "token refused: malformed token").await;
}

#[tokio::test]
async fn an_id_token_signed_hs256_with_the_client_secret_is_refused() {
    // Algorithm confusion: the provider publishes RS256 keys; an HS256 MAC keyed with the
    // client secret (which the gateway knows) must not pass for its signature.
    let how = json!({ "sign": "hs256", "secret": OIDC_SECRET });
    assert_refused(how, "algorithm does not match the key").await;
}

#[tokio::test]
async fn an_id_token_signed_by_a_key_the_provider_never_published_is_refused() {
    assert_refused(json!({ "sign": "other" }), "bad signature").await;
}

#[tokio::test]
async fn an_id_token_for_another_client_is_refused() {
    let how = json!({ "set": { "aud": "someone-else" } });
    assert_refused(how, "wrong audience").await;
}

#[tokio::test]
async fn an_id_token_from_another_issuer_is_refused() {
    let how = json!({ "set": { "iss": "https://evil.example" } });
    assert_refused(how, "wrong issuer").await;
}

#[tokio::test]
async fn an_id_token_for_several_audiences_needs_azp_naming_this_client() {
    let several = json!(["portcullis", "someone-else"]);
    let how = json!({ "set": { "aud": several }, "unset": ["azp"] });
    assert_refused(how, "azp").await;
    let how = json!({ "set": { "aud": several, "azp": "someone-else" } });
    assert_refused(how, "azp").await;
    // azp naming this client, among several audiences, is fine.
    let s = OidcSetup::corp().await;
    let how = json!({ "set": { "aud": several, "azp": "portcullis" } });
    let page = callback_with(&s, how).await;
    assert_eq!(page.status, 200, "{page:?}\n{}", s.gw.log());
}

#[tokio::test]
async fn an_id_token_with_another_nonce_or_none_is_refused() {
    assert_refused(json!({ "set": { "nonce": "not-this-sign-ins" } }), "nonce").await;
    assert_refused(json!({ "unset": ["nonce"] }), "nonce").await;
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    let now = now_secs();
    let how = json!({ "set": { "iat": now - 7200, "exp": now - 3600 } });
    assert_refused(how, "token expired").await;
}

#[tokio::test]
async fn an_id_token_without_iat_is_refused() {
    assert_refused(json!({ "unset": ["iat"] }), "iat").await;
}

/// `url` with query parameter `name` set to `value`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').expect("a query");
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key == name => format!("{key}={value}"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

fn param<'a>(url: &'a str, name: &str) -> &'a str {
    url.split_once('?')
        .map_or("", |(_, q)| q)
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .expect("the parameter")
}

#[tokio::test]
async fn a_code_injected_into_another_browsers_pending_sign_in_fails_pkce() {
    // A code leaked from the victim's sign-in (a log, a Referer) carried to the attacker's
    // own callback with the attacker's own state: PKCE binds it to the victim's verifier,
    // which the attacker's pending sign-in does not hold, so the exchange is refused.
    let s = OidcSetup::corp().await;
    let victim = CurlBrowser::new();
    let stolen = s.to_callback(&victim, "/", "alice");
    let attacker = CurlBrowser::new();
    let own = s.to_callback(&attacker, "/", "alice");
    let injected = with_param(&own, "code", param(&stolen, "code"));
    assert_ne!(injected, own);
    let page = attacker.get_once(&injected);
    assert_ne!(page.status, 200, "{page:?}\n{}", s.gw.log());
    assert!(
        !attacker.jar().contains("portcullis-access"),
        "no session: {}",
        attacker.jar()
    );
    let refused =
        s.gw.audit_events_at_least("provider_sign_in_refused", 1)
            .await;
    assert_eq!(page.status, 403, "{page:?}");
    assert!(
        refused
            .iter()
            .any(|l| l.contains("token endpoint refused: invalid_grant")),
        "{refused:?}"
    );
    let provider_log = s.provider().log();
    assert!(
        provider_log.contains("PKCE verification failed"),
        "the provider's reason: {provider_log}"
    );
}
