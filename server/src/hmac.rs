//! HMAC-SHA256 (RFC 2104) over the `sha2` crate already in the tree, and the `userHash` check
//! that lets a browser read back its merged profile: the site's backend vouches for the user
//! with `userHash = hex(HMAC-SHA256(secret key, userId))`, which only the secret key holder
//! can compute.

use sha2::{Digest, Sha256};

use crate::auth::constant_time_eq;

const BLOCK: usize = 64;

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The `userHash` a site gives its page for `user_id`.
pub fn user_hash(secret_key: &str, user_id: &str) -> String {
    hex(&hmac_sha256(secret_key.as_bytes(), user_id.as_bytes()))
}

/// Whether `given` is the `userHash` of `user_id` (hex, either case), compared in constant
/// time.
pub fn user_hash_valid(secret_key: &str, user_id: &str, given: &str) -> bool {
    let expected = user_hash(secret_key, user_id);
    constant_time_eq(expected.as_bytes(), given.trim().to_ascii_lowercase().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4231_test_vectors() {
        // Test case 2: a short key.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hex(&hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn user_hashes_are_checked_in_either_case() {
        let h = user_hash("sk_test", "user-1");
        assert!(user_hash_valid("sk_test", "user-1", &h));
        assert!(user_hash_valid("sk_test", "user-1", &h.to_ascii_uppercase()));
        assert!(!user_hash_valid("sk_test", "user-2", &h));
        assert!(!user_hash_valid("sk_other", "user-1", &h));
        assert!(!user_hash_valid("sk_test", "user-1", ""));
    }
}
