//! Bearer extraction and token checks: the key by kid, the algorithm pinned by the key,
//! then times, issuer, audience and type against a caller-supplied clock.

use super::keys::{KeyRing, VerifyKey};
use super::{Claims, TokenType};
use compact::Compact;
use http::header::AUTHORIZATION;
use http::HeaderMap;

/// Longest token accepted; anything bigger is refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Why a bearer token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.reason())]
pub enum TokenError {
    /// No Authorization header.
    Missing,
    /// Not a well-formed bearer token or JWT.
    Malformed,
    /// The header has no kid.
    MissingKid,
    /// The kid names no key in the ring.
    UnknownKid,
    /// The header's alg is not the algorithm the key is pinned to.
    AlgMismatch,
    /// The signature does not verify.
    BadSignature,
    /// Past exp (plus leeway).
    Expired,
    /// Before nbf (minus leeway).
    NotYetValid,
    /// iat later than now plus leeway: no clock within the tolerated skew issued it.
    IssuedInFuture,
    /// iss is not the expected issuer.
    WrongIssuer,
    /// aud does not include the expected audience.
    WrongAudience,
    /// An access token where a refresh token is wanted, or the reverse.
    WrongType,
    /// A required claim is absent.
    MissingClaim(Claim),
}

/// A claim a token must carry: named in the refusal when it is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// `iss`.
    Iss,
    /// `aud`.
    Aud,
    /// `sub`.
    Sub,
    /// `exp`.
    Exp,
    /// `nbf`.
    Nbf,
    /// `iat`.
    Iat,
    /// `jti`.
    Jti,
    /// `typ`.
    Typ,
    /// `fam`, the sign-in a refresh token belongs to.
    Fam,
}

impl Claim {
    const ALL: [Claim; 9] = [
        Claim::Iss,
        Claim::Aud,
        Claim::Sub,
        Claim::Exp,
        Claim::Nbf,
        Claim::Iat,
        Claim::Jti,
        Claim::Typ,
        Claim::Fam,
    ];

    /// The claim's name in a token.
    pub fn name(self) -> &'static str {
        match self {
            Claim::Iss => "iss",
            Claim::Aud => "aud",
            Claim::Sub => "sub",
            Claim::Exp => "exp",
            Claim::Nbf => "nbf",
            Claim::Iat => "iat",
            Claim::Jti => "jti",
            Claim::Typ => "typ",
            Claim::Fam => "fam",
        }
    }

    /// The claim called `name`, if it is one a token must carry.
    pub fn from_name(name: &str) -> Option<Claim> {
        Claim::ALL.into_iter().find(|claim| claim.name() == name)
    }

    fn missing(self) -> &'static str {
        match self {
            Claim::Iss => "missing claim iss",
            Claim::Aud => "missing claim aud",
            Claim::Sub => "missing claim sub",
            Claim::Exp => "missing claim exp",
            Claim::Nbf => "missing claim nbf",
            Claim::Iat => "missing claim iat",
            Claim::Jti => "missing claim jti",
            Claim::Typ => "missing claim typ",
            Claim::Fam => "missing claim fam",
        }
    }
}

impl TokenError {
    /// Short reason for the 401 description and the audit log.
    pub fn reason(self) -> &'static str {
        match self {
            TokenError::Missing => "missing bearer token",
            TokenError::Malformed => "malformed token",
            TokenError::MissingKid => "token has no kid",
            TokenError::UnknownKid => "unknown key id",
            TokenError::AlgMismatch => "algorithm does not match the key",
            TokenError::BadSignature => "bad signature",
            TokenError::Expired => "token expired",
            TokenError::NotYetValid => "token not yet valid",
            TokenError::IssuedInFuture => "token issued in the future",
            TokenError::WrongIssuer => "wrong issuer",
            TokenError::WrongAudience => "wrong audience",
            TokenError::WrongType => "wrong token type",
            TokenError::MissingClaim(claim) => claim.missing(),
        }
    }
}

/// What a valid token must say, and how much clock skew to forgive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectations {
    /// Required iss.
    pub issuer: String,
    /// Audience that aud must contain.
    pub audience: String,
    /// Seconds of skew allowed on exp, nbf and iat.
    pub leeway_secs: u64,
}

/// The token from `Authorization: Bearer <token>`, or why there is none.
///
/// The scheme in any case, then one or more spaces (RFC 6750 2.1: `"Bearer" 1*SP b64token`),
/// then the token; no tab, and nothing after the token.
pub fn bearer(headers: &HeaderMap) -> Result<&str, TokenError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(TokenError::Missing)?;
    // Two Authorization headers are ambiguous; a proxy must not pick one.
    if values.next().is_some() {
        return Err(TokenError::Malformed);
    }
    let text = value.to_str().map_err(|_| TokenError::Malformed)?;
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    // RFC 6750 3.1: a request using another scheme carries no bearer credentials.
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::Missing);
    }
    let token = token.trim_start_matches(' ');
    let token_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if token.is_empty() || !token.bytes().all(token_byte) {
        return Err(TokenError::Malformed);
    }
    Ok(token)
}

/// Verifies `token` as a `typ` token at time `now` (seconds since the Unix epoch).
pub fn verify(
    ring: &KeyRing,
    expect: &Expectations,
    token: &str,
    typ: TokenType,
    now: u64,
) -> Result<Claims, TokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut compact = Compact::split(token)?;
    let (key, header_extras) = pick_key(ring, &compact)?;
    compact.check(key)?;
    compact.decode_payload()?;
    let mut claims = parse_claims(compact.payload_json())?;
    // serde keeps the last copy of a repeated custom claim; another reader may keep the first.
    // A repeated known member serde refuses itself (duplicate field), and the known claims
    // and header members hold no objects (but jwk), so only a payload with custom claims and
    // a header with extra members or a jwk need the full scan.
    let unique = super::dupkeys::unique_members;
    let custom = !claims.extra.is_empty();
    if (header_extras && !unique(compact.header_json()))
        || (custom && !unique(compact.payload_json()))
    {
        return Err(TokenError::Malformed);
    }
    // The identity headers must say what the token says, as providers' tokens must.
    if !super::fits_user_header(&claims.sub) {
        return Err(TokenError::Malformed);
    }
    claims.roles.retain(|role| super::fits_roles_header(role));
    check_claims(&claims, expect, typ, now)?;
    Ok(claims)
}

/// Chooses the key by kid and holds the header's alg to the key's pinned alg; also says
/// whether the header has members beyond jsonwebtoken's plain fields (extras or a jwk).
fn pick_key<'r>(ring: &'r KeyRing, compact: &Compact) -> Result<(&'r VerifyKey, bool), TokenError> {
    // The header is unauthenticated here: it only selects a key, never how to verify.
    // An alg jsonwebtoken does not know ("none" included) fails to parse: Malformed.
    let header = compact.header()?;
    // We implement no JWS extensions, so any critical one must be refused (RFC 7515 4.1.11).
    if header.crit {
        return Err(TokenError::Malformed);
    }
    let kid = header.kid.ok_or(TokenError::MissingKid)?;
    let key = ring.verifier(&kid).ok_or(TokenError::UnknownKid)?;
    if header.alg != key.alg.jwt() {
        return Err(TokenError::AlgMismatch);
    }
    Ok((key, header.extras))
}

/// Parses the (authenticated) payload straight into Claims, in one pass: every required
/// claim is a field without a default, so serde reports its absence as "missing field";
/// repeats are refused by the caller.
fn parse_claims(payload: &[u8]) -> Result<Claims, TokenError> {
    // UTF-8 checked once for the whole text (serde_json would check each string); text that
    // is not UTF-8 is read as bytes as before, so it is refused with the same reason.
    let parsed = match std::str::from_utf8(payload) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(payload),
    };
    parsed.map_err(|json| {
        missing_field(&json.to_string()).map_or(TokenError::Malformed, TokenError::MissingClaim)
    })
}

/// The required claim serde says is missing ("missing field `exp` at line 1 column 9").
fn missing_field(message: &str) -> Option<Claim> {
    let name = message.strip_prefix("missing field `")?.split('`').next()?;
    Claim::from_name(name)
}

/// Times, issuer, audience and type; also what a cached verification re-checks on a hit.
pub(crate) fn check_claims(
    claims: &Claims,
    expect: &Expectations,
    typ: TokenType,
    now: u64,
) -> Result<(), TokenError> {
    let leeway = expect.leeway_secs;
    // exp is the first second the token is no longer valid (RFC 7519 4.1.4).
    if now >= claims.exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if claims.nbf > now.saturating_add(leeway) {
        return Err(TokenError::NotYetValid);
    }
    // A later iat would let the token outlive a subject revocation (iat < cut-off).
    if claims.iat > now.saturating_add(leeway) {
        return Err(TokenError::IssuedInFuture);
    }
    if claims.iss != expect.issuer {
        return Err(TokenError::WrongIssuer);
    }
    if !claims.aud.contains(&expect.audience) {
        return Err(TokenError::WrongAudience);
    }
    if claims.typ != typ {
        return Err(TokenError::WrongType);
    }
    Ok(())
}

mod b64url;
mod compact;

#[cfg(test)]
mod claim_tests;
#[cfg(test)]
mod compact_tests;
#[cfg(test)]
mod tests;
