//! Facts about the kernel a call ran on, gathered once at start-up.
//!
//! Why madvise fails depends on how the kernel was built (a kernel without
//! `CONFIG_TRANSPARENT_HUGEPAGE` rejects `MADV_NOHUGEPAGE` outright), so the
//! cause engine in [`crate::explain`] needs these facts. They are plain data
//! with serde because a capture file stores them: `explain` may run later, on
//! another machine, against the facts of the machine the calls ran on.
//!
//! Every fact is tri-state and says where it came from, so that a report
//! never claims more than the host showed. Evidence order: what sysfs/procfs
//! show of the running kernel beats the kernel configuration file (a config
//! file can belong to another kernel build); the absence of a sysfs directory
//! only counts as "no" when its parent exists (otherwise sysfs may simply not
//! be mounted, as in some containers).

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Yes, no, or could not tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tri {
    Yes,
    No,
    Unknown,
}

/// One fact and the evidence for it (a path, or a config option and the file
/// it was read from). For an unknown fact, `source` says what was looked at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    pub value: Tri,
    pub source: String,
}

impl Fact {
    pub fn yes(source: impl Into<String>) -> Self {
        Fact {
            value: Tri::Yes,
            source: source.into(),
        }
    }

    pub fn no(source: impl Into<String>) -> Self {
        Fact {
            value: Tri::No,
            source: source.into(),
        }
    }

    pub fn unknown(source: impl Into<String>) -> Self {
        Fact {
            value: Tri::Unknown,
            source: source.into(),
        }
    }

    pub fn is_yes(&self) -> bool {
        self.value == Tri::Yes
    }

    pub fn is_no(&self) -> bool {
        self.value == Tri::No
    }

    pub fn is_unknown(&self) -> bool {
        self.value == Tri::Unknown
    }
}

/// The kernel options the cause engine cares about; only these are kept from
/// the configuration file, so a capture does not carry the whole config.
pub const CONFIG_KEYS: &[&str] = &[
    "CONFIG_TRANSPARENT_HUGEPAGE",
    "CONFIG_KSM",
    "CONFIG_MEMORY_FAILURE",
    "CONFIG_SWAP",
    "CONFIG_64BIT",
    "CONFIG_HUGETLBFS",
    "CONFIG_READ_ONLY_THP_FOR_FS",
];

/// Facts about one host's kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// `uname -r`, from /proc/sys/kernel/osrelease.
    pub kernel_release: Option<String>,
    /// The build string (`#1 SMP PREEMPT_DYNAMIC ...`), /proc/sys/kernel/version.
    pub kernel_version: Option<String>,
    /// `uname -m`.
    pub machine: Option<String>,
    pub hostname: Option<String>,
    /// Base page size in bytes; known only for the running host.
    pub page_size: Option<u64>,
    /// Boot time, seconds since the Unix epoch (`btime` in /proc/stat).
    pub boot_time: Option<u64>,
    /// Whether the kernel has transparent huge pages (CONFIG_TRANSPARENT_HUGEPAGE).
    pub thp: Fact,
    /// The bracketed THP mode: `always`, `madvise` or `never`.
    pub thp_mode: Option<String>,
    /// The PMD huge page size THP uses (2 MiB on x86-64).
    pub thp_pmd_size: Option<u64>,
    /// Kernel samepage merging (CONFIG_KSM).
    pub ksm: Fact,
    /// CONFIG_MEMORY_FAILURE (MADV_HWPOISON and MADV_SOFT_OFFLINE).
    pub memory_failure: Fact,
    /// CONFIG_SWAP: whether the kernel supports swap at all.
    pub swap: Fact,
    /// Whether a swap area is active now (entries in /proc/swaps).
    pub swap_active: Fact,
    /// Where the kernel configuration was read from, if anywhere.
    pub config_source: Option<String>,
    /// The [`CONFIG_KEYS`] options as the configuration file gives them
    /// (`y`, `m`, `n` for "is not set"); absent when the file has no line.
    pub config: BTreeMap<String, String>,
}

impl HostFacts {
    /// Facts with nothing known, for hosts nothing could be read of.
    pub fn unknown() -> Self {
        HostFacts {
            kernel_release: None,
            kernel_version: None,
            machine: None,
            hostname: None,
            page_size: None,
            boot_time: None,
            thp: Fact::unknown("not looked at"),
            thp_mode: None,
            thp_pmd_size: None,
            ksm: Fact::unknown("not looked at"),
            memory_failure: Fact::unknown("not looked at"),
            swap: Fact::unknown("not looked at"),
            swap_active: Fact::unknown("not looked at"),
            config_source: None,
            config: BTreeMap::new(),
        }
    }

    /// Reads the facts of the kernel whose file systems are mounted under
    /// `root` (`/` for this host; tests use a fake tree). Never fails: what
    /// cannot be read is Unknown. Things only the running process can ask
    /// (page size, `uname`) are asked only when `root` is `/`.
    pub fn read(root: &Path) -> HostFacts {
        let live = root == Path::new("/");
        let at = |rel: &str| root.join(rel);
        let show = |rel: &str| format!("/{rel}");

        let kernel_release = read_trimmed(&at("proc/sys/kernel/osrelease"));
        let kernel_version = read_trimmed(&at("proc/sys/kernel/version"));
        let machine = read_trimmed(&at("proc/sys/kernel/arch")).or_else(|| {
            if live {
                uname_machine().or_else(|| Some(std::env::consts::ARCH.to_string()))
            } else {
                None
            }
        });
        let hostname = read_trimmed(&at("proc/sys/kernel/hostname"));
        let page_size = if live { sysconf_page_size() } else { None };
        let boot_time = fs::read_to_string(at("proc/stat"))
            .ok()
            .and_then(|s| parse_btime(&s));

        let (config_source, config) = read_config(root, kernel_release.as_deref());
        let from_config = |key: &str| -> Option<Fact> {
            let src = config_source.as_ref()?;
            Some(match config.get(key).map(String::as_str) {
                Some("y") | Some("m") => Fact::yes(format!("{key} in {src}")),
                // A config file lists every option whose dependencies are met;
                // a missing line means the option could not even be chosen.
                _ => Fact::no(format!("{key} in {src}")),
            })
        };

        let mm = at("sys/kernel/mm");
        let thp_dir = "sys/kernel/mm/transparent_hugepage";
        let thp = dir_fact(&mm, &at(thp_dir), &show(thp_dir))
            .or_else(|| from_config("CONFIG_TRANSPARENT_HUGEPAGE"))
            .unwrap_or_else(|| Fact::unknown(format!("no {} and no kernel config", show(thp_dir))));
        let thp_mode = fs::read_to_string(at("sys/kernel/mm/transparent_hugepage/enabled"))
            .ok()
            .and_then(|s| bracketed(&s));
        let thp_pmd_size = read_trimmed(&at("sys/kernel/mm/transparent_hugepage/hpage_pmd_size"))
            .and_then(|s| s.parse().ok());

        let ksm_dir = "sys/kernel/mm/ksm";
        let ksm = dir_fact(&mm, &at(ksm_dir), &show(ksm_dir))
            .or_else(|| from_config("CONFIG_KSM"))
            .unwrap_or_else(|| Fact::unknown(format!("no {} and no kernel config", show(ksm_dir))));

        // The sysctl exists exactly when mm/memory-failure.c is built in.
        let mf = "proc/sys/vm/memory_failure_early_kill";
        let memory_failure = dir_fact(&at("proc/sys/vm"), &at(mf), &show(mf))
            .or_else(|| from_config("CONFIG_MEMORY_FAILURE"))
            .unwrap_or_else(|| Fact::unknown(format!("no {} and no kernel config", show(mf))));

        // /proc/swaps is created by mm/swapfile.c, built only with CONFIG_SWAP;
        // its absence proves "no" only where /proc itself is there.
        let swaps_path = at("proc/swaps");
        let swaps = fs::read_to_string(&swaps_path).ok();
        let swap = if swaps.is_some() {
            Fact::yes("/proc/swaps")
        } else if at("proc/stat").exists() {
            Fact::no("/proc/swaps is absent")
        } else {
            from_config("CONFIG_SWAP")
                .unwrap_or_else(|| Fact::unknown("no /proc/swaps and no kernel config"))
        };
        let swap_active = match &swaps {
            // The first line is the column header.
            Some(s) if s.lines().skip(1).any(|l| !l.trim().is_empty()) => Fact::yes("/proc/swaps"),
            Some(_) => Fact::no("/proc/swaps lists no area"),
            None if swap.is_no() => Fact::no(swap.source.clone()),
            None => Fact::unknown("no /proc/swaps"),
        };

        HostFacts {
            kernel_release,
            kernel_version,
            machine,
            hostname,
            page_size,
            boot_time,
            thp,
            thp_mode,
            thp_pmd_size,
            ksm,
            memory_failure,
            swap,
            swap_active,
            config_source,
            config,
        }
    }

    /// The kernel release as (major, minor), when it reads as one.
    pub fn kernel_version_pair(&self) -> Option<(u32, u32)> {
        parse_release(self.kernel_release.as_deref()?)
    }

    /// A human-readable report, one fact a line, for `thptrace check`.
    pub fn render(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for HostFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
        writeln!(
            f,
            "kernel:                  {} ({})",
            or_unknown(&self.kernel_release),
            or_unknown(&self.machine)
        )?;
        if let Some(v) = &self.kernel_version {
            writeln!(f, "kernel build:            {v}")?;
        }
        writeln!(f, "host name:               {}", or_unknown(&self.hostname))?;
        match self.page_size {
            Some(p) => writeln!(f, "page size:               {p} bytes")?,
            None => writeln!(f, "page size:               unknown")?,
        }
        if let Some(b) = self.boot_time {
            writeln!(f, "booted at:               {b} (seconds since 1970)")?;
        }
        let mut thp = tri_word(self.thp.value).to_string();
        if let Some(mode) = &self.thp_mode {
            thp.push_str(&format!(", mode {mode}"));
        }
        fact_line(f, "transparent huge pages:", &thp, &self.thp.source)?;
        fact_line(f, "KSM:", tri_word(self.ksm.value), &self.ksm.source)?;
        fact_line(
            f,
            "memory failure:",
            tri_word(self.memory_failure.value),
            &self.memory_failure.source,
        )?;
        fact_line(
            f,
            "swap support:",
            tri_word(self.swap.value),
            &self.swap.source,
        )?;
        fact_line(
            f,
            "swap in use:",
            tri_word(self.swap_active.value),
            &self.swap_active.source,
        )?;
        match &self.config_source {
            Some(s) => writeln!(f, "kernel config:           {s}"),
            None => writeln!(f, "kernel config:           not found"),
        }
    }
}

fn fact_line(f: &mut fmt::Formatter<'_>, label: &str, value: &str, source: &str) -> fmt::Result {
    writeln!(f, "{label:<24} {value} ({source})")
}

fn tri_word(t: Tri) -> &'static str {
    match t {
        Tri::Yes => "yes",
        Tri::No => "no",
        Tri::Unknown => "unknown",
    }
}

/// Yes when `path` exists; no when it does not but `parent` (the directory
/// the kernel would create it in) does; `None` (ask the config) otherwise.
fn dir_fact(parent: &Path, path: &Path, shown: &str) -> Option<Fact> {
    if path.exists() {
        Some(Fact::yes(shown))
    } else if parent.is_dir() {
        Some(Fact::no(format!("{shown} is absent")))
    } else {
        None
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    let s = fs::read_to_string(path).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// The word in brackets of a sysfs choice file: `always [madvise] never`.
fn bracketed(text: &str) -> Option<String> {
    let open = text.find('[')?;
    let close = text[open..].find(']')? + open;
    Some(text[open + 1..close].to_string())
}

fn parse_btime(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// `6.18.44-fc-v669` → (6, 18).
pub fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Reads the kernel configuration: /proc/config.gz (CONFIG_IKCONFIG_PROC),
/// else /boot/config-RELEASE as distributions install it. Returns where it
/// came from and the [`CONFIG_KEYS`] it sets.
fn read_config(root: &Path, release: Option<&str>) -> (Option<String>, BTreeMap<String, String>) {
    let gz = root.join("proc/config.gz");
    if let Some(text) = read_gzip(&gz) {
        return (Some("/proc/config.gz".into()), parse_config(&text));
    }
    if let Some(release) = release {
        let name = format!("boot/config-{release}");
        let path: PathBuf = root.join(&name);
        if let Ok(text) = fs::read_to_string(&path) {
            return (Some(format!("/{name}")), parse_config(&text));
        }
    }
    (None, BTreeMap::new())
}

fn read_gzip(path: &Path) -> Option<String> {
    let file = fs::File::open(path).ok()?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// The [`CONFIG_KEYS`] lines of a kernel `.config`: `CONFIG_X=y` and
/// `# CONFIG_X is not set` (kept as `n`).
pub fn parse_config(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        let (key, value) = if let Some(rest) = line.strip_prefix("# ") {
            match rest.strip_suffix(" is not set") {
                Some(key) => (key, "n"),
                None => continue,
            }
        } else {
            match line.split_once('=') {
                Some((k, v)) => (k, v.trim_matches('"')),
                None => continue,
            }
        };
        if CONFIG_KEYS.contains(&key) {
            out.insert(key.to_string(), value.to_string());
        }
    }
    out
}

fn sysconf_page_size() -> Option<u64> {
    // SAFETY: sysconf has no preconditions; it returns -1 on error.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (v > 0).then_some(v as u64)
}

fn uname_machine() -> Option<String> {
    // SAFETY: uname fills the struct we hand it, which lives on our stack.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let bytes: Vec<u8> = u
        .machine
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8(bytes).ok().filter(|s| !s.is_empty())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system temp dir, removed on drop; made
    /// here rather than with a crate so tests add no dependency.
    pub struct TempTree(pub PathBuf);

    impl TempTree {
        pub fn new() -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "thptrace-host-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempTree(dir)
        }

        pub fn file(&self, rel: &str, text: &str) -> &Self {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
            self
        }

        pub fn dir(&self, rel: &str) -> &Self {
            fs::create_dir_all(self.0.join(rel)).unwrap();
            self
        }

        pub fn gzip(&self, rel: &str, text: &str) -> &Self {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            let f = fs::File::create(p).unwrap();
            let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::default());
            enc.write_all(text.as_bytes()).unwrap();
            enc.finish().unwrap();
            self
        }
    }

    impl Drop for TempTree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn base() -> TempTree {
        let t = TempTree::new();
        t.file("proc/sys/kernel/osrelease", "6.1.0-test\n")
            .file("proc/sys/kernel/hostname", "box1\n")
            .file("proc/sys/kernel/arch", "x86_64\n")
            .file("proc/stat", "cpu  1 2 3\nbtime 1700000000\nprocesses 5\n");
        t
    }

    #[test]
    fn thp_present_with_mode() {
        let t = base();
        t.file(
            "sys/kernel/mm/transparent_hugepage/enabled",
            "always [madvise] never\n",
        )
        .file(
            "sys/kernel/mm/transparent_hugepage/hpage_pmd_size",
            "2097152\n",
        )
        .dir("sys/kernel/mm/ksm")
        .file("proc/sys/vm/memory_failure_early_kill", "0\n")
        .file(
            "proc/swaps",
            "Filename\tType\tSize\tUsed\tPriority\n/swap file 100 0 -2\n",
        );
        let h = HostFacts::read(&t.0);
        assert_eq!(h.kernel_release.as_deref(), Some("6.1.0-test"));
        assert_eq!(h.kernel_version_pair(), Some((6, 1)));
        assert_eq!(h.hostname.as_deref(), Some("box1"));
        assert_eq!(h.machine.as_deref(), Some("x86_64"));
        assert_eq!(h.boot_time, Some(1_700_000_000));
        // Not the running host, so the page size cannot be asked.
        assert_eq!(h.page_size, None);
        assert_eq!(h.thp, Fact::yes("/sys/kernel/mm/transparent_hugepage"));
        assert_eq!(h.thp_mode.as_deref(), Some("madvise"));
        assert_eq!(h.thp_pmd_size, Some(2 << 20));
        assert_eq!(h.ksm, Fact::yes("/sys/kernel/mm/ksm"));
        assert_eq!(
            h.memory_failure,
            Fact::yes("/proc/sys/vm/memory_failure_early_kill")
        );
        assert_eq!(h.swap, Fact::yes("/proc/swaps"));
        assert_eq!(h.swap_active, Fact::yes("/proc/swaps"));
        assert_eq!(h.config_source, None);
    }

    #[test]
    fn thp_absent_where_sys_kernel_mm_exists() {
        let t = base();
        t.dir("sys/kernel/mm/hugepages")
            .dir("proc/sys/vm")
            .file("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n");
        let h = HostFacts::read(&t.0);
        assert_eq!(
            h.thp,
            Fact::no("/sys/kernel/mm/transparent_hugepage is absent")
        );
        assert_eq!(h.thp_mode, None);
        assert_eq!(h.ksm, Fact::no("/sys/kernel/mm/ksm is absent"));
        assert_eq!(
            h.memory_failure,
            Fact::no("/proc/sys/vm/memory_failure_early_kill is absent")
        );
        assert!(h.swap.is_yes());
        assert_eq!(h.swap_active, Fact::no("/proc/swaps lists no area"));
    }

    #[test]
    fn nothing_mounted_means_unknown_not_no() {
        let t = TempTree::new();
        let h = HostFacts::read(&t.0);
        assert!(h.thp.is_unknown(), "{:?}", h.thp);
        assert!(h.ksm.is_unknown());
        assert!(h.memory_failure.is_unknown());
        assert!(h.swap.is_unknown());
        assert_eq!(h.kernel_release, None);
        // Fake roots never fall back to this process's architecture.
        assert_eq!(h.machine, None);
    }

    #[test]
    fn config_gz_is_read_when_sysfs_is_missing() {
        let t = base();
        t.gzip(
            "proc/config.gz",
            "CONFIG_64BIT=y\n# CONFIG_TRANSPARENT_HUGEPAGE is not set\nCONFIG_KSM=y\nCONFIG_SWAP=y\nCONFIG_OTHER=y\n",
        );
        let h = HostFacts::read(&t.0);
        assert_eq!(h.config_source.as_deref(), Some("/proc/config.gz"));
        assert_eq!(
            h.thp,
            Fact::no("CONFIG_TRANSPARENT_HUGEPAGE in /proc/config.gz")
        );
        assert_eq!(h.ksm, Fact::yes("CONFIG_KSM in /proc/config.gz"));
        // No line at all: the option could not be chosen, so not built in.
        assert_eq!(
            h.memory_failure,
            Fact::no("CONFIG_MEMORY_FAILURE in /proc/config.gz")
        );
        // /proc/stat exists but /proc/swaps does not: proc proves no swap.
        assert_eq!(h.swap, Fact::no("/proc/swaps is absent"));
        assert_eq!(
            h.config
                .get("CONFIG_TRANSPARENT_HUGEPAGE")
                .map(String::as_str),
            Some("n")
        );
        assert!(!h.config.contains_key("CONFIG_OTHER"));
    }

    #[test]
    fn sysfs_beats_config() {
        let t = base();
        t.gzip(
            "proc/config.gz",
            "# CONFIG_TRANSPARENT_HUGEPAGE is not set\n",
        )
        .file(
            "sys/kernel/mm/transparent_hugepage/enabled",
            "[always] madvise never\n",
        );
        let h = HostFacts::read(&t.0);
        assert_eq!(h.thp, Fact::yes("/sys/kernel/mm/transparent_hugepage"));
        assert_eq!(h.thp_mode.as_deref(), Some("always"));
    }

    #[test]
    fn boot_config_for_the_release() {
        let t = TempTree::new();
        t.file("proc/sys/kernel/osrelease", "6.1.0-test\n").file(
            "boot/config-6.1.0-test",
            "CONFIG_TRANSPARENT_HUGEPAGE=y\n# CONFIG_KSM is not set\nCONFIG_MEMORY_FAILURE=y\n",
        );
        // A config of another release must not be used.
        t.file("boot/config-5.10.0", "# CONFIG_MEMORY_FAILURE is not set\n");
        let h = HostFacts::read(&t.0);
        assert_eq!(h.config_source.as_deref(), Some("/boot/config-6.1.0-test"));
        assert_eq!(
            h.thp,
            Fact::yes("CONFIG_TRANSPARENT_HUGEPAGE in /boot/config-6.1.0-test")
        );
        assert_eq!(h.ksm, Fact::no("CONFIG_KSM in /boot/config-6.1.0-test"));
        assert_eq!(
            h.memory_failure,
            Fact::yes("CONFIG_MEMORY_FAILURE in /boot/config-6.1.0-test")
        );
        assert_eq!(h.swap, Fact::no("CONFIG_SWAP in /boot/config-6.1.0-test"));
    }

    #[test]
    fn corrupt_config_gz_falls_back_to_boot() {
        let t = base();
        t.file("proc/config.gz", "not gzip")
            .file("boot/config-6.1.0-test", "CONFIG_KSM=m\n");
        let h = HostFacts::read(&t.0);
        assert_eq!(h.config_source.as_deref(), Some("/boot/config-6.1.0-test"));
        assert!(h.ksm.is_yes());
    }

    #[test]
    fn serde_round_trip_and_render() {
        let t = base();
        t.file(
            "sys/kernel/mm/transparent_hugepage/enabled",
            "always madvise [never]\n",
        );
        let h = HostFacts::read(&t.0);
        let json = serde_json::to_string(&h).unwrap();
        assert!(
            json.contains(
                r#""thp":{"value":"yes","source":"/sys/kernel/mm/transparent_hugepage"}"#
            ),
            "{json}"
        );
        let back: HostFacts = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
        let text = h.render();
        assert!(
            text.contains("kernel:                  6.1.0-test (x86_64)\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "transparent huge pages:  yes, mode never (/sys/kernel/mm/transparent_hugepage)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("page size:               unknown\n"),
            "{text}"
        );
    }

    #[test]
    fn this_host_can_be_read() {
        // Whatever this machine is, reading it must not panic, and the
        // things only the live host can tell must be there.
        let h = HostFacts::read(Path::new("/"));
        assert!(h.page_size.unwrap() >= 4096);
        assert!(h.machine.is_some());
    }

    #[test]
    fn release_parsing() {
        assert_eq!(parse_release("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_release("4.18.0-553.el8"), Some((4, 18)));
        assert_eq!(parse_release("6"), None);
        assert_eq!(parse_release("garbage"), None);
    }
}
