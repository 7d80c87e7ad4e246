//! What `portcullis user` and the password endpoint change in the Redis store: one field of
//! a user's hash, written only if the user exists (a script, so a user deleted meanwhile is
//! not brought back as a hash without a password), a delete, and the list of users.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use redis::Script;

use super::{parse, RedisUsers, UNAVAILABLE};
use crate::store::within;
use crate::users::{hash, name, Change, ChangeError, RegisterError, User};

/// Sets one field of an existing user. KEYS[1] = the user's hash; ARGV = field, value.
/// Returns 1 when set, 0 when there is no such user.
static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
",
    )
});

/// Strikes one digest from a user's recovery set. KEYS[1] = the user's hash; ARGV[1] =
/// the digest. Returns 1 when it was there, 0 when not: of two racing uses, one wins.
static STRIKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local set = redis.call('HGET', KEYS[1], 'recovery')
if not set then
  return 0
end
local kept, found = {}, false
for digest in string.gmatch(set, '%S+') do
  if digest == ARGV[1] and not found then
    found = true
  else
    table.insert(kept, digest)
  end
end
if not found then
  return 0
end
redis.call('HSET', KEYS[1], 'recovery', table.concat(kept, ' '))
return 1
",
    )
});

/// Keys one SCAN call asks for; the listing loops until the cursor comes back to 0.
const SCAN_COUNT: usize = 500;

impl RedisUsers {
    /// Strikes a recovery-code digest from `username`'s set: true when it was there.
    pub async fn strike_recovery(&self, username: &str, digest: &str) -> Result<bool, ChangeError> {
        let name = name::canonical(username).map_err(ChangeError::Invalid)?;
        let mut invocation = STRIKE.key(self.key(&name));
        invocation.arg(digest);
        let mut conn = self.conn.clone();
        let struck: i64 = within(self.timeout, invocation.invoke_async(&mut conn))
            .await
            .map_err(|_| ChangeError::Unavailable(UNAVAILABLE))?;
        Ok(struck == 1)
    }

    /// Makes `change` to the user `username`: `Taken` when adding a name that exists,
    /// `UnknownUser` for any other change of a name that does not.
    pub async fn change(&self, username: &str, change: Change) -> Result<(), ChangeError> {
        let name = name::canonical(username).map_err(ChangeError::Invalid)?;
        let (field, value) = match change {
            Change::Add { phc, roles } => {
                return match self.add_user(&name, &phc, roles).await {
                    Ok(_) => Ok(()),
                    Err(RegisterError::Taken) => Err(ChangeError::Taken),
                    Err(RegisterError::Invalid(reason)) => Err(ChangeError::Invalid(reason)),
                    Err(_) => Err(ChangeError::Unavailable(UNAVAILABLE)),
                }
            }
            Change::Delete => return self.delete(&name).await,
            Change::Passkey(change) => return self.change_passkey(&name, change).await,
            Change::Password(phc) if !hash::is_valid_phc(&phc) => {
                return Err(ChangeError::Invalid("hash is not an argon2 PHC string"))
            }
            Change::Password(phc) => ("hash", phc),
            Change::Disabled(on) => ("disabled", if on { "1" } else { "0" }.to_string()),
            Change::Roles(roles) => ("roles", serde_json::Value::from(roles).to_string()),
            // An empty field reads as "no second factor".
            Change::Totp(sealed) => ("totp", sealed.unwrap_or_default()),
            Change::Recovery(digests) => ("recovery", digests.join(" ")),
        };
        let mut invocation = UPDATE.key(self.key(&name));
        invocation.arg(field).arg(value);
        let mut conn = self.conn.clone();
        let set: i64 = within(self.timeout, invocation.invoke_async(&mut conn))
            .await
            .map_err(|_| ChangeError::Unavailable(UNAVAILABLE))?;
        match set {
            1 => Ok(()),
            _ => Err(ChangeError::UnknownUser),
        }
    }

    async fn delete(&self, name: &str) -> Result<(), ChangeError> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(name));
        let deleted: i64 = within(self.timeout, cmd.query_async(&mut conn))
            .await
            .map_err(|_| ChangeError::Unavailable(UNAVAILABLE))?;
        match deleted {
            0 => Err(ChangeError::UnknownUser),
            _ => self.forget_passkeys(name).await,
        }
    }

    /// Every user, in name order. A malformed record is logged (by name, never a value)
    /// and left out; a user deleted during the listing is left out.
    pub async fn list(&self) -> Result<Vec<User>, ChangeError> {
        let unavailable = |_| ChangeError::Unavailable(UNAVAILABLE);
        let key_prefix = self.key("");
        let pattern = format!("{}*", glob_escape(&key_prefix));
        let mut conn = self.conn.clone();
        let keys = self
            .conn
            .scan(&pattern, SCAN_COUNT, self.timeout)
            .await
            .map_err(unavailable)?;
        // SCAN may return a key twice; the set keeps it once.
        let names: std::collections::BTreeSet<String> = keys
            .iter()
            .filter_map(|k| k.strip_prefix(&key_prefix))
            .map(str::to_string)
            .collect();
        let mut users = BTreeMap::new();
        for name in names {
            let mut cmd = redis::cmd("HGETALL");
            cmd.arg(self.key(&name));
            let fields: HashMap<String, String> = within(self.timeout, cmd.query_async(&mut conn))
                .await
                .map_err(unavailable)?;
            if fields.is_empty() {
                continue;
            }
            match parse(&name, fields) {
                Ok(stored) => {
                    users.insert(name, stored.user);
                }
                Err(problem) => {
                    tracing::warn!(user = %name, problem, "user record in redis is malformed; not listed")
                }
            }
        }
        Ok(users.into_values().collect())
    }
}

/// `text` as a SCAN MATCH pattern that matches only itself (the prefix is the operator's
/// and may hold `*`, `?`, `[`).
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn glob_characters_of_the_prefix_match_only_themselves() {
        assert_eq!(super::glob_escape("app[1]*:user:"), r"app\[1\]\*:user:");
        assert_eq!(super::glob_escape("portcullis:user:"), "portcullis:user:");
    }
}
