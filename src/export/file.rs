//! Sealed export files: a header, then the plaintext in fixed-size chunks, each sealed with
//! AES-256-GCM in the STREAM construction ([`crate::crypto::StreamCipher`]).
//!
//! Layout (all integers big-endian):
//!
//! ```text
//! "LETHEX" 0x01 0x00          magic and format version 1
//! u32  chunk size (plaintext bytes of every chunk but the last)
//! [7]  nonce prefix
//! u16  length, export file id (UTF-8)
//! u16  length, data key sealed under the master key (purpose "export-file", context = id)
//! chunks: sealed chunk (chunk size + 16 bytes), ..., last sealed chunk (16..=chunk size + 16)
//! ```
//!
//! Every chunk authenticates the whole header, so a header from another file (or a changed
//! chunk size) fails the first chunk. The writer writes to a hidden temporary file in the
//! same directory and renames it into place when it is complete, so a reader never sees a
//! half-written export; the reader checks the id in the header against the one it expects.

use crate::crypto::{MasterKey, STREAM_TAG_LEN, StreamCipher, random_bytes};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"LETHEX\x01\x00";
/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// The largest chunk size a reader accepts (a header is authenticated only by its chunks).
const MAX_CHUNK_SIZE: usize = 16 * 1024 * 1024;
const KEY_PURPOSE: &str = "export-file";

/// What a finished file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedFileInfo {
    /// Hex SHA-256 of the plaintext.
    pub sha256: String,
    pub plain_size: u64,
    pub file_size: u64,
}

fn header(id: &str, prefix: &[u8; 7], wrapped: &[u8], chunk: usize) -> io::Result<Vec<u8>> {
    let too_long =
        |what: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{what} too long"));
    let id_len = u16::try_from(id.len()).map_err(|_| too_long("export id"))?;
    let key_len = u16::try_from(wrapped.len()).map_err(|_| too_long("sealed key"))?;
    let chunk = u32::try_from(chunk).map_err(|_| too_long("chunk size"))?;
    let mut h = Vec::with_capacity(8 + 4 + 7 + 4 + id.len() + wrapped.len());
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&chunk.to_be_bytes());
    h.extend_from_slice(prefix);
    h.extend_from_slice(&id_len.to_be_bytes());
    h.extend_from_slice(id.as_bytes());
    h.extend_from_slice(&key_len.to_be_bytes());
    h.extend_from_slice(wrapped);
    Ok(h)
}

fn crypto_io(e: crate::crypto::CryptoError) -> io::Error {
    io::Error::other(e.to_string())
}

/// Writes one sealed file: plaintext goes in through [`Write`], [`SealedFileWriter::finish`]
/// seals the last chunk and renames the file into place. Dropped unfinished, the temporary
/// file is removed.
pub struct SealedFileWriter {
    file: Option<File>,
    tmp: PathBuf,
    dest: PathBuf,
    cipher: StreamCipher,
    aad: Vec<u8>,
    chunk_size: usize,
    buf: Vec<u8>,
    counter: u32,
    hasher: Sha256,
    plain_size: u64,
    file_size: u64,
}

impl SealedFileWriter {
    /// Starts `dest` (created when finished; its directory must exist) for the export `id`.
    pub fn create(key: &MasterKey, id: &str, dest: &Path) -> io::Result<SealedFileWriter> {
        Self::with_chunk_size(key, id, dest, CHUNK_SIZE)
    }

    pub(crate) fn with_chunk_size(
        key: &MasterKey,
        id: &str,
        dest: &Path,
        chunk_size: usize,
    ) -> io::Result<SealedFileWriter> {
        let data_key = random_bytes::<32>();
        let prefix = random_bytes::<7>();
        let wrapped = key.seal(KEY_PURPOSE, id, &data_key).map_err(crypto_io)?;
        let aad = header(id, &prefix, &wrapped, chunk_size)?;
        let cipher = StreamCipher::new(&data_key, prefix).map_err(crypto_io)?;
        let dir = dest.parent().unwrap_or(Path::new("."));
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(random_bytes::<6>())));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(&tmp)?;
        if let Err(e) = file.write_all(&aad) {
            drop(file);
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(SealedFileWriter {
            file: Some(file),
            tmp,
            dest: dest.to_path_buf(),
            cipher,
            file_size: aad.len() as u64,
            aad,
            chunk_size,
            buf: Vec::with_capacity(chunk_size + STREAM_TAG_LEN),
            counter: 0,
            hasher: Sha256::new(),
            plain_size: 0,
        })
    }

    fn seal_buffered(&mut self, last: bool) -> io::Result<()> {
        self.cipher
            .seal_chunk(self.counter, last, &self.aad, &mut self.buf)
            .map_err(crypto_io)?;
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("export file already finished"))?;
        file.write_all(&self.buf)?;
        self.file_size += self.buf.len() as u64;
        self.buf.clear();
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| io::Error::other("export too large for one file"))?;
        Ok(())
    }

    /// Seals the last chunk, flushes the file to disk and renames it into place.
    pub fn finish(mut self) -> io::Result<SealedFileInfo> {
        self.seal_buffered(true)?;
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("export file already finished"))?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dest)?;
        if let Some(dir) = self.dest.parent()
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        let hasher = std::mem::take(&mut self.hasher);
        Ok(SealedFileInfo {
            sha256: hex::encode(hasher.finalize()),
            plain_size: self.plain_size,
            file_size: self.file_size,
        })
    }
}

impl Write for SealedFileWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            // A full chunk is sealed only once more data follows: the last chunk is sealed
            // by `finish`, with the flag.
            if self.buf.len() == self.chunk_size {
                self.seal_buffered(false)?;
            }
            let n = (self.chunk_size - self.buf.len()).min(rest.len());
            self.hasher.update(&rest[..n]);
            self.buf.extend_from_slice(&rest[..n]);
            self.plain_size += n as u64;
            rest = &rest[n..];
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SealedFileWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Reads a sealed file back as plaintext. Any change to the file (a byte, a chunk moved or
/// taken from another file, the end cut off) makes a read fail with `InvalidData`: a reader
/// that reaches the end (`Ok(0)`) has read the whole export as written.
pub struct SealedFileReader<R: Read = File> {
    inner: R,
    cipher: StreamCipher,
    aad: Vec<u8>,
    block: usize,
    next: Vec<u8>,
    plain: Vec<u8>,
    pos: usize,
    counter: u32,
    finished: bool,
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("export file is corrupted or was tampered with ({what})"),
    )
}

fn read_up_to<R: Read>(r: &mut R, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
    buf.clear();
    buf.resize(want, 0);
    let mut got = 0;
    while got < want {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(())
}

impl SealedFileReader<File> {
    /// Opens `path`, which must be the export `id`.
    pub fn open(key: &MasterKey, id: &str, path: &Path) -> io::Result<Self> {
        Self::new(key, id, File::open(path)?)
    }
}

impl<R: Read> SealedFileReader<R> {
    pub fn new(key: &MasterKey, id: &str, mut inner: R) -> io::Result<Self> {
        let mut fixed = [0u8; 8 + 4 + 7 + 2];
        inner
            .read_exact(&mut fixed)
            .map_err(|_| corrupt("short header"))?;
        if &fixed[..8] != MAGIC {
            return Err(corrupt("not a lethe export file, or another version"));
        }
        let chunk = u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]) as usize;
        if chunk == 0 || chunk > MAX_CHUNK_SIZE {
            return Err(corrupt("chunk size"));
        }
        let mut prefix = [0u8; 7];
        prefix.copy_from_slice(&fixed[12..19]);
        let id_len = u16::from_be_bytes([fixed[19], fixed[20]]) as usize;
        let mut stored_id = vec![0u8; id_len];
        inner
            .read_exact(&mut stored_id)
            .map_err(|_| corrupt("short header"))?;
        if stored_id != id.as_bytes() {
            return Err(corrupt("the file belongs to another export"));
        }
        let mut len = [0u8; 2];
        inner
            .read_exact(&mut len)
            .map_err(|_| corrupt("short header"))?;
        let mut wrapped = vec![0u8; u16::from_be_bytes(len) as usize];
        inner
            .read_exact(&mut wrapped)
            .map_err(|_| corrupt("short header"))?;
        let data_key: [u8; 32] = key
            .open(KEY_PURPOSE, id, &wrapped)
            .map_err(|_| corrupt("its key does not open with this master key"))?
            .try_into()
            .map_err(|_| corrupt("key length"))?;
        let aad = header(id, &prefix, &wrapped, chunk)?;
        let cipher = StreamCipher::new(&data_key, prefix).map_err(crypto_io)?;
        let block = chunk + STREAM_TAG_LEN;
        let mut next = Vec::with_capacity(block);
        read_up_to(&mut inner, &mut next, block)?;
        Ok(SealedFileReader {
            inner,
            cipher,
            aad,
            block,
            next,
            plain: Vec::with_capacity(block),
            pos: 0,
            counter: 0,
            finished: false,
        })
    }

    /// Opens the next chunk into `plain`.
    fn advance(&mut self) -> io::Result<()> {
        std::mem::swap(&mut self.plain, &mut self.next);
        let last = if self.plain.len() < self.block {
            true
        } else {
            read_up_to(&mut self.inner, &mut self.next, self.block)?;
            self.next.is_empty()
        };
        if self.plain.len() < STREAM_TAG_LEN {
            return Err(corrupt("cut short"));
        }
        self.cipher
            .open_chunk(self.counter, last, &self.aad, &mut self.plain)
            .map_err(|_| corrupt(&format!("chunk {}", self.counter)))?;
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| corrupt("too many chunks"))?;
        self.pos = 0;
        self.finished = last;
        Ok(())
    }
}

impl<R: Read> Read for SealedFileReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain.len() {
            if self.finished {
                return Ok(0);
            }
            self.advance()?;
        }
        let n = (self.plain.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(key: &MasterKey, dir: &Path, id: &str, data: &[u8], chunk: usize) -> PathBuf {
        let dest = dir.join(format!("{id}.json.sealed"));
        let mut w = SealedFileWriter::with_chunk_size(key, id, &dest, chunk).unwrap();
        for part in data.chunks(7) {
            w.write_all(part).unwrap();
        }
        let info = w.finish().unwrap();
        assert_eq!(info.plain_size, data.len() as u64);
        assert_eq!(info.sha256, crate::crypto::sha256_hex(data));
        assert_eq!(info.file_size, std::fs::metadata(&dest).unwrap().len());
        dest
    }

    fn read_all(key: &MasterKey, id: &str, bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        SealedFileReader::new(key, id, bytes)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trips_at_every_chunk_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        for len in [0usize, 1, 31, 32, 33, 64, 65, 200] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let path = write(&key, dir.path(), &format!("x{len}"), &data, 32);
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(read_all(&key, &format!("x{len}"), &bytes).unwrap(), data);
        }
        // Nothing temporary is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn any_change_fails_the_read() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        let data: Vec<u8> = (0..100u8).collect();
        let bytes = std::fs::read(write(&key, dir.path(), "a", &data, 32)).unwrap();
        let header_len = bytes.len() - (3 * 48 + 4 + 16);
        // Each byte flipped, anywhere in the file.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(read_all(&key, "a", &b).is_err(), "byte {i} flipped");
        }
        // Cut at every length.
        for n in 0..bytes.len() {
            assert!(read_all(&key, "a", &bytes[..n]).is_err(), "cut at {n}");
        }
        // Two whole chunks swapped; a chunk appended.
        let c = header_len;
        let mut swapped = bytes[..c].to_vec();
        swapped.extend_from_slice(&bytes[c + 48..c + 96]);
        swapped.extend_from_slice(&bytes[c..c + 48]);
        swapped.extend_from_slice(&bytes[c + 96..]);
        assert!(read_all(&key, "a", &swapped).is_err());
        let mut longer = bytes.clone();
        longer.extend_from_slice(&bytes[c..c + 48]);
        assert!(read_all(&key, "a", &longer).is_err());
        // Another export's id, another master key.
        assert!(read_all(&key, "b", &bytes).is_err());
        assert!(read_all(&MasterKey::generate(), "a", &bytes).is_err());
        // A chunk from another file with the same id and key.
        let other = std::fs::read(write(&key, &dir.path().join("."), "a", &data, 32)).unwrap();
        let mut mixed = bytes[..c + 48].to_vec();
        mixed.extend_from_slice(&other[c + 48..]);
        assert!(read_all(&key, "a", &mixed).is_err());
        assert_eq!(read_all(&key, "a", &bytes).unwrap(), data);
    }

    #[test]
    fn an_unfinished_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        let dest = dir.path().join("z.json.sealed");
        let mut w = SealedFileWriter::create(&key, "z", &dest).unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
