//! `client_auth = "private_key_jwt"`: the gateway proves it is the client with a JWT signed
//! by a key made with `portcullis keygen` (RFC 7523), which the real provider checks
//! against the public key it was given for the client.

use serde_json::json;

use crate::common::*;

/// `portcullis keygen --alg ALG --kid KID --out DIR`: the private and public PEM paths.
fn keygen(dir: &TestDir, alg: &str, kid: &str) -> (String, String) {
    let out = dir.path().to_str().expect("utf-8 temp path");
    let made = run_cli(&["keygen", "--alg", alg, "--kid", kid, "--out", out]);
    assert_eq!(made.code, Some(0), "keygen: {made:?}");
    let path = |name: String| dir.join(&name).to_str().expect("utf-8").to_string();
    (path(format!("{kid}.pem")), path(format!("{kid}.pub.pem")))
}

/// A gateway signing its client assertions with `signing`, at a provider that knows the
/// client by the public key `known` under kid "gw-client".
async fn key_setup(alg: &str, signing: &str, known: &str) -> OidcSetup {
    let spec = ProviderSpec::new("corp", "Corporate login")
        .toml(&format!(
            "client_auth = \"private_key_jwt\"\nclient_key_file = \"{signing}\"\nclient_key_alg = \"{alg}\"\nclient_key_id = \"gw-client\"",
        ))
        .client(json!({
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": alg,
            "jwks_pem_file": known,
            "jwks_pem_kid": "gw-client",
        }))
        .without_secret();
    OidcSetup::start(vec![spec], "").await
}

#[tokio::test]
async fn the_gateway_signs_in_at_the_provider_with_a_private_key_jwt() {
    for alg in ["ES256", "RS256"] {
        let keys = TestDir::new();
        let (private, public) = keygen(&keys, alg, "gw-client");
        let s = key_setup(alg, &private, &public).await;
        let browser = CurlBrowser::new();
        s.sign_in_at("corp", &browser, "alice");
        assert_eq!(s.who(&browser, "/api/me"), Ok("corp:alice".to_string()));
    }
}

#[tokio::test]
async fn a_client_assertion_signed_with_another_key_is_refused_by_the_provider() {
    let keys = TestDir::new();
    let (_, known) = keygen(&keys, "ES256", "gw-client");
    let (other, _) = keygen(&keys, "ES256", "someone-else");
    let s = key_setup("ES256", &other, &known).await;
    let browser = CurlBrowser::new();
    let callback = s.to_callback(&browser, "/", "alice");
    let page = browser.get_once(&callback);
    assert_eq!(page.status, 403, "{page:?}");
    assert!(!browser.jar().contains("portcullis-access"), "no session");
    let refused =
        s.gw.audit_events_at_least("provider_sign_in_refused", 1)
            .await;
    assert!(
        refused.iter().any(|l| l.contains("invalid_client")),
        "{refused:?}"
    );
}
