//! The Redis user store: one hash per user, shared by every gateway instance on the same
//! Redis, so a user registered through one instance logs in on all of them.
//!
//! # Keys (under the `[store]` prefix, "portcullis:" by default)
//!
//! | key                  | type | fields                                                      |
//! |----------------------|------|-------------------------------------------------------------|
//! | `{p}user:<name>`     | hash | `name`, `hash` (argon2 PHC), `roles` (JSON array of strings), `claims` (JSON object), `disabled` ("0" or "1") |
//! | `{p}passkeys:<name>` | hash | credential id -> the passkey's JSON record (see `passkeys.rs`) |
//! | `{p}passkey:<id>`    | string | the credential's owner, for a sign-in without a username |
//!
//! `<name>` is the canonical (lowercased) username. Creating a user is one script that
//! writes the hash only if the key does not exist, so two instances registering the same
//! name race safely: exactly one wins, the other answers `Taken`. A rehash upgrade on login
//! is a compare-and-set on the `hash` field: a password changed meanwhile is left alone.
//!
//! Every operation waits at most 500 ms; when Redis does not answer, logins fail with
//! `Unavailable` (503), never with `BadCredentials`.

mod admin;
mod passkeys;

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::hash::{HashError, Hasher};
use super::{login_hash_error, name, LoginError, RegisterError, User, RESERVED_CLAIMS};
use crate::store::StoreError;
use crate::store::{within, Conn, Target};

/// Longest one read or write waits for Redis.
const TIMEOUT: Duration = Duration::from_millis(500);
/// Longest one command of the CLI waits.
const CLI_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest `connect` waits for the first connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The reason given for every Redis failure (safe to log: no URL, no name).
const UNAVAILABLE: &str = "redis";

/// Writes a new user unless the key exists. KEYS[1] = the user's hash; ARGV = name, hash,
/// roles, claims, disabled. Returns 1 when created, 0 when the name is taken.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'name', ARGV[1], 'hash', ARGV[2], 'roles', ARGV[3],
  'claims', ARGV[4], 'disabled', ARGV[5])
return 1
",
    )
});

/// Replaces the `hash` field if it still holds ARGV[1]. KEYS[1] = the user's hash.
static SET_HASH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'hash') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'hash', ARGV[2])
  return 1
end
return 0
",
    )
});

/// One stored user and its hash, as read from Redis.
struct Stored {
    user: User,
    phc: String,
}

/// Users in Redis. Cloning the connection per command is an `Arc` clone.
pub struct RedisUsers {
    conn: Conn,
    prefix: String,
    /// How long one command may take: short for logins, longer for the CLI.
    timeout: Duration,
}

impl fmt::Debug for RedisUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No URL: it may carry a password.
        f.debug_struct("RedisUsers")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisUsers {
    /// Connects to `url` (its own multiplexed, reconnecting connection); keys live under
    /// `prefix`. `InvalidUrl` for a URL the client cannot use, `Unavailable` when Redis does
    /// not answer within a few seconds. Must run inside a tokio runtime.
    pub async fn connect(target: &Target, prefix: &str) -> Result<RedisUsers, StoreError> {
        RedisUsers::connect_within(target, prefix, TIMEOUT).await
    }

    /// [`RedisUsers::connect`] for the CLI: each command may take `CLI_TIMEOUT`, since an
    /// operator's command on a busy Redis should wait rather than fail.
    pub async fn connect_patient(target: &Target, prefix: &str) -> Result<RedisUsers, StoreError> {
        RedisUsers::connect_within(target, prefix, CLI_TIMEOUT).await
    }

    async fn connect_within(
        target: &Target,
        prefix: &str,
        timeout: Duration,
    ) -> Result<RedisUsers, StoreError> {
        let conn = Conn::connect(target, timeout, CONNECT_TIMEOUT).await?;
        Ok(RedisUsers {
            conn,
            prefix: prefix.to_owned(),
            timeout,
        })
    }

    /// Checks credentials with the same rules and the same cost as the file store: unknown,
    /// wrong password and disabled are all `BadCredentials`; a weak hash is upgraded.
    pub async fn authenticate(
        &self,
        hasher: &Hasher,
        username: &str,
        password: &str,
    ) -> Result<User, LoginError> {
        let stored = match name::canonical(username) {
            Ok(canon) => self.fetch(&canon).await?,
            Err(_) => None,
        };
        let Some(stored) = stored else {
            hasher
                .verify_dummy(password)
                .await
                .map_err(login_hash_error)?;
            return Err(LoginError::BadCredentials);
        };
        let verified = hasher.verify(&stored.phc, password).await.map_err(|err| {
            if matches!(err, HashError::BadHash) {
                tracing::error!(user = %stored.user.name, "stored password hash is unreadable");
            }
            login_hash_error(err)
        })?;
        // Disabled is checked after hashing so it costs the same as a wrong password.
        if !verified.ok || stored.user.disabled {
            return Err(LoginError::BadCredentials);
        }
        if verified.needs_rehash {
            self.upgrade_hash(hasher, &stored, password).await;
        }
        Ok(stored.user)
    }

    /// The current record, for refresh: `Ok(None)` for an unknown or disabled user.
    pub async fn lookup(&self, username: &str) -> Result<Option<User>, LoginError> {
        let Ok(canon) = name::canonical(username) else {
            return Ok(None);
        };
        let stored = self.fetch(&canon).await?;
        Ok(stored.map(|s| s.user).filter(|user| !user.disabled))
    }

    /// True when a user of this canonical name exists.
    pub async fn exists(&self, canonical: &str) -> Result<bool, RegisterError> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(self.key(canonical));
        within(self.timeout, cmd.query_async(&mut conn))
            .await
            .map_err(|_| RegisterError::Unavailable(UNAVAILABLE))
    }

    /// Adds a user with a precomputed hash; `Taken` if the name exists (checked atomically
    /// in Redis). Used by registration and by `portcullis user add`.
    pub async fn add_user(
        &self,
        username: &str,
        phc: &str,
        roles: Vec<String>,
    ) -> Result<User, RegisterError> {
        let name = name::canonical(username).map_err(RegisterError::Invalid)?;
        if !super::hash::is_valid_phc(phc) {
            return Err(RegisterError::Invalid("hash is not an argon2 PHC string"));
        }
        let user = User {
            name,
            roles,
            claims: serde_json::Map::new(),
            disabled: false,
            totp: None,
            recovery: Vec::new(),
        };
        let roles = serde_json::Value::from(user.roles.clone()).to_string();
        let mut invocation = CREATE.key(self.key(&user.name));
        invocation
            .arg(&user.name)
            .arg(phc)
            .arg(roles)
            .arg("{}")
            .arg("0");
        let mut conn = self.conn.clone();
        let created: i64 = within(self.timeout, invocation.invoke_async(&mut conn))
            .await
            .map_err(|_| RegisterError::Unavailable(UNAVAILABLE))?;
        if created == 1 {
            Ok(user)
        } else {
            Err(RegisterError::Taken)
        }
    }

    /// Stores a hash with the current settings; the login succeeds whether or not this does.
    async fn upgrade_hash(&self, hasher: &Hasher, stored: &Stored, password: &str) {
        let new_phc = match hasher.hash(password).await {
            Ok(phc) => phc,
            Err(error) => {
                tracing::warn!(user = %stored.user.name, %error, "password hash upgrade skipped");
                return;
            }
        };
        let mut invocation = SET_HASH.key(self.key(&stored.user.name));
        invocation.arg(&stored.phc).arg(new_phc);
        let mut conn = self.conn.clone();
        let result: Result<i64, _> = within(self.timeout, invocation.invoke_async(&mut conn)).await;
        if let Err(error) = result {
            tracing::warn!(user = %stored.user.name, %error, "password hash upgrade skipped");
        }
    }

    /// HGETALL of the user's hash; `None` when there is no such user.
    async fn fetch(&self, canonical: &str) -> Result<Option<Stored>, LoginError> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.key(canonical));
        let fields: HashMap<String, String> = within(self.timeout, cmd.query_async(&mut conn))
            .await
            .map_err(|_| LoginError::Unavailable(UNAVAILABLE))?;
        if fields.is_empty() {
            return Ok(None);
        }
        match parse(canonical, fields) {
            Ok(stored) => Ok(Some(stored)),
            Err(problem) => {
                tracing::error!(user = %canonical, problem, "user record in redis is malformed");
                Err(LoginError::Unavailable("user record is malformed"))
            }
        }
    }

    fn key(&self, canonical: &str) -> String {
        format!("{}user:{canonical}", self.prefix)
    }
}

/// A user hash's fields -> the record; the problem (never a value) when malformed.
fn parse(canonical: &str, mut fields: HashMap<String, String>) -> Result<Stored, &'static str> {
    let phc = fields.remove("hash").ok_or("no hash field")?;
    let roles = match fields.get("roles") {
        Some(text) => serde_json::from_str(text).map_err(|_| "roles is not a JSON string array")?,
        None => Vec::new(),
    };
    let claims: serde_json::Map<String, serde_json::Value> = match fields.get("claims") {
        Some(text) => serde_json::from_str(text).map_err(|_| "claims is not a JSON object")?,
        None => serde_json::Map::new(),
    };
    if claims.keys().any(|k| RESERVED_CLAIMS.contains(&k.as_str())) {
        return Err("claims override a reserved claim");
    }
    let disabled = match fields.get("disabled").map(String::as_str) {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => return Err("disabled is not \"0\" or \"1\""),
    };
    let totp = fields.get("totp").filter(|t| !t.is_empty()).cloned();
    if totp
        .as_deref()
        .is_some_and(|t| !crate::users::sealed::looks_sealed(t))
    {
        return Err("totp is not a sealed secret");
    }
    let recovery: Vec<String> = fields
        .get("recovery")
        .map(|text| text.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    if !recovery
        .iter()
        .all(|d| crate::users::sealed::looks_like_digest(d))
    {
        return Err("recovery is not a list of code digests");
    }
    let user = User {
        name: canonical.to_owned(),
        roles,
        claims,
        disabled,
        totp,
        recovery,
    };
    Ok(Stored { user, phc })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_records_are_refused() {
        let fields = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(parse("a", fields(&[("roles", "[]")])).is_err(), "no hash");
        let bad_roles = fields(&[("hash", "x"), ("roles", "\"admin\"")]);
        assert!(parse("a", bad_roles).is_err());
        let reserved = fields(&[("hash", "x"), ("claims", "{\"sub\":\"root\"}")]);
        assert!(parse("a", reserved).is_err());
        let bad_flag = fields(&[("hash", "x"), ("disabled", "yes")]);
        assert!(parse("a", bad_flag).is_err());
        let ok = parse(
            "a",
            fields(&[("hash", "x"), ("claims", "{\"team\":\"x\"}")]),
        )
        .unwrap();
        assert_eq!(ok.user.claims["team"], "x");
        assert!(!ok.user.disabled && ok.user.roles.is_empty());
    }
}
