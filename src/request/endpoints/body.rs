//! Reading a small JSON body with the checks every /auth endpoint shares.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

use crate::reject::Reject;
use crate::Body;

/// Largest body an /auth endpoint reads.
pub const MAX_BODY: usize = 16 * 1024;

/// Whether the request says it carries JSON (`application/json`, parameters allowed).
fn is_json(request: &Request<Incoming>) -> bool {
    has_media_type(request, "application/json")
}

/// Whether the request's one Content-Type is `media` (parameters allowed).
pub fn has_media_type(request: &Request<Incoming>, media: &str) -> bool {
    let mut sent = request.headers().get_all(CONTENT_TYPE).iter();
    let (Some(value), None) = (sent.next(), sent.next()) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let sent = value.split(';').next().unwrap_or_default().trim();
    sent.eq_ignore_ascii_case(media)
}

/// Whether the request has no body at all.
pub fn is_empty(request: &Request<Incoming>) -> bool {
    use http_body::Body as _;
    request.body().is_end_stream()
        || request
            .headers()
            .get(CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0")
}

/// Whether the request declares a body over [`MAX_BODY`].
fn declared_too_large(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > MAX_BODY as u64)
}

/// Reads and drops the body of a request about to be refused unread, up to [`MAX_BODY`]
/// bytes and within `within`; bigger or slower bodies are left unread.
///
/// Over HTTP/2, an answer sent while the request body is still arriving ends with a reset
/// of the stream (NO_ERROR, as RFC 9113 section 8.1 allows), and curl 7.88 then prints
/// "(92) Stream error in the HTTP/2 framing layer" instead of the 415 or 401. Once the body
/// has arrived, the answer closes the stream cleanly.
pub async fn discard(request: Request<Incoming>, within: Duration) {
    if is_empty(&request) || declared_too_large(&request) {
        return;
    }
    let mut body = request.into_body();
    let drain = async {
        let mut seen = 0;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, Bytes::len);
            if seen > MAX_BODY {
                break;
            }
        }
    };
    // A body that does not arrive in time is given up on: the refusal is sent regardless.
    let _ = tokio::time::timeout(within, drain).await;
}

/// Reads and parses the JSON body: 415 if not JSON, 413 over the limit, 400 if malformed.
///
/// `within` bounds the whole body read: while a request is being served the connection's
/// idle timeout is paused, so a client that sends a head and then stalls mid-body must be
/// cut off here (408), or it would hold its connection for ever.
pub async fn read_json<T: DeserializeOwned>(
    request: Request<Incoming>,
    within: Duration,
) -> Result<T, Reject> {
    if !is_json(&request) {
        discard(request, within).await;
        return Err(Reject::UnsupportedMediaType);
    }
    let bytes = read_limited(request, within).await?;
    parse_object(&bytes)
}

/// Reads the whole body, at most `MAX_BODY` bytes (413) within `within` (408).
pub async fn read_limited(request: Request<Incoming>, within: Duration) -> Result<Bytes, Reject> {
    if declared_too_large(&request) {
        return Err(Reject::PayloadTooLarge);
    }
    let collected = tokio::time::timeout(
        within,
        Limited::new(request.into_body(), MAX_BODY).collect(),
    )
    .await
    .map_err(|_| Reject::BodyTimeout)?;
    let bytes = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(err)
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(Reject::PayloadTooLarge)
        }
        Err(_) => return Err(Reject::BadRequest("request body could not be read")),
    };
    Ok(bytes)
}

/// Parses a JSON object into `T`: 400 for anything else.
///
/// serde's derived `Deserialize` also takes a struct as an array of its fields in order
/// (`["alice", "pw"]`); the endpoints document objects only, so that form is refused first.
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Reject> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(Reject::BadRequest("expected a JSON object"));
    }
    serde_json::from_slice(bytes)
        .map_err(|_| Reject::BadRequest("malformed JSON or missing fields"))
}

/// A JSON answer that must never be cached (it carries tokens).
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::Right(Full::new(Bytes::from(value.to_string()))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An empty answer (204).
pub fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Right(Full::new(Bytes::new())));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

#[cfg(test)]
mod tests {
    use super::parse_object;
    use crate::reject::Reject;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Pair {
        a: String,
        b: String,
    }

    #[test]
    fn an_object_parses_and_an_array_of_the_same_fields_is_refused() {
        let object = parse_object::<Pair>(b" \n{\"a\":\"x\",\"b\":\"y\"}");
        assert_eq!(object.map(|p| p.a), Ok("x".to_string()));
        for other in [
            &b"[\"x\",\"y\"]"[..],
            b" [\"x\",\"y\"]",
            b"\"x\"",
            b"",
            b"null",
        ] {
            assert_eq!(
                parse_object::<Pair>(other),
                Err(Reject::BadRequest("expected a JSON object")),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }
}
