//! Cookie mode for browsers: the token pair in cookies a script cannot read, and a CSRF
//! double submit for unsafe methods authenticated by cookie.
//!
//! The access and CSRF cookies are `__Host-` (Secure, Path=/, no Domain: no sibling
//! subdomain can set or shadow them). The refresh cookie is scoped to the refresh endpoint,
//! so it never travels with proxied requests; `__Host-` forbids a narrower Path, so it is
//! `__Secure-`, and a second cookie of the same name (one planted by a sibling domain) makes
//! the request ambiguous and refused. A bearer header always wins over a cookie.

use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, COOKIE, ORIGIN, SET_COOKIE};
use http::Method;

use crate::reject::Reject;
use crate::revoke::Pair;
use crate::token::verify::{self, TokenError};

/// The SameSite attribute of the gateway's cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
pub enum SameSite {
    /// Never sent on a cross-site request (the default).
    #[default]
    Strict,
    /// Sent on top-level cross-site navigations (GET links).
    Lax,
    /// Always sent (needs Secure, which every cookie of the gateway has).
    None,
}

/// The access token's cookie.
pub const ACCESS: &str = "__Host-portcullis-access";
/// The refresh token's cookie (Path = the refresh endpoint).
pub const REFRESH: &str = "__Secure-portcullis-refresh";
/// The CSRF cookie: readable by the page's script, which echoes it in the CSRF header.
pub const CSRF: &str = "__Host-portcullis-csrf";

/// The compiled `[cookies]` section.
#[derive(Debug, Clone)]
pub struct CookieSettings {
    /// SameSite attribute of every cookie.
    pub same_site: SameSite,
    /// The header that must repeat the CSRF cookie on unsafe methods.
    pub csrf_header: HeaderName,
    /// Path of the refresh cookie: `{prefix}/refresh`.
    pub refresh_path: String,
    /// Max-Age of the access cookie, seconds.
    pub access_secs: u64,
    /// Max-Age of the refresh and CSRF cookies, seconds.
    pub refresh_secs: u64,
}

/// A cookie that appears twice: which one the browser meant cannot be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ambiguous;

/// The value of cookie `name` across every Cookie header (HTTP/2 may split them).
pub fn find<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, Ambiguous> {
    let mut found = None;
    for (n, value) in pairs(headers) {
        if n == name {
            if found.is_some() {
                return Err(Ambiguous);
            }
            found = Some(value);
        }
    }
    Ok(found)
}

fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        // Frameworks trim names and values, so `__Host-portcullis-access =t` is that cookie.
        .map(|(name, value)| (name.trim(), value.trim()))
}

/// The access token: `Authorization: Bearer`, else, in cookie mode and only when there is
/// no Authorization header at all, the access cookie.
pub fn access_token<'h>(
    cookies: Option<&CookieSettings>,
    headers: &'h HeaderMap,
) -> Result<&'h str, TokenError> {
    if cookies.is_none() || headers.contains_key(AUTHORIZATION) {
        return verify::bearer(headers);
    }
    match find(headers, ACCESS) {
        Ok(Some(token)) => Ok(token),
        Ok(None) => Err(TokenError::Missing),
        Err(Ambiguous) => Err(TokenError::Malformed),
    }
}

/// Whether the access token will be taken from the cookie.
pub fn by_cookie(cookies: Option<&CookieSettings>, headers: &HeaderMap) -> bool {
    cookies.is_some()
        && !headers.contains_key(AUTHORIZATION)
        && pairs(headers).any(|(name, _)| name == ACCESS)
}

/// Whether a login or refresh answer may carry the token pair in its JSON body.
///
/// In cookie mode the pair lives in HttpOnly cookies so that page script, an XSS
/// included, cannot carry the tokens off; a body any script on the page can read would
/// undo that. So the body holds the tokens only for a client that shows no sign of being
/// a browser page: no `Origin` and no `Sec-Fetch-*` header. Those are forbidden header
/// names: browsers add them and a page's script can neither set nor remove them. A
/// refresh by cookie never gets them in the body (see `endpoints::refresh`).
pub fn tokens_in_body(cookies: Option<&CookieSettings>, headers: &HeaderMap) -> bool {
    cookies.is_none()
        || !(headers.contains_key(ORIGIN)
            || headers
                .keys()
                .any(|name| name.as_str().starts_with("sec-fetch-")))
}

/// GET, HEAD, OPTIONS and TRACE change nothing; every other method is unsafe.
fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// The CSRF check for a request to a route: only an unsafe method authenticated by cookie
/// needs the header (a cross-site page can make the browser send cookies, not headers).
pub fn check_csrf(
    cookies: Option<&CookieSettings>,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(), Reject> {
    match cookies {
        Some(settings) if !is_safe(method) && by_cookie(cookies, headers) => {
            csrf_matches(settings, headers)
        }
        _ => Ok(()),
    }
}

/// The double submit itself: one CSRF header equal to the one CSRF cookie, else 403.
pub fn csrf_matches(settings: &CookieSettings, headers: &HeaderMap) -> Result<(), Reject> {
    const REFUSED: Reject = Reject::Refused("missing or wrong CSRF token");
    let cookie = find(headers, CSRF).map_err(|_| REFUSED)?.ok_or(REFUSED)?;
    let mut sent = headers.get_all(&settings.csrf_header).iter();
    let (Some(header), None) = (sent.next(), sent.next()) else {
        return Err(REFUSED);
    };
    match !cookie.is_empty() && same(cookie.as_bytes(), header.as_bytes()) {
        true => Ok(()),
        false => Err(REFUSED),
    }
}

/// Constant-time equality, so the comparison does not tell how much of a guess was right.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Set-Cookie headers for a fresh pair and a fresh CSRF value.
pub fn set_pair(settings: &CookieSettings, headers: &mut HeaderMap, pair: &Pair) {
    let csrf = crate::token::mint::new_id();
    let access = (
        ACCESS,
        pair.access_token.as_str(),
        "/",
        settings.access_secs,
    );
    let refresh = (
        REFRESH,
        pair.refresh_token.as_str(),
        settings.refresh_path.as_str(),
        settings.refresh_secs,
    );
    for (name, value, path, max_age) in [access, refresh] {
        append(headers, settings, name, value, path, max_age, true);
    }
    append(
        headers,
        settings,
        CSRF,
        &csrf,
        "/",
        settings.refresh_secs,
        false,
    );
}

/// Set-Cookie headers that delete every cookie of the gateway (Max-Age=0).
pub fn clear(settings: &CookieSettings, headers: &mut HeaderMap) {
    append(headers, settings, ACCESS, "", "/", 0, true);
    append(
        headers,
        settings,
        REFRESH,
        "",
        &settings.refresh_path,
        0,
        true,
    );
    append(headers, settings, CSRF, "", "/", 0, false);
}

fn append(
    headers: &mut HeaderMap,
    settings: &CookieSettings,
    name: &str,
    value: &str,
    path: &str,
    max_age: u64,
    http_only: bool,
) {
    let same_site = match settings.same_site {
        SameSite::Strict => "Strict",
        SameSite::Lax => "Lax",
        SameSite::None => "None",
    };
    let http_only = if http_only { "; HttpOnly" } else { "" };
    let text = format!(
        "{name}={value}; Path={path}; Secure{http_only}; SameSite={same_site}; Max-Age={max_age}"
    );
    // Tokens, ids and configured paths are all cookie-safe ASCII.
    if let Ok(value) = HeaderValue::from_str(&text) {
        headers.append(SET_COOKIE, value);
    }
}

/// Removes the gateway's own cookies before a request goes upstream: upstreams never see
/// a token. Allocates only when one of them is present.
pub fn strip(cookies: Option<&CookieSettings>, headers: &mut HeaderMap) {
    let ours = |name: &str| name == ACCESS || name == REFRESH || name == CSRF;
    if cookies.is_none() || !pairs(headers).any(|(name, _)| ours(name)) {
        return;
    }
    let kept: Vec<&str> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| {
            pair.split_once('=')
                .is_none_or(|(name, _)| !ours(name.trim()))
        })
        .filter(|pair| !pair.is_empty())
        .collect();
    let joined = (!kept.is_empty()).then(|| kept.join("; "));
    headers.remove(COOKIE);
    if let Some(value) = joined.and_then(|j| HeaderValue::from_str(&j).ok()) {
        headers.insert(COOKIE, value);
    }
}

#[cfg(test)]
mod tests;
