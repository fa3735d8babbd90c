//! thptrace's kernel programs.
//!
//! The work happens at `sys_exit_madvise` / `sys_exit_process_madvise`: the
//! return value is there, and the arguments are still in the task's saved
//! user registers (`bpf_task_pt_regs`; madvise never changes them), so
//! successful calls cost a filter check and a counter and never touch a hash
//! map. Only failures (or, with `--all`, every call) become an event in the
//! `EVENTS` ring buffer.
//!
//! Entry is seen through the raw `sys_enter` tracepoint, which costs a
//! fraction of a `syscalls/sys_enter_madvise` program (no perf record is
//! built): for madvise and process_madvise it only stamps the time in a
//! per-CPU slot tagged with the thread id, for the call's duration. Exit takes
//! the stamp if the tag is its own and clears it. A call that moved to
//! another CPU, or slept while another madvise ran on its CPU, finds no tag of
//! its own: it is reported with no duration rather than a wrong one (counted
//! as `NO_DURATION`), and it clears its tag wherever it was left, so no later
//! call can take a stale stamp.
//!
//! Reading arguments from pt_regs is x86-64 specific (on arm64 the first
//! argument register holds the return value at exit); so is this build.
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
    use aya_ebpf::helpers::generated::{
        bpf_get_current_comm as raw_get_current_comm,
        bpf_probe_read_kernel as raw_probe_read_kernel,
    };
    use aya_ebpf::{
        EbpfContext,
        bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
        helpers::{
            bpf_find_vma, bpf_get_current_cgroup_id, bpf_get_current_pid_tgid,
            bpf_get_current_task_btf, bpf_get_current_uid_gid, bpf_get_smp_processor_id,
            bpf_ktime_get_boot_ns, bpf_map_lookup_percpu_elem, bpf_probe_read_user,
            bpf_task_pt_regs,
        },
        macros::{map, raw_tracepoint, tracepoint},
        maps::{HashMap, PerCpuArray, RingBuf},
        programs::{RawTracePointContext, TracePointContext},
    };
    use aya_log_ebpf::warn;
    use core::ffi::c_void;
    use thptrace_common::{
        COMM_LEN, Config, NO_DURATION, NOT_TIMED, RESTART_MAX, RESTART_MIN, RawEvent,
        WAKE_INTERVAL_NS, area, counter, flags, syscall,
    };

    /// Programs that use GPL-only helpers (bpf_get_current_task_btf) must say
    /// so; "Dual MIT/GPL" is GPL-compatible.
    #[unsafe(link_section = "license")]
    #[unsafe(no_mangle)]
    static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

    /// Written by the loader before load (`EbpfLoader::override_global`).
    #[unsafe(no_mangle)]
    static CONFIG: Config = Config {
        flags: 0,
        self_tgid: 0,
        newtask_pid_offset: 0,
        newtask_clone_flags_offset: 0,
        wake_bytes: 0,
        nr_cpus: 0,
        vma_start_off: 0,
        vma_end_off: 0,
        vma_flags_off: 0,
        vma_file_off: 0,
        vma_ops_off: 0,
        task_pid_off: 0,
        task_tgid_off: 0,
        task_comm_off: 0,
        task_cred_off: 0,
        task_cgroups_off: 0,
        cred_uid_off: 0,
        cred_gid_off: 0,
        css_set_dfl_cgrp_off: 0,
        cgroup_kn_off: 0,
        kernfs_node_id_off: 0,
        _pad: 0,
    };

    /// Per-CPU state: the last entry's thread and time, and when this CPU
    /// last woke the loader.
    #[derive(Clone, Copy)]
    #[repr(C)]
    struct CpuState {
        entry_tid: u32,
        _pad: u32,
        entry_ns: u64,
        last_wake_ns: u64,
    }

    #[map]
    static CPU_STATE: PerCpuArray<CpuState> = PerCpuArray::with_max_entries(1, 0);

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

    /// The return value's offset in the syscall exit tracepoints' record
    /// (after the 8-byte common header and `int __syscall_nr`); the same on
    /// every kernel.
    const RET: usize = 16;

    /// x86-64 `struct pt_regs` (arch/x86/include/asm/ptrace.h), a stable
    /// layout: the registers the system call's arguments arrived in.
    #[derive(Clone, Copy)]
    #[repr(C)]
    struct PtRegs {
        r15: u64,
        r14: u64,
        r13: u64,
        r12: u64,
        bp: u64,
        bx: u64,
        r11: u64,
        r10: u64,
        r9: u64,
        r8: u64,
        ax: u64,
        cx: u64,
        dx: u64,
        si: u64,
        di: u64,
        orig_ax: u64,
        ip: u64,
        cs: u64,
        flags: u64,
        sp: u64,
        ss: u64,
    }

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

    /// Stamps the entry time for this thread on this CPU.
    #[inline(always)]
    fn enter() {
        if let Some(state) = CPU_STATE.get_ptr_mut(0) {
            // SAFETY: per-CPU slot; programs do not migrate CPUs.
            unsafe {
                (*state).entry_tid = bpf_get_current_pid_tgid() as u32;
                (*state).entry_ns = bpf_ktime_get_boot_ns();
            }
        }
    }

    #[inline(always)]
    fn exit(which: u32, ret: i64) {
        let cfg = config();
        let (task, pid_tgid) = current(&cfg);
        // Before the filters: every thread's stamp is taken back, so none is
        // left for a later thread with a reused id.
        let timed = cfg.flags & flags::UNTIMED == 0;
        let entry_ns = if timed {
            take_stamp(&cfg, pid_tgid as u32)
        } else {
            None
        };
        if !admitted(&cfg, pid_tgid) {
            return;
        }
        count(counter::CALLS);
        if (RESTART_MIN..=RESTART_MAX).contains(&ret) {
            count(counter::RESTARTS);
            return;
        }
        if ret < 0 {
            count(counter::FAILURES);
            if cfg.flags & flags::FILTER_ERRNO != 0 && ERRNO_FILTER.get_ptr((-ret) as u32).is_none()
            {
                return;
            }
        } else if cfg.flags & flags::REPORT_SUCCESS == 0 {
            return;
        }
        // Only calls that will be reported get this far.
        // Only reported calls read the clock.
        let now = unsafe { bpf_ktime_get_boot_ns() };
        let duration = match entry_ns {
            _ if !timed => NOT_TIMED,
            Some(t) if t != 0 && t <= now => now - t,
            _ => NO_DURATION,
        };
        report(&cfg, which, task, pid_tgid, ret, now, duration);
    }

    /// The current task as a typed kernel pointer (what helpers that take a
    /// task want).
    type Task = *mut aya_ebpf::bindings::task_struct;

    /// Loads the field `off` bytes into a typed kernel structure. The
    /// verifier checks the access against the kernel's BTF and makes it a
    /// fault-safe load; to it `off` is a constant (CONFIG is read-only data,
    /// frozen before the programs load), and it refuses an offset that is
    /// not a field of that size, which makes the loader fall back to the
    /// helpers.
    #[inline(always)]
    unsafe fn field_at<T: Copy>(base: *const u8, off: u32) -> T {
        // SAFETY: see above; the caller passes a BTF-typed pointer.
        unsafe { core::ptr::read_volatile(base.add(off as usize) as *const T) }
    }

    /// The current task and its `tgid << 32 | pid`. With
    /// [`flags::TASK_FIELDS`] the ids are read from the task (one helper
    /// call, whose task the event path uses again); otherwise the task is
    /// fetched only if an event needs it (null here).
    #[inline(always)]
    fn current(cfg: &Config) -> (Task, u64) {
        if cfg.flags & flags::TASK_FIELDS == 0 {
            return (core::ptr::null_mut(), bpf_get_current_pid_tgid());
        }
        // SAFETY: the current task, valid here; fields at their BTF offsets.
        unsafe {
            let task = bpf_get_current_task_btf();
            let t = task as *const u8;
            let pid: u32 = field_at(t, cfg.task_pid_off);
            let tgid: u32 = field_at(t, cfg.task_tgid_off);
            (task, (u64::from(tgid) << 32) | u64::from(pid))
        }
    }

    /// This call's entry time, if this CPU's stamp is this thread's; clears
    /// the thread's stamp wherever it is, so a later call cannot take it.
    #[inline(always)]
    fn take_stamp(cfg: &Config, tid: u32) -> Option<u64> {
        if let Some(state) = CPU_STATE.get_ptr_mut(0) {
            // SAFETY: per-CPU slot; programs do not migrate CPUs.
            let state = unsafe { &mut *state };
            if state.entry_tid == tid {
                state.entry_tid = 0;
                return Some(state.entry_ns);
            }
        }
        // The call moved between CPUs: its stamp, if any, is on another one.
        clear_stamps(cfg, tid);
        None
    }

    /// The most CPUs `clear_stamps` looks at (a bound for the verifier).
    const MAX_CPUS: u32 = 64;

    #[inline(never)]
    fn clear_stamps(cfg: &Config, tid: u32) {
        let key = 0u32;
        let map = core::ptr::addr_of!(CPU_STATE) as *mut core::ffi::c_void;
        for cpu in 0..MAX_CPUS {
            if cpu >= cfg.nr_cpus {
                break;
            }
            // SAFETY: the helper returns a pointer to that CPU's slot or null.
            let slot =
                unsafe { bpf_map_lookup_percpu_elem(map, core::ptr::addr_of!(key).cast(), cpu) }
                    as *mut CpuState;
            if !slot.is_null() && unsafe { (*slot).entry_tid } == tid {
                unsafe { (*slot).entry_tid = 0 };
            }
        }
    }

    /// Who made the call, beyond its ids.
    struct Who {
        uid: u32,
        gid: u32,
        cgroup_id: u64,
        /// The task's name as two words, with [`flags::TASK_FIELDS`] only.
        comm: [u64; 2],
    }

    /// The call's arguments, as the event carries them.
    struct Args {
        start: u64,
        len: u64,
        vlen: u64,
        advice: i32,
        pidfd: i32,
        flags: u32,
        iovec_unreadable: u32,
    }

    /// Reads the call's arguments from the task's saved user registers.
    #[inline(always)]
    fn read_args(which: u32, task: Task) -> Args {
        // SAFETY: a helper that takes the current task, which is valid here.
        let regs = unsafe { bpf_task_pt_regs(task) } as *const PtRegs;
        // The helper returns a typed kernel pointer (BTF `struct pt_regs`):
        // the verifier lets us load its fields directly, a fault-safe load
        // each, with no helper call and no copy of the whole structure.
        // SAFETY: loads of `pt_regs` fields at their BTF offsets.
        let reg = |r: *const u64| unsafe { core::ptr::read_volatile(r) };
        let (di, si, dx) = unsafe {
            (
                reg(core::ptr::addr_of!((*regs).di)),
                reg(core::ptr::addr_of!((*regs).si)),
                reg(core::ptr::addr_of!((*regs).dx)),
            )
        };
        if which == syscall::MADVISE {
            return Args {
                start: di,
                len: si,
                vlen: 0,
                advice: dx as i32,
                pidfd: -1,
                flags: 0,
                iovec_unreadable: 0,
            };
        }
        let (r10, r8) = unsafe {
            (
                reg(core::ptr::addr_of!((*regs).r10)),
                reg(core::ptr::addr_of!((*regs).r8)),
            )
        };
        let mut args = Args {
            start: 0,
            len: 0,
            vlen: dx,
            advice: r10 as i32,
            pidfd: di as i32,
            flags: r8 as u32,
            iovec_unreadable: 0,
        };
        if dx > 0 {
            // The first iovec, from the caller's memory.
            match unsafe { bpf_probe_read_user(si as *const [u64; 2]) } {
                Ok([base, len]) => {
                    args.start = base;
                    args.len = len;
                }
                Err(_) => args.iovec_unreadable = 1,
            }
        }
        args
    }

    #[inline(always)]
    fn report(
        cfg: &Config,
        which: u32,
        task: Task,
        pid_tgid: u64,
        ret: i64,
        now: u64,
        duration: u64,
    ) {
        let task = if cfg.flags & flags::TASK_FIELDS != 0 {
            task
        } else {
            // SAFETY: the current task, valid here.
            unsafe { bpf_get_current_task_btf() }
        };
        let args = read_args(which, task);
        if cfg.flags & flags::FILTER_ADVICE != 0
            && ADVICE_FILTER.get_ptr(args.advice as u32).is_none()
        {
            return;
        }
        let area = if cfg.flags & flags::AREA != 0
            && args.iovec_unreadable == 0
            && !rejected_before_memory(&args, ret)
        {
            look_up_area(&args, task)
        } else {
            Area::NONE
        };

        let Some(mut slot) = EVENTS.reserve::<RawEvent>(0) else {
            count(counter::LOST);
            return;
        };
        let mut wake = false;
        if let Some(state) = CPU_STATE.get_ptr_mut(0) {
            // SAFETY: per-CPU slot; programs do not migrate CPUs.
            let state = unsafe { &mut *state };
            if now.wrapping_sub(state.last_wake_ns) >= WAKE_INTERVAL_NS {
                state.last_wake_ns = now;
                wake = true;
            }
        }
        if duration == NO_DURATION {
            count(counter::NO_DURATION);
        }
        let who = if cfg.flags & flags::TASK_FIELDS != 0 {
            // SAFETY: the current task and the structures it points to
            // (RCU-protected, and a tracepoint program runs under RCU),
            // fields at their BTF offsets.
            unsafe {
                let t = task as *const u8;
                let cred: *const u8 = field_at(t, cfg.task_cred_off);
                let css_set: *const u8 = field_at(t, cfg.task_cgroups_off);
                let cgroup: *const u8 = field_at(css_set, cfg.css_set_dfl_cgrp_off);
                let kn: *const u8 = field_at(cgroup, cfg.cgroup_kn_off);
                Who {
                    uid: field_at(cred, cfg.cred_uid_off),
                    gid: field_at(cred, cfg.cred_gid_off),
                    cgroup_id: field_at(kn, cfg.kernfs_node_id_off),
                    comm: [
                        field_at(t, cfg.task_comm_off),
                        field_at(t, cfg.task_comm_off + 8),
                    ],
                }
            }
        } else {
            let ids = bpf_get_current_uid_gid();
            Who {
                uid: ids as u32,
                gid: (ids >> 32) as u32,
                // SAFETY: a helper with no arguments.
                cgroup_id: unsafe { bpf_get_current_cgroup_id() },
                comm: [0; 2],
            }
        };
        // Every field is written straight into the reserved record: building
        // the event on the stack first cost a 152-byte zeroing (a `memset`
        // subprogram call) and a copy on every failure.
        let e = slot.as_mut_ptr();
        // SAFETY: `e` is the reserved record, ours until submit; each field is
        // written exactly once.
        unsafe {
            use core::ptr::addr_of_mut as at;
            at!((*e).ts_ns).write(now);
            at!((*e).duration_ns).write(duration);
            at!((*e).cgroup_id).write(who.cgroup_id);
            at!((*e).start).write(args.start);
            at!((*e).len).write(args.len);
            at!((*e).vlen).write(args.vlen);
            at!((*e).ret).write(ret);
            at!((*e).tgid).write((pid_tgid >> 32) as u32);
            at!((*e).tid).write(pid_tgid as u32);
            at!((*e).uid).write(who.uid);
            at!((*e).gid).write(who.gid);
            at!((*e).cpu).write(bpf_get_smp_processor_id());
            at!((*e).advice).write(args.advice);
            at!((*e).pidfd).write(args.pidfd);
            at!((*e).flags).write(args.flags);
            at!((*e).syscall).write(which);
            at!((*e).iovec_unreadable).write(args.iovec_unreadable);
            if cfg.flags & flags::TASK_FIELDS != 0 {
                let comm = at!((*e).comm) as *mut [u64; 2];
                comm.write(who.comm);
            } else {
                // The helper writes the name into the record itself; on
                // failure it zeroes it.
                raw_get_current_comm(at!((*e).comm).cast(), COMM_LEN as u32);
            }
            at!((*e).area_start).write(area.start);
            at!((*e).area_end).write(area.end);
            at!((*e).area_vm_flags).write(area.vm_flags);
            at!((*e).area_gap).write(area.gap);
            at!((*e).area_status).write(area.status);
            at!((*e)._pad).write(0);
        }
        // Wake the loader only now and then, or when the buffer fills up: it
        // also drains on a timer.
        if !wake && EVENTS.query(BPF_RB_AVAIL_DATA.into()) >= u64::from(cfg.wake_bytes) {
            wake = true;
        }
        slot.submit(if wake {
            BPF_RB_FORCE_WAKEUP.into()
        } else {
            BPF_RB_NO_WAKEUP.into()
        });
        count(counter::SENT);
    }

    #[tracepoint(category = "syscalls", name = "sys_exit_madvise")]
    pub fn sys_exit_madvise(ctx: TracePointContext) -> u32 {
        exit(syscall::MADVISE, field::<i64>(&ctx, RET));
        0
    }

    #[tracepoint(category = "syscalls", name = "sys_exit_process_madvise")]
    pub fn sys_exit_process_madvise(ctx: TracePointContext) -> u32 {
        exit(syscall::PROCESS_MADVISE, field::<i64>(&ctx, RET));
        0
    }

    /// Whether madvise refused the call before looking at any memory, so its
    /// area cannot matter and is not looked up (the lookup takes the mm's
    /// lock and costs more than the rest of the event): EINVAL for an advice
    /// no kernel defines, or for a start that is not page-aligned
    /// (mm/madvise.c checks both first).
    #[inline(always)]
    fn rejected_before_memory(args: &Args, ret: i64) -> bool {
        const EINVAL: i64 = 22;
        const PAGE_MASK: u64 = 4096 - 1;
        if ret != -EINVAL {
            return false;
        }
        let advice = args.advice;
        let defined = (0..=4).contains(&advice)
            || (8..=25).contains(&advice)
            || (100..=103).contains(&advice);
        !defined || args.start & PAGE_MASK != 0
    }

    /// What `read_vma` fills in.
    #[repr(C)]
    struct VmaFields {
        start: u64,
        end: u64,
        flags: u64,
        file: u64,
        ops: u64,
    }

    /// `bpf_find_vma` callback: copies the fields the explanations need out
    /// of the area, at the offsets the loader read from the kernel's BTF.
    #[inline(never)]
    extern "C" fn read_vma(_task: *mut c_void, vma: *mut c_void, out: *mut c_void) -> i64 {
        let cfg = config();
        let vma = vma as *const u8;
        let out = out as *mut VmaFields;
        // The raw helper, its result ignored: a failed read leaves zeros.
        // No branch per field keeps the verifier's work small on older
        // kernels (6.1 walks every path through a callback separately).
        let read = |dst: *mut u64, off: u32| {
            // SAFETY: a probe read into the caller's VmaFields; a bad offset
            // reads as 0, never faults.
            unsafe {
                raw_probe_read_kernel(dst.cast(), 8, vma.add(off as usize).cast());
            }
        };
        // SAFETY: `out` is the caller's VmaFields on its stack.
        unsafe {
            read(core::ptr::addr_of_mut!((*out).start), cfg.vma_start_off);
            read(core::ptr::addr_of_mut!((*out).end), cfg.vma_end_off);
            read(core::ptr::addr_of_mut!((*out).flags), cfg.vma_flags_off);
            read(core::ptr::addr_of_mut!((*out).file), cfg.vma_file_off);
            read(core::ptr::addr_of_mut!((*out).ops), cfg.vma_ops_off);
        }
        0
    }

    /// Looks up the area containing `addr`: `Ok(None)` when no area does,
    /// `Err` when the lookup could not run (the mm was busy).
    #[inline(always)]
    fn find_area(task: Task, addr: u64) -> Result<Option<VmaFields>, ()> {
        let mut vma = VmaFields {
            start: 0,
            end: 0,
            flags: 0,
            file: 0,
            ops: 0,
        };
        // SAFETY: the callback only writes into `vma`.
        let found = unsafe {
            bpf_find_vma(
                task,
                addr,
                read_vma as *mut c_void,
                core::ptr::addr_of_mut!(vma).cast(),
                0,
            )
        };
        match found {
            0 => Ok(Some(vma)),
            r if r == -(ENOENT as i64) => Ok(None),
            _ => Err(()),
        }
    }

    /// What the event says of the call's memory: its `area_*` fields.
    struct Area {
        start: u64,
        end: u64,
        vm_flags: u64,
        gap: u64,
        status: u32,
    }

    impl Area {
        /// No lookup made (or it could not run).
        const NONE: Area = Area {
            start: 0,
            end: 0,
            vm_flags: 0,
            gap: 0,
            status: 0,
        };
    }

    /// The area containing the call's start, and whether areas cover the
    /// whole range (else where the first gap is).
    #[inline(always)]
    fn look_up_area(args: &Args, task: Task) -> Area {
        let Ok(first) = find_area(task, args.start) else {
            return Area::NONE;
        };
        let mut status = area::LOOKED_UP;
        let range_end = args.start.wrapping_add(args.len);
        let Some(vma) = first else {
            return Area {
                gap: args.start,
                status: status | area::GAP_FOUND,
                ..Area::NONE
            };
        };
        status |= area::START_MAPPED;
        let mut found = Area {
            start: vma.start,
            end: vma.end,
            vm_flags: vma.flags,
            ..Area::NONE
        };
        if vma.file != 0 {
            status |= area::FILE;
        }
        if vma.ops != 0 {
            status |= area::HAS_OPS;
        }
        if range_end >= args.start {
            // Follow the areas from the end of this one until the range is
            // covered or a gap shows (an overflowing range is not followed).
            let mut covered = vma.end;
            for _ in 0..area::GAP_STEPS {
                if covered >= range_end {
                    status |= area::FULLY_MAPPED;
                    break;
                }
                match find_area(task, covered) {
                    Ok(Some(next)) if next.end > covered => covered = next.end,
                    Ok(_) => {
                        found.gap = covered;
                        status |= area::GAP_FOUND;
                        break;
                    }
                    Err(()) => break,
                }
            }
        }
        found.status = status;
        found
    }

    const ENOENT: i32 = 2;

    /// x86-64 system call numbers.
    const NR_MADVISE: i64 = 28;
    const NR_PROCESS_MADVISE: i64 = 440;

    /// Every system call's entry: the id check is all other calls pay.
    /// (32-bit tasks number their calls differently; their madvise calls do
    /// not reach the syscall exit tracepoints at all, and a stamp they leave
    /// behind is never taken, see `take_duration`.)
    #[raw_tracepoint(tracepoint = "sys_enter")]
    pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
        let id: i64 = ctx.arg(1);
        if id == NR_MADVISE || id == NR_PROCESS_MADVISE {
            enter();
        }
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
