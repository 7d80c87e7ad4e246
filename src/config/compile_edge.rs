//! `[forward_auth]`, `[cookies]` and `listen.hsts` -> the settings of the endpoints that serve
//! other proxies and browsers.

use http::HeaderValue;

use super::raw::{self, GatewayFile};
use super::read::Diag;
use crate::config::snapshot::ForwardAuth;
use crate::cookies::CookieSettings;
use crate::token::jwks::JWKS_PATH;

/// Whether `path` is a plain absolute path the normalizer leaves alone (no pattern, query,
/// fragment or path parameter): the form every configured endpoint path must have.
pub(crate) fn is_plain_path(path: &str) -> bool {
    path.starts_with('/')
        && crate::path::normalize(path).ok().as_deref() == Some(path)
        && !path.contains(['*', '?', '#', ';'])
}

/// The forward-auth endpoint, None when disabled; `Err(())` once an error is recorded.
pub(crate) fn forward_auth(
    diag: &mut Diag<'_>,
    file: &GatewayFile,
    prefix: &str,
) -> Result<Option<ForwardAuth>, ()> {
    let raw = &file.forward_auth;
    if !raw.enabled {
        return Ok(None);
    }
    let mut ok = true;
    let path = match &raw.path {
        Some(path) => {
            let trimmed = path.get_ref().trim_end_matches('/');
            let taken = [
                JWKS_PATH,
                "/login",
                "/refresh",
                "/logout",
                "/register",
                "/sign-in",
                "/sign-out",
                "/sessions",
                "/password",
            ]
            .iter()
            .any(|p| trimmed == *p || trimmed.strip_prefix(prefix) == Some(p));
            if !is_plain_path(trimmed) || taken {
                diag.at(path.span(), format!("invalid forward_auth.path \"{}\" (expected a path such as \"/auth/verify\", not one of the gateway's other endpoints)", path.get_ref()));
                ok = false;
            }
            trimmed.to_string()
        }
        None => format!("{prefix}/verify"),
    };
    let trust = match &raw.trust {
        Some(trust) => *trust.get_ref(),
        None => {
            diag.at(0..0, "forward_auth.enabled = true needs trust = \"nginx\" or \"traefik\" (which proxy's headers carry the original request)");
            ok = false;
            raw::ForwardTrust::Nginx
        }
    };
    let mut callers = Vec::new();
    for text in &raw.callers {
        match crate::forward::proxies::Cidr::parse(text.get_ref()) {
            Ok(range) => callers.push(range),
            Err(message) => {
                diag.at(text.span(), message);
                ok = false;
            }
        }
    }
    match ok {
        true => Ok(Some(ForwardAuth {
            path,
            trust,
            callers,
        })),
        false => Err(()),
    }
}

/// Cookie mode, None when disabled; `Err(())` once an error is recorded.
pub(crate) fn cookies(
    diag: &mut Diag<'_>,
    file: &GatewayFile,
    prefix: &str,
) -> Result<Option<CookieSettings>, ()> {
    let raw = &file.cookies;
    if !raw.enabled {
        return Ok(None);
    }
    let header = raw.csrf_header.get_ref();
    let csrf_header = match http::HeaderName::from_bytes(header.as_bytes()) {
        Ok(name) if name != http::header::COOKIE && name != http::header::AUTHORIZATION => name,
        _ => {
            diag.at(
                raw.csrf_header.span(),
                format!("\"{header}\" cannot be the CSRF header (expected a header name such as \"X-CSRF-Token\")"),
            );
            return Err(());
        }
    };
    Ok(Some(CookieSettings {
        same_site: raw.same_site,
        csrf_header,
        refresh_path: format!("{prefix}/refresh"),
        access_secs: file.tokens.access_ttl.get().as_secs(),
        refresh_secs: file.tokens.refresh_ttl.get().as_secs(),
    }))
}

/// The Strict-Transport-Security value, checked: `max-age=SECONDS`, then optional
/// directives (RFC 6797 6.1); `Err(())` once an error is recorded.
pub(crate) fn hsts(diag: &mut Diag<'_>, listen: &raw::Listen) -> Result<Option<HeaderValue>, ()> {
    let Some(text) = &listen.hsts else {
        return Ok(None);
    };
    let value = text.get_ref();
    let max_age = value.split(';').next().unwrap_or("").trim();
    let well_formed = max_age
        .strip_prefix("max-age=")
        .is_some_and(|secs| !secs.is_empty() && secs.bytes().all(|b| b.is_ascii_digit()));
    match HeaderValue::from_str(value) {
        Ok(header) if well_formed => Ok(Some(header)),
        _ => {
            diag.at(text.span(), format!("invalid listen.hsts {value:?} (expected \"max-age=SECONDS\", optionally followed by \"; includeSubDomains\" and \"; preload\")"));
            Err(())
        }
    }
}
