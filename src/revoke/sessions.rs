//! The sign-ins of each user, for the sessions page: when each started and was last used,
//! from where and with which browser. A session is a refresh-token family; ending one is a
//! family revocation, so this book is only what the page shows, never what lets anyone in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::{within, Conn, StoreError, Target};

/// Longest user agent kept.
const MAX_AGENT: usize = 200;
/// Most sessions kept per user: a client that logs in again and again (never refreshing,
/// never logging out) pushes out its least recently used records, not the memory limit.
pub const MAX_PER_USER: usize = 100;
const TIMEOUT: Duration = Duration::from_millis(500);

/// One sign-in as the sessions page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The token family.
    pub fam: String,
    /// When the sign-in happened (unix seconds).
    pub started: u64,
    /// The last sign-in or refresh (unix seconds).
    pub last_used: u64,
    /// The client address at that moment.
    pub client: String,
    /// The browser's User-Agent at that moment, cut to 200 bytes.
    pub user_agent: String,
    /// When the family's last refresh token expires: the record is dropped after.
    pub until: u64,
    /// How the person signed in (RFC 8176 `amr`); empty in records from before it was kept.
    #[serde(default)]
    pub amr: Vec<String>,
}

impl Session {
    /// A record of a sign-in or refresh now; `started` is kept from an earlier record.
    pub fn seen(fam: &str, now: u64, until: u64, client: String, user_agent: &str) -> Session {
        let mut end = user_agent.len().min(MAX_AGENT);
        while !user_agent.is_char_boundary(end) {
            end -= 1;
        }
        Session {
            fam: fam.to_string(),
            started: now,
            last_used: now,
            client,
            user_agent: user_agent[..end].to_string(),
            until,
            amr: Vec::new(),
        }
    }

    /// The record with the sign-in's methods.
    pub fn signed_in_with(mut self, amr: &[String]) -> Session {
        self.amr = amr.to_vec();
        self
    }
}

/// Where the records live: beside the revocations (this process, or the shared Redis).
#[derive(Debug)]
pub enum SessionBook {
    /// This process only: user -> records.
    Memory(Mutex<HashMap<String, Vec<Session>>>),
    /// One hash per user, `{prefix}sessions:<user>`, field = family.
    Redis {
        /// Multiplexed and reconnecting.
        conn: Conn,
        /// Key prefix.
        prefix: String,
    },
}

impl SessionBook {
    /// An empty book in this process.
    pub fn memory() -> SessionBook {
        SessionBook::Memory(Mutex::new(HashMap::new()))
    }

    /// A book in Redis.
    pub async fn redis(target: &Target, prefix: &str) -> Result<SessionBook, StoreError> {
        let conn = Conn::connect(target, TIMEOUT, Duration::from_secs(5)).await?;
        Ok(SessionBook::Redis {
            conn,
            prefix: prefix.to_string(),
        })
    }

    /// Records a sign-in or a refresh of `session.fam`, keeping when it started.
    pub async fn record(&self, user: &str, session: Session) -> Result<(), StoreError> {
        match self {
            SessionBook::Memory(book) => {
                let mut book = book.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let records = book.entry(user.to_string()).or_default();
                records.retain(|r| r.until >= session.last_used);
                match records.iter_mut().find(|r| r.fam == session.fam) {
                    Some(old) => {
                        *old = Session {
                            started: old.started,
                            ..session
                        }
                    }
                    None => records.push(session),
                }
                if records.len() > MAX_PER_USER {
                    records.sort_by_key(|r| std::cmp::Reverse(r.last_used));
                    records.truncate(MAX_PER_USER);
                }
                Ok(())
            }
            SessionBook::Redis { conn, prefix } => {
                let key = format!("{prefix}sessions:{user}");
                let mut conn = conn.clone();
                let started: Option<u64> = within(
                    TIMEOUT,
                    redis::cmd("HGET")
                        .arg(&key)
                        .arg(format!("{}:started", session.fam))
                        .query_async(&mut conn),
                )
                .await?;
                let session = Session {
                    started: started.unwrap_or(session.started),
                    ..session
                };
                let json = serde_json::to_string(&session).map_err(|_| StoreError::Unavailable)?;
                let ttl = session.until.saturating_sub(session.last_used).max(1);
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .hset_nx(&key, format!("{}:started", session.fam), session.started)
                    .ignore()
                    .hset(&key, &session.fam, json)
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(&key)
                    .arg(ttl)
                    .arg("GT")
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(&key)
                    .arg(ttl)
                    .arg("NX")
                    .ignore()
                    .hlen(&key);
                let (fields,): (usize,) = within(TIMEOUT, pipe.query_async(&mut conn)).await?;
                if fields > 2 * MAX_PER_USER {
                    self.trim(user, session.last_used).await?;
                }
                Ok(())
            }
        }
    }

    /// The user's records that have not expired, most recently used first.
    pub async fn list(&self, user: &str, now: u64) -> Result<Vec<Session>, StoreError> {
        let mut records = match self {
            SessionBook::Memory(book) => {
                let book = book.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                book.get(user).cloned().unwrap_or_default()
            }
            SessionBook::Redis { conn, prefix } => {
                let key = format!("{prefix}sessions:{user}");
                let mut conn = conn.clone();
                let fields: HashMap<String, String> = within(
                    TIMEOUT,
                    redis::cmd("HGETALL").arg(&key).query_async(&mut conn),
                )
                .await?;
                fields
                    .iter()
                    .filter(|(field, _)| !field.ends_with(":started"))
                    .filter_map(|(_, json)| serde_json::from_str(json).ok())
                    .collect()
            }
        };
        records.retain(|r| r.until >= now);
        records.sort_by_key(|r| std::cmp::Reverse(r.last_used));
        Ok(records)
    }

    /// Drops the least recently used records beyond `MAX_PER_USER`.
    async fn trim(&self, user: &str, now: u64) -> Result<(), StoreError> {
        let records = self.list(user, now).await?;
        for stale in records.iter().skip(MAX_PER_USER) {
            self.forget(user, &stale.fam).await?;
        }
        Ok(())
    }

    /// Drops a family's record (after it was revoked).
    pub async fn forget(&self, user: &str, fam: &str) -> Result<(), StoreError> {
        match self {
            SessionBook::Memory(book) => {
                let mut book = book.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Some(records) = book.get_mut(user) {
                    records.retain(|r| r.fam != fam);
                }
                Ok(())
            }
            SessionBook::Redis { conn, prefix } => {
                let key = format!("{prefix}sessions:{user}");
                let mut conn = conn.clone();
                let mut del = redis::cmd("HDEL");
                del.arg(&key).arg(fam).arg(format!("{fam}:started"));
                within(TIMEOUT, del.query_async::<()>(&mut conn)).await
            }
        }
    }

    /// Drops expired records of the memory book (Redis expires whole keys itself).
    pub fn purge(&self, now: u64) {
        if let SessionBook::Memory(book) = self {
            let mut book = book.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            book.retain(|_, records| {
                records.retain(|r| r.until >= now);
                !records.is_empty()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Session, SessionBook};

    #[tokio::test]
    async fn a_refresh_keeps_the_start_and_expired_or_forgotten_records_go() {
        let book = SessionBook::memory();
        let ua = "Mozilla/5.0 ".repeat(40);
        book.record(
            "alice",
            Session::seen("f1", 100, 1000, "10.0.0.1".into(), &ua),
        )
        .await
        .ok();
        book.record(
            "alice",
            Session::seen("f2", 110, 150, "10.0.0.2".into(), "curl"),
        )
        .await
        .ok();
        book.record(
            "alice",
            Session::seen("f1", 200, 1100, "10.0.0.3".into(), "x"),
        )
        .await
        .ok();
        let listed = book.list("alice", 160).await.unwrap_or_default();
        assert_eq!(listed.len(), 1, "f2 expired at 150");
        assert_eq!((listed[0].started, listed[0].last_used), (100, 200));
        assert_eq!(listed[0].client, "10.0.0.3");
        assert!(book.list("bob", 0).await.is_ok_and(|l| l.is_empty()));
        book.forget("alice", "f1").await.ok();
        assert!(book.list("alice", 160).await.is_ok_and(|l| l.is_empty()));
        assert!(
            Session::seen("f", 0, 0, String::new(), &ua)
                .user_agent
                .len()
                <= 200
        );
    }
}
