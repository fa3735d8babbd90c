//! The only module that touches aya: loads the embedded kernel object with
//! thptrace's configuration, attaches the tracepoints, streams events out of
//! the ring buffer and reads the kernel counters. Everything it hands out is
//! plain data ([`Event`], [`KernelCounters`]).
//!
//! Dropping a [`Probe`] detaches and unloads everything it loaded: aya closes
//! the links, programs and maps with their file descriptors.

use anyhow::{Context, Result, anyhow, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap, Map, MapData, PerCpuArray},
    programs::{RawTracePoint, TracePoint},
};
use thptrace_common::{Config, RawEvent, counter, flags};
use tokio::io::unix::AsyncFd;

use crate::event::{Event, KernelCounters};

mod ring;
use ring::Ring;

/// The kernel object, built by `cargo xtask build-ebpf` and committed.
static OBJECT: &[u8] = aya::include_bytes_aligned!("../../bpf/thptrace-ebpf.o");

/// What to trace, as the kernel side filters it.
#[derive(Clone, Debug, Default)]
pub struct ProbeConfig {
    /// Thread-group ids to trace (empty: all).
    pub pids: Vec<u32>,
    /// Thread ids to trace (empty: all).
    pub tids: Vec<u32>,
    /// Advice values to trace (empty: all).
    pub advice: Vec<i32>,
    /// errno values to report (empty: all).
    pub errnos: Vec<i32>,
    /// Report successful calls too.
    pub report_success: bool,
    /// Trace processes forked by traced ones (implies a pid filter).
    pub follow_forks: bool,
    /// Ring buffer size in bytes (a power of two, a multiple of the page size).
    pub buffer_size: u32,
    /// Forward the kernel programs' own diagnostics (aya-log) to the log.
    pub kernel_log: bool,
    /// Do not time calls (`--no-durations`): the `sys_enter` program, which
    /// every system call on the host would run, is not attached.
    pub untimed: bool,
}

/// Default ring buffer: room for about 600,000 events, enough to ride out a
/// burst of a million back-to-back failing calls while user space catches up.
pub const DEFAULT_BUFFER_SIZE: u32 = 64 * 1024 * 1024;

/// The kernel wakes the loader once this fraction of the ring buffer is
/// waiting (or after `WAKE_INTERVAL_NS`): late enough to batch a burst,
/// early enough to leave room while the loader catches up.
const WAKE_FRACTION: u32 = 16;

/// How often the loader drains the ring buffer without being woken: the
/// longest an event that did not wake it can wait.
pub const DRAIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

const MADVISE_EXIT: &str = "sys_exit_madvise";
const PROCESS_MADVISE_EXIT: &str = "sys_exit_process_madvise";
/// The raw tracepoint every system call's entry passes (the program has the
/// same name).
const SYS_ENTER: &str = "sys_enter";

/// The kernel programs, loaded and attached.
pub struct Probe {
    // Keeps programs and links alive; dropping it detaches.
    _ebpf: Ebpf,
    events: AsyncFd<Ring>,
    counters: PerCpuArray<MapData, u64>,
    pid_filter: HashMap<MapData, u32, u8>,
    logger: Option<KernelLog>,
    program_ids: Vec<u32>,
    notices: Vec<String>,
}

impl Probe {
    /// Loads and attaches. Must run inside a tokio runtime (the ring buffer is
    /// registered with it).
    pub fn load(cfg: &ProbeConfig) -> Result<Probe> {
        let mut flags_word = 0;
        if !cfg.pids.is_empty() || cfg.follow_forks {
            flags_word |= flags::FILTER_PID;
        }
        if !cfg.tids.is_empty() {
            flags_word |= flags::FILTER_TID;
        }
        if !cfg.advice.is_empty() {
            flags_word |= flags::FILTER_ADVICE;
        }
        if !cfg.errnos.is_empty() {
            flags_word |= flags::FILTER_ERRNO;
        }
        if cfg.report_success {
            flags_word |= flags::REPORT_SUCCESS;
        }
        if cfg.untimed {
            flags_word |= flags::UNTIMED;
        }
        let mut notices = Vec::new();
        let buffer_size = if cfg.buffer_size == 0 {
            DEFAULT_BUFFER_SIZE
        } else {
            cfg.buffer_size
        };
        let (newtask_pid_offset, newtask_clone_flags_offset) = if cfg.follow_forks {
            flags_word |= flags::FOLLOW_FORKS;
            crate::setup::task_newtask_offsets()?
        } else {
            (0, 0)
        };
        let config = Config {
            flags: flags_word,
            self_tgid: std::process::id(),
            newtask_pid_offset,
            newtask_clone_flags_offset,
            wake_bytes: buffer_size / WAKE_FRACTION,
            nr_cpus: aya::util::nr_cpus()
                .map_err(|(path, e)| anyhow!("reading the number of CPUs from {path}: {e}"))?
                as u32,
            ..Config::default()
        };
        let mut layout = KernelLayout::read();
        if std::env::var_os(HELPERS_ONLY_ENV).is_some() {
            layout.task = Err(format!("{HELPERS_ONLY_ENV} is set"));
        }
        if let Err(why) = &layout.area {
            notices.push(format!("events carry no memory-area details: {why}"));
        }
        if let Err(why) = &layout.task {
            log::info!("reading process details through helpers: {why}");
        }
        let config = layout.apply(config);
        // What the kernel may refuse: the direct task reads (only speed is
        // lost without them) and the area lookup (kernels before 5.17 have no
        // bpf_find_vma). Which one it refused is not in the error, so the
        // subsets are tried in order of preference and the first that loads
        // is kept: a refused area lookup must not cost the task reads too.
        let optional = OPTIONAL.iter().fold(0, |all, o| all | o.flag);
        let wanted = config.flags & optional;
        let mut first_error = None;
        for keep in subsets_to_try(wanted) {
            let attempt = Config {
                flags: (config.flags & !optional) | keep,
                ..config
            };
            let mut notices = notices.clone();
            if let Some(e) = &first_error {
                notices.extend(dropped_notices(wanted & !keep, &verdict(e)));
            }
            match Self::open(cfg, &attempt, buffer_size, notices) {
                Ok(probe) => return Ok(probe),
                Err(e) if keep != 0 => {
                    let with: Vec<&str> = OPTIONAL
                        .iter()
                        .filter(|o| keep & o.flag != 0)
                        .map(|o| o.what)
                        .collect();
                    log::info!(
                        "the kernel refused the programs with {}: {e:#}",
                        with.join(" and ")
                    );
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last subset tried is the empty one, which returns")
    }

    fn open(
        cfg: &ProbeConfig,
        config: &Config,
        buffer_size: u32,
        mut notices: Vec<String>,
    ) -> Result<Probe> {
        let mut ebpf = EbpfLoader::new()
            .override_global("CONFIG", config, true)
            .map_max_entries("EVENTS", buffer_size)
            .load(OBJECT)
            .map_err(|e| anyhow!(crate::setup::explain_load_error(&e)))?;

        let logger = if cfg.kernel_log {
            match aya_log::EbpfLogger::init(&mut ebpf) {
                Ok(l) => Some(KernelLog(crate::poll::readable(l, "the kernel log")?)),
                Err(e) => {
                    notices.push(format!("kernel diagnostics unavailable: {e}"));
                    None
                }
            }
        } else {
            None
        };

        let mut pid_filter: HashMap<MapData, u32, u8> = take_map(&mut ebpf, "PID_FILTER")?;
        for &pid in &cfg.pids {
            pid_filter
                .insert(pid, 1, 0)
                .with_context(|| format!("adding pid {pid} to the kernel's pid filter"))?;
        }
        fill(&mut ebpf, "TID_FILTER", cfg.tids.iter().copied(), "tid")?;
        fill(
            &mut ebpf,
            "ADVICE_FILTER",
            cfg.advice.iter().map(|&a| a as u32),
            "advice",
        )?;
        fill(
            &mut ebpf,
            "ERRNO_FILTER",
            cfg.errnos.iter().map(|&e| e as u32),
            "errno",
        )?;

        let mut program_ids = Vec::new();
        // Exit first: an entry stamp without its exit is simply never taken.
        program_ids.push(attach_tracepoint(&mut ebpf, "syscalls", MADVISE_EXIT)?);
        if crate::setup::tracepoint_exists("syscalls", PROCESS_MADVISE_EXIT) {
            program_ids.push(attach_tracepoint(
                &mut ebpf,
                "syscalls",
                PROCESS_MADVISE_EXIT,
            )?);
        } else {
            notices.push(
                "this kernel has no process_madvise system call (added in Linux 5.10): tracing madvise only"
                    .to_string(),
            );
        }
        if !cfg.untimed {
            program_ids.push(attach_raw_tracepoint(&mut ebpf, SYS_ENTER)?);
        }
        if cfg.follow_forks {
            program_ids.push(attach_tracepoint(&mut ebpf, "task", "task_newtask")?);
        }

        let events = match ebpf.take_map("EVENTS") {
            Some(Map::RingBuf(data)) => Ring::new(data, buffer_size as usize)?,
            _ => bail!(
                "the kernel object has no ring buffer EVENTS: rebuild it with `cargo xtask build-ebpf`"
            ),
        };
        let events = crate::poll::readable(events, "the ring buffer")?;
        let counters = take_map(&mut ebpf, "COUNTERS")?;
        Ok(Probe {
            _ebpf: ebpf,
            events,
            counters,
            pid_filter,
            logger,
            program_ids,
            notices,
        })
    }

    /// Starts tracing another process (its threads included).
    pub fn add_pid(&mut self, pid: u32) -> Result<()> {
        self.pid_filter
            .insert(pid, 1, 0)
            .with_context(|| format!("adding pid {pid} to the kernel's pid filter"))
    }

    /// Ids of the loaded kernel programs (for tests and `--verbose`).
    pub fn program_ids(&self) -> &[u32] {
        &self.program_ids
    }

    /// Things the user should know about this load (features missing, ...).
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// Waits until events are ready, then hands each one to `sink` until the
    /// ring buffer is empty. Returns how many it handed over.
    pub async fn next_batch(&mut self, mut sink: impl FnMut(&Event)) -> Result<usize> {
        let mut guard = self
            .events
            .readable_mut()
            .await
            .context("waiting on the ring buffer")?;
        let n = drain_ring(guard.get_inner_mut(), &mut sink);
        guard.clear_ready();
        Ok(n)
    }

    /// Hands over whatever is in the ring buffer now, without waiting.
    pub fn drain(&mut self, mut sink: impl FnMut(&Event)) -> usize {
        drain_ring(self.events.get_mut(), &mut sink)
    }

    /// The kernel programs' own diagnostics, when `kernel_log` was asked for
    /// and the object carries them.
    pub fn take_kernel_log(&mut self) -> Option<KernelLog> {
        self.logger.take()
    }

    /// The kernel counters, summed over CPUs.
    pub fn counters(&self) -> Result<KernelCounters> {
        let read = |index: u32| -> Result<u64> {
            let values = self
                .counters
                .get(&index, 0)
                .with_context(|| format!("reading kernel counter {index}"))?;
            Ok(values.iter().sum())
        };
        Ok(KernelCounters {
            calls: read(counter::CALLS)?,
            failures: read(counter::FAILURES)?,
            sent: read(counter::SENT)?,
            lost: read(counter::LOST)?,
            restarts: read(counter::RESTARTS)?,
            no_duration: read(counter::NO_DURATION)?,
        })
    }
}

/// The kernel programs' diagnostics (aya-log), forwarded to the `log` crate.
pub struct KernelLog(AsyncFd<aya_log::EbpfLogger<&'static dyn log::Log>>);

impl KernelLog {
    /// Waits for diagnostics and forwards them.
    pub async fn forward(&mut self) -> Result<()> {
        let mut guard = self.0.readable_mut().await?;
        guard.get_inner_mut().flush();
        guard.clear_ready();
        Ok(())
    }
}

/// Forwards kernel diagnostics, or waits forever when there are none: for use
/// in a `select!`.
pub async fn forward_kernel_log(log: &mut Option<KernelLog>) -> Result<()> {
    match log {
        Some(log) => log.forward().await,
        None => std::future::pending().await,
    }
}

fn drain_ring(ring: &mut Ring, sink: &mut impl FnMut(&Event)) -> usize {
    ring.drain(|record| {
        if record.len() >= size_of::<RawEvent>() {
            // SAFETY: the kernel wrote a RawEvent there; the read is unaligned
            // because ring buffer records are only 8-byte aligned.
            let raw = unsafe { std::ptr::read_unaligned(record.as_ptr() as *const RawEvent) };
            sink(&Event::from_raw(&raw));
        }
    })
}

/// A part of the kernel programs that a kernel may refuse, and what tracing
/// without it means.
struct Optional {
    flag: u32,
    /// What the kernel refused.
    what: &'static str,
    /// Why a kernel might, for the notice (empty, or ending in "; ").
    why: &'static str,
    /// The notice's start: what the trace goes without.
    without: &'static str,
}

const OPTIONAL: [Optional; 2] = [
    Optional {
        flag: flags::TASK_FIELDS,
        what: "the direct reads of the task",
        why: "",
        without: "reading process details through helpers, about 100 ns more per failure",
    },
    Optional {
        flag: flags::AREA,
        what: "the area lookup",
        why: "bpf_find_vma needs Linux 5.17 or later; ",
        without: "events carry no memory-area details",
    },
];

/// The subsets of the `wanted` optional flags to load with, best first,
/// each once: all of them, without the task reads, without the area
/// lookup, neither.
fn subsets_to_try(wanted: u32) -> Vec<u32> {
    let mut subsets = Vec::new();
    for keep in [
        wanted,
        wanted & !flags::TASK_FIELDS,
        wanted & !flags::AREA,
        0,
    ] {
        if !subsets.contains(&keep) {
            subsets.push(keep);
        }
    }
    subsets
}

/// What to tell the user about the optional parts `dropped`.
fn dropped_notices(dropped: u32, verdict: &str) -> Vec<String> {
    OPTIONAL
        .iter()
        .filter(|o| dropped & o.flag != 0)
        .map(|o| {
            format!(
                "{}: the kernel refused {} ({}-v shows the verifier's log): {verdict}",
                o.without, o.what, o.why
            )
        })
        .collect()
}

/// Set (to anything), thptrace reads process details through helpers, as
/// on a kernel that refuses the direct reads: for the tests of that path.
pub const HELPERS_ONLY_ENV: &str = "THPTRACE_HELPERS_ONLY";

/// Where the running kernel keeps the fields the kernel programs read
/// directly, from its BTF: each part is there, or says why not.
struct KernelLayout {
    /// `vm_area_struct`'s fields, for the memory area ([`flags::AREA`]).
    area: Result<[u32; 5], String>,
    /// The task's fields, for [`flags::TASK_FIELDS`].
    task: Result<[u32; 10], String>,
}

impl KernelLayout {
    fn read() -> KernelLayout {
        let path = crate::setup::KERNEL_BTF;
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) => return KernelLayout::missing(format!("{path}: {e}")),
        };
        let btf = match crate::btf::Btf::parse(&data) {
            Ok(b) => b,
            Err(e) => return KernelLayout::missing(format!("{path}: {e}")),
        };
        // Each (struct, fields) in the order the arrays above hold them.
        let offsets = |wanted: &[(&str, &[&str])]| -> Result<Vec<u32>, String> {
            let mut got = Vec::new();
            for (name, fields) in wanted {
                let offs = btf
                    .offsets(name, fields)
                    .map_err(|e| format!("{path}: {e}"))?;
                for (off, field) in offs.into_iter().zip(fields.iter()) {
                    got.push(off.ok_or_else(|| format!("{path}: struct {name} has no {field}"))?);
                }
            }
            Ok(got)
        };
        let area = offsets(&[(
            "vm_area_struct",
            &["vm_start", "vm_end", "vm_flags", "vm_file", "vm_ops"],
        )])
        .map(|v| v.try_into().expect("five fields"));
        let task = offsets(&[
            ("task_struct", &["pid", "tgid", "comm", "cred", "cgroups"]),
            ("cred", &["uid", "gid"]),
            ("css_set", &["dfl_cgrp"]),
            ("cgroup", &["kn"]),
            ("kernfs_node", &["id"]),
        ])
        .map(|v| v.try_into().expect("ten fields"));
        KernelLayout { area, task }
    }

    fn missing(why: String) -> KernelLayout {
        KernelLayout {
            area: Err(why.clone()),
            task: Err(why),
        }
    }

    /// `config` with what was found, and the flags that use it.
    fn apply(&self, config: Config) -> Config {
        let mut c = config;
        if let Ok([start, end, flags_off, file, ops]) = self.area {
            c.flags |= flags::AREA;
            (c.vma_start_off, c.vma_end_off, c.vma_flags_off) = (start, end, flags_off);
            (c.vma_file_off, c.vma_ops_off) = (file, ops);
        }
        if let Ok([pid, tgid, comm, cred, cgroups, uid, gid, dfl, kn, id]) = self.task {
            c.flags |= flags::TASK_FIELDS;
            (c.task_pid_off, c.task_tgid_off, c.task_comm_off) = (pid, tgid, comm);
            (c.task_cred_off, c.task_cgroups_off) = (cred, cgroups);
            (c.cred_uid_off, c.cred_gid_off) = (uid, gid);
            (
                c.css_set_dfl_cgrp_off,
                c.cgroup_kn_off,
                c.kernfs_node_id_off,
            ) = (dfl, kn, id);
        }
        c
    }
}

/// The verifier's verdict: the last line of its log.
fn verdict(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}

fn program<'a, P>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut P>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or_else(|| {
            anyhow!(
                "the kernel object has no program {name}: rebuild it with `cargo xtask build-ebpf`"
            )
        })?
        .try_into()
        .with_context(|| format!("{name} has an unexpected program type"))
}

/// The program's id, logging how much work the verifier did (`-v`): the
/// number that must stay well under the kernel's complexity limit on older
/// kernels too.
fn program_id(
    name: &str,
    info: Result<aya::programs::ProgramInfo, aya::programs::ProgramError>,
) -> u32 {
    match info {
        Ok(i) => {
            log::info!(
                "program {name}: id {}, {} instructions verified",
                i.id(),
                i.verified_instruction_count()
                    .map_or_else(|| "?".to_string(), |n| n.to_string())
            );
            i.id()
        }
        Err(_) => 0,
    }
}

/// Loads and attaches `category/name`; returns the program's id.
fn attach_tracepoint(ebpf: &mut Ebpf, category: &str, name: &str) -> Result<u32> {
    let program: &mut TracePoint = program(ebpf, name)?;
    program
        .load()
        .map_err(|e| anyhow!(crate::setup::explain_program_error(name, &e)))?;
    program
        .attach(category, name)
        .map_err(|e| anyhow!(crate::setup::explain_attach_error(category, name, &e)))?;
    Ok(program_id(name, program.info()))
}

/// Loads and attaches the raw tracepoint `name` (program of the same name).
fn attach_raw_tracepoint(ebpf: &mut Ebpf, name: &str) -> Result<u32> {
    let program: &mut RawTracePoint = program(ebpf, name)?;
    program
        .load()
        .map_err(|e| anyhow!(crate::setup::explain_program_error(name, &e)))?;
    program
        .attach(name)
        .map_err(|e| anyhow!(crate::setup::explain_attach_error("raw_syscalls", name, &e)))?;
    Ok(program_id(name, program.info()))
}

fn take_map<T>(ebpf: &mut Ebpf, name: &str) -> Result<T>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or_else(|| {
        anyhow!("the kernel object has no map {name}: rebuild it with `cargo xtask build-ebpf`")
    })?;
    T::try_from(map).with_context(|| format!("map {name} has an unexpected type"))
}

fn fill(ebpf: &mut Ebpf, name: &str, keys: impl Iterator<Item = u32>, what: &str) -> Result<()> {
    let mut map: HashMap<&mut MapData, u32, u8> = ebpf
        .map_mut(name)
        .ok_or_else(|| anyhow!("the kernel object has no map {name}"))?
        .try_into()
        .with_context(|| format!("map {name} has an unexpected type"))?;
    for key in keys {
        if let Err(e) = map.insert(key, 1, 0) {
            bail!("adding {what} {key} to the kernel's filter {name}: {e}");
        }
    }
    Ok(())
}

// ---- Feature probes, for `thptrace check` -------------------------------

/// Whether the kernel offers one BPF feature thptrace needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BpfFeature {
    Supported,
    Unsupported,
    /// The probe itself failed (the bpf() call was refused, say).
    Failed {
        errno: Option<i32>,
        message: String,
    },
}

/// The kernel's BPF support, probed with throw-away maps and programs,
/// without loading thptrace's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfFeatures {
    /// The bpf() system call works: an array map can be created.
    pub syscall: BpfFeature,
    /// BPF ring buffer maps (Linux 5.8).
    pub ring_buffer: BpfFeature,
    /// BPF programs on tracepoints (CONFIG_BPF_EVENTS).
    pub tracepoint_programs: BpfFeature,
}

/// Probes the BPF features thptrace needs.
pub fn probe_bpf_features() -> BpfFeatures {
    use aya::{maps::MapType, programs::ProgramType, sys};
    let map = |t: MapType| match sys::is_map_supported(t) {
        Ok(true) => BpfFeature::Supported,
        Ok(false) => BpfFeature::Unsupported,
        Err(e) => BpfFeature::Failed {
            errno: e.io_error.raw_os_error(),
            message: e.to_string(),
        },
    };
    let tracepoint_programs = match sys::is_program_supported(ProgramType::TracePoint) {
        Ok(true) => BpfFeature::Supported,
        Ok(false) => BpfFeature::Unsupported,
        Err(e) => BpfFeature::Failed {
            errno: io_errno(&e),
            message: e.to_string(),
        },
    };
    BpfFeatures {
        syscall: map(MapType::Array),
        ring_buffer: map(MapType::RingBuf),
        tracepoint_programs,
    }
}

fn io_errno(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(code) = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
        {
            return Some(code);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u32 = flags::TASK_FIELDS;
    const A: u32 = flags::AREA;

    /// A kernel that refuses only the area lookup keeps the task reads: the
    /// subset without the area comes before the one with neither.
    #[test]
    fn optional_parts_are_dropped_least_costly_first() {
        assert_eq!(subsets_to_try(T | A), [T | A, A, T, 0]);
        assert_eq!(subsets_to_try(A), [A, 0]);
        assert_eq!(subsets_to_try(T), [T, 0]);
        assert_eq!(subsets_to_try(0), [0]);
    }

    #[test]
    fn each_dropped_part_gets_its_notice() {
        assert!(dropped_notices(0, "x").is_empty());
        assert_eq!(
            dropped_notices(A, "R0 invalid mem access"),
            [
                "events carry no memory-area details: the kernel refused the area lookup (bpf_find_vma needs Linux 5.17 or later; -v shows the verifier's log): R0 invalid mem access"
            ]
        );
        let both = dropped_notices(T | A, "v");
        assert_eq!(both.len(), 2);
        assert!(
            both[0].starts_with("reading process details through helpers, about 100 ns more per failure: the kernel refused the direct reads of the task (-v shows"),
            "{}",
            both[0]
        );
    }
}
