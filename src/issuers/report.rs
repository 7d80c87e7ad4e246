//! What the admin listener says about external issuers: /readyz lines and /metrics series.
//!
//! An unreachable JWKS endpoint never makes /readyz fail: the cached keys keep verifying
//! (as Envoy keeps serving with its cached JWKS), and every instance would fail alike, so
//! taking them out of a load balancer would only turn the provider's outage into the
//! gateway's. /readyz reports it in its body and /metrics as `portcullis_issuer_jwks_up 0`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use super::Issuers;

/// One line per issuer for the /readyz body: "issuer ISS: jwks ok (N keys)" or
/// "issuer ISS: jwks stale (...)" / "issuer ISS: jwks unreachable (...)".
pub fn readiness(issuers: &Issuers) -> String {
    let mut out = String::new();
    for issuer in &issuers.0 {
        let status = issuer.live.status();
        let keys = issuer.live.keys.load().keys.len();
        let iss = &issuer.issuer;
        let _ = match (&status.failure, status.fetched) {
            (None, Some(_)) => writeln!(out, "issuer {iss}: jwks ok ({keys} keys)"),
            (Some((when, reason)), _) if keys > 0 => writeln!(
                out,
                "issuer {iss}: jwks stale, {keys} cached keys in use (last fetch failed {}s ago: {reason})",
                when.elapsed().as_secs()
            ),
            (Some((when, reason)), _) => writeln!(
                out,
                "issuer {iss}: jwks unreachable, no keys: its tokens are refused (last fetch failed {}s ago: {reason})",
                when.elapsed().as_secs()
            ),
            (None, None) => writeln!(out, "issuer {iss}: jwks not fetched yet"),
        };
    }
    out
}

/// Appends the per-issuer series to a Prometheus text exposition.
pub fn metrics(out: &mut String, issuers: &Issuers) {
    if issuers.is_empty() {
        return;
    }
    let label = |iss: &str| {
        iss.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    out.push_str("# TYPE portcullis_issuer_jwks_fetches_total counter\n");
    for issuer in &issuers.0 {
        let iss = label(&issuer.issuer);
        let live = &issuer.live;
        let _ = writeln!(
            out,
            "portcullis_issuer_jwks_fetches_total{{issuer=\"{iss}\",result=\"ok\"}} {}\nportcullis_issuer_jwks_fetches_total{{issuer=\"{iss}\",result=\"failed\"}} {}",
            live.fetches_ok.load(Relaxed),
            live.fetches_failed.load(Relaxed)
        );
    }
    out.push_str("# TYPE portcullis_issuer_jwks_keys gauge\n");
    for issuer in &issuers.0 {
        let keys = issuer.live.keys.load().keys.len();
        let _ = writeln!(
            out,
            "portcullis_issuer_jwks_keys{{issuer=\"{}\"}} {keys}",
            label(&issuer.issuer)
        );
    }
    out.push_str("# TYPE portcullis_issuer_jwks_up gauge\n");
    for issuer in &issuers.0 {
        let status = issuer.live.status();
        let up = status.fetched.is_some() && status.failure.is_none();
        let _ = writeln!(
            out,
            "portcullis_issuer_jwks_up{{issuer=\"{}\"}} {}",
            label(&issuer.issuer),
            u8::from(up)
        );
    }
}
