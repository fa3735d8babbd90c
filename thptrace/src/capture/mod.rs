//! Capture files: thptrace's own versioned, checksummed record format, for
//! postmortem reading on any machine (docs/capture-format.md).
//!
//! This module is the only code that knows the bytes on disk:
//! - [`CaptureWriter`] appends events, counter snapshots and an end marker,
//!   rotates by size and count ([`WriterOptions`]), flushes on request, on a
//!   timer tick and on drop.
//! - [`CaptureReader`] streams the records of one file with bounded memory
//!   and stops at the first damage, keeping every complete record before it.
//! - [`CaptureSet`] reads a rotated set as one stream; [`merge`] interleaves
//!   several captures (several hosts) in wall-clock order.
//!
//! Pure logic: no aya, no privileges; the kernel clocks are read with plain
//! `clock_gettime`.

mod error;
mod format;
mod header;
mod reader;
mod set;
mod size;
mod writer;

#[cfg(test)]
mod tests;

pub use error::{CaptureError, Damage, DamageKind};
pub use format::{
    Counters, EVENT_FRAME_LEN, EVENT_LEN, End, FORMAT_MAJOR, FORMAT_MINOR, MAGIC, MAX_HEADER_LEN,
    MAX_RECORD_LEN, flag as record_flag, kind as record_kind,
};
pub use header::{Header, HostInfo, wall_clock_ns};
pub use reader::{CaptureReader, ReadOptions, ReadStats, Record, scan};
pub use set::{CaptureSet, Merge, Merged, merge, rotated_path, set_files};
pub use size::{SizeError, parse_size};
pub use writer::{CaptureWriter, WriterOptions, WriterStats, synthetic_event, write_synthetic};
