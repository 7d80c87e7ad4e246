//! `[second_factor]` -> the key that seals TOTP secrets and the issuer apps show.

use std::path::Path;
use std::sync::Arc;

use toml::Spanned;

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
    let current = KeySource {
        file: raw.key_file.as_ref(),
        env: raw.key_env.as_ref(),
        names: ("key_file", "key_env"),
    };
    let Some(mut key) = read_key(diag, base, &current)? else {
        if let Some(field) = raw
            .previous_key_file
            .as_ref()
            .or(raw.previous_key_env.as_ref())
        {
            diag.at(
                field.span(),
                "second_factor: a previous key needs the new one in key_file or key_env",
            );
            return Err(());
        }
        return Ok(None);
    };
    let previous = KeySource {
        file: raw.previous_key_file.as_ref(),
        env: raw.previous_key_env.as_ref(),
        names: ("previous_key_file", "previous_key_env"),
    };
    if let Some(previous) = read_key(diag, base, &previous)? {
        key = key.with_previous(previous);
    }
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

/// Where one key is given: a file or an environment variable, and their field names.
struct KeySource<'a> {
    file: Option<&'a Spanned<String>>,
    env: Option<&'a Spanned<String>>,
    names: (&'static str, &'static str),
}

/// The key `source` names, None when it names none; `Err(())` once an error is recorded.
fn read_key(
    diag: &mut Diag<'_>,
    base: &Path,
    source: &KeySource<'_>,
) -> Result<Option<SealKey>, ()> {
    let (file_name, env_name) = source.names;
    let (text, span) = match (source.file, source.env) {
        (None, None) => return Ok(None),
        (Some(_), Some(env)) => {
            let message = format!("second_factor: give {file_name} or {env_name}, not both");
            diag.at(env.span(), message);
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
    let key = SealKey::from_text(&text).map_err(|reason| diag.at(span, reason))?;
    Ok(Some(key))
}
