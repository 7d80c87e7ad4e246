//! One request in order: [`pipeline`] (host -> path -> endpoint? -> route -> authorize ->
//! forward), [`authorize`] (shared with forward-auth), the `/auth/*` [`endpoints`], the
//! access log, and `explain`, which walks the same stages without sending anything.

pub mod access_log;
pub mod authorize;
pub mod client;
pub mod endpoints;
pub mod explain;
pub mod host;
pub mod pipeline;
