//! The cause engine: why did this madvise call fail?
//!
//! It follows the table of DESIGN.md section 5 (mainline mm/madvise.c and
//! mm/khugepaged.c) row by row. A row becomes
//! - a sure cause when the call itself (its arguments) or a known fact proves
//!   it, or when it is the only row the table has for this advice and errno;
//! - a possible cause when it depends on a fact or memory area we do not know;
//! - nothing when the facts rule it out.
//!
//! Sure causes give [`ExplanationKind::Single`], open ones
//! [`ExplanationKind::Possible`]; with neither, [`ExplanationKind::Unknown`].
//! The engine never states a cause the facts do not support. When this host's
//! facts rule out every cause the table allows, the call cannot have run on
//! this kernel, and with [`FactsOrigin::ThisHost`] the explanation says what
//! the kernel it did run on must lack. When other causes stay open (a short
//! form without a start address, say), a feature this host has but the
//! call's kernel may have lacked is listed among the possible causes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::decode::{advice_name, errno_name};
use crate::event::{Event, Syscall};
use crate::host::{Fact, HostFacts, Tri};

// Advice values (include/uapi/asm-generic/mman-common.h).
const WILLNEED: i32 = 3;
const DONTNEED: i32 = 4;
const FREE: i32 = 8;
const REMOVE: i32 = 9;
const DONTFORK: i32 = 10;
const DOFORK: i32 = 11;
const MERGEABLE: i32 = 12;
const UNMERGEABLE: i32 = 13;
const HUGEPAGE: i32 = 14;
const NOHUGEPAGE: i32 = 15;
const DODUMP: i32 = 17;
const WIPEONFORK: i32 = 18;
const COLD: i32 = 20;
const PAGEOUT: i32 = 21;
const POPULATE_READ: i32 = 22;
const POPULATE_WRITE: i32 = 23;
const DONTNEED_LOCKED: i32 = 24;
const COLLAPSE: i32 = 25;
const HWPOISON: i32 = 100;
const SOFT_OFFLINE: i32 = 101;
const GUARD_INSTALL: i32 = 102;
const GUARD_REMOVE: i32 = 103;

// errno values the table names.
const EPERM: i32 = 1;
const ESRCH: i32 = 3;
const EINTR: i32 = 4;
const EBADF: i32 = 9;
const EAGAIN: i32 = 11;
const ENOMEM: i32 = 12;
const EACCES: i32 = 13;
const EFAULT: i32 = 14;
const EBUSY: i32 = 16;
const EINVAL: i32 = 22;
const EOPNOTSUPP: i32 = 95;
const EHWPOISON: i32 = 133;

/// The kernel-internal restart values (ERESTARTSYS .. ERESTART_RESTARTBLOCK,
/// include/linux/errno.h): the call is run again, it did not fail.
const RESTARTS: std::ops::RangeInclusive<i32> = 512..=517;

/// `UIO_MAXIOV`: process_madvise rejects more iovecs than this.
const UIO_MAXIOV: u64 = 1024;

/// The smallest page size Linux uses; every page size is a multiple of it.
const MIN_PAGE: u64 = 4096;
/// The largest base page size Linux uses (arm64, powerpc, ...).
const MAX_PAGE: u64 = 65536;

/// The call to explain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Call {
    #[serde(with = "syscall_name")]
    pub syscall: Syscall,
    /// madvise's start, or process_madvise's first iovec base; `None` when
    /// not known (an unreadable iovec, or text that did not give it).
    pub start: Option<u64>,
    pub len: Option<u64>,
    pub advice: i32,
    /// The positive errno (the return value was `-errno`).
    pub errno: i32,
    /// process_madvise only: whether the target is another process (`None`:
    /// not known, as a pidfd does not say whose it is).
    pub remote: Option<bool>,
    /// process_madvise only: its `flags` and iovec count.
    pub flags: Option<u32>,
    pub vlen: Option<u64>,
}

impl Call {
    /// A failed `madvise(start, len, advice) = -errno`.
    pub fn madvise(start: u64, len: u64, advice: i32, errno: i32) -> Call {
        Call {
            syscall: Syscall::Madvise,
            start: Some(start),
            len: Some(len),
            advice,
            errno,
            remote: None,
            flags: None,
            vlen: None,
        }
    }

    /// The call of a traced event; `None` for one that did not fail.
    pub fn from_event(e: &Event) -> Option<Call> {
        let errno = e.errno()?;
        let process = e.syscall == Syscall::ProcessMadvise;
        let known = !(process && e.iovec_unreadable);
        Some(Call {
            syscall: e.syscall,
            start: known.then_some(e.start),
            len: known.then_some(e.len),
            advice: e.advice,
            errno,
            remote: None,
            flags: process.then_some(e.flags),
            vlen: process.then_some(e.vlen),
        })
    }

    fn process(&self) -> bool {
        self.syscall == Syscall::ProcessMadvise
    }
}

/// serde for [`Syscall`] as its name, so event.rs stays serde-free.
mod syscall_name {
    use super::Syscall;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(s: &Syscall, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Syscall, D::Error> {
        let name = String::deserialize(de)?;
        Syscall::from_name(&name)
            .ok_or_else(|| D::Error::custom(format!("unknown system call {name:?}")))
    }
}

/// A byte range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

/// The memory area (`vm_area_struct`) the call hit first, as the probe reads
/// it with `bpf_find_vma`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Area {
    /// The area's bounds (`vm_start`, `vm_end`).
    pub start: u64,
    pub end: u64,
    /// Whether the whole of the call's range was covered by areas.
    pub mapped: bool,
    /// The first part of the call's range no area covers, when known.
    #[serde(default)]
    pub unmapped: Option<Span>,
    /// hugetlb areas: their huge page size in bytes, when known.
    #[serde(default)]
    pub huge_page_size: Option<u64>,
    #[serde(default)]
    pub flags: AreaFlags,
}

/// `vm_flags` bits (include/linux/mm.h; unchanged from 5.x to 6.18).
mod vm {
    pub const WRITE: u64 = 0x2;
    pub const SHARED: u64 = 0x8;
    pub const MAYWRITE: u64 = 0x20;
    pub const PFNMAP: u64 = 0x400;
    pub const LOCKED: u64 = 0x2000;
    pub const IO: u64 = 0x4000;
    pub const DONTEXPAND: u64 = 0x40000;
    pub const HUGETLB: u64 = 0x40_0000;
    pub const MIXEDMAP: u64 = 0x1000_0000;
    pub const HUGEPAGE: u64 = 0x2000_0000;
    pub const NOHUGEPAGE: u64 = 0x4000_0000;
    pub const MERGEABLE: u64 = 0x8000_0000;
}

impl Area {
    /// The area the kernel program captured with the event, decoded; `None`
    /// when no lookup was made.
    pub fn from_event(e: &Event) -> Option<Area> {
        use thptrace_common::area as bit;
        let a = &e.area;
        if !a.looked_up() {
            return None;
        }
        let range_end = e.start.wrapping_add(e.len);
        let gap = (a.status & bit::GAP_FOUND != 0).then_some(Span {
            start: a.gap,
            end: range_end.max(a.gap),
        });
        let start_mapped = a.status & bit::START_MAPPED != 0;
        let f = a.vm_flags;
        let has = |b: u64| start_mapped && f & b != 0;
        Some(Area {
            start: a.start,
            end: a.end,
            mapped: a.status & bit::FULLY_MAPPED != 0,
            unmapped: gap,
            huge_page_size: None,
            flags: AreaFlags {
                locked: has(vm::LOCKED),
                shared: has(vm::SHARED),
                writable: has(vm::WRITE),
                may_write: has(vm::MAYWRITE),
                pfnmap: has(vm::PFNMAP),
                io: has(vm::IO),
                mixedmap: has(vm::MIXEDMAP),
                dontexpand: has(vm::DONTEXPAND),
                hugetlb: has(vm::HUGETLB),
                hugepage: has(vm::HUGEPAGE),
                nohugepage: has(vm::NOHUGEPAGE),
                mergeable: has(vm::MERGEABLE),
                anonymous: start_mapped && a.status & bit::HAS_OPS == 0,
                file_backed: start_mapped && a.status & bit::FILE != 0,
                sealed: false,
            },
        })
    }

    /// Whether an area contains the call's start.
    pub fn start_mapped(&self) -> bool {
        self.end > self.start
    }

    /// `7f06e7f30000-7f06e7f31000 rw-p anon locked nh`, in the spirit of
    /// /proc/PID/maps and smaps; `not mapped` when no area holds the start.
    pub fn describe(&self) -> String {
        if !self.start_mapped() {
            return "not mapped".to_string();
        }
        let f = &self.flags;
        let mut s = format!(
            "{:x}-{:x} r{}-{}",
            self.start,
            self.end,
            if f.writable { 'w' } else { '-' },
            if f.shared { 's' } else { 'p' }
        );
        s.push_str(if f.anonymous {
            " anon"
        } else if f.file_backed {
            " file"
        } else {
            " special"
        });
        for (on, word) in [
            (f.locked, "locked"),
            (f.hugetlb, "hugetlb"),
            (f.pfnmap, "pfnmap"),
            (f.io, "io"),
            (f.mixedmap, "mixedmap"),
            (f.hugepage, "hg"),
            (f.nohugepage, "nh"),
            (f.mergeable, "mergeable"),
        ] {
            if on {
                s.push(' ');
                s.push_str(word);
            }
        }
        if let Some(gap) = self.unmapped {
            s.push_str(&format!("; not mapped from {:#x}", gap.start));
        }
        s
    }
}

/// The `vm_flags` and kinds of an area that decide how madvise treats it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct AreaFlags {
    /// VM_LOCKED (mlock).
    pub locked: bool,
    /// VM_SHARED.
    pub shared: bool,
    /// VM_WRITE.
    pub writable: bool,
    /// VM_MAYWRITE: could be made writable (a shared mapping of a file opened
    /// for writing), which is what MADV_REMOVE checks.
    pub may_write: bool,
    /// VM_PFNMAP.
    pub pfnmap: bool,
    /// VM_IO.
    pub io: bool,
    /// VM_MIXEDMAP.
    pub mixedmap: bool,
    /// VM_DONTEXPAND.
    pub dontexpand: bool,
    /// VM_HUGETLB.
    pub hugetlb: bool,
    /// VM_HUGEPAGE / VM_NOHUGEPAGE (`hg` / `nh` in smaps).
    pub hugepage: bool,
    pub nohugepage: bool,
    /// VM_MERGEABLE.
    pub mergeable: bool,
    /// `vma_is_anonymous`: no `vm_ops` (shared anonymous memory is shmem and
    /// so not anonymous here).
    pub anonymous: bool,
    /// `vm_file` is set (includes shmem and shared anonymous memory).
    pub file_backed: bool,
    /// Sealed with mseal(2).
    pub sealed: bool,
}

impl AreaFlags {
    /// VM_SPECIAL: areas the kernel treats as not ordinary memory.
    pub fn special(&self) -> bool {
        self.io || self.pfnmap || self.mixedmap || self.dontexpand
    }
}

/// Whose facts the engine was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactsOrigin {
    /// The facts of the host thptrace runs on. The call was traced here, or
    /// is text a person brought, which may come from another machine: when
    /// these facts rule out every cause, the engine says so and names what
    /// the call's kernel must have lacked.
    ThisHost,
    /// The facts recorded in a capture file with the call: they describe the
    /// kernel the call ran on, whatever host reads the capture.
    Capture,
}

/// One reason a call failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    /// Stable snake_case code, for scripts and metrics.
    #[serde(rename = "cause_code")]
    pub code: String,
    /// One sentence for a person.
    #[serde(rename = "cause")]
    pub sentence: String,
}

impl Cause {
    pub fn new(code: &str, sentence: impl Into<String>) -> Cause {
        Cause {
            code: code.to_string(),
            sentence: sentence.into(),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.sentence, self.code)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "causes", rename_all = "snake_case")]
pub enum ExplanationKind {
    /// This is why.
    Single(Cause),
    /// One of these, and the facts cannot tell which.
    Possible(Vec<Cause>),
    /// No row of the table fits what is known.
    Unknown,
}

/// Why a call failed, as far as the facts tell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    #[serde(flatten)]
    pub kind: ExplanationKind,
    /// Other sure faults of the same call the kernel checks later: they would
    /// fail it as well once the first is fixed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<Cause>,
    /// The host's facts rule out every cause, so the call ran on another
    /// kernel; the causes say what that kernel lacks.
    #[serde(default)]
    pub other_kernel: bool,
    pub facts_origin: FactsOrigin,
    /// Anything else worth saying (why nothing fits, for one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Explanation {
    /// The sure cause, if there is one.
    pub fn single(&self) -> Option<&Cause> {
        match &self.kind {
            ExplanationKind::Single(c) => Some(c),
            _ => None,
        }
    }

    /// Every cause named, sure or possible, in order.
    pub fn causes(&self) -> Vec<&Cause> {
        match &self.kind {
            ExplanationKind::Single(c) => vec![c],
            ExplanationKind::Possible(v) => v.iter().collect(),
            ExplanationKind::Unknown => Vec::new(),
        }
    }

    /// The cause codes, in order (for tests, filters and counters).
    pub fn codes(&self) -> Vec<&str> {
        self.causes().into_iter().map(|c| c.code.as_str()).collect()
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExplanationKind::Single(c) => write!(f, "cause: {c}")?,
            ExplanationKind::Possible(v) => {
                write!(f, "possible causes:")?;
                for (i, c) in v.iter().enumerate() {
                    write!(f, "\n  {}. {c}", i + 1)?;
                }
            }
            ExplanationKind::Unknown => write!(f, "cause: unknown")?,
        }
        for c in &self.also {
            write!(f, "\nalso: {c}")?;
        }
        if let Some(n) = &self.note {
            write!(f, "\nnote: {n}")?;
        }
        Ok(())
    }
}

/// Explains a call with the facts of the kernel it ran on (a live trace).
/// `page_size` is the base page size when known (usually
/// `facts.page_size`).
pub fn explain(
    call: &Call,
    area: Option<&Area>,
    facts: &HostFacts,
    page_size: Option<u64>,
) -> Explanation {
    explain_with_context(call, area, facts, page_size, FactsOrigin::ThisHost)
}

/// Explains a call, saying whose facts these are; see [`FactsOrigin`].
pub fn explain_with_context(
    call: &Call,
    area: Option<&Area>,
    facts: &HostFacts,
    page_size: Option<u64>,
    origin: FactsOrigin,
) -> Explanation {
    let mut e = Engine {
        call,
        area,
        facts,
        page: page_size.filter(|p| *p > 0),
        found: Vec::new(),
        elsewhere: Vec::new(),
    };
    e.run();
    e.conclude(origin)
}

/// How well a candidate cause is supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Support {
    /// The arguments, the area or a known fact prove it.
    Proven,
    /// The table allows it and nothing checks it: sure if it is the only one.
    Allowed,
    /// It depends on something unknown.
    Unverified,
}

struct Engine<'a> {
    call: &'a Call,
    area: Option<&'a Area>,
    facts: &'a HostFacts,
    page: Option<u64>,
    found: Vec<(Support, Cause)>,
    /// Causes this host's facts rule out, phrased for a kernel that lacks
    /// what this one has.
    elsewhere: Vec<Cause>,
}

/// One row of the table for the area hit.
struct Row {
    code: &'static str,
    /// The known area proves it.
    holds: bool,
    /// Said when the area proves it, and when the area is unknown.
    sure: String,
    maybe: String,
}

/// A piece of kernel configuration some advice needs.
struct Feature {
    code: &'static str,
    config: &'static str,
    what: &'static str,
}

const THP: Feature = Feature {
    code: "thp_not_built_in",
    config: "CONFIG_TRANSPARENT_HUGEPAGE",
    what: "transparent huge pages",
};
const KSM: Feature = Feature {
    code: "ksm_not_built_in",
    config: "CONFIG_KSM",
    what: "kernel samepage merging",
};
const MEMORY_FAILURE: Feature = Feature {
    code: "memory_failure_not_built_in",
    config: "CONFIG_MEMORY_FAILURE",
    what: "memory failure handling",
};

/// Kernel release that brought each advice, for advice newer than 4.5; an
/// older kernel rejects it as unknown with EINVAL.
const INTRODUCED: &[(i32, (u32, u32))] = &[
    (8, (4, 5)),
    (18, (4, 14)),
    (19, (4, 14)),
    (20, (5, 4)),
    (21, (5, 4)),
    (22, (5, 14)),
    (23, (5, 14)),
    (24, (5, 18)),
    (25, (6, 1)),
    (102, (6, 13)),
    (103, (6, 13)),
];

/// Release that brought mseal(2).
const MSEAL: (u32, u32) = (6, 10);

/// Advice mseal forbids on sealed read-only anonymous memory (is_madv_discard).
const DISCARD: &[i32] = &[
    FREE,
    DONTNEED,
    DONTNEED_LOCKED,
    REMOVE,
    DONTFORK,
    WIPEONFORK,
    GUARD_INSTALL,
];

/// Advice a process may give another process (process_madvise_remote_valid).
const REMOTE_OK: &[i32] = &[COLD, PAGEOUT, WILLNEED, COLLAPSE];

/// Advice that only changes the area's flags and so may split it; splitting
/// a hugetlb area off a huge page boundary fails with EINVAL.
const FLAG_CHANGES: &[i32] = &[
    0,
    1,
    2,
    DONTFORK,
    DOFORK,
    MERGEABLE,
    UNMERGEABLE,
    HUGEPAGE,
    NOHUGEPAGE,
    16,
    DODUMP,
    WIPEONFORK,
    19,
];

const CRIU_NOTE: &str = "; CRIU images dumped on a kernel with commit c4608d1bf7c6 carry this advice for thread stacks; see kernel commit 7190b3c8bd2b";

impl Engine<'_> {
    fn add(&mut self, support: Support, code: &str, sentence: impl Into<String>) {
        self.found.push((support, Cause::new(code, sentence)));
    }

    fn advice_str(&self) -> String {
        advice_label(self.call.advice)
    }

    fn errno_str(&self) -> String {
        errno_label(self.call.errno)
    }

    fn release(&self) -> Option<(u32, u32)> {
        self.facts.kernel_version_pair()
    }

    /// The range `[start, start + len)` as text, when known.
    fn range(&self) -> Option<String> {
        let (s, l) = (self.call.start?, self.call.len?);
        Some(format!("{:#x}-{:#x}", s, s.wrapping_add(l)))
    }

    fn run(&mut self) {
        let errno = self.call.errno;
        if errno <= 0 {
            return;
        }
        if RESTARTS.contains(&errno) {
            self.add(
                Support::Proven,
                "restart_interrupted",
                format!(
                    "{} is not a failure: a signal interrupted the call and the kernel runs it again",
                    self.errno_str()
                ),
            );
            return;
        }
        match errno {
            EINVAL => self.einval(),
            ENOMEM => self.enomem(),
            EAGAIN => self.eagain(),
            EBUSY if self.call.advice == COLLAPSE => {
                self.add(
                    Support::Allowed,
                    "collapse_memcg_charge",
                    "MADV_COLLAPSE could not charge the huge page to the memory cgroup (the cgroup is at its limit)",
                );
            }
            EPERM => self.eperm(),
            EACCES => self.eacces(),
            EBADF => self.ebadf(),
            EFAULT => {
                if matches!(self.call.advice, POPULATE_READ | POPULATE_WRITE) {
                    self.add(
                        Support::Allowed,
                        "populate_fault",
                        format!("{} hit a page that cannot be faulted in (SIGBUS or SIGSEGV territory, for example past the end of a file)", self.advice_str()),
                    );
                }
                if self.call.process() {
                    self.add(
                        Support::Allowed,
                        "process_madvise_bad_iovec",
                        "process_madvise could not read the iovec array",
                    );
                }
            }
            EHWPOISON => {
                if matches!(self.call.advice, POPULATE_READ | POPULATE_WRITE) {
                    self.add(
                        Support::Allowed,
                        "populate_hwpoison",
                        format!(
                            "{} hit a page with a hardware memory error",
                            self.advice_str()
                        ),
                    );
                }
            }
            EINTR => self.add(
                Support::Allowed,
                "fatal_signal",
                "a fatal signal arrived while the kernel worked on the call",
            ),
            EOPNOTSUPP if self.call.advice == REMOVE => {
                self.add(
                    Support::Allowed,
                    "remove_hole_punch_unsupported",
                    "MADV_REMOVE needs to punch a hole in the file, and its file system cannot",
                );
            }
            ESRCH if self.call.process() => {
                self.add(
                    Support::Allowed,
                    "process_madvise_target_gone",
                    "the process the pidfd refers to has exited",
                );
            }
            _ => {}
        }
    }

    fn einval(&mut self) {
        let advice = self.call.advice;
        // Checks made before any memory is looked at, in the kernel's order.
        if self.call.process() {
            self.process_madvise_einval();
        }
        if advice_name(advice).is_none() {
            self.add(
                Support::Proven,
                "advice_unknown_to_kernel",
                format!("advice {advice} is not one the kernel defines"),
            );
        }
        match advice {
            HUGEPAGE | NOHUGEPAGE | COLLAPSE => self.feature(&THP),
            MERGEABLE | UNMERGEABLE => self.feature(&KSM),
            HWPOISON | SOFT_OFFLINE => self.feature(&MEMORY_FAILURE),
            _ => {}
        }
        self.too_new_for_kernel();
        self.misaligned_start();
        self.length_overflow();
        if self.has_proven() {
            // The kernel never got to the memory.
            return;
        }
        self.area_einval();
    }

    fn process_madvise_einval(&mut self) {
        let advice = self.call.advice;
        if let Some(flags) = self.call.flags.filter(|f| *f != 0) {
            self.add(
                Support::Proven,
                "process_madvise_flags",
                format!("process_madvise takes no flags yet, and the call passed {flags:#x}"),
            );
        }
        if let Some(vlen) = self.call.vlen.filter(|v| *v > UIO_MAXIOV) {
            self.add(
                Support::Proven,
                "process_madvise_vlen",
                format!(
                    "process_madvise takes at most {UIO_MAXIOV} iovecs, and the call passed {vlen}"
                ),
            );
        }
        if !REMOTE_OK.contains(&advice) && advice_name(advice).is_some() {
            let sentence = format!(
                "{} cannot be given to another process: process_madvise on another process accepts only MADV_COLD, MADV_PAGEOUT, MADV_WILLNEED and MADV_COLLAPSE",
                self.advice_str()
            );
            match self.call.remote {
                Some(true) => self.add(Support::Proven, "process_madvise_remote_advice", sentence),
                None => self.add(
                    Support::Unverified,
                    "process_madvise_remote_advice",
                    format!("if the pidfd is another process's, {sentence}"),
                ),
                Some(false) => {}
            }
        }
    }

    /// Advice that needs a piece of kernel configuration.
    fn feature(&mut self, feature: &Feature) {
        let name = self.advice_str();
        let criu = if self.call.advice == NOHUGEPAGE {
            CRIU_NOTE
        } else {
            ""
        };
        let fact: &Fact = match feature.code {
            "thp_not_built_in" => &self.facts.thp,
            "ksm_not_built_in" => &self.facts.ksm,
            _ => &self.facts.memory_failure,
        };
        match fact.value {
            Tri::No => self.add(
                Support::Proven,
                feature.code,
                format!(
                    "this kernel is built without {} ({}), so it rejects {name}{criu}",
                    feature.what, feature.config
                ),
            ),
            Tri::Unknown => self.add(
                Support::Unverified,
                feature.code,
                format!(
                    "this kernel may be built without {} ({}; could not tell: {}), and such a kernel rejects {name}{criu}",
                    feature.what, feature.config, fact.source
                ),
            ),
            Tri::Yes => self.elsewhere.push(Cause::new(
                feature.code,
                format!(
                    "this host's kernel has {} ({}), so the call must have run on a kernel built without {}, which rejects {name}{criu}",
                    feature.what, fact.source, feature.config
                ),
            )),
        }
    }

    /// Advice newer than the kernel is unknown to it.
    fn too_new_for_kernel(&mut self) {
        let Some(&(_, since)) = INTRODUCED.iter().find(|(a, _)| *a == self.call.advice) else {
            return;
        };
        let name = self.advice_str();
        let (maj, min) = since;
        match self.release() {
            Some(r) if r < since => self.add(
                Support::Unverified,
                "advice_unknown_to_kernel",
                format!(
                    "{name} came in Linux {maj}.{min} and this kernel is {}, so unless its vendor backported it, the kernel does not know this advice",
                    self.facts.kernel_release.as_deref().unwrap_or("older")
                ),
            ),
            Some(_) => self.elsewhere.push(Cause::new(
                "advice_unknown_to_kernel",
                format!(
                    "this host's kernel ({}) knows {name}, so the call must have run on an older kernel (before Linux {maj}.{min}), which does not",
                    self.facts.kernel_release.as_deref().unwrap_or("?")
                ),
            )),
            None => self.add(
                Support::Unverified,
                "advice_unknown_to_kernel",
                format!("{name} came in Linux {maj}.{min}; an older kernel does not know it (this kernel's release is unknown)"),
            ),
        }
    }

    fn misaligned_start(&mut self) {
        let Some(start) = self.call.start else {
            // Not given (short form) or an unreadable iovec: it may be anything.
            self.add(
                Support::Unverified,
                "misaligned_start",
                "the start address may not be page-aligned (it is not known)",
            );
            return;
        };
        let sure = match self.page {
            Some(p) => start % p != 0,
            None => start % MIN_PAGE != 0,
        };
        if sure {
            let page = self.page.unwrap_or(MIN_PAGE);
            self.add(
                Support::Proven,
                "misaligned_start",
                format!(
                    "the start address {start:#x} is not a multiple of the page size ({page} bytes)"
                ),
            );
        } else if self.page.is_none() && start % MAX_PAGE != 0 {
            self.add(
                Support::Unverified,
                "misaligned_start",
                format!("the start address {start:#x} is not page-aligned if this kernel uses pages larger than 4096 bytes (the page size is unknown)"),
            );
        }
    }

    fn length_overflow(&mut self) {
        let (Some(start), Some(len)) = (self.call.start, self.call.len) else {
            self.add(
                Support::Unverified,
                "length_overflow",
                "the range may run past the end of the address space (its start or length is not known)",
            );
            return;
        };
        let overflows = |page: u64| match len.checked_add(page - 1) {
            None => true,
            Some(l) => start.checked_add(l / page * page).is_none(),
        };
        let sentence = format!(
            "the length {len:#x} rounded up to whole pages runs past the end of the address space from {start:#x}"
        );
        match self.page {
            Some(p) if overflows(p) => self.add(Support::Proven, "length_overflow", sentence),
            None if overflows(MIN_PAGE) => self.add(Support::Proven, "length_overflow", sentence),
            None if overflows(MAX_PAGE) => self.add(
                Support::Unverified,
                "length_overflow",
                format!("{sentence}, if this kernel uses 64 KiB pages (the page size is unknown)"),
            ),
            _ => {}
        }
    }

    /// EINVAL for the area hit. With the area known a row is proven or ruled
    /// out; without it, each row the table has for this advice is possible.
    /// Rows beyond the table (splitting hugetlb areas, DODUMP on special
    /// areas) are stated only when the area proves them.
    fn area_einval(&mut self) {
        let advice = self.call.advice;
        let name = self.advice_str();
        let f = self.area.map(|a| a.flags).unwrap_or_default();
        let start = self.call.start;
        let hps = self.area.and_then(|a| a.huge_page_size);

        let mut rows: Vec<Row> = Vec::new();
        let locked = |name: &str, holds: bool| Row {
            code: "area_locked",
            holds,
            sure: format!("{name} refuses locked (mlocked) memory, and the area is locked"),
            maybe: format!("the area may be locked (mlocked), which {name} refuses"),
        };
        let pfn = |name: &str, holds: bool| Row {
            code: "pfn_or_io_area",
            holds,
            sure: format!(
                "{name} refuses areas of raw page frames or device memory (VM_PFNMAP/VM_IO), and the area is one"
            ),
            maybe: format!(
                "the area may map raw page frames or device memory (VM_PFNMAP/VM_IO), which {name} refuses"
            ),
        };
        let hugetlb = |name: &str, holds: bool| Row {
            code: "hugetlb_area",
            holds,
            sure: format!("the area is hugetlb memory, which does not take {name}"),
            maybe: format!("the area may be hugetlb memory, which does not take {name}"),
        };
        match advice {
            DONTNEED | DONTNEED_LOCKED | FREE | COLD | PAGEOUT => {
                // hugetlb areas have their own checks below.
                if advice != DONTNEED_LOCKED {
                    rows.push(locked(&name, f.locked && !f.hugetlb));
                }
                rows.push(pfn(&name, f.pfnmap && !f.hugetlb));
                if matches!(advice, DONTNEED | DONTNEED_LOCKED) {
                    let misaligned = match (hps, start) {
                        (Some(h), Some(s)) => s % h != 0,
                        // Unknown huge page size: cannot prove it either way.
                        _ => false,
                    };
                    rows.push(Row {
                        code: "hugetlb_area",
                        holds: f.hugetlb && misaligned,
                        sure: format!("the area is hugetlb memory, which takes {name} only from a start aligned to its huge page size ({} bytes)", hps.unwrap_or(0)),
                        maybe: format!("the area may be hugetlb memory, which takes {name} only from a start aligned to its huge page size"),
                    });
                } else {
                    rows.push(hugetlb(&name, f.hugetlb));
                }
                if advice == FREE {
                    rows.push(Row {
                        code: "free_on_non_anonymous",
                        holds: !f.anonymous && !f.hugetlb,
                        sure: "MADV_FREE works only on private anonymous memory, and the area is file or shared memory".into(),
                        maybe: "the area may be file or shared memory, and MADV_FREE works only on private anonymous memory".into(),
                    });
                }
            }
            REMOVE => {
                rows.push(locked(&name, f.locked));
                rows.push(Row {
                    code: "remove_on_private",
                    holds: !f.file_backed,
                    sure: "MADV_REMOVE needs file or shared memory, and the area is private anonymous memory".into(),
                    maybe: "the area may be private anonymous memory, and MADV_REMOVE needs file or shared memory".into(),
                });
            }
            DOFORK => rows.push(Row {
                code: "pfn_or_io_area",
                holds: f.io,
                sure: "MADV_DOFORK refuses device I/O memory (VM_IO), and the area is such memory".into(),
                maybe: "the area may be device I/O memory (VM_IO), which MADV_DOFORK refuses".into(),
            }),
            WIPEONFORK => rows.push(Row {
                code: "wipeonfork_on_shared_or_file",
                holds: f.file_backed || f.shared,
                sure: "MADV_WIPEONFORK works only on private anonymous memory, and the area is file or shared memory".into(),
                maybe: "the area may be file or shared memory, and MADV_WIPEONFORK works only on private anonymous memory".into(),
            }),
            GUARD_INSTALL => {
                rows.push(locked(&name, f.locked));
                rows.push(pfn(&name, f.special()));
                rows.push(hugetlb(&name, f.hugetlb));
            }
            GUARD_REMOVE => {
                // Locked memory is fine for removing guards.
                rows.push(pfn(&name, f.special()));
                rows.push(hugetlb(&name, f.hugetlb));
            }
            POPULATE_READ | POPULATE_WRITE => {
                // GUP refuses device memory, and writing where the mapping
                // does not allow it; madvise_populate turns that into EINVAL.
                let write = advice == POPULATE_WRITE;
                let needs = if write {
                    "memory it may write"
                } else {
                    "memory it may read"
                };
                rows.push(Row {
                    code: "populate_incompatible_area",
                    holds: f.pfnmap || f.io || (write && !f.writable),
                    sure: format!("{name} can only fault in ordinary {needs}, and the area is not that (device memory or no permission)"),
                    maybe: format!("the area may not allow {name} (device memory, or a mapping without the permission: {name} needs {needs})"),
                });
            }
            COLLAPSE => self.collapse_rows(&mut rows, f),
            _ => {}
        }
        let Some(area) = self.area else {
            for row in rows {
                self.add(Support::Unverified, row.code, row.maybe);
            }
            return;
        };
        for row in rows.into_iter().filter(|r| r.holds) {
            self.add(Support::Proven, row.code, row.sure);
        }
        if advice == DODUMP && f.special() && !f.hugetlb {
            self.add(
                Support::Proven,
                "dodump_on_special",
                "MADV_DODUMP refuses special areas (VM_PFNMAP, VM_IO, VM_MIXEDMAP, VM_DONTEXPAND), and the area is one",
            );
        }
        if FLAG_CHANGES.contains(&advice)
            && f.hugetlb
            && let (Some(h), Some(s), Some(l)) = (area.huge_page_size, start, self.call.len)
            && (s % h != 0 || s.wrapping_add(l) % h != 0)
        {
            self.add(
                Support::Proven,
                "hugetlb_area",
                format!("{name} would split the hugetlb area off a huge page boundary ({h} bytes), which the kernel refuses"),
            );
        }
    }

    fn collapse_rows(&self, rows: &mut Vec<Row>, f: AreaFlags) {
        let pmd = self.facts.thp_pmd_size;
        let fits = match (self.area, pmd) {
            // The highest PMD-aligned block must end inside the area
            // (thp_vma_suitable_order on vm_end).
            (Some(a), Some(p)) => a.end >= p && (a.end - p) / p * p >= a.start,
            _ => true,
        };
        let size = pmd.map_or("a huge page".to_string(), |p| {
            format!("an aligned {} KiB huge page", p / 1024)
        });
        rows.push(Row {
            code: "collapse_cannot_hold_huge_page",
            holds: !fits,
            sure: format!(
                "MADV_COLLAPSE needs a memory area that can hold {size}, and this one cannot"
            ),
            maybe: format!(
                "the memory area may be too small to hold {size}, which MADV_COLLAPSE needs"
            ),
        });
        rows.push(Row {
            code: "collapse_not_eligible",
            holds: f.nohugepage || f.hugetlb || f.special(),
            sure: "MADV_COLLAPSE refuses areas not eligible for huge pages (marked MADV_NOHUGEPAGE, hugetlb or special), and the area is one".into(),
            maybe: "the area may not be eligible for huge pages (marked MADV_NOHUGEPAGE, hugetlb or special), which MADV_COLLAPSE refuses".into(),
        });
    }

    fn enomem(&mut self) {
        let advice = self.call.advice;
        match self.area {
            Some(a) if !a.mapped => {
                let sentence = match (a.unmapped, self.range()) {
                    (Some(gap), Some(range)) => format!(
                        "the range {range} is not mapped at {:#x}: madvise advised what is mapped and returned ENOMEM",
                        gap.start
                    ),
                    (Some(gap), None) => format!(
                        "the range is not mapped at {:#x}: madvise advised what is mapped and returned ENOMEM",
                        gap.start
                    ),
                    (None, _) => self.unmapped_sentence(),
                };
                self.add(Support::Proven, "range_not_mapped", sentence);
            }
            Some(_) => {}
            None => {
                let s = self.unmapped_sentence();
                self.add(Support::Allowed, "range_not_mapped", s);
            }
        }
        if matches!(advice, POPULATE_READ | POPULATE_WRITE | COLLAPSE) {
            self.add(
                Support::Allowed,
                "out_of_memory",
                format!(
                    "the kernel ran out of memory while working on {}",
                    self.advice_str()
                ),
            );
        }
    }

    fn unmapped_sentence(&self) -> String {
        match self.range() {
            Some(r) => {
                format!("part of the range {r} is not mapped; the mapped rest was still advised")
            }
            None => "part of the range is not mapped; the mapped rest was still advised".into(),
        }
    }

    fn eagain(&mut self) {
        self.add(
            Support::Allowed,
            "area_split_failed",
            "the kernel could not split the memory area for lack of memory (or the process is at vm.max_map_count); retrying may work",
        );
        if self.call.advice == COLLAPSE {
            self.add(
                Support::Allowed,
                "collapse_transient",
                "MADV_COLLAPSE hit a transient failure (pages locked, under writeback or being migrated); retrying may work",
            );
        }
    }

    fn eperm(&mut self) {
        let advice = self.call.advice;
        if matches!(advice, HWPOISON | SOFT_OFFLINE) {
            self.add(
                Support::Allowed,
                "hwpoison_needs_cap_sys_admin",
                format!("{} needs CAP_SYS_ADMIN", self.advice_str()),
            );
        }
        if DISCARD.contains(&advice) {
            self.sealed();
        }
        if self.call.process() && self.call.remote != Some(false) {
            self.add(
                Support::Allowed,
                "process_madvise_needs_cap_sys_nice",
                "process_madvise on another process needs CAP_SYS_NICE",
            );
        }
    }

    fn sealed(&mut self) {
        let name = self.advice_str();
        let sentence = format!(
            "the memory is sealed (mseal), and sealed read-only anonymous memory cannot be discarded with {name}"
        );
        match self.area.map(|a| a.flags) {
            Some(f) if f.sealed => self.add(Support::Proven, "sealed", sentence),
            Some(_) => {}
            None => match self.release() {
                Some(r) if r < MSEAL => self.elsewhere.push(Cause::new(
                    "sealed",
                    format!(
                        "this host's kernel ({}) predates mseal, so the call must have run on a kernel of Linux 6.10 or later where the memory was sealed",
                        self.facts.kernel_release.as_deref().unwrap_or("?")
                    ),
                )),
                _ => self.add(
                    Support::Unverified,
                    "sealed",
                    format!("the memory may be sealed (mseal); sealed read-only anonymous memory cannot be discarded with {name}"),
                ),
            },
        }
    }

    fn eacces(&mut self) {
        if self.call.advice == REMOVE {
            let sentence = "MADV_REMOVE needs a shared mapping that may be written, and this one is private or read-only";
            match self.area.map(|a| a.flags) {
                Some(f) if f.shared && (f.may_write || f.writable) => {}
                Some(_) => self.add(Support::Proven, "remove_not_shared_writable", sentence),
                None => self.add(Support::Allowed, "remove_not_shared_writable", sentence),
            }
        }
        if self.call.process() && self.call.remote != Some(false) {
            self.add(
                Support::Allowed,
                "process_madvise_ptrace_denied",
                "the caller may not inspect the target process (a ptrace access check failed)",
            );
        }
    }

    fn ebadf(&mut self) {
        if self.call.advice == WILLNEED {
            let file = self.area.map(|a| a.flags.file_backed);
            let fact = &self.facts.swap;
            let sentence = "this kernel is built without swap (CONFIG_SWAP), so MADV_WILLNEED on anonymous memory fails";
            match (file, fact.value) {
                (Some(true), _) => {}
                (_, Tri::No) => self.add(Support::Proven, "no_swap_willneed", sentence),
                (_, Tri::Unknown) => self.add(
                    Support::Unverified,
                    "no_swap_willneed",
                    format!("this kernel may be built without swap (CONFIG_SWAP; could not tell: {}), and such a kernel fails MADV_WILLNEED on anonymous memory", fact.source),
                ),
                (_, Tri::Yes) => self.elsewhere.push(Cause::new(
                    "no_swap_willneed",
                    format!("this host's kernel has swap support ({}), so the call must have run on a kernel built without CONFIG_SWAP, which fails MADV_WILLNEED on anonymous memory", fact.source),
                )),
            }
        }
        if self.call.process() {
            self.add(
                Support::Allowed,
                "process_madvise_bad_pidfd",
                "the pidfd is not an open pidfd",
            );
        }
    }

    fn has_proven(&self) -> bool {
        self.found.iter().any(|(s, _)| *s == Support::Proven)
    }

    fn conclude(self, origin: FactsOrigin) -> Explanation {
        let mut out = Explanation {
            kind: ExplanationKind::Unknown,
            also: Vec::new(),
            other_kernel: false,
            facts_origin: origin,
            note: None,
        };
        if self.call.errno <= 0 {
            out.note = Some("the call did not fail".into());
            return out;
        }
        let mut proven = self
            .found
            .iter()
            .filter(|(s, _)| *s == Support::Proven)
            .map(|(_, c)| c.clone());
        if let Some(first) = proven.next() {
            out.kind = ExplanationKind::Single(first);
            out.also = proven.collect();
            return out;
        }
        // Text brought to this host may come from another kernel: a cause
        // this host's facts rule out stays possible beside the open ones.
        let could_be_elsewhere = origin == FactsOrigin::ThisHost && self.area.is_none();
        let mut open: Vec<(Support, Cause)> = self.found;
        if !open.is_empty() && could_be_elsewhere {
            // Only missing features: a kernel too old for the advice is
            // too unlikely to list beside real candidates.
            let elsewhere = self
                .elsewhere
                .iter()
                .filter(|c| c.code.ends_with("_not_built_in") || c.code == "no_swap_willneed")
                .map(|c| {
                    let sentence = c.sentence.replace("must have run", "may have run");
                    (Support::Unverified, Cause::new(&c.code, sentence))
                });
            open.extend(elsewhere);
        }
        match open.as_slice() {
            [(Support::Allowed, c)] => out.kind = ExplanationKind::Single(c.clone()),
            [] => {}
            _ => out.kind = ExplanationKind::Possible(open.into_iter().map(|(_, c)| c).collect()),
        }
        if !matches!(out.kind, ExplanationKind::Unknown) {
            return out;
        }
        let what = format!(
            "{} failing with {}",
            advice_label(self.call.advice),
            errno_label(self.call.errno)
        );
        // A memory area is only captured by tracing the call on its own
        // kernel, so with one the call cannot have run elsewhere.
        if self.elsewhere.is_empty() || self.area.is_some() {
            out.note = Some(format!(
                "no known reason fits {what} with what is known of the call, its memory area and the kernel"
            ));
            return out;
        }
        match origin {
            FactsOrigin::ThisHost => {
                out.other_kernel = true;
                let mut causes = self.elsewhere;
                out.kind = if causes.len() == 1 {
                    ExplanationKind::Single(causes.remove(0))
                } else {
                    ExplanationKind::Possible(causes)
                };
            }
            FactsOrigin::Capture => {
                let ruled: Vec<&str> = self.elsewhere.iter().map(|c| c.code.as_str()).collect();
                out.note = Some(format!(
                    "the facts recorded with the capture rule out every known reason for {what} ({}); they may not describe the kernel the call ran on",
                    ruled.join(", ")
                ));
            }
        }
        out
    }
}

fn advice_label(advice: i32) -> String {
    advice_name(advice).map_or_else(|| format!("advice {advice}"), str::to_string)
}

fn errno_label(errno: i32) -> String {
    errno_name(errno).map_or_else(|| format!("errno {errno}"), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: Option<u64> = Some(4096);
    const START: u64 = 0x7f06_e7f3_0000;
    const CRIU: &str = "this kernel is built without transparent huge pages (CONFIG_TRANSPARENT_HUGEPAGE), so it rejects MADV_NOHUGEPAGE; CRIU images dumped on a kernel with commit c4608d1bf7c6 carry this advice for thread stacks; see kernel commit 7190b3c8bd2b";

    fn fact(t: Tri, src: &str) -> Fact {
        Fact {
            value: t,
            source: src.to_string(),
        }
    }

    /// A 6.18 host with 4 KiB pages and 2 MiB THP blocks, whose features are
    /// as given.
    fn host(thp: Tri, ksm: Tri, mf: Tri, swap: Tri) -> HostFacts {
        let mut h = HostFacts::unknown();
        h.kernel_release = Some("6.18.0".into());
        h.page_size = Some(4096);
        h.thp = fact(thp, "/sys/kernel/mm/transparent_hugepage");
        h.thp_pmd_size = (thp == Tri::Yes).then_some(2 << 20);
        h.ksm = fact(ksm, "/sys/kernel/mm/ksm");
        h.memory_failure = fact(mf, "/proc/sys/vm/memory_failure_early_kill");
        h.swap = fact(swap, "/proc/swaps");
        h
    }

    fn full() -> HostFacts {
        host(Tri::Yes, Tri::Yes, Tri::Yes, Tri::Yes)
    }

    fn no_thp() -> HostFacts {
        host(Tri::No, Tri::Yes, Tri::Yes, Tri::Yes)
    }

    fn unknown_host() -> HostFacts {
        let mut h = HostFacts::unknown();
        h.thp.source = "no /sys/kernel/mm/transparent_hugepage and no kernel config".into();
        h
    }

    /// A private anonymous read-write area around the call's range.
    fn anon() -> Area {
        Area {
            start: START,
            end: START + (4 << 20),
            mapped: true,
            unmapped: None,
            huge_page_size: None,
            flags: AreaFlags {
                writable: true,
                may_write: true,
                anonymous: true,
                ..AreaFlags::default()
            },
        }
    }

    fn with(f: impl FnOnce(&mut AreaFlags)) -> Area {
        let mut a = anon();
        f(&mut a.flags);
        a
    }

    fn run(call: &Call, area: Option<&Area>, facts: &HostFacts) -> Explanation {
        explain(call, area, facts, facts.page_size)
    }

    fn single(e: &Explanation) -> (&str, &str) {
        let c = e.single().unwrap_or_else(|| panic!("not single: {e:?}"));
        (c.code.as_str(), c.sentence.as_str())
    }

    #[test]
    fn criu_nohugepage_on_a_kernel_without_thp() {
        let e = run(&Call::madvise(START, 4096, 15, EINVAL), None, &no_thp());
        assert_eq!(single(&e), ("thp_not_built_in", CRIU));
        assert!(!e.other_kernel);
        assert!(e.also.is_empty());
        // The area does not matter: the kernel rejects the advice first.
        let e = run(
            &Call::madvise(START, 4096, 15, EINVAL),
            Some(&anon()),
            &no_thp(),
        );
        assert_eq!(single(&e).0, "thp_not_built_in");
    }

    #[test]
    fn hugepage_and_collapse_without_thp_name_themselves_without_criu() {
        for (advice, name) in [(14, "MADV_HUGEPAGE"), (25, "MADV_COLLAPSE")] {
            let e = run(&Call::madvise(START, 4096, advice, EINVAL), None, &no_thp());
            assert_eq!(
                single(&e),
                (
                    "thp_not_built_in",
                    format!("this kernel is built without transparent huge pages (CONFIG_TRANSPARENT_HUGEPAGE), so it rejects {name}").as_str()
                )
            );
        }
    }

    #[test]
    fn thp_unknown_is_only_possible() {
        let e = run(
            &Call::madvise(START, 4096, 15, EINVAL),
            None,
            &unknown_host(),
        );
        assert_eq!(e.codes(), ["thp_not_built_in"]);
        assert!(matches!(e.kind, ExplanationKind::Possible(_)));
        assert_eq!(
            e.causes()[0].sentence,
            "this kernel may be built without transparent huge pages (CONFIG_TRANSPARENT_HUGEPAGE; could not tell: no /sys/kernel/mm/transparent_hugepage and no kernel config), and such a kernel rejects MADV_NOHUGEPAGE; CRIU images dumped on a kernel with commit c4608d1bf7c6 carry this advice for thread stacks; see kernel commit 7190b3c8bd2b"
        );
    }

    #[test]
    fn thp_on_this_host_means_the_call_ran_elsewhere() {
        let call = Call::madvise(START, 4096, 15, EINVAL);
        let e = explain_with_context(&call, None, &full(), PAGE, FactsOrigin::ThisHost);
        assert!(e.other_kernel);
        assert_eq!(
            single(&e),
            (
                "thp_not_built_in",
                "this host's kernel has transparent huge pages (/sys/kernel/mm/transparent_hugepage), so the call must have run on a kernel built without CONFIG_TRANSPARENT_HUGEPAGE, which rejects MADV_NOHUGEPAGE; CRIU images dumped on a kernel with commit c4608d1bf7c6 carry this advice for thread stacks; see kernel commit 7190b3c8bd2b"
            )
        );
        // Facts stored with a capture describe the call's own kernel: they
        // contradict the failure, and the engine says so instead.
        let e = explain_with_context(&call, None, &full(), PAGE, FactsOrigin::Capture);
        assert_eq!(e.kind, ExplanationKind::Unknown);
        assert!(!e.other_kernel);
        assert_eq!(
            e.note.as_deref(),
            Some(
                "the facts recorded with the capture rule out every known reason for MADV_NOHUGEPAGE failing with EINVAL (thp_not_built_in); they may not describe the kernel the call ran on"
            )
        );
        // Capture facts of a kernel without THP explain it as usual.
        let e = explain_with_context(&call, None, &no_thp(), PAGE, FactsOrigin::Capture);
        assert_eq!(single(&e), ("thp_not_built_in", CRIU));
    }

    #[test]
    fn misaligned_start_is_sure_whatever_the_advice() {
        for advice in [0, 4, 15, 21] {
            let e = run(
                &Call::madvise(START + 8, 4096, advice, EINVAL),
                None,
                &full(),
            );
            assert_eq!(
                single(&e),
                (
                    "misaligned_start",
                    "the start address 0x7f06e7f30008 is not a multiple of the page size (4096 bytes)"
                ),
                "advice {advice}"
            );
        }
        // Without THP both are wrong; the kernel checks the advice first.
        let e = run(&Call::madvise(START + 8, 4096, 15, EINVAL), None, &no_thp());
        assert_eq!(single(&e).0, "thp_not_built_in");
        assert_eq!(e.also.len(), 1);
        assert_eq!(e.also[0].code, "misaligned_start");
    }

    #[test]
    fn page_size_unknown_makes_4k_alignment_only_possible() {
        let call = Call::madvise(0x1000, 4096, 0, EINVAL);
        let e = explain(&call, None, &full(), None);
        assert_eq!(e.codes(), ["misaligned_start"]);
        assert!(matches!(e.kind, ExplanationKind::Possible(_)));
        // With 64 KiB pages known, it is sure.
        let e = explain(&call, None, &full(), Some(65536));
        assert_eq!(single(&e).0, "misaligned_start");
        // Not a multiple of 4096: misaligned on every Linux.
        let e = explain(&Call::madvise(0x1008, 1, 0, EINVAL), None, &full(), None);
        assert_eq!(single(&e).0, "misaligned_start");
    }

    #[test]
    fn length_overflow_is_sure() {
        let start = 0xffff_ffff_ffff_f000;
        let e = run(&Call::madvise(start, 0x2000, 0, EINVAL), None, &full());
        assert_eq!(
            single(&e),
            (
                "length_overflow",
                "the length 0x2000 rounded up to whole pages runs past the end of the address space from 0xfffffffffffff000"
            )
        );
        // A length that rounds up to zero.
        let e = run(&Call::madvise(0x1000, u64::MAX, 0, EINVAL), None, &full());
        assert_eq!(single(&e).0, "length_overflow");
        // One that fits is no cause.
        let e = run(&Call::madvise(0x1000, 0x1000, 0, EINVAL), None, &full());
        assert_eq!(e.kind, ExplanationKind::Unknown);
    }

    #[test]
    fn unknown_advice_values() {
        for advice in [5, 6, 7, 26, 30, 99, 104, 9999, -1] {
            let e = run(&Call::madvise(START, 4096, advice, EINVAL), None, &full());
            assert_eq!(
                single(&e),
                (
                    "advice_unknown_to_kernel",
                    format!("advice {advice} is not one the kernel defines").as_str()
                )
            );
        }
    }

    #[test]
    fn advice_newer_than_the_kernel() {
        let mut old = full();
        old.kernel_release = Some("6.1.0".into());
        let e = run(
            &Call::madvise(START, 4096, 102, EINVAL),
            Some(&anon()),
            &old,
        );
        assert_eq!(e.codes(), ["advice_unknown_to_kernel"]);
        assert!(matches!(e.kind, ExplanationKind::Possible(_)));
        assert_eq!(
            e.causes()[0].sentence,
            "MADV_GUARD_INSTALL came in Linux 6.13 and this kernel is 6.1.0, so unless its vendor backported it, the kernel does not know this advice"
        );
        // On this 6.18 host nothing fits a KEEPONFORK failing with EINVAL:
        // the call ran on an older kernel.
        let e = run(&Call::madvise(START, 4096, 19, EINVAL), None, &full());
        assert!(e.other_kernel);
        assert_eq!(
            single(&e),
            (
                "advice_unknown_to_kernel",
                "this host's kernel (6.18.0) knows MADV_KEEPONFORK, so the call must have run on an older kernel (before Linux 4.14), which does not"
            )
        );
        // Unless an area was captured: then it ran here, and nothing fits.
        let e = run(
            &Call::madvise(START, 4096, 102, EINVAL),
            Some(&anon()),
            &full(),
        );
        assert!(!e.other_kernel);
        assert_eq!(e.kind, ExplanationKind::Unknown);
    }

    #[test]
    fn ksm_and_memory_failure_not_built_in() {
        let h = host(Tri::Yes, Tri::No, Tri::No, Tri::Yes);
        let e = run(&Call::madvise(START, 4096, 12, EINVAL), None, &h);
        assert_eq!(
            single(&e),
            (
                "ksm_not_built_in",
                "this kernel is built without kernel samepage merging (CONFIG_KSM), so it rejects MADV_MERGEABLE"
            )
        );
        let e = run(&Call::madvise(START, 4096, 13, EINVAL), None, &h);
        assert_eq!(single(&e).0, "ksm_not_built_in");
        let e = run(&Call::madvise(START, 4096, 100, EINVAL), None, &h);
        assert_eq!(
            single(&e),
            (
                "memory_failure_not_built_in",
                "this kernel is built without memory failure handling (CONFIG_MEMORY_FAILURE), so it rejects MADV_HWPOISON"
            )
        );
        let e = run(&Call::madvise(START, 4096, 101, EINVAL), None, &h);
        assert_eq!(single(&e).0, "memory_failure_not_built_in");
        // With memory failure built in, EPERM is about the capability.
        let e = run(&Call::madvise(START, 4096, 100, EPERM), None, &full());
        assert_eq!(
            single(&e),
            (
                "hwpoison_needs_cap_sys_admin",
                "MADV_HWPOISON needs CAP_SYS_ADMIN"
            )
        );
        // KSM built in here: MERGEABLE EINVAL must have come from elsewhere.
        let e = run(&Call::madvise(START, 4096, 12, EINVAL), None, &full());
        assert!(e.other_kernel);
        assert_eq!(single(&e).0, "ksm_not_built_in");
    }

    #[test]
    fn einval_rows_for_the_area_hit() {
        let cases: Vec<(i32, Area, &str, &str)> = vec![
            (
                4,
                with(|f| f.locked = true),
                "area_locked",
                "MADV_DONTNEED refuses locked (mlocked) memory, and the area is locked",
            ),
            (
                4,
                with(|f| f.pfnmap = true),
                "pfn_or_io_area",
                "MADV_DONTNEED refuses areas of raw page frames or device memory (VM_PFNMAP/VM_IO), and the area is one",
            ),
            (
                8,
                with(|f| f.locked = true),
                "area_locked",
                "MADV_FREE refuses locked (mlocked) memory, and the area is locked",
            ),
            (
                8,
                with(|f| {
                    f.anonymous = false;
                    f.file_backed = true;
                    f.shared = true
                }),
                "free_on_non_anonymous",
                "MADV_FREE works only on private anonymous memory, and the area is file or shared memory",
            ),
            (
                20,
                with(|f| f.hugetlb = true),
                "hugetlb_area",
                "the area is hugetlb memory, which does not take MADV_COLD",
            ),
            (
                21,
                with(|f| f.locked = true),
                "area_locked",
                "MADV_PAGEOUT refuses locked (mlocked) memory, and the area is locked",
            ),
            (
                9,
                with(|f| f.locked = true),
                "area_locked",
                "MADV_REMOVE refuses locked (mlocked) memory, and the area is locked",
            ),
            (
                9,
                anon(),
                "remove_on_private",
                "MADV_REMOVE needs file or shared memory, and the area is private anonymous memory",
            ),
            (
                11,
                with(|f| f.io = true),
                "pfn_or_io_area",
                "MADV_DOFORK refuses device I/O memory (VM_IO), and the area is such memory",
            ),
            (
                18,
                with(|f| {
                    f.shared = true;
                    f.file_backed = true;
                    f.anonymous = false
                }),
                "wipeonfork_on_shared_or_file",
                "MADV_WIPEONFORK works only on private anonymous memory, and the area is file or shared memory",
            ),
            (
                102,
                with(|f| f.mixedmap = true),
                "pfn_or_io_area",
                "MADV_GUARD_INSTALL refuses areas of raw page frames or device memory (VM_PFNMAP/VM_IO), and the area is one",
            ),
            (
                102,
                with(|f| f.locked = true),
                "area_locked",
                "MADV_GUARD_INSTALL refuses locked (mlocked) memory, and the area is locked",
            ),
            (
                25,
                with(|f| f.nohugepage = true),
                "collapse_not_eligible",
                "MADV_COLLAPSE refuses areas not eligible for huge pages (marked MADV_NOHUGEPAGE, hugetlb or special), and the area is one",
            ),
            (
                23,
                with(|f| f.writable = false),
                "populate_incompatible_area",
                "MADV_POPULATE_WRITE can only fault in ordinary memory it may write, and the area is not that (device memory or no permission)",
            ),
            (
                103,
                with(|f| f.pfnmap = true),
                "pfn_or_io_area",
                "MADV_GUARD_REMOVE refuses areas of raw page frames or device memory (VM_PFNMAP/VM_IO), and the area is one",
            ),
            (
                17,
                with(|f| f.pfnmap = true),
                "dodump_on_special",
                "MADV_DODUMP refuses special areas (VM_PFNMAP, VM_IO, VM_MIXEDMAP, VM_DONTEXPAND), and the area is one",
            ),
        ];
        for (advice, area, code, sentence) in cases {
            let e = run(
                &Call::madvise(START, 4096, advice, EINVAL),
                Some(&area),
                &full(),
            );
            assert_eq!(single(&e), (code, sentence), "advice {advice}");
        }
    }

    #[test]
    fn hugetlb_dontneed_needs_a_huge_aligned_start() {
        let mut a = with(|f| {
            f.hugetlb = true;
            f.anonymous = false;
            f.file_backed = true;
        });
        a.huge_page_size = Some(2 << 20);
        let e = run(
            &Call::madvise(START + 0x1000, 4096, 4, EINVAL),
            Some(&a),
            &full(),
        );
        assert_eq!(
            single(&e),
            (
                "hugetlb_area",
                "the area is hugetlb memory, which takes MADV_DONTNEED only from a start aligned to its huge page size (2097152 bytes)"
            )
        );
        // Aligned, and hugetlb ignores VM_LOCKED here: nothing fits.
        a.flags.locked = true;
        let e = run(
            &Call::madvise(0x7f06_e7e0_0000, 2 << 20, 4, EINVAL),
            Some(&a),
            &full(),
        );
        assert_eq!(e.kind, ExplanationKind::Unknown);
        // Splitting a hugetlb area off a huge page boundary.
        let e = run(
            &Call::madvise(START + 0x1000, 4096, 16, EINVAL),
            Some(&a),
            &full(),
        );
        assert_eq!(single(&e).0, "hugetlb_area");
    }

    #[test]
    fn dontneed_locked_accepts_locked_memory() {
        let e = run(
            &Call::madvise(START, 4096, 24, EINVAL),
            Some(&with(|f| f.locked = true)),
            &full(),
        );
        assert_eq!(e.kind, ExplanationKind::Unknown);
        assert_eq!(
            e.note.as_deref(),
            Some(
                "no known reason fits MADV_DONTNEED_LOCKED failing with EINVAL with what is known of the call, its memory area and the kernel"
            )
        );
    }

    #[test]
    fn collapse_on_an_area_too_small_for_a_huge_page() {
        let mut a = anon();
        a.end = a.start + 4096;
        let e = run(&Call::madvise(START, 4096, 25, EINVAL), Some(&a), &full());
        assert_eq!(
            single(&e),
            (
                "collapse_cannot_hold_huge_page",
                "MADV_COLLAPSE needs a memory area that can hold an aligned 2048 KiB huge page, and this one cannot"
            )
        );
        // 4 MiB from a 64 KiB-aligned start holds one aligned 2 MiB block.
        let e = run(
            &Call::madvise(START, 4096, 25, EINVAL),
            Some(&anon()),
            &full(),
        );
        assert_eq!(e.kind, ExplanationKind::Unknown);
    }

    #[test]
    fn without_an_area_every_area_row_is_possible() {
        let e = run(&Call::madvise(START, 4096, 4, EINVAL), None, &full());
        assert_eq!(e.codes(), ["area_locked", "pfn_or_io_area", "hugetlb_area"]);
        assert!(matches!(e.kind, ExplanationKind::Possible(_)));
        assert_eq!(
            e.causes()[0].sentence,
            "the area may be locked (mlocked), which MADV_DONTNEED refuses"
        );
        let e = run(&Call::madvise(START, 4096, 9, EINVAL), None, &full());
        assert_eq!(e.codes(), ["area_locked", "remove_on_private"]);
        let e = run(&Call::madvise(START, 4096, 18, EINVAL), None, &full());
        assert_eq!(e.codes(), ["wipeonfork_on_shared_or_file"]);
        assert!(matches!(e.kind, ExplanationKind::Possible(_)));
    }

    #[test]
    fn enomem_says_which_part_is_not_mapped() {
        let mut a = anon();
        a.mapped = false;
        a.unmapped = Some(Span {
            start: START + 0x2000,
            end: START + 0x4000,
        });
        let e = run(&Call::madvise(START, 0x4000, 4, ENOMEM), Some(&a), &full());
        assert_eq!(
            single(&e),
            (
                "range_not_mapped",
                "the range 0x7f06e7f30000-0x7f06e7f34000 is not mapped at 0x7f06e7f32000: madvise advised what is mapped and returned ENOMEM"
            )
        );
        // No area: the table has one reason for DONTNEED.
        let e = run(&Call::madvise(START, 0x4000, 4, ENOMEM), None, &full());
        assert_eq!(
            single(&e),
            (
                "range_not_mapped",
                "part of the range 0x7f06e7f30000-0x7f06e7f34000 is not mapped; the mapped rest was still advised"
            )
        );
        // POPULATE can also run out of memory.
        let e = run(&Call::madvise(START, 0x4000, 23, ENOMEM), None, &full());
        assert_eq!(e.codes(), ["range_not_mapped", "out_of_memory"]);
        assert!(matches!(e.kind, ExplanationKind::Possible(_)));
        // A fully mapped range rules the first out.
        let e = run(
            &Call::madvise(START, 0x4000, 23, ENOMEM),
            Some(&anon()),
            &full(),
        );
        assert_eq!(single(&e).0, "out_of_memory");
        let e = run(
            &Call::madvise(START, 0x4000, 4, ENOMEM),
            Some(&anon()),
            &full(),
        );
        assert_eq!(e.kind, ExplanationKind::Unknown);
    }

    #[test]
    fn remove_eacces_and_eopnotsupp() {
        let private_file = with(|f| {
            f.anonymous = false;
            f.file_backed = true;
        });
        let e = run(
            &Call::madvise(START, 4096, 9, EACCES),
            Some(&private_file),
            &full(),
        );
        assert_eq!(
            single(&e),
            (
                "remove_not_shared_writable",
                "MADV_REMOVE needs a shared mapping that may be written, and this one is private or read-only"
            )
        );
        let shared = with(|f| {
            f.anonymous = false;
            f.file_backed = true;
            f.shared = true;
        });
        let e = run(
            &Call::madvise(START, 4096, 9, EACCES),
            Some(&shared),
            &full(),
        );
        assert_eq!(e.kind, ExplanationKind::Unknown);
        let e = run(
            &Call::madvise(START, 4096, 9, EOPNOTSUPP),
            Some(&shared),
            &full(),
        );
        assert_eq!(single(&e).0, "remove_hole_punch_unsupported");
        // EACCES is not a reason any other advice fails with.
        let e = run(&Call::madvise(START, 4096, 4, EACCES), None, &full());
        assert_eq!(e.kind, ExplanationKind::Unknown);
    }

    #[test]
    fn willneed_ebadf_without_swap() {
        let call = Call::madvise(START, 4096, 3, EBADF);
        let e = run(&call, None, &host(Tri::Yes, Tri::Yes, Tri::Yes, Tri::No));
        assert_eq!(
            single(&e),
            (
                "no_swap_willneed",
                "this kernel is built without swap (CONFIG_SWAP), so MADV_WILLNEED on anonymous memory fails"
            )
        );
        let e = run(&call, None, &unknown_host());
        assert_eq!(e.codes(), ["no_swap_willneed"]);
        assert!(matches!(e.kind, ExplanationKind::Possible(_)));
        let e = run(&call, None, &full());
        assert!(e.other_kernel);
        assert_eq!(single(&e).0, "no_swap_willneed");
        let file = with(|f| {
            f.anonymous = false;
            f.file_backed = true;
        });
        let e = run(
            &call,
            Some(&file),
            &host(Tri::Yes, Tri::Yes, Tri::Yes, Tri::No),
        );
        assert_eq!(e.kind, ExplanationKind::Unknown);
    }

    #[test]
    fn sealed_memory() {
        let sealed = with(|f| {
            f.sealed = true;
            f.writable = false;
        });
        let e = run(
            &Call::madvise(START, 4096, 4, EPERM),
            Some(&sealed),
            &full(),
        );
        assert_eq!(
            single(&e),
            (
                "sealed",
                "the memory is sealed (mseal), and sealed read-only anonymous memory cannot be discarded with MADV_DONTNEED"
            )
        );
        let e = run(&Call::madvise(START, 4096, 4, EPERM), None, &full());
        assert_eq!(e.codes(), ["sealed"]);
        assert!(matches!(e.kind, ExplanationKind::Possible(_)));
        let mut old = full();
        old.kernel_release = Some("6.1.0".into());
        let e = run(&Call::madvise(START, 4096, 4, EPERM), None, &old);
        assert!(e.other_kernel);
        assert_eq!(single(&e).0, "sealed");
        // COLD discards nothing: EPERM has no reason.
        let e = run(&Call::madvise(START, 4096, 20, EPERM), None, &full());
        assert_eq!(e.kind, ExplanationKind::Unknown);
    }

    fn pm(advice: i32, errno: i32, remote: Option<bool>, flags: u32) -> Call {
        Call {
            syscall: Syscall::ProcessMadvise,
            start: Some(START),
            len: Some(4096),
            advice,
            errno,
            remote,
            flags: Some(flags),
            vlen: Some(1),
        }
    }

    #[test]
    fn process_madvise_rows() {
        let e = run(&pm(20, EINVAL, Some(true), 1), None, &full());
        assert_eq!(
            single(&e),
            (
                "process_madvise_flags",
                "process_madvise takes no flags yet, and the call passed 0x1"
            )
        );
        let e = run(&pm(4, EINVAL, Some(true), 0), None, &full());
        assert_eq!(
            single(&e),
            (
                "process_madvise_remote_advice",
                "MADV_DONTNEED cannot be given to another process: process_madvise on another process accepts only MADV_COLD, MADV_PAGEOUT, MADV_WILLNEED and MADV_COLLAPSE"
            )
        );
        // Not known whether remote: possible, beside the area rows.
        let e = run(&pm(4, EINVAL, None, 0), None, &full());
        assert_eq!(
            e.codes(),
            [
                "process_madvise_remote_advice",
                "area_locked",
                "pfn_or_io_area",
                "hugetlb_area"
            ]
        );
        let e = run(&pm(20, EPERM, Some(true), 0), None, &full());
        assert_eq!(single(&e).0, "process_madvise_needs_cap_sys_nice");
        let e = run(&pm(20, EBADF, None, 0), None, &full());
        assert_eq!(single(&e).0, "process_madvise_bad_pidfd");
        let mut many = pm(20, EINVAL, Some(true), 0);
        many.vlen = Some(2000);
        assert_eq!(single(&run(&many, None, &full())).0, "process_madvise_vlen");
        // An unreadable iovec: the start may be misaligned.
        let mut blind = pm(20, EINVAL, Some(true), 0);
        blind.start = None;
        blind.len = None;
        let e = run(&blind, None, &full());
        assert_eq!(
            e.codes(),
            [
                "misaligned_start",
                "length_overflow",
                "area_locked",
                "pfn_or_io_area",
                "hugetlb_area"
            ]
        );
    }

    #[test]
    fn other_errnos() {
        let e = run(&Call::madvise(START, 4096, 4, 512), None, &full());
        assert_eq!(
            single(&e),
            (
                "restart_interrupted",
                "ERESTARTSYS is not a failure: a signal interrupted the call and the kernel runs it again"
            )
        );
        let e = run(&Call::madvise(START, 4096, 22, EINTR), None, &full());
        assert_eq!(single(&e).0, "fatal_signal");
        let e = run(&Call::madvise(START, 4096, 25, EAGAIN), None, &full());
        assert_eq!(e.codes(), ["area_split_failed", "collapse_transient"]);
        let e = run(&Call::madvise(START, 4096, 10, EAGAIN), None, &full());
        assert_eq!(single(&e).0, "area_split_failed");
        let e = run(&Call::madvise(START, 4096, 25, EBUSY), None, &full());
        assert_eq!(single(&e).0, "collapse_memcg_charge");
        let e = run(&Call::madvise(START, 4096, 22, EFAULT), None, &full());
        assert_eq!(single(&e).0, "populate_fault");
        let e = run(&Call::madvise(START, 4096, 23, EHWPOISON), None, &full());
        assert_eq!(single(&e).0, "populate_hwpoison");
        let e = run(&Call::madvise(START, 4096, 4, 28), None, &full());
        assert_eq!(e.kind, ExplanationKind::Unknown);
        let e = run(&Call::madvise(START, 4096, 4, 0), None, &full());
        assert_eq!(e.note.as_deref(), Some("the call did not fail"));
    }

    #[test]
    fn json_shape_and_round_trip() {
        let e = run(&Call::madvise(START, 4096, 15, EINVAL), None, &no_thp());
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.starts_with(r#"{"kind":"single","causes":{"cause_code":"thp_not_built_in","cause":"this kernel is built without"#), "{json}");
        assert!(json.contains(r#""facts_origin":"this_host""#), "{json}");
        let back: Explanation = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        let e = run(&Call::madvise(START, 4096, 4, EINVAL), None, &full());
        let back: Explanation = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        let e = run(&Call::madvise(START, 4096, 4, 28), None, &full());
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.starts_with(r#"{"kind":"unknown","#), "{json}");
        let back: Explanation = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        // Calls and areas are plain serde data too.
        let call = pm(4, EINVAL, None, 0);
        let json = serde_json::to_string(&call).unwrap();
        assert!(json.contains(r#""syscall":"process_madvise""#), "{json}");
        assert_eq!(serde_json::from_str::<Call>(&json).unwrap(), call);
        let area: Area =
            serde_json::from_str(r#"{"start":1,"end":2,"mapped":true,"flags":{"locked":true}}"#)
                .unwrap();
        assert!(area.flags.locked && !area.flags.shared);
    }

    #[test]
    fn display() {
        let e = run(&Call::madvise(START, 4096, 4, EINVAL), None, &full());
        assert_eq!(
            e.to_string(),
            "possible causes:\n  1. the area may be locked (mlocked), which MADV_DONTNEED refuses [area_locked]\n  2. the area may map raw page frames or device memory (VM_PFNMAP/VM_IO), which MADV_DONTNEED refuses [pfn_or_io_area]\n  3. the area may be hugetlb memory, which takes MADV_DONTNEED only from a start aligned to its huge page size [hugetlb_area]"
        );
        let e = run(&Call::madvise(START + 8, 4096, 15, EINVAL), None, &no_thp());
        assert_eq!(
            e.to_string(),
            format!(
                "cause: {CRIU} [thp_not_built_in]\nalso: the start address 0x7f06e7f30008 is not a multiple of the page size (4096 bytes) [misaligned_start]"
            )
        );
    }

    #[test]
    fn calls_from_events() {
        use crate::event::tests::sample;
        let c = Call::from_event(&sample(START, 4096, 15, -22)).unwrap();
        assert_eq!(c, Call::madvise(START, 4096, 15, 22));
        assert_eq!(Call::from_event(&sample(START, 4096, 15, 0)), None);
        let mut ev = sample(START, 4096, 20, -1);
        ev.syscall = Syscall::ProcessMadvise;
        ev.iovec_unreadable = true;
        ev.flags = 0;
        ev.vlen = 3;
        let c = Call::from_event(&ev).unwrap();
        assert_eq!(
            (c.start, c.len, c.flags, c.vlen, c.remote),
            (None, None, Some(0), Some(3), None)
        );
    }

    #[test]
    fn short_form_on_a_thp_host_keeps_the_other_kernel_possible() {
        let mut call = Call::madvise(0, 0, 15, EINVAL);
        call.start = None;
        call.len = None;
        let e = run(&call, None, &full());
        assert!(!e.other_kernel);
        assert_eq!(
            e.codes(),
            ["misaligned_start", "length_overflow", "thp_not_built_in"]
        );
        assert!(matches!(e.kind, ExplanationKind::Possible(_)));
        assert!(
            e.causes()[2]
                .sentence
                .starts_with("this host's kernel has transparent huge pages")
        );
        // Facts from a capture are the call's own: no other kernel.
        let e = explain_with_context(&call, None, &full(), PAGE, FactsOrigin::Capture);
        assert_eq!(e.codes(), ["misaligned_start", "length_overflow"]);
        // Without THP the advice alone is the cause.
        let e = run(&call, None, &no_thp());
        assert_eq!(single(&e), ("thp_not_built_in", CRIU));
    }
}
