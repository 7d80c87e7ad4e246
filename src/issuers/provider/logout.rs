//! Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0, 2.6): a provider
//! telling the gateway that a person signed out there.

use serde_json::Value;

use super::Provider;
use crate::issuers::fetch;

/// The event a logout token must carry.
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What a verified logout token orders: end the sessions of `sub`.
#[derive(Debug)]
pub struct LogoutOrder {
    /// The provider's `sub`.
    pub sub: String,
    /// The token's id, spent once.
    pub jti: String,
    /// Its expiry: the jti is remembered until then.
    pub exp: u64,
}

impl Provider {
    /// Verifies a logout token: signature with the provider's keys, `iss`, `aud`, `exp`,
    /// `iat`, a `jti`, the back-channel logout event, and no `nonce` (so that an ID token
    /// can never pass for one). A token naming only a `sid` is refused: the gateway ends a
    /// person's sessions by `sub`.
    pub async fn logout_order(
        &self,
        jwks_client: &fetch::Client,
        token: &str,
        leeway: u64,
        now: u64,
    ) -> Result<LogoutOrder, String> {
        let claims = self.verify_token(jwks_client, token, leeway, now).await?;
        let extra = &claims.extra;
        let events = extra.get("events").and_then(Value::as_object);
        if !events.is_some_and(|e| e.get(BACKCHANNEL_EVENT).is_some_and(Value::is_object)) {
            return Err("logout token refused: no back-channel logout event".into());
        }
        if extra.contains_key("nonce") {
            return Err("logout token refused: it has a nonce".into());
        }
        if claims.iat == 0 || claims.jti.is_empty() {
            return Err("logout token refused: no iat or jti".into());
        }
        Ok(LogoutOrder {
            sub: claims.sub,
            jti: claims.jti,
            exp: claims.exp,
        })
    }
}
