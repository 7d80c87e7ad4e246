//! The key ring: kid -> (pinned algorithm, verifying key), plus the one active signing key.

mod material;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::hmac;
use jsonwebtoken::{DecodingKey, EncodingKey};

use super::Alg;
pub(crate) use material::{der_element, rcgen_alg};

/// Which key ring a token was verified with: caches of verified tokens are per generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(u64);

impl Generation {
    /// The number, for a cache to compare.
    pub fn get(self) -> u64 {
        self.0
    }

    /// A generation no earlier one equals.
    pub fn next() -> Generation {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Generation(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Key bytes as configured: an HMAC secret, a private PEM, or a public PEM.
#[derive(Clone)]
pub enum KeyMaterial {
    /// Shared HMAC secret (HS* only).
    Secret(Vec<u8>),
    /// PKCS#8 private key PEM; yields both a signing and a verifying key.
    PrivatePem(Vec<u8>),
    /// Public key PEM; verification only.
    PublicPem(Vec<u8>),
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the kind of material: its bytes never reach a log.
        let kind = match self {
            KeyMaterial::Secret(_) => "Secret",
            KeyMaterial::PrivatePem(_) => "PrivatePem",
            KeyMaterial::PublicPem(_) => "PublicPem",
        };
        f.debug_tuple(kind)
            .field(&format_args!("<redacted>"))
            .finish()
    }
}

/// One configured key, before it is checked and loaded.
#[derive(Clone, Debug)]
pub struct KeySpec {
    /// Key id, carried in the token header.
    pub kid: String,
    /// The only algorithm this key is used with.
    pub alg: Alg,
    /// The key bytes.
    pub material: KeyMaterial,
    /// Keep the key for verification only (a retired signing key).
    pub verify_only: bool,
}

/// Why one key (or the choice of signing key) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("key {kid:?}: {message}")]
pub struct KeyError {
    /// The key the error is about.
    pub kid: String,
    /// What is wrong, never including key bytes.
    pub message: String,
}

impl KeyError {
    fn new(kid: &str, message: impl Into<String>) -> Self {
        KeyError {
            kid: kid.to_owned(),
            message: message.into(),
        }
    }
}

/// A verifying key pinned to one algorithm.
#[derive(Clone)]
pub struct VerifyKey {
    /// The pinned algorithm; a token must name exactly this one.
    pub alg: Alg,
    /// The jsonwebtoken verifying key.
    pub key: DecodingKey,
    /// For the HMAC algorithms, the aws-lc-rs key made once from the secret: verification
    /// then skips jsonwebtoken's per-call key set-up (issue 19 target 4).
    pub(crate) mac: Option<hmac::Key>,
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The active signing key.
#[derive(Clone)]
pub struct SignKey {
    /// Key id written into every minted token's header.
    pub kid: String,
    /// Algorithm written into the header.
    pub alg: Alg,
    /// The jsonwebtoken signing key.
    pub key: EncodingKey,
}

impl fmt::Debug for SignKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// All verifying keys by kid, and the signing key.
#[derive(Clone)]
pub struct KeyRing {
    verifiers: HashMap<String, VerifyKey>,
    /// Kids in configuration order, so listings are stable.
    order: Vec<String>,
    signer: SignKey,
    /// Ties cached verifications to this ring (see `token::cache`).
    generation: Generation,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<(&str, Alg)> = self.entries().collect();
        f.debug_struct("KeyRing")
            .field("keys", &keys)
            .field("signing_kid", &self.signer.kid)
            .finish()
    }
}

impl KeyRing {
    /// Loads every key and picks the signer; reports every problem, not just the first.
    pub fn new(specs: Vec<KeySpec>, signing_kid: &str) -> Result<KeyRing, Vec<KeyError>> {
        let mut errors = Vec::new();
        let mut verifiers = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut signer = None;
        for spec in specs {
            if let Err(e) = check_kid(&spec.kid, &order) {
                errors.push(e);
                continue;
            }
            order.push(spec.kid.clone());
            let loaded = match material::load(spec.alg, &spec.material) {
                Ok(loaded) => loaded,
                Err(message) => {
                    errors.push(KeyError::new(&spec.kid, message));
                    continue;
                }
            };
            if spec.kid == signing_kid {
                match pick_signer(&spec, loaded.sign) {
                    Ok(sign) => signer = Some(sign),
                    Err(e) => errors.push(e),
                }
            }
            let verify = VerifyKey {
                mac: material::hmac_key(spec.alg, &loaded.verify),
                alg: spec.alg,
                key: loaded.verify,
            };
            verifiers.insert(spec.kid, verify);
        }
        if !order.iter().any(|kid| kid == signing_kid) {
            errors.push(no_such_signer(signing_kid, &order));
        }
        match signer {
            Some(signer) if errors.is_empty() => Ok(KeyRing {
                verifiers,
                order,
                signer,
                generation: Generation::next(),
            }),
            // Every path that leaves `signer` empty has pushed an error.
            _ => Err(errors),
        }
    }

    /// The verifying key for a kid, if the ring has one.
    pub fn verifier(&self, kid: &str) -> Option<&VerifyKey> {
        self.verifiers.get(kid)
    }

    /// Which verifications cached for a ring were made with this one.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The active signing key.
    pub fn signer(&self) -> &SignKey {
        &self.signer
    }

    /// Every kid, in configuration order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    /// Every (kid, alg) pair, in configuration order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Alg)> {
        self.order
            .iter()
            .filter_map(|kid| self.verifiers.get(kid).map(|v| (kid.as_str(), v.alg)))
    }
}

/// A kid must be non-empty and unique: it is how a token names its key.
fn check_kid(kid: &str, seen: &[String]) -> Result<(), KeyError> {
    if kid.is_empty() {
        return Err(KeyError::new("", "kid must not be empty"));
    }
    if seen.iter().any(|k| k == kid) {
        return Err(KeyError::new(kid, "duplicate kid"));
    }
    Ok(())
}

fn no_such_signer(signing_kid: &str, kids: &[String]) -> KeyError {
    let known = if kids.is_empty() {
        "none".to_owned()
    } else {
        kids.join(", ")
    };
    let message = format!("signing_kid names no key (expected one of: {known})");
    KeyError::new(signing_kid, message)
}

/// Checks that the key named by signing_kid can sign.
fn pick_signer(spec: &KeySpec, sign: Option<EncodingKey>) -> Result<SignKey, KeyError> {
    if spec.verify_only {
        return Err(KeyError::new(&spec.kid, "signing key is verify_only"));
    }
    let key = sign.ok_or_else(|| {
        KeyError::new(
            &spec.kid,
            "signing key has only a public key (needs private_key)",
        )
    })?;
    Ok(SignKey {
        kid: spec.kid.clone(),
        alg: spec.alg,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::keygen::generate_private_pem;

    fn secret_spec(kid: &str, alg: Alg, len: usize) -> KeySpec {
        KeySpec {
            kid: kid.into(),
            alg,
            material: KeyMaterial::Secret(vec![0x5a; len]),
            verify_only: false,
        }
    }

    fn pem_spec(kid: &str, alg: Alg, key_alg: Alg) -> KeySpec {
        let pem = generate_private_pem(key_alg).unwrap().into_bytes();
        KeySpec {
            kid: kid.into(),
            alg,
            material: KeyMaterial::PrivatePem(pem),
            verify_only: false,
        }
    }

    fn errors(specs: Vec<KeySpec>, signing_kid: &str) -> Vec<String> {
        match KeyRing::new(specs, signing_kid) {
            Ok(_) => panic!("ring should not load"),
            Err(errs) => errs.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn ring_exposes_verifiers_signer_and_kids_in_order() {
        let specs = vec![
            pem_spec("new", Alg::EdDSA, Alg::EdDSA),
            secret_spec("old", Alg::HS256, 32),
        ];
        let ring = KeyRing::new(specs, "new").unwrap();
        assert_eq!(ring.kids().collect::<Vec<_>>(), ["new", "old"]);
        assert_eq!(ring.signer().kid, "new");
        assert_eq!(ring.signer().alg, Alg::EdDSA);
        assert_eq!(ring.verifier("old").map(|v| v.alg), Some(Alg::HS256));
        assert!(ring.verifier("nope").is_none());
    }

    #[test]
    fn every_bad_key_is_reported_at_once() {
        let specs = vec![
            secret_spec("short", Alg::HS256, 16),
            pem_spec("dev", Alg::EdDSA, Alg::ES256),
            secret_spec("ok", Alg::HS512, 64),
        ];
        let errs = errors(specs, "ok");
        assert_eq!(
            errs,
            [
                "key \"short\": HS256 secret must be at least 32 bytes",
                "key \"dev\": private_key is not an EdDSA (Ed25519) PKCS#8 PEM key",
            ]
        );
    }

    #[test]
    fn signing_kid_must_name_a_key() {
        let specs = vec![
            secret_spec("a", Alg::HS256, 32),
            secret_spec("b", Alg::HS256, 32),
        ];
        let errs = errors(specs, "x");
        assert_eq!(
            errs,
            ["key \"x\": signing_kid names no key (expected one of: a, b)"]
        );
    }

    #[test]
    fn signing_key_may_not_be_verify_only() {
        let mut old = secret_spec("old", Alg::HS256, 32);
        old.verify_only = true;
        assert_eq!(
            errors(vec![old], "old"),
            ["key \"old\": signing key is verify_only"]
        );
    }

    #[test]
    fn signing_key_needs_private_material() {
        let pem = generate_private_pem(Alg::EdDSA).unwrap();
        let public = rcgen::KeyPair::from_pem(&pem).unwrap().public_key_pem();
        let spec = KeySpec {
            kid: "pub".into(),
            alg: Alg::EdDSA,
            material: KeyMaterial::PublicPem(public.into_bytes()),
            verify_only: false,
        };
        let errs = errors(vec![spec], "pub");
        assert_eq!(
            errs,
            ["key \"pub\": signing key has only a public key (needs private_key)"]
        );
    }

    #[test]
    fn duplicate_and_empty_kids_are_rejected() {
        let specs = vec![
            secret_spec("a", Alg::HS256, 32),
            secret_spec("a", Alg::HS384, 48),
            secret_spec("", Alg::HS256, 32),
        ];
        let errs = errors(specs, "a");
        assert_eq!(
            errs,
            [
                "key \"a\": duplicate kid",
                "key \"\": kid must not be empty"
            ]
        );
    }

    #[test]
    fn debug_output_never_contains_key_bytes() {
        let secret = b"super-secret-hmac-key-material-0123456789".to_vec();
        let material = KeyMaterial::Secret(secret.clone());
        assert_eq!(format!("{material:?}"), "Secret(<redacted>)");
        let pem = generate_private_pem(Alg::EdDSA).unwrap();
        let pem_material = KeyMaterial::PrivatePem(pem.clone().into_bytes());
        assert!(!format!("{pem_material:?}").contains("BEGIN"));
        let specs = vec![
            KeySpec {
                kid: "h".into(),
                alg: Alg::HS256,
                material,
                verify_only: false,
            },
            KeySpec {
                kid: "e".into(),
                alg: Alg::EdDSA,
                material: pem_material,
                verify_only: false,
            },
        ];
        let ring = KeyRing::new(specs, "h").unwrap();
        let body = pem.lines().nth(1).unwrap();
        for text in [
            format!("{ring:?}"),
            format!("{:?}", ring.signer()),
            format!("{:?}", ring.verifier("e")),
        ] {
            assert!(!text.contains("super-secret"), "{text}");
            assert!(!text.contains(body), "{text}");
            assert!(
                !text.contains("90, 90") && !text.contains("115, 117"),
                "{text}"
            );
        }
        assert_eq!(
            format!("{ring:?}"),
            "KeyRing { keys: [(\"h\", HS256), (\"e\", EdDSA)], signing_kid: \"h\" }"
        );
    }
}
