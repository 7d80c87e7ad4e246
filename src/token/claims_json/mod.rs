//! [`Claims`] and [`Audience`] read from JSON in one pass, without serde's buffering.
//!
//! The derived reader of a struct with a `#[serde(flatten)]` field, and of an untagged enum,
//! first copies values into serde's internal `Content` and reads them again from there; on a
//! token's first verification that was a large part of the cost around the MAC (issue 19
//! target 4). These readers accept and refuse exactly what the derived ones did: a JSON
//! object only; each known claim at most once ("duplicate field"); the required ones present
//! ("missing field", reported in declaration order after the whole object was read); any
//! other member into `extra`, the last copy of a repeat kept (the verifier refuses repeats).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{Audience, Claims, TokenType};

/// A member name: one of the claims `Claims` has a field for, or any other.
enum Name {
    Iss,
    Aud,
    Sub,
    Iat,
    Nbf,
    Exp,
    Jti,
    Roles,
    Typ,
    Fam,
    Amr,
    AuthTime,
    Idp,
    Other(String),
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Name, D::Error> {
        deserializer.deserialize_identifier(NameVisitor)
    }
}

struct NameVisitor;

impl Visitor<'_> for NameVisitor {
    type Value = Name;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a claim name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Name, E> {
        Ok(match name {
            "iss" => Name::Iss,
            "aud" => Name::Aud,
            "sub" => Name::Sub,
            "iat" => Name::Iat,
            "nbf" => Name::Nbf,
            "exp" => Name::Exp,
            "jti" => Name::Jti,
            "roles" => Name::Roles,
            "typ" => Name::Typ,
            "fam" => Name::Fam,
            "amr" => Name::Amr,
            "auth_time" => Name::AuthTime,
            "idp" => Name::Idp,
            other => Name::Other(other.to_owned()),
        })
    }
}

/// The claims seen so far; `None` until a member sets one.
#[derive(Default)]
struct Seen {
    iss: Option<String>,
    aud: Option<Audience>,
    sub: Option<String>,
    iat: Option<u64>,
    nbf: Option<u64>,
    exp: Option<u64>,
    jti: Option<String>,
    roles: Option<Vec<String>>,
    typ: Option<TokenType>,
    fam: Option<Option<String>>,
    amr: Option<Vec<String>>,
    auth_time: Option<Option<u64>>,
    idp: Option<Option<String>>,
}

/// Reads the next value into `slot`, refusing a second copy of claim `name`.
fn once<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    map: &mut A,
    slot: &mut Option<T>,
    name: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// The value of required claim `name`, or serde's "missing field" error.
fn required<T, E: de::Error>(slot: Option<T>, name: &'static str) -> Result<T, E> {
    slot.ok_or_else(|| E::missing_field(name))
}

struct ClaimsVisitor;

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = Claims;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Claims, A::Error> {
        let mut seen = Seen::default();
        let mut extra = Map::new();
        while let Some(name) = map.next_key::<Name>()? {
            let m = &mut map;
            match name {
                Name::Iss => once(m, &mut seen.iss, "iss")?,
                Name::Aud => once(m, &mut seen.aud, "aud")?,
                Name::Sub => once(m, &mut seen.sub, "sub")?,
                Name::Iat => once(m, &mut seen.iat, "iat")?,
                Name::Nbf => once(m, &mut seen.nbf, "nbf")?,
                Name::Exp => once(m, &mut seen.exp, "exp")?,
                Name::Jti => once(m, &mut seen.jti, "jti")?,
                Name::Roles => once(m, &mut seen.roles, "roles")?,
                Name::Typ => once(m, &mut seen.typ, "typ")?,
                Name::Fam => once(m, &mut seen.fam, "fam")?,
                Name::Amr => once(m, &mut seen.amr, "amr")?,
                Name::AuthTime => once(m, &mut seen.auth_time, "auth_time")?,
                Name::Idp => once(m, &mut seen.idp, "idp")?,
                Name::Other(name) => {
                    extra.insert(name, m.next_value::<Value>()?);
                }
            }
        }
        Ok(Claims {
            iss: required(seen.iss, "iss")?,
            aud: required(seen.aud, "aud")?,
            sub: required(seen.sub, "sub")?,
            iat: required(seen.iat, "iat")?,
            nbf: required(seen.nbf, "nbf")?,
            exp: required(seen.exp, "exp")?,
            jti: required(seen.jti, "jti")?,
            roles: seen.roles.unwrap_or_default(),
            typ: required(seen.typ, "typ")?,
            fam: seen.fam.flatten(),
            amr: seen.amr.unwrap_or_default(),
            auth_time: seen.auth_time.flatten(),
            idp: seen.idp.flatten(),
            extra,
        })
    }
}

impl<'de> Deserialize<'de> for Claims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Claims, D::Error> {
        // A map, not a struct: serde_json would read a struct from a JSON array too.
        deserializer.deserialize_map(ClaimsVisitor)
    }
}

struct AudienceVisitor;

impl<'de> Visitor<'de> for AudienceVisitor {
    type Value = Audience;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an audience string or an array of them")
    }

    fn visit_str<E: de::Error>(self, aud: &str) -> Result<Audience, E> {
        Ok(Audience::One(aud.to_owned()))
    }

    fn visit_string<E: de::Error>(self, aud: String) -> Result<Audience, E> {
        Ok(Audience::One(aud))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Audience, A::Error> {
        let mut many = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        while let Some(aud) = seq.next_element::<String>()? {
            many.push(aud);
        }
        Ok(Audience::Many(many))
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Audience, D::Error> {
        deserializer.deserialize_any(AudienceVisitor)
    }
}

#[cfg(test)]
mod tests;
