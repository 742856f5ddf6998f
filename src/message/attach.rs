//! Attachments that stay in their files: a composed message whose attachment is large is
//! not held in memory. mail-builder still writes the whole MIME structure (headers,
//! boundaries, each part's Content-Type, Content-Disposition and
//! Content-Transfer-Encoding: base64); the part of a large attachment gets a unique
//! placeholder as its (raw) body, and the placeholder is then cut out of mail-builder's
//! output. What is left is a list of [`Segment`]s: the builder's bytes, and between them
//! each file, read and base64-encoded (the base64 crate) while the message is sent.
//!
//! The encoding is the one mail-builder writes for a binary part: lines of 76 characters
//! (57 input bytes), each ended by CRLF, the last one too (RFC 2045 §6.8). So the message
//! is byte for byte what the in-memory path produces for the same boundaries; the tests
//! compare the two.
//!
//! The segments can be read any number of times ([`Streamed::reader`]): to sign the
//! message (DKIM hashes the body as it streams by), to spool it, and to offer it to a
//! second server. Each read checks that the file is the one composed (same size,
//! modification time and, on Unix, inode): a file that changed fails the read, so a
//! message never goes out with a body that disagrees with its declared size or signature.
//!
//! Must not: write MIME (mail-builder does) or base64 by hand (the base64 crate does).

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine;

/// An attachment larger than this stays in its file (below it, mail-builder encodes it in
/// memory as before, choosing 7bit or quoted-printable for text where that is shorter).
pub const STREAM_FROM: u64 = 1 << 20;

/// Input bytes per base64 line: 76 output characters (RFC 2045 §6.8).
const LINE_IN: usize = 57;
/// Input bytes read from the file at a time: whole lines, about 64 KiB.
const READ_IN: usize = LINE_IN * 1150;

/// What identifies the file composed into the message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

impl Stamp {
    fn of(meta: &Metadata) -> Stamp {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            inode: (meta.dev(), meta.ino()),
        }
    }
}

/// One attachment file, as it was when the message was composed.
#[derive(Debug, Clone)]
pub struct Attached {
    path: PathBuf,
    stamp: Stamp,
}

impl Attached {
    /// The regular file at `path`, as `meta` (of the file opened there) describes it.
    pub fn new(path: &Path, meta: &Metadata) -> Attached {
        Attached {
            path: path.to_path_buf(),
            stamp: Stamp::of(meta),
        }
    }

    /// How many bytes its base64 encoding takes, line ends included.
    fn encoded_len(&self) -> u64 {
        encoded_len(self.stamp.len)
    }

    fn changed(&self) -> io::Error {
        io::Error::other(format!(
            "the attachment {} changed after the message was composed (it was {} bytes): \
             not sending a message whose attachment is not the one composed; send it again",
            self.path.display(),
            self.stamp.len
        ))
    }

    /// Open the file again, refusing it when it is no longer the one composed.
    fn reopen(&self) -> io::Result<File> {
        let file = File::open(&self.path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))?;
        self.check(&file)?;
        Ok(file)
    }

    fn check(&self, file: &File) -> io::Result<()> {
        if Stamp::of(&file.metadata()?) != self.stamp {
            return Err(self.changed());
        }
        Ok(())
    }
}

/// The length of the MIME base64 encoding of `n` bytes: 78 bytes per full 57-byte line,
/// and a last partial line of its padded encoding and CRLF.
pub fn encoded_len(n: u64) -> u64 {
    let lines = n / LINE_IN as u64;
    let rest = n % LINE_IN as u64;
    let last = if rest == 0 {
        0
    } else {
        rest.div_ceil(3) * 4 + 2
    };
    lines * (76 + 2) + last
}

/// A piece of the message after its first bytes.
#[derive(Debug)]
pub enum Segment {
    /// Bytes mail-builder wrote.
    Bytes(Vec<u8>),
    /// An attachment's file, base64-encoded as it is read.
    File(Attached),
}

/// The rest of a composed message whose attachments stay in their files.
#[derive(Debug)]
pub struct Streamed {
    segments: Vec<Segment>,
}

impl Streamed {
    pub fn new(segments: Vec<Segment>) -> Streamed {
        Streamed { segments }
    }

    /// The exact number of bytes a reader gives.
    pub fn size(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Bytes(b) => b.len() as u64,
                Segment::File(a) => a.encoded_len(),
            })
            .sum()
    }

    /// A new reader of all the segments, from the start.
    pub fn reader(self: &Arc<Self>) -> Reader {
        Reader {
            parts: Arc::clone(self),
            index: 0,
            at: 0,
            file: None,
            out: String::new(),
            out_at: 0,
            raw: Vec::new(),
        }
    }
}

/// Reads [`Streamed`] segments in order, encoding each file as it goes.
pub struct Reader {
    parts: Arc<Streamed>,
    /// The segment being read.
    index: usize,
    /// Bytes of it already given out (for a file: input bytes read from it).
    at: u64,
    /// The open file of the current file segment.
    file: Option<File>,
    /// Encoded bytes not given out yet, from `out_at` on.
    out: String,
    out_at: usize,
    /// The input block being encoded.
    raw: Vec<u8>,
}

impl Reader {
    /// Encode the next block of the file segment `a` into `out`; false at its end.
    fn fill(&mut self, a: &Attached) -> io::Result<bool> {
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(a.reopen()?),
        };
        let left = a.stamp.len - self.at;
        if left == 0 {
            // The whole file has been read: it must end here and still be the same file.
            let mut probe = [0u8; 1];
            if read_full(file, &mut probe)? != 0 {
                return Err(a.changed());
            }
            a.check(file)?;
            self.file = None;
            return Ok(false);
        }
        let want = usize::try_from(left).map_or(READ_IN, |l| l.min(READ_IN));
        self.raw.resize(want, 0);
        let n = read_full(file, &mut self.raw)?;
        if n < want {
            // Shorter than when it was composed.
            return Err(a.changed());
        }
        self.at += n as u64;
        self.out.clear();
        self.out_at = 0;
        for line in self.raw.chunks(LINE_IN) {
            base64::engine::general_purpose::STANDARD.encode_string(line, &mut self.out);
            self.out.push_str("\r\n");
        }
        Ok(true)
    }
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.out_at < self.out.len() {
                let pending = &self.out.as_bytes()[self.out_at..];
                let n = pending.len().min(buf.len());
                buf[..n].copy_from_slice(&pending[..n]);
                self.out_at += n;
                return Ok(n);
            }
            let parts = Arc::clone(&self.parts);
            let Some(segment) = parts.segments.get(self.index) else {
                return Ok(0);
            };
            match segment {
                Segment::Bytes(bytes) => {
                    let start = usize::try_from(self.at).unwrap_or(bytes.len());
                    let rest = bytes.get(start..).unwrap_or_default();
                    if rest.is_empty() {
                        self.index += 1;
                        self.at = 0;
                        continue;
                    }
                    let n = rest.len().min(buf.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    self.at += n as u64;
                    return Ok(n);
                }
                Segment::File(a) => {
                    if !self.fill(a)? {
                        self.index += 1;
                        self.at = 0;
                    }
                }
            }
        }
    }
}

/// Read until `buf` is full or the file ends; the count read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_builder::mime::MimePart;
    use std::io::Write;

    /// What mail-builder writes for a binary part's body.
    fn builder_base64(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        MimePart::new("application/octet-stream", data.to_vec()).write_part(&mut out);
        let start = memchr::memmem::find(&out, b"\r\n\r\n").unwrap() + 4;
        out.split_off(start)
    }

    fn file_with(data: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(data).unwrap();
        f.flush().unwrap();
        f
    }

    fn streamed(path: &Path) -> Arc<Streamed> {
        let a = Attached::new(path, &std::fs::metadata(path).unwrap());
        Arc::new(Streamed::new(vec![
            Segment::Bytes(b"<".to_vec()),
            Segment::File(a),
            Segment::Bytes(b">".to_vec()),
        ]))
    }

    #[test]
    fn the_encoding_is_mail_builders_for_every_length() {
        let sizes = [
            0,
            1,
            2,
            3,
            56,
            57,
            58,
            114,
            READ_IN - 1,
            READ_IN,
            READ_IN + 1,
            3 * READ_IN + 57 * 3 + 5,
        ];
        for size in sizes {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 + i / 251) as u8).collect();
            let f = file_with(&data);
            let s = streamed(f.path());
            let mut want = b"<".to_vec();
            want.extend(builder_base64(&data));
            want.push(b'>');
            assert_eq!(s.size(), want.len() as u64, "size {size}");
            assert_eq!(encoded_len(size as u64) + 2, want.len() as u64);
            // Read in awkward pieces, twice: the segments can be read again.
            for piece in [7, 64 * 1024] {
                let mut r = s.reader();
                let mut got = Vec::new();
                let mut buf = vec![0u8; piece];
                loop {
                    let n = r.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                assert!(got == want, "size {size}, pieces of {piece}");
            }
        }
    }

    #[test]
    fn a_file_that_changed_fails_the_read_naming_it() {
        let data = vec![b'a'; 3 * READ_IN];
        let f = file_with(&data);
        let s = streamed(f.path());
        // Shorter, longer, same length but a new file in its place.
        let shorter = &data[..READ_IN];
        let mut longer = data.clone();
        longer.push(b'b');
        for change in [shorter, &longer[..]] {
            std::fs::write(f.path(), change).unwrap();
            let err = io::copy(&mut s.reader(), &mut io::sink()).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("changed after the message was composed"),
                "{text}"
            );
            assert!(text.contains(&f.path().display().to_string()), "{text}");
        }
    }

    #[test]
    fn a_file_that_grows_while_it_is_read_fails_at_its_end() {
        let data = vec![b'a'; 2 * READ_IN];
        let f = file_with(&data);
        let s = streamed(f.path());
        let mut r = s.reader();
        let mut buf = vec![0u8; 1024];
        r.read_exact(&mut buf).unwrap();
        r.read_exact(&mut buf).unwrap();
        let mut more = std::fs::OpenOptions::new()
            .append(true)
            .open(f.path())
            .unwrap();
        more.write_all(b"more").unwrap();
        let err = io::copy(&mut r, &mut io::sink()).unwrap_err();
        assert!(err.to_string().contains("changed"), "{err}");
    }
}
