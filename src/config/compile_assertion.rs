//! `[assertion]` -> the dedicated key that signs X-Auth-Assertion, and the JWKS it joins.

use std::path::Path;
use std::sync::Arc;

use super::raw::GatewayFile;
use super::read::{read_bytes, Diag};
use crate::assertion::{Signer, MAX_TTL_SECS};
use crate::token::keys::KeyRing;

/// Loads the assertion key when `[assertion]` is present; None if absent or after errors.
pub(crate) fn load(
    diag: &mut Diag<'_>,
    base: &Path,
    file: &GatewayFile,
    ring: Option<&KeyRing>,
) -> Option<Arc<Signer>> {
    let section = file.assertion.as_ref()?;
    let raw = section.get_ref();
    let kid = raw.kid.get_ref();
    let mut ok = true;
    if kid.is_empty() || ring.is_some_and(|ring| ring.kids().any(|k| k == kid)) {
        let why = "kid must be non-empty and differ from every [[keys]] kid (the assertion key never signs or verifies access tokens)";
        diag.at(raw.kid.span(), format!("[assertion] kid \"{kid}\": {why}"));
        ok = false;
    }
    let ttl = raw.ttl.get_ref().get();
    if ttl.as_secs() == 0 || ttl.as_secs() > MAX_TTL_SECS || ttl.subsec_nanos() != 0 {
        let message = format!("[assertion] ttl must be whole seconds from 1s to {MAX_TTL_SECS}s: an assertion proves one request");
        diag.at(raw.ttl.span(), message);
        ok = false;
    }
    let pem = read_bytes(diag, base, &raw.private_key, "assertion private key")?;
    let alg = *raw.alg.get_ref();
    let issuer = file.tokens.issuer.get_ref();
    match Signer::new(kid, alg, pem, issuer, ttl.as_secs()) {
        Ok(signer) => ok.then(|| Arc::new(signer)),
        Err(err) => {
            let span = match err {
                crate::assertion::KeyError::Symmetric(_) => raw.alg.span(),
                crate::assertion::KeyError::Material(_) => raw.private_key.span(),
            };
            diag.at(span, format!("[assertion]: {err}"));
            None
        }
    }
}

/// The JWK Set served at /.well-known/jwks.json: the token keys, then the assertion key.
pub(crate) fn jwks(ring: &KeyRing, assertion: Option<&Signer>) -> bytes::Bytes {
    let mut set = crate::token::jwks::jwks(ring);
    if let (Some(signer), Some(keys)) = (assertion, set["keys"].as_array_mut()) {
        keys.extend(signer.jwks_entries());
    }
    bytes::Bytes::from(set.to_string())
}
