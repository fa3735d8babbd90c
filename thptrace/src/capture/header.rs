//! The header every capture file starts with: who wrote it, on which host,
//! with which filters. Stored as JSON inside a checksummed frame so new
//! facts can be added without a format change; every field has a default so
//! an older or newer header still parses.

use serde::{Deserialize, Serialize};

use crate::host::{Fact, HostFacts};

/// The host a capture was recorded on: what a report on another machine
/// needs to explain events and to put them on the wall clock.
///
/// This is the capture's own type on purpose: the richer host facts the
/// explanations use live elsewhere and travel in `facts` as plain JSON, so
/// the file format does not change when they do.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostInfo {
    pub hostname: String,
    /// `uname -r`.
    pub kernel_release: String,
    /// `uname -m`.
    pub arch: String,
    pub page_size: u64,
    /// Wall-clock time of boot, in nanoseconds since the Unix epoch:
    /// `CLOCK_REALTIME - CLOCK_BOOTTIME` when the file was created. Adding
    /// an event's `ts_boot_ns` gives its wall-clock time.
    pub boot_time_ns: u64,
    /// Whatever else the explanations need (THP and KSM build options,
    /// sysfs settings, ...), as the host-facts module serializes it.
    pub facts: serde_json::Value,
}

impl HostInfo {
    /// The facts of the kernel the capture's calls ran on, for the
    /// explanations; with a caveat when the capture predates stored facts
    /// (then only the release, architecture and page size are known).
    pub fn host_facts(&self) -> (HostFacts, Option<&'static str>) {
        let (mut facts, caveat) = match serde_json::from_value::<HostFacts>(self.facts.clone()) {
            Ok(facts) => (facts, None),
            Err(_) => {
                let mut facts = HostFacts::unknown();
                let why = "the capture did not record it";
                facts.thp = Fact::unknown(why);
                facts.ksm = Fact::unknown(why);
                facts.memory_failure = Fact::unknown(why);
                facts.swap = Fact::unknown(why);
                facts.swap_active = Fact::unknown(why);
                (
                    facts,
                    Some(
                        "the capture records only the kernel release, architecture and page size, so what the kernel was built with is unknown",
                    ),
                )
            }
        };
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        facts.kernel_release = facts
            .kernel_release
            .or_else(|| nonempty(&self.kernel_release));
        facts.machine = facts.machine.or_else(|| nonempty(&self.arch));
        facts.hostname = facts.hostname.or_else(|| nonempty(&self.hostname));
        facts.page_size = facts
            .page_size
            .or((self.page_size > 0).then_some(self.page_size));
        (facts, caveat)
    }

    /// This machine's name, kernel, architecture, page size and boot time;
    /// `facts` is left null for the caller to fill. Never fails: an unknown
    /// fact stays empty or zero.
    pub fn detect() -> HostInfo {
        // SAFETY: uname and sysconf fill or return plain values; the utsname
        // fields are NUL-terminated C strings within their arrays.
        let (hostname, kernel_release, arch) = unsafe {
            let mut u: libc::utsname = std::mem::zeroed();
            if libc::uname(&mut u) == 0 {
                (
                    cstr_field(&u.nodename),
                    cstr_field(&u.release),
                    cstr_field(&u.machine),
                )
            } else {
                Default::default()
            }
        };
        // SAFETY: sysconf has no memory side effects.
        let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        HostInfo {
            hostname,
            kernel_release,
            arch,
            page_size: u64::try_from(page_size).unwrap_or(0),
            boot_time_ns: crate::clock::Clock::host().boot_epoch_ns.max(0) as u64,
            facts: serde_json::Value::Null,
        }
    }
}

fn cstr_field(field: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = field
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// An event's wall-clock time in ns since the epoch, given its host's boot
/// time. Saturates rather than wraps on absurd values from a damaged header.
pub fn wall_clock_ns(host: &HostInfo, ts_boot_ns: u64) -> u64 {
    host.boot_time_ns.saturating_add(ts_boot_ns)
}

/// One file's header.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Header {
    /// Format version from the preamble (not in the JSON).
    #[serde(skip)]
    pub format_major: u16,
    #[serde(skip)]
    pub format_minor: u16,
    /// `CARGO_PKG_VERSION` of the thptrace that wrote the file.
    pub thptrace_version: String,
    /// Same for every file of one rotated set, different between runs, so
    /// a reader never stitches two captures together.
    pub capture_id: String,
    /// Position in the rotated set: 0 for FILE, n for FILE.00000n.
    pub sequence: u64,
    /// `CLOCK_BOOTTIME` when this file was created.
    pub created_boot_ns: u64,
    pub host: HostInfo,
    /// The filters in force, as the recorder describes them (JSON), so a
    /// report can say what the capture could not have seen.
    pub filters: serde_json::Value,
    /// The recorder did not time calls (`--no-durations`): its events'
    /// unknown durations were never measured. Absent (older files): timed.
    pub untimed: bool,
}
