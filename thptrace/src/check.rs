//! `thptrace check`: can this host trace failing madvise calls, and what does
//! its kernel's madvise accept? In the spirit of `criu check`.
//!
//! First the environment (privileges, the bpf() system call, ring buffers,
//! tracepoint programs, tracefs, the syscall tracepoints, BTF), then the host
//! facts that change what madvise accepts, then a live self-test: load the
//! real kernel programs filtered to a child process, let the child make a
//! madvise call that must fail (advice 9999, EINVAL), and confirm the event
//! arrives, decodes and is explained. The exit status is 0 only when the
//! self-test passes: that is the one proof that tracing works.
//!
//! Each environment check is a plain function of what was read, so the
//! verdicts and the rendering are unit-tested with fake inputs; only
//! [`gather`] and [`self_test`] touch the host.

use std::fmt::Write as _;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::CheckArgs;
use crate::clock::Clock;
use crate::decode::{advice_name, errno_name};
use crate::event::{Event, Syscall};
use crate::explain::{Call, Explanation, explain};
use crate::format::{Format, Formatter};
use crate::host::{Fact, HostFacts, Tri};
use crate::probe::{BpfFeature, BpfFeatures, Probe, ProbeConfig};
use crate::setup::{self, Privileges};

/// The advice the self-test's child passes: no kernel defines it, so every
/// kernel fails the call with EINVAL before looking at memory.
pub const SELF_TEST_ADVICE: i32 = 9999;

/// How long the self-test waits for its event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

/// A small ring buffer is plenty for one event (a power of two, and a
/// multiple of every page size Linux uses).
const SELF_TEST_BUFFER: u32 = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Fail,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Item {
    /// Stable name, for scripts.
    pub name: String,
    /// How the report labels it.
    #[serde(skip)]
    pub label: String,
    pub status: Status,
    /// One line: what was found.
    pub detail: String,
    /// What to do about a warning or failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Item {
    fn new(name: &str, label: &str, status: Status, detail: impl Into<String>) -> Item {
        Item {
            name: name.into(),
            label: label.into(),
            status,
            detail: detail.into(),
            fix: None,
        }
    }

    fn ok(name: &str, label: &str, detail: impl Into<String>) -> Item {
        Item::new(name, label, Status::Ok, detail)
    }

    fn warn(name: &str, label: &str, detail: impl Into<String>, fix: impl Into<String>) -> Item {
        Item::new(name, label, Status::Warning, detail).fix(fix)
    }

    fn fail(name: &str, label: &str, detail: impl Into<String>, fix: impl Into<String>) -> Item {
        Item::new(name, label, Status::Fail, detail).fix(fix)
    }

    fn fix(mut self, fix: impl Into<String>) -> Item {
        self.fix = Some(fix.into());
        self
    }
}

/// What the self-test did and found.
#[derive(Clone, Debug, Serialize)]
pub struct SelfTest {
    pub passed: bool,
    /// Why it did not run, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub steps: Vec<Item>,
    /// The event as thptrace prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
}

impl SelfTest {
    pub fn skipped(why: impl Into<String>) -> SelfTest {
        SelfTest {
            passed: false,
            skipped: Some(why.into()),
            steps: Vec::new(),
            line: None,
            explanation: None,
        }
    }
}

/// The whole report.
#[derive(Clone, Debug)]
pub struct Report {
    pub environment: Vec<Item>,
    pub facts: HostFacts,
    pub fact_items: Vec<Item>,
    pub self_test: SelfTest,
}

impl Report {
    /// Tracing works: the self-test passed.
    pub fn ok(&self) -> bool {
        self.self_test.passed
    }
}

/// Runs `thptrace check`; returns the exit status.
pub async fn run(args: &CheckArgs) -> Result<i32> {
    let (environment, ready) = gather();
    let facts = HostFacts::read(Path::new("/"));
    let fact_items = fact_items(&facts);
    let self_test = if ready {
        self_test(&facts).await
    } else {
        SelfTest::skipped(
            "an environment check above failed; fix it and run `thptrace check` again",
        )
    };
    let report = Report {
        environment,
        facts,
        fact_items,
        self_test,
    };
    let text = if args.json {
        format!("{}\n", to_json(&report))
    } else {
        render(&report)
    };
    crate::explain_cmd::print_out(&text)?;
    Ok(if report.ok() { 0 } else { 1 })
}

/// Checks the environment; returns the items and whether nothing failed
/// (so the self-test can run). May mount tracefs, as tracing would.
pub fn gather() -> (Vec<Item>, bool) {
    let privileges = Privileges::current();
    let mut items = vec![privileges_item(&privileges)];
    if privileges.sufficient() {
        items.extend(bpf_items(&crate::probe::probe_bpf_features()));
    } else {
        items.push(Item::fail(
            "bpf",
            "BPF support",
            "not probed: the kernel lets only privileged processes use bpf()",
            "run `thptrace check` as root",
        ));
    }
    let was_mounted = setup::tracefs_dir();
    let tracefs = match &was_mounted {
        Some(dir) => Ok(dir.clone()),
        None => setup::ensure_tracefs().map_err(|e| e.to_string()),
    };
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    items.push(tracefs_item(
        &tracefs,
        was_mounted.is_some(),
        tracefs_mount_point(&mounts).as_deref(),
    ));
    items.extend(tracepoint_items(
        tracefs.as_ref().ok().map(PathBuf::as_path),
    ));
    items.push(btf_item(Path::new("/")));
    let ready = items.iter().all(|i| i.status != Status::Fail);
    (items, ready)
}

pub fn privileges_item(p: &Privileges) -> Item {
    let label = "privileges";
    let caps = |p: &Privileges| {
        let mut v = Vec::new();
        if p.cap_sys_admin {
            v.push("CAP_SYS_ADMIN");
        }
        if p.cap_bpf {
            v.push("CAP_BPF");
        }
        if p.cap_perfmon {
            v.push("CAP_PERFMON");
        }
        if v.is_empty() {
            "none of CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON".to_string()
        } else {
            v.join(", ")
        }
    };
    if p.sufficient() {
        let who = if p.euid == 0 {
            "root".to_string()
        } else {
            format!("uid {}", p.euid)
        };
        Item::ok(label, label, format!("{who} with {}", caps(p)))
    } else {
        Item::fail(
            label,
            label,
            format!("uid {} with {}: cannot load BPF programs", p.euid, caps(p)),
            "run thptrace as root, or grant it once with `sudo setcap cap_bpf,cap_perfmon+ep $(command -v thptrace)`",
        )
    }
}

/// One BPF feature's check: its item name and label, what to say when it
/// works, and what is missing (and the fix) when the kernel lacks it.
struct FeatureCheck {
    name: &'static str,
    label: &'static str,
    supported: &'static str,
    unsupported: &'static str,
    fix: &'static str,
}

const FEATURE_CHECKS: [FeatureCheck; 3] = [
    FeatureCheck {
        name: "bpf_syscall",
        label: "bpf() system call",
        supported: "available",
        unsupported: "the kernel offers no array maps",
        fix: "use a kernel built with CONFIG_BPF_SYSCALL=y",
    },
    FeatureCheck {
        name: "ring_buffer",
        label: "BPF ring buffer",
        supported: "supported (BPF_MAP_TYPE_RINGBUF)",
        unsupported: "not supported: this kernel predates BPF ring buffers",
        fix: "thptrace needs Linux 5.8 or later",
    },
    FeatureCheck {
        name: "tracepoint_programs",
        label: "tracepoint programs",
        supported: "supported (BPF_PROG_TYPE_TRACEPOINT)",
        unsupported: "not supported",
        fix: "use a kernel built with CONFIG_BPF_EVENTS=y",
    },
];

pub fn bpf_items(f: &BpfFeatures) -> Vec<Item> {
    let probed = [&f.syscall, &f.ring_buffer, &f.tracepoint_programs];
    FEATURE_CHECKS
        .iter()
        .zip(probed)
        .map(|(c, feature)| match feature {
            BpfFeature::Supported => Item::ok(c.name, c.label, c.supported),
            BpfFeature::Unsupported => Item::fail(c.name, c.label, c.unsupported, c.fix),
            BpfFeature::Failed { errno, message } => {
                let fix = match errno {
                    Some(libc::ENOSYS) => {
                        "this kernel has no bpf() system call: use a kernel built with CONFIG_BPF_SYSCALL=y"
                    }
                    Some(libc::EPERM) | Some(libc::EACCES) => {
                        "the kernel refused bpf(): run as root; check kernel lockdown (/sys/kernel/security/lockdown) and any seccomp filter of a container"
                    }
                    _ => "see the message; rerun with -v, and report it with this output",
                };
                Item::fail(c.name, c.label, format!("probe failed: {message}"), fix)
            }
        })
        .collect()
}

/// Where /proc/self/mounts says tracefs is mounted (first mount point).
pub fn tracefs_mount_point(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_, at, kind) = (f.next()?, f.next()?, f.next()?);
        (kind == "tracefs").then(|| PathBuf::from(at))
    })
}

/// `tracefs`: the directory found or mounted, or why neither worked;
/// `mounted_at` is where the mount table has it (it may be there but
/// unreadable to this user).
pub fn tracefs_item(
    tracefs: &Result<PathBuf, String>,
    was_mounted: bool,
    mounted_at: Option<&Path>,
) -> Item {
    match (tracefs, mounted_at) {
        (Ok(dir), _) if was_mounted => Item::ok("tracefs", "tracefs", format!("{}", dir.display())),
        (Ok(dir), _) => Item::ok(
            "tracefs",
            "tracefs",
            format!("was not mounted; mounted it on {}", dir.display()),
        ),
        (Err(_), Some(at)) => Item::fail(
            "tracefs",
            "tracefs",
            format!(
                "mounted on {}, but this user cannot read its events directory",
                at.display()
            ),
            "run thptrace as root: tracefs is readable by root only",
        ),
        // ensure_tracefs's message says what failed and what to do.
        (Err(e), None) => Item::fail(
            "tracefs",
            "tracefs",
            e.clone(),
            "mount it with `mount -t tracefs tracefs /sys/kernel/tracing` as root",
        ),
    }
}

/// The syscall tracepoints under `tracefs` (None: tracefs is not there).
pub fn tracepoint_items(tracefs: Option<&Path>) -> Vec<Item> {
    let Some(dir) = tracefs else {
        return vec![Item::fail(
            "tracepoints",
            "syscall tracepoints",
            "not checked: tracefs cannot be read",
            "see tracefs above",
        )];
    };
    let events = dir.join("events/syscalls");
    let have = |name: &str| events.join(name).join("id").exists() || events.join(name).is_dir();
    let pair = |call: &str| {
        (
            have(&format!("sys_enter_{call}")),
            have(&format!("sys_exit_{call}")),
        )
    };
    let shown = format!("{}/sys_{{enter,exit}}", events.display());
    let madvise = match pair("madvise") {
        (true, true) => Item::ok(
            "tracepoint_madvise",
            "madvise tracepoints",
            format!("{shown}_madvise"),
        ),
        _ if !events.is_dir() => Item::fail(
            "tracepoint_madvise",
            "madvise tracepoints",
            format!(
                "{} is missing: no system call tracepoints",
                events.display()
            ),
            "use a kernel built with CONFIG_FTRACE_SYSCALLS=y",
        ),
        _ => Item::fail(
            "tracepoint_madvise",
            "madvise tracepoints",
            format!("{shown}_madvise missing"),
            "the kernel is built without CONFIG_ADVISE_SYSCALLS: madvise itself returns ENOSYS there, so there is nothing to trace",
        ),
    };
    let process = match pair("process_madvise") {
        (true, true) => Item::ok(
            "tracepoint_process_madvise",
            "process_madvise tracepoints",
            format!("{shown}_process_madvise"),
        ),
        _ => Item::warn(
            "tracepoint_process_madvise",
            "process_madvise tracepoints",
            format!("{shown}_process_madvise missing: only madvise will be traced"),
            "process_madvise came in Linux 5.10; nothing to do unless you need it",
        ),
    };
    vec![madvise, process]
}

/// BTF of the running kernel under `root`.
pub fn btf_item(root: &Path) -> Item {
    let path = root.join("sys/kernel/btf/vmlinux");
    match std::fs::metadata(&path) {
        Ok(m) => Item::ok(
            "btf",
            "kernel BTF",
            format!(
                "/sys/kernel/btf/vmlinux ({} KiB): memory-area details can be read",
                m.len() / 1024
            ),
        ),
        Err(e) => Item::warn(
            "btf",
            "kernel BTF",
            format!("/sys/kernel/btf/vmlinux: {e}: events will carry no memory-area details"),
            "use a kernel built with CONFIG_DEBUG_INFO_BTF=y for memory-area details; tracing works without",
        ),
    }
}

fn tri_word(t: Tri) -> &'static str {
    match t {
        Tri::Yes => "yes",
        Tri::No => "no",
        Tri::Unknown => "unknown",
    }
}

/// One build option madvise depends on.
fn feature_item(
    name: &str,
    label: &str,
    fact: &Fact,
    extra: &str,
    yes: &str,
    no: (Status, &str),
) -> Item {
    let what = format!("{}{extra} [{}]", tri_word(fact.value), fact.source);
    match fact.value {
        Tri::Yes => Item::ok(name, label, format!("{what}: {yes}")),
        Tri::No => Item::new(name, label, no.0, format!("{what}: {}", no.1)),
        Tri::Unknown => Item::warn(
            name,
            label,
            format!("{what}: explanations that depend on it will say `possible`"),
            "mount sysfs and procfs, or provide the kernel config (/proc/config.gz or /boot/config-RELEASE)",
        ),
    }
}

/// The host facts that change what madvise accepts. Unknown facts are
/// warnings (explanations get less sure); a kernel without THP is a warning
/// too, as it rejects advice CRIU replays.
pub fn fact_items(f: &HostFacts) -> Vec<Item> {
    let mut items = Vec::new();
    match &f.kernel_release {
        Some(r) => items.push(Item::ok(
            "kernel",
            "kernel",
            format!(
                "{r} ({}); config: {}",
                f.machine.as_deref().unwrap_or("architecture unknown"),
                f.config_source.as_deref().unwrap_or("not found")
            ),
        )),
        None => items.push(Item::warn(
            "kernel",
            "kernel",
            "release unknown: /proc/sys/kernel/osrelease is unreadable",
            "mount procfs on /proc",
        )),
    }
    match f.page_size {
        Some(p) => items.push(Item::ok(
            "page_size",
            "page size",
            format!("{p} bytes: madvise rejects a start that is not a multiple of it"),
        )),
        None => items.push(Item::warn(
            "page_size",
            "page size",
            "unknown",
            "report this: sysconf(_SC_PAGESIZE) failed",
        )),
    }
    let mode = match (&f.thp.value, &f.thp_mode) {
        (Tri::Yes, Some(m)) => format!(", mode {m}"),
        _ => String::new(),
    };
    items.push(feature_item(
        "thp",
        "transparent huge pages",
        &f.thp,
        &mode,
        "madvise accepts MADV_HUGEPAGE, MADV_NOHUGEPAGE and MADV_COLLAPSE",
        (
            Status::Warning,
            "madvise rejects MADV_HUGEPAGE, MADV_NOHUGEPAGE and MADV_COLLAPSE with EINVAL; restoring CRIU images whose areas carry these flags fails here",
        ),
    ));
    if let Some(item) = items.last_mut()
        && f.thp.is_no()
    {
        item.fix = Some(
            "to restore such CRIU images, use a kernel built with CONFIG_TRANSPARENT_HUGEPAGE=y, or dump them on a kernel with commit 7190b3c8bd2b".into(),
        );
    }
    items.push(feature_item(
        "ksm",
        "KSM",
        &f.ksm,
        "",
        "madvise accepts MADV_MERGEABLE and MADV_UNMERGEABLE",
        (
            Status::Ok,
            "madvise rejects MADV_MERGEABLE and MADV_UNMERGEABLE with EINVAL",
        ),
    ));
    items.push(feature_item(
        "memory_failure",
        "memory failure",
        &f.memory_failure,
        "",
        "madvise accepts MADV_HWPOISON and MADV_SOFT_OFFLINE (with CAP_SYS_ADMIN)",
        (
            Status::Ok,
            "madvise rejects MADV_HWPOISON and MADV_SOFT_OFFLINE with EINVAL",
        ),
    ));
    let active = match f.swap_active.value {
        Tri::Yes => ", swap in use",
        Tri::No => ", no swap in use",
        Tri::Unknown => "",
    };
    items.push(feature_item(
        "swap",
        "swap support",
        &f.swap,
        active,
        "MADV_WILLNEED works on anonymous memory",
        (
            Status::Ok,
            "MADV_WILLNEED on anonymous memory fails with EBADF",
        ),
    ));
    items
}

// ---- The live self-test -------------------------------------------------

/// A forked child holding before its madvise call until released.
struct HeldChild {
    pid: i32,
    go: Option<OwnedFd>,
    reaped: bool,
}

impl HeldChild {
    /// Forks a child that, once released, calls
    /// `madvise(addr, len, SELF_TEST_ADVICE)` and exits with the errno it got
    /// (100 if the call succeeded, 126 if never released).
    fn fork(addr: usize, len: usize) -> io::Result<HeldChild> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 with a valid two-element array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and are ours alone.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: the child calls only async-signal-safe functions (close,
        // read, madvise, _exit) on values prepared before the fork.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            unsafe {
                libc::close(write.as_raw_fd());
                let mut byte = 0u8;
                if libc::read(read.as_raw_fd(), (&mut byte as *mut u8).cast(), 1) != 1 {
                    libc::_exit(126);
                }
                let ret = libc::madvise(addr as *mut libc::c_void, len, SELF_TEST_ADVICE);
                let code = if ret == 0 {
                    100
                } else {
                    (*libc::__errno_location()).clamp(1, 99)
                };
                libc::_exit(code);
            }
        }
        drop(read);
        Ok(HeldChild {
            pid,
            go: Some(write),
            reaped: false,
        })
    }

    fn release(&mut self) {
        if let Some(go) = self.go.take() {
            let byte = 1u8;
            // SAFETY: writing one byte from a valid buffer.
            unsafe { libc::write(go.as_raw_fd(), (&byte as *const u8).cast(), 1) };
        }
    }

    /// Waits for the child; returns its exit code (or 128 + signal).
    fn wait(&mut self) -> i32 {
        self.go.take();
        let mut status = 0;
        // SAFETY: waitpid on our own child.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
        self.reaped = true;
        if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else if libc::WIFSIGNALED(status) {
            128 + libc::WTERMSIG(status)
        } else {
            1
        }
    }
}

impl Drop for HeldChild {
    fn drop(&mut self) {
        if !self.reaped {
            // Closing the pipe unreleased makes the child exit at once.
            self.wait();
        }
    }
}

/// One anonymous page, unmapped on drop.
struct Page {
    addr: usize,
    len: usize,
}

impl Page {
    fn map(len: usize) -> io::Result<Page> {
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Page {
            addr: p as usize,
            len,
        })
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping this value made.
        unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len) };
    }
}

/// Loads the kernel programs filtered to a child, has the child make a
/// call that must fail, and checks the event end to end.
pub async fn self_test(facts: &HostFacts) -> SelfTest {
    let mut t = SelfTest {
        passed: false,
        skipped: None,
        steps: Vec::new(),
        line: None,
        explanation: None,
    };
    let step = |t: &mut SelfTest, item: Item| {
        let failed = item.status == Status::Fail;
        t.steps.push(item);
        failed
    };
    if let Err(e) = setup::prepare() {
        step(
            &mut t,
            Item::fail("prepare", "set-up", format!("{e:#}"), "see the message"),
        );
        return t;
    }
    let page = facts.page_size.unwrap_or(4096) as usize;
    let mapping = match Page::map(page) {
        Ok(m) => m,
        Err(e) => {
            step(
                &mut t,
                Item::fail(
                    "child",
                    "test process",
                    format!("mmap of one page failed: {e}"),
                    "check the memory limits of this process",
                ),
            );
            return t;
        }
    };
    let mut child = match HeldChild::fork(mapping.addr, page) {
        Ok(c) => c,
        Err(e) => {
            step(
                &mut t,
                Item::fail(
                    "child",
                    "test process",
                    format!("fork failed: {e}"),
                    "check the process limits (ulimit -u, pids cgroup)",
                ),
            );
            return t;
        }
    };
    let config = ProbeConfig {
        pids: vec![child.pid as u32],
        buffer_size: SELF_TEST_BUFFER,
        ..ProbeConfig::default()
    };
    let started = Instant::now();
    let mut probe = match Probe::load(&config) {
        Ok(p) => p,
        Err(e) => {
            step(
                &mut t,
                Item::fail(
                    "attach",
                    "load and attach",
                    format!("{e:#}"),
                    "see the message; the environment checks above say what this host lacks",
                ),
            );
            return t;
        }
    };
    let mut attached = format!(
        "kernel programs loaded and attached in {} ms (program ids {:?})",
        started.elapsed().as_millis(),
        probe.program_ids()
    );
    for n in probe.notices() {
        attached.push_str(&format!("; {n}"));
    }
    step(&mut t, Item::ok("attach", "load and attach", attached));

    let pid = child.pid as u32;
    let released = Instant::now();
    child.release();
    let mut found: Option<Event> = None;
    let deadline = tokio::time::sleep(EVENT_TIMEOUT);
    tokio::pin!(deadline);
    let mut batch_error = None;
    while found.is_none() {
        let mut take = |e: &Event| {
            if e.tgid == pid && found.is_none() {
                found = Some(*e);
            }
        };
        tokio::select! {
            r = probe.next_batch(&mut take) => {
                if let Err(e) = r {
                    batch_error = Some(format!("{e:#}"));
                    break;
                }
            }
            _ = tokio::time::sleep(crate::probe::DRAIN_INTERVAL) => {
                probe.drain(&mut take);
            }
            _ = &mut deadline => break,
        }
    }
    let waited = released.elapsed();
    let status = child.wait();
    if found.is_none() {
        // The event may have landed as the child exited.
        probe.drain(|e| {
            if e.tgid == pid && found.is_none() {
                found = Some(*e);
            }
        });
    }
    let counters = probe.counters().ok();
    drop(probe);

    let child_saw = match status {
        22 => "the call failed with EINVAL, as it must".to_string(),
        100 => "the call succeeded, which no kernel should allow".to_string(),
        126 => "the test process was never released".to_string(),
        n if n > 128 => format!("the test process was killed by signal {}", n - 128),
        n => format!(
            "the call failed with {}",
            errno_name(n).map_or_else(|| format!("errno {n}"), str::to_string)
        ),
    };
    let Some(event) = found else {
        let counted = counters.map_or_else(String::new, |c| {
            format!(
                "; kernel counters: {} calls, {} failures, {} sent, {} lost",
                c.calls, c.failures, c.sent, c.lost
            )
        });
        let detail = match batch_error {
            Some(e) => format!("reading the ring buffer failed: {e}"),
            None => format!(
                "no event from the test process (pid {pid}) within {} s; {child_saw}{counted}",
                EVENT_TIMEOUT.as_secs()
            ),
        };
        step(
            &mut t,
            Item::fail(
                "event",
                "event arrives",
                detail,
                "run `thptrace -v -p PID` against a process you know fails madvise, and report this output",
            ),
        );
        return t;
    };
    step(
        &mut t,
        Item::ok(
            "event",
            "event arrives",
            format!(
                "from the test process (pid {pid}) within {:.1} ms; {child_saw}",
                waited.as_secs_f64() * 1e3
            ),
        ),
    );

    let mut line = String::new();
    Formatter::new(Format::Text, Clock::host()).write(&mut line, &event);
    let line = line.trim_end().to_string();
    let mut wrong = Vec::new();
    if event.syscall != Syscall::Madvise {
        wrong.push(format!("system call {}", event.syscall.name()));
    }
    if event.start != mapping.addr as u64 {
        wrong.push(format!(
            "start {:#x} (expected {:#x})",
            event.start, mapping.addr
        ));
    }
    if event.len != page as u64 {
        wrong.push(format!("length {} (expected {page})", event.len));
    }
    if event.advice != SELF_TEST_ADVICE || advice_name(event.advice).is_some() {
        wrong.push(format!(
            "advice {} (expected {SELF_TEST_ADVICE})",
            event.advice
        ));
    }
    if event.errno() != Some(libc::EINVAL) {
        wrong.push(format!("return value {} (expected -22)", event.ret));
    }
    t.line = Some(line.clone());
    if !wrong.is_empty() {
        step(
            &mut t,
            Item::fail(
                "decoded",
                "decoded",
                format!("wrong {}: {line}", wrong.join(", ")),
                "the kernel object may not match this kernel: rebuild it with `cargo xtask build-ebpf` and report this output",
            ),
        );
        return t;
    }
    step(&mut t, Item::ok("decoded", "decoded", line));

    let explanation = Call::from_event(&event).map(|c| explain(&c, None, facts, facts.page_size));
    let item = match explanation.as_ref().and_then(Explanation::single) {
        Some(c) if c.code == "advice_unknown_to_kernel" => Item::ok(
            "explained",
            "explained",
            format!("{} [{}]", c.sentence, c.code),
        ),
        _ => Item::fail(
            "explained",
            "explained",
            format!(
                "expected the cause advice_unknown_to_kernel, got {}",
                explanation
                    .as_ref()
                    .map_or_else(|| "none".to_string(), |e| e.codes().join(", "))
            ),
            "report this output: the cause engine disagrees with the kernel",
        ),
    };
    t.explanation = explanation;
    if step(&mut t, item) {
        return t;
    }
    if let Some(c) = counters {
        let item = if c.lost == 0 {
            Item::ok(
                "counters",
                "kernel counters",
                format!(
                    "{}, {}, {} sent, none lost",
                    count(c.calls, "call"),
                    count(c.failures, "failure"),
                    count(c.sent, "event")
                ),
            )
        } else {
            Item::warn(
                "counters",
                "kernel counters",
                format!("{} events lost", c.lost),
                "raise --buffer-size when tracing",
            )
        };
        step(&mut t, item);
    }
    t.passed = true;
    t
}

// ---- Output -------------------------------------------------------------

fn count(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn write_items(out: &mut String, items: &[Item], width: usize) {
    for i in items {
        let _ = writeln!(
            out,
            "  {:<7}  {:<width$}  {}",
            i.status.word(),
            i.label,
            i.detail
        );
        if let Some(fix) = &i.fix
            && i.status != Status::Ok
        {
            let _ = writeln!(out, "  {:<7}  {:<width$}  fix: {fix}", "", "");
        }
    }
}

/// The report for a person.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    out.push_str("thptrace check: can this host trace failing madvise calls?\n\n");
    let width = r
        .environment
        .iter()
        .chain(&r.fact_items)
        .chain(&r.self_test.steps)
        .map(|i| i.label.len())
        .max()
        .unwrap_or(0);
    write_items(&mut out, &r.environment, width);
    out.push_str("\nwhat this kernel's madvise accepts:\n");
    write_items(&mut out, &r.fact_items, width);
    out.push_str("\nself-test (a child process calls madvise with advice 9999, which must fail with EINVAL):\n");
    match &r.self_test.skipped {
        Some(why) => {
            let _ = writeln!(out, "  skipped: {why}");
        }
        None => write_items(&mut out, &r.self_test.steps, width),
    }
    out.push('\n');
    let warnings = r
        .environment
        .iter()
        .chain(&r.fact_items)
        .chain(&r.self_test.steps)
        .filter(|i| i.status == Status::Warning)
        .count();
    if r.ok() {
        let _ = write!(out, "result: tracing works on this host");
        if warnings > 0 {
            let _ = write!(
                out,
                " ({warnings} warning{} above)",
                if warnings == 1 { "" } else { "s" }
            );
        }
        out.push_str(".\n");
    } else {
        out.push_str("result: tracing does NOT work on this host: see FAIL above.\n");
    }
    out
}

/// The report for machines: one JSON object.
pub fn to_json(r: &Report) -> Value {
    let group = |items: &[Item], group: &str| -> Vec<Value> {
        items
            .iter()
            .map(|i| {
                let mut v = serde_json::to_value(i).unwrap_or(Value::Null);
                v["group"] = json!(group);
                v
            })
            .collect()
    };
    let mut items = group(&r.environment, "environment");
    items.extend(group(&r.fact_items, "host_facts"));
    json!({
        "ok": r.ok(),
        "items": items,
        "facts": r.facts,
        "self_test": r.self_test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::tests::TempTree;

    fn root() -> Privileges {
        Privileges {
            euid: 0,
            cap_sys_admin: true,
            cap_bpf: true,
            cap_perfmon: true,
        }
    }

    #[test]
    fn privileges() {
        let i = privileges_item(&root());
        assert_eq!(i.status, Status::Ok);
        assert_eq!(i.detail, "root with CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON");
        let caps = Privileges {
            euid: 1000,
            cap_sys_admin: false,
            cap_bpf: true,
            cap_perfmon: true,
        };
        assert_eq!(privileges_item(&caps).status, Status::Ok);
        assert_eq!(
            privileges_item(&caps).detail,
            "uid 1000 with CAP_BPF, CAP_PERFMON"
        );
        let user = Privileges {
            euid: 1000,
            cap_sys_admin: false,
            cap_bpf: true,
            cap_perfmon: false,
        };
        let i = privileges_item(&user);
        assert_eq!(i.status, Status::Fail);
        assert!(
            i.fix
                .as_deref()
                .unwrap()
                .contains("setcap cap_bpf,cap_perfmon+ep")
        );
    }

    #[test]
    fn bpf_features() {
        let all = BpfFeatures {
            syscall: BpfFeature::Supported,
            ring_buffer: BpfFeature::Supported,
            tracepoint_programs: BpfFeature::Supported,
        };
        assert!(bpf_items(&all).iter().all(|i| i.status == Status::Ok));
        let old = BpfFeatures {
            ring_buffer: BpfFeature::Unsupported,
            ..all.clone()
        };
        let items = bpf_items(&old);
        assert_eq!(items[1].status, Status::Fail);
        assert!(items[1].fix.as_deref().unwrap().contains("5.8"));
        let nosys = BpfFeatures {
            syscall: BpfFeature::Failed {
                errno: Some(libc::ENOSYS),
                message: "bpf_map_create failed".into(),
            },
            ..all
        };
        let items = bpf_items(&nosys);
        assert_eq!(items[0].status, Status::Fail);
        assert!(
            items[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("CONFIG_BPF_SYSCALL")
        );
    }

    #[test]
    fn tracepoints_in_a_fake_tracefs() {
        let t = TempTree::new();
        t.file("events/syscalls/sys_enter_madvise/id", "1\n")
            .file("events/syscalls/sys_exit_madvise/id", "2\n");
        let items = tracepoint_items(Some(&t.0));
        assert_eq!(items[0].status, Status::Ok);
        assert_eq!(items[1].status, Status::Warning);
        assert!(items[1].detail.contains("only madvise will be traced"));
        t.dir("events/syscalls/sys_enter_process_madvise")
            .dir("events/syscalls/sys_exit_process_madvise");
        assert!(
            tracepoint_items(Some(&t.0))
                .iter()
                .all(|i| i.status == Status::Ok)
        );

        let empty = TempTree::new();
        let items = tracepoint_items(Some(&empty.0));
        assert_eq!(items[0].status, Status::Fail);
        assert!(
            items[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("CONFIG_FTRACE_SYSCALLS")
        );
        empty.dir("events/syscalls");
        let items = tracepoint_items(Some(&empty.0));
        assert!(
            items[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("CONFIG_ADVISE_SYSCALLS")
        );
        assert_eq!(tracepoint_items(None)[0].status, Status::Fail);
    }

    #[test]
    fn btf_and_tracefs() {
        let t = TempTree::new();
        assert_eq!(btf_item(&t.0).status, Status::Warning);
        t.file("sys/kernel/btf/vmlinux", "x");
        assert_eq!(btf_item(&t.0).status, Status::Ok);
        let dir = PathBuf::from("/sys/kernel/tracing");
        assert_eq!(
            tracefs_item(&Ok(dir.clone()), true, Some(&dir)).detail,
            "/sys/kernel/tracing"
        );
        assert!(
            tracefs_item(&Ok(dir.clone()), false, None)
                .detail
                .contains("mounted it on")
        );
        let i = tracefs_item(&Err("no".into()), false, None);
        assert_eq!((i.status, i.detail.as_str()), (Status::Fail, "no"));
        let i = tracefs_item(&Err("no".into()), false, Some(&dir));
        assert_eq!(i.status, Status::Fail);
        assert!(i.detail.contains("cannot read"), "{}", i.detail);
        assert!(i.fix.unwrap().contains("root"));
        let mounts =
            "proc /proc proc rw 0 0\ntracefs /sys/kernel/tracing tracefs rw,relatime 0 0\n";
        assert_eq!(tracefs_mount_point(mounts), Some(dir));
        assert_eq!(tracefs_mount_point("proc /proc proc rw 0 0\n"), None);
    }

    fn facts(thp: Fact) -> HostFacts {
        let mut h = HostFacts::unknown();
        h.kernel_release = Some("6.1.0-test".into());
        h.machine = Some("x86_64".into());
        h.page_size = Some(4096);
        h.thp_mode = thp.is_yes().then(|| "madvise".into());
        h.thp = thp;
        h.ksm = Fact::no("/sys/kernel/mm/ksm is absent");
        h.memory_failure = Fact::yes("/proc/sys/vm/memory_failure_early_kill");
        h.swap = Fact::yes("/proc/swaps");
        h.swap_active = Fact::no("/proc/swaps lists no area");
        h
    }

    #[test]
    fn host_fact_items() {
        let items = fact_items(&facts(Fact::yes("/sys/kernel/mm/transparent_hugepage")));
        let names: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "kernel",
                "page_size",
                "thp",
                "ksm",
                "memory_failure",
                "swap"
            ]
        );
        assert_eq!(items[0].detail, "6.1.0-test (x86_64); config: not found");
        assert_eq!(
            items[2].detail,
            "yes, mode madvise [/sys/kernel/mm/transparent_hugepage]: madvise accepts MADV_HUGEPAGE, MADV_NOHUGEPAGE and MADV_COLLAPSE"
        );
        assert_eq!(items[2].status, Status::Ok);
        assert_eq!(items[3].status, Status::Ok);
        assert!(
            items[3]
                .detail
                .starts_with("no [/sys/kernel/mm/ksm is absent]: madvise rejects MADV_MERGEABLE")
        );
        assert_eq!(
            items[5].detail,
            "yes, no swap in use [/proc/swaps]: MADV_WILLNEED works on anonymous memory"
        );

        let items = fact_items(&facts(Fact::no(
            "/sys/kernel/mm/transparent_hugepage is absent",
        )));
        assert_eq!(items[2].status, Status::Warning);
        assert!(items[2].detail.contains("CRIU"), "{}", items[2].detail);
        assert!(items[2].fix.as_deref().unwrap().contains("7190b3c8bd2b"));

        let items = fact_items(&HostFacts::unknown());
        assert!(
            items.iter().all(|i| i.status == Status::Warning),
            "{items:?}"
        );
    }

    fn report(passed: bool) -> Report {
        let f = facts(Fact::yes("/sys/kernel/mm/transparent_hugepage"));
        let mut t = SelfTest::skipped("x");
        if passed {
            t.skipped = None;
            t.passed = true;
            t.steps = vec![Item::ok(
                "decoded",
                "decoded",
                "madvise(0x1000, 4096, 9999) = -1 EINVAL (Invalid argument)",
            )];
        }
        Report {
            environment: vec![
                privileges_item(&root()),
                Item::warn("btf", "kernel BTF", "missing", "rebuild"),
            ],
            fact_items: fact_items(&f),
            facts: f,
            self_test: t,
        }
    }

    #[test]
    fn rendering() {
        let out = render(&report(true));
        assert!(out.starts_with("thptrace check: can this host trace failing madvise calls?\n\n  ok       privileges              root with"), "{out}");
        assert!(
            out.contains("  warning  kernel BTF              missing\n                                   fix: rebuild\n"),
            "{out}"
        );
        assert!(out.contains("fix: rebuild\n"), "{out}");
        assert!(
            out.contains("\nwhat this kernel's madvise accepts:\n  ok       kernel"),
            "{out}"
        );
        assert!(
            out.contains("  ok       decoded                 madvise(0x1000, 4096, 9999)"),
            "{out}"
        );
        assert!(
            out.ends_with("result: tracing works on this host (1 warning above).\n"),
            "{out}"
        );
        let out = render(&report(false));
        assert!(out.contains("  skipped: x\n"), "{out}");
        assert!(
            out.ends_with("result: tracing does NOT work on this host: see FAIL above.\n"),
            "{out}"
        );
    }

    #[test]
    fn json_shape() {
        let v = to_json(&report(true));
        assert_eq!(v["ok"], true);
        assert_eq!(v["items"][0]["name"], "privileges");
        assert_eq!(v["items"][0]["status"], "ok");
        assert_eq!(v["items"][0]["group"], "environment");
        assert!(v["items"][0].get("fix").is_none());
        assert_eq!(v["items"][1]["status"], "warning");
        assert_eq!(v["items"][1]["fix"], "rebuild");
        assert_eq!(v["items"][2]["group"], "host_facts");
        assert_eq!(v["facts"]["thp"]["value"], "yes");
        assert_eq!(v["self_test"]["passed"], true);
        assert_eq!(v["self_test"]["steps"][0]["name"], "decoded");
        let v = to_json(&report(false));
        assert_eq!(v["ok"], false);
        assert_eq!(v["self_test"]["passed"], false);
        assert_eq!(v["self_test"]["skipped"], "x");
    }
}
