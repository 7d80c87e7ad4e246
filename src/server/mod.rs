//! Serving connections: accept loops under the connection cap, the TLS handshake and ALPN,
//! idle handling, one runtime per CPU, and the graceful drain.

mod conn;
mod idle;
pub mod listen;
