//! The header values and request target the gateway writes into one forwarded request, cut
//! from one buffer per request: two allocations for all of them instead of one each, and
//! clones (the replay copy of every idempotent request clones them all) that share the
//! buffer instead of allocating again.
//!
//! A buffer serves exactly one request and is never reused: each value is a disjoint,
//! read-only slice of it, so nothing written later can show through an earlier value.

use std::fmt;

use bytes::{Bytes, BytesMut};
use http::HeaderValue;

/// Bytes reserved when the first value is written: a path, an address, a request id, a
/// subject and roles fit; a longer request grows it (the values cut so far stay where they
/// are).
const FIRST_RESERVE: usize = 512;

/// The request's buffer of gateway-written values; written through `push` or `write!`.
#[derive(Debug, Default)]
pub struct ValueBuf {
    buf: BytesMut,
}

impl ValueBuf {
    /// An empty buffer; nothing is allocated until a value is written.
    pub fn new() -> Self {
        ValueBuf::default()
    }

    /// Appends `part` to the value being built.
    pub fn push(&mut self, part: &[u8]) {
        if self.buf.capacity() == 0 {
            self.buf.reserve(FIRST_RESERVE.max(part.len()));
        }
        self.buf.extend_from_slice(part);
    }

    /// Everything appended since the last `take`, as bytes that share the buffer.
    pub fn take(&mut self) -> Bytes {
        self.buf.split().freeze()
    }

    /// `text` as a header value; None (and nothing kept) when it is not one.
    pub fn value(&mut self, text: &[u8]) -> Option<HeaderValue> {
        self.push(text);
        self.take_value()
    }

    /// What was appended since the last `take` as a header value; None when it is not one.
    pub fn take_value(&mut self) -> Option<HeaderValue> {
        HeaderValue::from_maybe_shared(self.take()).ok()
    }
}

impl fmt::Write for ValueBuf {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.push(text.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    #[test]
    fn values_cut_earlier_keep_their_bytes_while_later_ones_are_written() {
        let mut values = ValueBuf::new();
        let first = values.value(b"alice").expect("a header value");
        write!(values, "{}", std::net::Ipv4Addr::new(10, 0, 0, 17)).expect("writes");
        let second = values.take_value().expect("a header value");
        // Past the first reserve: the buffer grows while earlier values still point into it.
        let long = "r".repeat(3 * FIRST_RESERVE);
        let third = values.value(long.as_bytes()).expect("a header value");
        let fourth = values.value(b"").expect("an empty value");
        assert_eq!(first, "alice");
        assert_eq!(second, "10.0.0.17");
        assert_eq!(third, long.as_str());
        assert_eq!(fourth, "");
        // A clone shares the bytes; it stays equal whatever comes after.
        let copy = first.clone();
        values.push(b"overwrite?");
        assert_eq!(values.take(), "overwrite?");
        assert_eq!(first, "alice");
        assert_eq!(copy, "alice");
    }

    #[test]
    fn a_value_a_header_cannot_carry_is_refused_and_not_kept() {
        let mut values = ValueBuf::new();
        assert!(values.value(b"bad\r\nInjected: 1").is_none());
        assert!(values.value(b"nul\0").is_none());
        assert_eq!(values.value(b"next").expect("a header value"), "next");
    }

    #[test]
    fn nothing_is_allocated_until_a_value_is_written() {
        let mut values = ValueBuf::new();
        assert_eq!(values.buf.capacity(), 0);
        assert_eq!(values.take(), "");
        values.push(b"x");
        assert!(values.buf.capacity() >= FIRST_RESERVE - 1);
    }
}
