//! AES-256-GCM (aws-lc-rs) for the connector's application-level envelope encryption: a
//! random 96-bit nonce per message, the nonce stored in front of the ciphertext and its tag,
//! and associated data that binds a ciphertext to where it belongs (a connection id), so a
//! copy moved to another record does not open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// 32 bytes of key material, wiped when dropped.
pub type KeyBytes = zeroize::Zeroizing<[u8; 32]>;

/// A new random 256-bit key.
pub fn random_key() -> KeyBytes {
    let mut key = KeyBytes::new([0u8; 32]);
    SystemRandom::new()
        .fill(key.as_mut())
        .expect("the system random generator works");
    key
}

fn aead_key(key: &KeyBytes) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.as_ref()).expect("a 256-bit key"))
}

/// `nonce || ciphertext || tag` of `plaintext` under `key`, bound to `aad`.
pub fn seal(key: &KeyBytes, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .expect("the system random generator works");
    let mut buffer = plaintext.to_vec();
    aead_key(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buffer,
        )
        .expect("AES-GCM sealing of a small message");
    let mut out = Vec::with_capacity(NONCE_LEN + buffer.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buffer);
    out
}

/// The plaintext of [`seal`]'s output, or `None` when the key, the associated data or the
/// bytes do not match (tampered, truncated, another key).
pub fn open(key: &KeyBytes, aad: &[u8], sealed: &[u8]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buffer = zeroize::Zeroizing::new(ciphertext.to_vec());
    let len = aead_key(key)
        .open_in_place(nonce, Aad::from(aad), buffer.as_mut_slice())
        .ok()?
        .len();
    buffer.truncate(len);
    Some(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_opens_only_with_its_key_and_associated_data() {
        let key = random_key();
        let sealed = seal(&key, b"conn_a", b"refresh-token");
        assert_eq!(
            open(&key, b"conn_a", &sealed).as_deref().map(Vec::as_slice),
            Some(&b"refresh-token"[..])
        );
        assert!(open(&key, b"conn_b", &sealed).is_none(), "another record");
        assert!(
            open(&random_key(), b"conn_a", &sealed).is_none(),
            "another key"
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(open(&key, b"conn_a", &tampered).is_none(), "tampered");
        assert!(open(&key, b"conn_a", &sealed[..5]).is_none(), "truncated");
        assert_ne!(
            seal(&key, b"conn_a", b"x"),
            seal(&key, b"conn_a", b"x"),
            "fresh nonces"
        );
    }
}
