//! The sessions page over sockets: each sign-in listed with where it came from, ending one
//! ends its whole family, only the user's own and only from the page; with the Redis store
//! on every instance.

use http::StatusCode;

use crate::common::*;

const PASSWORD: &str = "correct horse battery";
const ACCESS: &str = "__Host-portcullis-access";
const CSRF: &str = "__Host-portcullis-csrf";
const SIGN_IN: &str = "[cookies]\nenabled = true\n\n[sign_in]\nenabled = true\n";

/// A browser's session: the cookies a signed-in page sends, and their CSRF value.
struct Device {
    cookies: String,
    csrf: String,
    access: String,
}

/// Logs in by JSON with this User-Agent (cookie mode sets the same cookies the form does).
async fn device(gw: &Gateway, user: &str, agent: &str) -> Device {
    let body = serde_json::json!({ "username": user, "password": PASSWORD }).to_string();
    let resp = gw
        .client()
        .post("/auth/login")
        .header("content-type", "application/json")
        .header("user-agent", agent)
        .body(body)
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    let cookie = |name: &str| {
        resp.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.split(';').next())
            .map(str::to_string)
            .expect(name)
    };
    let (access, csrf) = (cookie(ACCESS), cookie(CSRF));
    Device {
        cookies: format!("{ACCESS}={access}; {CSRF}={csrf}"),
        csrf,
        access,
    }
}

async fn page(gw: &Gateway, device: &Device) -> Response {
    gw.client()
        .get("/auth/sessions")
        .header("sec-fetch-mode", "navigate")
        .header("cookie", &device.cookies)
        .send_h1()
        .await
}

/// The family ids the page offers to end, in page order.
fn families(html: &str) -> Vec<String> {
    html.split("name=\"fam\" value=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

fn end(gw: &Gateway, device: &Device, fam: &str, csrf: &str) -> RequestBuilder {
    gw.client()
        .post("/auth/sessions")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .header("cookie", &device.cookies)
        .body(format!("csrf={csrf}&fam={fam}"))
}

async fn status_with(gw: &Gateway, device: &Device) -> StatusCode {
    gw.client()
        .get("/api/x")
        .bearer(&device.access)
        .send_h1()
        .await
        .status
}

#[tokio::test]
async fn the_page_lists_each_sign_in_and_ends_only_the_users_own_from_its_own_page() {
    let echo = Upstream::echo().await;
    let gw = AuthSetup::new(&echo.url())
        .user("alice", PASSWORD, &["reader"])
        .user("bob", PASSWORD, &["reader"])
        .extra(SIGN_IN)
        .start()
        .await;
    let laptop = device(&gw, "alice", "Laptop <b>Firefox</b>").await;
    let phone = device(&gw, "alice", "Phone Safari").await;
    let bob = device(&gw, "bob", "Bob's browser").await;

    let listed = page(&gw, &laptop).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    let html = listed.text();
    assert!(html.contains("2 live session(s)"), "{html}");
    assert!(
        html.contains("Laptop &lt;b&gt;Firefox&lt;/b&gt;") && html.contains("Phone Safari"),
        "{html}"
    );
    assert!(
        html.contains("This device") && html.contains("127.0.0.1"),
        "{html}"
    );
    assert!(!html.contains("Bob"), "{html}");
    let alice_families = families(&html);
    let bob_family = families(&page(&gw, &bob).await.text())
        .pop()
        .expect("bob's session");

    // Another user's session, a cross-site post and a wrong form value change nothing.
    let fam_of = |d: &Device| {
        claims_of(&d.access)["fam"]
            .as_str()
            .expect("fam")
            .to_string()
    };
    let phone_family = fam_of(&phone);
    assert!(alice_families.contains(&phone_family) && alice_families.contains(&fam_of(&laptop)));
    let refused = [
        (
            end(&gw, &laptop, &bob_family, &laptop.csrf),
            StatusCode::NOT_FOUND,
        ),
        (
            end(&gw, &laptop, &phone_family, "wrong"),
            StatusCode::FORBIDDEN,
        ),
        (
            end(&gw, &laptop, &phone_family, &laptop.csrf).header("origin", "https://evil.example"),
            StatusCode::FORBIDDEN,
        ),
    ];
    for (attempt, status) in refused {
        assert_eq!(attempt.send_h1().await.status, status);
    }
    for device in [&laptop, &phone, &bob] {
        assert_eq!(status_with(&gw, device).await, StatusCode::OK);
    }

    // The phone's session ended from the laptop, then the laptop's own.
    for fam in [phone_family, fam_of(&laptop)] {
        let ended = end(&gw, &laptop, &fam, &laptop.csrf).send_h1().await;
        assert_eq!(ended.status, StatusCode::SEE_OTHER, "{}", ended.text());
        assert!(ended
            .header("location")
            .unwrap_or_default()
            .ends_with("/auth/sessions"));
    }
    assert_eq!(status_with(&gw, &phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_with(&gw, &laptop).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_with(&gw, &bob).await, StatusCode::OK);
    let after = page(&gw, &laptop).await;
    assert_eq!(
        after.status,
        StatusCode::FOUND,
        "the ended laptop must sign in again"
    );
}

#[tokio::test]
async fn with_redis_a_session_ended_on_one_instance_is_listed_and_refused_on_the_other() {
    let redis = Redis::start().await;
    let echo = Upstream::echo().await;
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\n",
        redis.url()
    );
    let setup = || {
        AuthSetup::new(&echo.url())
            .user("alice", PASSWORD, &["reader"])
            .extra(SIGN_IN)
            .extra(&store)
    };
    let a = setup().start().await;
    let dir = TestDir::new();
    dir.write("main.pem", &a.signing_key_pem);
    dir.write("main.pub.pem", &a.public_key_pem);
    dir.write(
        "users.toml",
        &std::fs::read_to_string(a.dir.join("users.toml")).expect("users"),
    );
    let b = Gateway::start_in(dir, setup().config()).await;

    let on_a = device(&a, "alice", "Browser on A").await;
    let on_b = device(&b, "alice", "Browser on B").await;
    let html = page(&b, &on_b).await.text();
    assert!(
        html.contains("2 live session(s)") && html.contains("Browser on A"),
        "{html}"
    );
    let family_a = claims_of(&on_a.access)["fam"]
        .as_str()
        .expect("fam")
        .to_string();
    let ended = end(&b, &on_b, &family_a, &on_b.csrf).send_h1().await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER, "{}", ended.text());
    assert_eq!(
        status_with(&a, &on_a).await,
        StatusCode::UNAUTHORIZED,
        "refused on the other instance"
    );
    assert_eq!(status_with(&a, &on_b).await, StatusCode::OK);
    assert!(page(&a, &on_b).await.text().contains("1 live session(s)"));
}
