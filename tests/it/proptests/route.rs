//! Differential property test: the compiled table against a naive first-match linear scan
//! (`fuzzing::route::first_match`, shared with the `route` fuzz target) over random tables.

use http::Method;
use proptest::prelude::*;

use crate::fuzz_checks::route::first_match;
use portcullis::path::normalize;
use portcullis::route::{Matcher, Pattern, Table};

/// Normalized segments, so that every pattern built from them parses.
const SEGMENTS: [&str; 6] = ["a", "b", "api", "A", "%3B", "x-y"];
const METHODS: [Method; 4] = [Method::GET, Method::POST, Method::PUT, Method::DELETE];

fn pattern() -> impl Strategy<Value = Pattern> {
    let segment = prop_oneof![
        4 => prop::sample::select(&SEGMENTS[..]).prop_map(str::to_owned),
        2 => Just("*".to_owned()),
    ];
    (
        prop::collection::vec(segment, 0..4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(segments, rest, trailing)| {
            let mut text = format!("/{}", segments.join("/"));
            if rest {
                text.push_str(if segments.is_empty() { "**" } else { "/**" });
            } else if trailing && !segments.is_empty() {
                text.push('/');
            }
            Pattern::parse(&text).expect("built from valid segments")
        })
}

fn matcher() -> impl Strategy<Value = Matcher> {
    let host = prop::option::of(prop::sample::select(vec![
        "api.example",
        "admin.example.",
        "x",
    ]));
    let methods = prop::option::of(prop::sample::subsequence(METHODS.to_vec(), 1..=2));
    (host, pattern(), methods).prop_map(|(host, pattern, methods)| Matcher {
        host: host.map(str::to_owned),
        pattern,
        methods,
    })
}

/// Request paths, including spellings that normalize onto the pattern segments.
fn request_path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        6 => prop::sample::select(&SEGMENTS[..]).prop_map(str::to_owned),
        1 => Just(".".to_owned()),
        1 => Just("..".to_owned()),
        1 => Just(String::new()),
        1 => Just("%41".to_owned()),
        1 => Just("%61".to_owned()),
        1 => Just("%3b".to_owned()),
        1 => "[a-z]{1,3}",
    ];
    prop::collection::vec(segment, 0..6).prop_map(|s| format!("/{}", s.join("/")))
}

fn request_host() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(prop::sample::select(vec![
        "api.example",
        "API.EXAMPLE:8443",
        "api.example.",
        "Admin.Example",
        "admin.example.:1",
        "x",
        "X:80",
        "y.example",
        "[::1]:8443",
    ]))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn compiled_table_agrees_with_a_linear_scan(
        rules in prop::collection::vec(matcher(), 0..10),
        requests in prop::collection::vec(
            (request_host(), prop::sample::select(METHODS.to_vec()), request_path()),
            1..16,
        ),
    ) {
        let table = Table::new(rules.iter().cloned().enumerate().map(|(i, m)| (m, i)).collect());
        for (host, method, raw) in requests {
            let Ok(path) = normalize(&raw) else { continue };
            let found = table.find(host, &method, &path).map(|(i, &v)| (i, v));
            let expected = first_match(&rules, host, &method, &path).map(|i| (i, i));
            prop_assert_eq!(found, expected, "{:?} {} {:?}", host, method, path);
        }
    }
}
