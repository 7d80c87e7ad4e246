//! One request in order: [`pipeline`] (host -> path -> endpoint? -> route -> authorize ->
//! forward), the `/auth/*` [`endpoints`], the access log, and `explain`, which walks the same
//! stages without sending anything.

pub mod access_log;
pub mod endpoints;
pub mod explain;
pub mod pipeline;
