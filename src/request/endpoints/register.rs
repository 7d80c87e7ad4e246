//! POST /auth/register (off by default): create a user in the file store.

use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;

use super::body;
use crate::config::snapshot::Snapshot;
use crate::control::app::App;
use crate::reject::Reject;
use crate::request::client::ConnInfo;
use crate::users::RegisterError;
use crate::Body;

/// The registration body. Debug is not derived: it holds a password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    username: String,
    password: String,
}

/// Registers; 201 only once the user is persisted.
pub async fn register(
    app: &App,
    snap: &Snapshot,
    conn: &ConnInfo,
    request: Request<Incoming>,
) -> Result<http::Response<Body>, Reject> {
    let request_id = super::request_id(&request);
    let form: Registration = body::read_json(request, app.listen.idle_timeout).await?;
    let roles = snap.auth.default_roles.clone();
    let registered = app
        .users
        .register(&app.hasher, &form.username, &form.password, roles)
        .await;
    let user = match registered {
        Ok(user) => user,
        Err(RegisterError::Taken) => return Err(Reject::Taken),
        Err(RegisterError::Invalid(reason)) => return Err(Reject::BadRequest(reason)),
        Err(RegisterError::Unsupported) => return Err(Reject::NoRoute),
        Err(RegisterError::Busy) => return Err(Reject::Unavailable("too many logins in progress")),
        Err(RegisterError::Unavailable(reason)) => {
            tracing::warn!(reason, "user store unavailable");
            return Err(Reject::Unavailable("user store unavailable"));
        }
    };
    tracing::info!(target: "audit", event = "register", user = %user.name, client = %conn.client, request_id);
    Ok(body::json(
        StatusCode::CREATED,
        &serde_json::json!({ "username": user.name, "roles": user.roles }),
    ))
}
