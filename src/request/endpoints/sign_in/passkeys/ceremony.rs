//! Ceremonies in flight: the challenge state webauthn-rs needs to check the answer, kept
//! under a random id that travels in a short-lived `__Host-` cookie. Taking the state
//! removes it, so each challenge is answered once: a replayed registration or assertion
//! finds nothing and is refused.
//!
//! With the memory store the state lives in this process (the two requests of one ceremony
//! must reach the same instance). With the Redis store it is held in Redis (serialised:
//! server-side only, the cookie carries just the id, which is what webauthn-rs asks of
//! stored state), taken with `GETDEL`, so any instance can finish a ceremony another began
//! and none can finish it twice; a client may hold at most `MAX_PER_CLIENT` at once there.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{LazyLock, Mutex, PoisonError};

use http::header::{HeaderValue, SET_COOKIE};
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, PasskeyAuthentication, PasskeyRegistration,
};

use crate::control::app::App;
use crate::reject::Reject;
use crate::throttle::redis::Hold;

/// The cookie naming this browser's ceremony.
pub const COOKIE: &str = "__Host-portcullis-passkey";

/// How long a browser has to answer a challenge.
pub const TTL_SECS: u64 = 300;

/// Most ceremonies held at once in memory; beyond it new ones are refused (503), never old
/// ones lost.
const MAX_PENDING: usize = 10_000;

/// Most ceremonies one client address (IPv6: its /64) may begin within `TTL_SECS` when they
/// are held in Redis: a sign-in every half second, enough for an office behind one NAT.
const MAX_PER_CLIENT: u32 = 600;

/// What a challenge was issued for.
#[derive(Serialize, Deserialize)]
pub enum Ceremony {
    /// Registering a passkey for this signed-in user.
    Register {
        /// The canonical user name.
        user: String,
        /// webauthn-rs's state.
        state: PasskeyRegistration,
    },
    /// Signing in with a discoverable passkey.
    SignIn(DiscoverableAuthentication),
    /// Adding a passkey as the second factor to this signed-in user's session.
    StepUp {
        /// The canonical user name; the challenge allows only this user's passkeys.
        user: String,
        /// webauthn-rs's state.
        state: PasskeyAuthentication,
    },
}

static PENDING: LazyLock<Mutex<HashMap<String, (u64, Ceremony)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Keeps `ceremony` for `TTL_SECS`, in Redis when instances share a store; its id, or 503
/// when too many are in flight (or, in Redis, begun by this client) or Redis cannot take it.
pub async fn start(
    app: &App,
    client: IpAddr,
    ceremony: Ceremony,
    now: u64,
) -> Result<String, Reject> {
    let id = crate::token::mint::new_id();
    let Some(redis) = app.throttle.shared() else {
        return start_here(&id, ceremony, now).map(|()| id);
    };
    let value = serde_json::to_string(&ceremony).map_err(|_| Reject::Unavailable("passkeys"))?;
    let hold = Hold {
        id: &id,
        value: &value,
        ttl_secs: TTL_SECS,
        client,
        per_client: MAX_PER_CLIENT,
    };
    match redis.hold(&hold).await {
        Ok(true) => Ok(id),
        Ok(false) => Err(Reject::Unavailable(
            "too many passkey ceremonies from this client",
        )),
        Err(err) => {
            tracing::warn!(error = %err, "passkey ceremony not stored: redis");
            Err(Reject::Unavailable("passkey ceremonies unavailable"))
        }
    }
}

fn start_here(id: &str, ceremony: Ceremony, now: u64) -> Result<(), Reject> {
    let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
    if pending.len() >= MAX_PENDING {
        pending.retain(|_, (expires, _)| *expires > now);
    }
    if pending.len() >= MAX_PENDING {
        return Err(Reject::Unavailable("too many passkey ceremonies in flight"));
    }
    pending.insert(id.to_owned(), (now + TTL_SECS, ceremony));
    Ok(())
}

/// The ceremony the request's cookie names, removed: None when absent, spent or expired;
/// 503 when Redis cannot answer (a ceremony is never finished unchecked).
pub async fn take(app: &App, headers: &HeaderMap, now: u64) -> Result<Option<Ceremony>, Reject> {
    let Some(id) = crate::cookies::find(headers, COOKIE).ok().flatten() else {
        return Ok(None);
    };
    // Only an id this gateway could have issued names a key: any other cookie value could
    // name another key under the prefix (the per-client counter, for one) and take it.
    if !is_ceremony_id(id) {
        return Ok(None);
    }
    let Some(redis) = app.throttle.shared() else {
        let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
        let held = pending.remove(id);
        return Ok(held.and_then(|(expires, ceremony)| (expires > now).then_some(ceremony)));
    };
    match redis.take(id).await {
        // Redis expired it on time; a value this gateway did not write reads as none.
        Ok(held) => Ok(held.and_then(|value| serde_json::from_str(&value).ok())),
        Err(err) => {
            tracing::warn!(error = %err, "passkey ceremony not read: redis");
            Err(Reject::Unavailable("passkey ceremonies unavailable"))
        }
    }
}

/// The shape of `new_id`: 32 lowercase hex digits.
fn is_ceremony_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Sets the ceremony cookie (`Some(id)`) or clears it (`None`).
pub fn set_cookie(headers: &mut HeaderMap, id: Option<&str>) {
    let cookie = match id {
        Some(id) => {
            format!("{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={TTL_SECS}")
        }
        None => format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"),
    };
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.append(SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::is_ceremony_id;

    #[test]
    fn only_ids_the_gateway_issues_name_a_ceremony() {
        assert!(is_ceremony_id(&crate::token::mint::new_id()));
        for forged in [
            "ip:127.0.0.1",
            "",
            "A".repeat(32).as_str(),
            &"0".repeat(33),
            "../x",
        ] {
            assert!(!is_ceremony_id(forged), "{forged}");
        }
    }
}
