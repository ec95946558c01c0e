//! Identity: the anonymous id every shopper gets (a UUID v4 made from randomness the shell
//! passes in), and the user id that `identify` adds.

/// Turns 32 hex digits of randomness into a UUID v4 string; `n` derives further ids from
/// the same randomness (one call may need a message id and a `Stage Changed` id).
///
/// ```
/// let id = nudge::identity::uuid("00112233445566778899aabbccddeeff", 0);
/// assert_eq!(id, "00112233-4455-4677-8899-aabbccddeeff");
/// ```
pub fn uuid(seed: &str, n: u16) -> String {
    let mut bytes = [0u8; 16];
    for (i, pair) in seed.as_bytes().chunks(2).take(16).enumerate() {
        bytes[i] = (hex(pair[0]) << 4) | pair.get(1).map_or(0, |c| hex(*c));
    }
    if n > 0 {
        // Derived ids mix `n` through both halves, so structured seeds cannot collide.
        let (mut hi, mut lo) = (u64::from_be_bytes(head(&bytes, 0)), u64::from_be_bytes(head(&bytes, 8)));
        hi = mix(hi ^ u64::from(n));
        lo = mix(lo ^ hi);
        bytes[..8].copy_from_slice(&hi.to_be_bytes());
        bytes[8..].copy_from_slice(&lo.to_be_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Written as bytes (ASCII only), one string at the end: this runs for every message.
    let mut out = [b'-'; 36];
    let mut at = 0;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        if let Some(pair) = out.get_mut(at..at + 2) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 15)];
        }
        at += 2;
    }
    ascii(&out)
}

/// ASCII bytes as a string (no UTF-8 check needed for them).
pub fn ascii(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        s.push(char::from(b));
    }
    s
}

fn head(b: &[u8; 16], at: usize) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&b[at..at + 8]);
    out
}

// splitmix64's finaliser: a cheap bijective mix.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_differ_and_are_version_four() {
        let seed = "f0e1d2c3b4a5968778695a4b3c2d1e0f";
        let a = uuid(seed, 0);
        let b = uuid(seed, 1);
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn short_or_odd_seeds_still_give_a_uuid() {
        assert_eq!(uuid("", 0).len(), 36);
        assert_eq!(uuid("zz1", 0).len(), 36);
    }
}
