//! What can go wrong reading or writing a capture, always with the file, the
//! byte offset and what was expected there, so a person can look at the
//! bytes with `xxd -s OFFSET` and a bug report says everything.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A capture that could not be read or written.
#[derive(Debug)]
pub enum CaptureError {
    /// The operating system refused a read, write, open, rename or delete.
    Io {
        file: PathBuf,
        offset: u64,
        source: io::Error,
    },
    /// The file does not start with thptrace's magic number.
    NotCapture { file: PathBuf, found: Vec<u8> },
    /// The file was written in a format major version this build cannot read.
    NewerVersion {
        file: PathBuf,
        major: u16,
        minor: u16,
        supported: u16,
    },
    /// The file ends inside the preamble or the header frame.
    TruncatedHeader {
        file: PathBuf,
        offset: u64,
        expected: String,
    },
    /// The header frame is intact but its contents are not what thptrace
    /// writes (wrong record type, JSON that does not parse).
    BadHeader {
        file: PathBuf,
        offset: u64,
        expected: String,
    },
    /// A frame's stored checksum does not match its bytes.
    BadChecksum {
        file: PathBuf,
        offset: u64,
        stored: u32,
        computed: u32,
    },
    /// A frame claims a length above the cap or below its type's minimum.
    BadLength {
        file: PathBuf,
        offset: u64,
        length: u64,
        expected: String,
    },
    /// The file ends inside a record (strict mode only; non-strict readers
    /// report this as [`Damage`]).
    Truncated {
        file: PathBuf,
        offset: u64,
        expected: String,
    },
    /// A file of a rotated set is missing from the middle of the set, or
    /// belongs to another capture.
    BrokenSet { file: PathBuf, expected: String },
    /// No capture file at or next to the path.
    NoFiles { file: PathBuf },
    /// The writer's options cannot work (a max-size too small for one record).
    BadOptions { file: PathBuf, what: String },
}

impl CaptureError {
    /// The file the error is about.
    pub fn file(&self) -> &std::path::Path {
        match self {
            CaptureError::Io { file, .. }
            | CaptureError::NotCapture { file, .. }
            | CaptureError::NewerVersion { file, .. }
            | CaptureError::TruncatedHeader { file, .. }
            | CaptureError::BadHeader { file, .. }
            | CaptureError::BadChecksum { file, .. }
            | CaptureError::BadLength { file, .. }
            | CaptureError::Truncated { file, .. }
            | CaptureError::BrokenSet { file, .. }
            | CaptureError::NoFiles { file }
            | CaptureError::BadOptions { file, .. } => file,
        }
    }

    /// The byte offset the error is about, where there is one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            CaptureError::Io { offset, .. }
            | CaptureError::TruncatedHeader { offset, .. }
            | CaptureError::BadHeader { offset, .. }
            | CaptureError::BadChecksum { offset, .. }
            | CaptureError::BadLength { offset, .. }
            | CaptureError::Truncated { offset, .. } => Some(*offset),
            CaptureError::NotCapture { .. } | CaptureError::NewerVersion { .. } => Some(0),
            _ => None,
        }
    }

    pub(crate) fn io(file: &std::path::Path, offset: u64, source: io::Error) -> Self {
        CaptureError::Io {
            file: file.to_path_buf(),
            offset,
            source,
        }
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Io {
                file,
                offset,
                source,
            } => write!(f, "{}: at byte {offset}: {source}", file.display()),
            CaptureError::NotCapture { file, found } => write!(
                f,
                "{}: not a thptrace capture file: expected the magic number {} at byte 0, found {}",
                file.display(),
                hex(&super::format::MAGIC),
                if found.is_empty() {
                    "an empty file".to_string()
                } else {
                    hex(found)
                }
            ),
            CaptureError::NewerVersion {
                file,
                major,
                minor,
                supported,
            } => write!(
                f,
                "{}: capture format version {major}.{minor} is newer than this thptrace {} \
                 reads (format {supported}.x): read it with a newer thptrace",
                file.display(),
                env!("CARGO_PKG_VERSION")
            ),
            CaptureError::TruncatedHeader {
                file,
                offset,
                expected,
            } => write!(
                f,
                "{}: header cut short at byte {offset}: expected {expected}",
                file.display()
            ),
            CaptureError::BadHeader {
                file,
                offset,
                expected,
            } => write!(
                f,
                "{}: bad header at byte {offset}: expected {expected}",
                file.display()
            ),
            CaptureError::BadChecksum {
                file,
                offset,
                stored,
                computed,
            } => write!(
                f,
                "{}: bad checksum in the record at byte {offset}: expected {stored:#010x} as \
                 stored, the bytes give {computed:#010x}",
                file.display()
            ),
            CaptureError::BadLength {
                file,
                offset,
                length,
                expected,
            } => write!(
                f,
                "{}: bad length {length} in the record at byte {offset}: expected {expected}",
                file.display()
            ),
            CaptureError::Truncated {
                file,
                offset,
                expected,
            } => write!(
                f,
                "{}: file cut short in the record at byte {offset}: expected {expected}",
                file.display()
            ),
            CaptureError::BrokenSet { file, expected } => {
                write!(f, "{}: broken rotated set: {expected}", file.display())
            }
            CaptureError::NoFiles { file } => write!(
                f,
                "{}: no capture file there (nor rotated files next to it)",
                file.display()
            ),
            CaptureError::BadOptions { file, what } => {
                write!(f, "{}: {what}", file.display())
            }
        }
    }
}

impl std::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CaptureError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2 + 2);
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// What broke, for a damage report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DamageKind {
    /// The file ends inside a record: a crash or a copy still being written.
    Truncated,
    BadChecksum {
        stored: u32,
        computed: u32,
    },
    BadLength {
        length: u64,
    },
    /// A whole file of a set could not be read (bad magic, bad header,
    /// missing from the middle of the set, another capture's file).
    BadFile,
}

/// Where a non-strict read stopped: every record before `offset` in `file`
/// was read and checked; nothing at or after it was used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub file: PathBuf,
    pub offset: u64,
    pub kind: DamageKind,
    pub what_was_expected: String,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.kind {
            DamageKind::Truncated => "file cut short".to_string(),
            DamageKind::BadChecksum { stored, computed } => {
                format!("bad checksum (stored {stored:#010x}, computed {computed:#010x})")
            }
            DamageKind::BadLength { length } => format!("bad length {length}"),
            DamageKind::BadFile => "unreadable file".to_string(),
        };
        write!(
            f,
            "{}: {what} at byte {}: expected {}; records before it were kept",
            self.file.display(),
            self.offset,
            self.what_was_expected
        )
    }
}

impl From<Damage> for CaptureError {
    fn from(d: Damage) -> Self {
        match d.kind {
            DamageKind::Truncated => CaptureError::Truncated {
                file: d.file,
                offset: d.offset,
                expected: d.what_was_expected,
            },
            DamageKind::BadChecksum { stored, computed } => CaptureError::BadChecksum {
                file: d.file,
                offset: d.offset,
                stored,
                computed,
            },
            DamageKind::BadLength { length } => CaptureError::BadLength {
                file: d.file,
                offset: d.offset,
                length,
                expected: d.what_was_expected,
            },
            DamageKind::BadFile => CaptureError::BrokenSet {
                file: d.file,
                expected: d.what_was_expected,
            },
        }
    }
}

impl Damage {
    /// A file-level error, kept as damage when a non-strict set reader skips
    /// the file and goes on with the next.
    pub(crate) fn from_error(e: &CaptureError) -> Damage {
        let kind = match e {
            CaptureError::BadChecksum {
                stored, computed, ..
            } => DamageKind::BadChecksum {
                stored: *stored,
                computed: *computed,
            },
            CaptureError::BadLength { length, .. } => DamageKind::BadLength { length: *length },
            CaptureError::TruncatedHeader { .. } | CaptureError::Truncated { .. } => {
                DamageKind::Truncated
            }
            _ => DamageKind::BadFile,
        };
        Damage {
            file: e.file().to_path_buf(),
            offset: e.offset().unwrap_or(0),
            kind,
            what_was_expected: e.to_string(),
        }
    }
}
