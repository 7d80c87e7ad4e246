//! What the listener knows about a client connection, shared by every stage of a request.

use std::net::{IpAddr, SocketAddr};

/// What the listener knows about the connection a request came in on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// "https" or "http", for X-Forwarded-Proto.
    pub proto: &'static str,
    /// The client's address: the peer's, or what a trusted proxy says it is.
    pub client: IpAddr,
}
