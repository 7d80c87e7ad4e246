//! Offline helpers, off the request path: key generation, development certificates, and the
//! demo echo upstream.

pub mod devcerts;
pub mod echo;
pub mod keygen;
