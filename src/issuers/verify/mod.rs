//! Access-token verification across issuers: pick the issuer by the unverified `iss`, then
//! verify only with that issuer's keys and map its claims into [`Claims`].

use std::borrow::Cow;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::Validation;
use serde_json::{Map, Value};

use super::Issuer;
use crate::config::snapshot::Snapshot;
use crate::token::verify::{Claim, TokenError, MAX_TOKEN_LEN};
use crate::token::{
    cache, dupkeys, fits_roles_header, fits_user_header, Alg, Audience, Claims, TokenType,
    ALL_ALGS, MAPPED_CLAIMS,
};

/// Verifies a bearer token as an access token of the gateway or of an external issuer.
///
/// With no `[[issuers]]` this is exactly the gateway's own check. Otherwise the token's
/// `iss` (read before any signature check, only to choose the keys) picks the gateway's own
/// path, an external issuer, or "wrong issuer".
///
/// The claims are shared with the per-thread cache of verified tokens, not copied.
pub fn verify_access(snap: &Snapshot, token: &str, now: u64) -> Result<Arc<Claims>, TokenError> {
    // The gateway's own tokens go through the per-thread cache of verified tokens.
    let own = || cache::verify(&snap.keys, &snap.expect, token, TokenType::Access, now);
    if snap.issuers.is_empty() {
        return own();
    }
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let iss = peek_issuer(token)?;
    if iss == snap.expect.issuer {
        return own();
    }
    let issuer = snap.issuers.find(&iss).ok_or(TokenError::WrongIssuer)?;
    verify_external(issuer, token, snap.expect.leeway_secs, now).map(Arc::new)
}

/// The `iss` of an unverified token; it only selects keys, it is checked again after.
fn peek_issuer(token: &str) -> Result<String, TokenError> {
    #[derive(serde::Deserialize)]
    struct Peek<'a> {
        #[serde(borrow)]
        iss: Option<Cow<'a, str>>,
    }
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    // A duplicate "iss" is an error here, so the issuer chosen cannot differ from the one
    // the claims say after verification.
    let peek: Peek<'_> = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    let iss = peek.iss.ok_or(TokenError::MissingClaim(Claim::Iss))?;
    Ok(iss.into_owned())
}

/// Verifies `token` with `issuer`'s keys only; an unknown kid may wake its fetcher.
pub(crate) fn verify_external(
    issuer: &Issuer,
    token: &str,
    leeway: u64,
    now: u64,
) -> Result<Claims, TokenError> {
    verify_external_with(issuer, token, leeway, now, Subject::Required)
}

/// Whether a token must name a subject.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subject {
    /// `sub` must be there (bearer tokens, ID tokens).
    Required,
    /// `sub` may be absent, then "" (a back-channel logout token may name only a `sid`).
    Optional,
}

/// [`verify_external`], with `sub` required or not.
pub(crate) fn verify_external_with(
    issuer: &Issuer,
    token: &str,
    leeway: u64,
    now: u64,
    subject: Subject,
) -> Result<Claims, TokenError> {
    // The header only selects a key. jku, x5u, x5c and jwk are never read: keys come from
    // the configured JWK Set alone.
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.crit.is_some() {
        return Err(TokenError::Malformed);
    }
    let alg = ALL_ALGS
        .into_iter()
        .find(|a| a.jwt() == header.alg)
        .filter(|a| issuer.algorithms.contains(*a))
        .ok_or(TokenError::AlgMismatch)?;
    let kid = header.kid.ok_or(TokenError::MissingKid)?;
    let keys = issuer.live.keys.load();
    let Some(key) = keys.keys.get(&kid) else {
        issuer.live.kid_missed(issuer.unknown_kid_refetch);
        return Err(TokenError::UnknownKid);
    };
    if !key.algs.contains(alg) {
        return Err(TokenError::AlgMismatch);
    }
    let claims = decode(token, alg, &key.key)?;
    // The map keeps the last copy of a repeated claim; the upstream may read the first.
    if !dupkeys::token_members_unique(token) {
        return Err(TokenError::Malformed);
    }
    map_claims(issuer, claims, leeway, now, subject)
}

fn decode(
    token: &str,
    alg: Alg,
    key: &jsonwebtoken::DecodingKey,
) -> Result<Map<String, Value>, TokenError> {
    let mut validation = Validation::new(alg.jwt());
    // Times, issuer and audience are checked below against the caller's clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            _ => TokenError::Malformed,
        })
}

/// Required: iss, sub, aud, exp. Optional: nbf, iat (0 when absent: any subject-wide
/// revocation then covers the token), jti (revocation by jti only when present).
fn map_claims(
    issuer: &Issuer,
    mut map: Map<String, Value>,
    leeway: u64,
    now: u64,
    subject: Subject,
) -> Result<Claims, TokenError> {
    let exp = time(&map, "exp")?.ok_or(TokenError::MissingClaim(Claim::Exp))?;
    let nbf = time(&map, "nbf")?.unwrap_or(0);
    let iat = time(&map, "iat")?.unwrap_or(0);
    if now >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if nbf > now.saturating_add(leeway) {
        return Err(TokenError::NotYetValid);
    }
    // A later iat would let the token outlive a subject revocation (iat < cut-off).
    if iat > now.saturating_add(leeway) {
        return Err(TokenError::IssuedInFuture);
    }
    let iss = text(&map, "iss")?.ok_or(TokenError::MissingClaim(Claim::Iss))?;
    if iss != issuer.issuer {
        return Err(TokenError::WrongIssuer);
    }
    let aud: Audience = map
        .get("aud")
        .map(|aud| serde_json::from_value(aud.clone()).map_err(|_| TokenError::Malformed))
        .ok_or(TokenError::MissingClaim(Claim::Aud))??;
    if !aud.contains(&issuer.audience) {
        return Err(TokenError::WrongAudience);
    }
    let sub = match (text(&map, "sub")?, subject) {
        (Some(sub), _) => sub,
        (None, Subject::Optional) => String::new(),
        (None, Subject::Required) => return Err(TokenError::MissingClaim(Claim::Sub)),
    };
    // The subject becomes the user header: one the upstream could not receive is refused.
    let unnamed = sub.is_empty() && subject == Subject::Optional;
    if !unnamed && !fits_user_header(&sub) {
        return Err(TokenError::Malformed);
    }
    let jti = text(&map, "jti")?.unwrap_or_default();
    let roles = roles_at(&map, &issuer.roles_claim);
    let amr = method_list(&map);
    let auth_time = time(&map, "auth_time")?;
    map.retain(|name, _| !MAPPED_CLAIMS.contains(&name.as_str()));
    Ok(Claims {
        iss,
        aud,
        sub,
        iat,
        nbf,
        exp,
        jti,
        roles,
        typ: TokenType::Access,
        fam: None,
        amr,
        auth_time,
        idp: None,
        extra: map,
    })
}

/// The provider's `amr` values that are strings (RFC 8176 makes it an array of them).
fn method_list(map: &Map<String, Value>) -> Vec<String> {
    let Some(Value::Array(methods)) = map.get("amr") else {
        return Vec::new();
    };
    let strings = methods.iter().filter_map(Value::as_str);
    strings.map(str::to_owned).collect()
}

/// A NumericDate claim (RFC 7519 2: may have a fraction, which is dropped).
fn time(map: &Map<String, Value>, name: &str) -> Result<Option<u64>, TokenError> {
    match map.get(name) {
        None => Ok(None),
        Some(value) => match (value.as_u64(), value.as_f64()) {
            (Some(secs), _) => Ok(Some(secs)),
            (None, Some(secs)) if secs.is_finite() && secs >= 0.0 => Ok(Some(secs as u64)),
            _ => Err(TokenError::Malformed),
        },
    }
}

fn text(map: &Map<String, Value>, name: &str) -> Result<Option<String>, TokenError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(TokenError::Malformed),
    }
}

/// The roles at a claim path: an array of strings or one string; absent means none.
///
/// A role the roles header cannot carry as one item ([`fits_roles_header`]: empty, a comma,
/// a control character, a space at either end) is dropped: "a,admin" must not become two.
fn roles_at(map: &Map<String, Value>, path: &[String]) -> Vec<String> {
    let mut segments = path.iter();
    let Some(first) = segments.next() else {
        return Vec::new();
    };
    let mut at = map.get(first.as_str());
    for segment in segments {
        at = at.and_then(|v| v.get(segment.as_str()));
    }
    let usable = |role: &&str| fits_roles_header(role);
    match at {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(usable)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(one)) => Some(one.as_str())
            .filter(usable)
            .map(str::to_owned)
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
