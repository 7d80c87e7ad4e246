//! Route policy: who may pass once the token is known to be good.
//!
//! Checks run in a fixed order, and the first failing one names the denial:
//! `roles_none` (forbidden role), `roles_any` / `roles_all` (missing role),
//! `scopes_any` / `scopes_all` (missing scope), then `claims` (claim mismatch). A token
//! that passes them all may still fall short of how the route wants the person signed in
//! (`authn`: second factor, method, provider, recent sign-in): that is a step-up, not a 403.

pub mod authn;
pub mod claims;
pub mod scopes;

use crate::token::Claims;
pub use authn::{AmrSet, AuthnDemand, Shortfall, StepUp};
pub use claims::{ClaimPath, ClaimRule, Condition, Scalar};

/// Whether a route needs a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    /// Public: no token checked, no identity added.
    None,
    /// A valid access token is needed (the default).
    #[default]
    Required,
}

/// What a route demands of a request, compiled from routes.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Whether a token is needed at all.
    pub auth: Auth,
    /// At least one of these roles (empty = no requirement).
    pub roles_any: Box<[String]>,
    /// Every one of these roles.
    pub roles_all: Box<[String]>,
    /// None of these roles.
    pub roles_none: Box<[String]>,
    /// At least one of these scopes (empty = no requirement).
    pub scopes_any: Box<[String]>,
    /// Every one of these scopes.
    pub scopes_all: Box<[String]>,
    /// Conditions on claims, all of which must hold.
    pub claims: Box<[ClaimRule]>,
    /// How the person must have signed in.
    pub authn: AuthnDemand,
}

/// Why an authenticated request is refused (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Deny {
    /// The token holds a role the route refuses.
    #[error("forbidden role")]
    ForbiddenRole,
    /// The token lacks a role the route needs.
    #[error("missing role")]
    MissingRole,
    /// The token lacks a scope the route needs.
    #[error("missing scope")]
    MissingScope,
    /// A claim is absent or has another value.
    #[error("claim mismatch")]
    ClaimMismatch,
}

impl Deny {
    /// The reason given to the client and the audit log.
    pub fn reason(self) -> &'static str {
        match self {
            Deny::ForbiddenRole => "forbidden role",
            Deny::MissingRole => "missing role",
            Deny::MissingScope => "missing scope",
            Deny::ClaimMismatch => "claim mismatch",
        }
    }
}

impl Policy {
    /// A public route: no token, no identity.
    pub fn public() -> Self {
        Policy {
            auth: Auth::None,
            ..Policy::any_token()
        }
    }

    /// Any valid access token passes.
    pub fn any_token() -> Self {
        Policy {
            auth: Auth::Required,
            roles_any: Box::new([]),
            roles_all: Box::new([]),
            roles_none: Box::new([]),
            scopes_any: Box::new([]),
            scopes_all: Box::new([]),
            claims: Box::new([]),
            authn: AuthnDemand::default(),
        }
    }

    /// Whether the route needs a verified token.
    pub fn requires_token(&self) -> bool {
        self.auth == Auth::Required
    }

    /// Whether the route asks anything of a token beyond its validity.
    pub fn has_demands(&self) -> bool {
        !(self.roles_any.is_empty()
            && self.roles_all.is_empty()
            && self.roles_none.is_empty()
            && self.scopes_any.is_empty()
            && self.scopes_all.is_empty()
            && self.claims.is_empty()
            && self.authn.is_empty())
    }

    /// Decides on a verified token's claims; never allocates.
    pub fn evaluate(&self, claims: &Claims) -> Result<(), Deny> {
        let has_role = |role: &String| claims.roles.iter().any(|r| r == role);
        if self.roles_none.iter().any(has_role) {
            return Err(Deny::ForbiddenRole);
        }
        if !any_or_empty(&self.roles_any, has_role) || !self.roles_all.iter().all(has_role) {
            return Err(Deny::MissingRole);
        }
        let has_scope = |scope: &String| scopes::has_scope(claims, scope);
        if !any_or_empty(&self.scopes_any, has_scope) || !self.scopes_all.iter().all(has_scope) {
            return Err(Deny::MissingScope);
        }
        if !self.claims.iter().all(|rule| rule.holds(claims)) {
            return Err(Deny::ClaimMismatch);
        }
        Ok(())
    }
}

/// An empty list is no requirement; otherwise one item must pass.
fn any_or_empty(items: &[String], pass: impl FnMut(&String) -> bool) -> bool {
    items.is_empty() || items.iter().any(pass)
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::token::{Audience, Claims, TokenType};

    /// A verified access token's claims for alice with `roles` and `extra`.
    pub(crate) fn claims(roles: &[&str], extra: serde_json::Value) -> Claims {
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
            amr: Vec::new(),
            auth_time: None,
            idp: None,
            extra: extra.as_object().cloned().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::claims;
    use super::*;
    use serde_json::json;

    fn list(items: &[&str]) -> Box<[String]> {
        items.iter().map(|r| r.to_string()).collect()
    }

    fn rule(path: &str, condition: Condition) -> ClaimRule {
        ClaimRule {
            path: ClaimPath::parse(path).unwrap(),
            condition,
        }
    }

    #[test]
    fn any_valid_token_passes_a_policy_without_requirements() {
        let c = claims(&[], json!({}));
        assert_eq!(Policy::any_token().evaluate(&c), Ok(()));
        assert!(!Policy::any_token().has_demands());
    }

    #[test]
    fn roles_any_needs_one_of_the_roles() {
        let p = Policy {
            roles_any: list(&["admin", "ops"]),
            ..Policy::any_token()
        };
        assert_eq!(p.evaluate(&claims(&["ops"], json!({}))), Ok(()));
        let denied = p.evaluate(&claims(&["user"], json!({})));
        assert_eq!(denied, Err(Deny::MissingRole));
    }

    #[test]
    fn roles_all_needs_every_role() {
        let p = Policy {
            roles_all: list(&["a", "b"]),
            ..Policy::any_token()
        };
        assert_eq!(p.evaluate(&claims(&["b", "a"], json!({}))), Ok(()));
        let denied = p.evaluate(&claims(&["a"], json!({})));
        assert_eq!(denied, Err(Deny::MissingRole));
    }

    #[test]
    fn roles_none_denies_any_listed_role_even_when_other_checks_pass() {
        let p = Policy {
            roles_any: list(&["staff"]),
            roles_none: list(&["suspended", "guest"]),
            ..Policy::any_token()
        };
        assert_eq!(p.evaluate(&claims(&["staff"], json!({}))), Ok(()));
        let suspended = claims(&["staff", "suspended"], json!({}));
        assert_eq!(p.evaluate(&suspended), Err(Deny::ForbiddenRole));
        // A forbidden role is named even when a required one is missing too.
        assert_eq!(
            p.evaluate(&claims(&["guest"], json!({}))),
            Err(Deny::ForbiddenRole)
        );
    }

    #[test]
    fn roles_none_looks_at_roles_not_at_other_claims() {
        let p = Policy {
            roles_none: list(&["suspended"]),
            ..Policy::any_token()
        };
        let c = claims(&[], json!({"groups": ["suspended"], "role": "suspended"}));
        assert_eq!(p.evaluate(&c), Ok(()));
    }

    #[test]
    fn scopes_any_and_all_read_scope_and_scp() {
        let any = Policy {
            scopes_any: list(&["orders:read", "orders:admin"]),
            ..Policy::any_token()
        };
        let all = Policy {
            scopes_all: list(&["orders:read", "orders:write"]),
            ..Policy::any_token()
        };
        let string = claims(&[], json!({"scope": "orders:write orders:read"}));
        let array = claims(&[], json!({"scp": ["orders:read"]}));
        assert_eq!(any.evaluate(&string), Ok(()));
        assert_eq!(any.evaluate(&array), Ok(()));
        assert_eq!(all.evaluate(&string), Ok(()));
        assert_eq!(all.evaluate(&array), Err(Deny::MissingScope));
        let none = claims(&[], json!({}));
        assert_eq!(any.evaluate(&none), Err(Deny::MissingScope));
    }

    #[test]
    fn scopes_are_not_roles_and_roles_are_not_scopes() {
        let needs_scope = Policy {
            scopes_any: list(&["admin"]),
            ..Policy::any_token()
        };
        let needs_role = Policy {
            roles_any: list(&["admin"]),
            ..Policy::any_token()
        };
        let role_only = claims(&["admin"], json!({}));
        let scope_only = claims(&[], json!({"scope": "admin"}));
        assert_eq!(needs_scope.evaluate(&role_only), Err(Deny::MissingScope));
        assert_eq!(needs_role.evaluate(&scope_only), Err(Deny::MissingRole));
    }

    #[test]
    fn claims_must_all_hold() {
        let p = Policy {
            claims: Box::new([
                rule("org.tenant", Condition::Equals(Scalar::Str("acme".into()))),
                rule("groups", Condition::Contains(Scalar::Str("ops".into()))),
            ]),
            ..Policy::any_token()
        };
        let ok = claims(
            &[],
            json!({"org": {"tenant": "acme"}, "groups": ["dev", "ops"]}),
        );
        assert_eq!(p.evaluate(&ok), Ok(()));
        let half = claims(&[], json!({"org": {"tenant": "acme"}, "groups": ["dev"]}));
        assert_eq!(p.evaluate(&half), Err(Deny::ClaimMismatch));
    }

    #[test]
    fn checks_run_in_documented_order() {
        let p = Policy {
            roles_any: list(&["staff"]),
            scopes_any: list(&["x"]),
            claims: Box::new([rule("t", Condition::Equals(Scalar::Int(1)))]),
            ..Policy::any_token()
        };
        let nothing = claims(&[], json!({}));
        assert_eq!(p.evaluate(&nothing), Err(Deny::MissingRole));
        let role = claims(&["staff"], json!({}));
        assert_eq!(p.evaluate(&role), Err(Deny::MissingScope));
        let scope = claims(&["staff"], json!({"scope": "x"}));
        assert_eq!(p.evaluate(&scope), Err(Deny::ClaimMismatch));
    }
}
