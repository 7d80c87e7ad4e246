//! Minting access and refresh tokens with the ring's signing key.

use jsonwebtoken::Header;

use super::keys::KeyRing;
use super::{
    fits_roles_header, fits_user_header, Audience, Authn, Claims, TokenType, RESERVED_CLAIMS,
};

/// What a token grants, and for how long.
#[derive(Clone, Debug)]
pub struct Grant<'a> {
    /// Subject (user name).
    pub sub: &'a str,
    /// Roles to carry in the token.
    pub roles: &'a [String],
    /// Further claims; may not reuse a reserved claim name.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Access or refresh.
    pub typ: TokenType,
    /// Refresh family id, if any.
    pub fam: Option<String>,
    /// Lifetime in seconds.
    pub ttl_secs: u64,
    /// How the person signed in (empty for tokens the CLI mints).
    pub authn: Authn,
}

/// Why a token could not be minted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// An extra claim tried to set a claim portcullis sets itself.
    #[error("extra claim {0:?} is reserved")]
    ReservedClaim(String),
    /// The subject cannot be carried unchanged in the user header.
    #[error("subject cannot be carried in an identity header")]
    BadSubject,
    /// A role holds a comma, a control character or a space at either end, or is empty.
    #[error("role {0:?} cannot be carried in the roles header")]
    BadRole(String),
    /// now + ttl does not fit in a timestamp.
    #[error("token lifetime overflows the clock")]
    TtlOverflow,
    /// The signing key refused to sign.
    #[error("signing with key {kid:?} failed")]
    Sign {
        /// The signing key's id.
        kid: String,
    },
}

/// Signs a token for `grant` with a fresh `jti`, returning it with the claims it carries.
pub fn mint(
    ring: &KeyRing,
    issuer: &str,
    audience: &str,
    grant: Grant<'_>,
    now: u64,
) -> Result<(String, Claims), MintError> {
    mint_as(ring, issuer, audience, grant, now, new_id())
}

/// `mint` with the `jti` given: refresh rotation fixes a pair's ids before signing it, so
/// that a retry signs the same pair again.
pub fn mint_as(
    ring: &KeyRing,
    issuer: &str,
    audience: &str,
    grant: Grant<'_>,
    now: u64,
    jti: String,
) -> Result<(String, Claims), MintError> {
    // A flattened duplicate would shadow or contradict the real claim when decoded.
    if let Some(name) = grant
        .extra
        .keys()
        .find(|k| RESERVED_CLAIMS.contains(&k.as_str()))
    {
        return Err(MintError::ReservedClaim(name.clone()));
    }
    // Verification refuses such a sub and drops such roles: never mint what it would change.
    if !fits_user_header(grant.sub) {
        return Err(MintError::BadSubject);
    }
    if let Some(role) = grant.roles.iter().find(|r| !fits_roles_header(r)) {
        return Err(MintError::BadRole(role.clone()));
    }
    let exp = now
        .checked_add(grant.ttl_secs)
        .ok_or(MintError::TtlOverflow)?;
    let claims = Claims {
        iss: issuer.to_owned(),
        aud: Audience::One(audience.to_owned()),
        sub: grant.sub.to_owned(),
        iat: now,
        nbf: now,
        exp,
        jti,
        roles: grant.roles.to_vec(),
        typ: grant.typ,
        fam: grant.fam,
        amr: grant.authn.amr,
        auth_time: grant.authn.auth_time,
        idp: grant.authn.idp,
        extra: grant.extra,
    };
    let signer = ring.signer();
    let mut header = Header::new(signer.alg.jwt());
    header.kid = Some(signer.kid.clone());
    let token =
        jsonwebtoken::encode(&header, &claims, &signer.key).map_err(|_| MintError::Sign {
            kid: signer.kid.clone(),
        })?;
    Ok((token, claims))
}

/// A fresh random id (uuid v4, 32 hex digits) for jti and refresh families.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::test_support::{grant, ring_for, ISSUER};
    use crate::token::Alg;

    #[test]
    fn header_carries_signer_kid_and_alg() {
        let ring = ring_for(Alg::ES256);
        let (token, _) = mint(&ring, ISSUER, "api", grant(TokenType::Access), 1000).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("es256"));
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    }

    #[test]
    fn times_come_from_now_and_ttl() {
        let ring = ring_for(Alg::HS256);
        let (_, claims) = mint(&ring, ISSUER, "api", grant(TokenType::Access), 1000).unwrap();
        assert_eq!((claims.iat, claims.nbf, claims.exp), (1000, 1000, 1900));
        assert_eq!(claims.iss, ISSUER);
        assert_eq!(claims.aud, Audience::One("api".into()));
    }

    #[test]
    fn every_token_gets_a_fresh_jti() {
        let ring = ring_for(Alg::HS256);
        let (_, a) = mint(&ring, ISSUER, "api", grant(TokenType::Access), 1).unwrap();
        let (_, b) = mint(&ring, ISSUER, "api", grant(TokenType::Access), 1).unwrap();
        assert_ne!(a.jti, b.jti);
        assert_eq!(a.jti.len(), 32);
        assert!(a.jti.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn extra_claims_may_not_override_reserved_ones() {
        let ring = ring_for(Alg::HS256);
        let mut g = grant(TokenType::Access);
        g.extra.insert("sub".into(), "root".into());
        let err = mint(&ring, ISSUER, "api", g, 1).unwrap_err();
        assert_eq!(err, MintError::ReservedClaim("sub".into()));
    }

    #[test]
    fn a_sub_or_role_the_identity_headers_cannot_carry_is_not_minted() {
        let ring = ring_for(Alg::HS256);
        let mut g = grant(TokenType::Access);
        g.sub = "al\nice";
        assert_eq!(
            mint(&ring, ISSUER, "api", g, 1).unwrap_err(),
            MintError::BadSubject
        );
        let roles = ["staff,admin".to_string()];
        let mut g = grant(TokenType::Access);
        g.roles = &roles;
        let err = mint(&ring, ISSUER, "api", g, 1).unwrap_err();
        assert_eq!(err, MintError::BadRole("staff,admin".into()));
    }

    #[test]
    fn ttl_overflow_is_an_error_not_a_wrap() {
        let ring = ring_for(Alg::HS256);
        let mut g = grant(TokenType::Access);
        g.ttl_secs = u64::MAX;
        assert_eq!(
            mint(&ring, ISSUER, "api", g, 5).unwrap_err(),
            MintError::TtlOverflow
        );
    }

    #[test]
    fn family_is_omitted_from_the_payload_when_absent() {
        let ring = ring_for(Alg::HS256);
        let (_, access) = mint(&ring, ISSUER, "api", grant(TokenType::Access), 1).unwrap();
        let json = serde_json::to_value(&access).unwrap();
        assert!(json.get("fam").is_none());
        let mut g = grant(TokenType::Refresh);
        g.fam = Some(new_id());
        let (_, refresh) = mint(&ring, ISSUER, "api", g, 1).unwrap();
        assert_eq!(serde_json::to_value(&refresh).unwrap()["typ"], "refresh");
        assert!(refresh.fam.is_some());
    }
}
