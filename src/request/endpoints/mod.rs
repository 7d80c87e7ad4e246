//! The endpoints the gateway answers itself: /auth/* and the JWKS document. Never forwarded.

mod body;
pub mod jwks;
pub mod login;
pub mod logout;
pub mod password;
pub mod refresh;
pub mod register;
mod second_factor;
pub mod sign_in;
mod tokens;
pub mod verify;

use http::{Method, Request, Response};
use hyper::body::Incoming;

use crate::config::snapshot::Snapshot;
use crate::control::app::App;
use crate::reject::Reject;
use crate::request::client::ConnInfo;
use crate::Body;

pub use crate::token::jwks::JWKS_PATH;

/// Which gateway endpoint a normalized path names, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// POST {prefix}/login.
    Login,
    /// POST {prefix}/refresh.
    Refresh,
    /// POST {prefix}/logout.
    Logout,
    /// POST {prefix}/register (only when enabled).
    Register,
    /// POST {prefix}/password: a signed-in user changes their password.
    Password,
    /// GET /.well-known/jwks.json.
    Jwks,
    /// Forward-auth ({prefix}/verify by default; only when enabled). Any method: the
    /// method that matters is the original one, in a header.
    Verify,
    /// GET and POST {prefix}/sign-in (only with `[sign_in]` enabled).
    SignIn,
    /// GET and POST {prefix}/sign-out (only with `[sign_in]` enabled).
    SignOut,
    /// GET and POST {prefix}/sessions (only with `[sign_in]` enabled).
    Sessions,
    /// GET and POST {prefix}/change-password (only with `[sign_in]` enabled).
    PasswordPage,
    /// GET and POST {prefix}/second-factor: a session adds a one-time code (step-up).
    SecondFactorPage,
    /// GET {prefix}/sign-in/{provider}: off to an OpenID provider.
    ProviderSignIn,
    /// GET {prefix}/callback/{provider}: back from it.
    ProviderCallback,
    /// POST {prefix}/backchannel-logout/{provider}: the provider says a person signed out.
    ProviderLogout,
}

/// Recognizes a gateway endpoint; everything else goes to the route table.
pub fn classify(snap: &Snapshot, method: &Method, path: &str) -> Option<Endpoint> {
    if path == JWKS_PATH && (method == Method::GET || method == Method::HEAD) {
        return Some(Endpoint::Jwks);
    }
    if let Some(forward) = &snap.auth.forward_auth {
        if path.trim_end_matches('/') == forward.path {
            return Some(Endpoint::Verify);
        }
    }
    let rest = path.strip_prefix(snap.auth.prefix.as_str())?;
    match rest.trim_end_matches('/') {
        "/login" => Some(Endpoint::Login),
        "/refresh" => Some(Endpoint::Refresh),
        "/logout" => Some(Endpoint::Logout),
        "/register" if snap.auth.registration => Some(Endpoint::Register),
        "/sign-in" if snap.auth.sign_in.is_some() => Some(Endpoint::SignIn),
        "/sign-out" if snap.auth.sign_in.is_some() => Some(Endpoint::SignOut),
        "/sessions" if snap.auth.sign_in.is_some() => Some(Endpoint::Sessions),
        "/change-password" if snap.auth.sign_in.is_some() => Some(Endpoint::PasswordPage),
        "/second-factor" if snap.auth.sign_in.is_some() => Some(Endpoint::SecondFactorPage),
        "/password" => Some(Endpoint::Password),
        rest if snap.auth.sign_in.is_some() && rest.starts_with("/sign-in/") => {
            Some(Endpoint::ProviderSignIn)
        }
        rest if snap.auth.sign_in.is_some() && rest.starts_with("/callback/") => {
            Some(Endpoint::ProviderCallback)
        }
        rest if snap.auth.sign_in.is_some() && rest.starts_with("/backchannel-logout/") => {
            Some(Endpoint::ProviderLogout)
        }
        _ => None,
    }
}

/// Whether an endpoint answers this method: the pages and the JWKS document their own
/// (checked by them), a renewal by GET when sign-in is on, every other endpoint POST only.
pub fn method_allowed(snap: &Snapshot, endpoint: Endpoint, method: &Method) -> bool {
    match endpoint {
        Endpoint::Jwks
        | Endpoint::Verify
        | Endpoint::SignIn
        | Endpoint::SignOut
        | Endpoint::Sessions
        | Endpoint::PasswordPage
        | Endpoint::SecondFactorPage
        | Endpoint::ProviderSignIn
        | Endpoint::ProviderCallback => true,
        Endpoint::Refresh if refresh::is_renewal(snap, method) => true,
        _ => method == Method::POST,
    }
}

/// Answers a gateway endpoint.
pub async fn handle(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    endpoint: Endpoint,
    request: Request<Incoming>,
) -> Result<Response<Body>, Reject> {
    if !method_allowed(snap, endpoint, request.method()) {
        body::discard(request, app.listen.idle_timeout).await;
        return Err(Reject::MethodNotAllowed);
    }
    let renewal = endpoint == Endpoint::Refresh && refresh::is_renewal(snap, request.method());
    match endpoint {
        Endpoint::Login => login::login(app, snap, conn, request).await,
        Endpoint::Refresh if renewal => refresh::renew(app, snap, conn, request).await,
        Endpoint::Refresh => refresh::refresh(app, snap, conn, request).await,
        Endpoint::Logout => logout::logout(app, snap, conn, request).await,
        Endpoint::Register => register::register(app, snap, conn, request).await,
        Endpoint::Password => password::change(app, snap, conn, request).await,
        Endpoint::Jwks => Ok(jwks::jwks(snap)),
        Endpoint::Verify => match &snap.auth.forward_auth {
            Some(settings) => verify::verify(app, snap, conn, settings, &request).await,
            None => Err(Reject::NoRoute),
        },
        Endpoint::SignIn => match &snap.auth.sign_in {
            Some(settings) => sign_in::sign_in(app, snap, conn, settings, request).await,
            None => Err(Reject::NoRoute),
        },
        Endpoint::Sessions => match &snap.auth.sign_in {
            Some(settings) => sign_in::sessions::sessions(app, snap, conn, settings, request).await,
            None => Err(Reject::NoRoute),
        },
        Endpoint::ProviderSignIn => match &snap.auth.sign_in {
            Some(settings) => sign_in::provider::start(app, snap, conn, settings, request).await,
            None => Err(Reject::NoRoute),
        },
        Endpoint::ProviderCallback => match &snap.auth.sign_in {
            Some(settings) => sign_in::provider::callback(app, snap, conn, settings, request).await,
            None => Err(Reject::NoRoute),
        },
        Endpoint::ProviderLogout => match &snap.auth.sign_in {
            Some(settings) => sign_in::backchannel::logout(app, snap, settings, request).await,
            None => Err(Reject::NoRoute),
        },
        Endpoint::SignOut => match &snap.auth.sign_in {
            Some(settings) => sign_in::sign_out::sign_out(app, snap, conn, settings, request).await,
            None => Err(Reject::NoRoute),
        },
        Endpoint::PasswordPage => match &snap.auth.sign_in {
            Some(settings) => {
                sign_in::password_page::password_page(app, snap, conn, settings, request).await
            }
            None => Err(Reject::NoRoute),
        },
        Endpoint::SecondFactorPage => match &snap.auth.sign_in {
            Some(settings) => {
                use sign_in::second_factor_page::second_factor_page;
                second_factor_page(app, snap, conn, settings, request).await
            }
            None => Err(Reject::NoRoute),
        },
    }
}

/// The request id for audit events: the client's when well formed, else a fresh one.
pub(crate) fn request_id(request: &Request<Incoming>) -> String {
    request
        .headers()
        .get(&crate::forward::headers::X_REQUEST_ID)
        .filter(|v| crate::forward::headers::is_valid_request_id(v))
        .and_then(|v| v.to_str().ok())
        .map_or_else(crate::token::mint::new_id, str::to_string)
}
