//! `hash-password` and `user ...`: passwords read without echo, users listed and changed
//! in the configured store (users.toml or Redis; the running gateway picks a users.toml
//! change up by itself, and reads Redis on every login).

use portcullis::users::{name, Change, User};

use super::store::Store;
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
    /// Enrol a TOTP second factor: stores a new secret sealed with the [second_factor] key and
    /// prints the otpauth:// URI and a QR code to scan; --remove takes the factor away.
    Totp {
        #[command(flatten)]
        config: ConfigArg,
        /// User name.
        name: String,
        /// Remove the user's TOTP second factor and recovery codes instead (alias --reset:
        /// the user enrols again on the second-factor page or with this command).
        #[arg(long, alias = "reset")]
        remove: bool,
    },
    /// List a user's passkeys (id, registered, label); --remove ID removes one.
    Passkeys {
        #[command(flatten)]
        config: ConfigArg,
        /// User name.
        name: String,
        /// Remove the passkey with this id (as listed) instead. Ids are base64url and may
        /// start with '-', so the value is taken as is.
        #[arg(long, value_name = "ID", allow_hyphen_values = true)]
        remove: Option<String>,
    },
    /// Print a new set of ten recovery codes for a user with a second factor; the old set
    /// stops working.
    Recovery {
        #[command(flatten)]
        config: ConfigArg,
        /// User name.
        name: String,
    },
    /// Re-seal every user's TOTP secret under the current [second_factor] key (step 2 of a
    /// key rotation, with the old key in previous_key_file or previous_key_env).
    Rekey {
        #[command(flatten)]
        config: ConfigArg,
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
    let (config, name, wanted) = match command {
        U::List { config } => return list(&Store::open(&config)?),
        U::Totp {
            config,
            name,
            remove,
        } => return super::totp::enrol(&config, &canonical(&name)?, remove),
        U::Passkeys {
            config,
            name,
            remove,
        } => return super::passkeys::run(&config, &canonical(&name)?, remove),
        U::Recovery { config, name } => return super::totp::recovery(&config, &canonical(&name)?),
        U::Rekey { config } => return super::totp::rekey(&config),
        U::Add {
            config,
            name,
            roles,
        } => (config, name, Wanted::Add(checked_roles(roles)?)),
        U::Passwd { config, name } => (config, name, Wanted::Passwd),
        U::Disable { config, name } => (config, name, Wanted::Change(Change::Disabled(true))),
        U::Enable { config, name } => (config, name, Wanted::Change(Change::Disabled(false))),
        U::Delete { config, name } => (config, name, Wanted::Change(Change::Delete)),
        U::Roles { config, name, set } => {
            let roles = checked_roles(split_roles(&set))?;
            (config, name, Wanted::Change(Change::Roles(roles)))
        }
    };
    let canonical = canonical(&name)?;
    let store = Store::open(&config)?;
    let (change, done) = wanted.into_change(&store, &canonical)?;
    let note = matches!(
        change,
        Change::Password(_) | Change::Disabled(true) | Change::Delete
    );
    store
        .change(&canonical, change)
        .map_err(|e| anyhow::anyhow!("user {canonical:?}: {e}"))?;
    let (verb, preposition) = done;
    println!("{verb} {canonical} {preposition} {}", store.describe());
    if note {
        eprintln!("{}", SESSIONS_NOTE.replace("NAME", &canonical));
    }
    Ok(ExitCode::SUCCESS)
}

/// A subcommand's change, before any password is read.
enum Wanted {
    Add(Vec<String>),
    Passwd,
    Change(Change),
}

impl Wanted {
    /// The change to make, and how to say it was made. A password is asked for only once
    /// the name is known to be free (add) or taken (passwd), so a typo costs no typing.
    fn into_change(
        self,
        store: &Store,
        user: &str,
    ) -> anyhow::Result<(Change, (&'static str, &'static str))> {
        Ok(match self {
            Wanted::Add(roles) => {
                if store.exists(user)? {
                    bail!("user {user:?}: username is taken");
                }
                let phc = new_password_hash(user)?;
                (Change::Add { phc, roles }, ("added", "to"))
            }
            Wanted::Passwd => {
                if !store.exists(user)? {
                    bail!("user {user:?}: no such user");
                }
                let phc = new_password_hash(user)?;
                (Change::Password(phc), ("changed the password of", "in"))
            }
            Wanted::Change(change) => {
                let done = match &change {
                    Change::Disabled(true) => ("disabled", "in"),
                    Change::Disabled(false) => ("enabled", "in"),
                    Change::Delete => ("deleted", "from"),
                    _ => ("set the roles of", "in"),
                };
                (change, done)
            }
        })
    }
}

/// The stored form of a user name, or why it cannot be one.
pub(super) fn canonical(user: &str) -> anyhow::Result<String> {
    name::canonical(user).map_err(|reason| anyhow::anyhow!("invalid user name {user:?}: {reason}"))
}

/// `portcullis user list`.
fn list(store: &Store) -> anyhow::Result<ExitCode> {
    let users = store.users()?;
    if users.is_empty() {
        eprintln!("no users in {}", store.describe());
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
