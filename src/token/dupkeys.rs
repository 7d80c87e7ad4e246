//! Refusing JSON objects that name one member twice, at any depth.
//!
//! serde_json keeps the last copy of a repeated member when it fills a map, and a struct
//! refuses only the fields it declares; another reader of the same token (an upstream that
//! receives it, a library that keeps the first copy) may see a different value. RFC 7515
//! 5.2 and RFC 7519 7.2 let a verifier refuse such a JWS, so a token whose header or
//! payload repeats any member, however deeply nested, is malformed.
//!
//! Cost: one pass over the JSON with serde_json's borrowing parser. Member names are
//! borrowed from the input (copied only when they contain escapes) onto one stack shared by
//! every nesting level; each object's names are sorted in place when it closes, so an object
//! of n members costs O(n log n) and no allocation beyond the stack's growth. It runs only
//! when a token is first verified; the per-thread cache skips it for repeats.
//! `cargo bench --bench hot_path -- token/` measures it inside `verify`.

use std::borrow::Cow;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// True when `json` is well-formed JSON in which no object repeats a member name.
pub fn unique_members(json: &[u8]) -> bool {
    let mut names = Vec::new();
    let mut parser = serde_json::Deserializer::from_slice(json);
    Scan { names: &mut names }
        .deserialize(&mut parser)
        .and_then(|()| parser.end())
        .is_ok()
}

/// True when neither the header nor the payload of compact JWS `token` repeats a member;
/// false also when either is not base64url JSON. Both segments share one decode buffer.
pub fn token_members_unique(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(payload)) = (parts.next(), parts.next()) else {
        return false;
    };
    let mut buf = Vec::with_capacity(header.len().max(payload.len()));
    [header, payload].into_iter().all(|segment| {
        buf.clear();
        URL_SAFE_NO_PAD.decode_vec(segment, &mut buf).is_ok() && unique_members(&buf)
    })
}

/// One value to walk; `names` holds the member names of the objects it is nested in.
struct Scan<'s, 'de> {
    names: &'s mut Vec<Cow<'de, str>>,
}

impl<'de> DeserializeSeed<'de> for Scan<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let start = self.names.len();
        while let Some(Name(name)) = map.next_key()? {
            self.names.push(name);
            map.next_value_seed(Scan {
                names: &mut *self.names,
            })?;
        }
        let members = &mut self.names[start..];
        members.sort_unstable();
        let repeated = members.windows(2).any(|pair| pair[0] == pair[1]);
        self.names.truncate(start);
        match repeated {
            true => Err(de::Error::custom("duplicate member")),
            false => Ok(()),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Scan {
                names: &mut *self.names,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A member name: borrowed from the input unless it had to be unescaped.
struct Name<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Borrowed(name)))
    }
    fn visit_str<E: de::Error>(self, name: &str) -> Result<Name<'de>, E> {
        // Escaped ("\u0061"): compared by what it means, so "a" and "\u0061" are one name.
        Ok(Name(Cow::Owned(name.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(json: &str) -> bool {
        unique_members(json.as_bytes())
    }

    #[test]
    fn distinct_members_at_every_level_pass() {
        assert!(ok(
            r#"{"sub":"a","org":{"tenant":"acme","plan":"pro"},"roles":["a","a"]}"#
        ));
        assert!(ok(r#"{"a":{"x":1},"b":{"x":2},"c":[{"x":1},{"x":2}]}"#));
        assert!(ok(r#"{}"#) && ok("[]") && ok("3") && ok(r#""s""#));
    }

    #[test]
    fn a_repeated_top_level_member_is_refused() {
        assert!(!ok(r#"{"tenant":"evil","tenant":"acme"}"#));
        assert!(!ok(r#"{"sub":"a","iss":"x","sub":"a"}"#));
    }

    #[test]
    fn a_repeat_at_any_depth_is_refused() {
        assert!(!ok(r#"{"org":{"tenant":"evil","tenant":"acme"}}"#));
        assert!(!ok(r#"{"a":[1,{"b":[{"c":1,"c":2}]}]}"#));
    }

    #[test]
    fn an_escaped_spelling_is_the_same_name() {
        assert!(!ok(r#"{"tenant":"evil","\u0074enant":"acme"}"#));
        assert!(!ok(r#"{"a\/b":1,"a/b":2}"#));
    }

    #[test]
    fn names_of_sibling_and_nested_objects_do_not_collide() {
        assert!(ok(r#"{"x":{"x":{"x":1}},"y":{"x":2}}"#));
    }

    #[test]
    fn malformed_json_and_trailing_bytes_are_refused() {
        assert!(!ok(r#"{"a":1"#));
        assert!(!ok(r#"{"a":1} x"#));
        assert!(!ok(""));
    }

    #[test]
    fn a_token_repeating_a_member_in_its_header_or_payload_is_refused() {
        let b64 = |json: &str| URL_SAFE_NO_PAD.encode(json);
        let token = |h: &str, p: &str| format!("{}.{}.sig", b64(h), b64(p));
        let (header, payload) = (r#"{"alg":"EdDSA","kid":"k"}"#, r#"{"sub":"a"}"#);
        assert!(token_members_unique(&token(header, payload)));
        assert!(!token_members_unique(&token(
            r#"{"kid":"k","x":1,"x":2}"#,
            payload
        )));
        assert!(!token_members_unique(&token(
            header,
            r#"{"t":{"a":1,"a":1}}"#
        )));
        assert!(!token_members_unique("no-dots"));
        assert!(!token_members_unique("!!.!!.x"));
    }

    #[test]
    fn a_wide_object_is_checked_in_one_sort() {
        let members: Vec<String> = (0..5000).map(|i| format!("\"m{i}\":{i}")).collect();
        let wide = format!("{{{}}}", members.join(","));
        assert!(ok(&wide));
        let repeated = format!("{{{},\"m17\":0}}", members.join(","));
        assert!(!ok(&repeated));
    }
}
