//! Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0, 2.6): a provider
//! telling the gateway that a person signed out there.

use serde_json::Value;

use super::exchange::usable_sid;
use super::Provider;
use crate::issuers::fetch;
use crate::issuers::verify::Subject;

/// The event a logout token must carry.
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What a verified logout token orders: end the sessions of `sid`, else of `sub`.
#[derive(Debug)]
pub struct LogoutOrder {
    /// The provider's `sub`, when named.
    pub sub: Option<String>,
    /// The provider's session id, when named: then only that session ends (2.7).
    pub sid: Option<String>,
    /// The token's id, spent once.
    pub jti: String,
    /// Its expiry: the jti is remembered until then.
    pub exp: u64,
}

impl Provider {
    /// Verifies a logout token: signature with the provider's keys, `iss`, `aud`, `exp`,
    /// `iat`, a `jti`, the back-channel logout event, a `sub` or a `sid` (or both), and no
    /// `nonce` (so that an ID token can never pass for one).
    pub async fn logout_order(
        &self,
        jwks_client: &fetch::Client,
        token: &str,
        leeway: u64,
        now: u64,
    ) -> Result<LogoutOrder, String> {
        let claims = self
            .verify_token(jwks_client, token, leeway, now, Subject::Optional)
            .await?;
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
        let sid = match extra.get("sid") {
            None => None,
            Some(Value::String(sid)) if usable_sid(sid) => Some(sid.clone()),
            Some(_) => return Err("logout token refused: malformed sid".into()),
        };
        let sub = Some(claims.sub).filter(|sub| !sub.is_empty());
        if sub.is_none() && sid.is_none() {
            return Err("logout token refused: neither sub nor sid".into());
        }
        Ok(LogoutOrder {
            sub,
            sid,
            jti: claims.jti,
            exp: claims.exp,
        })
    }
}
