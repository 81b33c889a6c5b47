//! Saving an index to one file and loading it back.
//!
//! Layout (little-endian), version [`FORMAT_VERSION`]:
//!
//! ```text
//! header   magic (8 bytes, PNG-style: catches text-mode and 7-bit damage)
//!          format version u32, dim u32, entries u64, file length u64,
//!          mode u8, flags u8 (bit 0: has lists), 0u16, nprobe u32 (0: default)
//! payload  namespaces: count u32, then per name: length u32, UTF-8 bytes
//!          entries: per entry: id length u32, UTF-8 id, namespace u32, list u32
//!          vectors: entries × dim f32 (unit length)
//!          lists (if flagged): nlist u32, trained-on count u64, nlist × dim f32
//! trailer  CRC-32 of every byte before it, u32
//! ```
//!
//! Only the unit vectors are stored: the quantised codes are recomputed on
//! load, so a file can never hold codes whose error bounds are wrong.
//!
//! Saving writes a temporary file in the same directory, syncs it, renames
//! it over the path and syncs the directory: the path holds either the old
//! file or the new one, never a partial one. Loading checks the magic, the
//! version, the length and the checksum before reading anything else, and
//! bounds-checks every length against the bytes actually there, so a
//! damaged or foreign file gives an [`IndexError::File`], never a panic or a
//! huge allocation.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{FileProblem, IndexError};
use super::ivf::Coarse;
use super::partition::Partition;
use super::quantize::{Batch, Dims};
use super::{Mode, VectorIndex};

const MAGIC: [u8; 8] = *b"\x89FVX\r\n\x1a\n";

/// The format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const HEADER_LEN: usize = 40;
const CRC_LEN: usize = 4;
const FLAG_LISTS: u8 = 1;

/// How far a stored vector's squared norm may be from 1 (they are written
/// normalised; anything further is damage).
const UNIT_TOLERANCE: f64 = 1e-3;

/// Floats converted per write: big writes, small buffer.
const FLOATS_PER_WRITE: usize = 16 * 1024;

/// A writer that counts and checksums what goes through.
struct CrcWriter<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
    written: u64,
}

impl<W: Write> CrcWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.written += bytes.len() as u64;
        self.inner.write_all(bytes)
    }

    fn u32(&mut self, v: u32) -> io::Result<()> {
        self.put(&v.to_le_bytes())
    }

    fn u64(&mut self, v: u64) -> io::Result<()> {
        self.put(&v.to_le_bytes())
    }

    fn len_prefixed(&mut self, s: &str) -> io::Result<()> {
        self.u32(s.len() as u32)?;
        self.put(s.as_bytes())
    }

    fn floats(&mut self, values: &[f32]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(FLOATS_PER_WRITE.min(values.len()) * 4);
        for chunk in values.chunks(FLOATS_PER_WRITE) {
            buf.clear();
            buf.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            self.put(&buf)?;
        }
        Ok(())
    }
}

impl VectorIndex {
    fn file_len(&self) -> u64 {
        let names: usize = self.namespaces.names.iter().map(|n| 4 + n.len()).sum();
        let ids: usize = self.ids.iter().map(|id| 12 + id.len()).sum();
        let vectors = self.len() * self.dims.dim * 4;
        let lists = self
            .coarse
            .as_ref()
            .map_or(0, |c| 12 + c.centroids().len() * 4);
        (HEADER_LEN + 4 + names + ids + vectors + lists + CRC_LEN) as u64
    }

    fn write_to<W: Write>(&self, out: W) -> io::Result<W> {
        let mut w = CrcWriter {
            inner: out,
            crc: crc32fast::Hasher::new(),
            written: 0,
        };
        let flags = if self.coarse.is_some() { FLAG_LISTS } else { 0 };
        let nprobe = self.nprobe.map_or(0, |n| n.min(u32::MAX as usize) as u32);
        w.put(&MAGIC)?;
        w.u32(FORMAT_VERSION)?;
        w.u32(self.dims.dim as u32)?;
        w.u64(self.len() as u64)?;
        w.u64(self.file_len())?;
        w.put(&[self.mode.code(), flags, 0, 0])?;
        w.u32(nprobe)?;

        w.u32(self.namespaces.names.len() as u32)?;
        for name in &self.namespaces.names {
            w.len_prefixed(name)?;
        }
        for (id, loc) in self.ids.iter().zip(&self.locations) {
            let member = self.parts[loc.part as usize].member(loc.pos as usize);
            w.len_prefixed(id)?;
            w.u32(member.namespace)?;
            w.u32(loc.part)?;
        }
        w.floats(self.vectors.all_unit())?;
        if let Some(coarse) = &self.coarse {
            w.u32(coarse.len() as u32)?;
            w.u64(self.trained_on as u64)?;
            w.floats(coarse.centroids())?;
        }
        let crc = w.crc.clone().finalize();
        w.put(&crc.to_le_bytes())?;
        debug_assert_eq!(w.written, self.file_len());
        Ok(w.inner)
    }

    /// Writes the index to `path` atomically (see the module docs).
    pub fn save(&self, path: &Path) -> Result<(), IndexError> {
        write_atomically(path, |file| {
            let out = self.write_to(BufWriter::with_capacity(1 << 20, file))?;
            out.into_inner().map_err(io::IntoInnerError::into_error)
        })
    }

    /// Reads an index written by [`Self::save`].
    pub fn load(path: &Path) -> Result<VectorIndex, IndexError> {
        let fail = |problem| IndexError::File {
            path: path.to_owned(),
            problem,
        };
        let io = |e| IndexError::io(path, e);
        // The header first: a foreign or other-version file is reported
        // without reading (or allocating) the rest of it.
        let mut file = File::open(path).map_err(io)?;
        let actual = file.metadata().map_err(io)?.len();
        let mut bytes = Vec::with_capacity(HEADER_LEN);
        (&mut file)
            .take(HEADER_LEN as u64)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        check_header(&bytes, actual).map_err(fail)?;
        bytes.reserve_exact(
            usize::try_from(actual)
                .unwrap_or(0)
                .saturating_sub(HEADER_LEN),
        );
        file.read_to_end(&mut bytes).map_err(io)?;
        parse(&bytes).map_err(fail)
    }
}

/// A process-wide counter that keeps temporary names unique between
/// threads saving to the same directory.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Creates `path` from what `write` writes to a fresh file (which it must
/// return, flushed), replacing any old file only once the new one is
/// complete and synced.
pub(super) fn write_atomically(
    path: &Path,
    write: impl FnOnce(File) -> io::Result<File>,
) -> Result<(), IndexError> {
    let fail = |e: io::Error| IndexError::io(path, e);
    let name = path.file_name().ok_or_else(|| {
        fail(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path names no file",
        ))
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = dir.join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(fail)?;
    let done = write(file)
        .and_then(|file| file.sync_all())
        .and_then(|()| fs::rename(&temp, path));
    if let Err(e) = done {
        // Best effort: the error that matters is the one reported.
        let _ = fs::remove_file(&temp);
        return Err(fail(e));
    }
    sync_dir(&dir).map_err(fail)
}

/// Makes the rename durable: the directory entry lives in the directory.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

fn corrupt(why: impl Into<String>) -> FileProblem {
    FileProblem::Corrupt(why.into())
}

/// Reads values off a byte slice, never past its end.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], FileProblem> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| corrupt(format!("{what} runs past the end of the data")))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, FileProblem> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, FileProblem> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64, FileProblem> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn string(&mut self, what: &str) -> Result<&'a str, FileProblem> {
        let len = self.u32(what)? as usize;
        std::str::from_utf8(self.take(len, what)?)
            .map_err(|_| corrupt(format!("{what} is not UTF-8")))
    }

    /// `rows × dim` floats, each row finite and of unit length.
    fn unit_rows(&mut self, rows: usize, dim: usize, what: &str) -> Result<Vec<f32>, FileProblem> {
        let n = rows
            .checked_mul(dim)
            .and_then(|n| n.checked_mul(4))
            .ok_or_else(|| corrupt(format!("{what}: impossible size")))?;
        let floats: Vec<f32> = self
            .take(n, what)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        for (i, row) in floats.chunks_exact(dim).enumerate() {
            let norm_sq: f64 = row.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
            if !((1.0 - UNIT_TOLERANCE)..=(1.0 + UNIT_TOLERANCE)).contains(&norm_sq) {
                return Err(corrupt(format!("{what}: row {i} is not a unit vector")));
            }
        }
        Ok(floats)
    }
}

/// Checks magic, version, length and checksum; returns the header fields
/// past the magic and version.
/// Checks magic, version and declared length against the file's actual
/// length, from its first bytes (at least the header, unless the file is
/// shorter).
fn check_header(head: &[u8], actual: u64) -> Result<(), FileProblem> {
    let magic = &head[..head.len().min(MAGIC.len())];
    if magic != &MAGIC[..magic.len()] {
        return Err(FileProblem::Foreign);
    }
    let minimum = (HEADER_LEN + CRC_LEN) as u64;
    let truncated = |expected| FileProblem::Truncated { expected, actual };
    let mut r = Reader {
        bytes: head,
        pos: MAGIC.len(),
    };
    let version = r.u32("version").map_err(|_| truncated(minimum))?;
    if version != FORMAT_VERSION {
        return Err(FileProblem::OtherVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if actual < minimum || head.len() < HEADER_LEN {
        return Err(truncated(minimum));
    }
    let declared = u64::from_le_bytes(head[24..32].try_into().unwrap_or_default());
    if actual < declared {
        return Err(truncated(declared));
    }
    if actual > declared {
        return Err(corrupt(format!(
            "{} bytes more than the header says",
            actual - declared
        )));
    }
    Ok(())
}

/// Checks the header and the checksum; returns a reader of the data past
/// the magic and version.
fn check_envelope(bytes: &[u8]) -> Result<Reader<'_>, FileProblem> {
    check_header(bytes, bytes.len() as u64)?;
    let (data, trailer) = bytes.split_at(bytes.len() - CRC_LEN);
    let stored = u32::from_le_bytes(trailer.try_into().unwrap_or_default());
    if crc32fast::hash(data) != stored {
        return Err(corrupt("checksum mismatch (the file was damaged)"));
    }
    Ok(Reader {
        bytes: data,
        pos: 12,
    })
}

fn parse(bytes: &[u8]) -> Result<VectorIndex, FileProblem> {
    let mut r = check_envelope(bytes)?;
    let dim = r.u32("dim")?;
    let dims = Dims::new(i64::from(dim)).map_err(|_| corrupt(format!("dimension {dim}")))?;
    let count = r.u64("entry count")?;
    r.u64("file length")?;
    let mode = r.u8("mode")?;
    let mode = Mode::from_code(mode).ok_or_else(|| corrupt(format!("unknown mode {mode}")))?;
    let flags = r.u8("flags")?;
    r.take(2, "header")?;
    let nprobe = r.u32("nprobe")?;

    let mut index = VectorIndex::new(dim.into(), mode).map_err(|e| corrupt(e.to_string()))?;
    index.nprobe = (nprobe > 0).then_some(nprobe as usize);

    let names = r.u32("namespace count")?;
    for _ in 0..names {
        let name = r.string("namespace name")?;
        index.namespaces.intern(name);
    }
    if index.namespaces.names.len() != names as usize {
        return Err(corrupt("a namespace name appears twice"));
    }

    // Each entry takes at least 12 bytes: a count the data cannot hold is
    // rejected before anything is allocated for it.
    let count = usize::try_from(count)
        .ok()
        .filter(|&c| c <= (r.bytes.len() - r.pos) / 12)
        .ok_or_else(|| corrupt(format!("{count} entries cannot fit in the file")))?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let id = r.string("entry id")?;
        let namespace = r.u32("entry namespace")?;
        let list = r.u32("entry list")?;
        if namespace > names {
            return Err(corrupt(format!("entry {id:?} has an unknown namespace")));
        }
        entries.push((id, namespace, list));
    }
    let unit = r.unit_rows(count, dims.dim, "vectors")?;

    let lists = if flags & FLAG_LISTS != 0 {
        let nlist = r.u32("list count")? as usize;
        let trained_on = r.u64("trained-on count")?;
        if nlist == 0 {
            return Err(corrupt("zero lists"));
        }
        let centroids = r.unit_rows(nlist, dims.dim, "centroids")?;
        index.trained_on = usize::try_from(trained_on).unwrap_or(usize::MAX);
        Some(Coarse::from_centroids(dims, centroids))
    } else {
        None
    };
    if flags & !FLAG_LISTS != 0 {
        return Err(corrupt(format!("unknown flags {flags:#x}")));
    }
    if r.pos != r.bytes.len() {
        return Err(corrupt("unexpected data after the last section"));
    }

    let nparts = lists.as_ref().map_or(1, Coarse::len);
    index.parts = vec![Partition::new(&dims); nparts];
    index.coarse = lists;
    let batch = Batch::encode(&dims, unit);
    index.vectors.reserve(count);
    index.ids.reserve(count);
    index.slots.reserve(count);
    index.locations.reserve(count);
    for (i, (id, namespace, list)) in entries.into_iter().enumerate() {
        let part = if nparts == 1 { 0 } else { list };
        if part as usize >= nparts {
            return Err(corrupt(format!(
                "entry {id:?} is in list {list} of {nparts}"
            )));
        }
        if index.slots.contains_key(id) {
            return Err(corrupt(format!("id {id:?} appears twice")));
        }
        index.push_entry(id.into(), &batch, i, namespace, part);
    }
    index.parts.iter_mut().for_each(Partition::shrink_to_fit);
    Ok(index)
}

#[cfg(test)]
pub(super) fn to_bytes(index: &VectorIndex) -> Vec<u8> {
    index.write_to(Vec::new()).unwrap_or_default()
}

#[cfg(test)]
pub(super) fn from_bytes(bytes: &[u8]) -> Result<VectorIndex, FileProblem> {
    parse(bytes)
}

#[cfg(test)]
pub(super) const TEST_HEADER_LEN: usize = HEADER_LEN;
