//! Unit tests for the route table, shadowing and prefix stripping.

use super::*;

/// Builds a matcher from test literals the test knows to be valid.
fn m(host: Option<&str>, pattern: &str, methods: Option<&[Method]>) -> Matcher {
    let pattern = match Pattern::parse(pattern) {
        Ok(p) => p,
        Err(e) => panic!("{pattern:?}: {e}"),
    };
    Matcher {
        host: host.map(str::to_owned),
        pattern,
        methods: methods.map(<[Method]>::to_vec),
    }
}

/// A rule as a test writes it: (host, pattern, methods).
type Spec<'a> = (Option<&'a str>, &'a str, Option<&'a [Method]>);

/// A table whose values are the rule patterns.
fn table(rules: &[Spec<'_>]) -> Table<String> {
    let rules = rules
        .iter()
        .map(|&(host, pattern, methods)| (m(host, pattern, methods), pattern.to_owned()))
        .collect();
    Table::new(rules)
}

/// Index of the rule matching a GET on `path` with `host`.
fn get(t: &Table<String>, host: Option<&str>, path: &str) -> Option<usize> {
    t.find(host, &Method::GET, path).map(|(index, _)| index)
}

const GET_ONLY: &[Method] = &[Method::GET];
const WRITE: &[Method] = &[Method::POST, Method::PUT];

#[test]
fn host_less_rule_earlier_in_file_beats_host_rule() {
    let t = table(&[
        (None, "/admin/**", None),
        (None, "/x", None),
        (None, "/y", None),
        (Some("admin.example.com"), "/admin/**", None),
    ]);
    assert_eq!(get(&t, Some("admin.example.com"), "/admin/a"), Some(0));
}

#[test]
fn host_rule_earlier_in_file_beats_host_less_rule() {
    let t = table(&[
        (Some("admin.example.com"), "/admin/**", None),
        (None, "/x", None),
        (None, "/y", None),
        (None, "/admin/**", None),
    ]);
    assert_eq!(get(&t, Some("admin.example.com"), "/admin/a"), Some(0));
    assert_eq!(get(&t, Some("other.example.com"), "/admin/a"), Some(3));
    assert_eq!(get(&t, None, "/admin/a"), Some(3));
}

#[test]
fn method_mismatch_falls_through_to_a_later_rule() {
    let t = table(&[
        (None, "/api/**", Some(WRITE)),
        (None, "/api/**", Some(GET_ONLY)),
    ]);
    assert_eq!(get(&t, None, "/api/a"), Some(1));
    assert_eq!(
        t.find(None, &Method::PUT, "/api/a").map(|(i, _)| i),
        Some(0)
    );
    assert_eq!(
        t.find(None, &Method::DELETE, "/api/a").map(|(i, _)| i),
        None
    );
}

#[test]
fn star_and_literal_precedence_is_file_order_not_specificity() {
    let star_first = table(&[(None, "/api/*/items", None), (None, "/api/7/items", None)]);
    assert_eq!(get(&star_first, None, "/api/7/items"), Some(0));
    let literal_first = table(&[(None, "/api/7/items", None), (None, "/api/*/items", None)]);
    assert_eq!(get(&literal_first, None, "/api/7/items"), Some(0));
    assert_eq!(get(&literal_first, None, "/api/8/items"), Some(1));
}

#[test]
fn star_matches_exactly_one_segment() {
    let t = table(&[(None, "/api/*/items", None)]);
    assert_eq!(get(&t, None, "/api/7/items"), Some(0));
    assert_eq!(get(&t, None, "/api/items"), None);
    assert_eq!(get(&t, None, "/api/7/8/items"), None);
    assert_eq!(get(&t, None, "/api/7/items/x"), None);
}

#[test]
fn backtracking_finds_an_earlier_rule_down_the_other_branch() {
    let t = table(&[
        (None, "/a/*/c", None),
        (None, "/a/b/d", None),
        (None, "/a/b/**", None),
    ]);
    assert_eq!(get(&t, None, "/a/b/c"), Some(0));
    assert_eq!(get(&t, None, "/a/b/d"), Some(1));
    assert_eq!(get(&t, None, "/a/b/e"), Some(2));
}

#[test]
fn host_is_matched_without_port_and_case() {
    let t = table(&[(Some("admin.example.com"), "/**", None)]);
    assert_eq!(get(&t, Some("ADMIN.Example.com:8443"), "/x"), Some(0));
    assert_eq!(get(&t, Some("admin.example.com."), "/x"), Some(0));
    assert_eq!(get(&t, Some("example.com"), "/x"), None);
    assert_eq!(get(&t, None, "/x"), None);
}

#[test]
fn ipv6_host_literal_is_matched_without_port() {
    let t = table(&[(Some("[::1]"), "/**", None)]);
    assert_eq!(get(&t, Some("[::1]:8443"), "/x"), Some(0));
    assert_eq!(get(&t, Some("[::1]"), "/"), Some(0));
    assert_eq!(get(&t, Some("[::2]:8443"), "/x"), None);
}

#[test]
fn overlong_host_matches_only_host_less_rules() {
    let long = format!("{}.example.com", "a".repeat(300));
    let t = table(&[(Some(long.as_str()), "/**", None), (None, "/**", None)]);
    assert_eq!(get(&t, Some(&long), "/x"), Some(1));
}

#[test]
fn double_star_at_root_matches_everything() {
    let t = table(&[(None, "/**", None)]);
    for path in ["/", "/a", "/a/b/c/", "/%20"] {
        assert_eq!(get(&t, None, path), Some(0), "{path}");
    }
}

#[test]
fn root_pattern_matches_only_root() {
    let t = table(&[(None, "/", None)]);
    assert_eq!(get(&t, None, "/"), Some(0));
    assert_eq!(get(&t, None, "/a"), None);
}

#[test]
fn prefix_rest_matches_the_prefix_itself_and_below() {
    let t = table(&[(None, "/public/**", None)]);
    for path in ["/public", "/public/", "/public/a/b"] {
        assert_eq!(get(&t, None, path), Some(0), "{path}");
    }
    assert_eq!(get(&t, None, "/publicity"), None);
    assert_eq!(get(&t, None, "/"), None);
}

#[test]
fn trailing_slash_does_not_change_the_match() {
    let t = table(&[(None, "/admin", None)]);
    assert_eq!(get(&t, None, "/admin/"), Some(0));
    assert_eq!(get(&t, None, "/admin"), Some(0));
}

#[test]
fn literal_segments_are_case_sensitive() {
    let t = table(&[(None, "/admin/**", None)]);
    assert_eq!(get(&t, None, "/Admin/x"), None);
}

#[test]
fn thousand_rules_still_find_the_right_one() {
    let rules = (0..1000)
        .map(|i| {
            let host = (i % 3 == 0).then(|| format!("h{}.example.com", i % 7));
            let pattern = format!("/svc{i}/*/items/**");
            let matcher = Matcher {
                host,
                pattern: Pattern::parse(&pattern).ok()?,
                methods: None,
            };
            Some((matcher, i))
        })
        .collect::<Option<Vec<_>>>();
    let Some(rules) = rules else {
        panic!("test patterns are valid")
    };
    let t = Table::new(rules);
    assert_eq!(t.len(), 1000);
    // Rule 999 is host-specific (999 % 3 == 0) for h5 (999 % 7 == 5).
    let found = t.find(Some("H5.example.com"), &Method::GET, "/svc999/x/items/y");
    assert_eq!(found, Some((999, &999)));
    assert_eq!(
        t.find(Some("h3.example.com"), &Method::GET, "/svc999/x/items"),
        None
    );
    assert_eq!(
        t.find(None, &Method::GET, "/svc998/x/items")
            .map(|(i, _)| i),
        Some(998)
    );
    assert_eq!(t.find(None, &Method::GET, "/svc999/x/items"), None);
}

#[test]
fn empty_table_matches_nothing() {
    let t: Table<String> = Table::new(Vec::new());
    assert!(t.is_empty());
    assert_eq!(get(&t, None, "/"), None);
    assert_eq!(t.get(0), None);
}

#[test]
fn get_returns_the_value_at_an_index() {
    let t = table(&[(None, "/a", None), (None, "/b", None)]);
    assert_eq!(t.get(1).map(String::as_str), Some("/b"));
    assert_eq!(t.matcher(0).map(|m| m.pattern.as_str()), Some("/a"));
}

#[test]
fn catch_all_shadows_every_later_rule() {
    let all = m(None, "/**", None);
    assert!(all.shadows(&m(None, "/a/b", None)));
    assert!(all.shadows(&m(Some("x.example.com"), "/a/*", Some(GET_ONLY))));
}

#[test]
fn catch_all_with_methods_shadows_only_narrower_methods() {
    let writes = m(None, "/**", Some(WRITE));
    assert!(writes.shadows(&m(None, "/a", Some(&[Method::POST]))));
    assert!(!writes.shadows(&m(None, "/a", Some(&[Method::POST, Method::GET]))));
    assert!(!writes.shadows(&m(None, "/a", None)));
}

#[test]
fn star_shadows_same_depth_literal_only() {
    assert!(m(None, "/a/*", None).shadows(&m(None, "/a/b", None)));
    assert!(!m(None, "/a/*", None).shadows(&m(None, "/a/b/c", None)));
    assert!(m(None, "/a/**", None).shadows(&m(None, "/a/*/c", None)));
}

#[test]
fn host_specific_rule_does_not_shadow_a_host_less_one() {
    let host = m(Some("a.example.com"), "/**", None);
    assert!(!host.shadows(&m(None, "/x", None)));
    assert!(host.shadows(&m(Some("A.example.com"), "/x", None)));
    assert!(!host.shadows(&m(Some("b.example.com"), "/x", None)));
}

#[test]
fn strip_prefix_removes_whole_segments_only() {
    assert_eq!(strip_prefix("/admin/x", "/admin"), "/x");
    assert_eq!(strip_prefix("/admin", "/admin"), "/");
    assert_eq!(strip_prefix("/admin/", "/admin"), "/");
    assert_eq!(strip_prefix("/adminx", "/admin"), "/adminx");
    assert_eq!(strip_prefix("/other/x", "/admin"), "/other/x");
}

#[test]
fn strip_prefix_accepts_a_trailing_slash_on_the_prefix() {
    assert_eq!(strip_prefix("/admin/x", "/admin/"), "/x");
    assert_eq!(strip_prefix("/admin", "/admin/"), "/");
    assert_eq!(strip_prefix("/a/b", "/"), "/a/b");
}

#[test]
fn strip_prefix_result_always_starts_with_slash() {
    assert_eq!(strip_prefix("", "/admin"), "/");
    assert_eq!(strip_prefix("x", "/admin"), "/x");
    assert!(matches!(
        strip_prefix("/admin/x", "/admin"),
        Cow::Borrowed("/x")
    ));
}
