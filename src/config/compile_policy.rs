//! A route's policy fields -> `Policy`, every problem reported at its line and column.

use toml::Spanned;

use super::raw::{self, Auth};
use super::read::Diag;
use crate::policy::authn::AMR_VALUES;
use crate::policy::{scopes, AmrSet, AuthnDemand, ClaimPath, ClaimRule, Condition, Policy};

/// Compiles roles, scopes and claims; None after reporting what is wrong.
pub(crate) fn route_policy(diag: &mut Diag<'_>, route: &raw::Route) -> Option<Policy> {
    let role = |r: &str| !r.trim().is_empty();
    let roles_any = name_list(diag, "roles_any", "role", &route.roles_any, role);
    let roles_all = name_list(diag, "roles_all", "role", &route.roles_all, role);
    let roles_none = name_list(diag, "roles_none", "role", &route.roles_none, role);
    let scope = scopes::is_scope_token;
    let scopes_any = name_list(diag, "scopes_any", "scope", &route.scopes_any, scope);
    let scopes_all = name_list(diag, "scopes_all", "scope", &route.scopes_all, scope);
    let claims = claim_rules(diag, route);
    let authn = authn_demand(diag, route);
    let policy = Policy {
        auth: *route.auth.get_ref(),
        roles_any: roles_any?,
        roles_all: roles_all?,
        roles_none: roles_none?,
        scopes_any: scopes_any?,
        scopes_all: scopes_all?,
        claims: claims?,
        authn: authn?,
    };
    if policy.auth == Auth::None && policy.has_demands() {
        diag.at(
            route.auth.span(),
            "auth = \"none\" cannot be combined with roles_any, roles_all, roles_none, \
             scopes_any, scopes_all, claims, mfa, amr_any, idp_any or max_auth_age",
        );
        return None;
    }
    Some(policy)
}

/// `mfa`, `amr_any`, `idp_any` and `max_auth_age`: how the person must have signed in.
fn authn_demand(diag: &mut Diag<'_>, route: &raw::Route) -> Option<AuthnDemand> {
    let name = |n: &str| !n.trim().is_empty();
    let amr_names = name_list(diag, "amr_any", "method", &route.amr_any, name);
    let idp_any = name_list(diag, "idp_any", "provider id", &route.idp_any, name);
    let amr_any = amr_names.and_then(|names| amr_set(diag, route, &names));
    let max_auth_age = match &route.max_auth_age {
        Some(age) if age.get_ref().get().as_secs() == 0 => {
            diag.at(age.span(), "max_auth_age must be at least 1s");
            None
        }
        Some(age) => Some(Some(age.get_ref().get().as_secs())),
        None => Some(None),
    };
    Some(AuthnDemand {
        mfa: route.mfa.as_ref().is_some_and(|m| *m.get_ref()),
        amr_any: amr_any?,
        idp_any: idp_any?,
        max_auth_age: max_auth_age?,
    })
}

/// `amr_any`'s names as a set, or an error naming the first that RFC 8176 does not define.
fn amr_set(diag: &mut Diag<'_>, route: &raw::Route, names: &[String]) -> Option<AmrSet> {
    match AmrSet::parse(names.iter().map(String::as_str)) {
        Ok(set) => Some(set),
        Err(bad) => {
            let span = route.amr_any.as_ref().map_or(0..0, Spanned::span);
            let known = AMR_VALUES.join(", ");
            diag.at(
                span,
                format!("amr_any: \"{bad}\" is not an RFC 8176 method (expected one of: {known})"),
            );
            None
        }
    }
}

/// A non-empty list of valid names, or an error at the list.
fn name_list(
    diag: &mut Diag<'_>,
    field: &str,
    what: &str,
    names: &Option<Spanned<Vec<String>>>,
    valid: impl Fn(&str) -> bool,
) -> Option<Box<[String]>> {
    let Some(names) = names else {
        return Some(Box::new([]));
    };
    if names.get_ref().is_empty() {
        diag.at(
            names.span(),
            format!("{field} must list at least one {what} (omit it for no requirement)"),
        );
        return None;
    }
    if let Some(bad) = names.get_ref().iter().find(|n| !valid(n)) {
        let expected = match what {
            "scope" => "a scope token: printable ASCII without spaces, '\"' or '\\'",
            _ => "a non-empty name",
        };
        diag.at(
            names.span(),
            format!("{field}: invalid {what} \"{bad}\" (expected {expected})"),
        );
        return None;
    }
    Some(names.get_ref().clone().into_boxed_slice())
}

fn claim_rules(diag: &mut Diag<'_>, route: &raw::Route) -> Option<Box<[ClaimRule]>> {
    let Some(claims) = &route.claims else {
        return Some(Box::new([]));
    };
    if claims.get_ref().is_empty() {
        diag.at(
            claims.span(),
            "claims must name at least one claim (omit it for no requirement)",
        );
        return None;
    }
    let mut rules = Vec::new();
    let mut ok = true;
    for (path, condition) in claims.get_ref() {
        let parsed_path = ClaimPath::parse(path.get_ref());
        let parsed_condition = Condition::from_toml(condition.get_ref());
        match (parsed_path, parsed_condition) {
            (Ok(path), Ok(condition)) => rules.push(ClaimRule { path, condition }),
            (path_result, condition_result) => {
                ok = false;
                if let Err(message) = path_result {
                    diag.at(path.span(), message);
                }
                if let Err(message) = condition_result {
                    let name = path.get_ref();
                    diag.at(condition.span(), format!("claim \"{name}\": {message}"));
                }
            }
        }
    }
    ok.then(|| rules.into_boxed_slice())
}
