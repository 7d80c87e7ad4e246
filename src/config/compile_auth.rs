//! [users], [login], [endpoints] and refresh settings -> the login side of the runtime.

use std::ops::Range;
use std::path::Path;

use super::raw::{self, GatewayFile, UsersBackend};
use super::read::{resolve, Diag};
use crate::config::snapshot::AuthSettings;
use crate::throttle::Limits;
use crate::users::file::FileStore;
use crate::users::http::HttpStore;
use crate::users::UserStore;

/// Which revocation store to open at start.
pub enum StoreChoice {
    /// In this process.
    Memory,
    /// Redis at `url` (may hold a password: never logged) with a key prefix.
    Redis {
        /// The connection URL.
        url: String,
        /// Key prefix.
        prefix: String,
    },
}

impl std::fmt::Debug for StoreChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreChoice::Memory => f.write_str("Memory"),
            StoreChoice::Redis { prefix, .. } => {
                write!(f, "Redis {{ url: <redacted>, prefix: {prefix:?} }}")
            }
        }
    }
}

/// The user store, or what App::start must open (loading never connects to anything).
pub enum UsersChoice {
    /// Loaded and checked (file, http).
    Ready(UserStore),
    /// The Redis store on `[store]`'s Redis, opened at start.
    Redis {
        /// The connection URL (may hold a password: never logged).
        url: String,
        /// Key prefix.
        prefix: String,
    },
}

impl std::fmt::Debug for UsersChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsersChoice::Ready(store) => f.debug_tuple("Ready").field(store).finish(),
            UsersChoice::Redis { prefix, .. } => {
                write!(f, "Redis {{ url: <redacted>, prefix: {prefix:?} }}")
            }
        }
    }
}

/// `[store]`, checked.
#[derive(Debug)]
pub struct StoreSettings {
    /// The backend.
    pub choice: StoreChoice,
    /// What an unanswerable revocation check means.
    pub on_error: raw::OnError,
}

/// Checks `[store]`: a Redis backend needs exactly one of redis_url, redis_url_env.
fn store_settings(diag: &mut Diag<'_>, store: &raw::Store) -> Option<StoreSettings> {
    let choice = match store.backend.get_ref() {
        raw::StoreBackend::Memory => StoreChoice::Memory,
        raw::StoreBackend::Redis => match redis_url(store) {
            Ok(url) => StoreChoice::Redis {
                url,
                prefix: store.prefix.clone(),
            },
            Err((span, message)) => {
                diag.at(span, message);
                return None;
            }
        },
    };
    Some(StoreSettings {
        choice,
        on_error: store.on_error,
    })
}

/// The Redis URL of a `[store] backend = "redis"`: exactly one of redis_url, redis_url_env
/// (read now). On error, where and what, for a config error or the CLI.
pub fn redis_url(store: &raw::Store) -> Result<String, (Range<usize>, String)> {
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
    let store = store_settings(diag, &file.store);
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
    let sign_in = super::compile_sign_in::sign_in(diag, file);
    let second_factor = super::compile_second_factor::second_factor(diag, base, file);
    Some(AuthSettings {
        second_factor: second_factor.ok()?,
        forward_auth: forward_auth.ok()?,
        cookies: cookies.ok()?,
        sign_in: sign_in.ok()?,
        prefix: trimmed.to_string(),
        registration: file.users.registration,
        default_roles: file.users.default_roles.clone(),
        reuse_grace: file.tokens.refresh_reuse_grace.get().as_secs(),
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
            StoreChoice::Redis { url, prefix } => Some(UsersChoice::Redis {
                url: url.clone(),
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
    let window_secs = login.window.get().as_secs();
    if window_secs == 0 {
        diag.at(0..0, "login.window must be at least 1s");
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
