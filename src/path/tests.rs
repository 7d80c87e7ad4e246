//! Unit tests for the path normalizer: each known trick gets its own named test.

use super::*;

/// Normalizes and expects success, returning an owned string for easy comparison.
fn ok(path: &str) -> String {
    match normalize(path) {
        Ok(out) => out.into_owned(),
        Err(e) => panic!("{path:?} was refused: {e}"),
    }
}

/// Normalizes and expects refusal.
fn err(path: &str) -> PathError {
    match normalize(path) {
        Ok(out) => panic!("{path:?} was accepted as {out:?}"),
        Err(e) => e,
    }
}

#[test]
fn dot_dot_traversal_into_admin_is_resolved_before_matching() {
    assert_eq!(ok("/public/../admin/x"), "/admin/x");
}

#[test]
fn encoded_dot_dot_above_root_is_refused() {
    assert_eq!(err("/%2e%2e/admin"), PathError::AboveRoot);
}

#[test]
fn encoded_dot_dot_pops_previous_segment() {
    assert_eq!(ok("/a/%2e%2e/admin"), "/admin");
}

#[test]
fn mixed_case_and_half_encoded_dot_dot_are_dot_dot() {
    assert_eq!(ok("/a/%2E./x"), "/x");
    assert_eq!(ok("/a/.%2e/x"), "/x");
    assert_eq!(err("/%2E./x"), PathError::AboveRoot);
    assert_eq!(err("/.%2e/x"), PathError::AboveRoot);
}

#[test]
fn encoded_slash_is_refused() {
    assert_eq!(err("/admin%2Fx"), PathError::EncodedSlash);
    assert_eq!(err("/a%2fb"), PathError::EncodedSlash);
}

#[test]
fn encoded_backslash_is_refused() {
    assert_eq!(err("/a%5cb"), PathError::EncodedBackslash);
    assert_eq!(err("/a%5Cb"), PathError::EncodedBackslash);
}

#[test]
fn raw_backslash_is_refused() {
    assert_eq!(err("/public\\..\\admin"), PathError::Backslash);
}

#[test]
fn nul_is_refused_raw_and_encoded() {
    assert_eq!(err("/a%00.txt"), PathError::Nul);
    assert_eq!(err("/a\0.txt"), PathError::Nul);
}

#[test]
fn malformed_escapes_are_refused() {
    assert_eq!(err("/%zz"), PathError::BadPercent);
    assert_eq!(err("/%4"), PathError::BadPercent);
    assert_eq!(err("/%"), PathError::BadPercent);
    assert_eq!(err("/%4g"), PathError::BadPercent);
}

#[test]
fn escape_errors_are_reported_before_raw_character_errors() {
    assert_eq!(err("/a\\b/%zz"), PathError::BadPercent);
    assert_eq!(err("/a\\b/%2f"), PathError::EncodedSlash);
}

#[test]
fn raw_character_errors_are_reported_before_climbing_above_root() {
    assert_eq!(err("/../a\\b"), PathError::Backslash);
}

#[test]
fn relative_asterisk_and_empty_paths_are_refused() {
    assert_eq!(err("admin"), PathError::NotAbsolute);
    assert_eq!(err("*"), PathError::NotAbsolute);
    assert_eq!(err(""), PathError::NotAbsolute);
}

#[test]
fn double_slash_prefix_is_merged() {
    assert_eq!(ok("//admin/x"), "/admin/x");
    assert_eq!(ok("/admin///x//"), "/admin/x/");
}

#[test]
fn single_dot_segments_are_removed() {
    assert_eq!(ok("/admin/./x"), "/admin/x");
    assert_eq!(ok("/./admin"), "/admin");
}

#[test]
fn encoded_unreserved_characters_are_decoded() {
    assert_eq!(ok("/%61dmin"), "/admin");
    assert_eq!(ok("/%7Euser/%2D%5f"), "/~user/-_");
}

#[test]
fn encoded_reserved_characters_stay_encoded() {
    assert_eq!(ok("/a%20b"), "/a%20b");
    assert!(matches!(normalize("/a%20b"), Ok(Cow::Borrowed(_))));
}

#[test]
fn lowercase_hex_is_uppercased() {
    assert_eq!(ok("/a%3ab"), "/a%3Ab");
}

#[test]
fn encoded_percent_is_not_decoded_twice() {
    assert_eq!(ok("/%252e%252e/admin"), "/%252e%252e/admin");
    assert_eq!(ok("/%252E"), "/%252E");
}

#[test]
fn trailing_slash_is_kept() {
    assert_eq!(ok("/a/b/"), "/a/b/");
}

#[test]
fn root_is_root() {
    assert_eq!(ok("/"), "/");
}

#[test]
fn trailing_dot_segments_leave_a_trailing_slash() {
    assert_eq!(ok("/a/b/.."), "/a/");
    assert_eq!(ok("/a/."), "/a/");
    assert_eq!(ok("/a/.."), "/");
}

#[test]
fn dot_dot_at_root_is_refused_not_clamped() {
    assert_eq!(err("/.."), PathError::AboveRoot);
    assert_eq!(err("/a/../.."), PathError::AboveRoot);
    assert_eq!(err("/../"), PathError::AboveRoot);
}

#[test]
fn dots_inside_names_are_not_dot_segments() {
    assert_eq!(ok("/.well-known/x"), "/.well-known/x");
    assert_eq!(ok("/a/...b/..c./..."), "/a/...b/..c./...");
}

#[test]
fn unicode_bytes_are_left_as_is() {
    assert_eq!(ok("/caf\u{e9}/\u{1F600}"), "/caf\u{e9}/\u{1F600}");
    assert_eq!(ok("/caf\u{e9}/./%41"), "/caf\u{e9}/A");
}

#[test]
fn unchanged_paths_are_borrowed() {
    for path in ["/", "/a/b/", "/.well-known/x", "/a%20b", "/caf\u{e9}"] {
        assert!(matches!(normalize(path), Ok(Cow::Borrowed(_))), "{path}");
    }
}

#[test]
fn changed_paths_are_owned() {
    assert!(matches!(normalize("//a"), Ok(Cow::Owned(_))));
}

#[test]
fn reasons_are_short_and_distinct() {
    use PathError::*;
    let all = [
        NotAbsolute,
        BadPercent,
        EncodedSlash,
        EncodedBackslash,
        Backslash,
        Nul,
        AboveRoot,
    ];
    for (i, a) in all.iter().enumerate() {
        assert_eq!(a.to_string(), a.reason());
        assert!(all[i + 1..].iter().all(|b| a.reason() != b.reason()));
    }
    assert_eq!(EncodedSlash.reason(), "encoded slash in path");
    assert_eq!(AboveRoot.reason(), "path climbs above the root");
}

/// Inputs for the property-style checks: ordinary, tricky and hostile shapes.
const SAMPLES: &[&str] = &[
    "/",
    "//",
    "///",
    "/a",
    "/a/",
    "/a//b",
    "/./",
    "/a/./b/../c",
    "/a/b/c/../../d",
    "/a/b/..",
    "/a/b/.",
    "/a/%2e",
    "/a/%2E%2e/",
    "/%61%62%63",
    "/a%20b%3a",
    "/%25",
    "/%252e%252e/",
    "/.well-known/",
    "/a/.../b",
    "/a/..b/c.",
    "/x/y/z/../../../q",
    "//a//..//b//",
    "/caf\u{e9}/../t\u{e9}",
    "/a/%7e/%2D/",
    "/a/b/c/./../.",
];

#[test]
fn normalizing_twice_changes_nothing() {
    for &input in SAMPLES {
        let once = ok(input);
        assert_eq!(ok(&once), once, "input {input:?}");
        assert!(
            matches!(normalize(&once), Ok(Cow::Borrowed(_))),
            "input {input:?}"
        );
    }
}

#[test]
fn output_never_contains_empty_or_dot_segments() {
    for &input in SAMPLES {
        let out = ok(input);
        assert!(out.starts_with('/'), "{input:?} -> {out:?}");
        for bad in ["//", "/./", "/../"] {
            assert!(!out.contains(bad), "{input:?} -> {out:?}");
        }
        assert!(
            !out.ends_with("/.") && !out.ends_with("/.."),
            "{input:?} -> {out:?}"
        );
    }
}

#[test]
fn path_parameters_that_tomcat_strips_are_refused() {
    assert_eq!(err("/public/..;/admin"), PathError::Semicolon);
    assert_eq!(err("/admin;x/secret"), PathError::Semicolon);
    assert_eq!(err("/a/.;/b"), PathError::Semicolon);
    assert_eq!(ok("/a%3Bb"), "/a%3Bb");
}
