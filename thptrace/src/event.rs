//! The decoded event everything past the probe works on: plain data, no aya,
//! so formatting, filtering, summaries and files can be tested without root.

use std::borrow::Cow;

use thptrace_common::{COMM_LEN, RawEvent, syscall};

/// The longest `comm` the kernel keeps (`COMM_LEN` less the NUL).
pub const COMM_MAX: usize = COMM_LEN - 1;

/// Which system call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Syscall {
    Madvise,
    ProcessMadvise,
}

impl Syscall {
    pub fn name(self) -> &'static str {
        match self {
            Syscall::Madvise => "madvise",
            Syscall::ProcessMadvise => "process_madvise",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "madvise" => Some(Syscall::Madvise),
            "process_madvise" => Some(Syscall::ProcessMadvise),
            _ => None,
        }
    }
}

/// One traced call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// `CLOCK_BOOTTIME` at return, in nanoseconds; [`crate::clock`] turns it
    /// into wall-clock time.
    pub ts_boot_ns: u64,
    /// Entry to return, in nanoseconds; `thptrace_common::NO_DURATION` when
    /// unknown, `NOT_TIMED` when the run did not time calls (see
    /// [`Event::duration`] and [`Event::timed`]).
    pub duration_ns: u64,
    pub tgid: u32,
    pub tid: u32,
    pub uid: u32,
    pub gid: u32,
    pub cpu: u32,
    pub cgroup_id: u64,
    /// The task's `comm`, NUL-padded as the kernel keeps it.
    pub comm: [u8; COMM_LEN],
    pub syscall: Syscall,
    /// madvise's `start`, or process_madvise's first iovec base.
    pub start: u64,
    /// madvise's `len_in`, or process_madvise's first iovec length.
    pub len: u64,
    pub advice: i32,
    /// process_madvise only: pidfd, iovec count and flags.
    pub pidfd: i32,
    pub vlen: u64,
    pub flags: u32,
    /// process_madvise only: the iovec array could not be read at entry, so
    /// `start` and `len` are unknown.
    pub iovec_unreadable: bool,
    /// The raw return value: `-errno` on failure.
    pub ret: i64,
    /// The memory area the call hit, as the kernel saw it at the failure.
    pub area: AreaRaw,
}

/// The memory area containing a call's start, as the kernel program read it
/// (`vm_area_struct`); [`crate::explain::Area::from_event`] decodes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AreaRaw {
    pub start: u64,
    pub end: u64,
    /// The area's raw `vm_flags`.
    pub vm_flags: u64,
    /// The first unmapped address of the call's range, when one was found.
    pub gap: u64,
    /// `thptrace_common::area` bits; 0 when no lookup was made.
    pub status: u32,
}

impl AreaRaw {
    /// No lookup was made (kernel without bpf_find_vma or BTF, or a capture
    /// without areas).
    pub const NONE: AreaRaw = AreaRaw {
        start: 0,
        end: 0,
        vm_flags: 0,
        gap: 0,
        status: 0,
    };

    pub fn looked_up(&self) -> bool {
        self.status & thptrace_common::area::LOOKED_UP != 0
    }
}

impl Event {
    pub fn from_raw(raw: &RawEvent) -> Self {
        Event {
            ts_boot_ns: raw.ts_ns,
            duration_ns: raw.duration_ns,
            tgid: raw.tgid,
            tid: raw.tid,
            uid: raw.uid,
            gid: raw.gid,
            cpu: raw.cpu,
            cgroup_id: raw.cgroup_id,
            comm: raw.comm,
            syscall: if raw.syscall == syscall::PROCESS_MADVISE {
                Syscall::ProcessMadvise
            } else {
                Syscall::Madvise
            },
            start: raw.start,
            len: raw.len,
            advice: raw.advice,
            pidfd: raw.pidfd,
            vlen: raw.vlen,
            flags: raw.flags,
            iovec_unreadable: raw.iovec_unreadable != 0,
            ret: raw.ret,
            area: AreaRaw {
                start: raw.area_start,
                end: raw.area_end,
                vm_flags: raw.area_vm_flags,
                gap: raw.area_gap,
                status: raw.area_status,
            },
        }
    }

    /// How long the call took, when known.
    pub fn duration(&self) -> Option<u64> {
        self.timed()
            .then_some(self.duration_ns)
            .filter(|&d| d != thptrace_common::NO_DURATION)
    }

    /// Whether the run timed its calls (`--no-durations` did not).
    pub fn timed(&self) -> bool {
        self.duration_ns != thptrace_common::NOT_TIMED
    }

    /// The errno of a failed call, `None` for one that succeeded.
    pub fn errno(&self) -> Option<i32> {
        (self.ret < 0).then(|| (-self.ret) as i32)
    }

    pub fn failed(&self) -> bool {
        self.ret < 0
    }

    /// `comm` as text, up to its first NUL.
    pub fn comm(&self) -> Cow<'_, str> {
        comm_str(&self.comm)
    }
}

/// The kernel-side counters, summed over CPUs (see `thptrace_common::counter`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Calls from traced processes that returned.
    pub calls: u64,
    /// Of those, calls that failed (restarts excluded).
    pub failures: u64,
    /// Events written to the ring buffer.
    pub sent: u64,
    /// Events dropped because the ring buffer was full.
    pub lost: u64,
    /// Calls interrupted and restarted (not failures).
    pub restarts: u64,
    /// Events whose call's duration is unknown (the call slept while another
    /// madvise ran on its CPU).
    pub no_duration: u64,
}

/// A kernel `comm` buffer as text: up to the first NUL, lossy for bytes that
/// are not UTF-8.
pub fn comm_str(comm: &[u8]) -> Cow<'_, str> {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..end])
}

/// Fills a `comm` buffer from text, truncating as the kernel does.
pub fn comm_from_str(text: &str) -> [u8; COMM_LEN] {
    let mut comm = [0u8; COMM_LEN];
    let bytes = text.as_bytes();
    let n = bytes.len().min(COMM_LEN - 1);
    comm[..n].copy_from_slice(&bytes[..n]);
    comm
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An event as the kernel would report `madvise(start, len, advice) = ret`
    /// from `criu[4242/4250]`; tests change what they need.
    pub fn sample(start: u64, len: u64, advice: i32, ret: i64) -> Event {
        Event {
            ts_boot_ns: 1_000_000_000,
            duration_ns: 4_000,
            tgid: 4242,
            tid: 4250,
            uid: 0,
            gid: 0,
            cpu: 1,
            cgroup_id: 1,
            comm: comm_from_str("criu"),
            syscall: Syscall::Madvise,
            start,
            len,
            advice,
            pidfd: -1,
            vlen: 0,
            flags: 0,
            iovec_unreadable: false,
            ret,
            area: AreaRaw::NONE,
        }
    }

    #[test]
    fn decodes_a_raw_event() {
        let mut raw = RawEvent::zeroed();
        raw.syscall = syscall::PROCESS_MADVISE;
        raw.ret = -22;
        raw.comm = comm_from_str("criu");
        raw.iovec_unreadable = 1;
        let e = Event::from_raw(&raw);
        assert_eq!(e.syscall, Syscall::ProcessMadvise);
        assert_eq!(e.errno(), Some(22));
        assert_eq!(e.comm(), "criu");
        assert!(e.iovec_unreadable);
    }

    #[test]
    fn comm_is_truncated_like_the_kernel() {
        let c = comm_from_str("a-very-long-process-name");
        assert_eq!(comm_str(&c), "a-very-long-pro");
        assert_eq!(sample(0, 0, 0, 0).errno(), None);
    }
}
