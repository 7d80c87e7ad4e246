//! `[second_factor]` -> the key that seals TOTP secrets and the issuer apps show.

use std::path::Path;
use std::sync::Arc;

use super::raw::GatewayFile;
use super::read::{read_bytes, Diag};
use crate::config::snapshot::SecondFactorSettings;
use crate::users::sealed::SealKey;

/// The second-factor settings, None when no key is configured; `Err(())` once an error is
/// recorded.
pub(crate) fn second_factor(
    diag: &mut Diag<'_>,
    base: &Path,
    file: &GatewayFile,
) -> Result<Option<SecondFactorSettings>, ()> {
    let raw = &file.second_factor;
    let text = match (&raw.key_file, &raw.key_env) {
        (None, None) => return Ok(None),
        (Some(_), Some(env)) => {
            diag.at(
                env.span(),
                "second_factor: give key_file or key_env, not both",
            );
            return Err(());
        }
        (Some(path), None) => {
            let bytes = read_bytes(diag, base, path, "second-factor key").ok_or(())?;
            (String::from_utf8_lossy(&bytes).into_owned(), path.span())
        }
        (None, Some(var)) => match std::env::var(var.get_ref()) {
            Ok(value) if !value.trim().is_empty() => (value, var.span()),
            _ => {
                let message = format!(
                    "environment variable {} is not set or empty (expected the second-factor key: `openssl rand -base64 32`)",
                    var.get_ref()
                );
                diag.at(var.span(), message);
                return Err(());
            }
        },
    };
    let (text, span) = text;
    let key = SealKey::from_text(&text).map_err(|reason| diag.at(span, reason))?;
    let issuer = match &raw.issuer {
        Some(issuer) if issuer.get_ref().trim().is_empty() || issuer.get_ref().contains(':') => {
            diag.at(issuer.span(), "second_factor.issuer must be 1 to 100 characters without ':' (authenticator apps split the label at ':')");
            return Err(());
        }
        Some(issuer) => issuer.get_ref().trim().chars().take(100).collect(),
        None => "portcullis".to_string(),
    };
    Ok(Some(SecondFactorSettings {
        key: Arc::new(key),
        issuer,
    }))
}
