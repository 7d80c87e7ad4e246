use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;
use crate::issuers::fetch::Live;
use crate::issuers::jwks::{self, AlgSet};
use crate::issuers::JwksSource;
use crate::token::keys::{KeyRing, KeySpec};
use crate::token::test_support::{kid, material, private_pem};

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://idp.test/realms/main";

/// An issuer holding the public keys of an RS256 and an ES256 test key.
fn issuer(roles_claim: &str) -> Issuer {
    let specs = [Alg::RS256, Alg::ES256]
        .into_iter()
        .map(|alg| KeySpec {
            kid: kid(alg),
            alg,
            material: material(alg),
            verify_only: false,
        })
        .collect();
    let ring = KeyRing::new(specs, "rs256").unwrap();
    let body = crate::token::jwks::jwks(&ring).to_string();
    let allowed = AlgSet::of(&[Alg::RS256, Alg::ES256]);
    let keys = jwks::parse(body.as_bytes(), allowed).unwrap();
    Issuer {
        issuer: ISS.into(),
        audience: "orders".into(),
        algorithms: allowed,
        roles_claim: roles_claim.split('.').map(str::to_owned).collect(),
        source: JwksSource::Jwks("https://idp.test/certs".parse().unwrap()),
        refresh_min: Duration::from_secs(60),
        refresh_max: Duration::from_secs(3600),
        unknown_kid_refetch: Duration::from_secs(30),
        fetch_timeout: Duration::from_secs(5),
        live: Live::new(Arc::new(keys)),
    }
}

fn sign(claims: &Value) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rs256".into());
    let key = EncodingKey::from_rsa_pem(private_pem(Alg::RS256).as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn claims() -> Value {
    json!({
        "iss": ISS, "aud": ["account", "orders"], "sub": "8d1c", "exp": NOW + 300,
        "iat": NOW, "typ": "Bearer", "jti": "abc",
        "realm_access": { "roles": ["admin", "a,b", "", "ops"] },
        "groups": "staff", "tenant": "acme",
    })
}

fn check(issuer: &Issuer, claims: &Value) -> Result<Claims, TokenError> {
    verify_external(issuer, &sign(claims), 30, NOW)
}

#[test]
fn a_providers_amr_and_auth_time_are_read_and_kept_for_claim_rules() {
    let mut with_methods = claims();
    with_methods["amr"] = json!(["pwd", 7, "otp"]);
    with_methods["auth_time"] = json!(NOW - 60);
    let got = check(&issuer("groups"), &with_methods).unwrap();
    assert_eq!(got.amr, ["pwd", "otp"], "non-string methods dropped");
    assert_eq!(got.auth_time, Some(NOW - 60));
    assert_eq!(got.extra["amr"], json!(["pwd", 7, "otp"]));
    let mut malformed = claims();
    malformed["auth_time"] = json!("yesterday");
    assert_eq!(
        check(&issuer("groups"), &malformed).unwrap_err(),
        TokenError::Malformed
    );
    let plain = check(&issuer("groups"), &claims()).unwrap();
    assert!(plain.amr.is_empty() && plain.auth_time.is_none() && plain.idp.is_none());
}

#[test]
fn claims_are_mapped_with_roles_from_the_configured_path() {
    let got = check(&issuer("realm_access.roles"), &claims()).unwrap();
    assert_eq!(got.sub, "8d1c");
    assert_eq!(got.roles, ["admin", "ops"], "empty and comma roles dropped");
    assert_eq!(got.typ, TokenType::Access);
    assert_eq!((got.iat, got.nbf, got.jti.as_str()), (NOW, 0, "abc"));
    // Other claims stay for policies; reserved names (the provider's "typ") do not.
    assert_eq!(got.extra["tenant"], "acme");
    assert!(got.extra.contains_key("realm_access"));
    assert!(!got.extra.contains_key("typ"));
    let groups = check(&issuer("groups"), &claims()).unwrap();
    assert_eq!(groups.roles, ["staff"]);
    let absent = check(&issuer("resource_access.web.roles"), &claims()).unwrap();
    assert!(absent.roles.is_empty());
}

#[test]
fn required_claims_and_their_types() {
    let issuer = issuer("roles");
    for (name, reason) in [
        ("exp", TokenError::MissingClaim(Claim::Exp)),
        ("aud", TokenError::MissingClaim(Claim::Aud)),
        ("sub", TokenError::MissingClaim(Claim::Sub)),
    ] {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(name);
        assert_eq!(check(&issuer, &c).unwrap_err(), reason, "{name}");
    }
    let mut no_jti = claims();
    no_jti.as_object_mut().unwrap().remove("jti");
    assert_eq!(check(&issuer, &no_jti).unwrap().jti, "");
    for (name, value) in [
        ("exp", json!("tomorrow")),
        ("exp", json!(-5)),
        ("sub", json!(42)),
        ("sub", json!("")),
        ("sub", json!("line\nbreak")),
        ("aud", json!(7)),
    ] {
        let mut c = claims();
        c[name] = value.clone();
        assert_eq!(
            check(&issuer, &c).unwrap_err(),
            TokenError::Malformed,
            "{name}={value}"
        );
    }
    let mut float = claims();
    float["exp"] = json!((NOW + 10) as f64 + 0.5);
    assert_eq!(check(&issuer, &float).unwrap().exp, NOW + 10);
}

#[test]
fn unknown_kid_and_disallowed_alg() {
    let issuer = issuer("roles");
    let key = EncodingKey::from_rsa_pem(private_pem(Alg::RS256).as_bytes()).unwrap();
    let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("nope".into());
    let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
    assert_eq!(
        verify_external(&issuer, &token, 30, NOW).unwrap_err(),
        TokenError::UnknownKid
    );
    header.kid = None;
    let token = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
    assert_eq!(
        verify_external(&issuer, &token, 30, NOW).unwrap_err(),
        TokenError::MissingKid
    );
    let mut ps = Header::new(jsonwebtoken::Algorithm::PS256);
    ps.kid = Some("rs256".into());
    let token = jsonwebtoken::encode(&ps, &claims(), &key).unwrap();
    assert_eq!(
        verify_external(&issuer, &token, 30, NOW).unwrap_err(),
        TokenError::AlgMismatch
    );
}

#[test]
fn the_issuer_is_peeked_strictly() {
    let enc = |v: &str| URL_SAFE_NO_PAD.encode(v);
    let token = |payload: &str| format!("{}.{}.sig", enc("{}"), enc(payload));
    assert_eq!(peek_issuer(&token(r#"{"iss":"a","x":1}"#)), Ok("a".into()));
    assert_eq!(peek_issuer(&token(r#"{"iss":"a\u0062"}"#)), Ok("ab".into()));
    // Two iss members: refused, so the chosen keys cannot belong to another iss than the
    // one read after verification.
    assert_eq!(
        peek_issuer(&token(r#"{"iss":"a","iss":"b"}"#)),
        Err(TokenError::Malformed)
    );
    assert_eq!(
        peek_issuer(&token(r#"{"sub":"a"}"#)),
        Err(TokenError::MissingClaim(Claim::Iss))
    );
    assert_eq!(
        peek_issuer(&token(r#"{"iss":7}"#)),
        Err(TokenError::Malformed)
    );
    assert_eq!(peek_issuer("a.b"), Err(TokenError::Malformed));
    assert_eq!(peek_issuer("a.b.c.d"), Err(TokenError::Malformed));
}

#[test]
fn iat_later_than_the_leeway_allows_is_issued_in_the_future() {
    let mut future = claims();
    future["iat"] = json!(NOW + 31);
    let err = check(&issuer("groups"), &future).unwrap_err();
    assert_eq!(err, TokenError::IssuedInFuture);
    future["iat"] = json!(NOW + 30);
    assert!(check(&issuer("groups"), &future).is_ok(), "within leeway");
}

#[test]
fn a_repeated_claim_is_malformed_not_last_one_wins() {
    let text = claims().to_string();
    let body = text.replacen(
        r#""tenant":"acme""#,
        r#""tenant":"evil","tenant":"acme""#,
        1,
    );
    assert_ne!(body, text);
    let header = r#"{"alg":"RS256","kid":"rs256"}"#;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(body)
    );
    let key = EncodingKey::from_rsa_pem(private_pem(Alg::RS256).as_bytes()).unwrap();
    let alg = jsonwebtoken::Algorithm::RS256;
    let token = format!(
        "{input}.{}",
        jsonwebtoken::crypto::sign(input.as_bytes(), &key, alg).unwrap()
    );
    let err = verify_external(&issuer("groups"), &token, 30, NOW).unwrap_err();
    assert_eq!(err, TokenError::Malformed);
}
