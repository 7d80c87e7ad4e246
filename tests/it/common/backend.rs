//! An existing credential backend for `[users] backend = "http"`: an in-process hyper server.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::BoxBody;

/// What the backend knows: one user, `sub` with `roles`, and its password.
#[derive(Clone, Debug)]
struct Account {
    sub: String,
    password: String,
    roles: Vec<String>,
    /// Wait this long before answering (to outlast `[users] timeout`).
    delay: Option<Duration>,
}

/// `POST /check {"username","password"}`: 200 `{"sub","roles","claims"}` for the one
/// password it knows, 401 otherwise. Records every body it receives.
pub struct CredentialBackend {
    pub addr: SocketAddr,
    account: Arc<Mutex<Account>>,
    seen: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CredentialBackend {
    pub async fn start(sub: &str, password: &str, roles: &[&str]) -> CredentialBackend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind credential backend");
        let addr = listener.local_addr().expect("local addr");
        let account = Arc::new(Mutex::new(Account {
            sub: sub.to_string(),
            password: password.to_string(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            delay: None,
        }));
        let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (account2, seen2) = (account.clone(), seen.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (account, seen) = (account2.clone(), seen2.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let (account, seen) = (account.clone(), seen.clone());
                        async move { Ok::<_, Infallible>(answer(account, seen, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        CredentialBackend {
            addr,
            account,
            seen,
            task,
        }
    }
    pub fn url(&self) -> String {
        format!("http://{}/check", self.addr)
    }
    /// From now on, wait `d` before every answer.
    pub fn slow_down(&self, d: Duration) {
        self.account.lock().expect("account lock").delay = Some(d);
    }
    /// The JSON bodies received so far.
    pub fn seen(&self) -> Vec<Value> {
        self.seen.lock().expect("seen lock").clone()
    }
}

impl Drop for CredentialBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    account: Arc<Mutex<Account>>,
    seen: Arc<Mutex<Vec<Value>>>,
    req: Request<hyper::body::Incoming>,
) -> http::Response<BoxBody> {
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let creds: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.lock().expect("seen lock").push(creds.clone());
    let account = account.lock().expect("account lock").clone();
    if let Some(d) = account.delay {
        tokio::time::sleep(d).await;
    }
    let (status, reply) = if creds["password"] == account.password.as_str() {
        let claims = json!({ "tenant": "acme" });
        let ok = json!({ "sub": account.sub, "roles": account.roles, "claims": claims });
        (StatusCode::OK, ok)
    } else {
        (StatusCode::UNAUTHORIZED, json!({ "error": "bad password" }))
    };
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(reply.to_string())).boxed())
        .expect("valid response")
}
