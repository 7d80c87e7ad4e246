//! OpenID Connect providers people sign in with (`[[sign_in.providers]]`): discovery, the
//! authorization request, the code exchange and the ID token checks. The pages that drive
//! them live with the other sign-in pages; this module knows nothing of requests.
//!
//! Discovery is read on first use and kept; the provider's keys are an [`Issuer`] of their
//! own, fetched like `[[issuers]]` keys (same fetch rules) but never accepted as bearer
//! tokens: an ID token only ever starts a gateway session.

mod client_auth;
mod exchange;
mod logout;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

pub use exchange::{printable, usable_sid, Person, Pkce};
pub use logout::LogoutOrder;

use super::fetch::fetch_uri;
use super::Issuer;
use crate::outbound::error_chain;

/// Largest discovery document or token response read.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// The client that talks to providers (discovery GET, token POST).
pub type Client = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Builds the provider client; reads the trust store, so call it once, at start.
pub fn client() -> Client {
    super::fetch::client_with_body()
}

/// How the gateway proves to the token endpoint that it is the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret (RFC 6749 2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT the gateway signs with its own key (RFC 7523, OpenID Connect Core 9).
    PrivateKeyJwt,
}

/// A client secret; its Debug never shows it.
pub struct Secret(pub String);

/// How the gateway proves it is the client: a shared secret, or a private key.
#[derive(Debug)]
pub enum Credential {
    /// `client_secret_basic` or `client_secret_post`.
    Secret(Secret),
    /// `private_key_jwt`.
    Key(ClientKey),
}

/// The key that signs client assertions (its Debug shows the kid and alg only).
#[derive(Debug)]
pub struct ClientKey {
    /// The kid the provider knows the key by, if it needs one.
    pub kid: Option<String>,
    /// The loaded signing key, pinned to its algorithm.
    pub key: crate::token::keys::SignKey,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// One compiled `[[sign_in.providers]]` entry.
#[derive(Debug)]
pub struct Provider {
    /// In URLs (`{prefix}/sign-in/{id}`, `{prefix}/callback/{id}`) and the `idp` claim.
    pub id: String,
    /// The button's text.
    pub title: String,
    /// The gateway's client id at the provider; ID tokens must be for it.
    pub client_id: String,
    /// The client secret or key.
    pub credential: Credential,
    /// Requested scopes, space-separated, `openid` among them.
    pub scopes: String,
    /// The configured client authentication, or None for the first discovery offers.
    pub client_auth: Option<ClientAuth>,
    /// Email domains let in (lowercase); empty lets every verified person in.
    pub allowed_domains: Vec<String>,
    /// Where the provider's sign-out sends the browser back to, if anywhere.
    pub post_logout: Option<PostLogout>,
    /// The provider's issuer, audience (the client id), roles claim and live keys.
    pub keys: Arc<Issuer>,
    /// The discovery document, once read.
    discovered: Mutex<Option<Arc<Endpoints>>>,
}

/// What discovery says about the provider.
#[derive(Debug)]
pub struct Endpoints {
    /// Where the browser is sent to sign in.
    pub authorization: String,
    /// Where the code is exchanged.
    pub token: Uri,
    /// RP-initiated logout, when offered.
    pub end_session: Option<String>,
    /// The provider sends `iss` with the authorization response (RFC 9207): then it must.
    pub iss_parameter: bool,
    /// The client authentication used at the token endpoint.
    pub client_auth: ClientAuth,
}

impl Provider {
    /// A provider whose discovery is still to be read.
    pub fn new(fields: ProviderFields, keys: Arc<Issuer>) -> Provider {
        Provider {
            id: fields.id,
            title: fields.title,
            client_id: fields.client_id,
            credential: fields.credential,
            scopes: fields.scopes,
            client_auth: fields.client_auth,
            allowed_domains: fields.allowed_domains,
            post_logout: fields.post_logout,
            keys,
            discovered: Mutex::new(None),
        }
    }

    /// The provider's endpoints, read from discovery on first use (bounded by the
    /// provider's fetch timeout) and kept; a failure is retried on the next use.
    pub async fn endpoints(&self, client: &Client) -> Result<Arc<Endpoints>, String> {
        let cached = self.discovered.lock().ok().and_then(|d| d.clone());
        if let Some(endpoints) = cached {
            return Ok(endpoints);
        }
        let read = tokio::time::timeout(self.keys.fetch_timeout, self.discover(client)).await;
        let endpoints = Arc::new(read.unwrap_or_else(|_| Err("discovery timed out".into()))?);
        if let Ok(mut slot) = self.discovered.lock() {
            *slot = Some(endpoints.clone());
        }
        Ok(endpoints)
    }

    async fn discover(&self, client: &Client) -> Result<Endpoints, String> {
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
            authorization_endpoint: String,
            token_endpoint: String,
            end_session_endpoint: Option<String>,
            #[serde(default)]
            authorization_response_iss_parameter_supported: bool,
            #[serde(default)]
            token_endpoint_auth_methods_supported: Vec<String>,
        }
        let url = discovery_url(&self.keys.issuer)?;
        let body = send(client, Request::get(url), Full::default()).await?;
        let doc: Discovery = serde_json::from_slice(&body.1)
            .map_err(|e| format!("discovery document malformed: {e}"))?;
        // OpenID Connect Discovery 1.0, 4.3: the issuer must be exactly the one configured.
        if doc.issuer != self.keys.issuer {
            return Err(format!(
                "discovery names issuer {:?}, expected {:?}",
                doc.issuer, self.keys.issuer
            ));
        }
        fetch_uri(&doc.authorization_endpoint)
            .map_err(|e| format!("authorization_endpoint: {e}"))?;
        let token = fetch_uri(&doc.token_endpoint).map_err(|e| format!("token_endpoint: {e}"))?;
        let end_session = match doc.end_session_endpoint {
            Some(url) => Some(fetch_uri(&url).map_err(|e| format!("end_session_endpoint: {e}"))?),
            None => None,
        };
        let offered = doc.token_endpoint_auth_methods_supported.iter();
        let mut first_known = offered.filter_map(|m| match m.as_str() {
            "client_secret_basic" => Some(ClientAuth::ClientSecretBasic),
            "client_secret_post" => Some(ClientAuth::ClientSecretPost),
            _ => None,
        });
        let client_auth = match &self.credential {
            // A key can only sign assertions (the configuration checked client_auth).
            Credential::Key(_) => ClientAuth::PrivateKeyJwt,
            Credential::Secret(_) => self
                .client_auth
                .or_else(|| first_known.next())
                // OpenID Connect Discovery 1.0, 3: absent means client_secret_basic.
                .unwrap_or(ClientAuth::ClientSecretBasic),
        };
        Ok(Endpoints {
            authorization: doc.authorization_endpoint,
            token,
            end_session: end_session.map(|u| u.to_string()),
            iss_parameter: doc.authorization_response_iss_parameter_supported,
            client_auth,
        })
    }
}

/// The fields of a [`Provider`] besides its keys, as the configuration gives them.
#[derive(Debug)]
pub struct ProviderFields {
    /// See [`Provider::id`].
    pub id: String,
    /// See [`Provider::title`].
    pub title: String,
    /// See [`Provider::client_id`].
    pub client_id: String,
    /// See [`Provider::credential`].
    pub credential: Credential,
    /// See [`Provider::scopes`].
    pub scopes: String,
    /// See [`Provider::client_auth`].
    pub client_auth: Option<ClientAuth>,
    /// See [`Provider::allowed_domains`].
    pub allowed_domains: Vec<String>,
    /// See [`Provider::post_logout`].
    pub post_logout: Option<PostLogout>,
}

/// The `post_logout_redirect_uri` sent with RP-initiated logout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostLogout {
    /// This absolute URL.
    Url(String),
    /// This path on the origin the sign-out came in on.
    Path(String),
}

impl PostLogout {
    /// The URL for a sign-out at `scheme://host`.
    pub fn url(&self, scheme: &str, host: &str) -> String {
        match self {
            PostLogout::Url(url) => url.clone(),
            PostLogout::Path(path) => format!("{scheme}://{host}{path}"),
        }
    }
}

/// `scheme://host[:port]` of an absolute URL, lowercase.
pub fn origin_of(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?;
    let authority = uri.authority()?;
    Some(format!("{scheme}://{authority}").to_ascii_lowercase())
}

/// `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery 1.0, 4).
pub fn discovery_url(issuer: &str) -> Result<Uri, String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    fetch_uri(&url)
}

/// Sends a request: the status and body (at most MAX_BODY_BYTES); any status but 200, 400
/// and 401 (a token endpoint's error answers; 401 for `invalid_client`, RFC 6749 5.2) is a
/// failure.
async fn send(
    client: &Client,
    request: http::request::Builder,
    body: Full<Bytes>,
) -> Result<(StatusCode, Bytes), String> {
    let request = request
        .header(http::header::ACCEPT, "application/json")
        .body(body)
        .map_err(|e| e.to_string())?;
    let uri = request.uri().clone();
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("{uri}: {}", error_chain(&e)))?;
    let status = response.status();
    let answered = [
        StatusCode::OK,
        StatusCode::BAD_REQUEST,
        StatusCode::UNAUTHORIZED,
    ];
    if !answered.contains(&status) {
        return Err(format!("{uri}: answered {status}"));
    }
    let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| format!("{uri}: body unreadable or over {MAX_BODY_BYTES} bytes: {e}"))?
        .to_bytes();
    Ok((status, body))
}
