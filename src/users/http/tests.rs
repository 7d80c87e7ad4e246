use super::*;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// What the in-test backend answers, and what it saw.
#[derive(Clone)]
struct Backend {
    status: StatusCode,
    body: String,
    delay: Duration,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Backend {
    fn new(status: StatusCode, body: &str) -> Backend {
        Backend {
            status,
            body: body.to_string(),
            delay: Duration::ZERO,
            seen: Arc::default(),
        }
    }

    /// Serves on 127.0.0.1 with an OS-chosen port; returns the login URL.
    async fn start(self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let backend = self.clone();
                let service = service_fn(move |req| backend.clone().answer(req));
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(tcp), service));
            }
        });
        format!("http://{addr}/login")
    }

    async fn answer(self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let ctype = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        self.seen
            .lock()
            .unwrap()
            .push((ctype.unwrap_or_default(), body));
        tokio::time::sleep(self.delay).await;
        let mut response = Response::new(Full::new(Bytes::from(self.body)));
        *response.status_mut() = self.status;
        Ok(response)
    }
}

fn store(url: &str) -> HttpStore {
    HttpStore::new(url, Duration::from_millis(500)).unwrap()
}

#[tokio::test]
async fn success_maps_sub_roles_and_claims_and_posts_json() {
    let reply = r#"{"sub":"u-42","roles":["admin"],"claims":{"tenant":"acme","exp":1},"x":1}"#;
    let backend = Backend::new(StatusCode::OK, reply);
    let seen = Arc::clone(&backend.seen);
    let url = backend.start().await;
    let user = store(&url).authenticate("alice", "pa\"ss").await.unwrap();
    assert_eq!(user.name, "u-42");
    assert_eq!(user.roles, vec!["admin"]);
    assert_eq!(user.claims.get("tenant"), Some(&serde_json::json!("acme")));
    assert!(!user.claims.contains_key("exp"), "reserved claim kept");
    assert!(!user.disabled);
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].0, "application/json");
    let sent: serde_json::Value = serde_json::from_str(&seen[0].1).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"username": "alice", "password": "pa\"ss"})
    );
}

#[tokio::test]
async fn roles_and_claims_are_optional() {
    let url = Backend::new(StatusCode::OK, r#"{"sub":"bob"}"#)
        .start()
        .await;
    let user = store(&url).authenticate("bob", "pw").await.unwrap();
    assert!(user.roles.is_empty() && user.claims.is_empty());
}

#[tokio::test]
async fn unauthorized_and_forbidden_are_bad_credentials() {
    for status in [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN] {
        let url = Backend::new(status, "no").start().await;
        let err = store(&url).authenticate("alice", "pw").await.unwrap_err();
        assert!(
            matches!(err, LoginError::BadCredentials),
            "{status}: {err:?}"
        );
    }
}

#[tokio::test]
async fn server_error_is_unavailable() {
    let url = Backend::new(StatusCode::INTERNAL_SERVER_ERROR, "oops")
        .start()
        .await;
    let err = store(&url).authenticate("alice", "pw").await.unwrap_err();
    assert!(matches!(err, LoginError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn slow_backend_beyond_the_timeout_is_unavailable() {
    let mut backend = Backend::new(StatusCode::OK, r#"{"sub":"alice"}"#);
    backend.delay = Duration::from_secs(5);
    let url = backend.start().await;
    let store = HttpStore::new(&url, Duration::from_millis(100)).unwrap();
    let err = store.authenticate("alice", "pw").await.unwrap_err();
    assert!(
        matches!(err, LoginError::Unavailable("auth backend timed out")),
        "{err:?}"
    );
}

#[tokio::test]
async fn malformed_or_incomplete_json_is_unavailable() {
    for body in [
        "not json",
        r#"{"roles":["admin"]}"#,
        r#"{"sub":""}"#,
        r#"{"sub":1}"#,
    ] {
        let url = Backend::new(StatusCode::OK, body).start().await;
        let err = store(&url).authenticate("alice", "pw").await.unwrap_err();
        assert!(matches!(err, LoginError::Unavailable(_)), "{body}: {err:?}");
    }
}

#[tokio::test]
async fn oversized_answer_is_unavailable() {
    let huge = format!(
        r#"{{"sub":"alice","pad":"{}"}}"#,
        "x".repeat(MAX_RESPONSE_BYTES)
    );
    let url = Backend::new(StatusCode::OK, &huge).start().await;
    let err = store(&url).authenticate("alice", "pw").await.unwrap_err();
    assert!(
        matches!(
            err,
            LoginError::Unavailable("auth backend answer unreadable or too large")
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn unreachable_backend_is_unavailable() {
    // Bind then drop, so the port is very likely closed.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let err = store(&format!("http://{addr}/login"))
        .authenticate("a", "pw")
        .await
        .unwrap_err();
    assert!(matches!(err, LoginError::Unavailable(_)), "{err:?}");
}

#[test]
fn only_plain_http_urls_without_credentials_are_accepted() {
    let t = Duration::from_secs(1);
    assert!(HttpStore::new("http://auth.internal:8080/login", t).is_ok());
    assert!(HttpStore::new("https://auth.internal/login", t).is_err());
    assert!(HttpStore::new("auth.internal/login", t).is_err());
    assert!(HttpStore::new("http://user:secret@auth.internal/login", t).is_err());
}

#[test]
fn debug_shows_host_and_path_but_not_the_query() {
    let store = HttpStore::new(
        "http://auth.internal/login?key=s3cret",
        Duration::from_secs(1),
    );
    let dbg = format!("{:?}", store.unwrap());
    assert!(
        dbg.contains("auth.internal") && dbg.contains("/login"),
        "{dbg}"
    );
    assert!(!dbg.contains("s3cret"), "{dbg}");
}
