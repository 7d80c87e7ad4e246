//! How the person signed in, as a route demands it: a second factor (`mfa`), one of some
//! methods (`amr_any`), a provider (`idp_any`), a recent sign-in (`max_auth_age`).
//!
//! A token that falls short is not forbidden: the same person can sign in again, or add a
//! second factor, and then pass. So the answer is RFC 9470's step-up challenge (401
//! `insufficient_user_authentication`), never a 403.

use crate::token::Claims;

/// The RFC 8176 authentication method reference values, in the order `AmrSet` numbers them.
pub const AMR_VALUES: [&str; 21] = [
    "face", "fpt", "geo", "hwk", "iris", "kba", "mca", "mfa", "otp", "pin", "pop", "pwd", "rba",
    "retina", "sc", "sms", "swk", "tel", "user", "vbm", "wia",
];

/// A set of RFC 8176 method values, one bit each; copied freely, never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AmrSet(u32);

impl AmrSet {
    /// The set holding only `mfa`.
    pub const MFA: AmrSet = AmrSet(1 << 7);

    /// The set of these names, or the first name that is not an RFC 8176 value.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<AmrSet, &'a str> {
        let mut set = AmrSet::default();
        for name in names {
            set.0 |= Self::bit(name).ok_or(name)?;
        }
        Ok(set)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether any of the token's `amr` values is in the set.
    pub fn any_in(self, amr: &[String]) -> bool {
        amr.iter()
            .any(|value| Self::bit(value).is_some_and(|bit| self.0 & bit != 0))
    }

    /// Both sets together.
    pub fn union(self, other: AmrSet) -> AmrSet {
        AmrSet(self.0 | other.0)
    }

    /// The names in the set, in RFC 8176 order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        AMR_VALUES
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, name)| *name)
    }

    fn bit(name: &str) -> Option<u32> {
        AMR_VALUES.iter().position(|v| *v == name).map(|i| 1 << i)
    }
}

/// What a route demands of the sign-in behind a token (all empty: nothing).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthnDemand {
    /// The token's `amr` must hold `mfa`.
    pub mfa: bool,
    /// The token's `amr` must hold at least one of these (empty = no requirement).
    pub amr_any: AmrSet,
    /// The token's `idp` must be one of these providers (empty = no requirement).
    pub idp_any: Box<[String]>,
    /// The sign-in (`auth_time`) must be at most this many seconds old.
    pub max_auth_age: Option<u64>,
}

/// Why a token's sign-in falls short of a route's demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    /// No `mfa` in `amr`.
    SecondFactor,
    /// None of the methods the route names.
    Method,
    /// Signed in through another provider, or none.
    Provider,
    /// `auth_time` absent or older than `max_auth_age`.
    TooOld,
}

/// A refused sign-in: why, and what the client must come back with (RFC 9470).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepUp {
    /// The first demand the token missed.
    pub shortfall: Shortfall,
    /// Methods that would pass, named as `acr_values` (empty: no method demand).
    pub acr_values: AmrSet,
    /// The route's `max_auth_age` in seconds, named as `max_age`.
    pub max_age: Option<u64>,
}

impl StepUp {
    /// The human reason: for the client and the audit log.
    pub fn reason(self) -> &'static str {
        match self.shortfall {
            Shortfall::SecondFactor => "this route needs a sign-in with a second factor",
            Shortfall::Method => "this route needs another authentication method",
            Shortfall::Provider => "this route needs a sign-in through another identity provider",
            Shortfall::TooOld => "the sign-in is too old for this route",
        }
    }

    /// Whether a one-time code added to this sign-in helps; otherwise only a new sign-in
    /// (with another provider, a recent time, or another method such as a passkey) does.
    pub fn code_helps(self) -> bool {
        self.shortfall == Shortfall::SecondFactor
    }
}

impl AuthnDemand {
    /// Whether the route demands anything of the sign-in.
    pub fn is_empty(&self) -> bool {
        !self.mfa
            && self.amr_any.is_empty()
            && self.idp_any.is_empty()
            && self.max_auth_age.is_none()
    }

    /// Decides on a verified token's claims at `now`; never allocates. Age and provider
    /// come first: when either fails, only a new sign-in helps, whatever else is missing.
    pub fn check(&self, claims: &Claims, now: u64) -> Result<(), StepUp> {
        let refuse = |shortfall| StepUp {
            shortfall,
            acr_values: self.acr_values(),
            max_age: self.max_auth_age,
        };
        if let Some(max) = self.max_auth_age {
            let recent = claims
                .auth_time
                .is_some_and(|at| at <= now.saturating_add(60) && now.saturating_sub(at) <= max);
            if !recent {
                return Err(refuse(Shortfall::TooOld));
            }
        }
        if !self.idp_any.is_empty() {
            let idp = claims.idp.as_deref();
            if !self.idp_any.iter().any(|id| Some(id.as_str()) == idp) {
                return Err(refuse(Shortfall::Provider));
            }
        }
        if self.mfa && !AmrSet::MFA.any_in(&claims.amr) {
            return Err(refuse(Shortfall::SecondFactor));
        }
        if !self.amr_any.is_empty() && !self.amr_any.any_in(&claims.amr) {
            return Err(refuse(Shortfall::Method));
        }
        Ok(())
    }

    /// The methods the challenge names: `mfa` for `mfa = true`, then `amr_any`.
    fn acr_values(&self) -> AmrSet {
        let mfa = if self.mfa {
            AmrSet::MFA
        } else {
            AmrSet::default()
        };
        mfa.union(self.amr_any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_support::claims;
    use serde_json::json;

    fn signed_in(amr: &[&str], auth_time: Option<u64>, idp: Option<&str>) -> Claims {
        let mut c = claims(&[], json!({}));
        c.amr = amr.iter().map(|m| m.to_string()).collect();
        c.auth_time = auth_time;
        c.idp = idp.map(str::to_owned);
        c
    }

    #[test]
    fn amr_names_outside_rfc_8176_are_refused() {
        assert_eq!(
            AmrSet::parse(["hwk", "otp"]).map(|s| s.names().count()),
            Ok(2)
        );
        assert_eq!(AmrSet::parse(["hwk", "HWK"]), Err("HWK"));
        assert_eq!(AmrSet::parse(["password"]), Err("password"));
    }

    #[test]
    fn mfa_needs_the_mfa_value_not_just_another_method() {
        let demand = AuthnDemand {
            mfa: true,
            ..AuthnDemand::default()
        };
        let pwd = signed_in(&["pwd"], Some(100), None);
        let refused = demand.check(&pwd, 100).unwrap_err();
        assert_eq!(refused.shortfall, Shortfall::SecondFactor);
        assert_eq!(refused.acr_values.names().collect::<Vec<_>>(), ["mfa"]);
        assert!(refused.code_helps());
        let hwk_alone = signed_in(&["hwk"], Some(100), None);
        assert!(demand.check(&hwk_alone, 100).is_err());
        let both = signed_in(&["pwd", "otp", "mfa"], Some(100), None);
        assert_eq!(demand.check(&both, 100), Ok(()));
    }

    #[test]
    fn amr_any_needs_one_listed_method() {
        let demand = AuthnDemand {
            amr_any: AmrSet::parse(["hwk", "swk"]).unwrap(),
            ..AuthnDemand::default()
        };
        let otp = signed_in(&["pwd", "otp", "mfa"], Some(1), None);
        assert_eq!(
            demand.check(&otp, 1).unwrap_err().shortfall,
            Shortfall::Method
        );
        let passkey = signed_in(&["hwk", "mfa"], Some(1), None);
        assert_eq!(demand.check(&passkey, 1), Ok(()));
        // An unknown value in the token matches nothing rather than failing the check.
        let odd = signed_in(&["x-custom", "swk"], Some(1), None);
        assert_eq!(demand.check(&odd, 1), Ok(()));
    }

    #[test]
    fn max_auth_age_counts_from_auth_time_and_refuses_tokens_without_one() {
        let demand = AuthnDemand {
            max_auth_age: Some(900),
            ..AuthnDemand::default()
        };
        let at_1000 = signed_in(&["pwd"], Some(1000), None);
        assert_eq!(demand.check(&at_1000, 1900), Ok(()));
        let late = demand.check(&at_1000, 1901).unwrap_err();
        assert_eq!(late.shortfall, Shortfall::TooOld);
        assert_eq!(late.max_age, Some(900));
        assert!(!late.code_helps());
        let no_time = signed_in(&["pwd"], None, None);
        assert!(demand.check(&no_time, 1000).is_err());
        // A sign-in far in the future is not "recent": someone minted it wrongly.
        let future = signed_in(&["pwd"], Some(5000), None);
        assert!(demand.check(&future, 1000).is_err());
    }

    #[test]
    fn idp_any_needs_one_of_the_providers_and_refuses_local_sign_ins() {
        let demand = AuthnDemand {
            idp_any: Box::new(["corp".to_owned()]),
            ..AuthnDemand::default()
        };
        let corp = signed_in(&["pwd"], Some(1), Some("corp"));
        assert_eq!(demand.check(&corp, 1), Ok(()));
        let other = signed_in(&["pwd"], Some(1), Some("social"));
        assert_eq!(
            demand.check(&other, 1).unwrap_err().shortfall,
            Shortfall::Provider
        );
        let local = signed_in(&["pwd"], Some(1), None);
        assert!(demand.check(&local, 1).is_err());
    }

    #[test]
    fn an_old_sign_in_is_named_before_a_missing_factor() {
        let demand = AuthnDemand {
            mfa: true,
            max_auth_age: Some(60),
            ..AuthnDemand::default()
        };
        let old_pwd = signed_in(&["pwd"], Some(0), None);
        let refused = demand.check(&old_pwd, 1000).unwrap_err();
        assert_eq!(refused.shortfall, Shortfall::TooOld);
        assert_eq!(refused.max_age, Some(60));
        assert_eq!(refused.acr_values, AmrSet::MFA);
    }
}
