//! GET /.well-known/jwks.json: the public verification keys, serialized once per snapshot.

use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::Response;
use http_body_util::Full;

use crate::config::snapshot::Snapshot;
use crate::Body;

/// The JWK Set of the current snapshot.
pub fn jwks(snap: &Snapshot) -> Response<Body> {
    let mut response = Response::new(Body::Right(Full::new(snap.jwks.clone())));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    // Short, so a rotated key is picked up by verifiers within minutes.
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
