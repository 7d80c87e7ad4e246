//! users.toml: the raw file format and its validation with line:col errors.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::Entry;
use crate::config::diag::ConfigError;
use crate::users::{hash, name, User, RESERVED_CLAIMS};

/// Users by canonical name, in name order.
pub(super) type Users = BTreeMap<String, Entry>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    users: Vec<RawUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: Spanned<String>,
    hash: Spanned<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    disabled: bool,
    claims: Option<Spanned<toml::Table>>,
    /// The sealed TOTP secret (`portcullis user totp`).
    totp: Option<Spanned<String>>,
    /// Digests of unused recovery codes (`portcullis user recovery`).
    #[serde(default)]
    recovery: Option<Spanned<Vec<String>>>,
}

/// Parses and validates the text of `path`, collecting every problem before failing.
pub(super) fn parse(path: &Path, source: &str) -> Result<Users, Vec<ConfigError>> {
    let raw: RawFile = toml::from_str(source).map_err(|err| {
        let mut e = ConfigError::from_toml(path, source, &err);
        e.message = redact_phc(&e.message);
        vec![e]
    })?;
    let mut users = Users::new();
    let mut errors = Vec::new();
    for user in raw.users {
        match check_user(path, source, &users, user) {
            Ok(entry) => {
                users.insert(entry.user.name.clone(), entry);
            }
            Err(mut errs) => errors.append(&mut errs),
        }
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        Err(errors)
    }
}

fn check_user(
    path: &Path,
    source: &str,
    seen: &Users,
    raw: RawUser,
) -> Result<Entry, Vec<ConfigError>> {
    let at = |span: std::ops::Range<usize>, msg: String| ConfigError::at(path, source, span, msg);
    let mut errors = Vec::new();
    let written = raw.name.get_ref();
    match name::canonical(written) {
        Err(reason) => errors.push(at(raw.name.span(), reason.to_string())),
        Ok(canon) if &canon != written => errors.push(at(
            raw.name.span(),
            format!("username {written:?} must be written in lowercase, as {canon:?}"),
        )),
        Ok(canon) if seen.contains_key(&canon) => {
            errors.push(at(raw.name.span(), format!("duplicate user {canon:?}")))
        }
        Ok(_) => {}
    }
    if !hash::is_valid_phc(raw.hash.get_ref()) {
        errors.push(at(
            raw.hash.span(),
            "hash is not an argon2 PHC string (make one with `portcullis hash-password`)".into(),
        ));
    }
    if let Some(totp) = raw
        .totp
        .as_ref()
        .filter(|t| !super::super::sealed::looks_sealed(t.get_ref()))
    {
        errors.push(at(
            totp.span(),
            "totp is not a sealed secret (set it with `portcullis user totp NAME`, never by hand)"
                .into(),
        ));
    }
    if let Some(recovery) = raw.recovery.as_ref().filter(|r| {
        !r.get_ref()
            .iter()
            .all(|d| super::super::sealed::looks_like_digest(d))
    }) {
        errors.push(at(
            recovery.span(),
            "recovery is not a list of code digests (set it with `portcullis user recovery \
             NAME`, never by hand)"
                .into(),
        ));
    }
    let mut claims = serde_json::Map::new();
    if let Some(raw_claims) = raw.claims {
        let span = raw_claims.span();
        match claims_to_json(raw_claims.into_inner()) {
            Ok(ok) => claims = ok,
            Err(reason) => errors.push(at(span, reason)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let user = User {
        name: raw.name.into_inner(),
        roles: raw.roles,
        claims,
        disabled: raw.disabled,
        totp: raw.totp.map(Spanned::into_inner),
        recovery: raw.recovery.map(Spanned::into_inner).unwrap_or_default(),
    };
    Ok(Entry::new(user, raw.hash.into_inner()))
}

fn claims_to_json(
    table: toml::Table,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let mut out = serde_json::Map::new();
    for (key, value) in table {
        if RESERVED_CLAIMS.contains(&key.as_str()) {
            return Err(format!(
                "claim {key:?} is set by the gateway and cannot be overridden"
            ));
        }
        let value = toml_to_json(value).map_err(|reason| format!("claim {key:?}: {reason}"))?;
        out.insert(key, value);
    }
    Ok(out)
}

fn toml_to_json(value: toml::Value) -> Result<serde_json::Value, &'static str> {
    use serde_json::Value as J;
    Ok(match value {
        toml::Value::String(s) => J::String(s),
        toml::Value::Integer(i) => J::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(J::Number)
            .ok_or("NaN and infinity cannot go into a token")?,
        toml::Value::Boolean(b) => J::Bool(b),
        // JSON has no date type; RFC 3339 text is what a token consumer expects.
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => J::Array(
            items
                .into_iter()
                .map(toml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => {
            let mut map = serde_json::Map::new();
            for (k, v) in t {
                map.insert(k, toml_to_json(v)?);
            }
            J::Object(map)
        }
    })
}

/// Removes anything that looks like a PHC hash from a toml error message: serde quotes
/// the offending value ("invalid type: string \"$argon2id$...\""), and a hash pasted
/// into the wrong field must not end up in the log.
fn redact_phc(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find("$argon2") {
        out.push_str(&rest[..start]);
        out.push_str("<redacted hash>");
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_in_toml_error_messages_are_redacted() {
        let msg = r#"invalid type: string "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA", expected a sequence"#;
        assert_eq!(
            redact_phc(msg),
            r#"invalid type: string "<redacted hash>", expected a sequence"#
        );
        assert_eq!(redact_phc("no hash here"), "no hash here");
    }
}
