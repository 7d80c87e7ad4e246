//! portcullis: a TLS-terminating reverse proxy that owns authentication.
//!
//! One request, module by module:
//!
//! 1. [`listen`] accepts under the connection cap; [`tls`] handshakes and ALPN picks
//!    HTTP/1.1 or HTTP/2; hyper-util serves the connection with header and idle timeouts.
//! 2. [`pipeline`] loads the current [`snapshot`] once; every later stage borrows it, after
//!    [`limits`] has held the request head to `max_header_bytes` and `max_header_fields` (431).
//! 3. [`path::normalize`] resolves the path or refuses a trick (400).
//! 4. [`route::Table::find`] picks the first matching route in file order (404 if none).
//! 5. If the route needs a token: [`token::verify`], or for a token of an external
//!    identity provider [`issuers`] (401 with the reason), then [`policy`] (403).
//! 6. [`forward::headers`] strips hop-by-hop and forged identity headers and adds the
//!    real identity ([`assertion`] signs X-Auth-Assertion for upstreams that ask);
//!    [`forward::upstream`] streams both bodies (502 / 504 on faults).
//! 7. Any refusal becomes a response in [`reject::respond`], and only there.

pub mod access;
pub mod admin;
pub mod app;
pub mod assertion;
pub mod config;
mod conn;
pub mod cookies;
pub mod devcerts;
pub mod echo;
pub mod endpoints;
pub mod explain;
pub mod forward;
mod idle;
pub mod issuers;
pub mod keygen;
pub mod limits;
pub mod listen;
pub mod metrics;
pub mod path;
pub mod pipeline;
pub mod policy;
pub mod reject;
pub mod revoke;
pub mod route;
pub mod signals;
pub mod snapshot;
pub mod throttle;
pub mod tls;
pub mod token;
pub mod users;

/// The body of every response the gateway sends: the upstream's, streamed, or its own.
pub type Body = http_body_util::Either<
    forward::body::UpstreamBody<forward::upstream::RequestBody>,
    http_body_util::Full<bytes::Bytes>,
>;

/// Property checks for the fuzz targets in `fuzz/` and their corpus replay; not an API.
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzzing;
