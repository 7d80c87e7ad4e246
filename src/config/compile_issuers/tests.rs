use super::*;

#[test]
fn fetch_urls_are_https_or_loopback_http() {
    assert!(fetch_uri("https://idp.example.com/realms/a/protocol/openid-connect/certs").is_ok());
    for ok in [
        "http://127.0.0.1:8080/certs",
        "http://[::1]:9/x",
        "http://localhost/x",
    ] {
        assert!(fetch_uri(ok).is_ok(), "{ok}");
    }
    for bad in [
        "http://idp.example.com/certs",
        "http://10.0.0.1/certs",
        "ftp://127.0.0.1/x",
        "https://user:pw@idp.example.com/x",
        "/certs",
    ] {
        assert!(fetch_uri(bad).is_err(), "{bad}");
    }
}

const ROUTES: &str = "[upstreams.api]\nurl = \"http://127.0.0.1:9\"\n[[routes]]\npath = \"/api/**\"\nupstream = \"api\"\n";

/// Loads the minimal gateway.toml plus `issuers`; the error lines, or the issuers loaded.
fn load(issuers: &str) -> Result<usize, Vec<String>> {
    use crate::config::test_support::{write_material, GATEWAY};
    let dir = tempfile::tempdir().expect("temp dir");
    write_material(dir.path());
    let gateway = format!("{GATEWAY}\n{issuers}");
    std::fs::write(dir.path().join("gateway.toml"), gateway).expect("write gateway");
    std::fs::write(dir.path().join("routes.toml"), ROUTES).expect("write routes");
    let strip = |s: String| s.replace(&format!("{}/", dir.path().display()), "");
    crate::config::load(&crate::config::Source::File(
        dir.path().join("gateway.toml"),
    ))
    .map(|loaded| loaded.snapshot.issuers.0.len())
    .map_err(|errors| errors.0.iter().map(|e| strip(e.to_string())).collect())
}

const GOOD: &str = r#"
[[issuers]]
issuer = "https://idp.example.com/realms/a"
audience = "api"
discovery_url = "https://idp.example.com/realms/a/.well-known/openid-configuration"
roles_claim = "realm_access.roles"
algorithms = ["RS256", "ES256"]
"#;

#[test]
fn issuers_are_off_by_default_and_load_when_configured() {
    assert_eq!(load(""), Ok(0));
    assert_eq!(load(GOOD), Ok(1));
}

#[test]
fn every_issuer_mistake_is_reported_at_its_line() {
    let text = r#"
[[issuers]]
issuer = "portcullis"
audience = ""
jwks_url = "https://idp.example.com/certs"
discovery_url = "https://idp.example.com/.well-known/openid-configuration"

[[issuers]]
issuer = "https://b.example.com"
audience = "api"
jwks_url = "https://b.example.com/certs"
algorithms = []
refresh_min = "2h"
refresh_max = "1h"

[[issuers]]
issuer = "https://b.example.com"
audience = "api"
jwks_url = "https://b.example.com/certs"
"#;
    let errors = load(text).unwrap_err();
    let expected = [
        "gateway.toml:19:10: issuer \"portcullis\" is the gateway's own [tokens] issuer",
        "gateway.toml:20:12: audience must not be empty",
        "gateway.toml:18:1: issuer \"portcullis\": expected exactly one of jwks_url, discovery_url",
        "gateway.toml:28:14: algorithms must name at least one algorithm",
        "gateway.toml:24:1: issuer \"https://b.example.com\": expected 1s <= refresh_min <= refresh_max",
        "gateway.toml:33:10: issuer \"https://b.example.com\" is configured twice",
    ];
    assert_eq!(errors, expected);
}

#[test]
fn unknown_issuer_keys_are_errors() {
    let errors = load(&GOOD.replace("audience", "audiences")).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("unknown field `audiences`"),
        "{errors:?}"
    );
}
