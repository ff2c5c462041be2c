//! A zip archive written as a stream (no seeking back): each entry is deflated as it is
//! written, its CRC-32 and sizes follow it in a data descriptor, and the central directory
//! comes at the end. The CSV variant of an export is written this way straight into the
//! encrypting writer, one table at a time. Archives are limited to 4 GiB (no ZIP64).

use chrono::{Datelike, NaiveDateTime, Timelike};
use flate2::Compression;
use flate2::write::DeflateEncoder;
use std::io::{self, Write};

struct Entry {
    name: String,
    crc: u32,
    compressed: u32,
    size: u32,
    offset: u32,
}

struct Open {
    name: String,
    offset: u32,
    crc: crc32fast::Hasher,
    size: u64,
    encoder: DeflateEncoder<Vec<u8>>,
    compressed: u64,
}

/// Writes a zip archive to `W` entry by entry.
pub struct ZipStream<W: Write> {
    out: W,
    written: u64,
    entries: Vec<Entry>,
    open: Option<Open>,
    time: u16,
    date: u16,
}

const FLAGS: u16 = 0x0008 | 0x0800; // sizes in a data descriptor; UTF-8 names
const DEFLATE: u16 = 8;
const VERSION: u16 = 20;

fn too_large() -> io::Error {
    io::Error::other("the CSV archive would exceed 4 GiB; download the JSON format instead")
}

fn u32_of(n: u64) -> io::Result<u32> {
    u32::try_from(n).map_err(|_| too_large())
}

impl<W: Write> ZipStream<W> {
    /// A new archive whose entries carry `modified` as their time.
    pub fn new(out: W, modified: NaiveDateTime) -> Self {
        let year = u16::try_from(modified.year().clamp(1980, 2107) - 1980).unwrap_or(0);
        let date = (year << 9) | ((modified.month() as u16) << 5) | modified.day() as u16;
        let time = ((modified.hour() as u16) << 11)
            | ((modified.minute() as u16) << 5)
            | (modified.second() as u16 / 2);
        ZipStream {
            out,
            written: 0,
            entries: Vec::new(),
            open: None,
            time,
            date,
        }
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Ends the current entry (if any) and starts `name`.
    pub fn start_file(&mut self, name: &str) -> io::Result<()> {
        self.end_entry()?;
        let offset = u32_of(self.written)?;
        let name_len = u16::try_from(name.len()).map_err(|_| io::Error::other("entry name"))?;
        let mut h = Vec::with_capacity(30 + name.len());
        h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.extend_from_slice(&FLAGS.to_le_bytes());
        h.extend_from_slice(&DEFLATE.to_le_bytes());
        h.extend_from_slice(&self.time.to_le_bytes());
        h.extend_from_slice(&self.date.to_le_bytes());
        h.extend_from_slice(&[0u8; 12]); // CRC and sizes: in the data descriptor
        h.extend_from_slice(&name_len.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        self.emit(&h)?;
        self.open = Some(Open {
            name: name.to_string(),
            offset,
            crc: crc32fast::Hasher::new(),
            size: 0,
            encoder: DeflateEncoder::new(Vec::with_capacity(64 * 1024), Compression::fast()),
            compressed: 0,
        });
        Ok(())
    }

    fn end_entry(&mut self) -> io::Result<()> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let rest = open.encoder.finish()?;
        self.emit(&rest)?;
        let compressed = u32_of(open.compressed + rest.len() as u64)?;
        let size = u32_of(open.size)?;
        let crc = open.crc.finalize();
        let mut d = Vec::with_capacity(16);
        d.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
        d.extend_from_slice(&crc.to_le_bytes());
        d.extend_from_slice(&compressed.to_le_bytes());
        d.extend_from_slice(&size.to_le_bytes());
        self.emit(&d)?;
        self.entries.push(Entry {
            name: open.name,
            crc,
            compressed,
            size,
            offset: open.offset,
        });
        Ok(())
    }

    /// Ends the last entry, writes the central directory and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.end_entry()?;
        let start = u32_of(self.written)?;
        let entries = std::mem::take(&mut self.entries);
        for e in &entries {
            let mut c = Vec::with_capacity(46 + e.name.len());
            c.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            c.extend_from_slice(&VERSION.to_le_bytes()); // made by
            c.extend_from_slice(&VERSION.to_le_bytes()); // needed
            c.extend_from_slice(&FLAGS.to_le_bytes());
            c.extend_from_slice(&DEFLATE.to_le_bytes());
            c.extend_from_slice(&self.time.to_le_bytes());
            c.extend_from_slice(&self.date.to_le_bytes());
            c.extend_from_slice(&e.crc.to_le_bytes());
            c.extend_from_slice(&e.compressed.to_le_bytes());
            c.extend_from_slice(&e.size.to_le_bytes());
            c.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            c.extend_from_slice(&[0u8; 2 + 2 + 2 + 2 + 4]); // extra, comment, disk, attrs
            c.extend_from_slice(&e.offset.to_le_bytes());
            c.extend_from_slice(e.name.as_bytes());
            self.emit(&c)?;
        }
        let size = u32_of(self.written - u64::from(start))?;
        let count = u16::try_from(entries.len()).map_err(|_| io::Error::other("too many files"))?;
        let mut end = Vec::with_capacity(22);
        end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        end.extend_from_slice(&[0u8; 4]); // this disk, directory disk
        end.extend_from_slice(&count.to_le_bytes());
        end.extend_from_slice(&count.to_le_bytes());
        end.extend_from_slice(&size.to_le_bytes());
        end.extend_from_slice(&start.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        self.emit(&end)?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ZipStream<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let Some(open) = self.open.as_mut() else {
            return Err(io::Error::other("no zip entry started"));
        };
        open.crc.update(data);
        open.size += data.len() as u64;
        open.encoder.write_all(data)?;
        let produced = std::mem::take(open.encoder.get_mut());
        open.compressed += produced.len() as u64;
        self.emit(&produced)?;
        if let Some(open) = self.open.as_mut() {
            // Keep the buffer's capacity for the next write.
            let mut buf = produced;
            buf.clear();
            *open.encoder.get_mut() = buf;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_zip_crate_reads_a_streamed_archive() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 28)
            .unwrap()
            .and_hms_opt(10, 30, 0)
            .unwrap();
        let mut z = ZipStream::new(Vec::new(), at);
        z.start_file("a.csv").unwrap();
        let big: String = (0..20_000).map(|i| format!("{i},row {i}\n")).collect();
        for part in big.as_bytes().chunks(999) {
            z.write_all(part).unwrap();
        }
        z.start_file("empty.txt").unwrap();
        z.start_file("b/ü.txt").unwrap();
        z.write_all(b"hello").unwrap();
        let bytes = z.finish().unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len(), 3);
        let mut read = |name: &str| {
            let mut f = archive.by_name(name).unwrap();
            let mut s = String::new();
            f.read_to_string(&mut s).unwrap();
            (
                s,
                f.last_modified()
                    .map(|d| (d.year(), d.month(), d.day(), d.hour(), d.minute())),
            )
        };
        let (a, when) = read("a.csv");
        assert_eq!(a, big);
        assert_eq!(when, Some((2026, 11, 28, 10, 30)));
        assert_eq!(read("empty.txt").0, "");
        assert_eq!(read("b/ü.txt").0, "hello");
    }
}
