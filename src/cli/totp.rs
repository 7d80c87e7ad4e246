//! `portcullis user totp NAME`: enrols a TOTP second factor from the terminal.

use portcullis::users::{totp, Change};

use super::users::Store;
use super::*;

/// Stores a fresh sealed secret for `user` and shows it to scan, or removes the factor.
pub(super) fn enrol(config: &ConfigArg, user: &str, remove: bool) -> anyhow::Result<ExitCode> {
    let store = Store::open(config)?;
    if !store.exists(user)? {
        bail!("user {user:?}: no such user");
    }
    if remove {
        store.change(user, Change::Totp(None))?;
        println!(
            "removed the TOTP second factor of {user} in {}",
            store.describe()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let loaded = load(&source_with_dev_material(config)?)?;
    let Some(settings) = loaded.snapshot.auth.second_factor.clone() else {
        bail!(
            "a second factor needs [second_factor] key_file or key_env in gateway.toml \
             (the key that seals secrets: `openssl rand -base64 32 > config/second-factor.key`)"
        );
    };
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
    eprintln!(
        "set a TOTP second factor for {user} in {}: from now on a sign-in needs a code \
         from the app that scanned this (a replaced secret stops working)",
        store.describe()
    );
    Ok(ExitCode::SUCCESS)
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
