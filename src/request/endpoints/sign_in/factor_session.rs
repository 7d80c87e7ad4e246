//! What the second-factor page's two halves share (adding a code to a session, and
//! enrolling a first factor): the request's view, the refusal page, and the upgrade of the
//! session once a code was good.

use http::header::{HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};

use super::redirect::{self, Origin};
use super::{navigation, page};
use crate::config::snapshot::{SignInSettings, Snapshot};
use crate::control::app::App;
use crate::reject::Reject;
use crate::request::client::ConnInfo;
use crate::runtime::unix_now;
use crate::token::{Authn, Claims};
use crate::users::User;
use crate::Body;

const HEADING: &str = "Second factor";

/// One request's view of the page, shared by the code and enrolment halves.
pub(super) struct Page<'a> {
    pub app: &'a App,
    pub conn: &'a ConnInfo,
    pub shown: &'a Shown<'a>,
    pub origin: Origin<'a>,
    pub claims: &'a Claims,
}

/// What every rendering of the page needs.
pub(super) struct Shown<'a> {
    pub snap: &'a Snapshot,
    pub settings: &'a SignInSettings,
    pub csrf: &'a str,
    /// The "use your passkey" block above the code form; empty when the user has none.
    pub passkey: String,
}

impl Shown<'_> {
    /// The page with `body` under the passkey block (and the CSP its script needs).
    pub(super) fn page(&self, status: StatusCode, heading: &str, body: &str) -> Response<Body> {
        if self.passkey.is_empty() {
            return page::html(self.settings, status, heading, body);
        }
        let body = format!("{}{body}", self.passkey);
        let mut response = page::html(self.settings, status, heading, &body);
        super::passkeys::allow_script(&mut response);
        response
    }

    /// A page that says why no code can be taken, with the ways on.
    pub(super) fn refused(&self, status: StatusCode, text: &str, rd: &str) -> Response<Body> {
        let prefix = &self.snap.auth.prefix;
        let sign_in =
            navigation::sign_in_url(prefix, "sign-in", Some(rd).filter(|r| !r.is_empty()));
        let body = format!(
            "{}<p><a href=\"{}\">Sign in again</a></p>",
            page::message(text),
            page::escape(&sign_in)
        );
        page::html(self.settings, status, HEADING, &body)
    }
}

/// A code the person just gave, and the request it came with.
pub(super) struct Stepped<'a> {
    pub user: &'a User,
    pub code: &'a Authn,
    /// What the audit calls the factor: "otp", "recovery" or "hwk".
    pub method: &'static str,
    pub request_id: &'a str,
    pub user_agent: &'a str,
}

/// Replaces the session by one that adds the code's methods, revokes the old one, and
/// says where the browser goes next (`rd` when it is safe, else home).
pub(super) async fn upgrade(
    page: &Page<'_>,
    stepped: &Stepped<'_>,
    rd: &str,
) -> Result<(crate::revoke::Pair, String), Reject> {
    let (app, snap) = (page.app, page.shown.snap);
    let authn = stepped_up(page.claims, stepped.code);
    let user = stepped.user;
    let pair = super::login::start_session(
        app,
        snap,
        page.conn,
        user,
        &authn,
        stepped.request_id,
        stepped.user_agent,
    )
    .await?;
    retire(app, snap, page.claims).await;
    tracing::info!(target: "audit", event = "step_up_ok", user = %user.name, client = %page.conn.client, request_id = stepped.request_id, method = stepped.method);
    let target = redirect::target(rd, page.origin, &page.shown.settings.allowed_hosts)
        .unwrap_or_else(|| page.origin.home());
    Ok((pair, target))
}

/// The session's sign-in with the code's methods added; its time and provider unchanged.
fn stepped_up(claims: &Claims, code: &Authn) -> Authn {
    let mut amr = Authn::of(claims).amr;
    for method in &code.amr {
        if !amr.contains(method) {
            amr.push(method.clone());
        }
    }
    Authn {
        amr,
        auth_time: claims.auth_time,
        idp: claims.idp.clone(),
    }
}

/// Revokes the weaker session the new one replaces; a failure leaves it to expire.
async fn retire(app: &App, snap: &Snapshot, claims: &Claims) {
    let Some(fam) = &claims.fam else { return };
    let until = unix_now() + snap.lifetimes.refresh.as_secs() + snap.expect.leeway_secs;
    if let Err(err) = app.revocations.revoke_family(fam, until).await {
        tracing::warn!(error = %err, user = %claims.sub, "the session before a step-up stays valid until it expires");
    }
    if let Err(err) = app.sessions.forget(&claims.sub, fam).await {
        tracing::warn!(error = %err, "a replaced session stays listed until it expires");
    }
}

/// The sentence a refused code gets on the page.
pub(super) fn refusal_text(rejected: Reject) -> String {
    match rejected {
        Reject::MfaRequired => "Enter the one-time code.".to_string(),
        Reject::BadOtp(reason) => format!("The one-time code was refused: {reason}."),
        Reject::BadCredentials => "The password is wrong.".to_string(),
        Reject::Throttled(secs) => {
            format!("Too many failed attempts. Try again in {secs} seconds.")
        }
        _ => "The code cannot be checked right now. Try again in a moment.".to_string(),
    }
}

/// `Retry-After` on a throttled answer.
pub(super) fn retry_after(response: &mut Response<Body>, rejected: Reject) {
    if let Reject::Throttled(secs) = rejected {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
}
