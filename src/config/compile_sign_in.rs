//! `[sign_in]` -> the settings of the sign-in pages.

use std::path::Path;

use super::raw::GatewayFile;
use super::read::Diag;
use crate::config::snapshot::{HostRule, SignInSettings};

/// The sign-in pages, None when disabled; `Err(())` once an error is recorded.
pub(crate) fn sign_in(
    diag: &mut Diag<'_>,
    base: &Path,
    file: &GatewayFile,
) -> Result<Option<SignInSettings>, ()> {
    let raw = &file.sign_in;
    if !raw.enabled {
        return Ok(None);
    }
    let mut ok = true;
    if !file.cookies.enabled {
        diag.at(0..0, "sign_in.enabled = true needs [cookies] enabled = true (the sign-in pages keep the session in the gateway's cookies)");
        ok = false;
    }
    let mut allowed_hosts = Vec::new();
    for entry in &raw.allowed_redirect_hosts {
        match host_rule(entry.get_ref()) {
            Some(rule) => allowed_hosts.push(rule),
            None => {
                diag.at(entry.span(), format!("invalid redirect host \"{}\" (expected a DNS name such as \"app.example.com\", or \"*.example.com\" for the names below it; no scheme, port or path)", entry.get_ref()));
                ok = false;
            }
        }
    }
    let title = match &raw.title {
        Some(title) if title.get_ref().trim().is_empty() || title.get_ref().len() > 200 => {
            diag.at(title.span(), "sign_in.title must be 1 to 200 characters");
            ok = false;
            String::new()
        }
        Some(title) => title.get_ref().trim().to_string(),
        None => "Sign in".to_string(),
    };
    let providers = super::compile_providers::providers(diag, base, &raw.providers);
    let (true, Some(providers)) = (ok, providers) else {
        return Err(());
    };
    let provider_origins: Vec<String> = providers
        .iter()
        .filter_map(|p| crate::issuers::provider::origin_of(&p.keys.issuer))
        // Nothing that could end or split a CSP directive.
        .filter(|o| {
            o.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":/.-[]".contains(&b))
        })
        .collect();
    let csp_prefix = csp_prefix(&allowed_hosts, &provider_origins);
    Ok(Some(SignInSettings {
        title,
        allowed_hosts,
        csp_prefix,
        providers,
    }))
}

/// `app.example.com` or `*.example.com`, as a lowercase rule; None when malformed.
fn host_rule(text: &str) -> Option<HostRule> {
    let (below, name) = match text.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let labels_ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    // `*.com` would let every site in; a wildcard needs at least two labels below it.
    if !labels_ok || (below && !name.contains('.')) {
        return None;
    }
    let name = name.to_ascii_lowercase();
    Some(match below {
        true => HostRule::Below(format!(".{name}")),
        false => HostRule::Exact(name),
    })
}

/// The pages' CSP without its style nonce: nothing loads, nothing frames them, and forms
/// (and the redirects that answer them, which Chromium checks too) go only to this origin,
/// the allowed redirect hosts and the providers' issuer origins (sign-out goes on to a
/// provider's end_session_endpoint there).
fn csp_prefix(allowed: &[HostRule], providers: &[String]) -> String {
    let mut form_action = String::from("'self'");
    for origin in providers {
        form_action.push(' ');
        form_action.push_str(origin);
    }
    for rule in allowed {
        match rule {
            HostRule::Exact(name) => form_action.push_str(&format!(" https://{name}")),
            HostRule::Below(suffix) => form_action.push_str(&format!(" https://*{suffix}")),
        }
    }
    format!("default-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action {form_action}; style-src 'nonce-")
}

#[cfg(test)]
mod tests {
    use super::{host_rule, HostRule};

    #[test]
    fn host_rules_take_names_and_wildcards_and_refuse_the_rest() {
        assert_eq!(
            host_rule("App.Example.com"),
            Some(HostRule::Exact("app.example.com".into()))
        );
        assert_eq!(
            host_rule("*.example.com"),
            Some(HostRule::Below(".example.com".into()))
        );
        for bad in [
            "",
            "*",
            "*.com",
            "https://a.example",
            "a.example:443",
            "a.example/x",
            "a..b",
            "-a.b",
            "*.*.example.com",
            "exämple.com",
            "a b.com",
        ] {
            assert_eq!(host_rule(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_wildcard_allows_names_below_it_but_not_itself_or_look_alikes() {
        let rule = host_rule("*.example.com").expect("valid");
        assert!(rule.allows("app.example.com"));
        assert!(rule.allows("a.b.example.com"));
        assert!(!rule.allows("example.com"));
        assert!(!rule.allows("evilexample.com"));
        assert!(!rule.allows("app.example.com.evil"));
    }
}
