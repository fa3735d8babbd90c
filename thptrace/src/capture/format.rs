//! The bytes on disk: preamble, frame headers and the fixed record layouts.
//! Nothing here does I/O, so the encoders and decoders are shared by the
//! writer, the reader and the tests. docs/capture-format.md is the prose
//! version of this file; change both together.

use crate::event::{Event, KernelCounters, Syscall};

/// First eight bytes of every capture file. The high-bit first byte and the
/// `\r\n` catch a file mangled by a 7-bit or line-ending-converting transfer,
/// the way PNG's signature does.
pub const MAGIC: [u8; 8] = *b"\x89THP\r\n\x1a\n";

/// Major format version: a reader refuses a file whose major version is
/// higher than this. Bumped only for changes old readers cannot skip over.
pub const FORMAT_MAJOR: u16 = 1;
/// Minor format version: additions an older reader can ignore (new record
/// types, longer fixed records). Informational for readers.
pub const FORMAT_MINOR: u16 = 1;

/// Magic, major, minor, CRC-32 of the first 12 bytes.
pub const PREAMBLE_LEN: usize = 16;
/// Record type (u16), flags (u16), payload length (u32), CRC-32 (u32).
pub const FRAME_HEADER_LEN: usize = 12;

/// The header frame holds JSON written by thptrace itself; a megabyte leaves
/// room for generous host facts while bounding what a damaged length field
/// can make the reader allocate.
pub const MAX_HEADER_LEN: u32 = 1 << 20;
/// Every other record is small and fixed; 64 KiB leaves room for future
/// records (stacks, memory-area paths) and still bounds allocation.
pub const MAX_RECORD_LEN: u32 = 64 << 10;

/// Record types. Values are never reused; readers skip types they do not
/// know, which is what lets a minor version add one.
pub mod kind {
    /// JSON header; exactly one, first, right after the preamble.
    pub const HEADER: u16 = 1;
    /// One traced call, fixed layout ([`super::EVENT_LEN`] bytes or more).
    pub const EVENT: u16 = 2;
    /// Snapshot of the kernel-side counters.
    pub const COUNTERS: u16 = 3;
    /// Written when the file is closed on purpose (clean exit or rotation).
    pub const END: u16 = 4;
    /// Reserved for the memory-area block that describes the preceding
    /// event's VMA; not written yet.
    pub const AREA: u16 = 5;
}

/// Frame flags. Bit meanings are per the record type; unknown bits are ignored.
pub mod flag {
    /// On an EVENT: an AREA record for this event follows it directly.
    /// Reserved; not written yet.
    pub const EVENT_HAS_AREA: u16 = 1 << 0;
    /// On an END: the capture continues in the next file of the rotated set.
    pub const END_CONTINUED: u16 = 1 << 0;
}

/// Length of the event payload as this version (1.1) writes it: the 1.0
/// layout, then the memory area. Newer minor versions may append fields;
/// readers take what they know and ignore the rest.
pub const EVENT_LEN: usize = 144;
/// Length of the version 1.0 event payload, the least a reader accepts (a
/// 1.0 event has no area).
pub const EVENT_V1_0_LEN: usize = 108;
/// Length of the version-1 counters payload (seven u64).
pub const COUNTERS_LEN: usize = 56;
/// Length of the version-1 end payload (two u64).
pub const END_LEN: usize = 16;
/// Size of a whole END frame: the writer keeps room for it in every file so
/// a rotated file never grows past `max_size`.
pub const END_FRAME_LEN: u64 = (FRAME_HEADER_LEN + END_LEN) as u64;
/// Size of a whole EVENT frame as this version writes it.
pub const EVENT_FRAME_LEN: u64 = (FRAME_HEADER_LEN + EVENT_LEN) as u64;

/// The kernel counters, as kept by the kernel programs, at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// `CLOCK_BOOTTIME` when the snapshot was taken, in nanoseconds.
    pub ts_boot_ns: u64,
    pub kernel: KernelCounters,
}

impl Counters {
    /// A snapshot of the kernel counters taken at `ts_boot_ns`.
    pub fn snapshot(ts_boot_ns: u64, k: &KernelCounters) -> Counters {
        Counters {
            ts_boot_ns,
            kernel: *k,
        }
    }

    /// The counters without their time stamp, as the summary shows them.
    pub fn kernel(&self) -> KernelCounters {
        self.kernel
    }
}

/// The end-of-file marker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct End {
    /// `CLOCK_BOOTTIME` when the file was closed, in nanoseconds.
    pub ts_boot_ns: u64,
    /// Events written to this file (not the whole set), so a reader can tell
    /// a complete file from one that lost records.
    pub events: u64,
    /// The capture goes on in the next file of the rotated set; false at a
    /// clean exit.
    pub continued: bool,
}

pub fn encode_preamble(major: u16, minor: u16) -> [u8; PREAMBLE_LEN] {
    let mut p = [0u8; PREAMBLE_LEN];
    p[..8].copy_from_slice(&MAGIC);
    p[8..10].copy_from_slice(&major.to_le_bytes());
    p[10..12].copy_from_slice(&minor.to_le_bytes());
    let crc = crc32fast::hash(&p[..12]);
    p[12..16].copy_from_slice(&crc.to_le_bytes());
    p
}

/// Appends one whole frame to `out`. Encoding straight into the writer's
/// buffer keeps it free of per-record allocation.
pub fn push_frame(out: &mut Vec<u8>, kind: u16, flags: u16, payload: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(payload);
    let crc = frame_crc(&out[start..start + 8], payload);
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

/// CRC-32 over the frame's type, flags and length and its payload: a flipped
/// bit in the length or type is caught as surely as one in the data.
pub fn frame_crc(head8: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(head8);
    h.update(payload);
    h.finalize()
}

/// The parsed fixed part of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: u16,
    pub flags: u16,
    pub len: u32,
    pub crc: u32,
}

pub fn parse_frame_header(b: &[u8; FRAME_HEADER_LEN]) -> FrameHeader {
    FrameHeader {
        kind: u16::from_le_bytes([b[0], b[1]]),
        flags: u16::from_le_bytes([b[2], b[3]]),
        len: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        crc: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
    }
}

const SYSCALL_MADVISE: u8 = 0;
const SYSCALL_PROCESS_MADVISE: u8 = 1;
const EVENT_BIT_IOVEC_UNREADABLE: u8 = 1 << 0;

/// The version-1 event layout, little-endian, 64-bit fields first:
///
/// | off | field | | off | field |
/// |---|---|---|---|---|
/// | 0 | ts_boot_ns u64 | | 64 | uid u32 |
/// | 8 | duration_ns u64 | | 68 | gid u32 |
/// | 16 | cgroup_id u64 | | 72 | cpu u32 |
/// | 24 | start u64 | | 76 | advice i32 |
/// | 32 | len u64 | | 80 | pidfd i32 |
/// | 40 | vlen u64 | | 84 | flags u32 |
/// | 48 | ret i64 | | 88 | comm [u8; 16] |
/// | 56 | tgid u32 | | 104 | syscall u8 |
/// | 60 | tid u32 | | 105 | bits u8 (bit 0 iovec_unreadable) |
/// | | | | 106 | reserved, 2 bytes, zero |
///
/// Version 1.1 appends the memory area (`Event::area`): start u64 at 108,
/// end u64 at 116, vm_flags u64 at 124, gap u64 at 132, status u32 at 140.
pub fn encode_event(e: &Event) -> [u8; EVENT_LEN] {
    let mut b = [0u8; EVENT_LEN];
    b[0..8].copy_from_slice(&e.ts_boot_ns.to_le_bytes());
    // The bytes have no value for "not measured" (1.1 readers would show it
    // as a duration): an untimed capture says so in its header instead.
    let duration = match e.duration_ns {
        thptrace_common::NOT_TIMED => thptrace_common::NO_DURATION,
        d => d,
    };
    b[8..16].copy_from_slice(&duration.to_le_bytes());
    b[16..24].copy_from_slice(&e.cgroup_id.to_le_bytes());
    b[24..32].copy_from_slice(&e.start.to_le_bytes());
    b[32..40].copy_from_slice(&e.len.to_le_bytes());
    b[40..48].copy_from_slice(&e.vlen.to_le_bytes());
    b[48..56].copy_from_slice(&e.ret.to_le_bytes());
    b[56..60].copy_from_slice(&e.tgid.to_le_bytes());
    b[60..64].copy_from_slice(&e.tid.to_le_bytes());
    b[64..68].copy_from_slice(&e.uid.to_le_bytes());
    b[68..72].copy_from_slice(&e.gid.to_le_bytes());
    b[72..76].copy_from_slice(&e.cpu.to_le_bytes());
    b[76..80].copy_from_slice(&e.advice.to_le_bytes());
    b[80..84].copy_from_slice(&e.pidfd.to_le_bytes());
    b[84..88].copy_from_slice(&e.flags.to_le_bytes());
    b[88..104].copy_from_slice(&e.comm);
    b[104] = match e.syscall {
        Syscall::Madvise => SYSCALL_MADVISE,
        Syscall::ProcessMadvise => SYSCALL_PROCESS_MADVISE,
    };
    b[105] = if e.iovec_unreadable {
        EVENT_BIT_IOVEC_UNREADABLE
    } else {
        0
    };
    b[108..116].copy_from_slice(&e.area.start.to_le_bytes());
    b[116..124].copy_from_slice(&e.area.end.to_le_bytes());
    b[124..132].copy_from_slice(&e.area.vm_flags.to_le_bytes());
    b[132..140].copy_from_slice(&e.area.gap.to_le_bytes());
    b[140..144].copy_from_slice(&e.area.status.to_le_bytes());
    b
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Decodes an event payload. `None` when the payload is shorter than
/// version 1's or names a system call this build does not know (a newer
/// writer's); the caller decides whether that is damage or something to skip.
pub fn decode_event(b: &[u8]) -> Option<Event> {
    let area = match b.get(EVENT_V1_0_LEN..EVENT_LEN) {
        Some(a) => crate::event::AreaRaw {
            start: u64_at(a, 0),
            end: u64_at(a, 8),
            vm_flags: u64_at(a, 16),
            gap: u64_at(a, 24),
            status: u32_at(a, 32),
        },
        None => crate::event::AreaRaw::NONE,
    };
    let b = b.get(..EVENT_V1_0_LEN)?;
    let syscall = match b[104] {
        SYSCALL_MADVISE => Syscall::Madvise,
        SYSCALL_PROCESS_MADVISE => Syscall::ProcessMadvise,
        _ => return None,
    };
    let mut comm = [0u8; 16];
    comm.copy_from_slice(&b[88..104]);
    Some(Event {
        ts_boot_ns: u64_at(b, 0),
        duration_ns: u64_at(b, 8),
        cgroup_id: u64_at(b, 16),
        start: u64_at(b, 24),
        len: u64_at(b, 32),
        vlen: u64_at(b, 40),
        ret: u64_at(b, 48) as i64,
        tgid: u32_at(b, 56),
        tid: u32_at(b, 60),
        uid: u32_at(b, 64),
        gid: u32_at(b, 68),
        cpu: u32_at(b, 72),
        advice: u32_at(b, 76) as i32,
        pidfd: u32_at(b, 80) as i32,
        flags: u32_at(b, 84),
        comm,
        syscall,
        iovec_unreadable: b[105] & EVENT_BIT_IOVEC_UNREADABLE != 0,
        area,
    })
}

pub fn encode_counters(c: &Counters) -> [u8; COUNTERS_LEN] {
    let mut b = [0u8; COUNTERS_LEN];
    let k = &c.kernel;
    let fields = [
        c.ts_boot_ns,
        k.calls,
        k.failures,
        k.sent,
        k.lost,
        k.restarts,
        k.no_duration,
    ];
    for (i, v) in fields.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    b
}

pub fn decode_counters(b: &[u8]) -> Option<Counters> {
    let b = b.get(..COUNTERS_LEN)?;
    Some(Counters {
        ts_boot_ns: u64_at(b, 0),
        kernel: KernelCounters {
            calls: u64_at(b, 8),
            failures: u64_at(b, 16),
            sent: u64_at(b, 24),
            lost: u64_at(b, 32),
            restarts: u64_at(b, 40),
            no_duration: u64_at(b, 48),
        },
    })
}

pub fn encode_end(e: &End) -> [u8; END_LEN] {
    let mut b = [0u8; END_LEN];
    b[0..8].copy_from_slice(&e.ts_boot_ns.to_le_bytes());
    b[8..16].copy_from_slice(&e.events.to_le_bytes());
    b
}

pub fn decode_end(b: &[u8], flags: u16) -> Option<End> {
    let b = b.get(..END_LEN)?;
    Some(End {
        ts_boot_ns: u64_at(b, 0),
        events: u64_at(b, 8),
        continued: flags & flag::END_CONTINUED != 0,
    })
}

/// The smallest payload each known record type must have; shorter is damage.
pub fn min_len(kind: u16) -> Option<usize> {
    match kind {
        kind::EVENT => Some(EVENT_V1_0_LEN),
        kind::COUNTERS => Some(COUNTERS_LEN),
        kind::END => Some(END_LEN),
        _ => None,
    }
}
