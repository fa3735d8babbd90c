//! Rotated sets read as one stream, and several captures merged in time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{CaptureError, Damage, DamageKind};
use super::format::End;
use super::header::{Header, wall_clock_ns};
use super::reader::{CaptureReader, ReadOptions, ReadStats, Record};

/// The file holding sequence `seq` of the set whose first file is `base`:
/// `base` itself for 0, `base.000001` and so on after. Six digits keep
/// `ls` in order for any sane set; more digits are used past 999,999.
pub fn rotated_path(base: &Path, seq: u64) -> PathBuf {
    if seq == 0 {
        return base.to_path_buf();
    }
    let mut name = base.as_os_str().to_owned();
    name.push(format!(".{seq:06}"));
    PathBuf::from(name)
}

/// The files of the set at `base` that exist, in sequence order: `base`
/// and every `base.NNNNNN` next to it (a suffix of digits, sequence >= 1).
pub fn set_files(base: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let dir = match base.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(name) = base.file_name() else {
        return Ok(Vec::new());
    };
    let name = name.as_encoded_bytes();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let fname = entry.file_name();
        let f = fname.as_encoded_bytes();
        let seq = if f == name {
            0
        } else if f.len() > name.len() + 1 && f.starts_with(name) && f[name.len()] == b'.' {
            let digits = &f[name.len() + 1..];
            if !digits.iter().all(u8::is_ascii_digit) {
                continue;
            }
            match std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
            {
                Some(s) if s > 0 => s,
                _ => continue,
            }
        } else {
            continue;
        };
        files.push((seq, rotated_path(base, seq)));
    }
    files.sort();
    Ok(files)
}

/// A capture read as one stream: a single file, or every file of a rotated
/// set in sequence order.
///
/// Non-strict, a damaged file yields its intact records and the set goes on
/// with the next file; each problem is kept in [`damages`](Self::damages).
/// Files rotated away at the front of the set (flight recorder) are not
/// damage; a file missing from the middle, or one from another capture, is.
pub struct CaptureSet {
    base: PathBuf,
    files: Vec<(u64, PathBuf)>,
    next_file: usize,
    current: Option<CaptureReader<File>>,
    opts: ReadOptions,
    first: Header,
    last_seq: u64,
    damages: Vec<Damage>,
    stats: ReadStats,
    end: Option<End>,
}

impl CaptureSet {
    /// Opens the capture at `path` (FILE of a set, or any single file).
    pub fn open(path: &Path, opts: ReadOptions) -> Result<CaptureSet, CaptureError> {
        let mut files = set_files(path).map_err(|e| CaptureError::io(path, 0, e))?;
        if files.is_empty() && path.is_file() {
            files.push((0, path.to_path_buf()));
        }
        if files.is_empty() {
            return Err(CaptureError::NoFiles {
                file: path.to_path_buf(),
            });
        }
        let mut set = CaptureSet {
            base: path.to_path_buf(),
            files,
            next_file: 0,
            current: None,
            opts,
            first: Header::default(),
            last_seq: 0,
            damages: Vec::new(),
            stats: ReadStats::default(),
            end: None,
        };
        let mut first_err = None;
        while set.next_file < set.files.len() {
            let (seq, p) = set.files[set.next_file].clone();
            set.next_file += 1;
            match CaptureReader::open(&p, opts) {
                Ok(r) => {
                    set.first = r.header().clone();
                    set.last_seq = seq;
                    set.current = Some(r);
                    break;
                }
                // Deleted by a running flight recorder between the listing
                // and the open: it was the oldest, so nothing is missing.
                Err(CaptureError::Io { ref source, .. })
                    if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    if opts.strict {
                        return Err(e);
                    }
                    set.damages.push(Damage::from_error(&e));
                    first_err.get_or_insert(e);
                }
            }
        }
        if set.current.is_none() {
            return Err(first_err.unwrap_or(CaptureError::NoFiles {
                file: path.to_path_buf(),
            }));
        }
        Ok(set)
    }

    /// The header of the first readable file.
    pub fn header(&self) -> &Header {
        &self.first
    }

    /// The header of the file being read now; its boot time is the one that
    /// places the last record returned on the wall clock.
    pub fn current_header(&self) -> &Header {
        self.current.as_ref().map_or(&self.first, |r| r.header())
    }

    /// The files of the set, with their sequence numbers.
    pub fn files(&self) -> &[(u64, PathBuf)] {
        &self.files
    }

    /// Every problem met so far, in the order met.
    pub fn damages(&self) -> &[Damage] {
        &self.damages
    }

    /// Counts over every file read so far.
    pub fn stats(&self) -> ReadStats {
        let mut s = self.stats;
        if let Some(r) = &self.current {
            s.add(&r.stats());
        }
        s
    }

    /// The last end marker read. After the stream is exhausted, `Some` with
    /// `continued == false` means the capture ended cleanly.
    pub fn end(&self) -> Option<End> {
        self.end
    }

    pub fn next_record(&mut self) -> Result<Option<Record>, CaptureError> {
        loop {
            let Some(r) = self.current.as_mut() else {
                return Ok(None);
            };
            match r.next_record() {
                Ok(Some(rec)) => {
                    if let Record::End(e) = rec {
                        self.end = Some(e);
                    }
                    return Ok(Some(rec));
                }
                Ok(None) => {
                    if let Some(d) = r.take_damage() {
                        self.damages.push(d);
                    }
                    self.stats.add(&r.stats());
                    self.current = None;
                    self.open_next()?;
                }
                Err(e) => {
                    self.stats.add(&r.stats());
                    self.current = None;
                    return Err(e);
                }
            }
        }
    }

    fn open_next(&mut self) -> Result<(), CaptureError> {
        while self.next_file < self.files.len() {
            let (seq, p) = self.files[self.next_file].clone();
            self.next_file += 1;
            let problem = if seq != self.last_seq + 1 {
                Some(CaptureError::BrokenSet {
                    file: p.clone(),
                    expected: format!(
                        "the file with sequence {} after {}, found sequence {seq}: files are \
                         missing from the middle of the set",
                        self.last_seq + 1,
                        rotated_path(&self.base, self.last_seq).display()
                    ),
                })
            } else {
                None
            };
            self.last_seq = seq;
            if let Some(e) = problem {
                self.problem(e)?;
            }
            match CaptureReader::open(&p, self.opts) {
                Ok(r) if r.header().capture_id != self.first.capture_id => {
                    let e = CaptureError::BrokenSet {
                        file: p.clone(),
                        expected: format!(
                            "a file of capture {}, found one of capture {} (left from another \
                             run?); skipped",
                            self.first.capture_id,
                            r.header().capture_id
                        ),
                    };
                    self.problem(e)?;
                }
                Ok(r) => {
                    self.current = Some(r);
                    return Ok(());
                }
                Err(e) => self.problem(e)?,
            }
        }
        Ok(())
    }

    fn problem(&mut self, e: CaptureError) -> Result<(), CaptureError> {
        if self.opts.strict {
            return Err(e);
        }
        let mut d = Damage::from_error(&e);
        if matches!(e, CaptureError::BrokenSet { .. }) {
            d.kind = DamageKind::BadFile;
        }
        self.damages.push(d);
        Ok(())
    }
}

impl Iterator for CaptureSet {
    type Item = Result<Record, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// A record from a merge, with the capture it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    /// Index of the source in the vector given to [`merge`].
    pub source: usize,
    /// The source's host name (its path when the header names no host).
    /// Shared, so attaching it costs no allocation per record.
    pub host: Arc<str>,
    /// Wall-clock time, ns since the epoch: the host's boot time plus the
    /// record's `ts_boot_ns`.
    pub wall_ns: u64,
    pub record: Record,
}

/// K-way merge of several captures by wall-clock time. Each source is
/// assumed to be in time order already, as a capture is up to the small
/// disorder between CPUs; the merge keeps one pending record per source.
pub struct Merge {
    sources: Vec<CaptureSet>,
    hosts: Vec<Arc<str>>,
    pending: Vec<Option<(u64, Record)>>,
    heap: BinaryHeap<Reverse<(u64, usize)>>,
    /// Errors from refilling a source, handed out before the next record.
    errors: Vec<CaptureError>,
}

/// Merges captures (each a single file or a rotated set) in wall-clock
/// order; ties go to the source given first.
pub fn merge(sources: Vec<CaptureSet>) -> Merge {
    let hosts = sources
        .iter()
        .map(|s| {
            let h = &s.header().host.hostname;
            if h.is_empty() {
                Arc::from(s.base.display().to_string())
            } else {
                Arc::from(h.as_str())
            }
        })
        .collect();
    let n = sources.len();
    let mut m = Merge {
        sources,
        hosts,
        pending: vec![None; n],
        heap: BinaryHeap::with_capacity(n),
        errors: Vec::new(),
    };
    for i in 0..n {
        m.refill(i);
    }
    m
}

impl Merge {
    pub fn sources(&self) -> &[CaptureSet] {
        &self.sources
    }

    /// Damage met in any source so far.
    pub fn damages(&self) -> impl Iterator<Item = &Damage> {
        self.sources.iter().flat_map(|s| s.damages())
    }

    fn refill(&mut self, i: usize) {
        match self.sources[i].next_record() {
            Ok(Some(rec)) => {
                let wall = wall_clock_ns(&self.sources[i].current_header().host, rec.ts_boot_ns());
                self.pending[i] = Some((wall, rec));
                self.heap.push(Reverse((wall, i)));
            }
            Ok(None) => {}
            // The source is finished after an error (strict damage, I/O).
            Err(e) => self.errors.push(e),
        }
    }
}

impl Iterator for Merge {
    type Item = Result<Merged, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.errors.pop() {
            return Some(Err(e));
        }
        let Reverse((_, i)) = self.heap.pop()?;
        let (wall_ns, record) = self.pending[i].take()?;
        self.refill(i);
        Some(Ok(Merged {
            source: i,
            host: self.hosts[i].clone(),
            wall_ns,
            record,
        }))
    }
}
