//! Ceremonies in flight: the challenge state webauthn-rs needs to check the answer, kept in
//! this process under a random id that travels in a short-lived `__Host-` cookie. Taking
//! the state removes it, so each challenge is answered once: a replayed registration or
//! assertion finds nothing and is refused.
//!
//! State is local to the instance that issued the challenge; behind a load balancer the
//! two requests of one ceremony (options, then answer) must reach the same instance.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

use http::header::{HeaderValue, SET_COOKIE};
use http::HeaderMap;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, PasskeyAuthentication, PasskeyRegistration,
};

/// The cookie naming this browser's ceremony.
pub const COOKIE: &str = "__Host-portcullis-passkey";

/// How long a browser has to answer a challenge.
pub const TTL_SECS: u64 = 300;

/// Most ceremonies held at once; beyond it new ones are refused (503), never old ones lost.
const MAX_PENDING: usize = 10_000;

/// What a challenge was issued for.
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

/// Keeps `ceremony` until `now + TTL_SECS`; its id, or None when too many are in flight.
pub fn start(ceremony: Ceremony, now: u64) -> Option<String> {
    let id = crate::token::mint::new_id();
    let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
    if pending.len() >= MAX_PENDING {
        pending.retain(|_, (expires, _)| *expires > now);
    }
    if pending.len() >= MAX_PENDING {
        return None;
    }
    pending.insert(id.clone(), (now + TTL_SECS, ceremony));
    Some(id)
}

/// The ceremony the request's cookie names, removed: None when absent, spent or expired.
pub fn take(headers: &HeaderMap, now: u64) -> Option<Ceremony> {
    let id = crate::cookies::find(headers, COOKIE).ok().flatten()?;
    let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
    let (expires, ceremony) = pending.remove(id)?;
    (expires > now).then_some(ceremony)
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
