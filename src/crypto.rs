//! The master key and what is derived from it: AES-256-GCM sealing of personal data at rest
//! (request identities, exports, signing keys) and the keyed subject reference.
//!
//! Architecture invariant: personal data in the engine store is sealed; only the subject
//! reference (HMAC-SHA256 of the normalized identities) is stored in the clear.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::fmt;
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("master key: {0}")]
    Key(String),
    #[error("cannot decrypt {0}: wrong master key or corrupted data")]
    Open(String),
    #[error("cannot encrypt: {0}")]
    Seal(String),
}

/// The 32-byte master key. Debug output never shows it.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

const SEAL_VERSION: u8 = 1;

impl MasterKey {
    pub fn from_bytes(b: [u8; 32]) -> Self {
        MasterKey(b)
    }

    pub fn generate() -> Self {
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        MasterKey(b)
    }

    /// Parses 32 bytes written as base64 (standard or URL-safe) or 64 hex digits.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
            hex::decode(t).map_err(|e| CryptoError::Key(e.to_string()))?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t))
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(t))
                .map_err(|_| CryptoError::Key("not base64 or hex".into()))?
        };
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|v: Vec<u8>| CryptoError::Key(format!("must be 32 bytes, got {}", v.len())))?;
        Ok(MasterKey(arr))
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Reads a key file (base64 or hex text).
    pub fn read_file(path: &Path) -> Result<Self, CryptoError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CryptoError::Key(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| CryptoError::Key(format!("{}: {e}", path.display())))
    }

    /// Writes a new key file readable only by its owner; fails if it exists.
    pub fn write_new_file(&self, path: &Path) -> Result<(), CryptoError> {
        use std::io::Write;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| CryptoError::Key(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(path)
            .map_err(|e| CryptoError::Key(format!("cannot create {}: {e}", path.display())))?;
        writeln!(f, "{}", self.to_base64())
            .map_err(|e| CryptoError::Key(format!("cannot write {}: {e}", path.display())))
    }

    /// A 32-byte subkey for one purpose: HMAC-SHA256(master, "lethe/" + label).
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"lethe/");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Encrypts `plain` with AES-256-GCM under the subkey for `purpose`; `context` is
    /// authenticated (binds the ciphertext to, e.g., its request id).
    pub fn seal(&self, purpose: &str, context: &str, plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = self.derive(&format!("seal/{purpose}"));
        let cipher =
            Aes256Gcm::new_from_slice(&key).map_err(|e| CryptoError::Seal(e.to_string()))?;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|e| CryptoError::Seal(e.to_string()))?;
        let mut out = Vec::with_capacity(1 + 12 + ct.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn open(
        &self,
        purpose: &str,
        context: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let what = || CryptoError::Open(purpose.to_string());
        if sealed.len() < 1 + 12 + 16 || sealed[0] != SEAL_VERSION {
            return Err(what());
        }
        let key = self.derive(&format!("seal/{purpose}"));
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| what())?;
        cipher
            .decrypt(
                Nonce::from_slice(&sealed[1..13]),
                Payload {
                    msg: &sealed[13..],
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| what())
    }

    /// Keyed hash of a value: hex HMAC-SHA256 under the subkey for `purpose`.
    pub fn keyed_hash(&self, purpose: &str, value: &[u8]) -> String {
        let key = self.derive(&format!("hmac/{purpose}"));
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(value);
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Chunked authenticated encryption of a byte stream (the STREAM construction of Hoang,
/// Reyhanitabar, Rogaway and Vizár, "Online Authenticated-Encryption and its Nonce-Reuse
/// Misuse-Resistance", 2015) over AES-256-GCM: each chunk is sealed on its own with the nonce
/// `prefix(7) || counter(4, big-endian) || last(1)`, so a reader detects reordered, dropped,
/// swapped or appended chunks and a stream cut short at any point (the last chunk, and only
/// it, is sealed with the flag set). One key per stream: the prefix is random only as defence
/// in depth.
pub struct StreamCipher {
    cipher: Aes256Gcm,
    prefix: [u8; 7],
}

impl fmt::Debug for StreamCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamCipher(<redacted>)")
    }
}

/// Bytes a sealed chunk adds to its plaintext (the GCM tag).
pub const STREAM_TAG_LEN: usize = 16;

impl StreamCipher {
    pub fn new(key: &[u8; 32], prefix: [u8; 7]) -> Result<StreamCipher, CryptoError> {
        let cipher =
            Aes256Gcm::new_from_slice(key).map_err(|e| CryptoError::Seal(e.to_string()))?;
        Ok(StreamCipher { cipher, prefix })
    }

    fn nonce(&self, counter: u32, last: bool) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..7].copy_from_slice(&self.prefix);
        n[7..11].copy_from_slice(&counter.to_be_bytes());
        n[11] = u8::from(last);
        n
    }

    /// Seals chunk number `counter` in place (the tag is appended); `aad` is authenticated
    /// with every chunk (the stream's header).
    pub fn seal_chunk(
        &self,
        counter: u32,
        last: bool,
        aad: &[u8],
        chunk: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        use aes_gcm::aead::AeadInPlace;
        let nonce = self.nonce(counter, last);
        self.cipher
            .encrypt_in_place(Nonce::from_slice(&nonce), aad, chunk)
            .map_err(|e| CryptoError::Seal(e.to_string()))
    }

    /// Opens chunk number `counter` in place (the tag is removed). Fails when the chunk was
    /// changed, belongs elsewhere in the stream or to another stream, or its last flag differs.
    pub fn open_chunk(
        &self,
        counter: u32,
        last: bool,
        aad: &[u8],
        chunk: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        use aes_gcm::aead::AeadInPlace;
        let nonce = self.nonce(counter, last);
        self.cipher
            .decrypt_in_place(Nonce::from_slice(&nonce), aad, chunk)
            .map_err(|_| CryptoError::Open(format!("stream chunk {counter}")))
    }
}

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The subject reference: HMAC-SHA256 over the sorted normalized identities
/// (`kind=value` lines). Stable for the same identities, meaningless without the key.
pub fn subject_ref(key: &MasterKey, identities: &[(String, String)]) -> String {
    let mut lines: Vec<String> = identities.iter().map(|(k, v)| format!("{k}={v}")).collect();
    lines.sort();
    lines.dedup();
    format!(
        "hmac-sha256:{}",
        key.keyed_hash("subject-ref", lines.join("\n").as_bytes())
    )
}

/// A random token with a prefix, e.g. `lethe_officer_…` (32 random bytes, URL-safe base64).
pub fn random_token(prefix: &str) -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

/// Hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_binds_context() {
        let k = MasterKey::generate();
        let sealed = k.seal("export", "req-1", b"hello").unwrap();
        assert_eq!(k.open("export", "req-1", &sealed).unwrap(), b"hello");
        assert!(k.open("export", "req-2", &sealed).is_err());
        assert!(k.open("identities", "req-1", &sealed).is_err());
        assert!(
            MasterKey::generate()
                .open("export", "req-1", &sealed)
                .is_err()
        );
        let mut bad = sealed.clone();
        let n = bad.len() - 1;
        bad[n] ^= 1;
        assert!(k.open("export", "req-1", &bad).is_err());
    }

    #[test]
    fn stream_chunks_are_bound_to_position_flag_and_stream() {
        let key = random_bytes::<32>();
        let s = StreamCipher::new(&key, [7; 7]).unwrap();
        let mut c0 = b"first".to_vec();
        s.seal_chunk(0, false, b"hdr", &mut c0).unwrap();
        let mut c1 = b"second".to_vec();
        s.seal_chunk(1, true, b"hdr", &mut c1).unwrap();
        let mut ok = c1.clone();
        s.open_chunk(1, true, b"hdr", &mut ok).unwrap();
        assert_eq!(ok, b"second");
        // Reordered, truncated (a non-last chunk read as last), other header, other stream.
        assert!(s.open_chunk(0, true, b"hdr", &mut c1.clone()).is_err());
        assert!(s.open_chunk(0, true, b"hdr", &mut c0.clone()).is_err());
        assert!(s.open_chunk(0, false, b"other", &mut c0.clone()).is_err());
        let other = StreamCipher::new(&random_bytes::<32>(), [7; 7]).unwrap();
        assert!(other.open_chunk(0, false, b"hdr", &mut c0.clone()).is_err());
        let mut flipped = c0.clone();
        flipped[0] ^= 1;
        assert!(s.open_chunk(0, false, b"hdr", &mut flipped).is_err());
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn keys_parse_in_both_encodings() {
        let k = MasterKey::generate();
        let again = MasterKey::parse(&k.to_base64()).unwrap();
        assert_eq!(k.0, again.0);
        assert_eq!(MasterKey::parse(&hex::encode(k.0)).unwrap().0, k.0);
        assert!(MasterKey::parse("short").is_err());
        assert_eq!(format!("{k:?}"), "MasterKey(<redacted>)");
    }

    #[test]
    fn subject_ref_is_order_independent() {
        let k = MasterKey::generate();
        let a = subject_ref(
            &k,
            &[
                ("email".into(), "a@b.de".into()),
                ("phone".into(), "+491".into()),
            ],
        );
        let b = subject_ref(
            &k,
            &[
                ("phone".into(), "+491".into()),
                ("email".into(), "a@b.de".into()),
            ],
        );
        assert_eq!(a, b);
        assert!(!a.contains("a@b.de"));
    }
}
