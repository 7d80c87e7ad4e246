use super::*;

fn settings() -> CookieSettings {
    CookieSettings {
        same_site: SameSite::Strict,
        csrf_header: HeaderName::from_static("x-csrf-token"),
        refresh_path: "/auth/refresh".into(),
        access_secs: 900,
        refresh_secs: 3600,
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        let name = HeaderName::from_bytes(k.as_bytes()).expect("test header name");
        h.append(name, HeaderValue::from_str(v).expect("test header value"));
    }
    h
}

#[test]
fn cookies_are_found_across_split_headers_and_twins_are_ambiguous() {
    let h = headers(&[
        ("cookie", "a=1; __Host-portcullis-access=tok"),
        ("cookie", "b=2"),
    ]);
    assert_eq!(find(&h, ACCESS), Ok(Some("tok")));
    assert_eq!(find(&h, "b"), Ok(Some("2")));
    assert_eq!(find(&h, "c"), Ok(None));
    let twins = headers(&[(
        "cookie",
        "__Secure-portcullis-refresh=x; __Secure-portcullis-refresh=y",
    )]);
    assert_eq!(find(&twins, REFRESH), Err(Ambiguous));
}

#[test]
fn any_authorization_header_wins_over_the_cookie() {
    let s = settings();
    let h = headers(&[("cookie", "__Host-portcullis-access=fromcookie")]);
    assert_eq!(access_token(Some(&s), &h), Ok("fromcookie"));
    assert_eq!(access_token(None, &h), Err(TokenError::Missing));
    let both = headers(&[
        ("cookie", "__Host-portcullis-access=fromcookie"),
        ("authorization", "Bearer fromheader"),
    ]);
    assert_eq!(access_token(Some(&s), &both), Ok("fromheader"));
    let basic = headers(&[
        ("cookie", "__Host-portcullis-access=fromcookie"),
        ("authorization", "Basic YTpi"),
    ]);
    assert_eq!(access_token(Some(&s), &basic), Err(TokenError::Missing));
}

#[test]
fn unsafe_methods_by_cookie_need_the_matching_csrf_header() {
    let s = settings();
    let cookie = "__Host-portcullis-access=t; __Host-portcullis-csrf=abc";
    let no_header = headers(&[("cookie", cookie)]);
    assert!(check_csrf(Some(&s), &Method::GET, &no_header).is_ok());
    for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        assert!(check_csrf(Some(&s), &m, &no_header).is_err(), "{m}");
    }
    let good = headers(&[("cookie", cookie), ("x-csrf-token", "abc")]);
    assert!(check_csrf(Some(&s), &Method::POST, &good).is_ok());
    let wrong = headers(&[("cookie", cookie), ("x-csrf-token", "abd")]);
    assert!(check_csrf(Some(&s), &Method::POST, &wrong).is_err());
    let empty = headers(&[
        (
            "cookie",
            "__Host-portcullis-access=t; __Host-portcullis-csrf=",
        ),
        ("x-csrf-token", ""),
    ]);
    assert!(check_csrf(Some(&s), &Method::POST, &empty).is_err());
    let bearer = headers(&[("cookie", cookie), ("authorization", "Bearer x")]);
    assert!(check_csrf(Some(&s), &Method::POST, &bearer).is_ok());
    assert!(check_csrf(None, &Method::POST, &no_header).is_ok());
}

#[test]
fn the_gateways_cookies_never_go_upstream() {
    let s = settings();
    let mut h = headers(&[
        (
            "cookie",
            "theme=dark; __Host-portcullis-access=t; __Host-portcullis-csrf=c",
        ),
        ("cookie", "__Secure-portcullis-refresh=r; lang=en"),
    ]);
    strip(Some(&s), &mut h);
    assert_eq!(h.get_all(COOKIE).iter().count(), 1);
    assert_eq!(h[COOKIE], "theme=dark; lang=en");
    let mut only_ours = headers(&[("cookie", "__Host-portcullis-access=t")]);
    strip(Some(&s), &mut only_ours);
    assert!(!only_ours.contains_key(COOKIE));
}

#[test]
fn set_cookie_attributes() {
    let s = settings();
    let mut h = HeaderMap::new();
    let pair = Pair {
        access_token: "a.b.c".into(),
        refresh_token: "d.e.f".into(),
    };
    set_pair(&s, &mut h, &pair);
    let set: Vec<&str> = h
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(
        set[0],
        "__Host-portcullis-access=a.b.c; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=900"
    );
    assert_eq!(set[1], "__Secure-portcullis-refresh=d.e.f; Path=/auth/refresh; Secure; HttpOnly; SameSite=Strict; Max-Age=3600");
    assert!(set[2].starts_with("__Host-portcullis-csrf="), "{}", set[2]);
    assert!(
        set[2].ends_with("; Path=/; Secure; SameSite=Strict; Max-Age=3600"),
        "{}",
        set[2]
    );
}

#[test]
fn a_cookie_name_with_spaces_around_the_equals_sign_is_still_ours() {
    // An upstream framework that trims names would otherwise receive the token.
    let s = settings();
    let mut h = headers(&[("cookie", "a=1; __Host-portcullis-access = t ;b=2")]);
    assert_eq!(find(&h, ACCESS), Ok(Some("t")));
    strip(Some(&s), &mut h);
    assert_eq!(h[COOKIE], "a=1; b=2");
}
