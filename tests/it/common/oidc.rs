//! A real OpenID provider (`oidc-provider`, run by node from tests/oidc/) and a curl that
//! walks through it the way a browser would: a cookie jar per "browser", redirects followed.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use serde_json::Value;

use super::{eventually, TestDir, DEADLINE};

/// `node tests/oidc/provider.mjs`, killed on drop.
pub struct OidcProvider {
    child: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
    pub port: u16,
    _dir: TestDir,
}

impl OidcProvider {
    /// Starts the provider; it answers 503 until [`OidcProvider::configure`].
    pub async fn start() -> OidcProvider {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the provider tests need `npm ci --prefix tests/oidc` (`.ci/run` does it)"
        );
        let tmp = TestDir::new();
        let log = tmp.join("provider.log");
        let out = std::fs::File::create(&log).expect("create provider log");
        let err = out.try_clone().expect("clone log handle");
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            // It calls the gateway's self-signed https back-channel logout endpoint.
            .env("NODE_TLS_REJECT_UNAUTHORIZED", "0")
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("node runs (apt-get install nodejs)");
        let stdin = child.stdin.take();
        let port = eventually(DEADLINE, || async {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.lines()
                .find_map(|l| l.strip_prefix("listening "))
                .and_then(|p| p.trim().parse::<u16>().ok())
                .ok_or_else(|| format!("provider not listening yet: {text}"))
        })
        .await
        .expect("provider starts");
        OidcProvider {
            child,
            stdin,
            log,
            port,
            _dir: tmp,
        }
    }

    /// `http://127.0.0.1:PORT`, its issuer.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Gives the provider its clients and accounts (`{ clients, accounts }`).
    pub async fn configure(&mut self, setup: &Value) {
        use std::io::Write as _;
        let stdin = self.stdin.as_mut().expect("configured once");
        writeln!(stdin, "{setup}").expect("write provider setup");
        stdin.flush().expect("flush provider setup");
        let log = self.log.clone();
        eventually(DEADLINE, || async {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            match text.lines().any(|l| l == "ready") {
                true => Ok(()),
                false => Err(format!("provider not ready: {text}")),
            }
        })
        .await
        .expect("provider takes its setup");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A JWS over `claims` signed with the provider's own key (the provider's test route).
    pub fn sign(&self, claims: &Value) -> String {
        self.post_test("/test/sign", claims)
    }

    /// A JWS over `claims` signed with a key the provider never published, under the kid
    /// of its real key.
    pub fn sign_with_other_key(&self, claims: &Value) -> String {
        self.post_test("/test/sign?key=other", claims)
    }

    /// Makes the provider rewrite its next ID token: `{ sign, set, unset, secret }` (see
    /// tests/oidc/provider.mjs).
    pub fn tamper(&self, how: &Value) {
        assert_eq!(self.post_test("/test/tamper", how), "ok");
    }

    fn post_test(&self, path: &str, body: &Value) -> String {
        let url = format!("{}{path}", self.issuer());
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "--data-binary"])
            .arg(body.to_string())
            .arg(url)
            .output()
            .expect("curl is installed");
        assert!(out.status.success(), "{path}: {out:?}");
        String::from_utf8(out.stdout).expect("text")
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "----- oidc provider output -----\n{}\n----- end -----",
                self.log()
            );
        }
    }
}

/// What curl ended on.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    /// The last URL fetched.
    pub url: String,
    /// Where a redirect that was not followed pointed.
    pub location: String,
    pub body: String,
}

impl Page {
    /// The value of `attr="..."` on the first tag that has it, HTML entities of `&` undone.
    pub fn attr(&self, tag_start: &str, attr: &str) -> Option<String> {
        let at = self.body.find(tag_start)?;
        let rest = &self.body[at..];
        let rest = &rest[rest.find(&format!("{attr}=\""))? + attr.len() + 2..];
        Some(rest[..rest.find('"')?].replace("&amp;", "&"))
    }
}

/// curl with its own cookie jar: one browser.
pub struct CurlBrowser {
    jar: PathBuf,
    _dir: TestDir,
}

impl CurlBrowser {
    pub fn new() -> CurlBrowser {
        let dir = TestDir::new();
        CurlBrowser {
            jar: dir.write("jar.txt", ""),
            _dir: dir,
        }
    }

    /// The jar's text (Netscape cookie file format).
    pub fn jar(&self) -> String {
        std::fs::read_to_string(&self.jar).unwrap_or_default()
    }

    /// Replaces the jar's text.
    pub fn set_jar(&self, text: &str) {
        std::fs::write(&self.jar, text).expect("write cookie jar");
    }

    /// GET, following redirects.
    pub fn get(&self, url: &str) -> Page {
        self.run(&["-L", url])
    }

    /// GET without following a redirect.
    pub fn get_once(&self, url: &str) -> Page {
        self.run(&[url])
    }

    /// POST a form, following redirects (as GET after a 303, as browsers do).
    pub fn post_form(&self, url: &str, fields: &[(&str, &str)], follow: bool) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut args = vec!["--data", body.as_str(), url];
        if follow {
            args.insert(0, "-L");
        }
        self.run(&args)
    }

    fn run(&self, args: &[&str]) -> Page {
        let jar = self.jar.to_str().expect("utf-8 temp path");
        let out = Command::new("curl")
            .args(["-k", "-sS", "--max-time", "20", "--max-redirs", "10"])
            .args(["-b", jar, "-c", jar])
            .args(["-w", "\n%{http_code} %{url_effective} %{redirect_url}"])
            .args(args)
            .output()
            .expect("curl is installed");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
        let mut tail = tail.split(' ');
        let status = tail.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let url = tail.next().unwrap_or_default().to_string();
        let location = tail.next().unwrap_or_default().to_string();
        assert!(
            out.status.success(),
            "curl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Page {
            status,
            url,
            location,
            body: body.to_string(),
        }
    }
}

impl Default for CurlBrowser {
    fn default() -> Self {
        CurlBrowser::new()
    }
}

/// Submits the provider's development login and consent forms on `page` until the
/// provider redirects away from itself; the page the last step ended on (not followed
/// into the gateway, so the callback URL can be inspected or replayed).
pub fn complete_provider_forms(browser: &CurlBrowser, mut page: Page, login: &str) -> Page {
    for _ in 0..4 {
        let Some(action) = page.attr("<form", "action") else {
            return page;
        };
        let prompt = page
            .attr("name=\"prompt\"", "value")
            .unwrap_or_else(|| "login".into());
        let origin = page
            .url
            .splitn(4, '/')
            .take(3)
            .collect::<Vec<_>>()
            .join("/");
        let url = match action.starts_with('/') {
            true => format!("{origin}{action}"),
            false => action.clone(),
        };
        let fields: Vec<(&str, &str)> = match prompt.as_str() {
            "login" => vec![("prompt", "login"), ("login", login), ("password", "any")],
            _ => vec![("prompt", prompt.as_str())],
        };
        let posted = browser.post_form(&url, &fields, false);
        // Follow redirects that stay at the provider; stop at the one leaving it.
        let mut next = posted;
        while (300..400).contains(&next.status) && next.location.starts_with(&origin) {
            next = browser.get_once(&next.location);
        }
        page = next;
        if (300..400).contains(&page.status) {
            return page;
        }
    }
    page
}
