//! The JWK Set (RFC 7517) served at /.well-known/jwks.json: the ring's public keys.
//!
//! Built from each verifying key's own bytes, which jsonwebtoken keeps in the very form a JWK
//! needs: raw Ed25519 `x`, an uncompressed SEC1 point (`x`, `y`), or a DER RSAPublicKey
//! (`n`, `e`). So no private key is needed, and verify_only public keys are listed too.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{DecodingKey, DecodingKeyKind};
use serde_json::{json, Map, Value};

use super::keys::{der_element, KeyRing};
use super::Alg;

/// The JWKS path, fixed by convention (RFC 8414 clients look here).
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// GET /.well-known/jwks.json body: every asymmetric key (signing and verify_only) with kid,
/// alg, use = "sig", and its public parameters; HMAC keys never appear.
pub fn jwks(ring: &KeyRing) -> Value {
    let keys: Vec<Value> = ring
        .entries()
        .filter_map(|(kid, alg)| {
            let verifier = ring.verifier(kid)?;
            jwk(kid, alg, &verifier.key).map(Value::Object)
        })
        .collect();
    json!({ "keys": keys })
}

/// One key's JWK, or None for an HMAC key (a shared secret is never published).
fn jwk(kid: &str, alg: Alg, key: &DecodingKey) -> Option<Map<String, Value>> {
    // Loading checked each asymmetric key's shape, so None below means HMAC, not a bad key.
    let mut jwk = match (alg, key.kind()) {
        (Alg::HS256 | Alg::HS384 | Alg::HS512, _) => return None,
        (Alg::RS256 | Alg::PS256, DecodingKeyKind::RsaModulusExponent { n, e }) => rsa(n, e),
        (Alg::RS256 | Alg::PS256, DecodingKeyKind::SecretOrDer(der)) => rsa_der(der)?,
        (_, DecodingKeyKind::RsaModulusExponent { .. }) => return None,
        (Alg::EdDSA, DecodingKeyKind::SecretOrDer(x)) => okp(x)?,
        (Alg::ES256, DecodingKeyKind::SecretOrDer(point)) => ec("P-256", 32, point)?,
        (Alg::ES384, DecodingKeyKind::SecretOrDer(point)) => ec("P-384", 48, point)?,
    };
    jwk.insert("kid".into(), kid.into());
    jwk.insert("alg".into(), alg.as_str().into());
    jwk.insert("use".into(), "sig".into());
    Some(jwk)
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(URL_SAFE_NO_PAD.encode(bytes))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn okp(x: &[u8]) -> Option<Map<String, Value>> {
    (x.len() == 32).then(|| object(json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(x) })))
}

/// Splits an uncompressed SEC1 point (0x04 || x || y) with `size`-byte coordinates.
fn ec(crv: &str, size: usize, point: &[u8]) -> Option<Map<String, Value>> {
    let (&tag, xy) = point.split_first()?;
    if tag != 4 || xy.len() != 2 * size {
        return None;
    }
    let (x, y) = xy.split_at(size);
    Some(object(
        json!({ "kty": "EC", "crv": crv, "x": b64(x), "y": b64(y) }),
    ))
}

/// Reads RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }.
fn rsa_der(der: &[u8]) -> Option<Map<String, Value>> {
    let (seq, _) = der_element(der, 0x30)?;
    let (n, rest) = der_element(seq, 0x02)?;
    let (e, _) = der_element(rest, 0x02)?;
    Some(rsa(n, e))
}

fn rsa(n: &[u8], e: &[u8]) -> Map<String, Value> {
    // RFC 7518 section 6.3.1: unsigned big-endian, without the DER sign byte.
    let unsigned = |int: &[u8]| {
        let start = int.iter().position(|b| *b != 0).unwrap_or(int.len());
        b64(&int[start..])
    };
    object(json!({ "kty": "RSA", "n": unsigned(n), "e": unsigned(e) }))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{EncodingKey, Header, Validation};

    use super::*;
    use crate::token::keys::{KeyMaterial, KeySpec};
    use crate::token::mint::mint;
    use crate::token::test_support::{grant, kid, material, private_pem, public_pem, ISSUER};
    use crate::token::TokenType;

    const NOW: u64 = 1_700_000_000;
    const SIGNERS: [Alg; 3] = [Alg::EdDSA, Alg::ES256, Alg::RS256];

    fn spec(alg: Alg, material: KeyMaterial, verify_only: bool) -> KeySpec {
        KeySpec {
            kid: kid(alg),
            alg,
            material,
            verify_only,
        }
    }

    /// EdDSA, ES256, RS256 and HS256 with private material, plus a public-only ES384.
    fn ring(signing: Alg) -> KeyRing {
        let mut specs: Vec<KeySpec> = [Alg::EdDSA, Alg::ES256, Alg::RS256, Alg::HS256]
            .into_iter()
            .map(|alg| spec(alg, material(alg), false))
            .collect();
        let es384 = KeyMaterial::PublicPem(public_pem(Alg::ES384).into_bytes());
        specs.push(spec(Alg::ES384, es384, true));
        KeyRing::new(specs, &kid(signing)).unwrap()
    }

    fn entry<'a>(set: &'a Value, kid: &str) -> &'a Value {
        let keys = set["keys"].as_array().unwrap();
        keys.iter().find(|k| k["kid"] == kid).unwrap()
    }

    /// Verifies `token` with the key built from the JWKS entry for `alg`'s kid.
    fn verifies_with_jwks(set: &Value, alg: Alg, token: &str) {
        let jwk: Jwk = serde_json::from_value(entry(set, &kid(alg)).clone()).unwrap();
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = Validation::new(alg.jwt());
        validation.validate_exp = false;
        validation.set_audience(&["api"]);
        validation.set_issuer(&[ISSUER]);
        let decoded = jsonwebtoken::decode::<Value>(token, &key, &validation);
        assert!(decoded.is_ok(), "{alg}: {:?}", decoded.err());
    }

    #[test]
    fn lists_every_asymmetric_key_and_no_hmac_key() {
        let set = jwks(&ring(Alg::HS256));
        let listed: Vec<(&str, &str, &str)> = set["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let field = |name: &str| k[name].as_str().unwrap();
                (field("kid"), field("alg"), field("use"))
            })
            .collect();
        assert_eq!(
            listed,
            [
                ("eddsa", "EdDSA", "sig"),
                ("es256", "ES256", "sig"),
                ("rs256", "RS256", "sig"),
                ("es384", "ES384", "sig"),
            ]
        );
    }

    #[test]
    fn entries_carry_the_public_parameters_of_their_key_type() {
        let set = jwks(&ring(Alg::EdDSA));
        let shape = |kid: &str| {
            let mut fields: Vec<String> = entry(&set, kid)
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            fields.sort();
            fields.join(",")
        };
        assert_eq!(shape("eddsa"), "alg,crv,kid,kty,use,x");
        assert_eq!(shape("es256"), "alg,crv,kid,kty,use,x,y");
        assert_eq!(shape("rs256"), "alg,e,kid,kty,n,use");
        assert_eq!(entry(&set, "es384")["crv"], "P-384");
        assert_eq!(entry(&set, "rs256")["e"], "AQAB");
        // 2048-bit modulus: 256 bytes, no sign byte, is 342 base64url characters.
        assert_eq!(entry(&set, "rs256")["n"].as_str().unwrap().len(), 342);
    }

    #[test]
    fn tokens_minted_by_the_ring_verify_with_the_published_key() {
        for alg in SIGNERS {
            let ring = ring(alg);
            let (token, _) = mint(&ring, ISSUER, "api", grant(TokenType::Access), NOW).unwrap();
            verifies_with_jwks(&jwks(&ring), alg, &token);
        }
    }

    #[test]
    fn verify_only_public_key_is_published_and_verifies_its_tokens() {
        let set = jwks(&ring(Alg::EdDSA));
        let pem = private_pem(Alg::ES384);
        let key = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
        let mut header = Header::new(Alg::ES384.jwt());
        header.kid = Some(kid(Alg::ES384));
        let claims = json!({ "iss": ISSUER, "aud": "api", "sub": "alice", "exp": NOW });
        let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        verifies_with_jwks(&set, Alg::ES384, &token);
    }

    #[test]
    fn ps256_keys_are_published_as_rsa_with_their_own_alg() {
        let specs = vec![spec(Alg::PS256, material(Alg::PS256), false)];
        let ring = KeyRing::new(specs, "ps256").unwrap();
        let set = jwks(&ring);
        assert_eq!(entry(&set, "ps256")["kty"], "RSA");
        let (token, _) = mint(&ring, ISSUER, "api", grant(TokenType::Access), NOW).unwrap();
        verifies_with_jwks(&set, Alg::PS256, &token);
    }

    #[test]
    fn rsa_integers_lose_their_der_sign_byte() {
        let mut der = vec![
            0x30, 0x09, 0x02, 0x02, 0x00, 0x80, 0x02, 0x03, 0x01, 0x00, 0x01,
        ];
        assert_eq!(rsa_der(&der).unwrap()["n"], "gA");
        assert_eq!(rsa_der(&der).unwrap()["e"], "AQAB");
        der.truncate(8);
        assert!(rsa_der(&der).is_none());
    }
}
