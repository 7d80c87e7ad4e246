//! How the gateway proves at the token endpoint that it is the client: the shared secret
//! (HTTP Basic or form fields), or a client assertion signed with its own key
//! (`private_key_jwt`, RFC 7523).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::{ClientAuth, ClientKey, Credential, Endpoints, Provider};

impl Provider {
    /// Adds the client's proof to a token request: the Authorization header, or fields.
    pub(super) fn authenticate(
        &self,
        endpoints: &Endpoints,
        request: http::request::Builder,
        form: &mut form_urlencoded::Serializer<'_, String>,
    ) -> Result<http::request::Builder, String> {
        match (&self.credential, endpoints.client_auth) {
            (Credential::Secret(secret), ClientAuth::ClientSecretBasic) => {
                let encode =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = format!("{}:{}", encode(&self.client_id), encode(&secret.0));
                let basic = format!("Basic {}", STANDARD.encode(pair));
                Ok(request.header(http::header::AUTHORIZATION, basic))
            }
            (Credential::Secret(secret), ClientAuth::ClientSecretPost) => {
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_secret", &secret.0);
                Ok(request)
            }
            (Credential::Key(key), ClientAuth::PrivateKeyJwt) => {
                let assertion = client_assertion(key, &self.client_id, &endpoints.token)?;
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_assertion_type", ASSERTION_TYPE);
                form.append_pair("client_assertion", &assertion);
                Ok(request)
            }
            _ => Err("client authentication does not fit the client's credential".into()),
        }
    }
}

/// RFC 7523, 2.2: the client assertion is a JWT bearer token.
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a client assertion is good for: it is used at once.
const ASSERTION_SECS: u64 = 60;

/// A client assertion (RFC 7523, 3; OpenID Connect Core 9): `iss` = `sub` = the client id,
/// `aud` the token endpoint, a fresh `jti`, a minute to live, signed with the client key.
fn client_assertion(key: &ClientKey, client_id: &str, token: &http::Uri) -> Result<String, String> {
    let now = crate::runtime::unix_now();
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": client_id,
        "aud": token.to_string(),
        "jti": crate::token::mint::new_id(),
        "iat": now,
        "exp": now + ASSERTION_SECS,
    });
    let mut header = jsonwebtoken::Header::new(key.key.alg.jwt());
    header.kid.clone_from(&key.kid);
    jsonwebtoken::encode(&header, &claims, &key.key.key)
        .map_err(|_| "the client assertion could not be signed".to_string())
}
