//! `portcullis user passkeys NAME`: lists a user's passkeys; `--remove ID` removes one.

use portcullis::users::passkeys::PasskeyChange;
use portcullis::users::Change;

use super::store::Store;
use super::*;

/// Lists `user`'s passkeys (id, label, registered), or removes the one with id `remove`.
pub(super) fn run(
    config: &ConfigArg,
    user: &str,
    remove: Option<String>,
) -> anyhow::Result<ExitCode> {
    let store = Store::open(config)?;
    if !store.exists(user)? {
        bail!("user {user:?}: no such user");
    }
    if let Some(id) = remove {
        let change = Change::Passkey(PasskeyChange::Remove(id.clone()));
        store
            .change(user, change)
            .map_err(|e| anyhow::anyhow!("user {user:?}: passkey {id:?}: {e}"))?;
        println!("removed passkey {id} of {user} in {}", store.describe());
        eprintln!("note: sessions signed in with it stay valid until they expire; `portcullis revoke --sub {user}` ends them now");
        return Ok(ExitCode::SUCCESS);
    }
    let records = store.passkeys(user)?;
    if records.is_empty() {
        eprintln!("{user} has no passkeys in {}", store.describe());
        return Ok(ExitCode::SUCCESS);
    }
    let width = records.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
    println!("{:width$}  {:20}  LABEL", "ID", "REGISTERED");
    for record in &records {
        println!(
            "{:width$}  {:20}  {}",
            record.id,
            utc(record.created),
            record.label.escape_debug()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `2026-12-02 11:16 UTC` (civil date from days since 1970-01-01, Hinnant's algorithm).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (hour, minute) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}
