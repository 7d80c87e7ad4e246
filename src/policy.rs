//! Route policy: who may pass once the token is known to be good.

use crate::config::raw::{Auth, ClaimValue};
use crate::token::Claims;

/// What a route demands of a request, compiled from routes.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Whether a token is needed at all.
    pub auth: Auth,
    /// At least one of these roles (empty = no requirement).
    pub roles_any: Box<[String]>,
    /// Every one of these roles.
    pub roles_all: Box<[String]>,
    /// Claims that must equal these values.
    pub claims: Box<[(String, ClaimValue)]>,
}

/// Why an authenticated request is refused (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Deny {
    /// The token lacks a role the route needs.
    #[error("missing role")]
    MissingRole,
    /// A claim is absent or has another value.
    #[error("claim mismatch")]
    ClaimMismatch,
}

impl Deny {
    /// The reason given to the client and the audit log.
    pub fn reason(self) -> &'static str {
        match self {
            Deny::MissingRole => "missing role",
            Deny::ClaimMismatch => "claim mismatch",
        }
    }
}

impl Policy {
    /// A public route: no token, no identity.
    pub fn public() -> Self {
        Policy {
            auth: Auth::None,
            roles_any: Box::new([]),
            roles_all: Box::new([]),
            claims: Box::new([]),
        }
    }

    /// Whether the route needs a verified token.
    pub fn requires_token(&self) -> bool {
        self.auth == Auth::Required
    }

    /// Decides on a verified token's claims.
    pub fn evaluate(&self, claims: &Claims) -> Result<(), Deny> {
        let has = |role: &String| claims.roles.iter().any(|r| r == role);
        if !self.roles_any.is_empty() && !self.roles_any.iter().any(has) {
            return Err(Deny::MissingRole);
        }
        if !self.roles_all.iter().all(has) {
            return Err(Deny::MissingRole);
        }
        let claim_ok = |(name, want): &(String, ClaimValue)| {
            claim_value(claims, name).is_some_and(|got| claim_equals(got, want))
        };
        if !self.claims.iter().all(claim_ok) {
            return Err(Deny::ClaimMismatch);
        }
        Ok(())
    }
}

/// A claim as JSON, looking at the registered claims first.
fn claim_value(claims: &Claims, name: &str) -> Option<serde_json::Value> {
    match name {
        "sub" => Some(serde_json::Value::from(claims.sub.as_str())),
        "iss" => Some(serde_json::Value::from(claims.iss.as_str())),
        _ => claims.extra.get(name).cloned(),
    }
}

fn claim_equals(got: serde_json::Value, want: &ClaimValue) -> bool {
    match want {
        ClaimValue::Str(s) => got.as_str() == Some(s.as_str()),
        ClaimValue::Int(i) => got.as_i64() == Some(*i),
        ClaimValue::Bool(b) => got.as_bool() == Some(*b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{Audience, TokenType};

    fn claims(roles: &[&str], extra: serde_json::Value) -> Claims {
        Claims {
            iss: "i".into(),
            aud: Audience::One("a".into()),
            sub: "alice".into(),
            iat: 0,
            nbf: 0,
            exp: 10,
            jti: "j".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            typ: TokenType::Access,
            fam: None,
            extra: extra.as_object().cloned().unwrap_or_default(),
        }
    }

    fn policy(any: &[&str], all: &[&str], want: &[(&str, ClaimValue)]) -> Policy {
        Policy {
            auth: Auth::Required,
            roles_any: any.iter().map(|r| r.to_string()).collect(),
            roles_all: all.iter().map(|r| r.to_string()).collect(),
            claims: want
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn any_valid_token_passes_a_policy_without_requirements() {
        let c = claims(&[], serde_json::json!({}));
        assert_eq!(policy(&[], &[], &[]).evaluate(&c), Ok(()));
    }

    #[test]
    fn roles_any_needs_one_of_the_roles() {
        let p = policy(&["admin", "ops"], &[], &[]);
        assert_eq!(p.evaluate(&claims(&["ops"], serde_json::json!({}))), Ok(()));
        let denied = p.evaluate(&claims(&["user"], serde_json::json!({})));
        assert_eq!(denied, Err(Deny::MissingRole));
    }

    #[test]
    fn roles_all_needs_every_role() {
        let p = policy(&[], &["a", "b"], &[]);
        assert_eq!(
            p.evaluate(&claims(&["b", "a"], serde_json::json!({}))),
            Ok(())
        );
        let denied = p.evaluate(&claims(&["a"], serde_json::json!({})));
        assert_eq!(denied, Err(Deny::MissingRole));
    }

    #[test]
    fn claims_must_be_present_and_equal_with_the_same_type() {
        let p = policy(&[], &[], &[("tenant", ClaimValue::Str("acme".into()))]);
        let ok = claims(&[], serde_json::json!({"tenant": "acme"}));
        assert_eq!(p.evaluate(&ok), Ok(()));
        for bad in [serde_json::json!({"tenant": "evil"}), serde_json::json!({})] {
            assert_eq!(p.evaluate(&claims(&[], bad)), Err(Deny::ClaimMismatch));
        }
        let int = policy(&[], &[], &[("level", ClaimValue::Int(3))]);
        let as_string = claims(&[], serde_json::json!({"level": "3"}));
        assert_eq!(int.evaluate(&as_string), Err(Deny::ClaimMismatch));
    }
}
