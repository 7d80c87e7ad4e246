//! Tokens: the key ring, bearer verification and minting, plus the claim types they share.

pub mod cache;
mod claims_json;
pub mod dupkeys;
pub mod jwks;
pub mod keys;
pub mod mint;
pub mod verify;

#[cfg(test)]
pub(crate) mod test_support;

use serde::{Deserialize, Serialize};

/// Signature algorithms portcullis accepts; each key is pinned to exactly one.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum Alg {
    /// HMAC with SHA-256 (shared secret of at least 32 bytes).
    HS256,
    /// HMAC with SHA-384 (shared secret of at least 48 bytes).
    HS384,
    /// HMAC with SHA-512 (shared secret of at least 64 bytes).
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

/// Every supported algorithm, in the order error messages list them.
pub const ALL_ALGS: [Alg; 8] = [
    Alg::HS256,
    Alg::HS384,
    Alg::HS512,
    Alg::RS256,
    Alg::PS256,
    Alg::ES256,
    Alg::ES384,
    Alg::EdDSA,
];

impl Alg {
    /// The matching jsonwebtoken algorithm.
    pub fn jwt(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as J;
        match self {
            Alg::HS256 => J::HS256,
            Alg::HS384 => J::HS384,
            Alg::HS512 => J::HS512,
            Alg::RS256 => J::RS256,
            Alg::PS256 => J::PS256,
            Alg::ES256 => J::ES256,
            Alg::ES384 => J::ES384,
            Alg::EdDSA => J::EdDSA,
        }
    }

    /// True for the shared-secret (HMAC) algorithms.
    pub fn is_hmac(self) -> bool {
        matches!(self, Alg::HS256 | Alg::HS384 | Alg::HS512)
    }

    /// The JOSE name, as written in a token header and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::RS256 => "RS256",
            Alg::PS256 => "PS256",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An algorithm name that portcullis does not support.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown algorithm {name:?} (expected one of: HS256, HS384, HS512, RS256, PS256, ES256, ES384, EdDSA)")]
pub struct UnknownAlg {
    /// The name that was given.
    pub name: String,
}

impl std::str::FromStr for Alg {
    type Err = UnknownAlg;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Exact, case-sensitive match: JOSE names are case-sensitive.
        ALL_ALGS
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAlg { name: s.to_owned() })
    }
}

/// Whether a token grants access to routes or only buys a new pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Short-lived token presented to protected routes.
    Access,
    /// Longer-lived token accepted only by the refresh endpoint.
    Refresh,
}

/// The `aud` claim: one audience string or an array of them (RFC 7519 allows both).
///
/// Read by a hand-written `Deserialize` (in `claims_json`), which accepts what
/// `#[serde(untagged)]` did without buffering the value first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience string.
    One(String),
    /// An array of audiences.
    Many(Vec<String>),
}

impl Audience {
    /// True when `aud` names the given audience.
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(one) => one == aud,
            Audience::Many(many) => many.iter().any(|a| a == aud),
        }
    }
}

/// Claims carried by every portcullis token.
///
/// Read by a hand-written `Deserialize` (in `claims_json`): one pass, no buffering of the
/// flattened `extra`.
#[derive(Clone, Debug, Serialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: Audience,
    /// Subject (the user name).
    pub sub: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Not valid before, seconds since the Unix epoch.
    pub nbf: u64,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Unique token id, the handle for revocation.
    pub jti: String,
    /// Roles granted to the subject.
    pub roles: Vec<String>,
    /// Access or refresh.
    pub typ: TokenType,
    /// Refresh family id, shared by every refresh token of one login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
    /// Authentication methods (RFC 8176) of the sign-in this token descends from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// When that sign-in happened, seconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// The identity provider that signed the person in, when it was not this gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
    /// Any further claims, kept for policy checks on custom claims.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Claim names portcullis sets itself; `extra` may not carry them.
pub const RESERVED_CLAIMS: [&str; 13] = [
    "iss",
    "aud",
    "sub",
    "iat",
    "nbf",
    "exp",
    "jti",
    "roles",
    "typ",
    "fam",
    "amr",
    "auth_time",
    "idp",
];

/// The reserved claims a provider's token maps to fields of `Claims`; its `amr`,
/// `auth_time` and `idp` stay in `extra` too, for claim rules and claim headers.
pub const MAPPED_CLAIMS: [&str; 10] = [
    "iss", "aud", "sub", "iat", "nbf", "exp", "jti", "roles", "typ", "fam",
];

/// How and when the person behind a token family signed in; a refresh keeps it unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Authn {
    /// RFC 8176 method values, e.g. `pwd`, `otp`, `hwk`, `mfa`.
    pub amr: Vec<String>,
    /// When the sign-in happened, seconds since the Unix epoch.
    pub auth_time: Option<u64>,
    /// The identity provider's id, for a sign-in through one.
    pub idp: Option<String>,
}

impl Authn {
    /// A sign-in with this gateway's password check at `now`.
    pub fn password(now: u64) -> Authn {
        Authn {
            amr: vec!["pwd".to_owned()],
            auth_time: Some(now),
            idp: None,
        }
    }

    /// What a token of the family says about its sign-in.
    pub fn of(claims: &Claims) -> Authn {
        Authn {
            amr: claims.amr.clone(),
            auth_time: claims.auth_time,
            idp: claims.idp.clone(),
        }
    }
}

/// Whether `sub` reaches an upstream unchanged as the user header: not empty, no control
/// character (a header value cannot carry one), no space at either end (HTTP parsers trim
/// it, so " admin" would arrive as "admin").
pub fn fits_user_header(sub: &str) -> bool {
    !sub.is_empty()
        && !sub.starts_with(' ')
        && !sub.ends_with(' ')
        && !sub.chars().any(char::is_control)
}

/// Whether `role` is one unambiguous item of the comma-separated roles header: the user
/// header rule, and no comma ("staff,admin" would arrive as two roles).
pub fn fits_roles_header(role: &str) -> bool {
    fits_user_header(role) && !role.contains(',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_rules_refuse_what_an_upstream_would_read_differently() {
        for bad in ["", " admin", "admin ", "a\nb", "a\tb", "a\u{7f}"] {
            assert!(!fits_user_header(bad) && !fits_roles_header(bad), "{bad:?}");
        }
        assert!(fits_user_header("auth0|abc def") && fits_user_header("alicé"));
        assert!(fits_user_header("staff,admin") && !fits_roles_header("staff,admin"));
        assert!(fits_roles_header("org:read write"));
    }

    #[test]
    fn alg_names_round_trip_through_from_str_and_serde() {
        for alg in ALL_ALGS {
            assert_eq!(alg.as_str().parse::<Alg>(), Ok(alg));
            let json = serde_json::to_string(&alg).unwrap();
            assert_eq!(json, format!("\"{}\"", alg.as_str()));
            assert_eq!(alg.jwt(), alg.as_str().parse().unwrap());
        }
    }

    #[test]
    fn alg_parse_rejects_none_and_wrong_case() {
        assert!("none".parse::<Alg>().is_err());
        assert!("hs256".parse::<Alg>().is_err());
        assert!("RS384".parse::<Alg>().is_err());
    }

    #[test]
    fn only_hs_algs_are_hmac() {
        let hmac: Vec<Alg> = ALL_ALGS.into_iter().filter(|a| a.is_hmac()).collect();
        assert_eq!(hmac, vec![Alg::HS256, Alg::HS384, Alg::HS512]);
    }

    #[test]
    fn audience_accepts_string_or_array() {
        let one: Audience = serde_json::from_str("\"api\"").unwrap();
        let many: Audience = serde_json::from_str("[\"web\",\"api\"]").unwrap();
        assert!(one.contains("api") && many.contains("api"));
        assert!(!one.contains("web") && !many.contains("admin"));
    }

    #[test]
    fn token_type_serializes_lowercase() {
        assert_eq!(
            serde_json::to_string(&TokenType::Refresh).unwrap(),
            "\"refresh\""
        );
    }
}
