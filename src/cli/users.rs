//! `hash-password` and `user add`: passwords read without echo, users written to the
//! configured store (users.toml or Redis).

use super::*;

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

/// `portcullis user add NAME --role R...`.
pub(super) fn user_add(arg: ConfigArg, name: &str, roles: Vec<String>) -> anyhow::Result<ExitCode> {
    // Tokens leave out roles the roles header cannot carry ("staff,admin" would read as two):
    // refuse to store one rather than grant a role that silently never arrives.
    if let Some(role) = roles
        .iter()
        .find(|r| !portcullis::token::fits_roles_header(r))
    {
        bail!("role {role:?} cannot be carried in the roles header: no comma, no control character, no space at either end");
    }
    let source = source(&arg);
    let target = users_target(&source)?;
    let password = read_password("password: ")?;
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) && read_password("again: ")? != password
    {
        bail!("the passwords differ");
    }
    portcullis::users::name::check_password(name, &password).map_err(anyhow::Error::msg)?;
    let phc = portcullis::users::hash::hash_blocking(&password)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    match target {
        UsersTarget::File(users_file) => {
            portcullis::users::file::add_user_blocking(&users_file, name, &phc, roles)
                .map_err(|e| anyhow::anyhow!("cannot add {name}: {e}"))?;
            println!("added {name} to {}", users_file.display());
        }
        UsersTarget::Redis { url, prefix } => {
            runtime()?.block_on(async {
                let store = portcullis::users::redis::RedisUsers::connect(&url, &prefix)
                    .await
                    .context("cannot connect to the [store] Redis")?;
                store
                    .add_user(name, &phc, roles)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot add {name}: {e}"))
            })?;
            // Not the URL: it may carry a password.
            println!("added {name} to redis (prefix {prefix:?})");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where `user add` writes.
enum UsersTarget {
    /// users.toml.
    File(PathBuf),
    /// The `[store]` Redis.
    Redis { url: String, prefix: String },
}

/// Where the configuration keeps users `user add` can write (file and redis backends).
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
        UsersBackend::Http => bail!("`user add` needs [users] backend = \"file\" or \"redis\""),
    }
}
