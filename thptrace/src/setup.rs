//! Getting the host ready to trace, and turning the kernel's refusals into
//! messages that say what to do: privileges, tracefs, the locked-memory limit,
//! and the kernel options thptrace depends on.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// Where tracefs lives: its own mount point, or inside debugfs on old systems.
const TRACEFS_DIRS: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The kernel's own type information, which the kernel programs rely on.
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;
const CAP_SYS_ADMIN: u32 = 21;

/// Checks privileges, mounts tracefs if needed, raises the locked-memory limit
/// and checks that the syscall tracepoints exist. Call before loading.
pub fn prepare() -> Result<()> {
    check_privileges()?;
    if !Path::new(KERNEL_BTF).exists() {
        bail!(
            "this kernel has no BTF ({KERNEL_BTF} is missing): thptrace reads each call's arguments through it; use a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian's and most distributions' kernels are)"
        );
    }
    let tracefs = ensure_tracefs()?;
    raise_memlock();
    if !tracefs.join("events/syscalls/sys_enter_madvise").exists() {
        if !tracefs.join("events/syscalls").exists() {
            bail!(
                "this kernel has no system call tracepoints ({}/events/syscalls is missing): thptrace needs a kernel built with CONFIG_FTRACE_SYSCALLS=y",
                tracefs.display()
            );
        }
        bail!(
            "this kernel has no madvise tracepoint ({}/events/syscalls/sys_enter_madvise is missing): it is built without CONFIG_ADVISE_SYSCALLS, so madvise itself returns ENOSYS and cannot be traced",
            tracefs.display()
        );
    }
    Ok(())
}

/// The effective capability set of this process.
fn effective_caps() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

fn has_cap(caps: u64, cap: u32) -> bool {
    caps & (1 << cap) != 0
}

/// What this process may do, as far as loading BPF programs goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Privileges {
    pub euid: u32,
    pub cap_sys_admin: bool,
    pub cap_bpf: bool,
    pub cap_perfmon: bool,
}

impl Privileges {
    /// This process's effective user and capabilities.
    pub fn current() -> Privileges {
        let caps = effective_caps();
        Privileges {
            // SAFETY: geteuid has no preconditions.
            euid: unsafe { libc::geteuid() },
            cap_sys_admin: has_cap(caps, CAP_SYS_ADMIN),
            cap_bpf: has_cap(caps, CAP_BPF),
            cap_perfmon: has_cap(caps, CAP_PERFMON),
        }
    }

    /// Enough to load and attach tracepoint programs.
    pub fn sufficient(&self) -> bool {
        self.cap_sys_admin || (self.cap_bpf && self.cap_perfmon)
    }
}

fn check_privileges() -> Result<()> {
    if Privileges::current().sufficient() {
        return Ok(());
    }
    bail!(
        "thptrace needs root, or the capabilities CAP_BPF and CAP_PERFMON, to load its kernel programs: run it with sudo, or grant them once with `sudo setcap cap_bpf,cap_perfmon+ep {}`",
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "thptrace".into())
    )
}

/// Returns the tracefs directory, mounting tracefs when it is missing and we
/// are allowed to.
pub fn ensure_tracefs() -> Result<PathBuf> {
    if let Some(dir) = tracefs_dir() {
        return Ok(dir);
    }
    let target = TRACEFS_DIRS[0];
    let mounted = std::ffi::CString::new(target).ok().is_some_and(|t| {
        // SAFETY: plain mount(2) with NUL-terminated strings.
        unsafe {
            libc::mount(
                c"tracefs".as_ptr(),
                t.as_ptr(),
                c"tracefs".as_ptr(),
                0,
                std::ptr::null(),
            ) == 0
        }
    });
    if mounted && let Some(dir) = tracefs_dir() {
        log::info!("mounted tracefs on {target}");
        return Ok(dir);
    }
    let why = io::Error::last_os_error();
    bail!(
        "tracefs is not mounted and mounting it on {target} failed ({why}): mount it with `mount -t tracefs tracefs {target}`; if that fails too the kernel lacks CONFIG_TRACING"
    )
}

/// The tracefs directory, if tracefs is mounted (nothing is mounted here).
pub fn tracefs_dir() -> Option<PathBuf> {
    TRACEFS_DIRS
        .iter()
        .map(Path::new)
        .find(|d| d.join("events").is_dir())
        .map(Path::to_path_buf)
}

/// Whether `category/name` exists in tracefs.
pub fn tracepoint_exists(category: &str, name: &str) -> bool {
    tracefs_dir().is_some_and(|d| d.join("events").join(category).join(name).exists())
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; newer ones charge
/// the memory cgroup and ignore it. Raising it is harmless either way.
fn raise_memlock() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a valid struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        log::debug!(
            "could not raise RLIMIT_MEMLOCK: {}",
            io::Error::last_os_error()
        );
    }
}

/// Offsets of `pid` and `clone_flags` in `task/task_newtask`, from its format
/// file (they moved between kernels).
pub fn task_newtask_offsets() -> Result<(u32, u32)> {
    let Some(dir) = tracefs_dir() else {
        bail!("tracefs is not mounted: cannot follow forks");
    };
    let path = dir.join("events/task/task_newtask/format");
    let format = fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}: following forks needs the task/task_newtask tracepoint",
            path.display()
        )
    })?;
    let pid = field_offset(&format, "pid");
    let flags = field_offset(&format, "clone_flags");
    match (pid, flags) {
        (Some(p), Some(f)) => Ok((p, f)),
        _ => bail!(
            "{}: no `pid` or `clone_flags` field; cannot follow forks on this kernel: trace by pid with -p instead",
            path.display()
        ),
    }
}

/// The offset of a field in a tracepoint format file
/// (`field:pid_t pid; offset:8; size:4; signed:1;`).
pub fn field_offset(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let decl = line.trim().strip_prefix("field:")?;
        let (decl, rest) = decl.split_once(';')?;
        let name = decl.rsplit([' ', '*']).next()?;
        let name = name.split('[').next()?;
        if name != field {
            return None;
        }
        rest.split(';')
            .find_map(|p| p.trim().strip_prefix("offset:"))?
            .parse()
            .ok()
    })
}

/// The OS error at the bottom of an error chain, if any.
fn os_error(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>()
            && let Some(code) = io.raw_os_error()
        {
            return Some(code);
        }
        cur = err.source();
    }
    None
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        out.push_str(": ");
        out.push_str(&err.to_string());
        cur = err.source();
    }
    out
}

/// What a failure to load the object means, and what to do about it.
pub fn explain_load_error(e: &aya::EbpfError) -> String {
    let hint = match os_error(e) {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "the kernel refused: run as root (or with CAP_BPF and CAP_PERFMON); on kernels before 5.11 also raise the locked-memory limit (ulimit -l unlimited)"
        }
        Some(libc::ENOSYS) => "this kernel has no bpf() system call: it needs CONFIG_BPF_SYSCALL=y",
        Some(libc::EINVAL) => {
            "the kernel rejected a map: thptrace needs BPF ring buffers (Linux 5.8 or later); a --buffer-size must be a power of two and a multiple of the page size"
        }
        Some(libc::ENOMEM) => "not enough memory for the ring buffer: try a smaller --buffer-size",
        _ => "see `thptrace check` for what this host supports",
    };
    format!(
        "loading thptrace's kernel programs failed: {}; {hint}",
        chain(e)
    )
}

/// What a program the verifier or kernel refused means.
pub fn explain_program_error(name: &str, e: &aya::programs::ProgramError) -> String {
    let text = chain(e);
    format!(
        "the kernel refused thptrace's program {name}: {text}; {}",
        program_error_hint(os_error(e), &text)
    )
}

/// What to make of a refused program, from the error number and the
/// verifier's log.
fn program_error_hint(errno: Option<i32>, text: &str) -> &'static str {
    if errno == Some(libc::E2BIG) || text.contains("BPF program is too large") {
        "the verifier gave up: the program is too complex for this kernel's verifier (older kernels prune less); please report it with `thptrace check` and `uname -r` output"
    } else if matches!(errno, Some(libc::EPERM) | Some(libc::EACCES)) {
        "permission denied: run as root (or with CAP_BPF and CAP_PERFMON); lockdown can also forbid BPF"
    } else {
        "this kernel may lack BPF tracepoint programs (CONFIG_BPF_EVENTS) or the JIT (CONFIG_BPF_JIT); please report it with `thptrace check` output"
    }
}

/// What a failed attach means.
pub fn explain_attach_error(category: &str, name: &str, e: &aya::programs::ProgramError) -> String {
    let hint = match os_error(e) {
        Some(libc::ENOENT) => {
            "the tracepoint does not exist: the kernel needs CONFIG_FTRACE_SYSCALLS=y (and tracefs mounted)"
        }
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "permission denied: run as root (perf_event_paranoid and lockdown can also forbid tracepoints)"
        }
        _ => "see `thptrace check`",
    };
    format!(
        "attaching to the tracepoint {category}/{name} failed: {}; {hint}",
        chain(e)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEWTASK: &str = "name: task_newtask
ID: 150
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:pid_t pid;	offset:8;	size:4;	signed:1;
	field:char comm[16];	offset:12;	size:16;	signed:0;
	field:u64 clone_flags;	offset:32;	size:8;	signed:0;
";

    #[test]
    fn reads_field_offsets_from_a_format_file() {
        assert_eq!(field_offset(NEWTASK, "pid"), Some(8));
        assert_eq!(field_offset(NEWTASK, "comm"), Some(12));
        assert_eq!(field_offset(NEWTASK, "clone_flags"), Some(32));
        assert_eq!(field_offset(NEWTASK, "common_pid"), Some(4));
        assert_eq!(field_offset(NEWTASK, "oom_score_adj"), None);
    }

    #[test]
    fn program_errors_get_the_right_hint() {
        assert!(
            program_error_hint(Some(libc::E2BIG), "processed 1000001 insns")
                .contains("too complex")
        );
        assert!(
            program_error_hint(None, "BPF program is too large. Processed 1000001 insn")
                .contains("too complex")
        );
        assert!(program_error_hint(Some(libc::EPERM), "").contains("run as root"));
        assert!(program_error_hint(Some(libc::EINVAL), "").contains("CONFIG_BPF_EVENTS"));
    }

    #[test]
    fn capability_bits() {
        let caps = (1u64 << CAP_BPF) | (1 << CAP_PERFMON);
        assert!(has_cap(caps, CAP_BPF) && has_cap(caps, CAP_PERFMON));
        assert!(!has_cap(caps, CAP_SYS_ADMIN));
    }
}
