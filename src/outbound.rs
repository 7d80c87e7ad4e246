//! What the gateway's own outbound calls (JWKS and discovery fetches, the http user store)
//! share: reporting a failure with its whole cause.

/// An error and its sources on one line: hyper's top-level message alone says too little.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}
