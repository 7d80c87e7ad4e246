//! portcullis: a TLS-terminating reverse proxy that owns authentication.
//!
//! The folders are the architecture; imports run one way, from the accept loop down through
//! one request's stages to the leaves:
//!
//! - [`server`]: accept loops, connection cap, TLS handshake and ALPN, idle handling, the
//!   per-CPU runtimes and the drain.
//! - [`request`]: one request in order ([`request::pipeline`]), the `/auth/*` endpoints and
//!   forward-auth ([`request::endpoints`]), the access log and `explain`.
//! - [`control`]: the long-lived [`control::app::App`] and reload, signals, the admin
//!   listener, metrics.
//! - [`config`]: files in, [`config::snapshot::Snapshot`] out.
//! - The stages, leaves that know nothing of the pipeline above them: [`path`], [`route`],
//!   [`token`], [`issuers`], [`revoke`], [`policy`], [`forward`], [`assertion`],
//!   [`cookies`]; login-side stores [`users`] and [`throttle`]; shared leaves [`reject`]
//!   (every refusal's status and body), [`store`] (Redis plumbing), [`runtime`] (clock,
//!   worker count), [`outbound`] (the gateway's own HTTP calls); offline helpers in
//!   [`tools`].
//!
//! One request, module by module:
//!
//! 1. [`server`] accepts under the connection cap; [`config::tls`] handshakes and ALPN picks
//!    HTTP/1.1 or HTTP/2; the connection is served with header and idle timeouts.
//! 2. [`request::pipeline`] loads the current snapshot once; every later stage borrows it,
//!    after [`limits`] has held the request head to `max_header_bytes` and
//!    `max_header_fields` (431).
//! 3. [`path::normalize`] resolves the path or refuses a trick (400).
//! 4. [`request::endpoints`] answers `/auth/*` and the JWKS path itself.
//! 5. [`route::Table::find`] picks the first matching route in file order (404 if none).
//! 6. If the route needs a token, [`request::authorize`]: [`token::verify`], or for a token
//!    of an external identity provider [`issuers`] (401 with the reason), then [`revoke`]
//!    and [`policy`] (403).
//! 7. [`forward::headers`] strips hop-by-hop and forged identity headers and adds the real
//!    identity ([`assertion`] signs X-Auth-Assertion for upstreams that ask);
//!    [`forward::upstream`] streams both bodies (502 / 504 on faults).
//! 8. Any refusal becomes a response in [`reject::respond`], and only there.

pub mod assertion;
pub mod config;
pub mod control;
pub mod cookies;
pub mod forward;
pub mod issuers;
pub mod limits;
pub mod outbound;
pub mod path;
pub mod policy;
pub mod reject;
pub mod request;
pub mod revoke;
pub mod route;
pub mod runtime;
pub mod server;
pub mod store;
pub mod throttle;
pub mod token;
pub mod tools;
pub mod users;

/// The body of every response the gateway sends: the upstream's, streamed, or its own.
pub type Body = http_body_util::Either<
    forward::body::UpstreamBody<forward::upstream::RequestBody>,
    http_body_util::Full<bytes::Bytes>,
>;
