//! The http user store: an existing backend checks the password, the gateway issues tokens.
//!
//! Contract: `POST {"username","password"}` as JSON; 200 with
//! `{"sub": "...", "roles": [...], "claims": {...}}` (roles and claims optional) is a
//! success, 401 or 403 a wrong user or password, anything else an outage.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use super::{LoginError, User, RESERVED_CLAIMS};
use crate::outbound::error_chain;
use crate::token::fits_user_header;

/// The largest backend answer read; a user record is a few hundred bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// A pooled client for one auth backend URL.
pub struct HttpStore {
    uri: Uri,
    timeout: Duration,
    /// Boxed: the client is large and would make every `UserStore` as large.
    client: Box<Client<HttpConnector, Full<Bytes>>>,
}

impl fmt::Debug for HttpStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Host and path only: a query string may carry an API key.
        f.debug_struct("HttpStore")
            .field("host", &self.uri.authority().map(|a| a.as_str()))
            .field("path", &self.uri.path())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Reply {
    sub: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    claims: serde_json::Map<String, serde_json::Value>,
}

impl HttpStore {
    /// A store for `url`, which must be `http://host[:port]/path` without credentials;
    /// `timeout` covers the whole exchange, connect to last body byte.
    pub fn new(url: &str, timeout: Duration) -> Result<HttpStore, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("users url {url:?} is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("users url {url:?} must start with http://"));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("users url {url:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err("users url must not contain credentials".to_string());
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let client = Box::new(Client::builder(TokioExecutor::new()).build(connector));
        Ok(HttpStore {
            uri,
            timeout,
            client,
        })
    }

    /// Asks the backend; see the module doc for the contract. Outages carry a short reason
    /// and are logged here with their cause, once.
    pub async fn authenticate(&self, username: &str, password: &str) -> Result<User, LoginError> {
        let exchange = tokio::time::timeout(self.timeout, self.exchange(username, password));
        let result = match exchange.await {
            Ok(result) => result,
            Err(_) => Err(Failure::new("auth backend timed out", String::new())),
        };
        result.map_err(|failure| match failure {
            Failure::Rejected => LoginError::BadCredentials,
            Failure::Outage { reason, cause } => {
                let host = self.uri.authority().map(|a| a.as_str());
                tracing::warn!(?host, reason, %cause, "auth backend unavailable");
                LoginError::Unavailable(reason)
            }
        })
    }

    async fn exchange(&self, username: &str, password: &str) -> Result<User, Failure> {
        let body = serde_json::json!({ "username": username, "password": password }).to_string();
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Failure::new("auth backend request invalid", e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| Failure::new("auth backend unreachable", error_chain(&e)))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Err(Failure::Rejected),
            other => {
                return Err(Failure::new(
                    "auth backend answered an unexpected status",
                    other.to_string(),
                ))
            }
        }
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| {
                Failure::new("auth backend answer unreadable or too large", e.to_string())
            })?
            .to_bytes();
        parse_reply(&body)
    }
}

fn parse_reply(body: &[u8]) -> Result<User, Failure> {
    let reply: Reply = serde_json::from_slice(body)
        .map_err(|e| Failure::new("auth backend answer malformed", e.to_string()))?;
    // The sub becomes the user header: one it cannot carry unchanged is the backend's fault.
    if !fits_user_header(&reply.sub) {
        return Err(Failure::new(
            "auth backend answer malformed",
            "sub empty or not a header value".into(),
        ));
    }
    let mut claims = reply.claims;
    claims.retain(|key, _| !RESERVED_CLAIMS.contains(&key.as_str()));
    Ok(User {
        name: reply.sub,
        roles: reply.roles,
        claims,
        disabled: false,
        totp: None,
        recovery: Vec::new(),
    })
}

/// How an exchange went wrong, before it becomes a [`LoginError`].
enum Failure {
    /// 401 or 403: the backend says no.
    Rejected,
    /// Anything else; `cause` is for the log (it never holds the request body).
    Outage { reason: &'static str, cause: String },
}

impl Failure {
    fn new(reason: &'static str, cause: String) -> Failure {
        Failure::Outage { reason, cause }
    }
}

#[cfg(test)]
mod tests;
