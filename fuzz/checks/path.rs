//! `path::normalize` against its contract and against a naive stack-based model.

use std::borrow::Cow;

use portcullis::path::{normalize, PathError};

/// Normalizes any UTF-8 input and checks the result (or the refusal) against the model.
pub fn path(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let result = normalize(input);
    assert_eq!(
        result.as_deref().map_err(|e| *e),
        model(input).as_deref().map_err(|e| *e),
        "normalize disagrees with the model on {input:?}"
    );
    if let Ok(out) = result {
        check_normal_form(input, &out);
    }
}

/// What every normalized path satisfies.
pub(crate) fn check_normal_form(input: &str, out: &str) {
    assert!(out.len() <= input.len(), "{input:?} grew to {out:?}");
    // Idempotent, and a normal path is passed through without a copy.
    assert!(
        matches!(normalize(out), Ok(Cow::Borrowed(again)) if again == out),
        "{out:?} (from {input:?}) is not a fixed point"
    );
    let body = out
        .strip_prefix('/')
        .unwrap_or_else(|| panic!("{out:?} is not absolute"));
    let segments: Vec<&str> = body.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        // Only the last segment may be empty: the trailing '/' (or the root itself).
        let last = i + 1 == segments.len();
        assert!(!segment.is_empty() || last, "empty segment in {out:?}");
        assert!(!matches!(*segment, "." | ".."), "dot segment in {out:?}");
    }
    assert!(
        !out.contains(['\\', '\0', ';']),
        "raw trick byte in {out:?}"
    );
    let bytes = out.as_bytes();
    for (i, _) in out.match_indices('%') {
        let hex = bytes.get(i + 1..i + 3).unwrap_or_default();
        let upper = |b: &u8| b.is_ascii_digit() || (b'A'..=b'F').contains(b);
        assert!(
            hex.len() == 2 && hex.iter().all(upper),
            "bad escape in {out:?}"
        );
        let text = std::str::from_utf8(hex).unwrap_or_default();
        let byte = u8::from_str_radix(text, 16).unwrap_or_default();
        assert!(
            !byte.is_ascii_alphanumeric() && !b"-._~/\\\0".contains(&byte),
            "escape %{text} in {out:?} should have been decoded or refused"
        );
    }
}

/// A deliberately simple normalizer: validate, decode, then resolve with a segment stack.
pub(crate) fn model(input: &str) -> Result<String, PathError> {
    if !input.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let bytes = input.as_bytes();
    // Escapes are checked over the whole path before raw bytes, and raw bytes before dots.
    let mut raw = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                escape(bytes, i)?;
                i += 3;
                continue;
            }
            b'\\' => raw = raw.or(Some(PathError::Backslash)),
            0 => raw = raw.or(Some(PathError::Nul)),
            b';' => raw = raw.or(Some(PathError::Semicolon)),
            _ => {}
        }
        i += 1;
    }
    if let Some(err) = raw {
        return Err(err);
    }
    let mut stack: Vec<String> = Vec::new();
    let mut trailing = false;
    for raw in input[1..].split('/') {
        let segment = decode(raw)?;
        trailing = matches!(segment.as_str(), "" | "." | "..");
        match segment.as_str() {
            "" | "." => {}
            ".." => {
                stack.pop().ok_or(PathError::AboveRoot)?;
            }
            _ => stack.push(segment),
        }
    }
    let mut out = format!("/{}", stack.join("/"));
    if trailing && !stack.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// The byte an escape at `at` stands for, or why it is refused.
fn escape(bytes: &[u8], at: usize) -> Result<u8, PathError> {
    let hex = bytes.get(at + 1..at + 3).ok_or(PathError::BadPercent)?;
    let text = std::str::from_utf8(hex).map_err(|_| PathError::BadPercent)?;
    if !hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(PathError::BadPercent);
    }
    match u8::from_str_radix(text, 16).map_err(|_| PathError::BadPercent)? {
        b'/' => Err(PathError::EncodedSlash),
        b'\\' => Err(PathError::EncodedBackslash),
        0 => Err(PathError::Nul),
        byte => Ok(byte),
    }
}

/// One segment with unreserved escapes decoded and the others written in uppercase.
fn decode(segment: &str) -> Result<String, PathError> {
    let mut out = String::new();
    let mut rest = segment;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let byte = escape(rest.as_bytes(), at)?;
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}
