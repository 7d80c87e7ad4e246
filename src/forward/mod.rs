//! Forwarding an approved request: header rewriting and the upstream connection pool.

pub mod body;
pub mod headers;
pub mod pool;
pub mod proxies;
pub mod upstream;
pub mod values;
