//! X-Auth-Assertion: a short-lived JWT the gateway signs for upstreams with
//! `assertion = true`, so an upstream can tell that a request came through the gateway and
//! was meant for it, even when something inside the network reaches it directly.
//!
//! The key is dedicated (`[assertion]` in gateway.toml): it is not in the ring that verifies
//! access tokens, so an assertion presented to the gateway as a bearer token is refused
//! (unknown key id), and its `typ` claim is "assertion", never "access".

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;

use crate::forward::headers::X_REQUEST_ID;
use crate::reject::Reject;
use crate::token::keys::{KeyMaterial, KeyRing, KeySpec};
use crate::token::{Alg, Claims};

/// The longest lifetime an assertion may have: it proves one request, not a session.
pub const MAX_TTL_SECS: u64 = 60;

/// The `typ` claim of every assertion.
pub const TYP: &str = "assertion";

/// The dedicated assertion key and the fixed parts of every assertion.
#[derive(Debug)]
pub struct Signer {
    /// A ring of this one key: it loads and checks the PEM and yields the JWK.
    ring: KeyRing,
    /// base64url of the JOSE header, computed once.
    header_b64: String,
    issuer: String,
    ttl_secs: u64,
}

/// Why an assertion key could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// HMAC would hand every verifying upstream the secret to forge assertions.
    #[error("alg {0} is a shared secret; an assertion key must be asymmetric (EdDSA, ES256, ES384, RS256 or PS256)")]
    Symmetric(Alg),
    /// The PEM does not fit the algorithm.
    #[error("{0}")]
    Material(String),
}

impl Signer {
    /// Loads a PKCS#8 PEM private key for `alg`; `ttl_secs` is capped by the caller's check.
    pub fn new(
        kid: &str,
        alg: Alg,
        pem: Vec<u8>,
        issuer: &str,
        ttl_secs: u64,
    ) -> Result<Signer, KeyError> {
        if alg.is_hmac() {
            return Err(KeyError::Symmetric(alg));
        }
        let spec = KeySpec {
            kid: kid.to_owned(),
            alg,
            material: KeyMaterial::PrivatePem(pem),
            verify_only: false,
        };
        let ring = KeyRing::new(vec![spec], kid).map_err(|errors| {
            let messages: Vec<String> = errors.into_iter().map(|e| e.message).collect();
            KeyError::Material(messages.join("; "))
        })?;
        let header = serde_json::json!({ "alg": alg.as_str(), "typ": "JWT", "kid": kid });
        Ok(Signer {
            ring,
            header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
            issuer: issuer.to_owned(),
            ttl_secs: ttl_secs.min(MAX_TTL_SECS),
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.ring.signer().kid
    }

    /// The public key as JWK Set entries, to publish beside the token keys.
    pub fn jwks_entries(&self) -> Vec<serde_json::Value> {
        match crate::token::jwks::jwks(&self.ring)["keys"].take() {
            serde_json::Value::Array(keys) => keys,
            _ => Vec::new(),
        }
    }

    /// Signs the assertion for one request.
    fn sign(&self, fields: &Fields<'_>) -> Option<String> {
        let payload = serde_json::to_vec(fields).ok()?;
        let mut token = String::with_capacity(self.header_b64.len() + payload.len() * 2 + 96);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let key = self.ring.signer();
        let signature =
            jsonwebtoken::crypto::sign(token.as_bytes(), &key.key, key.alg.jwt()).ok()?;
        token.push('.');
        token.push_str(&signature);
        Some(token)
    }
}

/// The claims of one assertion.
#[derive(Serialize)]
struct Fields<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    roles: &'a [String],
    route: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rid: Option<&'a str>,
    iat: u64,
    exp: u64,
    jti: &'a str,
    typ: &'static str,
}

/// What a route whose upstream wants assertions needs: the signer and the audience.
#[derive(Debug, Clone)]
pub struct RouteAssertion {
    /// The snapshot's assertion key.
    pub signer: Arc<Signer>,
    /// The upstream's name, the `aud` of its assertions.
    pub audience: Box<str>,
}

impl RouteAssertion {
    /// Sets `name` to a fresh assertion; X-Request-Id must already be in `headers`.
    pub fn add(
        &self,
        headers: &mut HeaderMap,
        name: &HeaderName,
        route: &str,
        claims: &Claims,
        now: u64,
    ) -> Result<(), Reject> {
        let request_id = headers.get(&X_REQUEST_ID).and_then(|v| v.to_str().ok());
        let Some(value) = self.sign(route, claims, request_id, now) else {
            tracing::error!(
                route,
                kid = self.signer.kid(),
                "cannot sign X-Auth-Assertion"
            );
            return Err(Reject::Internal);
        };
        headers.insert(name.clone(), value);
        Ok(())
    }

    /// Signs an assertion for `claims` on `route`, as a header value.
    ///
    /// `None` only if the key refuses to sign, which loading it already ruled out.
    pub fn sign(
        &self,
        route: &str,
        claims: &Claims,
        request_id: Option<&str>,
        now: u64,
    ) -> Option<HeaderValue> {
        let mut jti = [0u8; 32];
        let fields = Fields {
            iss: &self.signer.issuer,
            aud: &self.audience,
            sub: &claims.sub,
            roles: &claims.roles,
            route,
            rid: request_id,
            iat: now,
            exp: now.saturating_add(self.signer.ttl_secs),
            jti: uuid::Uuid::new_v4().simple().encode_lower(&mut jti),
            typ: TYP,
        };
        HeaderValue::try_from(self.signer.sign(&fields)?).ok()
    }
}

#[cfg(test)]
mod tests;
