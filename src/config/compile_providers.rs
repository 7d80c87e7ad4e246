//! `[[sign_in.providers]]` -> [`Provider`]s, with every error reported at its line.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::compile_issuers::{algorithms, roles_claim};
use super::compile_provider_auth::{credential, post_logout};
use super::raw::SignInProvider;
use super::read::Diag;
use crate::issuers::fetch::Live;
use crate::issuers::provider::{discovery_url, Provider, ProviderFields};
use crate::issuers::{Issuer, JwksSource};

/// Compiles every provider; None once an error is recorded.
pub(crate) fn providers(
    diag: &mut Diag<'_>,
    base: &Path,
    entries: &[Spanned<SignInProvider>],
) -> Option<Vec<Arc<Provider>>> {
    let mut out = Vec::new();
    let mut ok = true;
    for (i, entry) in entries.iter().enumerate() {
        let id = entry.get_ref().id.get_ref();
        if entries[..i].iter().any(|e| e.get_ref().id.get_ref() == id) {
            diag.at(
                entry.get_ref().id.span(),
                format!("provider id {id:?} is used twice"),
            );
            ok = false;
            continue;
        }
        match provider(diag, base, entry.get_ref()) {
            Some(provider) => out.push(Arc::new(provider)),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn provider(diag: &mut Diag<'_>, base: &Path, raw: &SignInProvider) -> Option<Provider> {
    let mut ok = true;
    let id = raw.id.get_ref();
    let id_ok = !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !id_ok {
        diag.at(raw.id.span(), format!("provider id {id:?} must be 1 to 32 lowercase letters, digits or '-' (it appears in URLs and cookie names)"));
        ok = false;
    }
    let discovery = match discovery_url(raw.issuer.get_ref()) {
        Ok(url) => Some(url),
        Err(message) => {
            diag.at(raw.issuer.span(), format!("provider issuer: {message}"));
            None
        }
    };
    if raw.client_id.get_ref().trim().is_empty() {
        diag.at(raw.client_id.span(), "client_id must not be empty");
        ok = false;
    }
    if !raw.scopes.get_ref().iter().any(|s| s == "openid") {
        diag.at(raw.scopes.span(), "scopes must include \"openid\"");
        ok = false;
    }
    let title = match &raw.title {
        Some(title) if title.get_ref().trim().is_empty() || title.get_ref().len() > 100 => {
            diag.at(title.span(), "provider title must be 1 to 100 characters");
            ok = false;
            String::new()
        }
        Some(title) => title.get_ref().trim().to_string(),
        None => format!("Sign in with {id}"),
    };
    let allowed_domains = domains(diag, &raw.allowed_domains);
    let post_logout = post_logout(diag, raw.post_logout_redirect_uri.as_ref());
    let fetch_timeout = raw.fetch_timeout.get();
    if fetch_timeout.is_zero() {
        diag.at(
            raw.id.span(),
            format!("provider {id:?}: fetch_timeout must be more than 0"),
        );
        ok = false;
    }
    let credential = credential(diag, base, raw);
    let algorithms = algorithms(diag, &raw.algorithms);
    let roles_claim = roles_claim(diag, &raw.roles_claim);
    let (discovery, credential, algorithms, roles_claim, allowed_domains, post_logout) = (
        discovery?,
        credential?,
        algorithms?,
        roles_claim?,
        allowed_domains?,
        post_logout?,
    );
    if !ok {
        return None;
    }
    let keys = Issuer {
        issuer: raw.issuer.get_ref().clone(),
        audience: raw.client_id.get_ref().clone(),
        algorithms,
        roles_claim,
        source: JwksSource::Discovery(discovery),
        refresh_min: Duration::from_secs(60),
        refresh_max: Duration::from_secs(3600),
        unknown_kid_refetch: Duration::from_secs(30),
        fetch_timeout,
        live: Live::new(Arc::default()),
    };
    let fields = ProviderFields {
        id: id.clone(),
        title,
        client_id: raw.client_id.get_ref().clone(),
        credential,
        scopes: raw.scopes.get_ref().join(" "),
        client_auth: raw.client_auth,
        allowed_domains,
        post_logout,
    };
    Some(Provider::new(fields, Arc::new(keys)))
}

/// Lowercase DNS names.
fn domains(diag: &mut Diag<'_>, entries: &[Spanned<String>]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for entry in entries {
        let name = entry.get_ref().to_ascii_lowercase();
        let well_formed = !name.is_empty()
            && name.contains('.')
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !well_formed {
            diag.at(
                entry.span(),
                format!(
                    "allowed domain {:?} is not a domain name such as \"example.com\"",
                    entry.get_ref()
                ),
            );
            return None;
        }
        out.push(name);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    const ROUTES: &str = "[upstreams.api]\nurl = \"http://127.0.0.1:9\"\n[[routes]]\npath = \"/api/**\"\nupstream = \"api\"\n";

    /// Loads the minimal gateway.toml with sign-in on plus `providers`; the error lines, or
    /// the provider ids loaded.
    fn load(providers: &str) -> Result<Vec<String>, Vec<String>> {
        use crate::config::test_support::{write_material, GATEWAY};
        let dir = tempfile::tempdir().expect("temp dir");
        write_material(dir.path());
        std::fs::write(dir.path().join("corp.secret"), "s3cret\n").expect("write secret");
        let gateway =
            format!("{GATEWAY}\n[cookies]\nenabled = true\n[sign_in]\nenabled = true\n{providers}");
        std::fs::write(dir.path().join("gateway.toml"), gateway).expect("write gateway");
        std::fs::write(dir.path().join("routes.toml"), ROUTES).expect("write routes");
        let strip = |s: String| s.replace(&format!("{}/", dir.path().display()), "");
        let source = crate::config::Source::File(dir.path().join("gateway.toml"));
        crate::config::load(&source)
            .map(|loaded| {
                let sign_in = loaded.snapshot.auth.sign_in.expect("sign-in on");
                sign_in.providers.iter().map(|p| p.id.clone()).collect()
            })
            .map_err(|errors| errors.0.iter().map(|e| strip(e.to_string())).collect())
    }

    const GOOD: &str = r#"
[[sign_in.providers]]
id = "corp"
issuer = "https://id.example.com/realms/main"
client_id = "portcullis"
client_secret_file = "corp.secret"
"#;

    #[test]
    fn a_provider_loads_with_its_secret_from_a_file() {
        assert_eq!(load(GOOD), Ok(vec!["corp".to_string()]));
    }

    #[test]
    fn every_mistake_in_a_provider_is_reported_at_once() {
        let bad = r#"
[[sign_in.providers]]
id = "Corp/1"
issuer = "http://id.example.com"
client_id = ""
scopes = ["email"]
allowed_domains = ["not a domain"]
client_secret_file = "corp.secret"
"#;
        let errors = load(bad).expect_err("refused");
        let all = errors.join("\n");
        for expected in [
            "provider id \"Corp/1\" must be",
            "must be https://",
            "client_id must not be empty",
            "scopes must include \"openid\"",
            "allowed domain \"not a domain\"",
        ] {
            assert!(all.contains(expected), "{expected}: {all}");
        }
    }

    #[test]
    fn a_provider_needs_exactly_one_secret_and_a_unique_id() {
        let none = GOOD.replace("client_secret_file = \"corp.secret\"\n", "");
        let errors = load(&none).expect_err("no secret");
        assert!(
            errors
                .join("\n")
                .contains("exactly one of client_secret_env, client_secret_file"),
            "{errors:?}"
        );
        let twice = format!("{GOOD}{GOOD}");
        let errors = load(&twice).expect_err("same id twice");
        assert!(
            errors.join("\n").contains("\"corp\" is used twice"),
            "{errors:?}"
        );
        let unset = GOOD.replace(
            "client_secret_file = \"corp.secret\"",
            "client_secret_env = \"PORTCULLIS_TEST_UNSET_SECRET\"",
        );
        let errors = load(&unset).expect_err("unset env");
        assert!(
            errors
                .join("\n")
                .contains("PORTCULLIS_TEST_UNSET_SECRET is not set"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_provider_without_sign_in_keys_is_an_unknown_key_error() {
        let errors = load("[[sign_in.providers]]\nid = \"x\"\nissuer = \"https://a.example\"\nclient_id = \"c\"\nclient_secret_file = \"corp.secret\"\ncolor = \"red\"\n").expect_err("unknown key");
        assert!(errors.join("\n").contains("color"), "{errors:?}");
    }
}
