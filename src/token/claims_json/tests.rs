//! The hand-written readers against the derived ones they replaced (kept here as the
//! reference): every payload gives the same claims, or is refused for the same reason.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::*;

/// The derived reader `Claims` had before: the reference.
#[derive(Debug, Deserialize)]
struct Derived {
    iss: String,
    aud: DerivedAudience,
    sub: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
    #[serde(default)]
    roles: Vec<String>,
    typ: TokenType,
    #[serde(default)]
    fam: Option<String>,
    #[serde(default)]
    amr: Vec<String>,
    #[serde(default)]
    auth_time: Option<u64>,
    #[serde(default)]
    idp: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DerivedAudience {
    One(String),
    Many(Vec<String>),
}

impl From<Derived> for Claims {
    fn from(d: Derived) -> Claims {
        let aud = match d.aud {
            DerivedAudience::One(one) => Audience::One(one),
            DerivedAudience::Many(many) => Audience::Many(many),
        };
        let Derived {
            iss,
            sub,
            iat,
            nbf,
            exp,
            jti,
            roles,
            typ,
            fam,
            amr,
            ..
        } = d;
        let (auth_time, idp, extra) = (d.auth_time, d.idp, d.extra);
        Claims {
            iss,
            aud,
            sub,
            iat,
            nbf,
            exp,
            jti,
            roles,
            typ,
            fam,
            amr,
            auth_time,
            idp,
            extra,
        }
    }
}

/// What the verifier makes of a reader's answer: the claims, or the missing claim's name,
/// or "other" for any other refusal.
fn outcome<T: Into<Claims>>(read: Result<T, serde_json::Error>) -> Result<String, String> {
    match read {
        Ok(claims) => Ok(format!("{:?}", claims.into())),
        Err(e) => {
            let text = e.to_string();
            let missing = text
                .strip_prefix("missing field `")
                .map(|rest| rest.split('`').next());
            Err(missing.flatten().unwrap_or("other").to_owned())
        }
    }
}

fn assert_same(payload: &str) {
    let ours = outcome(serde_json::from_str::<Claims>(payload));
    let reference = outcome(serde_json::from_str::<Derived>(payload));
    assert_eq!(ours, reference, "{payload}");
}

fn base() -> Value {
    json!({
        "iss": "https://gw.test", "aud": "api", "sub": "alice", "iat": 1, "nbf": 2,
        "exp": 3, "jti": "j1", "roles": ["dev"], "typ": "access",
    })
}

/// `base()` as text with `tail` spliced in before its closing brace.
fn with_tail(tail: &str) -> String {
    let body = base().to_string();
    format!("{}{tail}}}", body.trim_end_matches('}'))
}

#[test]
fn every_member_and_value_shape_reads_as_the_derived_reader_read_it() {
    // Every claim the reader knows by name, and one it does not.
    let names: Vec<&str> = crate::token::RESERVED_CLAIMS
        .into_iter()
        .chain(["team"])
        .collect();
    let values = [
        json!(null),
        json!("text"),
        json!("access"),
        json!("refresh"),
        json!(""),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(u64::MAX),
        json!(true),
        json!([]),
        json!(["a", "b"]),
        json!(["a", 1]),
        json!({}),
        json!({"a": 1}),
        json!({"access": null}),
    ];
    let mut checked = 0;
    for &name in &names {
        for value in &values {
            let mut set = base();
            set[name] = value.clone();
            assert_same(&set.to_string());
            let mut absent = base();
            absent.as_object_mut().unwrap().remove(name);
            assert_same(&absent.to_string());
            assert_same(&with_tail(&format!(r#","{name}":{value}"#)));
            checked += 3;
        }
    }
    assert_eq!(checked, names.len() * values.len() * 3);
}

#[test]
fn shapes_that_are_not_a_claims_object_are_refused_alike() {
    let escaped_names = with_tail(r#","\u0066am":"f","t\u0065am":"x""#);
    let escaped_repeat = with_tail(r#","\u0069ss":"https://gw.test""#);
    for payload in [
        "",
        "null",
        "[]",
        "{",
        "{}",
        r#"["https://gw.test","api","alice",1,2,3,"j1",["dev"],"access"]"#,
        r#"{"iss":1}"#,
        r#"{"sub":"alice"}"#,
        r#"{"iss":"x","aud":"api","sub":"alice"}"#,
        &escaped_names,
        &escaped_repeat,
        &with_tail(r#","team":"a","team":"b""#),
        &with_tail(r#","aud":["api"]"#),
        &format!("{} x", base()),
        &format!(" \n{}\t", base()),
    ] {
        assert_same(payload);
    }
}

#[test]
fn missing_claims_are_named_in_declaration_order() {
    let read = |payload: &str| outcome(serde_json::from_str::<Claims>(payload));
    assert_eq!(read("{}"), Err("iss".to_owned()));
    assert_eq!(read(r#"{"jti":"j","iss":"i"}"#), Err("aud".to_owned()));
    let mut no_typ = base();
    no_typ.as_object_mut().unwrap().remove("typ");
    assert_eq!(read(&no_typ.to_string()), Err("typ".to_owned()));
    // A value of the wrong type is reported before anything missing, as serde did.
    assert_eq!(read(r#"{"iat":"soon"}"#), Err("other".to_owned()));
}

#[test]
fn audience_reads_a_string_or_an_array_of_strings_only() {
    for (aud, want) in [
        (json!("api"), Some(Audience::One("api".into()))),
        (json!("a\"pi"), Some(Audience::One("a\"pi".into()))),
        (json!([]), Some(Audience::Many(vec![]))),
        (
            json!(["web", "api"]),
            Some(Audience::Many(vec!["web".into(), "api".into()])),
        ),
        (json!(null), None),
        (json!(1), None),
        (json!(["api", null]), None),
        (json!({"One": "api"}), None),
    ] {
        let ours = serde_json::from_value::<Audience>(aud.clone()).ok();
        assert_eq!(ours, want, "{aud}");
        let text = serde_json::from_str::<Audience>(&aud.to_string()).ok();
        assert_eq!(text, want, "{aud}");
    }
}
