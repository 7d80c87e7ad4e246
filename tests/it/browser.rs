//! A real headless Chromium (Debian's `chromium`, driven by playwright-core from
//! tests/browser/) signs in through the gateway's pages, the way a person would.

use std::path::Path;
use std::process::Command;

use crate::common::*;

const PASSWORD: &str = "correct horse battery";

/// Runs `tests/browser/{script}` against the gateway; panics with its output on failure.
fn run_script(script: &str, gw: &Gateway) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "the browser tests need `npm ci --prefix tests/browser` and Debian's chromium (`.ci/run` installs both)"
    );
    let out = Command::new("node")
        .arg(dir.join(script))
        .env("GATEWAY", format!("https://{}", gw.https))
        .env("PASSWORD", PASSWORD)
        .output()
        .expect("node runs (apt-get install nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{}\ngateway log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    stdout
}

async fn sign_in_gateway(echo: &Upstream) -> Gateway {
    AuthSetup::new(&echo.url())
        .user("alice", PASSWORD, &["reader"])
        .extra("[cookies]\nenabled = true\n\n[sign_in]\nenabled = true\n")
        .start()
        .await
}

#[tokio::test]
async fn a_person_signs_in_with_a_browser_and_lands_on_the_page_they_asked_for() {
    let echo = Upstream::echo().await;
    let gw = sign_in_gateway(&echo).await;
    let steps = run_script("sign_in.mjs", &gw);
    assert!(steps.contains("ok: upstream sees x-auth-user"), "{steps}");
}

#[tokio::test]
async fn a_person_enrols_a_second_factor_on_the_way_to_an_mfa_route_and_then_signs_in_with_it() {
    let echo = Upstream::echo().await;
    let gw = AuthSetup::new(&echo.url())
        .user("alice", PASSWORD, &["reader"])
        .file(
            "second-factor.key",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n",
        )
        .extra(
            "[cookies]\nenabled = true\n\n[sign_in]\nenabled = true\n\n\
             [second_factor]\nkey_file = \"second-factor.key\"\n",
        )
        .routes("[[routes]]\npath = \"/secure/**\"\nupstream = \"api\"\nmfa = true\n")
        .start()
        .await;
    let steps = run_script("step_up.mjs", &gw);
    assert!(
        steps.contains("ok: password and code open the page directly"),
        "{steps}"
    );
}
