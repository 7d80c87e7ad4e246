//! `[passkeys]` -> the WebAuthn relying party: its id (the gateway's host) and the origins
//! whose pages may register and use passkeys.

use std::sync::Arc;

use webauthn_rs::prelude::Url;
use webauthn_rs::WebauthnBuilder;

use super::raw::GatewayFile;
use super::read::Diag;
use crate::config::snapshot::PasskeySettings;

/// The passkey settings, None without `rp_id`; `Err(())` once an error is recorded.
pub(crate) fn passkeys(
    diag: &mut Diag<'_>,
    file: &GatewayFile,
) -> Result<Option<PasskeySettings>, ()> {
    let raw = &file.passkeys;
    let Some(rp_id) = &raw.rp_id else {
        if let Some(origin) = raw.origins.first() {
            diag.at(origin.span(), "passkeys.origins needs passkeys.rp_id");
            return Err(());
        }
        return Ok(None);
    };
    if !file.sign_in.enabled {
        diag.at(rp_id.span(), "[passkeys] needs [sign_in] enabled = true (passkeys are registered and used on the sign-in pages)");
        return Err(());
    }
    let id = rp_id.get_ref().trim().to_ascii_lowercase();
    if !is_host_name(&id) {
        diag.at(rp_id.span(), format!("invalid passkeys.rp_id \"{}\" (expected the gateway's host name as browsers see it, such as \"auth.example.com\" or \"localhost\"; no scheme, port or path)", rp_id.get_ref()));
        return Err(());
    }
    let mut origins = Vec::new();
    for text in &raw.origins {
        match origin(text.get_ref(), &id) {
            Ok(url) => origins.push(url),
            Err(reason) => {
                diag.at(text.span(), reason);
                return Err(());
            }
        }
    }
    if origins.is_empty() {
        origins.push(origin(&format!("https://{id}"), &id).map_err(|r| diag.at(rp_id.span(), r))?);
    }
    let name = match &raw.rp_name {
        Some(name) => name.get_ref().trim().chars().take(100).collect(),
        None => file.sign_in.title.as_ref().map_or_else(
            || "portcullis".to_string(),
            |t| t.get_ref().trim().to_string(),
        ),
    };
    let built = WebauthnBuilder::new(&id, &origins[0]).and_then(|builder| {
        let builder = origins[1..]
            .iter()
            .fold(builder, |b, url| b.append_allowed_origin(url));
        // The RP id names a host: credentials are scoped to it, not to a port.
        builder.allow_any_port(true).rp_name(&name).build()
    });
    match built {
        Ok(webauthn) => Ok(Some(PasskeySettings {
            webauthn: Arc::new(webauthn),
            rp_id: id,
        })),
        Err(err) => {
            diag.at(rp_id.span(), format!("passkeys: {err}"));
            Err(())
        }
    }
}

/// A DNS name: labels of letters, digits and '-', joined by dots.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// An `https` origin on `rp_id` or a name below it (what WebAuthn accepts for that RP id).
fn origin(text: &str, rp_id: &str) -> Result<Url, String> {
    let bad = || {
        format!("invalid passkeys origin \"{text}\" (expected https://{rp_id} or https://NAME.{rp_id}, no path)")
    };
    let url = Url::parse(text).map_err(|_| bad())?;
    let host = url.host_str().unwrap_or_default();
    let on_rp = host == rp_id || host.ends_with(&format!(".{rp_id}"));
    if url.scheme() != "https" || !on_rp || url.path() != "/" || url.query().is_some() {
        return Err(bad());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::{is_host_name, origin};

    #[test]
    fn rp_ids_are_host_names_and_origins_sit_on_them() {
        assert!(is_host_name("localhost") && is_host_name("auth.example.com"));
        for bad in [
            "",
            "https://a.example",
            "a.example:443",
            "a..b",
            "-a.b",
            "a/b",
        ] {
            assert!(!is_host_name(bad), "{bad}");
        }
        assert!(origin("https://auth.example.com", "example.com").is_ok());
        assert!(origin("https://example.com:8443", "example.com").is_ok());
        assert!(origin("http://example.com", "example.com").is_err());
        assert!(origin("https://evilexample.com", "example.com").is_err());
        assert!(origin("https://example.com/x", "example.com").is_err());
    }
}
