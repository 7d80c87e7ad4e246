//! The claim rules beyond times and audience: iat not in the future, no repeated member
//! anywhere, and a sub and roles the identity headers can carry as they are.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::*;
use crate::token::keys::KeyRing;
use crate::token::test_support::{expect, ring_for, ISSUER};
use crate::token::Alg;

const NOW: u64 = 1_700_000_000;

/// A valid payload as text, with `tail` spliced in before its closing brace.
fn payload(iat: u64, sub: &str, roles: &str, tail: &str) -> String {
    format!(
        r#"{{"iss":"{ISSUER}","aud":"api","sub":{sub:?},"iat":{iat},"nbf":{NOW},"exp":{},"jti":"j1","roles":{roles},"typ":"access"{tail}}}"#,
        NOW + 900
    )
}

/// Signs header and payload exactly as written (serde would not write a repeated member).
fn sign_text(ring: &KeyRing, header_tail: &str, payload: &str) -> String {
    let signer = ring.signer();
    let header = format!(r#"{{"alg":"HS256","kid":"{}"{header_tail}}}"#, signer.kid);
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &signer.key, signer.alg.jwt()).unwrap();
    format!("{input}.{sig}")
}

fn check(ring: &KeyRing, token: &str) -> Result<Claims, TokenError> {
    verify(ring, &expect(), token, TokenType::Access, NOW)
}

#[test]
fn iat_later_than_the_leeway_allows_is_issued_in_the_future() {
    let ring = ring_for(Alg::HS256);
    for iat in [NOW + 31, NOW + 3600, NOW + 365 * 86400] {
        let token = sign_text(&ring, "", &payload(iat, "alice", r#"["dev"]"#, ""));
        assert_eq!(
            check(&ring, &token).unwrap_err(),
            TokenError::IssuedInFuture
        );
    }
    let skewed = sign_text(&ring, "", &payload(NOW + 30, "alice", r#"["dev"]"#, ""));
    assert_eq!(
        check(&ring, &skewed).unwrap().iat,
        NOW + 30,
        "within leeway"
    );
}

#[test]
fn a_repeated_custom_claim_is_malformed_at_any_depth() {
    let ring = ring_for(Alg::HS256);
    for tail in [
        r#","tenant":"evil","tenant":"acme""#,
        r#","org":{"tenant":"evil","tenant":"acme"}"#,
        r#","groups":[{"id":1,"id":2}]"#,
        r#","tenant":"evil","\u0074enant":"acme""#,
    ] {
        let token = sign_text(&ring, "", &payload(NOW, "alice", r#"["dev"]"#, tail));
        assert_eq!(
            check(&ring, &token).unwrap_err(),
            TokenError::Malformed,
            "{tail}"
        );
    }
    let once = sign_text(
        &ring,
        "",
        &payload(NOW, "alice", "[]", r#","org":{"tenant":"acme"}"#),
    );
    assert_eq!(check(&ring, &once).unwrap().extra["org"]["tenant"], "acme");
}

#[test]
fn a_repeated_header_member_is_malformed() {
    let ring = ring_for(Alg::HS256);
    let body = payload(NOW, "alice", r#"["dev"]"#, "");
    let token = sign_text(&ring, r#","typ":"JWT","typ":"at+jwt""#, &body);
    assert_eq!(check(&ring, &token).unwrap_err(), TokenError::Malformed);
}

#[test]
fn a_sub_the_user_header_cannot_carry_is_malformed() {
    let ring = ring_for(Alg::HS256);
    for sub in ["al\nice", "", " admin", "admin\u{7f}"] {
        let token = sign_text(&ring, "", &payload(NOW, sub, r#"["dev"]"#, ""));
        assert_eq!(
            check(&ring, &token).unwrap_err(),
            TokenError::Malformed,
            "{sub:?}"
        );
    }
}

#[test]
fn roles_the_roles_header_cannot_carry_are_dropped() {
    let ring = ring_for(Alg::HS256);
    let roles = r#"["staff,admin","dev"," admin","a\tb",""]"#;
    let token = sign_text(&ring, "", &payload(NOW, "alice", roles, ""));
    assert_eq!(check(&ring, &token).unwrap().roles, vec!["dev".to_string()]);
}

/// Signs header and payload bytes as they are, UTF-8 or not.
fn sign_bytes(ring: &KeyRing, header: &[u8], payload: &[u8]) -> String {
    let signer = ring.signer();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &signer.key, signer.alg.jwt()).unwrap();
    format!("{input}.{sig}")
}

#[test]
fn text_that_is_not_utf8_is_refused_with_the_reason_it_had() {
    let ring = ring_for(Alg::HS256);
    let header = format!(r#"{{"alg":"HS256","kid":"{}"}}"#, ring.signer().kid);
    let valid = payload(NOW, "alice", r#"["dev"]"#, "");
    let sub_bytes = valid.replace("alice", "al\u{1}ce").into_bytes();
    let bad_sub: Vec<u8> = sub_bytes
        .iter()
        .map(|&b| if b == 1 { 0xff } else { b })
        .collect();
    let mut after_object = b"{}".to_vec();
    after_object.push(0xff);
    for (payload, want) in [
        (bad_sub, TokenError::Malformed),
        // serde_json reports the missing claim before it reaches the byte after the object.
        (after_object, TokenError::MissingClaim(Claim::Iss)),
    ] {
        let token = sign_bytes(&ring, header.as_bytes(), &payload);
        assert_eq!(check(&ring, &token).unwrap_err(), want);
    }
    let mut bad_typ = header.trim_end_matches('}').as_bytes().to_vec();
    bad_typ.extend_from_slice(b",\"typ\":\"\xff\"}");
    let token = sign_bytes(&ring, &bad_typ, valid.as_bytes());
    assert_eq!(check(&ring, &token).unwrap_err(), TokenError::Malformed);
    assert!(check(
        &ring,
        &sign_bytes(&ring, header.as_bytes(), valid.as_bytes())
    )
    .is_ok());
}
