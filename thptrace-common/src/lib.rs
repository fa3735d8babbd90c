//! The records and configuration that cross between thptrace's kernel programs
//! and its loader.
//!
//! Everything here is `#[repr(C)]` and plain old data: the kernel side writes
//! these bytes into a ring buffer or reads them from a map, and the loader reads
//! them back byte for byte. Changing a layout means rebuilding the kernel object
//! (`cargo xtask build-ebpf`); CI fails when the committed object and these
//! sources disagree.
#![no_std]

/// Length of a task's `comm`, including the terminating NUL (`TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;

/// Which system call an event comes from.
pub mod syscall {
    pub const MADVISE: u32 = 0;
    pub const PROCESS_MADVISE: u32 = 1;
}

/// Bits of [`Config::flags`].
pub mod flags {
    /// Only tasks whose thread-group id is in the `PID_FILTER` map.
    pub const FILTER_PID: u32 = 1 << 0;
    /// Only tasks whose thread id is in the `TID_FILTER` map.
    pub const FILTER_TID: u32 = 1 << 1;
    /// Only calls whose advice is in the `ADVICE_FILTER` map.
    pub const FILTER_ADVICE: u32 = 1 << 2;
    /// Only failures whose errno is in the `ERRNO_FILTER` map.
    pub const FILTER_ERRNO: u32 = 1 << 3;
    /// Report calls that succeed too (`--all`).
    pub const REPORT_SUCCESS: u32 = 1 << 4;
    /// Add every new process forked by a traced process to `PID_FILTER`.
    pub const FOLLOW_FORKS: u32 = 1 << 5;
    /// Look up the memory area of each reported call (`bpf_find_vma`, with
    /// the `vm_area_struct` offsets in [`super::Config`]). Off on kernels
    /// without the helper or without BTF.
    pub const AREA: u32 = 1 << 6;
    /// Do not time calls (`--no-durations`): nothing is attached at system
    /// call entry, and events carry [`super::NOT_TIMED`].
    pub const UNTIMED: u32 = 1 << 7;
    /// Read the caller's ids, name, uid/gid and cgroup straight from its
    /// `task_struct`, at the offsets in [`super::Config`], instead of through
    /// four helper calls. Off when the kernel's BTF lacks a field or the
    /// verifier refuses the loads.
    pub const TASK_FIELDS: u32 = 1 << 8;
}

/// Indices of the per-CPU `COUNTERS` array. Every number the loader reports as
/// seen, sent or lost comes from here, never from a guess in user space.
pub mod counter {
    /// Calls that passed the process filters and returned (succeeded or not).
    pub const CALLS: u32 = 0;
    /// Calls among those that failed (restarts excluded).
    pub const FAILURES: u32 = 1;
    /// Events written to the ring buffer.
    pub const SENT: u32 = 2;
    /// Events dropped because the ring buffer was full.
    pub const LOST: u32 = 3;
    /// Calls that returned -ERESTARTSYS..-ERESTART_RESTARTBLOCK (-512..-517):
    /// they run again, so they are not failures.
    pub const RESTARTS: u32 = 4;
    /// Calls whose duration is unknown: another madvise started on the same
    /// CPU between this call's entry and its return (the call slept). They are
    /// still reported, with no duration.
    pub const NO_DURATION: u32 = 5;
    /// How many counters there are.
    pub const COUNT: u32 = 6;
}

/// Return values that mean "restart this call" (-ERESTARTSYS down to
/// -ERESTART_RESTARTBLOCK): the call runs again, so it is not a failure.
pub const RESTART_MIN: i64 = -517;
pub const RESTART_MAX: i64 = -512;

/// Configuration the loader writes into the kernel object's read-only data
/// before loading it, so the verifier can prune the branches it turns off.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// [`flags`] bits.
    pub flags: u32,
    /// The loader's own process: never traced, or it would trace itself.
    pub self_tgid: u32,
    /// Offsets of `pid` and `clone_flags` in the `task/task_newtask`
    /// tracepoint's record, read from tracefs at start-up (they differ between
    /// kernels). Only used with [`flags::FOLLOW_FORKS`].
    pub newtask_pid_offset: u32,
    pub newtask_clone_flags_offset: u32,
    /// Wake the loader when this many bytes wait in the ring buffer. Below
    /// that, events wake it at most once per [`WAKE_INTERVAL_NS`] per CPU:
    /// a wake-up per event would cost more than the event itself.
    pub wake_bytes: u32,
    /// Number of possible CPUs (the per-CPU maps' width).
    pub nr_cpus: u32,
    /// Byte offsets in `struct vm_area_struct` of `vm_start`, `vm_end`,
    /// `vm_flags`, `vm_file` and `vm_ops`, from the kernel's BTF.
    pub vma_start_off: u32,
    pub vma_end_off: u32,
    pub vma_flags_off: u32,
    pub vma_file_off: u32,
    pub vma_ops_off: u32,
    /// Byte offsets, from the kernel's BTF, of what [`flags::TASK_FIELDS`]
    /// reads: `task_struct`'s `pid`, `tgid`, `comm`, `cred` and `cgroups`;
    /// `cred`'s `uid` and `gid`; `css_set`'s `dfl_cgrp`; `cgroup`'s `kn`;
    /// `kernfs_node`'s `id` (the cgroup id).
    pub task_pid_off: u32,
    pub task_tgid_off: u32,
    pub task_comm_off: u32,
    pub task_cred_off: u32,
    pub task_cgroups_off: u32,
    pub cred_uid_off: u32,
    pub cred_gid_off: u32,
    pub css_set_dfl_cgrp_off: u32,
    pub cgroup_kn_off: u32,
    pub kernfs_node_id_off: u32,
    pub _pad: u32,
}

/// Bits of [`RawEvent::area_status`].
pub mod area {
    /// The lookup ran (the rest means something).
    pub const LOOKED_UP: u32 = 1 << 0;
    /// An area contains the call's start; `area_*` describe it.
    pub const START_MAPPED: u32 = 1 << 1;
    /// Areas cover the whole range, without a gap.
    pub const FULLY_MAPPED: u32 = 1 << 2;
    /// The area has a file (`vm_file`; shmem and shared anonymous memory too).
    pub const FILE: u32 = 1 << 3;
    /// The area has `vm_ops` (so it is not anonymous in the kernel's sense).
    pub const HAS_OPS: u32 = 1 << 4;
    /// A gap was found: `area_gap` is the first unmapped address of the
    /// range (the lookup follows at most [`GAP_STEPS`] areas).
    pub const GAP_FOUND: u32 = 1 << 5;
    /// How many areas past the start the gap search follows.
    pub const GAP_STEPS: u32 = 1;
}

/// See [`Config::wake_bytes`]. The loader also drains the ring buffer on a
/// timer, so an event that did not wake it waits at most that long.
pub const WAKE_INTERVAL_NS: u64 = 5_000_000;

/// [`RawEvent::duration_ns`] when the duration is unknown.
pub const NO_DURATION: u64 = u64::MAX;

/// [`RawEvent::duration_ns`] when the run did not time calls
/// ([`flags::UNTIMED`]).
pub const NOT_TIMED: u64 = u64::MAX - 1;

/// One traced call, as the kernel reports it. Written into the `EVENTS` ring
/// buffer when a call fails (or, with [`flags::REPORT_SUCCESS`], returns).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawEvent {
    /// `CLOCK_BOOTTIME` when the call returned, in nanoseconds.
    pub ts_ns: u64,
    /// Time from entry to return, in nanoseconds, or [`NO_DURATION`], or
    /// [`NOT_TIMED`].
    pub duration_ns: u64,
    pub cgroup_id: u64,
    /// madvise: `start`; process_madvise: the first iovec's base.
    pub start: u64,
    /// madvise: `len_in`; process_madvise: the first iovec's length.
    pub len: u64,
    /// process_madvise: the iovec count (`vlen`); 0 for madvise.
    pub vlen: u64,
    /// The raw return value (`-errno` on failure).
    pub ret: i64,
    pub tgid: u32,
    pub tid: u32,
    pub uid: u32,
    pub gid: u32,
    pub cpu: u32,
    /// The advice (`behavior`) as the kernel reads it: a C `int`.
    pub advice: i32,
    /// process_madvise: the pidfd; -1 for madvise.
    pub pidfd: i32,
    /// process_madvise: the flags; 0 for madvise.
    pub flags: u32,
    /// One of [`syscall`].
    pub syscall: u32,
    /// Set when reading the first iovec failed (process_madvise only).
    pub iovec_unreadable: u32,
    pub comm: [u8; COMM_LEN],
    /// The memory area containing `start` (when [`area::START_MAPPED`]).
    pub area_start: u64,
    pub area_end: u64,
    /// Its raw `vm_flags`.
    pub area_vm_flags: u64,
    /// The first unmapped address in the range (with [`area::GAP_FOUND`]).
    pub area_gap: u64,
    /// [`area`] bits; 0 when no lookup was made.
    pub area_status: u32,
    pub _pad: u32,
}

impl RawEvent {
    pub const fn zeroed() -> Self {
        Self {
            ts_ns: 0,
            duration_ns: 0,
            cgroup_id: 0,
            start: 0,
            len: 0,
            vlen: 0,
            ret: 0,
            tgid: 0,
            tid: 0,
            uid: 0,
            gid: 0,
            cpu: 0,
            advice: 0,
            pidfd: -1,
            flags: 0,
            syscall: 0,
            iovec_unreadable: 0,
            comm: [0; COMM_LEN],
            area_start: 0,
            area_end: 0,
            area_vm_flags: 0,
            area_gap: 0,
            area_status: 0,
            _pad: 0,
        }
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: both are `#[repr(C)]`, contain only integers and integer arrays,
    // and have no padding (checked by the size assertions below).
    unsafe impl aya::Pod for super::Config {}
    unsafe impl aya::Pod for super::RawEvent {}
}

// The layouts are shared with code compiled for another target: pin their
// sizes so an accidental change (and hidden padding) fails to build.
const _: () = assert!(core::mem::size_of::<Config>() == 88);
const _: () = assert!(core::mem::size_of::<RawEvent>() == 56 + 40 + 16 + 40);
