//! The compact-JWS parsing that replaced jsonwebtoken's decode: segments, base64, header
//! rules and the signature, each malformed shape refused with the reason the old path gave.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::*;
use crate::token::keys::KeyMaterial;
use crate::token::test_support::{expect, material, ring_for, ISSUER};
use crate::token::Alg;

const NOW: u64 = 1_700_000_000;

fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": "api", "sub": "alice", "iat": NOW, "nbf": NOW,
        "exp": NOW + 900, "jti": "j1", "roles": ["dev"], "typ": "access",
    })
}

fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// `header.payload.mac` with the segments as given (not re-encoded), MAC'd with the test
/// ring's HS256 secret: lets a test put anything in a segment and still sign it.
fn signed(header: &str, payload: &str) -> String {
    let KeyMaterial::Secret(secret) = material(Alg::HS256) else {
        unreachable!("HS256 test material is a secret")
    };
    let input = format!("{header}.{payload}");
    let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
    let tag = URL_SAFE_NO_PAD.encode(hmac::sign(&key, input.as_bytes()));
    format!("{input}.{tag}")
}

fn hs256_header() -> String {
    b64(r#"{"alg":"HS256","kid":"hs256","typ":"JWT"}"#)
}

fn check(token: &str) -> Result<Claims, TokenError> {
    verify(
        &ring_for(Alg::HS256),
        &expect(),
        token,
        TokenType::Access,
        NOW,
    )
}

#[test]
fn a_token_signed_here_verifies() {
    let token = signed(&hs256_header(), &b64(&claims().to_string()));
    assert_eq!(check(&token).unwrap().sub, "alice");
}

#[test]
fn anything_but_three_segments_is_malformed() {
    let token = signed(&hs256_header(), &b64(&claims().to_string()));
    let (input, tag) = token.rsplit_once('.').unwrap();
    for bad in [
        input.to_owned(),
        format!("{token}."),
        format!("{input}.{tag}.{tag}"),
        format!(".{token}"),
        "..".to_owned(),
    ] {
        assert_eq!(check(&bad).unwrap_err(), TokenError::Malformed, "{bad}");
    }
}

#[test]
fn base64_that_does_not_decode_is_malformed_in_every_segment() {
    let header = hs256_header();
    let payload = b64(&claims().to_string());
    // Signed over the bad text, so only the decoding can refuse it.
    for (h, p) in [
        (format!("{header}="), payload.clone()),
        (header.clone(), format!("{payload}=")),
        (header.clone(), format!("{payload}+")),
        (header.clone(), format!("{}/", &payload[1..])),
        (header.clone(), format!("{payload}A")), // a length no base64 has
    ] {
        assert_eq!(
            check(&signed(&h, &p)).unwrap_err(),
            TokenError::Malformed,
            "{h}.{p}"
        );
    }
    let good = signed(&header, &payload);
    let (input, tag) = good.rsplit_once('.').unwrap();
    for tag in [format!("{tag}="), format!("{}*", &tag[1..])] {
        let token = format!("{input}.{tag}");
        assert_eq!(check(&token).unwrap_err(), TokenError::Malformed, "{tag}");
    }
}

#[test]
fn a_signature_of_the_wrong_length_is_bad_not_a_crash() {
    let good = signed(&hs256_header(), &b64(&claims().to_string()));
    let (input, tag) = good.rsplit_once('.').unwrap();
    let raw = URL_SAFE_NO_PAD.decode(tag).unwrap();
    for len in [0, 1, 31, 33, 64, 1000] {
        let mut other = raw.clone();
        other.resize(len, 0);
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&other));
        assert_eq!(
            check(&token).unwrap_err(),
            TokenError::BadSignature,
            "{len}"
        );
    }
}

#[test]
fn the_header_is_held_to_jsonwebtoken_rules() {
    let payload = b64(&claims().to_string());
    for (header, want) in [
        (r#"{"alg":"none","kid":"hs256"}"#, TokenError::Malformed),
        (r#"{"alg":"HS257","kid":"hs256"}"#, TokenError::Malformed),
        (r#"{"alg":"hs256","kid":"hs256"}"#, TokenError::Malformed),
        (r#"{"kid":"hs256"}"#, TokenError::Malformed),
        (
            r#"{"alg":"HS256","kid":"hs256","x":1}"#,
            TokenError::Malformed,
        ),
        (
            r#"{"alg":"HS256","kid":"hs256","kid":"hs256"}"#,
            TokenError::Malformed,
        ),
        (
            r#"{"alg":"HS256","kid":"hs256","x":"a","x":"b"}"#,
            TokenError::Malformed,
        ),
        (
            r#"{"alg":"HS256","kid":"hs256","typ":"JWT","typ":"JWT"}"#,
            TokenError::Malformed,
        ),
        (
            r#"{"alg":"HS256","alg":"HS256","kid":"hs256"}"#,
            TokenError::Malformed,
        ),
        (
            r#"{"alg":"HS256","kid":"hs256","x5c":["a"],"x5c":["a"]}"#,
            TokenError::Malformed,
        ),
        (
            r#"{"alg":"HS256","kid":"hs256","x5t":"a","x5t":"a"}"#,
            TokenError::Malformed,
        ),
        (
            r#"{"alg":"HS256","kid":"hs256","crit":[]}"#,
            TokenError::Malformed,
        ),
        (r#"{"alg":"HS256","kid":"hs256"} x"#, TokenError::Malformed),
        (r#"["HS256"]"#, TokenError::Malformed),
        (r#"{"alg":"HS256"}"#, TokenError::MissingKid),
        (r#"{"alg":"HS256","kid":"nobody"}"#, TokenError::UnknownKid),
        (r#"{"alg":"HS384","kid":"hs256"}"#, TokenError::AlgMismatch),
        (r#"{"alg":"RS384","kid":"hs256"}"#, TokenError::AlgMismatch),
        (r#"{"alg":"HS256","kid":"es256"}"#, TokenError::AlgMismatch),
    ] {
        let token = signed(&b64(header), &payload);
        assert_eq!(check(&token).unwrap_err(), want, "{header}");
    }
    let extra = r#"{"alg":"HS256","kid":"hs256","typ":"JWT","x-note":"ok"}"#;
    assert!(check(&signed(&b64(extra), &payload)).is_ok());
}

#[test]
fn the_payload_is_read_only_after_the_signature_verified() {
    // A payload that is not even base64, under a wrong MAC: the MAC is what refuses it.
    let token = signed(&hs256_header(), "!!!");
    let (input, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
    assert_eq!(check(&forged).unwrap_err(), TokenError::BadSignature);
}

#[test]
fn repeated_members_are_malformed_at_any_depth() {
    let body = claims().to_string();
    let inner = body.trim_end_matches('}');
    for payload in [
        format!(r#"{inner},"sub":"admin"}}"#),
        format!(r#"{inner},"ctx":{{"a":1,"a":2}}}}"#),
        format!(r#"{inner},"ctx":[{{"a":{{"b":1,"b":1}}}}]}}"#),
    ] {
        let token = signed(&hs256_header(), &b64(&payload));
        assert_eq!(
            check(&token).unwrap_err(),
            TokenError::Malformed,
            "{payload}"
        );
    }
}

#[test]
fn every_known_claim_repeated_is_malformed_without_custom_claims() {
    // No custom claim, so no full duplicate scan of the payload: serde itself must refuse.
    for (name, value) in [
        ("iss", json!(ISSUER)),
        ("aud", json!("api")),
        ("sub", json!("admin")),
        ("iat", json!(NOW)),
        ("nbf", json!(NOW)),
        ("exp", json!(NOW + 9_000)),
        ("jti", json!("j2")),
        ("roles", json!(["admin"])),
        ("typ", json!("access")),
        ("fam", json!("f")),
        ("amr", json!(["pwd"])),
        ("auth_time", json!(NOW)),
        ("idp", json!("other")),
    ] {
        let mut once = claims();
        once[name] = value.clone();
        assert!(
            check(&signed(&hs256_header(), &b64(&once.to_string()))).is_ok(),
            "{name}"
        );
        let body = once.to_string();
        let twice = format!(r#"{},"{name}":{value}}}"#, body.trim_end_matches('}'));
        let token = signed(&hs256_header(), &b64(&twice));
        assert_eq!(check(&token).unwrap_err(), TokenError::Malformed, "{name}");
    }
}

#[test]
fn payloads_that_are_not_a_claims_object_are_malformed() {
    let trailing = format!("{} x", claims());
    for payload in ["", "null", "[]", "{", r#"{"iss":1}"#, &trailing] {
        let token = signed(&hs256_header(), &b64(payload));
        let err = check(&token).unwrap_err();
        assert!(matches!(err, TokenError::Malformed), "{payload}: {err:?}");
    }
    let token = signed(&hs256_header(), &b64("{}"));
    assert_eq!(
        check(&token).unwrap_err(),
        TokenError::MissingClaim(Claim::Iss)
    );
}

#[test]
fn huge_claims_verify_up_to_the_token_limit_and_not_past_it() {
    let header = hs256_header();
    let sized = |pad: usize| {
        let mut body = claims();
        body["pad"] = json!("p".repeat(pad));
        signed(&header, &b64(&body.to_string()))
    };
    // Find the largest pad that stays within MAX_TOKEN_LEN (base64 grows in steps of 4).
    let mut pad = MAX_TOKEN_LEN;
    while sized(pad).len() > MAX_TOKEN_LEN {
        pad -= 1;
    }
    let largest = sized(pad);
    assert!(largest.len() > MAX_TOKEN_LEN - 4);
    assert_eq!(
        check(&largest).unwrap().extra["pad"]
            .as_str()
            .unwrap()
            .len(),
        pad
    );
    let over = sized(pad + 3);
    assert!(over.len() > MAX_TOKEN_LEN);
    assert_eq!(check(&over).unwrap_err(), TokenError::Malformed);
}

#[test]
fn each_verification_reads_only_its_own_token() {
    // Every verification decodes into a buffer of its own; interleaved tokens of different
    // sizes never show each other's bytes.
    let long = {
        let mut body = claims();
        body["sub"] = json!("a-much-longer-subject-name-than-the-other");
        body["team"] = json!("x".repeat(500));
        signed(&hs256_header(), &b64(&body.to_string()))
    };
    let short = signed(&hs256_header(), &b64(&claims().to_string()));
    for _ in 0..3 {
        let a = check(&long).unwrap();
        let b = check(&short).unwrap();
        assert_eq!(a.sub, "a-much-longer-subject-name-than-the-other");
        assert_eq!((b.sub.as_str(), b.extra.get("team")), ("alice", None));
    }
}
