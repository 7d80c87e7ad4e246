//! Two real OpenID providers at once: a button each, each provider's people kept apart, and
//! the mix-up attack (RFC 9207) between them refused, and a route that only one of them
//! opens (`idp_any`).

use crate::common::*;

async fn two_providers() -> OidcSetup {
    OidcSetup::start(
        vec![
            ProviderSpec::new("corp", "Corporate login"),
            ProviderSpec::new("partner", "Partner login"),
        ],
        "",
    )
    .await
}

#[tokio::test]
async fn the_sign_in_page_offers_each_provider_and_each_signs_its_own_people_in() {
    let s = two_providers().await;
    let page = CurlBrowser::new().get(&s.url("/auth/sign-in"));
    assert_eq!(page.status, 200, "{page:?}");
    for (href, title) in [
        ("/auth/sign-in/corp?rd=", "Corporate login"),
        ("/auth/sign-in/partner?rd=", "Partner login"),
    ] {
        assert!(page.body.contains(href), "{href}: {}", page.body);
        assert!(page.body.contains(title), "{title}: {}", page.body);
    }
    // The same subject at two providers is two people: the provider's id prefixes it.
    let at_corp = CurlBrowser::new();
    s.sign_in_at("corp", &at_corp, "alice");
    let at_partner = CurlBrowser::new();
    s.sign_in_at("partner", &at_partner, "alice");
    assert_eq!(s.who(&at_corp, "/api/me"), Ok("corp:alice".to_string()));
    assert_eq!(
        s.who(&at_partner, "/api/me"),
        Ok("partner:alice".to_string())
    );
    let logins = s.gw.audit_events_at_least("login_ok", 2).await;
    assert!(
        logins.iter().any(|l| l.contains("idp=\"partner\"")),
        "{logins:?}"
    );
}

/// The callback URL of `id` with this query.
fn callback(s: &OidcSetup, id: &str, pairs: &[(&str, &str)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    s.url(&format!("/auth/callback/{id}?{query}"))
}

/// The value of `name` in a URL's query.
fn param(url: &str, name: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{name} in {url}"))
}

#[tokio::test]
async fn an_answer_from_one_provider_at_the_others_callback_is_refused() {
    let s = two_providers().await;
    let browser = CurlBrowser::new();
    // The browser has a sign-in pending at each provider; corp answers.
    let from_corp = s.to_callback_at("corp", &browser, "/", "alice");
    let code = param(&from_corp, "code");
    let corp_iss = param(&from_corp, "iss");
    assert_eq!(corp_iss, s.provider_of("corp").issuer());

    // Mix-up: corp's answer, with the state of the sign-in pending at partner, delivered to
    // partner's callback. The state matches; corp's iss gives it away.
    let _ = browser.get(&s.url("/auth/sign-in/partner"));
    let state = pending_field(&browser, "partner", "s").expect("partner sign-in pending");
    let mixed = callback(
        &s,
        "partner",
        &[("code", &code), ("state", &state), ("iss", &corp_iss)],
    );
    let page = browser.get_once(&mixed);
    assert_eq!(page.status, 400, "{page:?}");
    assert!(page.body.contains("did not come from"), "{}", page.body);

    // With partner's iss forged in as well, partner's token endpoint refuses corp's code.
    let _ = browser.get(&s.url("/auth/sign-in/partner"));
    let state = pending_field(&browser, "partner", "s").expect("partner sign-in pending");
    let partner_iss = s.provider_of("partner").issuer();
    let forged = callback(
        &s,
        "partner",
        &[("code", &code), ("state", &state), ("iss", &partner_iss)],
    );
    let page = browser.get_once(&forged);
    assert_eq!(page.status, 403, "{page:?}");
    assert!(
        !browser.jar().contains("portcullis-access"),
        "no session from either"
    );
    let refused =
        s.gw.audit_events_at_least("provider_sign_in_refused", 2)
            .await;
    assert!(
        refused
            .iter()
            .any(|l| l.contains("partner") && l.contains("iss mismatch")),
        "{refused:?}"
    );
    assert!(
        refused
            .iter()
            .any(|l| l.contains("partner") && l.contains("invalid_grant")),
        "{refused:?}"
    );

    // The answer was good, only in the wrong place: at corp's callback it signs alice in.
    let landed = browser.get_once(&from_corp);
    assert_eq!(landed.status, 200, "{landed:?}\n{}", s.gw.log());
    assert_eq!(s.who(&browser, "/api/me"), Ok("corp:alice".to_string()));
}

#[tokio::test]
async fn a_pending_sign_in_at_one_provider_does_not_open_the_others_callback() {
    let s = two_providers().await;
    let browser = CurlBrowser::new();
    // Only corp's sign-in is pending; its whole answer replayed at partner's callback finds
    // no sign-in pending there (each provider's pending sign-in is a cookie of its own).
    let from_corp = s.to_callback_at("corp", &browser, "/", "alice");
    let query = from_corp
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default();
    let page = browser.get_once(&s.url(&format!("/auth/callback/partner?{query}")));
    assert_eq!(page.status, 400, "{page:?}");
    assert!(!browser.jar().contains("portcullis-access"), "no session");
    let refused =
        s.gw.audit_events_at_least("provider_sign_in_refused", 1)
            .await;
    assert!(
        refused.iter().any(|l| l.contains("no sign-in pending")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_route_with_idp_any_opens_only_to_sessions_from_those_providers() {
    let routes = "[[routes]]\npath = \"/corp-only/**\"\nupstream = \"api\"\nidp_any = [\"corp\"]\n";
    let s = OidcSetup::start_with_routes(
        vec![
            ProviderSpec::new("corp", "Corporate login"),
            ProviderSpec::new("partner", "Partner login"),
        ],
        "",
        routes,
    )
    .await;
    let at_corp = CurlBrowser::new();
    s.sign_in_at("corp", &at_corp, "alice");
    let at_partner = CurlBrowser::new();
    s.sign_in_at("partner", &at_partner, "alice");
    assert_eq!(
        s.who(&at_corp, "/corp-only/x"),
        Ok("corp:alice".to_string())
    );
    assert_eq!(
        s.who(&at_partner, "/api/me"),
        Ok("partner:alice".to_string())
    );
    let refused = at_partner.get_once(&s.url("/corp-only/x"));
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(
        refused.body.contains("insufficient_user_authentication"),
        "{refused:?}"
    );
}
