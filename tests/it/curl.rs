//! The machine's curl against the gateway's own endpoints over HTTP/2: a refusal sent before
//! the request body is read still reaches the user as a status and a JSON body.
//!
//! Debian 12's curl (7.88) reports "(92) Stream error in the HTTP/2 framing layer" (or "(52)
//! Empty reply from server") instead of the answer when the server answers while the body
//! is still on its way and then resets the stream.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// What curl printed: its exit code, the answer's status, HTTP version and body.
#[derive(Debug)]
struct Curl {
    code: Option<i32>,
    status: String,
    version: String,
    body: String,
    stderr: String,
}

/// How curl sends the request body.
#[derive(Clone, Copy, Debug)]
enum Upload<'a> {
    /// `-d BODY`, as a user types it: the body usually follows the headers at once.
    Inline(&'a str),
    /// `-T -` from a pipe written only once curl has sent the headers: the body arrives
    /// after the gateway could have answered, as on a slower network.
    AfterHeaders(&'a str),
}

/// `curl --http2 -k` with `args` and the body; a missing curl fails the test.
fn curl_h2(dir: &TestDir, args: &[&str], upload: Upload) -> Curl {
    let features = Command::new("curl")
        .arg("--version")
        .output()
        .expect("curl is installed");
    let features = String::from_utf8_lossy(&features.stdout).into_owned();
    assert!(
        features.contains("HTTP2"),
        "this curl has no HTTP/2: {features}"
    );
    let trace = dir.join("curl-trace.txt");
    // A trace left by the previous call must not signal this one's headers.
    let _ = std::fs::remove_file(&trace);
    let mut curl = Command::new("curl");
    curl.args(["--http2", "-k", "-sS", "--max-time", "20"])
        .args(["-w", "\n%{http_code} %{http_version}"])
        .arg("--trace-ascii")
        .arg(&trace)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match upload {
        Upload::Inline(body) => curl.args(["-d", body]),
        Upload::AfterHeaders(_) => curl.args(["-T", "-"]),
    };
    let mut child = curl.spawn().expect("run curl");
    let mut stdin = child.stdin.take().expect("piped stdin");
    if let Upload::AfterHeaders(body) = upload {
        wait_for_sent_headers(&trace);
        // curl may have given up already (the failure this file is about): a closed pipe.
        let _ = stdin.write_all(body.as_bytes());
    }
    drop(stdin);
    let out = child.wait_with_output().expect("wait for curl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, trailer) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let (status, version) = trailer.split_once(' ').unwrap_or((trailer, ""));
    Curl {
        code: out.status.code(),
        status: status.to_string(),
        version: version.to_string(),
        body: body.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Polls curl's trace until it records the request headers as sent.
fn wait_for_sent_headers(trace: &Path) {
    let until = Instant::now() + DEADLINE;
    loop {
        let text = std::fs::read_to_string(trace).unwrap_or_default();
        if text.contains("=> Send header") {
            return;
        }
        assert!(Instant::now() < until, "curl sent no headers: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// curl exited 0 over HTTP/2 and shows `status` with the gateway's JSON `error`.
fn assert_shows(out: &Curl, status: &str, error: &str, upload: Upload) {
    let what = format!("{upload:?}: {out:?}");
    assert_eq!(
        out.code,
        Some(0),
        "curl failed ({}) instead of showing the answer: {what}",
        out.stderr.trim()
    );
    assert_eq!(out.version, "2", "{what}");
    assert_eq!(out.status, status, "{what}");
    let body: Value = serde_json::from_str(&out.body).unwrap_or_else(|e| panic!("{e}: {what}"));
    assert_eq!(body["error"], error, "{what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_over_h2_shows_early_refusals_of_gateway_endpoints() {
    let up = Upstream::echo().await;
    let gw = AuthSetup::new(&up.url())
        .user("alice", "correct horse battery", &["admin"])
        .start()
        .await;
    let dir = TestDir::new();
    let login = format!("https://{}/auth/login", gw.https);
    let logout = format!("https://{}/auth/logout", gw.https);
    let json = "Content-Type: application/json";
    let creds = r#"{"username":"alice","password":"correct horse battery"}"#;
    let refusals: [(&[&str], &str, &str); 3] = [
        // The first mistake a new user makes: -d without a JSON Content-Type.
        (&["-X", "POST", &login], "415", "unsupported_media_type"),
        // Logout refuses a missing token before it reads the (optional) body.
        (&["-X", "POST", &logout, "-H", json], "401", "missing_token"),
        // The method is refused before the body is looked at.
        (
            &["-X", "PUT", &login, "-H", json],
            "405",
            "method_not_allowed",
        ),
    ];
    for (args, status, error) in refusals {
        for upload in [Upload::Inline(creds), Upload::AfterHeaders(creds)] {
            let out = tokio::task::block_in_place(|| curl_h2(&dir, args, upload));
            assert_shows(&out, status, error, upload);
        }
    }
    // And the answer that reads the body is unchanged.
    let args = ["-X", "POST", &login, "-H", json];
    for upload in [Upload::Inline(creds), Upload::AfterHeaders(creds)] {
        let out = tokio::task::block_in_place(|| curl_h2(&dir, &args, upload));
        assert_eq!(out.code, Some(0), "{upload:?}: {out:?}");
        assert_eq!(out.status, "200", "{upload:?}: {out:?}");
    }
}
