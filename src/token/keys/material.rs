//! Turning one key's configured material into jsonwebtoken keys, checking that it fits the
//! key's pinned algorithm.

use aws_lc_rs::hmac;
use jsonwebtoken::crypto;
use jsonwebtoken::{DecodingKey, DecodingKeyKind, EncodingKey};

use super::KeyMaterial;
use crate::token::Alg;

/// The keys built from one spec: always a verifier, a signer only with private material.
pub(super) struct Loaded {
    pub(super) verify: DecodingKey,
    pub(super) sign: Option<EncodingKey>,
}

/// The rcgen algorithm whose keys fit `alg`, or None for the HMAC algorithms.
pub(crate) fn rcgen_alg(alg: Alg) -> Option<&'static rcgen::SignatureAlgorithm> {
    match alg {
        Alg::HS256 | Alg::HS384 | Alg::HS512 => None,
        // rcgen labels every RSA key PKCS_RSA_SHA256; the padding is chosen at signing time.
        Alg::RS256 | Alg::PS256 => Some(&rcgen::PKCS_RSA_SHA256),
        Alg::ES256 => Some(&rcgen::PKCS_ECDSA_P256_SHA256),
        Alg::ES384 => Some(&rcgen::PKCS_ECDSA_P384_SHA384),
        Alg::EdDSA => Some(&rcgen::PKCS_ED25519),
    }
}

/// Builds the verifying (and, for private material, signing) key for `alg`.
pub(super) fn load(alg: Alg, material: &KeyMaterial) -> Result<Loaded, String> {
    match (alg.is_hmac(), material) {
        (true, KeyMaterial::Secret(secret)) => load_secret(alg, secret),
        (true, _) => Err(format!("{alg} needs a secret, not a PEM key")),
        (false, KeyMaterial::Secret(_)) => Err(format!("{alg} needs a PEM key, not a secret")),
        (false, KeyMaterial::PrivatePem(pem)) => load_private(alg, pem),
        (false, KeyMaterial::PublicPem(pem)) => load_public(alg, pem),
    }
}

/// Minimum HMAC secret length: the hash output size, per RFC 7518 section 3.2.
fn min_secret_len(alg: Alg) -> usize {
    match alg {
        Alg::HS384 => 48,
        Alg::HS512 => 64,
        _ => 32,
    }
}

fn load_secret(alg: Alg, secret: &[u8]) -> Result<Loaded, String> {
    let min = min_secret_len(alg);
    if secret.len() < min {
        return Err(format!("{alg} secret must be at least {min} bytes"));
    }
    Ok(Loaded {
        verify: DecodingKey::from_secret(secret),
        sign: Some(EncodingKey::from_secret(secret)),
    })
}

/// The aws-lc-rs HMAC key for an HS* verifier; None for the other algorithms.
pub(super) fn hmac_key(alg: Alg, key: &DecodingKey) -> Option<hmac::Key> {
    let algorithm = match alg {
        Alg::HS256 => hmac::HMAC_SHA256,
        Alg::HS384 => hmac::HMAC_SHA384,
        Alg::HS512 => hmac::HMAC_SHA512,
        _ => return None,
    };
    let secret = key.try_get_hmac_secret().ok()?;
    Some(hmac::Key::new(algorithm, secret))
}

/// "an EdDSA (Ed25519)": what a fitting key is, for error messages.
fn key_kind(alg: Alg) -> &'static str {
    match alg {
        Alg::EdDSA => "an EdDSA (Ed25519)",
        Alg::ES256 => "an ES256 (P-256)",
        Alg::ES384 => "an ES384 (P-384)",
        Alg::RS256 => "an RS256 (RSA, 2048 bits or more)",
        Alg::PS256 => "a PS256 (RSA, 2048 bits or more)",
        Alg::HS256 | Alg::HS384 | Alg::HS512 => "an HMAC",
    }
}

fn bad_private(alg: Alg) -> String {
    format!("private_key is not {} PKCS#8 PEM key", key_kind(alg))
}

fn bad_public(alg: Alg) -> String {
    format!("public_key is not {} PEM public key", key_kind(alg))
}

fn load_private(alg: Alg, pem: &[u8]) -> Result<Loaded, String> {
    let text = std::str::from_utf8(pem).map_err(|_| bad_private(alg))?;
    // rcgen tells the key type apart (including the EC curve), which jsonwebtoken does not.
    let pair = rcgen::KeyPair::from_pem(text).map_err(|_| bad_private(alg))?;
    if rcgen_alg(alg).is_none_or(|want| !pair.is_compatible(want)) {
        return Err(bad_private(alg));
    }
    let sign = encoding_key(alg, pem).map_err(|_| bad_private(alg))?;
    let verify =
        decoding_key(alg, pair.public_key_pem().as_bytes()).ok_or_else(|| bad_private(alg))?;
    // Sign and verify once now, so a key aws-lc refuses fails the load, not the first login.
    let probe = b"portcullis key check";
    let signature = crypto::sign(probe, &sign, alg.jwt()).map_err(|_| bad_private(alg))?;
    match crypto::verify(&signature, probe, &verify, alg.jwt()) {
        Ok(true) => Ok(Loaded {
            verify,
            sign: Some(sign),
        }),
        _ => Err(bad_private(alg)),
    }
}

fn load_public(alg: Alg, pem: &[u8]) -> Result<Loaded, String> {
    let verify = decoding_key(alg, pem).ok_or_else(|| bad_public(alg))?;
    Ok(Loaded { verify, sign: None })
}

fn encoding_key(alg: Alg, pem: &[u8]) -> jsonwebtoken::errors::Result<EncodingKey> {
    match alg {
        Alg::EdDSA => EncodingKey::from_ed_pem(pem),
        Alg::ES256 | Alg::ES384 => EncodingKey::from_ec_pem(pem),
        _ => EncodingKey::from_rsa_pem(pem),
    }
}

/// Parses a public PEM for `alg`, or None when it is not a fitting key.
fn decoding_key(alg: Alg, pem: &[u8]) -> Option<DecodingKey> {
    let key = match alg {
        Alg::EdDSA => DecodingKey::from_ed_pem(pem),
        Alg::ES256 | Alg::ES384 => DecodingKey::from_ec_pem(pem),
        _ => DecodingKey::from_rsa_pem(pem),
    }
    .ok()?;
    public_fits(alg, &key).then_some(key)
}

/// Checks the public key's size, which is what tells P-256 from P-384 and a weak RSA key.
fn public_fits(alg: Alg, key: &DecodingKey) -> bool {
    let DecodingKeyKind::SecretOrDer(bytes) = key.kind() else {
        return false;
    };
    match alg {
        Alg::EdDSA => bytes.len() == 32,
        // Uncompressed SEC1 points: 0x04, then x and y of the curve's field size.
        Alg::ES256 => bytes.len() == 65 && bytes[0] == 4,
        Alg::ES384 => bytes.len() == 97 && bytes[0] == 4,
        Alg::RS256 | Alg::PS256 => rsa_modulus_bits(bytes).is_some_and(|bits| bits >= 2048),
        Alg::HS256 | Alg::HS384 | Alg::HS512 => false,
    }
}

/// Reads the modulus size from a DER RSAPublicKey: SEQUENCE { INTEGER n, INTEGER e }.
fn rsa_modulus_bits(der: &[u8]) -> Option<usize> {
    let (seq, _) = der_element(der, 0x30)?;
    let (n, _) = der_element(seq, 0x02)?;
    let start = n.iter().position(|b| *b != 0)?;
    let digits = &n[start..];
    Some((digits.len() - 1) * 8 + (8 - digits[0].leading_zeros() as usize))
}

/// Splits one DER element with the given tag into (contents, rest).
pub(crate) fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(count)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    rest.split_at_checked(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::keygen::generate_private_pem;

    fn private(alg: Alg) -> KeyMaterial {
        KeyMaterial::PrivatePem(generate_private_pem(alg).unwrap().into_bytes())
    }

    fn public_of(pem: &KeyMaterial) -> KeyMaterial {
        let KeyMaterial::PrivatePem(bytes) = pem else {
            unreachable!()
        };
        let pair = rcgen::KeyPair::from_pem(std::str::from_utf8(bytes).unwrap()).unwrap();
        KeyMaterial::PublicPem(pair.public_key_pem().into_bytes())
    }

    #[test]
    fn generated_private_keys_load_with_signer_and_verifier() {
        for alg in [Alg::EdDSA, Alg::ES256, Alg::ES384, Alg::RS256, Alg::PS256] {
            let loaded = load(alg, &private(alg)).unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert!(loaded.sign.is_some(), "{alg}");
        }
    }

    #[test]
    fn public_pem_loads_as_verify_only() {
        for alg in [Alg::EdDSA, Alg::ES256, Alg::ES384, Alg::RS256] {
            let loaded =
                load(alg, &public_of(&private(alg))).unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert!(loaded.sign.is_none());
        }
    }

    #[test]
    fn curve_mismatch_is_rejected_for_private_and_public_keys() {
        let p256 = private(Alg::ES256);
        let err = load(Alg::ES384, &p256).err().unwrap();
        assert_eq!(err, "private_key is not an ES384 (P-384) PKCS#8 PEM key");
        let err = load(Alg::ES384, &public_of(&p256)).err().unwrap();
        assert_eq!(err, "public_key is not an ES384 (P-384) PEM public key");
        assert!(load(Alg::ES256, &public_of(&private(Alg::ES384))).is_err());
    }

    #[test]
    fn key_family_mismatch_is_rejected() {
        assert!(load(Alg::EdDSA, &private(Alg::RS256)).is_err());
        assert!(load(Alg::RS256, &private(Alg::EdDSA)).is_err());
        assert!(load(Alg::EdDSA, &public_of(&private(Alg::ES256))).is_err());
        assert!(load(Alg::PS256, &public_of(&private(Alg::EdDSA))).is_err());
    }

    #[test]
    fn secret_and_pem_are_not_interchangeable() {
        let err = load(Alg::HS256, &private(Alg::EdDSA)).err().unwrap();
        assert_eq!(err, "HS256 needs a secret, not a PEM key");
        let err = load(Alg::EdDSA, &KeyMaterial::Secret(vec![7; 64]))
            .err()
            .unwrap();
        assert_eq!(err, "EdDSA needs a PEM key, not a secret");
    }

    #[test]
    fn hmac_secret_must_match_hash_size() {
        for (alg, min) in [(Alg::HS256, 32), (Alg::HS384, 48), (Alg::HS512, 64)] {
            let err = load(alg, &KeyMaterial::Secret(vec![1; min - 1]))
                .err()
                .unwrap();
            assert_eq!(err, format!("{alg} secret must be at least {min} bytes"));
            assert!(load(alg, &KeyMaterial::Secret(vec![1; min])).is_ok());
        }
    }

    #[test]
    fn garbage_pem_is_rejected_without_echoing_it() {
        let junk = KeyMaterial::PrivatePem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n".to_vec());
        let err = load(Alg::EdDSA, &junk).err().unwrap();
        assert!(!err.contains("AAAA"));
    }

    #[test]
    fn rsa_modulus_bits_reads_der_lengths() {
        // SEQUENCE { INTEGER 0x00 0x80 .. (2048-bit modulus), INTEGER 65537 }
        let mut n = vec![0x00, 0x80];
        n.extend(std::iter::repeat_n(0u8, 255));
        let mut int = vec![0x02, 0x82, 0x01, 0x01];
        int.extend(&n);
        int.extend([0x02, 0x03, 0x01, 0x00, 0x01]);
        let mut der = vec![0x30, 0x82, (int.len() >> 8) as u8, int.len() as u8];
        der.extend(&int);
        assert_eq!(rsa_modulus_bits(&der), Some(2048));
        assert_eq!(rsa_modulus_bits(&der[..10]), None);
        assert_eq!(rsa_modulus_bits(&[0x30, 0x03, 0x02, 0x01, 0x05]), Some(3));
    }
}
