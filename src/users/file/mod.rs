//! The file user store: `users.toml` with argon2id hashes.
//!
//! Reads are lock-free loads of an immutable map. Every write (register, rehash upgrade,
//! `user add`) is read-modify-write of the file itself under one writer lock: read and
//! validate the file, apply the change, write it atomically, then publish the new map.
//! Re-reading the file makes the file the source of truth, so a user added with the CLI
//! while the server runs is not overwritten by the server's older copy. A write edits the
//! text in place (see `edit.rs`): comments and layout are kept.

mod atomic;
mod edit;
mod format;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{name, Change, ChangeError, RegisterError, User};
use crate::config::diag::{ConfigError, ConfigErrors};
use format::Users;

/// One stored user: the record plus its password hash.
#[derive(Clone, PartialEq)]
pub struct Entry {
    /// The user as tokens see it.
    pub user: User,
    phc: String,
}

impl Entry {
    /// Pairs a user with a PHC hash string.
    pub fn new(user: User, phc: String) -> Entry {
        Entry { user, phc }
    }

    /// The argon2 PHC string; never log or print it.
    pub fn phc(&self) -> &str {
        &self.phc
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("user", &self.user)
            .field("phc", &"<redacted>")
            .finish()
    }
}

/// Why users.toml could not be loaded; every message reads `path:line:col: message`.
#[derive(Debug, thiserror::Error)]
pub enum UsersFileError {
    /// The file could not be read.
    #[error("{0}")]
    Unreadable(ConfigError),
    /// The file was read but has problems; all of them are listed.
    #[error("{0}")]
    Invalid(ConfigErrors),
}

impl UsersFileError {
    /// The individual errors, to merge with the rest of the configuration's.
    pub fn into_errors(self) -> Vec<ConfigError> {
        match self {
            UsersFileError::Unreadable(e) => vec![e],
            UsersFileError::Invalid(errs) => errs.0,
        }
    }
}

/// The users.toml store; cheap to clone, clones share the map and the writer lock.
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    create_if_missing: bool,
    users: ArcSwap<Users>,
    /// Serializes writers; a tokio mutex because it is held across the blocking write.
    write: Arc<tokio::sync::Mutex<()>>,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.inner.path)
            .field("users", &self.len())
            .finish_non_exhaustive()
    }
}

impl FileStore {
    /// Loads and validates `path`; a missing file is an empty store when `create_if_missing`
    /// (the file is created by the first registration).
    pub fn load(path: &Path, create_if_missing: bool) -> Result<FileStore, UsersFileError> {
        let users = read_users(path, create_if_missing)?;
        Ok(FileStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                create_if_missing,
                users: ArcSwap::from_pointee(users),
                write: Arc::new(tokio::sync::Mutex::new(())),
            }),
        })
    }

    /// The file this store reads and writes.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How many users the store holds.
    pub fn len(&self) -> usize {
        self.inner.users.load().len()
    }

    /// True when the store holds no user.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry for a canonical username.
    pub fn get(&self, canonical: &str) -> Option<Entry> {
        self.inner.users.load().get(canonical).cloned()
    }

    /// Every user, in name order (for `portcullis user list`).
    pub fn users(&self) -> Vec<User> {
        let users = self.inner.users.load();
        users.values().map(|entry| entry.user.clone()).collect()
    }

    /// Re-reads the file (SIGHUP or file watch); on error the current users stay.
    /// Reloading in place, under the writer lock, cannot lose a registration in flight.
    pub async fn reload(&self) -> Result<(), UsersFileError> {
        let _guard = self.inner.write.lock().await;
        let inner = Arc::clone(&self.inner);
        let users =
            tokio::task::spawn_blocking(move || read_users(&inner.path, inner.create_if_missing))
                .await
                .map_err(|_| {
                    UsersFileError::Unreadable(ConfigError::file(self.path(), "reload task failed"))
                })??;
        self.inner.users.store(Arc::new(users));
        Ok(())
    }

    /// Adds a new user and persists it before returning; `Taken` if the name exists. Its
    /// claims are not written: users added this way have none.
    pub async fn insert(&self, entry: Entry) -> Result<(), RegisterError> {
        let name = entry.user.name.clone();
        let change = Change::Add {
            phc: entry.phc,
            roles: entry.user.roles,
        };
        self.modify(name, move |_| Ok(Some(change)))
            .await
            .map_err(RegisterError::from)
    }

    /// Makes `change` to the user `name` (canonical) and persists it before returning.
    pub async fn change(&self, name: &str, change: Change) -> Result<(), ChangeError> {
        self.modify(name.to_owned(), move |_| Ok(Some(change)))
            .await
    }

    /// Strikes one recovery-code digest from `name`'s set as the file has it now, under the
    /// writer lock: true when it was there (the code is good, once), false when not.
    pub async fn strike_recovery(&self, name: &str, digest: &str) -> Result<bool, ChangeError> {
        const ABSENT: &str = "recovery code not in the set";
        let (key, digest) = (name.to_owned(), digest.to_owned());
        let struck = self.modify(name.to_owned(), move |users| {
            let entry = users.get(&key).ok_or(ChangeError::UnknownUser)?;
            let set = &entry.user.recovery;
            if !set.contains(&digest) {
                return Err(ChangeError::Invalid(ABSENT));
            }
            let left = set.iter().filter(|d| **d != digest).cloned().collect();
            Ok(Some(Change::Recovery(left)))
        });
        match struck.await {
            Ok(()) => Ok(true),
            Err(ChangeError::Invalid(ABSENT)) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Replaces `name`'s hash with `new_phc` if it is still `old_phc` (a password changed
    /// meanwhile is left alone); persisted before returning. Used for rehash upgrades.
    pub async fn set_hash(
        &self,
        name: &str,
        old_phc: &str,
        new_phc: String,
    ) -> Result<(), ChangeError> {
        let (name, old_phc) = (name.to_owned(), old_phc.to_owned());
        let key = name.clone();
        self.modify(name, move |users| match users.get(&key) {
            Some(entry) if entry.phc == old_phc => Ok(Some(Change::Password(new_phc))),
            _ => Ok(None),
        })
        .await
    }

    /// Runs `decide` on the file's current users and writes the change it returns, all
    /// under the writer lock and on the blocking pool. The lock guard moves into the
    /// blocking task, so a caller that gives up mid-write cannot let a second writer start
    /// alongside.
    async fn modify<F>(&self, name: String, decide: F) -> Result<(), ChangeError>
    where
        F: FnOnce(&Users) -> Result<Option<Change>, ChangeError> + Send + 'static,
    {
        let guard = Arc::clone(&self.inner.write).lock_owned().await;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            let users = modify_file(&inner.path, inner.create_if_missing, &name, decide)?;
            inner.users.store(Arc::new(users));
            Ok(())
        })
        .await
        .map_err(|_| ChangeError::Unavailable("user store write failed"))?
    }
}

/// Makes `change` to user `name` in the file at `path` (created by an `Add` if missing),
/// keeping every other user and the file's comments and layout. For `portcullis user`,
/// which should [`FileStore::load`] the file first: an invalid file only gives
/// `Unavailable` here, while `load` lists each problem.
pub fn change_blocking(path: &Path, name: &str, change: Change) -> Result<(), ChangeError> {
    let name = name::canonical(name).map_err(ChangeError::Invalid)?;
    let phc = match &change {
        Change::Add { phc, .. } | Change::Password(phc) => Some(phc),
        _ => None,
    };
    if phc.is_some_and(|phc| !super::hash::is_valid_phc(phc)) {
        return Err(ChangeError::Invalid("hash is not an argon2 PHC string"));
    }
    modify_file(path, true, &name, move |_| Ok(Some(change))).map(|_| ())
}

/// Read, decide, edit the text, check the result, write it back; returns the users now on
/// disk. The edited text is validated as a load would before it is written, so a write
/// never leaves a file the gateway would refuse.
fn modify_file<F>(
    path: &Path,
    create_if_missing: bool,
    name: &str,
    decide: F,
) -> Result<Users, ChangeError>
where
    F: FnOnce(&Users) -> Result<Option<Change>, ChangeError>,
{
    let (source, users) = read_source(path, create_if_missing).map_err(|err| {
        // Never overwrite a file the operator is in the middle of fixing.
        tracing::error!(error = %err, "users file is invalid; not writing it");
        ChangeError::Unavailable("users file is invalid")
    })?;
    let Some(change) = decide(&users)? else {
        return Ok(users);
    };
    let failed = |what: &str| {
        tracing::error!(path = %path.display(), what, "users file edit failed");
        ChangeError::Unavailable("users file write failed")
    };
    let mut doc: toml_edit::DocumentMut = source.parse().map_err(|_| failed("parse"))?;
    edit::apply(&mut doc, &users, name, &change)?;
    let text = doc.to_string();
    let users = format::parse(path, &text).map_err(|_| failed("the edited file is invalid"))?;
    atomic::write_atomic(path, text.as_bytes()).map_err(|err| {
        tracing::error!(path = %path.display(), error = %err, "cannot write users file");
        ChangeError::Unavailable("users file write failed")
    })?;
    Ok(users)
}

fn read_users(path: &Path, create_if_missing: bool) -> Result<Users, UsersFileError> {
    read_source(path, create_if_missing).map(|(_, users)| users)
}

/// The file's text and its validated users; a missing file is empty when allowed.
fn read_source(path: &Path, create_if_missing: bool) -> Result<(String, Users), UsersFileError> {
    let source = match std::fs::read_to_string(path) {
        Ok(source) => source,
        Err(err) if err.kind() == io::ErrorKind::NotFound && create_if_missing => String::new(),
        Err(err) => {
            let msg = format!("cannot read users file: {err}");
            return Err(UsersFileError::Unreadable(ConfigError::file(path, msg)));
        }
    };
    let users =
        format::parse(path, &source).map_err(|errs| UsersFileError::Invalid(ConfigErrors(errs)))?;
    Ok((source, users))
}

#[cfg(test)]
mod tests;
