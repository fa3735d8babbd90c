//! Appending records to a capture file, with size-based rotation.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::CaptureError;
use super::format::{
    self, Counters, END_FRAME_LEN, EVENT_FRAME_LEN, End, FORMAT_MAJOR, FORMAT_MINOR,
    FRAME_HEADER_LEN, flag, kind,
};
use super::header::{Header, HostInfo};
use super::set::{rotated_path, set_files};
use crate::clock::boot_now_ns;
use crate::event::Event;

/// How and where to write.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// FILE: the first file of the set; later ones are FILE.000001, ...
    pub path: PathBuf,
    /// `--max-size`: start the next file rather than let this one grow past
    /// this many bytes. `None`: one file, unbounded.
    pub max_size: Option<u64>,
    /// `--max-files`: keep at most this many files of the set, deleting the
    /// oldest. Needs `max_size`. `None`: keep every file.
    pub max_files: Option<u64>,
    /// Bytes buffered in memory between writes to the file.
    pub buffer_size: usize,
    /// How old unflushed data may get before [`CaptureWriter::flush_if_due`]
    /// writes it out.
    pub flush_interval: Duration,
    /// The recorder does not time calls (`--no-durations`): said in each
    /// file's header.
    pub untimed: bool,
}

impl WriterOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        WriterOptions {
            path: path.into(),
            max_size: None,
            max_files: None,
            // Large enough that a burst of 20,000 events a second costs a
            // handful of write(2) calls, small enough to lose little on a crash.
            buffer_size: 256 << 10,
            flush_interval: Duration::from_secs(1),
            untimed: false,
        }
    }

    /// Flight recorder: keep roughly the newest `total` bytes of records on
    /// disk. The budget is split over this many files; more files waste
    /// more headers, fewer make the oldest-file deletion coarser.
    pub const FLIGHT_RECORDER_FILES: u64 = 8;

    /// A rotated set that never holds more than `total` bytes on disk and,
    /// once the first rotations have happened, always holds at least the
    /// newest `total * 7/8 - 8 * header` bytes of records (see
    /// docs/capture-format.md, "Flight recorder").
    pub fn flight_recorder(path: impl Into<PathBuf>, total: u64) -> Self {
        let mut o = WriterOptions::new(path);
        o.max_files = Some(Self::FLIGHT_RECORDER_FILES);
        o.max_size = Some(total / Self::FLIGHT_RECORDER_FILES);
        o
    }
}

/// Counts of what a writer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub events: u64,
    pub counters: u64,
    /// Bytes handed to the files, all files together.
    pub bytes: u64,
    pub files_created: u64,
    pub files_deleted: u64,
}

/// Appends records to a capture. Buffered: records reach the file on
/// [`flush`](Self::flush), [`flush_if_due`](Self::flush_if_due), when the
/// buffer fills, at rotation, at [`finish`](Self::finish) and on drop.
/// Only `finish` writes the end-of-capture marker, so a reader can tell a
/// clean exit from a crash.
pub struct CaptureWriter {
    opts: WriterOptions,
    host: HostInfo,
    filters: serde_json::Value,
    capture_id: String,
    sequence: u64,
    file: Option<File>,
    current: PathBuf,
    buf: Vec<u8>,
    /// Bytes of the current file, written plus buffered.
    file_len: u64,
    /// Bytes of the current file already written to it.
    written_len: u64,
    events_in_file: u64,
    records_in_file: u64,
    stats: WriterStats,
    last_flush: Instant,
    finished: bool,
}

impl CaptureWriter {
    /// Creates FILE (mode 0600) and writes its header at once, so even a
    /// capture that records nothing identifies itself. Rotated files left
    /// by an earlier capture at the same path are deleted: creating FILE
    /// discards that capture's first file, and a reader must not stitch
    /// the rest of it onto this one.
    pub fn create(
        opts: WriterOptions,
        host: HostInfo,
        filters: serde_json::Value,
    ) -> Result<CaptureWriter, CaptureError> {
        if opts.max_files.is_some() && opts.max_size.is_none() {
            return Err(CaptureError::BadOptions {
                file: opts.path.clone(),
                what: "--max-files needs --max-size: files are rotated by size".into(),
            });
        }
        if opts.max_files == Some(0) {
            return Err(CaptureError::BadOptions {
                file: opts.path.clone(),
                what: "--max-files must be at least 1".into(),
            });
        }
        let stale = set_files(&opts.path).map_err(|e| CaptureError::io(&opts.path, 0, e))?;
        for (_, p) in stale {
            remove_if_present(&p).map_err(|e| CaptureError::io(&p, 0, e))?;
        }
        let mut w = CaptureWriter {
            capture_id: new_capture_id(host.boot_time_ns),
            current: opts.path.clone(),
            buf: Vec::with_capacity(opts.buffer_size.max(4096) + 4096),
            opts,
            host,
            filters,
            sequence: 0,
            file: None,
            file_len: 0,
            written_len: 0,
            events_in_file: 0,
            records_in_file: 0,
            stats: WriterStats::default(),
            last_flush: Instant::now(),
            finished: false,
        };
        w.open_file()?;
        if let Some(max) = w.opts.max_size {
            let need = w.file_len + EVENT_FRAME_LEN + END_FRAME_LEN;
            if max < need {
                let path = w.current.clone();
                // Leave no half-made capture behind for a bad option.
                drop(w.file.take());
                w.finished = true;
                let _ = std::fs::remove_file(&path);
                return Err(CaptureError::BadOptions {
                    file: path,
                    what: format!(
                        "--max-size {max} is too small: a file needs {need} bytes for its \
                         header, one event and the end marker"
                    ),
                });
            }
        }
        Ok(w)
    }

    /// Appends one event.
    pub fn write_event(&mut self, e: &Event) -> Result<(), CaptureError> {
        self.write_frame(kind::EVENT, 0, &format::encode_event(e))?;
        self.events_in_file += 1;
        self.stats.events += 1;
        Ok(())
    }

    /// Appends a snapshot of the kernel counters.
    pub fn write_counters(&mut self, c: &Counters) -> Result<(), CaptureError> {
        self.write_frame(kind::COUNTERS, 0, &format::encode_counters(c))?;
        self.stats.counters += 1;
        Ok(())
    }

    /// Writes buffered records to the file (not to the disk: a crash of
    /// thptrace loses nothing flushed, a crash of the machine may).
    pub fn flush(&mut self) -> Result<(), CaptureError> {
        if self.buf.is_empty() {
            self.last_flush = Instant::now();
            return Ok(());
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        // Track progress by hand rather than write_all: after a partial
        // write and an error (a full disk), the written part must leave the
        // buffer, or a retry would write it twice and corrupt the file.
        let mut done = 0;
        let mut result = Ok(());
        while done < self.buf.len() {
            match file.write(&self.buf[done..]) {
                Ok(0) => {
                    result = Err(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.buf.drain(..done);
        self.written_len += done as u64;
        self.stats.bytes += done as u64;
        result.map_err(|e| CaptureError::io(&self.current, self.written_len, e))?;
        self.last_flush = Instant::now();
        Ok(())
    }

    /// For the caller's timer: flushes when the last flush is at least
    /// `flush_interval` old. Returns whether it flushed. Cheap enough to
    /// call after every batch of events.
    pub fn flush_if_due(&mut self) -> Result<bool, CaptureError> {
        if self.last_flush.elapsed() >= self.opts.flush_interval {
            self.flush()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Clean exit: writes the end-of-capture marker, flushes and syncs.
    pub fn finish(mut self) -> Result<WriterStats, CaptureError> {
        self.write_end(false)?;
        self.flush()?;
        if let Some(f) = self.file.as_ref() {
            f.sync_data()
                .map_err(|e| CaptureError::io(&self.current, self.written_len, e))?;
        }
        self.finished = true;
        Ok(self.stats)
    }

    /// The file being written now.
    pub fn current_path(&self) -> &Path {
        &self.current
    }

    pub fn stats(&self) -> WriterStats {
        self.stats
    }

    /// The id written into every file's header.
    pub fn capture_id(&self) -> &str {
        &self.capture_id
    }

    fn write_frame(&mut self, kind: u16, flags: u16, payload: &[u8]) -> Result<(), CaptureError> {
        let frame_len = (FRAME_HEADER_LEN + payload.len()) as u64;
        if let Some(max) = self.opts.max_size {
            // Room for the end marker is kept so a rotated file stays within
            // max_size; a file always takes at least one record so rotation
            // cannot loop (create() made sure one fits).
            if self.records_in_file > 0 && self.file_len + frame_len + END_FRAME_LEN > max {
                self.rotate()?;
            }
        }
        format::push_frame(&mut self.buf, kind, flags, payload);
        self.file_len += frame_len;
        self.records_in_file += 1;
        if self.buf.len() >= self.opts.buffer_size {
            self.flush()?;
        }
        Ok(())
    }

    fn write_end(&mut self, continued: bool) -> Result<(), CaptureError> {
        let end = End {
            ts_boot_ns: boot_now_ns(),
            events: self.events_in_file,
            continued,
        };
        let flags = if continued { flag::END_CONTINUED } else { 0 };
        format::push_frame(&mut self.buf, kind::END, flags, &format::encode_end(&end));
        self.file_len += END_FRAME_LEN;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), CaptureError> {
        self.write_end(true)?;
        self.flush()?;
        self.file = None;
        self.sequence += 1;
        // Delete before creating so the set never holds more than max_files.
        if let Some(n) = self.opts.max_files
            && self.sequence >= n
        {
            let old = rotated_path(&self.opts.path, self.sequence - n);
            if remove_if_present(&old).map_err(|e| CaptureError::io(&old, 0, e))? {
                self.stats.files_deleted += 1;
            }
        }
        self.open_file()
    }

    fn open_file(&mut self) -> Result<(), CaptureError> {
        let path = rotated_path(&self.opts.path, self.sequence);
        // thptrace runs as root: remove whatever is at the path and create
        // the file exclusively, so a symlink planted there (in /tmp, say) is
        // never followed and an old file's permissions are never inherited.
        remove_if_present(&path).map_err(|e| CaptureError::io(&path, 0, e))?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| CaptureError::io(&path, 0, e))?;
        // Exactly 0600 whatever the umask: captures hold other users'
        // command names and addresses.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| CaptureError::io(&path, 0, e))?;
        self.file = Some(file);
        self.current = path;
        self.file_len = 0;
        self.written_len = 0;
        self.events_in_file = 0;
        self.records_in_file = 0;
        self.stats.files_created += 1;

        let header = Header {
            format_major: FORMAT_MAJOR,
            format_minor: FORMAT_MINOR,
            thptrace_version: env!("CARGO_PKG_VERSION").to_string(),
            capture_id: self.capture_id.clone(),
            sequence: self.sequence,
            created_boot_ns: boot_now_ns(),
            host: self.host.clone(),
            filters: self.filters.clone(),
            untimed: self.opts.untimed,
        };
        let json = serde_json::to_vec(&header)
            .map_err(|e| CaptureError::io(&self.current, 0, io::Error::other(e)))?;
        self.buf
            .extend_from_slice(&format::encode_preamble(FORMAT_MAJOR, FORMAT_MINOR));
        format::push_frame(&mut self.buf, kind::HEADER, 0, &json);
        self.file_len = self.buf.len() as u64;
        self.flush()
    }
}

impl Drop for CaptureWriter {
    /// Keeps what was recorded if the caller bails out without `finish`;
    /// no end marker, so the reader can tell.
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.flush();
        }
    }
}

fn remove_if_present(p: &Path) -> io::Result<bool> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Unique enough to tell two runs apart at the same path: boot time, pid and
/// the boot clock now; no randomness source needed.
fn new_capture_id(boot_time_ns: u64) -> String {
    format!(
        "{:x}-{:x}-{:x}",
        boot_time_ns,
        std::process::id(),
        boot_now_ns()
    )
}

/// A deterministic event for benchmarks and tests: varied enough that no
/// field is constant, cheap to make.
pub fn synthetic_event(i: u64) -> Event {
    const COMMS: [&str; 4] = ["criu", "stress-ng", "java", "postgres"];
    const ADVICE: [i32; 5] = [14, 15, 9, 25, 4];
    const RET: [i64; 3] = [-22, -12, -13];
    Event {
        ts_boot_ns: 1_000_000_000 + i * 50_000,
        duration_ns: 500 + i % 1000,
        tgid: 1000 + (i % 7) as u32,
        tid: 1000 + (i % 13) as u32,
        uid: 0,
        gid: 0,
        cpu: (i % 2) as u32,
        cgroup_id: 1,
        comm: crate::event::comm_from_str(COMMS[(i % 4) as usize]),
        syscall: crate::event::Syscall::Madvise,
        start: 0x7f00_0000_0000 + (i << 12),
        len: 4096,
        advice: ADVICE[(i % 5) as usize],
        pidfd: -1,
        vlen: 0,
        flags: 0,
        iovec_unreadable: false,
        ret: RET[(i % 3) as usize],
        area: crate::event::AreaRaw::NONE,
    }
}

/// Writes `events` synthetic events (and a counters record every 10,000) to
/// a fresh single-file capture at `path`: the input of the capture-read
/// benchmark.
pub fn write_synthetic(path: &Path, events: u64) -> Result<WriterStats, CaptureError> {
    let mut w = CaptureWriter::create(
        WriterOptions::new(path),
        HostInfo::detect(),
        serde_json::json!({ "synthetic": true }),
    )?;
    for i in 0..events {
        w.write_event(&synthetic_event(i))?;
        if i % 10_000 == 9_999 {
            w.write_counters(&Counters {
                ts_boot_ns: synthetic_event(i).ts_boot_ns,
                kernel: crate::event::KernelCounters {
                    calls: i + 1,
                    failures: i + 1,
                    sent: i + 1,
                    ..Default::default()
                },
            })?;
        }
    }
    w.finish()
}
