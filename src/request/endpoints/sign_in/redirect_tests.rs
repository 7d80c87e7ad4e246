//! Unit tests of `redirect::target`: every off-site trick of the issue falls back.

use super::redirect::{target, Origin};
use crate::config::snapshot::HostRule;

const ORIGIN: Origin<'static> = Origin {
    scheme: "https",
    host: "gw.example.com:8443",
};

fn allowed() -> Vec<HostRule> {
    vec![
        HostRule::Exact("app.example.com".into()),
        HostRule::Below(".corp.example".into()),
    ]
}

fn follow(rd: &str) -> Option<String> {
    target(rd, ORIGIN, &allowed())
}

#[test]
fn paths_and_urls_on_the_same_origin_or_an_allowed_host_are_followed() {
    assert_eq!(
        follow("/app/page?x=1#top").as_deref(),
        Some("https://gw.example.com:8443/app/page?x=1#top")
    );
    assert_eq!(
        follow("https://GW.example.com:8443/a").as_deref(),
        Some("https://gw.example.com:8443/a")
    );
    assert_eq!(
        follow("https://app.example.com/x").as_deref(),
        Some("https://app.example.com/x")
    );
    assert_eq!(
        follow("https://wiki.corp.example:444").as_deref(),
        Some("https://wiki.corp.example:444/")
    );
    assert_eq!(
        follow("/caf%C3%A9").as_deref(),
        Some("https://gw.example.com:8443/caf%C3%A9")
    );
}

#[test]
fn every_off_site_trick_falls_back() {
    for rd in [
        "",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https:evil.example",
        "https:/evil.example",
        "https://good@evil.example",
        "https://app.example.com@evil.example",
        "https://evil.example#@app.example.com",
        "https://evil.example\\@app.example.com",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "http://app.example.com/",
        "ftp://app.example.com/",
        "https://evil.example",
        "https://app.example.com.evil.example/",
        "https://evilapp.example.com/",
        "https://corp.example/",
        "https://gw.example.com:9999/",
        "https://gw.example.com/",
        "https://xn--pple-43d.com/",
        "https://аpp.example.com/",
        "https://app%2eexample.com/",
        "https://app.example.com:x/",
        "/%2F%2Fevil.example",
        "/%2f/evil.example",
        "/%5Cevil.example",
        "%2F%2Fevil.example",
        "/%252F%252Fevil.example",
        "/x%0d%0aSet-Cookie:%20a=b",
        "/x%00",
        "/x\r\nLocation: https://evil.example",
        "/\t/evil.example",
        " //evil.example",
        "/ok page",
        "/caf\u{e9}",
        "https://evil.example%2F@app.example.com/",
        "http://gw.example.com:8443/",
    ] {
        assert_eq!(follow(rd), None, "{rd:?}");
    }
}

#[test]
fn plain_http_is_followed_only_from_the_plain_listener() {
    let plain = Origin {
        scheme: "http",
        host: "127.0.0.1:8080",
    };
    assert_eq!(
        target("http://127.0.0.1:8080/x", plain, &[]).as_deref(),
        Some("http://127.0.0.1:8080/x")
    );
    assert_eq!(target("http://app.example.com/", ORIGIN, &allowed()), None);
    assert_eq!(
        target("/x", plain, &[]).as_deref(),
        Some("http://127.0.0.1:8080/x")
    );
}

#[test]
fn an_overlong_rd_falls_back() {
    let long = format!("/{}", "a".repeat(5000));
    assert_eq!(follow(&long), None);
}
