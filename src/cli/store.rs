//! Where `user` commands read and write: users.toml or the `[store]` Redis, as the
//! gateway's `[users]` says.

use portcullis::users::passkeys::StoredPasskey;
use portcullis::users::redis::RedisUsers;
use portcullis::users::{file::FileStore, Change, User};

use super::*;

/// The file, loaded with every problem listed (`file:line:col`) before anything is written.
fn load_file(path: &Path) -> anyhow::Result<FileStore> {
    FileStore::load(path, true)
        .map_err(|err| anyhow::anyhow!("users file is invalid, nothing changed:\n{err}"))
}

/// Where `user` commands read and write, opened.
pub(super) enum Store {
    /// users.toml.
    File(PathBuf),
    /// The `[store]` Redis, and a runtime to talk to it on.
    Redis {
        runtime: tokio::runtime::Runtime,
        users: RedisUsers,
        prefix: String,
    },
}

impl Store {
    /// The store the configuration names (file and redis backends), connected.
    pub(super) fn open(config: &ConfigArg) -> anyhow::Result<Store> {
        Ok(match users_target(&source(config))? {
            Target::File(path) => Store::File(path),
            Target::Redis { redis, prefix } => {
                let runtime = runtime()?;
                let users = runtime
                    .block_on(RedisUsers::connect_patient(&redis, &prefix))
                    .context("cannot connect to the [store] Redis")?;
                Store::Redis {
                    runtime,
                    users,
                    prefix,
                }
            }
        })
    }

    /// For messages: the file, or Redis and its prefix (never the URL: it may hold a password).
    pub(super) fn describe(&self) -> String {
        match self {
            Store::File(path) => path.display().to_string(),
            Store::Redis { prefix, .. } => format!("redis (prefix {prefix:?})"),
        }
    }

    pub(super) fn exists(&self, user: &str) -> anyhow::Result<bool> {
        Ok(match self {
            Store::File(path) => load_file(path)?.get(user).is_some(),
            Store::Redis { runtime, users, .. } => runtime
                .block_on(users.exists(user))
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        })
    }

    pub(super) fn users(&self) -> anyhow::Result<Vec<User>> {
        Ok(match self {
            Store::File(path) => load_file(path)?.users(),
            Store::Redis { runtime, users, .. } => runtime
                .block_on(users.list())
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        })
    }

    /// `user`'s passkeys.
    pub(super) fn passkeys(&self, user: &str) -> anyhow::Result<Vec<StoredPasskey>> {
        Ok(match self {
            Store::File(path) => load_file(path)?
                .get(user)
                .map(|entry| entry.passkeys().to_vec())
                .unwrap_or_default(),
            Store::Redis { runtime, users, .. } => runtime
                .block_on(users.passkeys(user))
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        })
    }

    pub(super) fn change(&self, user: &str, change: Change) -> anyhow::Result<()> {
        match self {
            Store::File(path) => {
                load_file(path)?;
                portcullis::users::file::change_blocking(path, user, change)?;
            }
            Store::Redis { runtime, users, .. } => runtime.block_on(users.change(user, change))?,
        }
        Ok(())
    }
}

/// Where the configuration keeps users.
enum Target {
    File(PathBuf),
    Redis {
        redis: portcullis::store::Target,
        prefix: String,
    },
}

/// Where the configuration keeps users the CLI can change (file and redis backends).
fn users_target(source: &Source) -> anyhow::Result<Target> {
    use config::compile_auth::{redis_target, USERS_NEED_REDIS_STORE};
    use config::raw::{StoreBackend, UsersBackend};
    let text = source
        .read(&source.gateway_path())
        .context("cannot read gateway.toml")?;
    let file: config::raw::GatewayFile = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("invalid gateway.toml: {}", e.message()))?;
    match file.users.backend.get_ref() {
        UsersBackend::File => Ok(Target::File(config::read::resolve(
            &source.base_dir(),
            &file.users.file,
        ))),
        UsersBackend::Redis => {
            if *file.store.backend.get_ref() != StoreBackend::Redis {
                bail!("{USERS_NEED_REDIS_STORE}");
            }
            let redis = redis_target(&file.store, &source.base_dir())
                .map_err(|(_, msg)| anyhow::anyhow!("[store] {msg}"))?;
            Ok(Target::Redis {
                redis,
                prefix: file.store.prefix.clone(),
            })
        }
        UsersBackend::Http => bail!(
            "`portcullis user` needs [users] backend = \"file\" or \"redis\": the http backend's users live in that backend"
        ),
    }
}
