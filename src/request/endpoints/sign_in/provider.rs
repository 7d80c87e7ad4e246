//! Signing in through an OpenID Connect provider: `GET {prefix}/sign-in/{id}` sends the
//! browser to the provider (code flow, PKCE S256, `state`, `nonce`), and
//! `GET {prefix}/callback/{id}` takes it back, checks the answer and starts a session.
//!
//! What the callback needs (`state`, `nonce`, the PKCE verifier, `rd`) stays out of the
//! provider's URLs, in a short-lived `__Host-` cookie of this browser: a callback carrying a
//! `state` from another browser, or none, finds nothing to match. The cookie is `SameSite=Lax`
//! because the return from the provider is a cross-site navigation, which carries no Strict
//! cookie; for the same reason the callback ends on a same-origin "continue" page, not a
//! redirect, so the page asked for is reached by a same-site navigation that carries the
//! session's cookies.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::header::{HeaderValue, SET_COOKIE};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::{page, query_param, redirect, request_origin_host};
use crate::config::snapshot::{SignInSettings, Snapshot};
use crate::control::app::App;
use std::sync::Arc;

use crate::issuers::provider::{Endpoints, Person, Pkce, Provider};
use crate::reject::Reject;
use crate::request::client::ConnInfo;
use crate::runtime::unix_now;
use crate::Body;

/// How long a sign-in at a provider may take, from the button to the callback.
const STATE_SECS: u64 = 600;

/// What the callback checks the provider's answer against.
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    rd: String,
    started: u64,
}

/// `GET {prefix}/sign-in/{id}`: off to the provider.
pub async fn start(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    settings: &SignInSettings,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let provider = named(snap, settings, &request, "sign-in")?;
    let host = request_origin_host(&request)?;
    let endpoints = match provider.endpoints(&app.provider_client).await {
        Ok(endpoints) => endpoints,
        Err(reason) => {
            tracing::warn!(provider = %provider.id, reason = %reason, "sign-in provider unreachable");
            return Ok(trouble(
                settings,
                snap,
                StatusCode::BAD_GATEWAY,
                &format!(
                    "{} cannot be reached right now. Try again in a moment.",
                    provider.title
                ),
            ));
        }
    };
    let pending = Pending {
        state: crate::token::mint::new_id(),
        nonce: crate::token::mint::new_id(),
        verifier: Pkce::new().verifier,
        rd: query_param(&request, "rd").unwrap_or_default(),
        started: unix_now(),
    };
    let callback = callback_uri(snap, conn, &host, &provider.id);
    let location = provider.authorization_url(
        &endpoints,
        &callback,
        &pending.state,
        &pending.nonce,
        &pending.verifier,
    );
    let mut response = super::redirect_response(StatusCode::FOUND, &location);
    let cookie = format!(
        "{}={}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={STATE_SECS}",
        cookie_name(&provider.id),
        pending.encode()
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    Ok(response)
}

/// Why a callback ends on a trouble page: status, a reason for the audit log, the text shown.
struct Refusal {
    status: StatusCode,
    reason: String,
    text: String,
}

impl Refusal {
    fn new(status: StatusCode, reason: impl Into<String>, text: impl Into<String>) -> Refusal {
        Refusal {
            status,
            reason: reason.into(),
            text: text.into(),
        }
    }
}

/// `GET {prefix}/callback/{id}`: the provider's answer, checked, becomes a session.
pub async fn callback(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    settings: &SignInSettings,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    let provider = named(snap, settings, &request, "callback")?;
    let host = request_origin_host(&request)?;
    let origin = redirect::Origin {
        scheme: conn.proto,
        host: &host,
    };
    let request_id = super::super::request_id(&request);
    let user_agent = super::super::login::user_agent(request.headers()).to_string();
    let redirect_uri = callback_uri(snap, conn, &host, &provider.id);
    let checked = match answer(app, provider, &request).await {
        Ok((pending, endpoints, code)) => {
            let exchanged = provider
                .exchange(
                    &app.provider_client,
                    &endpoints,
                    &code,
                    &redirect_uri,
                    &pending.verifier,
                )
                .await;
            let (leeway, now) = (snap.expect.leeway_secs, unix_now());
            let person = match exchanged {
                Ok(id_token) => {
                    let jwks = &app.jwks_client;
                    provider
                        .person(jwks, &id_token, &pending.nonce, leeway, now)
                        .await
                }
                Err(reason) => Err(reason),
            };
            person.map(|person| (pending, person)).map_err(|reason| {
                let text =
                    "The identity provider's answer could not be accepted. Please sign in again.";
                Refusal::new(StatusCode::FORBIDDEN, reason, text)
            })
        }
        Err(refusal) => Err(refusal),
    };
    let mut response = match checked {
        Ok((pending, person)) => {
            let pair =
                start_session(app, snap, conn, provider, &person, &request_id, &user_agent).await?;
            let target = redirect::target(&pending.rd, origin, &settings.allowed_hosts)
                .unwrap_or_else(|| origin.home());
            let mut response = continue_page(settings, &target);
            if let Some(cookies) = &snap.auth.cookies {
                crate::cookies::set_pair(cookies, response.headers_mut(), &pair);
            }
            response
        }
        Err(refusal) => {
            tracing::info!(target: "audit", event = "provider_sign_in_refused", provider = %provider.id, reason = %refusal.reason, client = %conn.client, request_id);
            trouble(settings, snap, refusal.status, &refusal.text)
        }
    };
    // The pending sign-in is spent whatever happened: a callback works once.
    clear_state(&mut response, &provider.id);
    Ok(response)
}

/// The authorization response checked against this browser's pending sign-in: `state`,
/// then `iss` (RFC 9207, against mix-up), then the provider's own error; the pending
/// sign-in, the provider's endpoints and the code.
async fn answer(
    app: &App,
    provider: &Provider,
    request: &Request<Incoming>,
) -> Result<(Pending, Arc<Endpoints>, String), Refusal> {
    let bad = |reason: &str, text: &str| Refusal::new(StatusCode::BAD_REQUEST, reason, text);
    let cookie = crate::cookies::find(request.headers(), &cookie_name(&provider.id));
    let pending = cookie.ok().flatten().and_then(Pending::decode);
    let Some(pending) = pending.filter(|p| p.started + STATE_SECS > unix_now()) else {
        return Err(bad("no sign-in pending", "This sign-in expired, was already used, or was started in another browser. Please sign in again."));
    };
    let state = query_param(request, "state").unwrap_or_default();
    if !crate::cookies::same(state.as_bytes(), pending.state.as_bytes()) {
        return Err(bad(
            "state mismatch",
            "This sign-in was started in another browser or tab. Please sign in again.",
        ));
    }
    let endpoints = provider
        .endpoints(&app.provider_client)
        .await
        .map_err(|reason| {
            let text = "The identity provider cannot be reached right now. Try again in a moment.";
            Refusal::new(
                StatusCode::BAD_GATEWAY,
                format!("provider unreachable: {reason}"),
                text,
            )
        })?;
    match query_param(request, "iss") {
        Some(iss) if iss == provider.keys.issuer => {}
        None if !endpoints.iss_parameter => {}
        _ => {
            return Err(bad(
                "iss mismatch",
                "The answer did not come from the identity provider this sign-in started at.",
            ))
        }
    }
    if let Some(error) = query_param(request, "error") {
        let code = crate::issuers::provider::printable(&error);
        let text = format!("{} did not sign you in ({code}).", provider.title);
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            format!("provider error {code}"),
            text,
        ));
    }
    match query_param(request, "code") {
        Some(code) => Ok((pending, endpoints, code)),
        None => Err(bad(
            "no code",
            "The identity provider's answer was incomplete. Please sign in again.",
        )),
    }
}

/// A new session for a person the provider vouched for: `{id}:{sub}`, so a provider's
/// subject can never be taken for a local user or another provider's. The provider's `sid`
/// is noted with the family first: a session a back-channel logout could not find by it
/// is not handed out.
async fn start_session(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    provider: &Provider,
    person: &Person,
    request_id: &str,
    user_agent: &str,
) -> Result<crate::revoke::Pair, Reject> {
    let name = format!("{}:{}", provider.id, person.sub);
    let authn = crate::token::Authn {
        amr: person.amr.clone(),
        auth_time: person.auth_time,
        idp: Some(provider.id.clone()),
    };
    let mut claims = person.claims.clone();
    if let Some(sid) = &person.sid {
        let sid = serde_json::Value::String(sid.clone());
        claims.insert(super::provider_sessions::SID_CLAIM.into(), sid);
    }
    let subject = super::super::tokens::Subject {
        name: &name,
        roles: &person.roles,
        claims: &claims,
        authn: &authn,
    };
    let login = super::super::login::start_family;
    let (pair, family) = login(app, snap, conn, &subject, request_id, user_agent).await?;
    if let Some(sid) = &person.sid {
        super::provider_sessions::note(app, snap, &provider.id, sid, &family)
            .await
            .map_err(|_| Reject::Unavailable("session store unavailable"))?;
    }
    Ok(pair)
}

/// The provider a GET's path names after `{prefix}/{kind}/`.
fn named<'s>(
    snap: &Snapshot,
    settings: &'s SignInSettings,
    request: &Request<Incoming>,
    kind: &str,
) -> Result<&'s Provider, Reject> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Err(Reject::MethodNotAllowed);
    }
    named_any(snap, settings, request, kind)
}

/// The provider a path names after `{prefix}/{kind}/`; an unknown one is no route.
pub(super) fn named_any<'s>(
    snap: &Snapshot,
    settings: &'s SignInSettings,
    request: &Request<Incoming>,
    kind: &str,
) -> Result<&'s Provider, Reject> {
    let path = request.uri().path();
    let id = path
        .strip_prefix(snap.auth.prefix.as_str())
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|rest| rest.strip_prefix(kind))
        .and_then(|rest| rest.strip_prefix('/'))
        .map(|id| id.trim_end_matches('/'));
    id.and_then(|id| settings.provider(id))
        .ok_or(Reject::NoRoute)
}

/// Where the provider sends the browser back: this origin's callback for the provider.
fn callback_uri(snap: &Snapshot, conn: &ConnInfo, host: &str, id: &str) -> String {
    format!("{}://{host}{}/callback/{id}", conn.proto, snap.auth.prefix)
}

fn cookie_name(id: &str) -> String {
    format!("__Host-portcullis-oidc-{id}")
}

fn clear_state(response: &mut Response<Body>, id: &str) {
    let clear = format!(
        "{}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
        cookie_name(id)
    );
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

/// A clear page about provider trouble, with the way back to the sign-in page.
fn trouble(
    settings: &SignInSettings,
    snap: &Snapshot,
    status: StatusCode,
    text: &str,
) -> Response<Body> {
    let again = format!("{}/sign-in", snap.auth.prefix);
    let body = format!(
        "{}<p><a href=\"{}\">Back to sign-in</a></p>",
        page::message(text),
        page::escape(&again)
    );
    page::html(settings, status, "Sign-in did not work", &body)
}

/// Signed in: a same-origin page that moves on to `target` by itself (and by a link), so
/// the next request is a same-site navigation that carries the session's Strict cookies.
fn continue_page(settings: &SignInSettings, target: &str) -> Response<Body> {
    let body = format!(
        "<p>You are signed in.</p><p><a id=\"continue\" href=\"{}\">Continue</a></p>",
        page::escape(target)
    );
    let mut response = page::html(settings, StatusCode::OK, "Signed in", &body);
    if let Ok(value) = HeaderValue::from_str(&format!("0;url={target}")) {
        response
            .headers_mut()
            .insert(http::header::HeaderName::from_static("refresh"), value);
    }
    response
}

impl Pending {
    fn encode(&self) -> String {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("s", &self.state)
            .append_pair("n", &self.nonce)
            .append_pair("v", &self.verifier)
            .append_pair("rd", &self.rd)
            .append_pair("t", &self.started.to_string())
            .finish();
        URL_SAFE_NO_PAD.encode(form)
    }

    fn decode(value: &str) -> Option<Pending> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        let field = |name: &str| {
            form_urlencoded::parse(&bytes)
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        Some(Pending {
            state: field("s").filter(|s| !s.is_empty())?,
            nonce: field("n").filter(|n| !n.is_empty())?,
            verifier: field("v").filter(|v| !v.is_empty())?,
            rd: field("rd").unwrap_or_default(),
            started: field("t")?.parse().ok()?,
        })
    }
}
