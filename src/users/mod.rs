//! Who may log in: user stores behind one enum, and the argon2id pool they share.
//!
//! Every failed login looks the same from outside: an unknown user, a wrong password and
//! a disabled account all answer `BadCredentials` after the same amount of hashing work.

pub mod file;
pub mod hash;
pub mod http;
pub mod name;
pub mod recovery;
pub mod redis;
pub mod sealed;
pub mod totp;

use hash::{HashError, Hasher};

/// Claims the gateway sets itself; a user record may not override them.
pub use crate::token::RESERVED_CLAIMS;

/// A user as the token issuer sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// The canonical username, or the backend's `sub` for the http store.
    pub name: String,
    /// Roles copied into the token.
    pub roles: Vec<String>,
    /// Extra claims copied into the token.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// A disabled user can neither log in nor refresh.
    pub disabled: bool,
    /// The TOTP secret, sealed (see `sealed`); None without a second factor.
    pub totp: Option<String>,
    /// Digests of the unused recovery codes (see `recovery`).
    pub recovery: Vec<String>,
}

/// Why a login (or a refresh-time lookup) failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user, wrong password or disabled account: deliberately indistinguishable.
    #[error("invalid username or password")]
    BadCredentials,
    /// The store could not answer; the reason is safe to log.
    #[error("user store unavailable: {0}")]
    Unavailable(&'static str),
    /// The hashing pool is full.
    #[error("too many logins in progress")]
    Busy,
}

/// Why a registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The username exists already.
    #[error("username is taken")]
    Taken,
    /// A bad username or a weak password; the reason goes into the 400 body.
    #[error("{0}")]
    Invalid(&'static str),
    /// The configured store cannot add users.
    #[error("registration is not supported by this user store")]
    Unsupported,
    /// The store could not persist the user; the reason is safe to log.
    #[error("user store unavailable: {0}")]
    Unavailable(&'static str),
    /// The hashing pool is full.
    #[error("too many logins in progress")]
    Busy,
}

/// A change to one stored user, made by the CLI or the password endpoint; the file and
/// Redis stores apply it alike. Debug is redacted: it may hold a password hash.
#[derive(Clone)]
pub enum Change {
    /// A new user with this argon2 PHC hash and roles.
    Add {
        /// The PHC hash.
        phc: String,
        /// The roles.
        roles: Vec<String>,
    },
    /// A new password: its argon2 PHC hash.
    Password(String),
    /// Disable (true) or enable (false): a disabled user can neither log in nor refresh.
    Disabled(bool),
    /// Replace the roles.
    Roles(Vec<String>),
    /// Set (sealed secret) or remove (None) the TOTP second factor.
    Totp(Option<String>),
    /// Replace the recovery-code digests (empty: none).
    Recovery(Vec<String>),
    /// Remove the user.
    Delete,
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Add { roles, .. } => write!(f, "Add {{ roles: {roles:?}, phc: <redacted> }}"),
            Change::Password(_) => f.write_str("Password(<redacted>)"),
            Change::Disabled(on) => write!(f, "Disabled({on})"),
            Change::Roles(roles) => write!(f, "Roles({roles:?})"),
            Change::Totp(set) => write!(
                f,
                "Totp({})",
                if set.is_some() { "<sealed>" } else { "None" }
            ),
            Change::Recovery(digests) => write!(f, "Recovery({} digests)", digests.len()),
            Change::Delete => f.write_str("Delete"),
        }
    }
}

/// Why a [`Change`] was not made.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// No user of that name.
    #[error("no such user")]
    UnknownUser,
    /// `Add` of a name that exists.
    #[error("username is taken")]
    Taken,
    /// A bad username or hash; the reason is safe to show.
    #[error("{0}")]
    Invalid(&'static str),
    /// The configured store cannot change users (http).
    #[error("this user store cannot change users")]
    Unsupported,
    /// The store could not read or persist; the reason is safe to log.
    #[error("user store unavailable: {0}")]
    Unavailable(&'static str),
}

impl From<ChangeError> for RegisterError {
    fn from(err: ChangeError) -> RegisterError {
        match err {
            ChangeError::Taken => RegisterError::Taken,
            ChangeError::Invalid(reason) => RegisterError::Invalid(reason),
            ChangeError::Unsupported => RegisterError::Unsupported,
            ChangeError::Unavailable(reason) => RegisterError::Unavailable(reason),
            ChangeError::UnknownUser => RegisterError::Unavailable("user vanished"),
        }
    }
}

/// The configured user store.
#[derive(Debug)]
pub enum UserStore {
    /// users.toml with argon2id hashes.
    File(file::FileStore),
    /// An existing backend that checks passwords itself.
    Http(http::HttpStore),
    /// One hash per user in the `[store]` Redis, shared by every instance.
    Redis(redis::RedisUsers),
}

impl UserStore {
    /// Checks credentials. Unknown user, wrong password and disabled user all give
    /// BadCredentials, after the same amount of hashing work (an unknown user is checked
    /// against the hasher's dummy hash). A match against a hash weaker than the hasher's
    /// settings is upgraded in the store before returning; a failed upgrade is only logged.
    pub async fn authenticate(
        &self,
        hasher: &Hasher,
        username: &str,
        password: &str,
    ) -> Result<User, LoginError> {
        match self {
            UserStore::File(store) => file_login(store, hasher, username, password).await,
            UserStore::Http(store) => store.authenticate(username, password).await,
            UserStore::Redis(store) => store.authenticate(hasher, username, password).await,
        }
    }

    /// The current record, for refresh: `Ok(None)` for a deleted or disabled user, who must
    /// not refresh. The http store has no lookup endpoint and always answers `Ok(None)`;
    /// check [`UserStore::can_lookup`] first.
    pub async fn lookup(&self, username: &str) -> Result<Option<User>, LoginError> {
        match self {
            UserStore::File(store) => Ok(name::canonical(username)
                .ok()
                .and_then(|canon| store.get(&canon))
                .map(|entry| entry.user)
                .filter(|user| !user.disabled)),
            UserStore::Http(_) => Ok(None),
            UserStore::Redis(store) => store.lookup(username).await,
        }
    }

    /// True when [`UserStore::lookup`] reflects the store (false for http: such a store
    /// cannot revoke a user at refresh time; only token revocation or expiry can).
    pub fn can_lookup(&self) -> bool {
        matches!(self, UserStore::File(_) | UserStore::Redis(_))
    }

    /// Registers a new user (file and Redis stores). Validates the name
    /// ([`name::canonical`]) and password ([`name::check_password`]), hashes on the pool,
    /// persists before returning; `Taken` when the name exists, decided atomically by the
    /// store (the file's writer lock, a Redis script), so of two racing registrations of
    /// one name exactly one succeeds.
    pub async fn register(
        &self,
        hasher: &Hasher,
        username: &str,
        password: &str,
        roles: Vec<String>,
    ) -> Result<User, RegisterError> {
        if matches!(self, UserStore::Http(_)) {
            return Err(RegisterError::Unsupported);
        }
        let name = name::canonical(username).map_err(RegisterError::Invalid)?;
        name::check_password(&name, password).map_err(RegisterError::Invalid)?;
        // Cheap early answer before hashing; the store checks again atomically.
        let taken = match self {
            UserStore::File(store) => store.get(&name).is_some(),
            UserStore::Redis(store) => store.exists(&name).await?,
            UserStore::Http(_) => false,
        };
        if taken {
            return Err(RegisterError::Taken);
        }
        let phc = hasher.hash(password).await.map_err(|err| match err {
            HashError::Busy => RegisterError::Busy,
            HashError::BadHash | HashError::Internal => RegisterError::Unavailable("hashing"),
        })?;
        match self {
            UserStore::File(store) => {
                let user = User {
                    name,
                    roles,
                    claims: serde_json::Map::new(),
                    disabled: false,
                    totp: None,
                    recovery: Vec::new(),
                };
                store.insert(file::Entry::new(user.clone(), phc)).await?;
                Ok(user)
            }
            UserStore::Redis(store) => store.add_user(&name, &phc, roles).await,
            UserStore::Http(_) => Err(RegisterError::Unsupported),
        }
    }
}

impl UserStore {
    /// Sets `name`'s password (hashed on the pool), persisted before returning: the
    /// password-change endpoint's write. `Unsupported` for the http store, whose backend
    /// owns its passwords. The caller checks the current password and the rules first.
    pub async fn set_password(
        &self,
        hasher: &Hasher,
        name: &str,
        password: &str,
    ) -> Result<(), ChangeError> {
        if !self.can_change() {
            return Err(ChangeError::Unsupported);
        }
        let phc = hasher.hash(password).await.map_err(|err| match err {
            HashError::Busy => ChangeError::Unavailable("too many logins in progress"),
            HashError::BadHash | HashError::Internal => ChangeError::Unavailable("hashing"),
        })?;
        match self {
            UserStore::File(store) => store.change(name, Change::Password(phc)).await,
            UserStore::Redis(store) => store.change(name, Change::Password(phc)).await,
            UserStore::Http(_) => Err(ChangeError::Unsupported),
        }
    }

    /// Sets or removes `name`'s sealed TOTP secret, persisted before returning: the
    /// enrolment page's write. `Unsupported` for the http store.
    pub async fn set_totp(&self, name: &str, sealed: Option<String>) -> Result<(), ChangeError> {
        match self {
            UserStore::File(store) => store.change(name, Change::Totp(sealed)).await,
            UserStore::Redis(store) => store.change(name, Change::Totp(sealed)).await,
            UserStore::Http(_) => Err(ChangeError::Unsupported),
        }
    }

    /// Strikes one recovery-code digest from `name`'s set as the store has it now (not as
    /// a login read it): true when it was there, so of two racing uses exactly one wins.
    pub async fn strike_recovery(&self, name: &str, digest: &str) -> Result<bool, ChangeError> {
        match self {
            UserStore::File(store) => store.strike_recovery(name, digest).await,
            UserStore::Redis(store) => store.strike_recovery(name, digest).await,
            UserStore::Http(_) => Err(ChangeError::Unsupported),
        }
    }

    /// Replaces `name`'s recovery-code digests, persisted before returning.
    pub async fn set_recovery(&self, name: &str, digests: Vec<String>) -> Result<(), ChangeError> {
        match self {
            UserStore::File(store) => store.change(name, Change::Recovery(digests)).await,
            UserStore::Redis(store) => store.change(name, Change::Recovery(digests)).await,
            UserStore::Http(_) => Err(ChangeError::Unsupported),
        }
    }

    /// True when users can be changed through the gateway (file and Redis stores).
    pub fn can_change(&self) -> bool {
        matches!(self, UserStore::File(_) | UserStore::Redis(_))
    }
}

async fn file_login(
    store: &file::FileStore,
    hasher: &Hasher,
    username: &str,
    password: &str,
) -> Result<User, LoginError> {
    let entry = name::canonical(username).ok().and_then(|n| store.get(&n));
    let Some(entry) = entry else {
        hasher
            .verify_dummy(password)
            .await
            .map_err(login_hash_error)?;
        return Err(LoginError::BadCredentials);
    };
    let verified = hasher.verify(entry.phc(), password).await.map_err(|err| {
        if matches!(err, HashError::BadHash) {
            tracing::error!(user = %entry.user.name, "stored password hash is unreadable");
        }
        login_hash_error(err)
    })?;
    // Disabled is checked after hashing so it costs the same as a wrong password.
    if !verified.ok || entry.user.disabled {
        return Err(LoginError::BadCredentials);
    }
    if verified.needs_rehash {
        upgrade_hash(store, hasher, &entry, password).await;
    }
    Ok(entry.user)
}

/// Stores a hash with the current settings; the login succeeds whether or not this does.
async fn upgrade_hash(store: &file::FileStore, hasher: &Hasher, entry: &file::Entry, pw: &str) {
    let result = match hasher.hash(pw).await {
        Ok(phc) => store
            .set_hash(&entry.user.name, entry.phc(), phc)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(error) = result {
        tracing::warn!(user = %entry.user.name, %error, "password hash upgrade skipped");
    }
}

pub(crate) fn login_hash_error(err: HashError) -> LoginError {
    match err {
        HashError::Busy => LoginError::Busy,
        HashError::BadHash => LoginError::Unavailable("stored password hash is unreadable"),
        HashError::Internal => LoginError::Unavailable("hashing"),
    }
}

#[cfg(test)]
mod tests;
