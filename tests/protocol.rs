//! Protocol and limits: the request-head size and field count (431 with the JSON body), the
//! bearer syntax RFC 6750 allows, and JSON objects only as /auth bodies.

mod common;

use common::*;
use http::StatusCode;

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
