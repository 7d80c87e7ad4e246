//! `hash-password` and `user ...`: passwords read without echo, users listed and changed
//! in the configured store (users.toml or Redis; the running gateway picks a users.toml
//! change up by itself, and reads Redis on every login).

use portcullis::users::{file::FileStore, name, Change, User};

use super::*;

/// `portcullis user ...`: each takes the gateway's `--config`, which says where users live.
#[derive(Debug, Subcommand)]
pub(super) enum UserCommand {
    /// List users: name, roles, enabled or disabled (never a password hash).
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Add a user (prompts for the password twice; reads one line when stdin is not a terminal).
    Add {
        #[command(flatten)]
        config: ConfigArg,
        /// User name (a-z, 0-9, '.', '_', '-'; case-insensitive).
        name: String,
        /// A role; repeat for several.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Set a user's password (prompted twice; one line on stdin when it is not a terminal).
    Passwd {
        #[command(flatten)]
        config: ConfigArg,
        /// User name.
        name: String,
    },
    /// Disable a user: no more logins or refreshes (issued access tokens run until they expire).
    Disable {
        #[command(flatten)]
        config: ConfigArg,
        /// User name.
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        #[command(flatten)]
        config: ConfigArg,
        /// User name.
        name: String,
    },
    /// Delete a user.
    Delete {
        #[command(flatten)]
        config: ConfigArg,
        /// User name.
        name: String,
    },
    /// Replace a user's roles (they reach tokens at the next login or refresh).
    Roles {
        #[command(flatten)]
        config: ConfigArg,
        /// User name.
        name: String,
        /// The new roles, comma-separated: --set admin,ops (--set "" for none).
        #[arg(long, value_name = "ROLES")]
        set: String,
    },
}

/// What to tell the operator about sessions that exist already.
const SESSIONS_NOTE: &str = "note: tokens issued before this stay valid until they expire; \
    `portcullis revoke --sub NAME` ends them now";

/// Runs one `user` subcommand.
pub(super) fn run(command: UserCommand) -> anyhow::Result<ExitCode> {
    use UserCommand as U;
    let (config, name, change, done) = match command {
        U::List { config } => return list(&users_target(&source(&config))?),
        U::Add {
            config,
            name,
            roles,
        } => {
            let phc = new_password_hash(&name)?;
            let roles = checked_roles(roles)?;
            (config, name, Change::Add { phc, roles }, ("added", "to"))
        }
        U::Passwd { config, name } => {
            let phc = new_password_hash(&name)?;
            let done = ("changed the password of", "in");
            (config, name, Change::Password(phc), done)
        }
        U::Disable { config, name } => (config, name, Change::Disabled(true), ("disabled", "in")),
        U::Enable { config, name } => (config, name, Change::Disabled(false), ("enabled", "in")),
        U::Delete { config, name } => (config, name, Change::Delete, ("deleted", "from")),
        U::Roles { config, name, set } => {
            let roles = checked_roles(split_roles(&set))?;
            (
                config,
                name,
                Change::Roles(roles),
                ("set the roles of", "in"),
            )
        }
    };
    let note = matches!(
        change,
        Change::Password(_) | Change::Disabled(true) | Change::Delete
    );
    let target = users_target(&source(&config))?;
    let canonical = apply(&target, &name, change)?;
    let (verb, preposition) = done;
    println!("{verb} {canonical} {preposition} {}", target.describe());
    if note {
        eprintln!("{}", SESSIONS_NOTE.replace("NAME", &canonical));
    }
    Ok(ExitCode::SUCCESS)
}

/// Makes `change`; returns the canonical name it was made to.
fn apply(target: &UsersTarget, user: &str, change: Change) -> anyhow::Result<String> {
    let canonical = canonical(user)?;
    let failed = |e: portcullis::users::ChangeError| anyhow::anyhow!("user {canonical:?}: {e}");
    match target {
        UsersTarget::File(path) => {
            load_file(path)?;
            portcullis::users::file::change_blocking(path, &canonical, change).map_err(failed)?;
        }
        UsersTarget::Redis { url, prefix } => {
            let Change::Add { phc, roles } = change else {
                bail!("not implemented for the Redis user store yet");
            };
            runtime()?.block_on(async {
                let store = portcullis::users::redis::RedisUsers::connect(url, prefix)
                    .await
                    .context("cannot connect to the [store] Redis")?;
                store
                    .add_user(&canonical, &phc, roles)
                    .await
                    .map_err(|e| anyhow::anyhow!("user {canonical:?}: {e}"))
            })?;
        }
    }
    Ok(canonical)
}

/// The stored form of a user name, or why it cannot be one.
fn canonical(user: &str) -> anyhow::Result<String> {
    name::canonical(user).map_err(|reason| anyhow::anyhow!("invalid user name {user:?}: {reason}"))
}

/// The file, loaded with every problem listed (`file:line:col`) before anything is written.
fn load_file(path: &Path) -> anyhow::Result<FileStore> {
    FileStore::load(path, true)
        .map_err(|err| anyhow::anyhow!("users file is invalid, nothing changed:\n{err}"))
}

/// `portcullis user list`.
fn list(target: &UsersTarget) -> anyhow::Result<ExitCode> {
    let users = match target {
        UsersTarget::File(path) => load_file(path)?.users(),
        UsersTarget::Redis { .. } => bail!("not implemented for the Redis user store yet"),
    };
    if users.is_empty() {
        eprintln!("no users in {}", target.describe());
    } else {
        print!("{}", table(&users));
    }
    Ok(ExitCode::SUCCESS)
}

/// Aligned columns: NAME, ROLES (comma-separated, "-" for none), STATUS.
fn table(users: &[User]) -> String {
    let roles: Vec<String> = users
        .iter()
        .map(|u| match u.roles.is_empty() {
            true => "-".to_string(),
            false => u.roles.join(","),
        })
        .collect();
    let name_width = users.iter().map(|u| u.name.len()).max().unwrap_or(0).max(4);
    let roles_width = roles.iter().map(String::len).max().unwrap_or(0).max(5);
    let mut out = format!("{:name_width$}  {:roles_width$}  STATUS\n", "NAME", "ROLES");
    for (user, roles) in users.iter().zip(&roles) {
        let status = if user.disabled { "disabled" } else { "enabled" };
        out.push_str(&format!(
            "{:name_width$}  {roles:roles_width$}  {status}\n",
            user.name
        ));
    }
    out
}

/// `--set a,b` -> ["a", "b"]; an empty value is no roles.
fn split_roles(set: &str) -> Vec<String> {
    if set.trim().is_empty() {
        return Vec::new();
    }
    set.split(',').map(|r| r.trim().to_string()).collect()
}

/// Refuses roles tokens could not carry; drops repeats, keeping the first.
fn checked_roles(roles: Vec<String>) -> anyhow::Result<Vec<String>> {
    // Tokens leave out roles the roles header cannot carry ("staff,admin" would read as two):
    // refuse to store one rather than grant a role that silently never arrives.
    if let Some(role) = roles
        .iter()
        .find(|r| !portcullis::token::fits_roles_header(r))
    {
        bail!("role {role:?} cannot be carried in the roles header: not empty, no comma, no control character, no space at either end");
    }
    let mut kept: Vec<String> = Vec::with_capacity(roles.len());
    for role in roles {
        if !kept.contains(&role) {
            kept.push(role);
        }
    }
    Ok(kept)
}

/// Reads a new password for `user` (twice on a terminal), checks the rules, hashes it.
fn new_password_hash(user: &str) -> anyhow::Result<String> {
    // A mistyped name is refused before the password is asked for.
    canonical(user)?;
    let password = read_password("password: ")?;
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) && read_password("again: ")? != password
    {
        bail!("the passwords differ");
    }
    name::check_password(user, &password).map_err(anyhow::Error::msg)?;
    portcullis::users::hash::hash_blocking(&password)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

/// Reads a password: without echo from a terminal, else one line from stdin.
fn read_password(prompt: &str) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).context("cannot read the password")?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.is_empty() {
        bail!("empty password");
    }
    Ok(password)
}

/// `portcullis hash-password`.
pub(super) fn hash_password() -> anyhow::Result<ExitCode> {
    let password = read_password("password: ")?;
    let phc = portcullis::users::hash::hash_blocking(&password)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    println!("{phc}");
    Ok(ExitCode::SUCCESS)
}

/// Where `user` commands read and write.
enum UsersTarget {
    /// users.toml.
    File(PathBuf),
    /// The `[store]` Redis.
    Redis { url: String, prefix: String },
}

impl UsersTarget {
    /// For messages: the file, or Redis and its prefix (never the URL: it may hold a password).
    fn describe(&self) -> String {
        match self {
            UsersTarget::File(path) => path.display().to_string(),
            UsersTarget::Redis { prefix, .. } => format!("redis (prefix {prefix:?})"),
        }
    }
}

/// Where the configuration keeps users the CLI can change (file and redis backends).
fn users_target(source: &Source) -> anyhow::Result<UsersTarget> {
    use config::compile_auth::{redis_url, USERS_NEED_REDIS_STORE};
    use config::raw::{StoreBackend, UsersBackend};
    let text = source
        .read(&source.gateway_path())
        .context("cannot read gateway.toml")?;
    let file: config::raw::GatewayFile = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("invalid gateway.toml: {}", e.message()))?;
    match file.users.backend.get_ref() {
        UsersBackend::File => Ok(UsersTarget::File(config::read::resolve(
            &source.base_dir(),
            &file.users.file,
        ))),
        UsersBackend::Redis => {
            if *file.store.backend.get_ref() != StoreBackend::Redis {
                bail!("{USERS_NEED_REDIS_STORE}");
            }
            let url =
                redis_url(&file.store).map_err(|(_, msg)| anyhow::anyhow!("[store] {msg}"))?;
            Ok(UsersTarget::Redis {
                url,
                prefix: file.store.prefix.clone(),
            })
        }
        UsersBackend::Http => bail!(
            "`portcullis user` needs [users] backend = \"file\" or \"redis\": the http backend's users live in that backend"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_split_on_commas_and_an_empty_set_is_none() {
        assert_eq!(split_roles("admin, ops"), vec!["admin", "ops"]);
        assert!(split_roles("").is_empty());
        assert!(checked_roles(split_roles("admin,,ops")).is_err());
        assert_eq!(
            checked_roles(split_roles("ops,admin,ops")).unwrap(),
            vec!["ops", "admin"]
        );
    }
}
