//! The parts of a `[[sign_in.providers]]` entry about proving the gateway is the client
//! (a secret, or a key for `private_key_jwt`) and where the provider's sign-out returns.

use std::path::Path;

use toml::Spanned;

use super::raw::SignInProvider;
use super::read::{read_bytes, Diag};
use crate::issuers::provider::{ClientAuth, ClientKey, Credential, PostLogout, Secret};
use crate::token::keys::{KeyMaterial, KeyRing, KeySpec};

/// A client key for `private_key_jwt`, or exactly one of client_secret_env,
/// client_secret_file; read now.
pub(super) fn credential(
    diag: &mut Diag<'_>,
    base: &Path,
    raw: &SignInProvider,
) -> Option<Credential> {
    let id = raw.id.get_ref();
    let secret_given = raw.client_secret_env.is_some() || raw.client_secret_file.is_some();
    let key_auth = raw.client_auth == Some(ClientAuth::PrivateKeyJwt);
    match &raw.client_key_file {
        Some(path) if secret_given || !(key_auth || raw.client_auth.is_none()) => {
            diag.at(path.span(), format!("provider {id:?}: client_key_file is for client_auth = \"private_key_jwt\", without client_secret_env or client_secret_file"));
            None
        }
        Some(path) => client_key(diag, base, raw, path).map(Credential::Key),
        None if key_auth => {
            diag.at(raw.id.span(), format!("provider {id:?}: client_auth = \"private_key_jwt\" needs client_key_file (a private key PEM, e.g. from `portcullis keygen`)"));
            None
        }
        None => secret(diag, base, raw).map(Credential::Secret),
    }
}

/// The private key that signs client assertions, loaded and checked against its alg.
fn client_key(
    diag: &mut Diag<'_>,
    base: &Path,
    raw: &SignInProvider,
    path: &Spanned<String>,
) -> Option<ClientKey> {
    let alg = *raw.client_key_alg.get_ref();
    if alg.is_hmac() {
        diag.at(raw.client_key_alg.span(), format!("client_key_alg {alg} is a shared-secret algorithm; private_key_jwt needs an asymmetric one (RS256, PS256, ES256, ES384, EdDSA)"));
        return None;
    }
    let pem = read_bytes(diag, base, path, "client key file")?;
    let spec = KeySpec {
        kid: "client".into(),
        alg,
        material: KeyMaterial::PrivatePem(pem),
        verify_only: false,
    };
    match KeyRing::new(vec![spec], "client") {
        Ok(ring) => Some(ClientKey {
            kid: raw.client_key_id.as_ref().map(|k| k.get_ref().clone()),
            key: ring.signer().clone(),
        }),
        Err(errors) => {
            let why = errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>();
            diag.at(path.span(), format!("client key file: {}", why.join("; ")));
            None
        }
    }
}

/// Exactly one of client_secret_env, client_secret_file; the secret, read now.
fn secret(diag: &mut Diag<'_>, base: &Path, raw: &SignInProvider) -> Option<Secret> {
    let id = raw.id.get_ref();
    match (&raw.client_secret_env, &raw.client_secret_file) {
        (Some(var), None) => match std::env::var(var.get_ref()) {
            Ok(secret) if !secret.is_empty() => Some(Secret(secret)),
            _ => {
                diag.at(var.span(), format!("environment variable {} is not set or empty (expected the client secret of provider {id:?})", var.get_ref()));
                None
            }
        },
        (None, Some(path)) => {
            let bytes = read_bytes(diag, base, path, "client secret file")?;
            let text = String::from_utf8(bytes).ok();
            let secret = text.map(|t| t.trim_end_matches(['\r', '\n']).to_string());
            match secret.filter(|s| !s.is_empty()) {
                Some(secret) => Some(Secret(secret)),
                None => {
                    diag.at(path.span(), "client secret file is empty or not UTF-8");
                    None
                }
            }
        }
        _ => {
            diag.at(raw.id.span(), format!("provider {id:?}: expected exactly one of client_secret_env, client_secret_file (or client_key_file with client_auth = \"private_key_jwt\")"));
            None
        }
    }
}

/// An absolute https URL, or a path (then on the sign-out's own origin); Some(None) when
/// not configured, None after an error.
pub(super) fn post_logout(
    diag: &mut Diag<'_>,
    raw: Option<&Spanned<String>>,
) -> Option<Option<PostLogout>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    let text = raw.get_ref();
    let printable = !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic());
    let parsed = text.parse::<http::Uri>().ok().filter(|_| printable);
    match parsed {
        Some(uri)
            if text.starts_with('/') && !text.starts_with("//") && uri.authority().is_none() =>
        {
            Some(Some(PostLogout::Path(text.clone())))
        }
        Some(uri) if uri.scheme_str() == Some("https") && uri.authority().is_some() => {
            Some(Some(PostLogout::Url(text.clone())))
        }
        _ => {
            diag.at(raw.span(), format!("post_logout_redirect_uri {text:?} must be an https:// URL or a path such as \"/\""));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    const ROUTES: &str = "[upstreams.api]\nurl = \"http://127.0.0.1:9\"\n[[routes]]\npath = \"/api/**\"\nupstream = \"api\"\n";

    /// Loads gateway.toml with sign-in on and one provider with `lines`; the errors, joined.
    fn errors(lines: &str) -> String {
        use crate::config::test_support::{write_material, GATEWAY};
        let dir = tempfile::tempdir().expect("temp dir");
        write_material(dir.path());
        std::fs::write(dir.path().join("corp.secret"), "s3cret\n").expect("write secret");
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
        std::fs::write(dir.path().join("client.pem"), pair.serialize_pem()).expect("write key");
        let gateway = format!("{GATEWAY}\n[cookies]\nenabled = true\n[sign_in]\nenabled = true\n[[sign_in.providers]]\nid = \"corp\"\nissuer = \"https://id.example.com\"\nclient_id = \"portcullis\"\n{lines}\n");
        std::fs::write(dir.path().join("gateway.toml"), gateway).expect("write gateway");
        std::fs::write(dir.path().join("routes.toml"), ROUTES).expect("write routes");
        let source = crate::config::Source::File(dir.path().join("gateway.toml"));
        match crate::config::load(&source) {
            Ok(_) => String::new(),
            Err(errors) => errors
                .0
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    #[test]
    fn private_key_jwt_loads_a_key_that_fits_its_alg() {
        let key = "client_auth = \"private_key_jwt\"\nclient_key_file = \"client.pem\"";
        assert_eq!(
            errors(&format!(
                "{key}\nclient_key_alg = \"ES256\"\nclient_key_id = \"k1\""
            )),
            ""
        );
        // The default alg, RS256, does not fit a P-256 key: refused at load, not at sign-in.
        assert!(errors(key).contains("client key file"), "{}", errors(key));
        let hmac = format!("{key}\nclient_key_alg = \"HS256\"");
        assert!(
            errors(&hmac).contains("shared-secret algorithm"),
            "{}",
            errors(&hmac)
        );
    }

    #[test]
    fn a_client_has_a_secret_or_a_key_never_both_and_the_key_means_private_key_jwt() {
        let both = "client_secret_file = \"corp.secret\"\nclient_key_file = \"client.pem\"\nclient_key_alg = \"ES256\"";
        assert!(
            errors(both).contains("without client_secret_env"),
            "{}",
            errors(both)
        );
        let basic = "client_auth = \"client_secret_basic\"\nclient_key_file = \"client.pem\"\nclient_key_alg = \"ES256\"";
        assert!(
            errors(basic).contains("is for client_auth"),
            "{}",
            errors(basic)
        );
        let keyless = "client_auth = \"private_key_jwt\"\nclient_secret_file = \"corp.secret\"";
        assert!(
            errors(keyless).contains("needs client_key_file"),
            "{}",
            errors(keyless)
        );
        let implied = "client_key_file = \"client.pem\"\nclient_key_alg = \"ES256\"";
        assert_eq!(errors(implied), "");
    }

    #[test]
    fn post_logout_redirect_uri_is_an_https_url_or_a_path() {
        let secret = "client_secret_file = \"corp.secret\"";
        for good in ["/", "/auth/sign-out", "https://app.example.com/bye"] {
            let lines = format!("{secret}\npost_logout_redirect_uri = \"{good}\"");
            assert_eq!(errors(&lines), "", "{good}");
        }
        for bad in ["http://app.example.com/", "//evil.example/", "bye", ""] {
            let lines = format!("{secret}\npost_logout_redirect_uri = \"{bad}\"");
            assert!(
                errors(&lines).contains("post_logout_redirect_uri"),
                "{bad}: {}",
                errors(&lines)
            );
        }
    }
}
