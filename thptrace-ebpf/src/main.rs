//! thptrace's kernel programs.
//!
//! `sys_enter_madvise` / `sys_enter_process_madvise` keep the arguments of calls
//! from the processes being traced in `INFLIGHT`, keyed by thread id; the
//! matching `sys_exit_*` program takes them back out and, when the call failed
//! (or `--all` is on), writes one [`RawEvent`] into the `EVENTS` ring buffer.
//! Successful calls never leave the kernel. Filters on pid, tid and advice run
//! at entry, the errno filter at exit, so filtered calls cost a map lookup.
//!
//! `task/task_newtask` follows forks for `thptrace -- COMMAND`: a new process
//! whose parent is traced is traced too.
//!
//! Built by `cargo xtask build-ebpf`; the object is committed and embedded in
//! the loader.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod programs {
    use aya_ebpf::{
        EbpfContext as _,
        helpers::{
            bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
            bpf_get_current_uid_gid, bpf_get_smp_processor_id, bpf_ktime_get_boot_ns,
            bpf_probe_read_user,
        },
        macros::{map, tracepoint},
        maps::{HashMap, PerCpuArray, RingBuf},
        programs::TracePointContext,
    };
    use aya_log_ebpf::warn;
    use thptrace_common::{Config, RESTART_MAX, RESTART_MIN, RawEvent, counter, flags, syscall};

    /// Written by the loader before load (`EbpfLoader::override_global`).
    #[unsafe(no_mangle)]
    static CONFIG: Config = Config {
        flags: 0,
        self_tgid: 0,
        newtask_pid_offset: 0,
        newtask_clone_flags_offset: 0,
    };

    /// Arguments of a call between its entry and its return.
    #[derive(Clone, Copy)]
    #[repr(C)]
    struct Inflight {
        ts_ns: u64,
        start: u64,
        len: u64,
        vlen: u64,
        advice: i32,
        pidfd: i32,
        flags: u32,
        syscall: u32,
        iovec_unreadable: u32,
        _pad: u32,
    }

    /// Room for this many threads inside madvise at once; the loader may
    /// resize it. Threads beyond it are counted as `MISSED`.
    #[map]
    static INFLIGHT: HashMap<u32, Inflight> = HashMap::with_max_entries(16384, 0);

    /// The loader sizes it (`--buffer-size`); this is only the default.
    #[map]
    static EVENTS: RingBuf = RingBuf::with_byte_size(64 * 1024 * 1024, 0);

    #[map]
    static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

    #[map]
    static PID_FILTER: HashMap<u32, u8> = HashMap::with_max_entries(4096, 0);
    #[map]
    static TID_FILTER: HashMap<u32, u8> = HashMap::with_max_entries(4096, 0);
    #[map]
    static ADVICE_FILTER: HashMap<u32, u8> = HashMap::with_max_entries(256, 0);
    #[map]
    static ERRNO_FILTER: HashMap<u32, u8> = HashMap::with_max_entries(256, 0);

    /// `CLONE_THREAD` from include/uapi/linux/sched.h.
    const CLONE_THREAD: u64 = 0x0001_0000;

    // Offsets in the syscall tracepoints' records. They are the same on every
    // kernel: an 8-byte common header, `int __syscall_nr`, then each argument
    // (and the return value) in an 8-byte slot from offset 16.
    const ARG0: usize = 16;
    const ARG1: usize = 24;
    const ARG2: usize = 32;
    const ARG3: usize = 40;
    const ARG4: usize = 48;
    const RET: usize = 16;

    #[inline(always)]
    fn config() -> Config {
        // SAFETY: CONFIG is a plain value; the volatile read stops the compiler
        // from folding in the zero default the loader overrides.
        unsafe { core::ptr::read_volatile(&CONFIG) }
    }

    /// Reads a field of the tracepoint record. Tracepoint programs may read
    /// their context directly, which is cheaper than a probe-read helper.
    #[inline(always)]
    fn field<T: Copy>(ctx: &TracePointContext, offset: usize) -> T {
        // SAFETY: the offsets above are inside every syscall tracepoint's
        // record and the verifier checks the access against the context size.
        unsafe { *(ctx.as_ptr().add(offset) as *const T) }
    }

    #[inline(always)]
    fn count(index: u32) {
        if let Some(slot) = COUNTERS.get_ptr_mut(index) {
            // SAFETY: per-CPU slot, and BPF programs do not migrate CPUs.
            unsafe { *slot += 1 };
        }
    }

    /// Whether the current task is one we trace.
    #[inline(always)]
    fn admitted(cfg: &Config, pid_tgid: u64) -> bool {
        let tgid = (pid_tgid >> 32) as u32;
        let tid = pid_tgid as u32;
        if tgid == cfg.self_tgid {
            return false;
        }
        if cfg.flags & flags::FILTER_PID != 0 && PID_FILTER.get_ptr(tgid).is_none() {
            return false;
        }
        if cfg.flags & flags::FILTER_TID != 0 && TID_FILTER.get_ptr(tid).is_none() {
            return false;
        }
        true
    }

    #[inline(always)]
    fn enter(ctx: &TracePointContext, which: u32) {
        let cfg = config();
        let pid_tgid = bpf_get_current_pid_tgid();
        if !admitted(&cfg, pid_tgid) {
            return;
        }
        // Both calls take `int behavior`, in its own 8-byte slot.
        let advice = if which == syscall::MADVISE {
            field::<u64>(ctx, ARG2) as i32
        } else {
            field::<u64>(ctx, ARG3) as i32
        };
        if cfg.flags & flags::FILTER_ADVICE != 0 && ADVICE_FILTER.get_ptr(advice as u32).is_none() {
            return;
        }
        let mut args = Inflight {
            ts_ns: unsafe { bpf_ktime_get_boot_ns() },
            start: 0,
            len: 0,
            vlen: 0,
            advice,
            pidfd: -1,
            flags: 0,
            syscall: which,
            iovec_unreadable: 0,
            _pad: 0,
        };
        if which == syscall::MADVISE {
            args.start = field::<u64>(ctx, ARG0);
            args.len = field::<u64>(ctx, ARG1);
        } else {
            args.pidfd = field::<u64>(ctx, ARG0) as i32;
            args.vlen = field::<u64>(ctx, ARG2);
            args.flags = field::<u64>(ctx, ARG4) as u32;
            let vec = field::<u64>(ctx, ARG1) as *const [u64; 2];
            // The first iovec: user memory, still valid at entry.
            match unsafe { bpf_probe_read_user(vec) } {
                Ok([base, len]) if args.vlen > 0 => {
                    args.start = base;
                    args.len = len;
                }
                Ok(_) => {}
                Err(_) => args.iovec_unreadable = 1,
            }
        }
        if INFLIGHT.insert(pid_tgid as u32, args, 0).is_err() {
            count(counter::MISSED);
            warn!(
                ctx,
                "in-flight map full: dropping a call of tid {}", pid_tgid as u32
            );
        }
    }

    #[inline(always)]
    fn exit(ctx: &TracePointContext) {
        let pid_tgid = bpf_get_current_pid_tgid();
        let tid = pid_tgid as u32;
        // No entry: the task is not traced (or the call began before we
        // attached).
        let Some(args) = INFLIGHT.get_ptr(tid) else {
            return;
        };
        // SAFETY: the entry is this thread's own; only this thread writes it.
        let args = unsafe { *args };
        let _ = INFLIGHT.remove(tid);
        count(counter::CALLS);

        let ret = field::<i64>(ctx, RET);
        if (RESTART_MIN..=RESTART_MAX).contains(&ret) {
            count(counter::RESTARTS);
            return;
        }
        let cfg = config();
        if ret < 0 {
            count(counter::FAILURES);
            if cfg.flags & flags::FILTER_ERRNO != 0 && ERRNO_FILTER.get_ptr((-ret) as u32).is_none()
            {
                return;
            }
        } else if cfg.flags & flags::REPORT_SUCCESS == 0 {
            return;
        }

        let Some(mut slot) = EVENTS.reserve::<RawEvent>(0) else {
            count(counter::LOST);
            return;
        };
        let now = unsafe { bpf_ktime_get_boot_ns() };
        let ids = bpf_get_current_uid_gid();
        let event = RawEvent {
            ts_ns: now,
            duration_ns: now.wrapping_sub(args.ts_ns),
            cgroup_id: unsafe { bpf_get_current_cgroup_id() },
            start: args.start,
            len: args.len,
            vlen: args.vlen,
            ret,
            tgid: (pid_tgid >> 32) as u32,
            tid,
            uid: ids as u32,
            gid: (ids >> 32) as u32,
            cpu: unsafe { bpf_get_smp_processor_id() },
            advice: args.advice,
            pidfd: args.pidfd,
            flags: args.flags,
            syscall: args.syscall,
            iovec_unreadable: args.iovec_unreadable,
            comm: bpf_get_current_comm().unwrap_or([0; 16]),
        };
        slot.write(event);
        slot.submit(0);
        count(counter::SENT);
    }

    #[tracepoint(category = "syscalls", name = "sys_enter_madvise")]
    pub fn sys_enter_madvise(ctx: TracePointContext) -> u32 {
        enter(&ctx, syscall::MADVISE);
        0
    }

    #[tracepoint(category = "syscalls", name = "sys_exit_madvise")]
    pub fn sys_exit_madvise(ctx: TracePointContext) -> u32 {
        exit(&ctx);
        0
    }

    #[tracepoint(category = "syscalls", name = "sys_enter_process_madvise")]
    pub fn sys_enter_process_madvise(ctx: TracePointContext) -> u32 {
        enter(&ctx, syscall::PROCESS_MADVISE);
        0
    }

    #[tracepoint(category = "syscalls", name = "sys_exit_process_madvise")]
    pub fn sys_exit_process_madvise(ctx: TracePointContext) -> u32 {
        exit(&ctx);
        0
    }

    /// Follows forks: a new process (not a thread) whose parent is traced.
    #[tracepoint(category = "task", name = "task_newtask")]
    pub fn task_newtask(ctx: TracePointContext) -> u32 {
        let cfg = config();
        if cfg.flags & flags::FOLLOW_FORKS == 0 {
            return 0;
        }
        let parent = (bpf_get_current_pid_tgid() >> 32) as u32;
        if PID_FILTER.get_ptr(parent).is_none() {
            return 0;
        }
        // The offsets come from tracefs; read through the helper so a bad
        // offset fails the read, not the verifier.
        let Ok(clone_flags) =
            (unsafe { ctx.read_at::<u64>(cfg.newtask_clone_flags_offset as usize) })
        else {
            return 0;
        };
        if clone_flags & CLONE_THREAD != 0 {
            return 0;
        }
        let Ok(child) = (unsafe { ctx.read_at::<i32>(cfg.newtask_pid_offset as usize) }) else {
            return 0;
        };
        if PID_FILTER.insert(child as u32, 1u8, 0).is_err() {
            warn!(&ctx, "pid filter full: not following new process {}", child);
        }
        0
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }
}

#[cfg(not(target_arch = "bpf"))]
fn main() {
    // Only the bpfel build is meaningful; this keeps `cargo check --workspace`
    // working on the host.
}
