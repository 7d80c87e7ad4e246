//! Protocol and limits: the request-head size and field count (431 with the JSON body), the
//! bearer syntax RFC 6750 allows, and JSON objects only as /auth bodies.

mod common;

use common::*;
use http::StatusCode;
use serde_json::json;

const ALICE_PW: &str = "correct horse battery";

#[tokio::test]
async fn bearer_followed_by_several_spaces_is_accepted() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let token = gw.token("alice", &[]);
    for spaces in [" ", "  ", "     "] {
        let auth = format!("Bearer{spaces}{token}");
        let resp = gw
            .client()
            .get("/api/x")
            .header("authorization", &auth)
            .send_h1()
            .await;
        assert_eq!(resp.status, StatusCode::OK, "{spaces:?}: {}", resp.text());
    }
    // A tab is not a space: RFC 6750 allows only SP between the scheme and the token.
    let auth = format!("Bearer\t{token}");
    let resp = gw
        .client()
        .get("/api/x")
        .header("authorization", &auth)
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{}", resp.text());
}

#[tokio::test]
async fn auth_endpoints_take_json_objects_only() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = AuthSetup::new(&up.url())
        .user("alice", ALICE_PW, &[])
        .users("registration = true")
        .start()
        .await;
    let pair = gw.login_ok("alice", ALICE_PW).await;
    let arrays = [
        ("/auth/login", json!(["alice", ALICE_PW])),
        ("/auth/refresh", json!([pair.refresh])),
        ("/auth/register", json!(["carol", "a long enough secret"])),
    ];
    for (path, body) in arrays {
        let resp = gw.post_json(path, &body).await;
        assert_eq!(
            resp.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            resp.text()
        );
        assert_eq!(resp.json()["error"], "invalid_request", "{path}");
    }
    // Nothing was spent or created by the refused bodies.
    assert_eq!(gw.refresh(&pair.refresh).await.status, StatusCode::OK);
    let resp = gw.login("carol", "a long enough secret").await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{}", resp.text());
}
