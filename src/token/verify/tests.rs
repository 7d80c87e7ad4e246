use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{HeaderMap, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::*;
use crate::token::keys::{KeyMaterial, KeyRing, KeySpec};
use crate::token::mint::{mint, Grant};
use crate::token::test_support::{expect, grant, kid, public_pem, ring_for, ISSUER};
use crate::token::{Alg, ALL_ALGS};

const NOW: u64 = 1_700_000_000;

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn claims_json(typ: &str) -> Value {
    json!({
        "iss": ISSUER, "aud": "api", "sub": "alice", "iat": NOW, "nbf": NOW,
        "exp": NOW + 900, "jti": "j1", "roles": ["dev"], "typ": typ,
    })
}

/// Signs arbitrary claims with the ring's signer, header kid and alg set as mint does.
fn sign_raw(ring: &KeyRing, claims: &Value) -> String {
    let signer = ring.signer();
    let mut header = Header::new(signer.alg.jwt());
    header.kid = Some(signer.kid.clone());
    jsonwebtoken::encode(&header, claims, &signer.key).unwrap()
}

fn access(ring: &KeyRing, g: Grant<'_>, now: u64) -> String {
    mint(ring, ISSUER, "api", g, now).unwrap().0
}

fn check(ring: &KeyRing, token: &str) -> Result<Claims, TokenError> {
    verify(ring, &expect(), token, TokenType::Access, NOW)
}

#[test]
fn minted_tokens_verify_for_every_alg() {
    for alg in ALL_ALGS {
        let ring = ring_for(alg);
        let mut g = grant(TokenType::Access);
        g.extra.insert("team".into(), json!("core"));
        let (token, minted) = mint(&ring, ISSUER, "api", g, NOW).unwrap();
        let claims = check(&ring, &token).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(
            (claims.sub.as_str(), claims.jti),
            ("alice", minted.jti),
            "{alg}"
        );
        assert_eq!(claims.roles, ["dev"]);
        assert_eq!(claims.extra.get("team"), Some(&json!("core")));
    }
}

#[test]
fn alg_none_token_is_rejected() {
    let ring = ring_for(Alg::HS256);
    let payload = b64(&claims_json("access"));
    for alg in ["none", "None", "NONE"] {
        let header = b64(&json!({"alg": alg, "kid": "hs256", "typ": "JWT"}));
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            assert_eq!(
                check(&ring, &token).unwrap_err(),
                TokenError::Malformed,
                "{alg}"
            );
        }
    }
}

#[test]
fn hmac_token_keyed_with_a_public_pem_is_alg_mismatch() {
    let ring = ring_for(Alg::HS256);
    for alg in [Alg::EdDSA, Alg::RS256, Alg::ES256] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid(alg));
        let secret = EncodingKey::from_secret(public_pem(alg).as_bytes());
        let token = jsonwebtoken::encode(&header, &claims_json("access"), &secret).unwrap();
        assert_eq!(
            check(&ring, &token).unwrap_err(),
            TokenError::AlgMismatch,
            "{alg}"
        );
    }
}

#[test]
fn other_alg_in_same_family_is_alg_mismatch() {
    let ring = ring_for(Alg::HS256);
    let mut header = Header::new(Algorithm::HS512);
    header.kid = Some("hs256".into());
    let secret = EncodingKey::from_secret(&[b'x'; 64]);
    let token = jsonwebtoken::encode(&header, &claims_json("access"), &secret).unwrap();
    assert_eq!(check(&ring, &token).unwrap_err(), TokenError::AlgMismatch);
}

#[test]
fn unknown_kid_is_rejected() {
    let other = KeySpec {
        kid: "stranger".into(),
        alg: Alg::HS256,
        material: KeyMaterial::Secret(vec![9; 32]),
        verify_only: false,
    };
    let stranger = KeyRing::new(vec![other], "stranger").unwrap();
    let token = access(&stranger, grant(TokenType::Access), NOW);
    assert_eq!(
        check(&ring_for(Alg::HS256), &token).unwrap_err(),
        TokenError::UnknownKid
    );
}

#[test]
fn token_without_kid_is_rejected() {
    let ring = ring_for(Alg::HS256);
    let header = Header::new(Algorithm::HS256);
    let token = jsonwebtoken::encode(&header, &claims_json("access"), &ring.signer().key).unwrap();
    assert_eq!(check(&ring, &token).unwrap_err(), TokenError::MissingKid);
}

#[test]
fn tampered_payload_fails_the_signature() {
    for alg in [Alg::HS256, Alg::EdDSA, Alg::ES384, Alg::PS256] {
        let ring = ring_for(alg);
        let token = access(&ring, grant(TokenType::Access), NOW);
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["roles"] = json!(["admin"]);
        let forged = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
        assert_eq!(
            check(&ring, &forged).unwrap_err(),
            TokenError::BadSignature,
            "{alg}"
        );
    }
}

#[test]
fn signature_from_another_key_with_same_kid_is_bad() {
    let ring = ring_for(Alg::HS256);
    let spec = KeySpec {
        kid: "hs256".into(),
        alg: Alg::HS256,
        material: KeyMaterial::Secret(vec![1; 32]),
        verify_only: false,
    };
    let impostor = KeyRing::new(vec![spec], "hs256").unwrap();
    let token = access(&impostor, grant(TokenType::Access), NOW);
    assert_eq!(check(&ring, &token).unwrap_err(), TokenError::BadSignature);
}

#[test]
fn expiry_honours_leeway() {
    let ring = ring_for(Alg::EdDSA);
    let token = access(&ring, grant(TokenType::Access), NOW);
    let at = |now| verify(&ring, &expect(), &token, TokenType::Access, now);
    assert!(at(NOW + 900 + 29).is_ok(), "inside the 30 s leeway");
    assert_eq!(at(NOW + 900 + 30).unwrap_err(), TokenError::Expired);
    assert_eq!(at(NOW + 100_000).unwrap_err(), TokenError::Expired);
}

#[test]
fn token_from_the_future_is_not_yet_valid() {
    let ring = ring_for(Alg::EdDSA);
    let token = access(&ring, grant(TokenType::Access), NOW + 31);
    assert_eq!(check(&ring, &token).unwrap_err(), TokenError::NotYetValid);
    let skewed = access(&ring, grant(TokenType::Access), NOW + 30);
    assert!(check(&ring, &skewed).is_ok(), "nbf within leeway");
}

#[test]
fn wrong_issuer_is_rejected() {
    let ring = ring_for(Alg::HS256);
    let token = mint(
        &ring,
        "https://evil.test",
        "api",
        grant(TokenType::Access),
        NOW,
    )
    .unwrap()
    .0;
    assert_eq!(check(&ring, &token).unwrap_err(), TokenError::WrongIssuer);
}

#[test]
fn wrong_audience_is_rejected() {
    let ring = ring_for(Alg::HS256);
    let token = mint(&ring, ISSUER, "billing", grant(TokenType::Access), NOW)
        .unwrap()
        .0;
    assert_eq!(check(&ring, &token).unwrap_err(), TokenError::WrongAudience);
    let mut claims = claims_json("access");
    claims["aud"] = json!([]);
    assert_eq!(
        check(&ring, &sign_raw(&ring, &claims)).unwrap_err(),
        TokenError::WrongAudience
    );
}

#[test]
fn audience_array_containing_ours_is_accepted() {
    let ring = ring_for(Alg::ES256);
    let mut claims = claims_json("access");
    claims["aud"] = json!(["web", "api"]);
    let verified = check(&ring, &sign_raw(&ring, &claims)).unwrap();
    assert!(verified.aud.contains("web"));
}

#[test]
fn refresh_token_is_not_an_access_token() {
    let ring = ring_for(Alg::HS256);
    let refresh = access(&ring, grant(TokenType::Refresh), NOW);
    assert_eq!(check(&ring, &refresh).unwrap_err(), TokenError::WrongType);
    assert!(verify(&ring, &expect(), &refresh, TokenType::Refresh, NOW).is_ok());
}

#[test]
fn access_token_is_not_a_refresh_token() {
    let ring = ring_for(Alg::HS256);
    let token = access(&ring, grant(TokenType::Access), NOW);
    let err = verify(&ring, &expect(), &token, TokenType::Refresh, NOW).unwrap_err();
    assert_eq!(err, TokenError::WrongType);
}

#[test]
fn oversize_token_is_refused_before_parsing() {
    let ring = ring_for(Alg::HS256);
    let mut g = grant(TokenType::Access);
    g.extra
        .insert("pad".into(), json!("p".repeat(MAX_TOKEN_LEN)));
    let token = access(&ring, g, NOW);
    assert_eq!(check(&ring, &token).unwrap_err(), TokenError::Malformed);
}

#[test]
fn missing_required_claims_are_rejected() {
    let ring = ring_for(Alg::HS256);
    for name in ["iss", "aud", "sub", "exp", "nbf", "iat", "jti", "typ"] {
        let mut claims = claims_json("access");
        claims.as_object_mut().unwrap().remove(name);
        let err = check(&ring, &sign_raw(&ring, &claims)).unwrap_err();
        let claim = Claim::from_name(name).expect("a required claim");
        assert_eq!(err, TokenError::MissingClaim(claim), "{name}");
        assert_eq!(err.reason(), format!("missing claim {name}"));
    }
}

#[test]
fn a_duplicated_claim_is_malformed_not_last_one_wins() {
    // Parsers disagree on duplicates (first wins, last wins); an ambiguous token is refused.
    struct Duplicated;
    impl serde::Serialize for Duplicated {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(None)?;
            for (name, value) in claims_json("access").as_object().unwrap() {
                map.serialize_entry(name, value)?;
            }
            map.serialize_entry("sub", "admin")?;
            map.end()
        }
    }
    let ring = ring_for(Alg::HS256);
    let signer = ring.signer();
    let mut header = Header::new(signer.alg.jwt());
    header.kid = Some(signer.kid.clone());
    let token = jsonwebtoken::encode(&header, &Duplicated, &signer.key).unwrap();
    assert_eq!(check(&ring, &token).unwrap_err(), TokenError::Malformed);
}

#[test]
fn claims_of_the_wrong_type_are_malformed() {
    let ring = ring_for(Alg::HS256);
    for (name, value) in [
        ("exp", json!("soon")),
        ("typ", json!("id")),
        ("aud", json!(7)),
    ] {
        let mut claims = claims_json("access");
        claims[name] = value;
        let err = check(&ring, &sign_raw(&ring, &claims)).unwrap_err();
        assert_eq!(err, TokenError::Malformed, "{name}");
    }
}

#[test]
fn garbage_tokens_are_malformed() {
    let ring = ring_for(Alg::HS256);
    let valid = access(&ring, grant(TokenType::Access), NOW);
    let (head, _) = valid.split_once('.').unwrap();
    for token in [
        "",
        "abc",
        "a.b.c",
        "a.b.c.d",
        &format!("{head}.e30.s!g"),
        &format!("{valid}.x"),
    ] {
        assert_eq!(
            check(&ring, token).unwrap_err(),
            TokenError::Malformed,
            "{token}"
        );
    }
}

#[test]
fn critical_header_extensions_are_refused() {
    let ring = ring_for(Alg::HS256);
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("hs256".into());
    header.crit = Some(vec!["exp".into()]);
    let token = jsonwebtoken::encode(&header, &claims_json("access"), &ring.signer().key).unwrap();
    assert_eq!(check(&ring, &token).unwrap_err(), TokenError::Malformed);
}

#[test]
fn error_messages_are_the_documented_reasons() {
    assert_eq!(TokenError::Expired.to_string(), "token expired");
    assert_eq!(TokenError::UnknownKid.reason(), "unknown key id");
    assert_eq!(
        TokenError::AlgMismatch.to_string(),
        "algorithm does not match the key"
    );
}

fn headers(values: &[&[u8]]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for v in values {
        map.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
    }
    map
}

#[test]
fn bearer_extracts_the_token_with_any_scheme_case() {
    for value in [
        "Bearer abc.DEF-_.123",
        "bearer abc.DEF-_.123",
        "BEARER abc.DEF-_.123",
    ] {
        let map = headers(&[value.as_bytes()]);
        assert_eq!(bearer(&map), Ok("abc.DEF-_.123"));
    }
}

#[test]
fn bearer_takes_one_or_more_spaces_before_the_token() {
    for value in ["Bearer  abc.DEF", "bearer     abc.DEF"] {
        let map = headers(&[value.as_bytes()]);
        assert_eq!(bearer(&map), Ok("abc.DEF"), "{value}");
    }
}

#[test]
fn bearer_without_authorization_is_missing() {
    assert_eq!(bearer(&HeaderMap::new()), Err(TokenError::Missing));
}

#[test]
fn bearer_rejects_other_schemes_and_bad_shapes() {
    for other_scheme in [&b"Basic YWxpY2U6cHc="[..], b"Bearerabc", b"Bearer\tabc"] {
        assert_eq!(bearer(&headers(&[other_scheme])), Err(TokenError::Missing));
    }
    let bad: [&[u8]; 8] = [
        b"Bearer",
        b"Bearer ",
        b"Bearer   ",
        b"Bearer \tabc",
        b"Bearer abc def",
        b"Bearer abc ",
        b"Bearer a+b/c=",
        b"Bearer \xc3\xa9t\xc3\xa9",
    ];
    for value in bad {
        let map = headers(&[value]);
        assert_eq!(
            bearer(&map),
            Err(TokenError::Malformed),
            "{}",
            String::from_utf8_lossy(value)
        );
    }
}

#[test]
fn two_authorization_headers_are_malformed() {
    let map = headers(&[b"Bearer abc", b"Bearer abc"]);
    assert_eq!(bearer(&map), Err(TokenError::Malformed));
}
