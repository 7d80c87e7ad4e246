//! Which gateway sessions each provider session (`sid`) started, so a back-channel logout
//! naming a `sid` ends those sessions and no other of the person's.
//!
//! Kept in the session book beside the sessions page's records, under a name no user can
//! have (`sid{US}{provider}{US}{sid}`, US the control character U+001F, which no `sub`
//! may contain: the sessions page, which lists the records of its user's `sub`, can never
//! show them), one record per family, for as long as the family may live: each refresh
//! notes it again. The `sid` travels in the session's tokens as `idp_sid`, so that a
//! refresh knows what to note.

use crate::config::snapshot::Snapshot;
use crate::control::app::App;
use crate::revoke::sessions::Session;
use crate::runtime::unix_now;
use crate::store::StoreError;

/// The extra claim carrying the provider's `sid` in the gateway's tokens.
pub const SID_CLAIM: &str = "idp_sid";

fn key(provider: &str, sid: &str) -> String {
    format!("sid\u{1f}{provider}\u{1f}{sid}")
}

/// Notes that `fam` belongs to the provider session `sid`, until the family's latest
/// refresh token (issued now) can have expired.
pub async fn note(
    app: &App,
    snap: &Snapshot,
    provider: &str,
    sid: &str,
    fam: &str,
) -> Result<(), StoreError> {
    let now = unix_now();
    let until = now + snap.lifetimes.refresh.as_secs() + snap.expect.leeway_secs;
    let record = Session::seen(fam, now, until, String::new(), "");
    app.sessions.record(&key(provider, sid), record).await
}

/// The families the provider session `sid` started that may still be alive.
pub async fn families(
    app: &App,
    provider: &str,
    sid: &str,
    now: u64,
) -> Result<Vec<Session>, StoreError> {
    app.sessions.list(&key(provider, sid), now).await
}

/// After a refresh of a provider session: its `sid` record lives as long as the family.
/// Missed, the family can still be ended by the person's `sub`; so a failure is logged only.
pub async fn renewed(app: &App, snap: &Snapshot, claims: &crate::token::Claims, fam: &str) {
    let sid = claims.extra.get(SID_CLAIM).and_then(|v| v.as_str());
    let (Some(provider), Some(sid)) = (claims.idp.as_deref(), sid) else {
        return;
    };
    if let Err(err) = note(app, snap, provider, sid, fam).await {
        tracing::warn!(error = %err, provider, "a provider session's sid record was not renewed");
    }
}
