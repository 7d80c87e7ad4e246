//! `portcullis user totp NAME`: enrols a TOTP second factor from the terminal.

use portcullis::config::snapshot::SecondFactorSettings;
use portcullis::users::{recovery as codes, totp, Change};

use super::store::Store;
use super::*;

/// Stores a fresh sealed secret for `user` and shows it to scan, or removes the factor.
pub(super) fn enrol(config: &ConfigArg, user: &str, remove: bool) -> anyhow::Result<ExitCode> {
    let store = Store::open(config)?;
    if !store.exists(user)? {
        bail!("user {user:?}: no such user");
    }
    if remove {
        store.change(user, Change::Totp(None))?;
        store.change(user, Change::Recovery(Vec::new()))?;
        println!(
            "removed the TOTP second factor of {user} in {}",
            store.describe()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let settings = second_factor(config)?;
    let secret = totp::new_secret().map_err(anyhow::Error::msg)?;
    let sealed = settings
        .key
        .seal(user, &secret)
        .map_err(anyhow::Error::msg)?;
    store.change(user, Change::Totp(Some(sealed)))?;
    let uri = totp::otpauth_uri(&settings.issuer, user, &secret);
    println!("{}", qr_text(&uri)?);
    println!("{uri}");
    println!("secret (to type in by hand): {}", totp::base32(&secret));
    print_recovery_codes(&store, &settings, user)?;
    eprintln!(
        "set a TOTP second factor for {user} in {}: from now on a sign-in needs a code \
         from the app that scanned this (a replaced secret stops working)",
        store.describe()
    );
    Ok(ExitCode::SUCCESS)
}

/// `portcullis user recovery NAME`: a new set of recovery codes; the old set stops working.
pub(super) fn recovery(config: &ConfigArg, user: &str) -> anyhow::Result<ExitCode> {
    let store = Store::open(config)?;
    if !store.exists(user)? {
        bail!("user {user:?}: no such user");
    }
    let settings = second_factor(config)?;
    print_recovery_codes(&store, &settings, user)?;
    eprintln!("the earlier recovery codes of {user} no longer work");
    Ok(ExitCode::SUCCESS)
}

/// `portcullis user rekey`: re-seals under the current key every TOTP secret that opens
/// only with the previous one; fails naming the users whose secret opens with neither.
pub(super) fn rekey(config: &ConfigArg) -> anyhow::Result<ExitCode> {
    let store = Store::open(config)?;
    let settings = second_factor(config)?;
    let (mut resealed, mut current, mut unreadable) = (0usize, 0usize, Vec::new());
    for user in store.users()? {
        let Some(sealed) = &user.totp else { continue };
        if settings.key.opens_with_current(&user.name, sealed) {
            current += 1;
            continue;
        }
        let Ok(secret) = settings.key.open(&user.name, sealed) else {
            unreadable.push(user.name.clone());
            continue;
        };
        let fresh = settings
            .key
            .seal(&user.name, &secret)
            .map_err(anyhow::Error::msg)?;
        store.change(&user.name, Change::Totp(Some(fresh)))?;
        resealed += 1;
    }
    println!(
        "re-sealed {resealed} TOTP secret(s) under the current key ({current} already were) in {}",
        store.describe()
    );
    if unreadable.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "these users' secrets open with neither key, re-enrol them (`portcullis user totp \
         NAME`): {}",
        unreadable.join(", ")
    );
    Ok(ExitCode::FAILURE)
}

/// Stores the digests of a new set of codes for `user` and prints the codes, once.
fn print_recovery_codes(
    store: &Store,
    settings: &SecondFactorSettings,
    user: &str,
) -> anyhow::Result<()> {
    let set = codes::new_set().map_err(anyhow::Error::msg)?;
    let digests = set
        .iter()
        .filter_map(|code| codes::normalize(code))
        .map(|code| settings.key.recovery_digest(user, &code))
        .collect();
    store.change(user, Change::Recovery(digests))?;
    println!("recovery codes (each signs in once in place of a code; shown only now):");
    for code in &set {
        println!("  {code}");
    }
    Ok(())
}

/// The `[second_factor]` settings, or an error saying how to configure them.
fn second_factor(config: &ConfigArg) -> anyhow::Result<SecondFactorSettings> {
    let loaded = load(&source_with_dev_material(config)?)?;
    loaded.snapshot.auth.second_factor.clone().ok_or_else(|| {
        anyhow::anyhow!(
            "a second factor needs [second_factor] key_file or key_env in gateway.toml \
             (the key that seals secrets: `openssl rand -base64 32 > config/second-factor.key`)"
        )
    })
}

/// The URI as a QR code of half-block characters for a dark terminal: the light modules
/// are the blocks, so the code reads dark-on-light as scanners expect.
fn qr_text(uri: &str) -> anyhow::Result<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).context("cannot draw the QR code")?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .build())
}
