//! base64url without padding (RFC 4648 section 5, RFC 7515 section 2), decoded as the base64
//! crate's `URL_SAFE_NO_PAD` decodes it, in a plain loop over 4-character groups.
//!
//! The crate's general-purpose engine was ~3,100 instructions per token (header, payload and
//! signature) on a token's first verification, a tenth of it (issue 19 target 4). The rules
//! are the crate's: only `A-Z a-z 0-9 - _`, no `=`, a length that is not 1 more than a multiple
//! of 4, and the unused low bits of the last character zero (one encoding per byte string).

/// Marks a byte outside the alphabet in [`SEXTETS`].
const INVALID: u8 = 0xff;

/// The 6-bit value of each alphabet byte, [`INVALID`] for every other byte.
static SEXTETS: [u8; 256] = sextets();

const fn sextets() -> [u8; 256] {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
}

/// Appends the bytes `segment` encodes to `out`; false (with `out` partly written) when
/// `segment` is not canonical unpadded base64url.
pub(super) fn decode_into(segment: &[u8], out: &mut Vec<u8>) -> bool {
    let groups = segment.chunks_exact(4);
    let tail = groups.remainder();
    let start = out.len();
    // Sized once and written by index: no capacity check per group.
    out.resize(start + segment.len() / 4 * 3, 0);
    for (group, bytes) in groups.zip(out[start..].chunks_exact_mut(3)) {
        let sextet = |i: usize| u32::from(SEXTETS[usize::from(group[i])]);
        let (a, b, c, d) = (sextet(0), sextet(1), sextet(2), sextet(3));
        // INVALID is the only value with its top bit set.
        if (a | b | c | d) & 0x80 != 0 {
            return false;
        }
        let bits = a << 18 | b << 12 | c << 6 | d;
        bytes.copy_from_slice(&bits.to_be_bytes()[1..]);
    }
    let mut bits = 0u32;
    for &x in tail {
        let sextet = SEXTETS[usize::from(x)];
        if sextet == INVALID {
            return false;
        }
        bits = bits << 6 | u32::from(sextet);
    }
    match tail.len() {
        0 => true,
        // 12 bits carry one byte; the low 4 must be zero.
        2 if bits & 0xf == 0 => {
            out.push((bits >> 4) as u8);
            true
        }
        // 18 bits carry two bytes; the low 2 must be zero.
        3 if bits & 0x3 == 0 => {
            out.extend_from_slice(&((bits >> 2) as u16).to_be_bytes());
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use proptest::prelude::*;

    use super::decode_into;

    /// Our answer and the base64 crate's for `text`: the bytes, or None for a refusal.
    fn both(text: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let mut ours = Vec::new();
        let ours = decode_into(text, &mut ours).then_some(ours);
        (ours, URL_SAFE_NO_PAD.decode(text).ok())
    }

    #[test]
    fn every_short_string_decodes_as_the_base64_crate_decodes_it() {
        // Every string of up to 4 bytes over the whole alphabet's edges and its neighbours.
        let symbols = b"AQgw_-09azZ+/=.\x00\xff\x80 ";
        let mut strings: Vec<Vec<u8>> = vec![vec![]];
        let mut checked = 0;
        for _ in 0..4 {
            let mut longer = Vec::new();
            for s in &strings {
                for &b in symbols {
                    let mut t = s.clone();
                    t.push(b);
                    let (ours, theirs) = both(&t);
                    assert_eq!(ours, theirs, "{t:?}");
                    checked += 1;
                    longer.push(t);
                }
            }
            strings = longer;
        }
        assert_eq!(checked, 19 + 19 * 19 + 19 * 19 * 19 + 19 * 19 * 19 * 19);
        // The whole alphabet in every position of a 2- and 3-character tail.
        for b in 0..=255u8 {
            for prefix in [&b"QUJD"[..], b"QU", b"Q"] {
                let mut t = prefix.to_vec();
                t.push(b);
                assert_eq!(both(&t).0, both(&t).1, "{t:?}");
            }
        }
    }

    #[test]
    fn what_the_crate_encodes_decodes_back() {
        for len in 0..70 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = URL_SAFE_NO_PAD.encode(&bytes);
            assert_eq!(both(text.as_bytes()).0, Some(bytes));
        }
    }

    #[test]
    fn output_is_appended_after_what_the_buffer_holds() {
        let mut out = b"head".to_vec();
        assert!(decode_into(b"SGk", &mut out));
        assert_eq!(out, b"headHi");
    }

    proptest! {
        #[test]
        fn arbitrary_text_decodes_as_the_base64_crate_decodes_it(
            text in proptest::collection::vec(
                prop_oneof![
                    8 => proptest::sample::select(
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".to_vec()),
                    1 => any::<u8>(),
                ],
                0..400,
            )
        ) {
            let (ours, theirs) = both(&text);
            prop_assert_eq!(ours, theirs);
        }

        #[test]
        fn encoded_bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let text = URL_SAFE_NO_PAD.encode(&bytes);
            prop_assert_eq!(both(text.as_bytes()).0, Some(bytes));
        }
    }
}
