//! Streaming records out of one capture file.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use super::error::{CaptureError, Damage, DamageKind};
use super::format::{
    self, Counters, End, FORMAT_MAJOR, FRAME_HEADER_LEN, MAGIC, MAX_HEADER_LEN, MAX_RECORD_LEN,
    PREAMBLE_LEN, kind,
};
use super::header::Header;
use crate::event::Event;

/// How to read.
#[derive(Clone, Copy, Debug)]
pub struct ReadOptions {
    /// Damage (a cut-off tail, a bad checksum, a bad length) is an error
    /// rather than the end of the stream plus a [`Damage`] report.
    pub strict: bool,
    /// BufReader capacity. Large buffers make reading a warm file a matter
    /// of memcpy and checksum; 1 MiB is where gains flatten out.
    pub buffer_size: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            strict: false,
            buffer_size: 1 << 20,
        }
    }
}

impl ReadOptions {
    pub fn strict() -> Self {
        ReadOptions {
            strict: true,
            ..Default::default()
        }
    }
}

/// One record of a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    Event(Event),
    Counters(Counters),
    /// The end marker: the file was closed on purpose.
    End(End),
}

impl Record {
    /// `CLOCK_BOOTTIME` of the record, in nanoseconds.
    pub fn ts_boot_ns(&self) -> u64 {
        match self {
            Record::Event(e) => e.ts_boot_ns,
            Record::Counters(c) => c.ts_boot_ns,
            Record::End(e) => e.ts_boot_ns,
        }
    }
}

/// What a reader went through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub events: u64,
    pub counters: u64,
    pub ends: u64,
    /// Intact records this build does not know (a newer minor version's),
    /// skipped as the format allows.
    pub skipped: u64,
    /// Bytes of intact records and headers consumed.
    pub bytes: u64,
}

impl ReadStats {
    pub(crate) fn add(&mut self, o: &ReadStats) {
        self.events += o.events;
        self.counters += o.counters;
        self.ends += o.ends;
        self.skipped += o.skipped;
        self.bytes += o.bytes;
    }
}

/// Streams the records of one capture file.
///
/// Memory stays bounded whatever the input: a length above
/// [`MAX_RECORD_LEN`] is damage, found before anything is allocated for it,
/// and one payload buffer is reused for every record.
pub struct CaptureReader<R> {
    inner: BufReader<R>,
    file: PathBuf,
    /// Byte offset of the next frame.
    offset: u64,
    header: Header,
    strict: bool,
    payload: Vec<u8>,
    damage: Option<Damage>,
    done: bool,
    end: Option<End>,
    stats: ReadStats,
}

impl CaptureReader<File> {
    /// Opens a capture file and reads its header.
    pub fn open(path: &Path, opts: ReadOptions) -> Result<Self, CaptureError> {
        let f = File::open(path).map_err(|e| CaptureError::io(path, 0, e))?;
        CaptureReader::new(f, path, opts)
    }
}

impl<R: Read> CaptureReader<R> {
    /// Reads the header from `inner`; `file` names the source in errors.
    /// Header problems are errors in every mode: without an intact header
    /// nothing after it can be trusted or placed in time.
    pub fn new(
        inner: R,
        file: impl Into<PathBuf>,
        opts: ReadOptions,
    ) -> Result<Self, CaptureError> {
        let mut r = CaptureReader {
            inner: BufReader::with_capacity(opts.buffer_size.max(4096), inner),
            file: file.into(),
            offset: 0,
            header: Header::default(),
            strict: opts.strict,
            payload: Vec::new(),
            damage: None,
            done: false,
            end: None,
            stats: ReadStats::default(),
        };
        r.read_header()?;
        Ok(r)
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Where reading stopped early, in non-strict mode.
    pub fn damage(&self) -> Option<&Damage> {
        self.damage.as_ref()
    }

    pub fn take_damage(&mut self) -> Option<Damage> {
        self.damage.take()
    }

    /// The end marker, once read: the file was closed on purpose.
    pub fn end(&self) -> Option<End> {
        self.end
    }

    pub fn stats(&self) -> ReadStats {
        self.stats
    }

    /// Byte offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record; `Ok(None)` at the end of the file or, in non-strict
    /// mode, at damage (see [`damage`](Self::damage)).
    pub fn next_record(&mut self) -> Result<Option<Record>, CaptureError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let at = self.offset;
            let mut hb = [0u8; FRAME_HEADER_LEN];
            let n = self.read_full_at(&mut hb, at)?;
            if n == 0 {
                self.done = true;
                return Ok(None);
            }
            if n < FRAME_HEADER_LEN {
                return self.damaged(
                    at,
                    DamageKind::Truncated,
                    format!(
                        "a {FRAME_HEADER_LEN}-byte record frame header; the file ends {n} \
                         bytes into it"
                    ),
                );
            }
            let fh = format::parse_frame_header(&hb);
            if fh.len > MAX_RECORD_LEN {
                return self.damaged(
                    at,
                    DamageKind::BadLength {
                        length: fh.len.into(),
                    },
                    format!("a record length of at most {MAX_RECORD_LEN} bytes"),
                );
            }
            let len = fh.len as usize;
            // Reused buffer: no allocation once it has grown to the largest
            // record seen, which for a thptrace file is the event size.
            self.payload.resize(len, 0);
            let got = {
                let mut payload = std::mem::take(&mut self.payload);
                let got = self.read_full_at(&mut payload, at);
                self.payload = payload;
                got?
            };
            if got < len {
                return self.damaged(
                    at,
                    DamageKind::Truncated,
                    format!("a {len}-byte record payload; the file ends {got} bytes into it"),
                );
            }
            let computed = format::frame_crc(&hb[..8], &self.payload);
            if computed != fh.crc {
                return self.damaged(
                    at,
                    DamageKind::BadChecksum {
                        stored: fh.crc,
                        computed,
                    },
                    format!("checksum {:#010x} over the record's bytes", fh.crc),
                );
            }
            if let Some(min) = format::min_len(fh.kind)
                && len < min
            {
                return self.damaged(
                    at,
                    DamageKind::BadLength { length: len as u64 },
                    format!(
                        "at least {min} bytes for a record of type {} ({})",
                        fh.kind,
                        kind_name(fh.kind)
                    ),
                );
            }
            self.offset += (FRAME_HEADER_LEN + len) as u64;
            self.stats.bytes += (FRAME_HEADER_LEN + len) as u64;
            match fh.kind {
                kind::EVENT => match format::decode_event(&self.payload) {
                    Some(mut e) => {
                        self.stats.events += 1;
                        if self.header.untimed && e.duration().is_none() {
                            e.duration_ns = thptrace_common::NOT_TIMED;
                        }
                        return Ok(Some(Record::Event(e)));
                    }
                    // A system call a newer thptrace traces: intact, but
                    // not representable here; skipped like unknown types.
                    None => self.stats.skipped += 1,
                },
                kind::COUNTERS => {
                    if let Some(c) = format::decode_counters(&self.payload) {
                        self.stats.counters += 1;
                        return Ok(Some(Record::Counters(c)));
                    }
                }
                kind::END => {
                    if let Some(e) = format::decode_end(&self.payload, fh.flags) {
                        self.stats.ends += 1;
                        self.end = Some(e);
                        return Ok(Some(Record::End(e)));
                    }
                }
                _ => self.stats.skipped += 1,
            }
        }
    }

    fn damaged(
        &mut self,
        offset: u64,
        kind: DamageKind,
        what_was_expected: String,
    ) -> Result<Option<Record>, CaptureError> {
        self.done = true;
        let d = Damage {
            file: self.file.clone(),
            offset,
            kind,
            what_was_expected,
        };
        if self.strict {
            Err(d.into())
        } else {
            self.damage = Some(d);
            Ok(None)
        }
    }

    /// Fills `buf` as far as the input goes; returns how much it got, so
    /// a short read at the end of the file is reported with its size.
    fn read_full_at(&mut self, buf: &mut [u8], at: u64) -> Result<usize, CaptureError> {
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.done = true;
                    return Err(CaptureError::io(&self.file, at + n as u64, e));
                }
            }
        }
        Ok(n)
    }

    fn read_header(&mut self) -> Result<(), CaptureError> {
        let mut p = [0u8; PREAMBLE_LEN];
        let n = self.read_full_at(&mut p, 0)?;
        let magic_part = n.min(MAGIC.len());
        if p[..magic_part] != MAGIC[..magic_part] || n == 0 {
            if n == 0 {
                return Err(CaptureError::TruncatedHeader {
                    file: self.file.clone(),
                    offset: 0,
                    expected: format!(
                        "the {PREAMBLE_LEN}-byte preamble starting with the magic number; the \
                         file is empty"
                    ),
                });
            }
            return Err(CaptureError::NotCapture {
                file: self.file.clone(),
                found: p[..magic_part].to_vec(),
            });
        }
        if n < PREAMBLE_LEN {
            return Err(CaptureError::TruncatedHeader {
                file: self.file.clone(),
                offset: n as u64,
                expected: format!(
                    "the {PREAMBLE_LEN}-byte preamble; the file ends after {n} bytes"
                ),
            });
        }
        let stored = u32::from_le_bytes([p[12], p[13], p[14], p[15]]);
        let computed = crc32fast::hash(&p[..12]);
        if stored != computed {
            return Err(CaptureError::BadChecksum {
                file: self.file.clone(),
                offset: 0,
                stored,
                computed,
            });
        }
        let major = u16::from_le_bytes([p[8], p[9]]);
        let minor = u16::from_le_bytes([p[10], p[11]]);
        if major > FORMAT_MAJOR {
            return Err(CaptureError::NewerVersion {
                file: self.file.clone(),
                major,
                minor,
                supported: FORMAT_MAJOR,
            });
        }
        if major == 0 {
            return Err(CaptureError::BadHeader {
                file: self.file.clone(),
                offset: 8,
                expected: format!("format major version 1 to {FORMAT_MAJOR}, found 0"),
            });
        }
        self.offset = PREAMBLE_LEN as u64;

        let at = self.offset;
        let mut hb = [0u8; FRAME_HEADER_LEN];
        let n = self.read_full_at(&mut hb, at)?;
        if n < FRAME_HEADER_LEN {
            return Err(CaptureError::TruncatedHeader {
                file: self.file.clone(),
                offset: at,
                expected: format!(
                    "the {FRAME_HEADER_LEN}-byte frame of the header record; the file ends {n} \
                     bytes into it"
                ),
            });
        }
        let fh = format::parse_frame_header(&hb);
        if fh.kind != kind::HEADER {
            return Err(CaptureError::BadHeader {
                file: self.file.clone(),
                offset: at,
                expected: format!(
                    "the header record (type {}) first, found type {}",
                    kind::HEADER,
                    fh.kind
                ),
            });
        }
        if fh.len > MAX_HEADER_LEN {
            return Err(CaptureError::BadLength {
                file: self.file.clone(),
                offset: at,
                length: fh.len.into(),
                expected: format!("a header of at most {MAX_HEADER_LEN} bytes"),
            });
        }
        let mut json = vec![0u8; fh.len as usize];
        let got = self.read_full_at(&mut json, at)?;
        if got < json.len() {
            return Err(CaptureError::TruncatedHeader {
                file: self.file.clone(),
                offset: at,
                expected: format!(
                    "a {}-byte header record; the file ends {got} bytes into it",
                    fh.len
                ),
            });
        }
        let computed = format::frame_crc(&hb[..8], &json);
        if computed != fh.crc {
            return Err(CaptureError::BadChecksum {
                file: self.file.clone(),
                offset: at,
                stored: fh.crc,
                computed,
            });
        }
        let mut header: Header =
            serde_json::from_slice(&json).map_err(|e| CaptureError::BadHeader {
                file: self.file.clone(),
                offset: at + FRAME_HEADER_LEN as u64,
                expected: format!("a JSON header object ({e})"),
            })?;
        header.format_major = major;
        header.format_minor = minor;
        self.header = header;
        self.offset = at + (FRAME_HEADER_LEN + json.len()) as u64;
        self.stats.bytes = self.offset;
        Ok(())
    }
}

impl<R: Read> Iterator for CaptureReader<R> {
    type Item = Result<Record, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

fn kind_name(k: u16) -> &'static str {
    match k {
        kind::HEADER => "header",
        kind::EVENT => "event",
        kind::COUNTERS => "counters",
        kind::END => "end",
        kind::AREA => "area",
        _ => "unknown",
    }
}

/// Reads a capture (one file or a rotated set, see [`super::CaptureSet`])
/// to the end and counts what is in it: the work of a summary without the
/// grouping, and what the capture-read benchmark times.
pub fn scan(path: &Path, opts: ReadOptions) -> Result<(ReadStats, Vec<Damage>), CaptureError> {
    let mut set = super::CaptureSet::open(path, opts)?;
    while set.next_record()?.is_some() {}
    Ok((set.stats(), set.damages().to_vec()))
}
