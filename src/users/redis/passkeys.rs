//! Passkeys in Redis: `{p}passkeys:<name>` is a hash from credential id to the JSON record,
//! and `{p}passkey:<id>` names the credential's owner, so a username-less sign-in finds
//! the user in one read. Adding is one script: the owner key is claimed only if free and
//! the user exists, so two accounts can never hold the same credential.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::Script;

use super::{RedisUsers, UNAVAILABLE};
use crate::store::within;
use crate::users::passkeys::{PasskeyChange, StoredPasskey, MAX_PER_USER};
use crate::users::{name, ChangeError};

/// KEYS = user hash, passkeys hash, owner key; ARGV = name, id, record, max.
/// Returns 1 added, 0 no such user, -1 credential taken, -2 too many.
static ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[4]) then return -2 end
redis.call('SET', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
",
    )
});

/// KEYS = passkeys hash; ARGV = id, record. Replaces an existing record only: 1 or 0.
static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
",
    )
});

/// KEYS = passkeys hash, owner key; ARGV = id. Returns 1 removed, 0 no such passkey.
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2])
return 1
",
    )
});

impl RedisUsers {
    /// `name`'s passkeys, in registration order; a malformed record is logged and left out.
    pub async fn passkeys(&self, name: &str) -> Result<Vec<StoredPasskey>, ChangeError> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.passkeys_key(name));
        let fields: HashMap<String, String> = within(self.timeout, cmd.query_async(&mut conn))
            .await
            .map_err(|_| ChangeError::Unavailable(UNAVAILABLE))?;
        let mut records = Vec::new();
        for (id, text) in fields {
            match StoredPasskey::from_json(&text) {
                Ok(record) if record.id == id => records.push(record),
                Ok(_) => tracing::error!(user = %name, "passkey record in redis has another id"),
                Err(problem) => {
                    tracing::error!(user = %name, problem, "passkey record in redis is malformed")
                }
            }
        }
        records.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(records)
    }

    /// Who registered the credential `id`, if anyone.
    pub async fn passkey_owner(&self, id: &str) -> Result<Option<String>, ChangeError> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.owner_key(id));
        within(self.timeout, cmd.query_async(&mut conn))
            .await
            .map_err(|_| ChangeError::Unavailable(UNAVAILABLE))
    }

    /// Adds, updates or removes one of `username`'s passkeys.
    pub async fn change_passkey(
        &self,
        username: &str,
        change: PasskeyChange,
    ) -> Result<(), ChangeError> {
        let name = name::canonical(username).map_err(ChangeError::Invalid)?;
        let invocation = match &change {
            PasskeyChange::Add(record) => {
                let mut inv = ADD.key(self.key(&name));
                inv.key(self.passkeys_key(&name))
                    .key(self.owner_key(&record.id))
                    .arg(&name)
                    .arg(&record.id)
                    .arg(record.to_json()?)
                    .arg(MAX_PER_USER);
                inv
            }
            PasskeyChange::Update(record) => {
                let mut inv = UPDATE.key(self.passkeys_key(&name));
                inv.arg(&record.id).arg(record.to_json()?);
                inv
            }
            PasskeyChange::Remove(id) => {
                let mut inv = REMOVE.key(self.passkeys_key(&name));
                inv.key(self.owner_key(id)).arg(id);
                inv
            }
        };
        let mut conn = self.conn.clone();
        let done: i64 = within(self.timeout, invocation.invoke_async(&mut conn))
            .await
            .map_err(|_| ChangeError::Unavailable(UNAVAILABLE))?;
        match done {
            1 => Ok(()),
            -1 => Err(ChangeError::Taken),
            -2 => Err(ChangeError::Invalid("too many passkeys for one user")),
            _ => Err(ChangeError::UnknownUser),
        }
    }

    /// Removes every passkey of `name` and their owner keys (the user is being deleted).
    pub(super) async fn forget_passkeys(&self, name: &str) -> Result<(), ChangeError> {
        let ids: Vec<String> = self
            .passkeys(name)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.passkeys_key(name));
        for id in &ids {
            cmd.arg(self.owner_key(id));
        }
        let mut conn = self.conn.clone();
        within(self.timeout, cmd.query_async::<i64>(&mut conn))
            .await
            .map(|_| ())
            .map_err(|_| ChangeError::Unavailable(UNAVAILABLE))
    }

    fn passkeys_key(&self, name: &str) -> String {
        format!("{}passkeys:{name}", self.prefix)
    }

    fn owner_key(&self, id: &str) -> String {
        format!("{}passkey:{id}", self.prefix)
    }
}
