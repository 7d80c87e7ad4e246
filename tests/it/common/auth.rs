//! The token lifecycle from the outside: users made with the CLI, the `/auth/*` endpoints,
//! token pairs, and the gateway's audit log.

use http::StatusCode;
use serde_json::{json, Value};

use super::{
    claims_of, eventually, run_cli, run_cli_stdin, CliOutput, Gateway, GatewayConfig, Response,
    TestDir, DEADLINE,
};

/// `[users]` on the file store with two hash workers (tests run two at a time on two cores).
pub const FILE_USERS: &str = "backend = \"file\"\nfile = \"users.toml\"\nhash_workers = 2\n";

/// A gateway with users, built before it starts: `AuthSetup::new(url).user(..).start()`.
pub struct AuthSetup {
    cfg: GatewayConfig,
    users_section: String,
    login_section: String,
    users: Vec<(String, String, Vec<String>)>,
    files: Vec<(String, String)>,
}

impl AuthSetup {
    /// The standard routes on `upstream_url`, the file user store, default throttling.
    pub fn new(upstream_url: &str) -> AuthSetup {
        AuthSetup {
            cfg: GatewayConfig::standard(upstream_url),
            users_section: FILE_USERS.to_string(),
            login_section: String::new(),
            users: Vec::new(),
            files: Vec::new(),
        }
    }
    /// Replace the whole `[users]` body (e.g. for the http backend).
    pub fn users_section(mut self, toml: &str) -> Self {
        self.users_section = toml.to_string();
        self
    }
    /// Lines added to `[users]`.
    pub fn users(mut self, toml: &str) -> Self {
        self.users_section.push_str(toml);
        self.users_section.push('\n');
        self
    }
    /// Lines of `[login]`.
    pub fn login(mut self, toml: &str) -> Self {
        self.login_section.push_str(toml);
        self.login_section.push('\n');
        self
    }
    /// Lines added to `[tokens]`.
    pub fn tokens(mut self, toml: &str) -> Self {
        self.cfg = self.cfg.tokens(toml);
        self
    }
    /// `[tokens] leeway`.
    pub fn leeway(mut self, d: &str) -> Self {
        self.cfg = self.cfg.leeway(d);
        self
    }
    /// Whole sections appended to gateway.toml (e.g. more `[[keys]]`).
    pub fn extra(mut self, toml: &str) -> Self {
        self.cfg = self.cfg.extra(toml);
        self
    }
    /// Route entries appended to the standard routes.toml (after `/api/**`).
    pub fn routes(mut self, toml: &str) -> Self {
        self.cfg.routes.push_str(toml);
        self.cfg.routes.push('\n');
        self
    }
    /// A user added with `portcullis user add NAME --role R... --config ...` before start.
    pub fn user(mut self, name: &str, password: &str, roles: &[&str]) -> Self {
        let roles = roles.iter().map(|r| r.to_string()).collect();
        self.users
            .push((name.to_string(), password.to_string(), roles));
        self
    }
    /// An environment variable of the gateway process.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.cfg = self.cfg.env(name, value);
        self
    }
    /// A file written into the gateway's directory before start (e.g. a hand-made users.toml).
    pub fn file(mut self, name: &str, text: &str) -> Self {
        self.files.push((name.to_string(), text.to_string()));
        self
    }
    pub fn config(&self) -> GatewayConfig {
        let mut cfg = self
            .cfg
            .clone()
            .extra(&format!("[users]\n{}", self.users_section));
        if !self.login_section.is_empty() {
            cfg = cfg.extra(&format!("[login]\n{}", self.login_section));
        }
        cfg
    }
    pub async fn start(self) -> Gateway {
        let dir = TestDir::new();
        let cfg = self.config();
        for (name, text) in &self.files {
            dir.write(name, text);
        }
        let config = Gateway::prepare(&dir, &cfg);
        let config = config.to_str().expect("utf-8 temp path");
        for (name, password, roles) in &self.users {
            let out = add_user(config, name, password, roles);
            assert_eq!(out.code, Some(0), "user add {name}: {out:?}");
        }
        Gateway::start_in(dir, cfg).await
    }

    /// Two gateways of this setup, the second with the first one's signing key and users
    /// file: either verifies the other's tokens and logs the same users in.
    pub async fn start_two(self) -> (Gateway, Gateway) {
        let cfg = self.config();
        let a = self.start().await;
        let dir = TestDir::new();
        dir.write("main.pem", &a.signing_key_pem);
        dir.write("main.pub.pem", &a.public_key_pem);
        let users = std::fs::read_to_string(a.dir.join("users.toml")).expect("A's users.toml");
        dir.write("users.toml", &users);
        let b = Gateway::start_in(dir, cfg).await;
        (a, b)
    }
}

/// `portcullis user add NAME --role R... --config CONFIG`, the password on stdin.
pub fn add_user(config: &str, name: &str, password: &str, roles: &[String]) -> CliOutput {
    let mut args = vec!["user", "add", name, "--config", config];
    for r in roles {
        args.push("--role");
        args.push(r);
    }
    run_cli_stdin(&args, &format!("{password}\n"))
}

/// `portcullis hash-password` with `password` on stdin: the PHC string it prints.
pub fn hash_password(password: &str) -> String {
    let out = run_cli_stdin(&["hash-password"], &format!("{password}\n"));
    assert_eq!(out.code, Some(0), "hash-password: {out:?}");
    let phc = out.stdout.trim().to_string();
    assert!(phc.starts_with("$argon2id$"), "not an argon2id PHC: {phc}");
    phc
}

/// A 200 answer of /auth/login or /auth/refresh.
#[derive(Clone, Debug)]
pub struct Pair {
    pub access: String,
    pub refresh: String,
    pub body: Value,
}

impl Pair {
    /// The pair in a 200 answer; panics with the answer otherwise.
    pub fn from_response(resp: &Response) -> Pair {
        assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
        let body = resp.json();
        let s = |k: &str| {
            body[k]
                .as_str()
                .unwrap_or_else(|| panic!("no string {k:?} in {body}"))
                .to_string()
        };
        assert_eq!(body["token_type"], "Bearer", "body: {body}");
        assert!(body["expires_in"].as_u64().is_some(), "body: {body}");
        assert!(
            body["refresh_expires_in"].as_u64().is_some(),
            "body: {body}"
        );
        Pair {
            access: s("access_token"),
            refresh: s("refresh_token"),
            body,
        }
    }
    pub fn access_claims(&self) -> Value {
        claims_of(&self.access)
    }
    pub fn refresh_claims(&self) -> Value {
        claims_of(&self.refresh)
    }
}

impl Gateway {
    /// POST `path` with a JSON body and `Content-Type: application/json`.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client()
            .post(path)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send_h1()
            .await
    }
    pub async fn login(&self, username: &str, password: &str) -> Response {
        let body = json!({ "username": username, "password": password });
        self.post_json("/auth/login", &body).await
    }
    /// Log in; panics unless the answer is a 200 pair.
    pub async fn login_ok(&self, username: &str, password: &str) -> Pair {
        Pair::from_response(&self.login(username, password).await)
    }
    pub async fn refresh(&self, refresh_token: &str) -> Response {
        let body = json!({ "refresh_token": refresh_token });
        self.post_json("/auth/refresh", &body).await
    }
    /// POST /auth/logout with the access token, and the refresh token in the body if given.
    pub async fn logout(&self, access: &str, refresh: Option<&str>) -> Response {
        let req = self.client().post("/auth/logout").bearer(access);
        let req = match refresh {
            Some(r) => req
                .header("content-type", "application/json")
                .body(json!({ "refresh_token": r }).to_string()),
            None => req,
        };
        req.send_h1().await
    }
    pub async fn register(&self, username: &str, password: &str) -> Response {
        let body = json!({ "username": username, "password": password });
        self.post_json("/auth/register", &body).await
    }
    /// GET /api/me (any valid token) with `access`.
    pub async fn get_api(&self, access: &str) -> Response {
        self.client().get("/api/me").bearer(access).send_h1().await
    }
    /// `portcullis revoke ARGS --config <this gateway>`.
    pub fn revoke_cli(&self, args: &[&str]) -> CliOutput {
        let cfg = self.config_arg();
        let mut all = vec!["revoke"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--config", &cfg]);
        let out = run_cli(&all);
        assert_eq!(out.code, Some(0), "portcullis revoke {args:?}: {out:?}");
        out
    }
    /// Log lines on the `audit` target for `event` (`INFO audit: event="login_ok" ...`).
    pub fn audit_events(&self, event: &str) -> Vec<String> {
        let field = format!("event=\"{event}\"");
        self.log()
            .lines()
            .filter(|l| l.contains(" audit: ") && l.contains(&field))
            .map(str::to_string)
            .collect()
    }
    /// The audit events for `event`, once at least `n` have been written: log lines reach
    /// stderr from the log thread a few milliseconds after the request that made them.
    pub async fn audit_events_at_least(&self, event: &str, n: usize) -> Vec<String> {
        eventually(DEADLINE, || async {
            let found = self.audit_events(event);
            match found.len() >= n {
                true => Ok(found),
                false => Err(format!("{} of {n} audit events {event}", found.len())),
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- log ---\n{}", self.log()))
    }
}

/// The single 401 of a failed login, whatever the reason.
pub fn assert_bad_credentials(resp: &Response) {
    assert_eq!(
        resp.status,
        StatusCode::UNAUTHORIZED,
        "body: {}",
        resp.text()
    );
    let body = resp.json();
    assert_eq!(body["error"], "invalid_credentials", "body: {body}");
    assert_eq!(
        body["error_description"], "invalid username or password",
        "body: {body}"
    );
}

/// 401 `invalid_grant` from /auth/refresh.
pub fn assert_invalid_grant(resp: &Response) {
    assert_eq!(
        resp.status,
        StatusCode::UNAUTHORIZED,
        "body: {}",
        resp.text()
    );
    assert_eq!(
        resp.json()["error"],
        "invalid_grant",
        "body: {}",
        resp.text()
    );
}
