//! Serving connections: accept loops under the connection cap, the TLS handshake and ALPN,
//! idle handling and parking of idle HTTP/1.1 connections, one runtime per CPU, and the
//! graceful drain.

mod conn;
mod fd_limit;
mod idle;
pub mod listen;
mod park;
mod serve;
