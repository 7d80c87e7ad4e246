//! Token assertions shared by test groups, and reading a token's parts without verifying.

use http::StatusCode;
use serde_json::Value;

use super::Response;

/// 401 with the RFC 6750 challenge and JSON body for `reason`, never echoing `token`.
pub fn assert_invalid_token(resp: &Response, reason: &str, token: &str) {
    assert_eq!(
        resp.status,
        StatusCode::UNAUTHORIZED,
        "body: {}",
        resp.text()
    );
    assert_eq!(
        resp.header("www-authenticate").as_deref(),
        Some(
            format!(
                r#"Bearer realm="portcullis", error="invalid_token", error_description="{reason}""#
            )
            .as_str()
        ),
        "WWW-Authenticate"
    );
    let ctype = resp.header("content-type").unwrap_or_default();
    assert!(
        ctype.starts_with("application/json"),
        "content-type {ctype:?}"
    );
    let body = resp.json();
    assert_eq!(body["error"], "invalid_token", "body: {body}");
    assert_eq!(body["error_description"], reason, "body: {body}");
    assert_no_token_in(resp, token);
}

/// Neither the token nor any of its three parts appears in the response.
pub fn assert_no_token_in(resp: &Response, token: &str) {
    let text = resp.text();
    let mut headers = String::new();
    for (k, v) in &resp.headers {
        headers.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    for part in std::iter::once(token).chain(token.split('.')) {
        if part.len() >= 8 {
            assert!(
                !text.contains(part),
                "response body echoes (part of) the token: {text}"
            );
            assert!(
                !headers.contains(part),
                "response headers echo (part of) the token: {headers}"
            );
        }
    }
}

/// base64url without padding.
pub fn b64url(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// The JSON of a token part (0 = header, 1 = payload), not verified.
pub fn token_part(token: &str, part: usize) -> Value {
    use base64::Engine as _;
    let seg = token
        .split('.')
        .nth(part)
        .unwrap_or_else(|| panic!("token has no part {part}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(seg)
        .unwrap_or_else(|e| panic!("token part {part} is not base64url: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("token part {part} is not JSON: {e}"))
}

/// The claims of a token, not verified.
pub fn claims_of(token: &str) -> Value {
    token_part(token, 1)
}
