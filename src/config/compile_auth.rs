//! [users], [login], [endpoints] and refresh settings -> the login side of the runtime.

use std::ops::Range;
use std::path::Path;

use super::raw::{self, GatewayFile, UsersBackend};
use super::read::{resolve, Diag};
use crate::config::snapshot::AuthSettings;
use crate::store::Target;
use crate::throttle::Limits;
use crate::users::file::FileStore;
use crate::users::http::HttpStore;
use crate::users::UserStore;

/// Which revocation store to open at start.
#[derive(Debug)]
pub enum StoreChoice {
    /// In this process.
    Memory,
    /// Redis (one server or Sentinel; its `Debug` shows no password) with a key prefix.
    Redis {
        /// Where Redis is.
        target: Target,
        /// Key prefix.
        prefix: String,
    },
}

/// The user store, or what App::start must open (loading never connects to anything).
pub enum UsersChoice {
    /// Loaded and checked (file, http).
    Ready(UserStore),
    /// The Redis store on `[store]`'s Redis, opened at start.
    Redis {
        /// Where Redis is.
        target: Target,
        /// Key prefix.
        prefix: String,
    },
}

impl std::fmt::Debug for UsersChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsersChoice::Ready(store) => f.debug_tuple("Ready").field(store).finish(),
            UsersChoice::Redis { target, prefix } => {
                write!(f, "Redis {{ target: {target:?}, prefix: {prefix:?} }}")
            }
        }
    }
}

/// The shortest `[store] ping_interval`: more often only loads Redis.
const MIN_PING_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// `[store]`, checked.
#[derive(Debug)]
pub struct StoreSettings {
    /// The backend.
    pub choice: StoreChoice,
    /// What an unanswerable revocation check means.
    pub on_error: raw::OnError,
    /// How long the mirror still decides alone after losing sync.
    pub max_staleness: std::time::Duration,
    /// How often the mirror pings its subscription.
    pub ping_interval: std::time::Duration,
    /// Replicas a revocation must reach, and how long to wait for them (None: no WAIT).
    pub replica_acks: Option<(u32, std::time::Duration)>,
}

/// Checks `[store]`: a Redis backend needs exactly one of redis_url, redis_url_env, a URL
/// the client can use and at most one of password_file, password_env, readable now.
fn store_settings(diag: &mut Diag<'_>, base: &Path, store: &raw::Store) -> Option<StoreSettings> {
    let choice = match store.backend.get_ref() {
        raw::StoreBackend::Memory => StoreChoice::Memory,
        raw::StoreBackend::Redis => match redis_target(store, base) {
            Ok(target) => StoreChoice::Redis {
                target,
                prefix: store.prefix.clone(),
            },
            Err((span, message)) => {
                diag.at(span, message);
                return None;
            }
        },
    };
    if store.ping_interval.get_ref().0 < MIN_PING_INTERVAL {
        diag.at(
            store.ping_interval.span(),
            "store.ping_interval must be at least 100ms",
        );
        return None;
    }
    Some(StoreSettings {
        choice,
        on_error: store.on_error,
        max_staleness: store.max_mirror_staleness.0,
        ping_interval: store.ping_interval.get_ref().0,
        replica_acks: (store.min_replica_acks > 0)
            .then_some((store.min_replica_acks, store.replica_ack_timeout.0)),
    })
}

/// Where the Redis of a `[store] backend = "redis"` is: its URL parsed, with the password
/// from password_file or password_env (read now; a relative file is resolved from `base`).
/// On error, where and what, for a config error or the CLI.
pub fn redis_target(store: &raw::Store, base: &Path) -> Result<Target, (Range<usize>, String)> {
    let url = redis_url(store)?;
    let password = redis_password(store, base)?;
    let span = match (&store.redis_url, &store.redis_url_env) {
        (Some(url), _) => url.span(),
        (_, Some(var)) => var.span(),
        _ => store.backend.span(),
    };
    let target =
        Target::parse(&url, password.as_deref()).map_err(|err| (span.clone(), err.to_string()))?;
    // A cluster keys each store's atomic group under one hash tag, `{prefix}`: an empty
    // prefix or one with braces would split it over slots.
    let bad_tag = store.prefix.is_empty() || store.prefix.contains(['{', '}']);
    if target.is_cluster() && bad_tag {
        return Err((
            span,
            "with a Redis Cluster, [store] prefix must be non-empty and hold no '{' or '}' (it becomes the keys' hash tag)".to_owned(),
        ));
    }
    Ok(target)
}

/// The password given apart from the URL, if any.
fn redis_password(
    store: &raw::Store,
    base: &Path,
) -> Result<Option<String>, (Range<usize>, String)> {
    match (&store.password_file, &store.password_env) {
        (None, None) => Ok(None),
        (Some(file), None) => {
            let path = resolve(base, file.get_ref());
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned())),
                Err(err) => Err((
                    file.span(),
                    format!("cannot read password_file {}: {err}", path.display()),
                )),
            }
        }
        (None, Some(var)) => match std::env::var(var.get_ref()) {
            Ok(password) if !password.is_empty() => Ok(Some(password)),
            _ => Err((
                var.span(),
                format!(
                    "environment variable {} is not set (expected the Redis password)",
                    var.get_ref()
                ),
            )),
        },
        (Some(file), Some(_)) => Err((
            file.span(),
            "give at most one of password_file, password_env".to_string(),
        )),
    }
}

/// The Redis URL: exactly one of redis_url, redis_url_env (read now).
fn redis_url(store: &raw::Store) -> Result<String, (Range<usize>, String)> {
    match (&store.redis_url, &store.redis_url_env) {
        (Some(url), None) => Ok(url.get_ref().clone()),
        (None, Some(var)) => match std::env::var(var.get_ref()) {
            Ok(url) if !url.is_empty() => Ok(url),
            _ => Err((
                var.span(),
                format!(
                    "environment variable {} is not set (expected the Redis URL)",
                    var.get_ref()
                ),
            )),
        },
        _ => Err((
            store.backend.span(),
            "backend = \"redis\" needs exactly one of redis_url, redis_url_env".to_string(),
        )),
    }
}

/// What `users backend = "redis"` without a Redis `[store]` is told.
pub const USERS_NEED_REDIS_STORE: &str =
    "users backend = \"redis\" needs [store] backend = \"redis\" (it uses the same Redis)";

/// The login side of a configuration, checked.
pub(crate) struct LoginSide {
    /// Endpoint settings.
    pub(crate) auth: AuthSettings,
    /// The user store, or the Redis one to open.
    pub(crate) users: UsersChoice,
    /// Failed-login limits.
    pub(crate) throttle: Limits,
    /// Hash workers and queue.
    pub(crate) hashing: (usize, usize),
    /// The revocation store.
    pub(crate) store: StoreSettings,
}

/// Checks [users], [login], [endpoints]; every error is recorded before giving up.
pub(crate) fn login_side(
    diag: &mut Diag<'_>,
    base: &Path,
    file: &GatewayFile,
) -> Option<LoginSide> {
    let auth = auth_settings(diag, base, file);
    let store = store_settings(diag, base, &file.store);
    let users = user_store(diag, base, &file.users, store.as_ref());
    let throttle = throttle_limits(diag, &file.login);
    let hashing = hashing(diag, &file.users);
    Some(LoginSide {
        store: store?,
        auth: auth?,
        users: users?,
        throttle: throttle?,
        hashing: hashing?,
    })
}

/// Endpoint prefix, registration and refresh grace.
fn auth_settings(diag: &mut Diag<'_>, base: &Path, file: &GatewayFile) -> Option<AuthSettings> {
    let prefix = file.endpoints.prefix.get_ref();
    let trimmed = prefix.trim_end_matches('/');
    let well_formed = super::compile_edge::is_plain_path(trimmed);
    if !well_formed {
        diag.at(
            file.endpoints.prefix.span(),
            format!("invalid prefix \"{prefix}\" (expected a path such as \"/auth\")"),
        );
        return None;
    }
    if file.users.default_roles.iter().any(|r| r.trim().is_empty()) {
        diag.at(0..0, "users.default_roles must not contain an empty role");
        return None;
    }
    let limit = &file.tokens;
    if limit.refresh_limit == 0 || limit.refresh_limit_window.get().as_secs() == 0 {
        diag.at(
            0..0,
            "tokens.refresh_limit must be at least 1 and tokens.refresh_limit_window at least 1s",
        );
        return None;
    }
    let forward_auth = super::compile_edge::forward_auth(diag, file, trimmed);
    let cookies = super::compile_edge::cookies(diag, file, trimmed);
    let sign_in = super::compile_sign_in::sign_in(diag, base, file);
    let second_factor = super::compile_second_factor::second_factor(diag, base, file);
    let passkeys = super::compile_passkeys::passkeys(diag, file);
    Some(AuthSettings {
        second_factor: second_factor.ok()?,
        passkeys: passkeys.ok()?,
        forward_auth: forward_auth.ok()?,
        cookies: cookies.ok()?,
        sign_in: sign_in.ok()?,
        prefix: trimmed.to_string(),
        registration: file.users.registration,
        default_roles: file.users.default_roles.clone(),
        reuse_grace_ms: u64::try_from(file.tokens.refresh_reuse_grace.get().as_millis())
            .unwrap_or(u64::MAX),
        refresh_limit: crate::revoke::RefreshLimit {
            max: limit.refresh_limit,
            window: limit.refresh_limit_window.get().as_secs(),
        },
    })
}

/// Loads the configured user store; the file store's errors carry their own positions.
/// The Redis store uses `[store]`'s Redis (`store` is None when `[store]` has errors,
/// reported already).
fn user_store(
    diag: &mut Diag<'_>,
    base: &Path,
    users: &raw::Users,
    store: Option<&StoreSettings>,
) -> Option<UsersChoice> {
    match users.backend.get_ref() {
        UsersBackend::File => {
            let path = resolve(base, &users.file);
            match FileStore::load(&path, true) {
                Ok(store) => Some(UsersChoice::Ready(UserStore::File(store))),
                Err(err) => {
                    diag.errors.extend(err.into_errors());
                    None
                }
            }
        }
        UsersBackend::Http => http_user_store(diag, users).map(UsersChoice::Ready),
        UsersBackend::Redis => match &store?.choice {
            StoreChoice::Redis { target, prefix } => Some(UsersChoice::Redis {
                target: target.clone(),
                prefix: prefix.clone(),
            }),
            StoreChoice::Memory => {
                diag.at(users.backend.span(), USERS_NEED_REDIS_STORE);
                None
            }
        },
    }
}

/// The http store: a credential-check URL and a timeout.
fn http_user_store(diag: &mut Diag<'_>, users: &raw::Users) -> Option<UserStore> {
    let Some(url) = &users.url else {
        diag.at(
            users.backend.span(),
            "backend = \"http\" needs url = \"http://...\" (the credential-check endpoint)",
        );
        return None;
    };
    match HttpStore::new(url.get_ref(), users.timeout.get()) {
        Ok(store) => Some(UserStore::Http(store)),
        Err(err) => {
            diag.at(url.span(), format!("invalid users url: {err}"));
            None
        }
    }
}

/// Failed-login limits.
fn throttle_limits(diag: &mut Diag<'_>, login: &raw::Login) -> Option<Limits> {
    let mut ok = true;
    for field in [&login.max_failures_per_user, &login.max_failures_per_ip] {
        if *field.get_ref() == 0 {
            diag.at(field.span(), "must be at least 1");
            ok = false;
        }
    }
    let window_secs = login.window.get_ref().get().as_secs();
    if window_secs == 0 {
        diag.at(login.window.span(), "login.window must be at least 1s");
        ok = false;
    }
    ok.then(|| Limits {
        per_user: *login.max_failures_per_user.get_ref(),
        per_ip: *login.max_failures_per_ip.get_ref(),
        window_secs,
    })
}

/// Hash workers (default: half the CPUs) and queue length.
fn hashing(diag: &mut Diag<'_>, users: &raw::Users) -> Option<(usize, usize)> {
    // Half the CPUs: a login flood may take those, the other half keeps proxying.
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let default_workers = (cpus / 2).max(1);
    let workers = match &users.hash_workers {
        Some(w) if *w.get_ref() == 0 => {
            diag.at(w.span(), "hash_workers must be at least 1");
            return None;
        }
        Some(w) => *w.get_ref(),
        None => default_workers,
    };
    Some((workers, users.hash_queue))
}
