//! A browser navigation without a usable session is sent to sign in (or through a silent
//! renewal) instead of getting the API's 401; every other request keeps the 401.

use http::header::{HeaderMap, ACCEPT, AUTHORIZATION};
use http::{Method, Response, StatusCode};

use crate::config::snapshot::{Route, Snapshot};
use crate::reject::Reject;
use crate::Body;

/// Whether a request is a browser navigation: GET or HEAD, and `Sec-Fetch-Mode: navigate`,
/// or, from a browser that sends no fetch metadata, an Accept that puts HTML first.
pub fn is_navigation(method: &Method, headers: &HeaderMap) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return false;
    }
    if let Some(mode) = headers.get("sec-fetch-mode") {
        return mode == "navigate";
    }
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let first = accept.split(',').next().unwrap_or_default();
    let mut parts = first.split(';');
    let media = parts.next().unwrap_or_default().trim();
    let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
    !refused
        && (media.eq_ignore_ascii_case("text/html")
            || media.eq_ignore_ascii_case("application/xhtml+xml"))
}

/// Whether this refusal means "no usable session" (as opposed to "not allowed"), or a
/// session that a second factor or a new sign-in would make good enough.
fn wants_session(rejected: Reject) -> bool {
    matches!(
        rejected,
        Reject::Token(_) | Reject::Revoked | Reject::UserGone | Reject::StepUp(_)
    )
}

/// Where a refused navigation goes instead: `{prefix}/refresh?rd=` when the browser still
/// holds the CSRF cookie (which lives as long as the session, so the refresh cookie may
/// still renew it), else `{prefix}/sign-in?rd=`; a session short of a route's sign-in
/// demand goes to `{prefix}/second-factor?rd=`, or signs in again when only that helps.
/// None: answer the refusal as usual.
pub fn redirect(
    snap: &Snapshot,
    route: &Route,
    method: &Method,
    headers: &HeaderMap,
    original_url: impl FnOnce() -> Option<String>,
    rejected: Reject,
) -> Option<String> {
    snap.auth.sign_in.as_ref()?;
    let by_browser = route.sign_in
        && wants_session(rejected)
        && !headers.contains_key(AUTHORIZATION)
        && is_navigation(method, headers);
    if !by_browser {
        return None;
    }
    let renewable = crate::cookies::find(headers, crate::cookies::CSRF)
        .is_ok_and(|csrf| csrf.is_some_and(|v| !v.is_empty()));
    let step = match rejected {
        // The session is good: it needs a code added, or a whole new sign-in.
        Reject::StepUp(step_up) if step_up.code_helps() => "second-factor",
        Reject::StepUp(_) => "sign-in",
        _ if renewable => "refresh",
        _ => "sign-in",
    };
    Some(sign_in_url(
        &snap.auth.prefix,
        step,
        original_url().as_deref(),
    ))
}

/// `{prefix}/{step}?rd=<url, percent-encoded>`, or without rd when there is none.
pub fn sign_in_url(prefix: &str, step: &str, rd: Option<&str>) -> String {
    match rd {
        Some(rd) => {
            let encoded: String = form_urlencoded::byte_serialize(rd.as_bytes()).collect();
            format!("{prefix}/{step}?rd={encoded}")
        }
        None => format!("{prefix}/{step}"),
    }
}

/// Where a page that needs a live session sends a browser that has none: through a
/// renewal when the CSRF cookie says the session may still be renewed, else to sign in;
/// either way back to `back` (the page's own absolute URL) afterwards.
pub fn session_first(prefix: &str, headers: &HeaderMap, back: &str) -> Response<Body> {
    let renewable = crate::cookies::find(headers, crate::cookies::CSRF)
        .is_ok_and(|csrf| csrf.is_some_and(|v| !v.is_empty()));
    let step = if renewable { "refresh" } else { "sign-in" };
    found(&sign_in_url(prefix, step, Some(back)))
}

/// The 302 a navigation gets.
pub fn found(location: &str) -> Response<Body> {
    super::redirect_response(StatusCode::FOUND, location)
}

#[cfg(test)]
mod tests {
    use super::{is_navigation, sign_in_url};
    use http::{HeaderMap, HeaderValue, Method};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn navigations_are_told_from_fetches_and_api_calls() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(is_navigation(
            &Method::GET,
            &headers(&[("sec-fetch-mode", "navigate"), ("accept", browser)])
        ));
        assert!(is_navigation(
            &Method::HEAD,
            &headers(&[("accept", browser)])
        ));
        assert!(!is_navigation(
            &Method::POST,
            &headers(&[("sec-fetch-mode", "navigate")])
        ));
        assert!(!is_navigation(
            &Method::GET,
            &headers(&[("sec-fetch-mode", "cors"), ("accept", browser)])
        ));
        assert!(!is_navigation(
            &Method::GET,
            &headers(&[("accept", "application/json")])
        ));
        assert!(!is_navigation(&Method::GET, &headers(&[("accept", "*/*")])));
        assert!(!is_navigation(
            &Method::GET,
            &headers(&[("accept", "text/html;q=0")])
        ));
        assert!(!is_navigation(&Method::GET, &HeaderMap::new()));
    }

    #[test]
    fn the_original_url_travels_percent_encoded() {
        assert_eq!(
            sign_in_url("/auth", "sign-in", Some("https://gw:8443/a b?x=1&y=/")),
            "/auth/sign-in?rd=https%3A%2F%2Fgw%3A8443%2Fa+b%3Fx%3D1%26y%3D%2F"
        );
        assert_eq!(sign_in_url("/auth", "sign-in", None), "/auth/sign-in");
    }
}
