//! Property tests for `normalize` over paths built from the pieces tricks are made of.

use proptest::prelude::*;

use crate::fuzz_checks::path::{check_normal_form, model};
use portcullis::path::normalize;

/// Segments: plain, dot and dot-dot in raw and encoded spellings, escapes of every kind.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E%2e".to_owned()),
        Just(".%2E".to_owned()),
        Just("%2F".to_owned()),
        Just("%2f".to_owned()),
        Just("%5C".to_owned()),
        Just("%00".to_owned()),
        Just("%".to_owned()),
        Just("%4".to_owned()),
        Just(";x".to_owned()),
        Just("é".to_owned()),
        "[a-zA-Z0-9._~-]{1,4}",
        "%[0-9a-fA-F]{2}",
        "[a-z%.;\\\\]{1,6}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    (prop::collection::vec(segment(), 0..8), any::<bool>()).prop_map(|(segments, trailing)| {
        let mut out = format!("/{}", segments.join("/"));
        if trailing {
            out.push('/');
        }
        out
    })
}

proptest! {
    #[test]
    fn normalization_is_idempotent(input in path()) {
        if let Ok(once) = normalize(&input) {
            let twice = normalize(&once);
            prop_assert_eq!(twice.as_deref(), Ok(&*once));
        }
    }

    #[test]
    fn normal_form_has_no_empty_dot_or_encoded_separator(input in path()) {
        if let Ok(out) = normalize(&input) {
            // No empty, "." or ".." segment, no "%2F", canonical escapes, never longer.
            check_normal_form(&input, &out);
            prop_assert!(!out.to_ascii_uppercase().contains("%2F"));
        }
    }

    #[test]
    fn normalize_agrees_with_a_naive_segment_stack(input in path()) {
        prop_assert_eq!(normalize(&input).map(|p| p.into_owned()), model(&input));
    }

    #[test]
    fn arbitrary_text_never_panics_and_agrees_with_the_model(input in "/\\PC{0,24}") {
        prop_assert_eq!(normalize(&input).map(|p| p.into_owned()), model(&input));
    }
}
