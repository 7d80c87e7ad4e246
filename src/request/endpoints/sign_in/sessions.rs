//! `{prefix}/sessions`: the signed-in user's live sign-ins, and a button to end each one.
//! Ending one revokes its token family, on every instance the way logout does.

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::page;
use super::redirect::Origin;
use super::session_page::{posted_form, signed_in, SignedIn};
use crate::config::snapshot::{SignInSettings, Snapshot};
use crate::control::app::App;
use crate::reject::Reject;
use crate::request::client::ConnInfo;
use crate::revoke::sessions::Session;
use crate::runtime::unix_now;
use crate::token::Claims;
use crate::Body;

/// GET lists, POST ends one.
pub async fn sessions(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    settings: &SignInSettings,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let host = super::request_origin_host(&request)?;
    let origin = Origin {
        scheme: conn.proto,
        host: &host,
    };
    // No live session: the same way in as any protected page (renew, or sign in).
    let SignedIn { claims, csrf } = match signed_in(app, snap, origin, &request).await {
        Ok(signed_in) => signed_in,
        Err(way_in) => return Ok(way_in),
    };
    match *request.method() {
        Method::GET | Method::HEAD => list(app, snap, settings, &claims, &csrf).await,
        Method::POST => end(app, snap, conn, settings, origin, &claims, &csrf, request).await,
        _ => Err(Reject::MethodNotAllowed),
    }
}

/// The user's sessions whose family is still alive.
async fn live(app: &App, user: &str) -> Result<Vec<Session>, Reject> {
    let now = unix_now();
    let unavailable = |_| Reject::Unavailable("session store unavailable");
    let mut alive = Vec::new();
    for record in app.sessions.list(user, now).await.map_err(unavailable)? {
        let revoked = app
            .revocations
            .is_revoked_checked("", user, record.last_used, Some(&record.fam), now)
            .await
            .map_err(unavailable)?;
        if !revoked {
            alive.push(record);
        }
    }
    Ok(alive)
}

async fn list(
    app: &App,
    snap: &Snapshot,
    settings: &SignInSettings,
    claims: &Claims,
    csrf: &str,
) -> Result<Response<Body>, Reject> {
    let records = live(app, &claims.sub).await?;
    let action = format!("{}/sessions", page::escape(&snap.auth.prefix));
    let mut rows = String::new();
    for record in &records {
        let this = claims.fam.as_deref() == Some(record.fam.as_str());
        rows.push_str(&format!(
            "<li><p><strong>{device}</strong><br>Signed in {started}{factors} · last used {used}<br>From {client}<br><small>{agent}</small></p>\
<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<input type=\"hidden\" name=\"fam\" value=\"{fam}\"><button type=\"submit\">End this session</button></form></li>",
            device = if this { "This device" } else { "Another device" },
            started = utc(record.started),
            factors = factors(&record.amr),
            used = utc(record.last_used),
            client = page::escape(&record.client),
            agent = page::escape(&record.user_agent),
            csrf = page::escape(csrf),
            fam = page::escape(&record.fam),
        ));
    }
    let prefix = page::escape(&snap.auth.prefix);
    let change = match app.users.can_change() && claims.idp.is_none() {
        true => format!("<a href=\"{prefix}/change-password\">Change password</a> · "),
        false => String::new(),
    };
    let body = format!(
        "<p>Signed in as <strong>{}</strong>. {} live session(s).</p><ul class=\"sessions\">{rows}</ul>\
<p>{change}<a href=\"{prefix}/sign-out\">Sign out</a></p>",
        page::escape(&claims.sub),
        records.len()
    );
    Ok(page::html(settings, StatusCode::OK, "Your sessions", &body))
}

#[allow(clippy::too_many_arguments)]
async fn end(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    settings: &SignInSettings,
    origin: Origin<'_>,
    claims: &Claims,
    csrf: &str,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let refuse = |status, text: &str| page::html(settings, status, "Refused", &page::message(text));
    let request_id = super::super::request_id(&request);
    let form = match posted_form(app, origin, request).await {
        Ok(form) => form,
        Err((status, text)) => return Ok(refuse(status, text)),
    };
    if !crate::cookies::same(csrf.as_bytes(), form.csrf.as_bytes()) {
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            "The form expired. Open the sessions page again.",
        ));
    }
    // Only one of the user's own sessions can be ended from here.
    let records = live(app, &claims.sub).await?;
    if !records.iter().any(|r| r.fam == form.fam) {
        return Ok(refuse(
            StatusCode::NOT_FOUND,
            "That session has already ended.",
        ));
    }
    let now = unix_now();
    let until = now + snap.lifetimes.refresh.as_secs() + snap.expect.leeway_secs;
    app.revocations
        .revoke_family(&form.fam, until)
        .await
        .map_err(|_| Reject::Unavailable("revocation store unavailable"))?;
    if let Err(err) = app.sessions.forget(&claims.sub, &form.fam).await {
        tracing::warn!(error = %err, "an ended session stays listed until it expires");
    }
    tracing::info!(target: "audit", event = "session_ended", user = %claims.sub, client = %conn.client, request_id, family = %form.fam);
    let back = format!(
        "{}://{}{}/sessions",
        origin.scheme, origin.host, snap.auth.prefix
    );
    Ok(super::see_other(&back))
}

/// `2026-12-02 11:16 UTC`.
fn utc(secs: u64) -> String {
    let days = secs / 86_400;
    let (hour, minute) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

/// How a session signed in, in words: " with password and one-time code", say.
fn factors(amr: &[String]) -> String {
    let words: Vec<&str> = amr
        .iter()
        .filter_map(|method| match method.as_str() {
            "pwd" => Some("password"),
            "otp" => Some("one-time code"),
            "hwk" => Some("passkey"),
            "swk" => Some("software key"),
            _ => None,
        })
        .collect();
    match words.as_slice() {
        [] => String::new(),
        [one] => format!(" with {one}"),
        [first @ .., last] => format!(" with {} and {last}", first.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::{factors, utc};

    #[test]
    fn factors_read_as_words() {
        let amr = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(factors(&amr(&["pwd"])), " with password");
        assert_eq!(
            factors(&amr(&["pwd", "otp", "mfa"])),
            " with password and one-time code"
        );
        assert_eq!(factors(&amr(&[])), "");
    }

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_796_210_160), "2026-12-02 11:16 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
    }
}
