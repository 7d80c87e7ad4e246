//! Keys, rings and grants generated at test time (no key files in the repository).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use super::keys::{KeyMaterial, KeyRing, KeySpec};
use super::mint::Grant;
use super::verify::Expectations;
use super::{Alg, TokenType, ALL_ALGS};
use crate::tools::keygen::generate_private_pem;

/// Issuer used by the test rings.
pub(crate) const ISSUER: &str = "https://auth.test";

/// A private PEM per algorithm, generated once per test process (RSA generation is slow).
pub(crate) fn private_pem(alg: Alg) -> String {
    static CACHE: OnceLock<Mutex<HashMap<Alg, String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap();
    map.entry(alg)
        .or_insert_with(|| generate_private_pem(alg).unwrap())
        .clone()
}

/// The public PEM matching `private_pem(alg)`.
pub(crate) fn public_pem(alg: Alg) -> String {
    rcgen::KeyPair::from_pem(&private_pem(alg))
        .unwrap()
        .public_key_pem()
}

/// The kid the test rings give each algorithm's key: its name in lower case.
pub(crate) fn kid(alg: Alg) -> String {
    alg.as_str().to_ascii_lowercase()
}

/// Key material for `alg`: a fixed secret for HMAC, the cached private PEM otherwise.
pub(crate) fn material(alg: Alg) -> KeyMaterial {
    if alg.is_hmac() {
        KeyMaterial::Secret(format!("{}-test-secret-{}", alg, "x".repeat(64)).into_bytes())
    } else {
        KeyMaterial::PrivatePem(private_pem(alg).into_bytes())
    }
}

/// A ring holding one key per algorithm, signing with `alg`'s key.
pub(crate) fn ring_for(alg: Alg) -> KeyRing {
    let specs = ALL_ALGS
        .into_iter()
        .map(|a| KeySpec {
            kid: kid(a),
            alg: a,
            material: material(a),
            verify_only: false,
        })
        .collect();
    KeyRing::new(specs, &kid(alg)).unwrap()
}

/// The expectations matching the test rings' issuer, audience "api", 30 s leeway.
pub(crate) fn expect() -> Expectations {
    Expectations {
        issuer: ISSUER.into(),
        audience: "api".into(),
        leeway_secs: 30,
    }
}

/// A 900-second grant for "alice" with role "dev".
pub(crate) fn grant(typ: TokenType) -> Grant<'static> {
    static ROLES: OnceLock<Vec<String>> = OnceLock::new();
    Grant {
        sub: "alice",
        roles: ROLES.get_or_init(|| vec!["dev".to_owned()]),
        extra: serde_json::Map::new(),
        typ,
        fam: None,
        ttl_secs: 900,
        authn: Default::default(),
    }
}
