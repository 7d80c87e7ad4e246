//! Request path normalization: the one place that decides which path the route table and the
//! upstream see. Anything ambiguous (encoded separators, NUL, climbing above the root) is
//! refused rather than repaired, because a proxy and its upstream that repair differently
//! disagree about which resource a request names — the root of most auth-bypass tricks.

use std::borrow::Cow;

/// Why a request path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with '/' (covers "*" and the empty path).
    #[error("{}", self.reason())]
    NotAbsolute,
    /// A '%' not followed by two hex digits.
    #[error("{}", self.reason())]
    BadPercent,
    /// "%2F": the upstream might decode it into a separator we never matched on.
    #[error("{}", self.reason())]
    EncodedSlash,
    /// "%5C": some upstreams treat '\' as a separator.
    #[error("{}", self.reason())]
    EncodedBackslash,
    /// A raw '\' in the path.
    #[error("{}", self.reason())]
    Backslash,
    /// A NUL byte, raw or as "%00".
    #[error("{}", self.reason())]
    Nul,
    /// A ".." segment with nothing left to remove.
    #[error("{}", self.reason())]
    AboveRoot,
    /// A raw ';': Tomcat and Spring read "/admin;x/y" as "/admin/y" and "/a/..;/b" as "/b",
    /// so a path parameter would let a request match one route and reach another.
    #[error("{}", self.reason())]
    Semicolon,
}

impl PathError {
    /// Short human reason, fit for an audit log field or a 400 body.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotAbsolute => "path does not start with '/'",
            Self::BadPercent => "malformed percent-escape in path",
            Self::EncodedSlash => "encoded slash in path",
            Self::EncodedBackslash => "encoded backslash in path",
            Self::Backslash => "backslash in path",
            Self::Nul => "NUL byte in path",
            Self::AboveRoot => "path climbs above the root",
            Self::Semicolon => "path parameter (';') in path",
        }
    }
}

/// Normalizes the path part of a request URI (no query), or says why it is refused.
///
/// Borrows the input when it is already normal; allocates once otherwise.
pub fn normalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if is_plain(path.as_bytes()) {
        return Ok(Cow::Borrowed(path));
    }
    // Validate everything first so the error reported follows the rule order (escapes, then
    // raw characters, then dot segments) regardless of where in the path each problem sits.
    check_bytes(path.as_bytes())?;
    let out = rebuild(path)?;
    if out == path {
        // The quick scan is conservative ("/.well-known" trips it); keep the borrow anyway.
        return Ok(Cow::Borrowed(path));
    }
    Ok(Cow::Owned(out))
}

/// Quick scan: true when no rule can change or reject the path.
fn is_plain(bytes: &[u8]) -> bool {
    let mut prev = 0u8;
    for &b in bytes {
        match b {
            b'%' | b'\\' | b';' | 0 => return false,
            b'/' | b'.' if prev == b'/' => return false,
            _ => {}
        }
        prev = b;
    }
    true
}

/// Checks rules 2 and 3 over the whole path: escapes first, then raw '\' and NUL.
fn check_bytes(bytes: &[u8]) -> Result<(), PathError> {
    let mut raw_error = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                decode_escape(bytes, i)?;
                i += 3;
                continue;
            }
            b'\\' => {
                raw_error.get_or_insert(PathError::Backslash);
            }
            0 => {
                raw_error.get_or_insert(PathError::Nul);
            }
            b';' => {
                raw_error.get_or_insert(PathError::Semicolon);
            }
            _ => {}
        }
        i += 1;
    }
    raw_error.map_or(Ok(()), Err)
}

/// What an escape at a given position becomes.
enum Escape {
    /// An unreserved character, written decoded.
    Decoded(u8),
    /// Any other byte, written back as "%XX" with uppercase hex.
    Kept(u8),
}

/// Reads the escape starting at `bytes[at]` (which is '%').
fn decode_escape(bytes: &[u8], at: usize) -> Result<Escape, PathError> {
    let hi = bytes.get(at + 1).and_then(|&b| hex_value(b));
    let lo = bytes.get(at + 2).and_then(|&b| hex_value(b));
    let (Some(hi), Some(lo)) = (hi, lo) else {
        return Err(PathError::BadPercent);
    };
    let byte = hi << 4 | lo;
    match byte {
        b'/' => Err(PathError::EncodedSlash),
        b'\\' => Err(PathError::EncodedBackslash),
        0 => Err(PathError::Nul),
        b if is_unreserved(b) => Ok(Escape::Decoded(b)),
        b => Ok(Escape::Kept(b)),
    }
}

/// Value of one hex digit, either case.
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 unreserved characters: the only ones whose escapes mean the same decoded.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Builds the normal form: decoded segments, merged slashes, dot segments resolved.
///
/// `out` holds "/seg/seg" with no trailing slash; `trailing` records whether the last thing
/// seen was a separator or a dot segment, which RFC 3986 5.2.4 ends with a '/'.
fn rebuild(path: &str) -> Result<String, PathError> {
    // Output is never longer than the input: decoding shrinks, uppercasing keeps length.
    let mut out = String::with_capacity(path.len());
    let mut trailing = true;
    for raw in path[1..].split('/') {
        let mark = out.len();
        out.push('/');
        push_decoded(&mut out, raw)?;
        match &out[mark + 1..] {
            "" | "." => {
                out.truncate(mark);
                trailing = true;
            }
            ".." => {
                out.truncate(mark);
                let parent = out.rfind('/').ok_or(PathError::AboveRoot)?;
                out.truncate(parent);
                trailing = true;
            }
            _ => trailing = false,
        }
    }
    if out.is_empty() || trailing {
        out.push('/');
    }
    Ok(out)
}

/// Appends one raw segment with its escapes decoded or re-encoded in canonical form.
fn push_decoded(out: &mut String, segment: &str) -> Result<(), PathError> {
    let bytes = segment.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            i += 1;
            continue;
        }
        // Slicing at '%' is safe: it is ASCII, so never inside a multi-byte character.
        out.push_str(&segment[start..i]);
        match decode_escape(bytes, i)? {
            Escape::Decoded(b) => out.push(char::from(b)),
            Escape::Kept(b) => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xF)]));
            }
        }
        i += 3;
        start = i;
    }
    out.push_str(&segment[start..]);
    Ok(())
}

#[cfg(test)]
mod tests;
