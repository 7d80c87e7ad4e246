//! An identity provider's JWK Set (RFC 7517) -> verifying keys by kid, each pinned to the
//! algorithms its key type can serve and the issuer allows.
//!
//! Read field by field from JSON rather than through a JWK type, so that one key of a kind
//! we do not use (an encryption key, an HMAC `oct` key, a curve we lack) is skipped instead
//! of failing the whole set.

use std::collections::HashMap;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::DecodingKey;
use serde_json::{Map, Value};

use crate::token::Alg;

/// A set of algorithms as a bit mask over [`crate::token::ALL_ALGS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlgSet(u16);

impl AlgSet {
    /// The set holding exactly these algorithms.
    pub fn of(algs: &[Alg]) -> AlgSet {
        AlgSet(algs.iter().fold(0, |bits, alg| bits | AlgSet::bit(*alg)))
    }

    fn bit(alg: Alg) -> u16 {
        1 << (alg as u16)
    }

    /// True when `alg` is in the set.
    pub fn contains(self, alg: Alg) -> bool {
        self.0 & AlgSet::bit(alg) != 0
    }

    /// The algorithms in both sets.
    pub fn intersect(self, other: AlgSet) -> AlgSet {
        AlgSet(self.0 & other.0)
    }

    /// True when the set holds no algorithm.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// A provider's public key and the algorithms it may verify.
#[derive(Clone)]
pub struct ExternalKey {
    /// Algorithms a token signed with this key may name.
    pub algs: AlgSet,
    /// The jsonwebtoken verifying key.
    pub key: DecodingKey,
}

impl fmt::Debug for ExternalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalKey")
            .field("algs", &self.algs)
            .finish_non_exhaustive()
    }
}

/// Usable keys of one JWK Set by kid, and how many entries were skipped.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    /// kid -> key.
    pub keys: HashMap<String, ExternalKey>,
    /// Entries left out: no kid, not for signing, a key type or algorithm not allowed.
    pub skipped: usize,
}

/// Smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_BYTES: usize = 256;

/// Parses a JWK Set body, keeping the keys usable with `allowed` algorithms.
///
/// Errors (the previous keys stay in use) when the body is not a JWK Set or keeps no key.
pub fn parse(body: &[u8], allowed: AlgSet) -> Result<KeySet, String> {
    let set: Value = serde_json::from_slice(body).map_err(|e| format!("JWKS is not JSON: {e}"))?;
    let entries = set
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("JWKS has no \"keys\" array")?;
    let mut out = KeySet::default();
    for entry in entries {
        let Some((kid, key)) = entry.as_object().and_then(|jwk| usable(jwk, allowed)) else {
            out.skipped += 1;
            continue;
        };
        // Two keys under one kid are ambiguous: the first one stays, as with most verifiers.
        if out.keys.contains_key(&kid) {
            out.skipped += 1;
            continue;
        }
        out.keys.insert(kid, key);
    }
    if out.keys.is_empty() {
        return Err(format!(
            "JWKS has no usable signing key ({} skipped: need a kid and an allowed algorithm)",
            out.skipped
        ));
    }
    Ok(out)
}

/// One JWK as (kid, key), or None when it cannot verify any allowed algorithm.
fn usable(jwk: &Map<String, Value>, allowed: AlgSet) -> Option<(String, ExternalKey)> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let kid = text("kid").filter(|k| !k.is_empty())?;
    if text("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let (fits, key) = match text("kty")? {
        "RSA" => rsa(jwk)?,
        "EC" => ec(jwk)?,
        "OKP" if text("crv") == Some("Ed25519") => {
            let x = bytes(jwk, "x").filter(|x| x.len() == 32)?;
            (AlgSet::of(&[Alg::EdDSA]), DecodingKey::from_ed_der(&x))
        }
        // "oct" (a shared secret) never comes from a provider's public key set.
        _ => return None,
    };
    // A JWK's own alg pins it further (RFC 7517 4.4); an alg we do not know drops the key.
    let pinned = match text("alg") {
        Some(name) => AlgSet::of(&[name.parse::<Alg>().ok()?]),
        None => fits,
    };
    let algs = fits.intersect(pinned).intersect(allowed);
    (!algs.is_empty()).then(|| (kid.to_owned(), ExternalKey { algs, key }))
}

fn rsa(jwk: &Map<String, Value>) -> Option<(AlgSet, DecodingKey)> {
    let n = jwk.get("n")?.as_str()?;
    let e = jwk.get("e")?.as_str()?;
    let modulus = URL_SAFE_NO_PAD.decode(n).ok()?;
    let significant = modulus.iter().skip_while(|b| **b == 0).count();
    if significant < MIN_RSA_BYTES {
        return None;
    }
    let key = DecodingKey::from_rsa_components(n, e).ok()?;
    Some((AlgSet::of(&[Alg::RS256, Alg::PS256]), key))
}

fn ec(jwk: &Map<String, Value>) -> Option<(AlgSet, DecodingKey)> {
    let (alg, size) = match jwk.get("crv")?.as_str()? {
        "P-256" => (Alg::ES256, 32),
        "P-384" => (Alg::ES384, 48),
        _ => return None,
    };
    let x = bytes(jwk, "x").filter(|x| x.len() == size)?;
    let y = bytes(jwk, "y").filter(|y| y.len() == size)?;
    // Uncompressed SEC1 point, the form jsonwebtoken verifies with.
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Some((AlgSet::of(&[alg]), DecodingKey::from_ec_der(&point)))
}

fn bytes(jwk: &Map<String, Value>, name: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(jwk.get(name)?.as_str()?).ok()
}

/// The `max-age` of a Cache-Control value; `no-cache` and `no-store` count as 0.
pub fn max_age(cache_control: &str) -> Option<u64> {
    let mut age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(0);
        }
        if let Some(value) = lower.strip_prefix("max-age=") {
            age = value.trim_matches('"').parse().ok().or(age);
        }
    }
    age
}

#[cfg(test)]
mod tests;
