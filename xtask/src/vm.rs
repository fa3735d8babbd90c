//! `cargo xtask vm-test`: thptrace on two real kernels in QEMU.
//!
//! The case thptrace was written for (CRIU's restorer failing with
//! `madvise(..., MADV_NOHUGEPAGE) = -22`) happens only on kernels built
//! without CONFIG_TRANSPARENT_HUGEPAGE, and the development machine has THP.
//! So this command boots two guests from one initramfs:
//!
//! - `nothp`: a small 6.1 kernel built here from Debian's `linux-source-6.1`,
//!   `make tinyconfig` plus what thptrace needs, THP off;
//! - `stock`: Debian's own 6.1 image (the package `linux-image-amd64` depends
//!   on), THP built in, an older kernel than this machine's.
//!
//! In each, `/init` runs the scenario (see [`INIT`]) and prints its results on
//! the serial console between markers; the host compares them with what the
//! helper says it did and with what the same calls return on this machine, and
//! prints one verdict per check and kernel. Both kernel images are cached in
//! ~/.cache/thptrace/vm, so only the first run builds or downloads them.
//!
//! QEMU runs in TCG mode: KVM on this machine kind is present but unusable
//! (shared/DESIGN.md section 6).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::util::{self, cargo, cmd, output, step, workspace_root};

/// Debian's kernel source package and the tarball it installs.
const SOURCE_PACKAGE: &str = "linux-source-6.1";
const SOURCE_TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";
/// The meta-package whose dependency is Debian's current stock 6.1 image.
const STOCK_META_PACKAGE: &str = "linux-image-amd64";
/// `uname -r` of the kernel built here ends with this, so a report can never
/// confuse the two guests.
const LOCALVERSION: &str = "-thptrace-nothp";

/// What the build and the guests need from apt. `cpio` is not among them: the
/// initramfs is written here (see [`Cpio`]), which needs no root for
/// /dev/console.
const PACKAGES: &[&str] = &[
    SOURCE_PACKAGE,
    "build-essential",
    "bc",
    "flex",
    "bison",
    "libelf-dev",
    "libssl-dev",
    // pahole, which turns the kernel's DWARF into BTF (CONFIG_DEBUG_INFO_BTF).
    "dwarves",
    // tinyconfig compresses the kernel with xz.
    "xz-utils",
    "qemu-system-x86",
    // A statically linked shell and tools for the guest's /init.
    "busybox-static",
];

/// Options set on top of `make tinyconfig`, in `scripts/config` syntax
/// (`NAME` to enable, `!NAME` to disable). Each one is here for a reason:
const KERNEL_OPTIONS: &[&str] = &[
    // The machine QEMU emulates, and the console the results come back on.
    "64BIT",
    "PRINTK",
    "TTY",
    "SERIAL_8250",
    "SERIAL_8250_CONSOLE",
    // A clock finer than jiffies. In TCG the TSC often fails calibration
    // against the PIT and is marked unstable; then only HPET and the ACPI PM
    // timer are left, and both are found through ACPI tables. Without them
    // every timestamp is a multiple of 4 ms and every duration is 0. QEMU's
    // ACPI tables describe PCI devices: without PCI the interpreter fails
    // loudly ("Unable to load the System Description Tables") on the console.
    "ACPI",
    "PCI",
    "HPET_TIMER",
    "X86_PM_TIMER",
    // Defaults that TTY and ACPI pull in and a serial-only guest never uses:
    // leaving them out saves build time.
    "!VT",
    "!INPUT",
    "!SERIO",
    // Booting from an initramfs that runs a shell script and static binaries.
    "BLK_DEV_INITRD",
    "RD_GZIP",
    "BINFMT_ELF",
    "BINFMT_SCRIPT",
    "DEVTMPFS",
    "PROC_FS",
    "PROC_SYSCTL",
    "SYSFS",
    "SHMEM",
    "TMPFS",
    // What thptrace and tokio use: capabilities (MULTIUSER), futexes, epoll,
    // eventfd, timerfd, signalfd, POSIX timers, and the Unix socket pair tokio
    // wakes its signal driver with (NET, UNIX); bpf_get_current_cgroup_id
    // exists only with CGROUPS.
    "MULTIUSER",
    "FUTEX",
    "EPOLL",
    "EVENTFD",
    "SIGNALFD",
    "TIMERFD",
    "POSIX_TIMERS",
    "CGROUPS",
    "NET",
    "UNIX",
    // madvise itself: without it madvise returns ENOSYS and its tracepoints
    // vanish.
    "ADVISE_SYSCALLS",
    // The tracer: BPF and its JIT (which needs MODULES in 6.1), tracepoint
    // programs (BPF_EVENTS needs KPROBE_EVENTS or UPROBE_EVENTS; KPROBES needs
    // MODULES), the syscall tracepoints and perf events.
    "MODULES",
    "BPF_SYSCALL",
    "BPF_JIT",
    "PERF_EVENTS",
    "KPROBES",
    "KPROBE_EVENTS",
    "FTRACE",
    "FTRACE_SYSCALLS",
    // BTF (/sys/kernel/btf/vmlinux) for bpf_get_current_task_btf and the
    // memory-area offsets; made from DWARF by pahole.
    "DEBUG_KERNEL",
    "!DEBUG_INFO_NONE",
    "DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT",
    "DEBUG_INFO_BTF",
    // /proc/config.gz: thptrace's host facts can cite the configuration.
    "IKCONFIG",
    "IKCONFIG_PROC",
    // The point of this kernel.
    "!TRANSPARENT_HUGEPAGE",
];

/// Options the final .config must have built in (`=y`), after `make
/// olddefconfig` has resolved dependencies: the ones above plus those they
/// only select.
const KERNEL_REQUIRED: &[&str] = &[
    "64BIT",
    "PRINTK",
    "TTY",
    "SERIAL_8250",
    "SERIAL_8250_CONSOLE",
    "ACPI",
    "HPET_TIMER",
    "X86_PM_TIMER",
    "BLK_DEV_INITRD",
    "RD_GZIP",
    "BINFMT_ELF",
    "BINFMT_SCRIPT",
    "DEVTMPFS",
    "PROC_FS",
    "SYSFS",
    "TMPFS",
    "MULTIUSER",
    "FUTEX",
    "EPOLL",
    "EVENTFD",
    "SIGNALFD",
    "TIMERFD",
    "CGROUPS",
    "UNIX",
    "ADVISE_SYSCALLS",
    "BPF_SYSCALL",
    "BPF_JIT",
    "BPF_EVENTS",
    "PERF_EVENTS",
    "TRACING",
    "FTRACE_SYSCALLS",
    "DEBUG_INFO",
    "DEBUG_INFO_BTF",
    "IKCONFIG_PROC",
];

/// What Debian's stock image must have built in for a guest without modules.
const STOCK_REQUIRED: &[&str] = &[
    "TRANSPARENT_HUGEPAGE",
    "SERIAL_8250",
    "SERIAL_8250_CONSOLE",
    "BLK_DEV_INITRD",
    "RD_GZIP",
    "BINFMT_ELF",
    "BINFMT_SCRIPT",
    "DEVTMPFS",
    "PROC_FS",
    "SYSFS",
    "TMPFS",
    "UNIX",
    "ADVISE_SYSCALLS",
    "BPF_SYSCALL",
    "BPF_JIT",
    "BPF_EVENTS",
    "PERF_EVENTS",
    "FTRACE_SYSCALLS",
    "DEBUG_INFO_BTF",
];

/// The call CRIU's restorer makes, as a CRIU log prints it; `thptrace explain`
/// reads it in the no-THP guest.
const CRIU_LINE: &str = "madvise(0x7f06e7f30000, 4096, 15) failed with -22";
/// What the explanation for the no-THP kernel must say.
const THP_CAUSE_TEXT: &str = "built without transparent huge pages";
const THP_CAUSE_CODE: &str = "thp_not_built_in";

/// Busybox applets /init uses; each becomes a symlink in /bin.
const APPLETS: &[&str] = &["sh", "mount", "cat", "uname", "reboot", "dmesg"];

/// The guest's PID 1. Results go to the serial console as sections:
/// `THPTRACE-BEGIN name`, its lines, `THPTRACE-END name status`, where status
/// is the exit code or `unavailable` for a subcommand this build lacks.
const INIT: &str = r#"#!/bin/sh
# PID 1 of a `cargo xtask vm-test` guest: run the scenario, print the results
# between markers on the serial console, power off. The host does the
# comparing, so this script only records.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
# thptrace mounts tracefs itself when it can; mounting it here keeps the
# scenario independent of that.
mount -t tracefs tracefs /sys/kernel/tracing

begin() { echo "THPTRACE-BEGIN $1"; }
end() { echo; echo "THPTRACE-END $1 $2"; }
# `thptrace SUBCOMMAND --help` fails when the subcommand does not exist.
have() { thptrace "$1" --help >/dev/null 2>&1; }

echo THPTRACE-RESULT-BEGIN
begin kernel; uname -r; end kernel $?
begin thp
if [ -d /sys/kernel/mm/transparent_hugepage ]; then
    echo "present $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
else
    echo absent
fi
end thp 0
begin btf; if [ -e /sys/kernel/btf/vmlinux ]; then echo present; else echo absent; fi; end btf 0
begin clocksource; cat /sys/devices/system/clocksource/clocksource0/current_clocksource; end clocksource $?
begin version; thptrace --version 2>&1; end version $?

begin check
if have check; then thptrace check 2>&1; end check $?; else end check unavailable; fi

# What CRIU's restorer does for a thread stack, then the live tests' failures.
thptrace -v -f json -o /tmp/events.jsonl -- madvise-scenarios nohugepage failures \
    >/tmp/scenario.jsonl 2>/tmp/trace.stderr
rc=$?
begin trace; cat /tmp/trace.stderr; end trace $rc
begin scenario; cat /tmp/scenario.jsonl; end scenario 0
begin events; cat /tmp/events.jsonl; end events 0

begin explain
if have explain; then
    thptrace explain 'madvise(0x7f06e7f30000, 4096, 15) failed with -22' 2>&1
    end explain $?
else
    end explain unavailable
fi
# The kernel's log, for whoever reads the console file after a failure
# (`quiet` keeps all but errors off the console while the scenario runs).
begin dmesg; dmesg; end dmesg $?
echo THPTRACE-RESULT-END
reboot -f
# reboot -f does not return; if it does, a kernel panic ends the guest.
exit 1
"#;

#[derive(clap::Args)]
pub struct Args {
    /// Boot only these kernels (comma-separated); default: both.
    #[arg(long, value_enum, value_delimiter = ',')]
    kernel: Vec<Kind>,
    /// Seconds each guest may take from boot to power-off.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

impl Default for Args {
    /// Both kernels, the default timeout: what `cargo xtask test` runs.
    fn default() -> Self {
        Args {
            kernel: Vec::new(),
            timeout: 300,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    /// 6.1 built here from linux-source-6.1, without THP.
    Nothp,
    /// Debian's stock 6.1 image, with THP.
    Stock,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Nothp => "nothp",
            Kind::Stock => "stock",
        }
    }
}

/// A kernel image to boot and what to expect of it.
struct Kernel {
    kind: Kind,
    image: PathBuf,
    /// `uname -r` the guest must print.
    release: String,
    /// Where it came from, for the report.
    origin: String,
}

fn cache_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
        .join(".cache/thptrace/vm")
}

/// The workspace's target directory (honours CARGO_TARGET_DIR).
fn target_dir() -> Result<PathBuf> {
    let meta = output(cargo().current_dir(workspace_root()).args([
        "metadata",
        "--no-deps",
        "--format-version",
        "1",
    ]))?;
    let v: Value = serde_json::from_str(&meta).context("reading `cargo metadata` output")?;
    v["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("`cargo metadata` gave no target_directory")
}

pub fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let kinds = if args.kernel.is_empty() {
        vec![Kind::Nothp, Kind::Stock]
    } else {
        args.kernel.clone()
    };
    if std::env::consts::ARCH != "x86_64" {
        bail!(
            "vm-test boots x86_64 guests with binaries built for this host, which is {}: run it on an x86_64 machine",
            std::env::consts::ARCH
        );
    }
    let work = target_dir()?.join("vm");
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let mut timings: Vec<(String, Duration)> = Vec::new();
    let mut timed = |what: &str, since: Instant| timings.push((what.to_string(), since.elapsed()));

    let t = Instant::now();
    ensure_packages()?;
    timed("apt packages", t);

    let mut kernels = Vec::new();
    for &kind in &kinds {
        let t = Instant::now();
        kernels.push(match kind {
            Kind::Nothp => nothp_kernel(&work)?,
            Kind::Stock => stock_kernel(&work)?,
        });
        timed(&format!("{} kernel", kind.label()), t);
    }

    let t = Instant::now();
    let bins = build_static_binaries()?;
    timed("static thptrace and madvise-scenarios", t);

    step("the `failures` scenario on this machine, for reference");
    let host_calls = host_reference(&bins.scenarios)?;

    let t = Instant::now();
    let initramfs = work.join("initramfs.cpio.gz");
    build_initramfs(&bins, Path::new("/bin/busybox"), &initramfs)?;
    timed("initramfs", t);

    let mut failed = Vec::new();
    let mut reports = String::new();
    for kernel in &kernels {
        step(&format!(
            "booting the {} guest ({})",
            kernel.kind.label(),
            kernel.origin
        ));
        let t = Instant::now();
        let log = work.join(format!("console-{}.log", kernel.kind.label()));
        let checks = match boot(kernel, &initramfs, &log, Duration::from_secs(args.timeout)) {
            Ok(console) => evaluate(kernel, &console, &host_calls),
            Err(e) => vec![Check::fail(
                "the guest booted and ran the scenario",
                format!("{e:#}"),
            )],
        };
        let took = t.elapsed();
        timed(&format!("{} guest", kernel.kind.label()), t);
        let _ = writeln!(
            reports,
            "\n{} kernel: {} ({:.1} s, console in {})",
            kernel.kind.label(),
            kernel.origin,
            took.as_secs_f64(),
            log.display()
        );
        for c in &checks {
            let _ = writeln!(reports, "{c}");
            if matches!(c.outcome, Outcome::Fail(_)) {
                failed.push(format!("{}: {}", kernel.kind.label(), c.name));
            }
        }
    }

    step("results");
    eprint!("{reports}");
    eprintln!("\ntimes:");
    for (what, d) in &timings {
        eprintln!("  {:>7.1} s  {what}", d.as_secs_f64());
    }
    eprintln!("  {:>7.1} s  total", started.elapsed().as_secs_f64());
    if !failed.is_empty() {
        bail!(
            "{} check(s) failed: {}; each guest's full console is in {}",
            failed.len(),
            failed.join("; "),
            work.display()
        );
    }
    eprintln!("\nall checks passed on {} kernel(s)", kernels.len());
    Ok(())
}

// ---------------------------------------------------------------------------
// apt

fn is_installed(package: &str) -> bool {
    output(cmd("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_ok_and(|s| s.trim() == "install ok installed")
}

fn apt_get() -> Command {
    let mut c = cmd("apt-get");
    c.env("DEBIAN_FRONTEND", "noninteractive");
    c
}

fn is_root() -> bool {
    output(cmd("id").arg("-u")).is_ok_and(|s| s.trim() == "0")
}

/// Installs the packages that are missing; refreshes apt's lists and tries
/// once more when the first attempt fails (stale lists are the usual cause).
fn ensure_packages() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|p| !is_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let line = format!(
        "apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !is_root() {
        bail!(
            "vm-test needs packages that are not installed ({}): install them with `sudo {line}`, or run vm-test as root",
            missing.join(", ")
        );
    }
    step(&format!("installing {}", missing.join(" ")));
    let install = || {
        util::run(
            apt_get()
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&missing),
        )
    };
    if install().is_err() {
        util::run(apt_get().args(["update", "-q"]))?;
        install().with_context(|| {
            format!("installing what vm-test needs failed: run `{line}` by hand to see why")
        })?;
    }
    Ok(())
}

fn package_version(package: &str) -> Result<String> {
    Ok(
        output(cmd("dpkg-query").args(["-W", "-f=${Version}", package]))?
            .trim()
            .to_string(),
    )
}

// ---------------------------------------------------------------------------
// The kernel without THP

/// `CONFIG_X` values of a .config: `y`, `m`, a string, or `n` for
/// `# CONFIG_X is not set`.
fn parse_config(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# CONFIG_")
            && let Some(name) = rest.strip_suffix(" is not set")
        {
            out.insert(name.to_string(), "n".to_string());
        } else if let Some(rest) = line.strip_prefix("CONFIG_")
            && let Some((name, value)) = rest.split_once('=')
        {
            out.insert(name.to_string(), value.to_string());
        }
    }
    out
}

/// The options in `required` that are not built in, as `NAME=value` (or
/// `NAME missing`).
fn not_built_in(config: &BTreeMap<String, String>, required: &[&str]) -> Vec<String> {
    required
        .iter()
        .filter_map(|name| match config.get(*name).map(String::as_str) {
            Some("y") => None,
            Some(v) => Some(format!("CONFIG_{name}={v}")),
            None => Some(format!("CONFIG_{name} missing")),
        })
        .collect()
}

/// Everything that changes the kernel binary, hashed into its cache key: the
/// options, and the compiler and pahole that turn them into a kernel.
fn kernel_key(source_version: &str) -> Result<String> {
    let mut h = Sha256::new();
    for o in KERNEL_OPTIONS {
        h.update(o.as_bytes());
        h.update(b"\n");
    }
    h.update(LOCALVERSION.as_bytes());
    for tool in [["gcc", "--version"], ["pahole", "--version"]] {
        let v = output(cmd(tool[0]).arg(tool[1]))?;
        h.update(v.lines().next().unwrap_or_default().as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("nothp-{source_version}-{hex}"))
}

fn nothp_kernel(work: &Path) -> Result<Kernel> {
    let version = package_version(SOURCE_PACKAGE)?;
    let key = kernel_key(&version)?;
    let cached = cache_dir().join(&key);
    let image = cached.join("bzImage");
    let release_file = cached.join("release");
    if image.exists() && release_file.exists() {
        step(&format!(
            "kernel without THP: cached ({})",
            cached.display()
        ));
    } else {
        build_nothp(work, &version, &cached)?;
    }
    let release = fs::read_to_string(&release_file)
        .with_context(|| format!("reading {}", release_file.display()))?
        .trim()
        .to_string();
    Ok(Kernel {
        kind: Kind::Nothp,
        image,
        release,
        origin: format!("built from {SOURCE_PACKAGE} {version}, tinyconfig without THP"),
    })
}

fn build_nothp(work: &Path, version: &str, cached: &Path) -> Result<()> {
    let src_root = work.join(format!("linux-source-{version}"));
    let tree = src_root.join("linux-source-6.1");
    let stamp = src_root.join(".unpacked");
    if !stamp.exists() {
        step(&format!("unpacking {SOURCE_TARBALL}"));
        let _ = fs::remove_dir_all(&src_root);
        fs::create_dir_all(&src_root)?;
        util::run(
            cmd("tar")
                .arg("-xf")
                .arg(SOURCE_TARBALL)
                .arg("-C")
                .arg(&src_root),
        )
        .with_context(|| {
            format!("{SOURCE_TARBALL} from {SOURCE_PACKAGE} did not unpack: reinstall it with `apt-get install --reinstall {SOURCE_PACKAGE}`")
        })?;
        fs::write(&stamp, "")?;
    }

    step("configuring the kernel: tinyconfig, then what thptrace needs, without THP");
    let log = work.join("kernel-build.log");
    let make = || {
        let mut c = cmd("make");
        c.current_dir(&tree);
        c
    };
    util::run_logged(make().arg("tinyconfig"), &log)?;
    let mut config = cmd("./scripts/config");
    config.current_dir(&tree);
    for o in KERNEL_OPTIONS {
        match o.strip_prefix('!') {
            Some(name) => config.args(["--disable", name]),
            None => config.args(["--enable", o]),
        };
    }
    config.args(["--set-str", "LOCALVERSION", LOCALVERSION]);
    util::run_logged(&mut config, &log)?;
    util::run_logged(make().arg("olddefconfig"), &log)?;
    let config_path = tree.join(".config");
    let text = fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let values = parse_config(&text);
    let missing = not_built_in(&values, KERNEL_REQUIRED);
    if !missing.is_empty() {
        bail!(
            "the kernel configuration {} lacks what thptrace needs: {}; an option's dependencies changed in {SOURCE_PACKAGE} {version}: add them to KERNEL_OPTIONS in xtask/src/vm.rs",
            config_path.display(),
            missing.join(", ")
        );
    }
    if matches!(
        values.get("TRANSPARENT_HUGEPAGE").map(String::as_str),
        Some("y" | "m")
    ) {
        bail!(
            "the kernel configuration {} has CONFIG_TRANSPARENT_HUGEPAGE on although vm-test disables it: another option selects it; find it with `make menuconfig` (search TRANSPARENT_HUGEPAGE) and drop it from KERNEL_OPTIONS in xtask/src/vm.rs",
            config_path.display()
        );
    }

    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    step(&format!(
        "building the kernel (make -j{jobs} bzImage, a few minutes; log in {})",
        log.display()
    ));
    let t = Instant::now();
    util::run_logged(make().arg(format!("-j{jobs}")).arg("bzImage"), &log)?;
    eprintln!("built in {:.0} s", t.elapsed().as_secs_f64());
    let release = output(make().args(["-s", "kernelrelease"]))?
        .trim()
        .to_string();

    // Write into a fresh directory and rename it into place, so an
    // interrupted run never leaves a cache entry without its image.
    let partial = cached.with_extension("partial");
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    fs::copy(tree.join("arch/x86/boot/bzImage"), partial.join("bzImage"))
        .context("copying the built bzImage")?;
    fs::copy(&config_path, partial.join("config"))?;
    fs::write(partial.join("release"), format!("{release}\n"))?;
    let _ = fs::remove_dir_all(cached);
    fs::rename(&partial, cached).with_context(|| format!("moving into {}", cached.display()))?;
    // The build tree with debug info takes gigabytes and is not needed again.
    let _ = fs::remove_dir_all(&src_root);
    Ok(())
}

// ---------------------------------------------------------------------------
// Debian's stock kernel

fn stock_kernel(work: &Path) -> Result<Kernel> {
    // `Depends: linux-image-6.1.0-56-amd64`
    let depends = output(cmd("apt-cache").args(["depends", STOCK_META_PACKAGE]))?;
    let package = depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-") && p.ends_with("-amd64"))
        .map(str::to_string)
        .with_context(|| {
            format!(
                "`apt-cache depends {STOCK_META_PACKAGE}` names no linux-image-*-amd64 package: run `apt-get update`, then check `apt-cache depends {STOCK_META_PACKAGE}`"
            )
        })?;
    let show = output(cmd("apt-cache").args(["show", "--no-all-versions", &package]))?;
    let version = show
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .map(str::to_string)
        .with_context(|| format!("`apt-cache show {package}` gives no Version"))?;
    let release = package
        .strip_prefix("linux-image-")
        .unwrap_or(&package)
        .to_string();
    let cached = cache_dir().join(format!("stock-{package}-{version}"));
    let image = cached.join("vmlinuz");
    if image.exists() {
        step(&format!("stock kernel: cached ({})", cached.display()));
    } else {
        fetch_stock(work, &package, &release, &cached)?;
    }
    Ok(Kernel {
        kind: Kind::Stock,
        image,
        release,
        origin: format!("Debian's {package} {version}"),
    })
}

fn fetch_stock(work: &Path, package: &str, release: &str, cached: &Path) -> Result<()> {
    step(&format!("downloading {package} (not installing it)"));
    let dir = work.join("stock-download");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    // apt-get download as root otherwise warns that its sandbox user cannot
    // write here.
    let download = || {
        util::run(apt_get().current_dir(&dir).args([
            "-q",
            "-o",
            "APT::Sandbox::User=root",
            "download",
            package,
        ]))
    };
    if download().is_err() {
        // The archive moved on since apt's lists were fetched.
        util::run(apt_get().args(["update", "-q"]))?;
        download().with_context(|| {
            format!(
                "downloading {package} failed: check the network and `apt-cache policy {package}`"
            )
        })?;
    }
    let deb = fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .with_context(|| format!("apt-get download left no .deb in {}", dir.display()))?;
    let unpacked = dir.join("root");
    util::run(cmd("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
    let vmlinuz = unpacked.join(format!("boot/vmlinuz-{release}"));
    let config = unpacked.join(format!("boot/config-{release}"));
    if !vmlinuz.exists() || !config.exists() {
        bail!(
            "{} holds no boot/vmlinuz-{release} or boot/config-{release}: Debian changed the package layout; look inside with `dpkg-deb -c {}`",
            deb.display(),
            deb.display()
        );
    }
    let values = parse_config(&fs::read_to_string(&config)?);
    let missing = not_built_in(&values, STOCK_REQUIRED);
    if !missing.is_empty() {
        bail!(
            "Debian's {package} does not build in what the guest needs (it boots without modules): {}; boot it with its modules in the initramfs, or pick another image",
            missing.join(", ")
        );
    }
    let partial = cached.with_extension("partial");
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial)?;
    fs::copy(&vmlinuz, partial.join("vmlinuz"))?;
    fs::copy(&config, partial.join("config"))?;
    let _ = fs::remove_dir_all(cached);
    fs::rename(&partial, cached).with_context(|| format!("moving into {}", cached.display()))?;
    // The modules are not needed: all the guest uses is built in (checked above).
    let _ = fs::remove_dir_all(&dir);
    Ok(())
}

// ---------------------------------------------------------------------------
// The guest's programs and initramfs

struct Binaries {
    thptrace: PathBuf,
    scenarios: PathBuf,
}

/// thptrace and madvise-scenarios linked statically against glibc, so the
/// initramfs needs no shared libraries. `--target` keeps the flag away from
/// build scripts and proc macros, which must stay dynamic.
fn build_static_binaries() -> Result<Binaries> {
    const TRIPLE: &str = "x86_64-unknown-linux-gnu";
    step("building thptrace and madvise-scenarios, statically linked (release)");
    util::run(
        cargo()
            .current_dir(workspace_root())
            .args([
                "build",
                "--release",
                "--package",
                "thptrace",
                "--bins",
                "--target",
                TRIPLE,
            ])
            .env("RUSTFLAGS", "-C target-feature=+crt-static"),
    )?;
    let dir = target_dir()?.join(TRIPLE).join("release");
    let bins = Binaries {
        thptrace: dir.join("thptrace"),
        scenarios: dir.join("madvise-scenarios"),
    };
    for b in [&bins.thptrace, &bins.scenarios] {
        ensure_static(b)?;
    }
    Ok(bins)
}

/// Fails unless `path` is an ELF file with no program interpreter (a dynamic
/// executable would die in the guest with a bare "not found").
fn ensure_static(path: &Path) -> Result<()> {
    let data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let u16_at = |o: usize| data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        data.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        data.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    if data.get(..5) != Some(b"\x7fELF\x02") {
        bail!("{} is not a 64-bit ELF file", path.display());
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        bail!("{} has a truncated ELF header", path.display());
    };
    const PT_INTERP: u32 = 3;
    let interp = (0..phnum as usize)
        .any(|i| u32_at(phoff as usize + i * phentsize as usize) == Some(PT_INTERP));
    if interp {
        bail!(
            "{} is dynamically linked, and the guest has no shared libraries: build it with `-C target-feature=+crt-static` (for busybox: `apt-get install busybox-static`)",
            path.display()
        );
    }
    Ok(())
}

/// The calls of `madvise-scenarios failures` on this machine: the stock guest
/// must see the same results.
fn host_reference(scenarios: &Path) -> Result<Vec<Call>> {
    let out = output(Command::new(scenarios).arg("failures"))?;
    let calls = parse_calls(&out)?;
    if calls.is_empty() {
        bail!(
            "`{} failures` reported no call: the helper changed; update xtask/src/vm.rs",
            scenarios.display()
        );
    }
    Ok(calls)
}

/// A newc ("070701") cpio archive, the format the kernel unpacks an
/// initramfs from. Written here rather than with cpio(1) so that
/// /dev/console can be a device node without root, and so that the archive
/// is the same bytes every time (all times are 0).
struct Cpio {
    data: Vec<u8>,
    ino: u32,
}

impl Cpio {
    const DIR: u32 = 0o040_000;
    const FILE: u32 = 0o100_000;
    const SYMLINK: u32 = 0o120_000;
    const CHARDEV: u32 = 0o020_000;

    fn new() -> Self {
        Cpio {
            data: Vec::new(),
            ino: 1,
        }
    }

    fn pad(&mut self) {
        while !self.data.len().is_multiple_of(4) {
            self.data.push(0);
        }
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), body: &[u8]) {
        let nlink = if mode & 0o170_000 == Self::DIR { 2 } else { 1 };
        let fields = [
            self.ino,
            mode,
            0,
            0,
            nlink,
            0,
            body.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.ino += 1;
        self.data.extend_from_slice(b"070701");
        for f in fields {
            self.data.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.data.extend_from_slice(name.as_bytes());
        self.data.push(0);
        self.pad();
        self.data.extend_from_slice(body);
        self.pad();
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, Self::DIR | 0o755, (0, 0), b"");
    }

    fn file(&mut self, name: &str, mode: u32, body: &[u8]) {
        self.entry(name, Self::FILE | mode, (0, 0), body);
    }

    fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, Self::SYMLINK | 0o777, (0, 0), target.as_bytes());
    }

    fn chardev(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, Self::CHARDEV | 0o600, (major, minor), b"");
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), b"");
        self.data
    }
}

fn build_initramfs(bins: &Binaries, busybox: &Path, out: &Path) -> Result<()> {
    step(&format!("writing the initramfs {}", out.display()));
    ensure_static(busybox)?;
    let read = |p: &Path| fs::read(p).with_context(|| format!("reading {}", p.display()));
    let mut cpio = Cpio::new();
    for d in ["bin", "dev", "proc", "sys", "tmp"] {
        cpio.dir(d);
    }
    // The console init's output goes to, before devtmpfs is mounted.
    cpio.chardev("dev/console", 5, 1);
    cpio.file("init", 0o755, INIT.as_bytes());
    cpio.file("bin/busybox", 0o755, &read(busybox)?);
    for applet in APPLETS {
        cpio.symlink(&format!("bin/{applet}"), "busybox");
    }
    cpio.file("bin/thptrace", 0o755, &read(&bins.thptrace)?);
    cpio.file("bin/madvise-scenarios", 0o755, &read(&bins.scenarios)?);
    let archive = cpio.finish();
    let file = fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    gz.write_all(&archive)?;
    gz.finish()?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Booting

/// Boots `kernel` with the initramfs and returns what the serial console
/// printed; also writes it to `log`.
fn boot(kernel: &Kernel, initramfs: &Path, log: &Path, timeout: Duration) -> Result<String> {
    let mut qemu = Command::new("qemu-system-x86_64");
    // The stock kernel switches THP to `never` below 512 MiB; 1 GiB for both
    // keeps the guests alike. `panic=-1` reboots at once on a panic (init
    // dying), and `-no-reboot` turns every reboot into QEMU exiting.
    qemu.args(["-accel", "tcg", "-cpu", "max", "-m", "1G", "-smp", "1"])
        .args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
        .arg("-no-reboot")
        .arg("-kernel")
        .arg(&kernel.image)
        .arg("-initrd")
        .arg(initramfs)
        .args(["-append", "console=ttyS0 quiet panic=-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = qemu.spawn().context(
        "cannot run qemu-system-x86_64: install it with `apt-get install qemu-system-x86`",
    )?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = String::new();
        let _ = stderr.read_to_string(&mut buf);
        buf
    });
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if t.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let console = String::from_utf8_lossy(&reader.join().unwrap_or_default()).replace('\r', "");
    let qemu_err = err_reader.join().unwrap_or_default();
    let _ = fs::write(
        log,
        format!("{console}\n--- qemu's standard error ---\n{qemu_err}"),
    );
    eprintln!("guest ran {:.1} s", t.elapsed().as_secs_f64());
    match status {
        None => bail!(
            "the {} guest did not power off within {} s: {}; raise --timeout if the machine is just slow",
            kernel.kind.label(),
            timeout.as_secs(),
            console_tail(&console)
        ),
        Some(s) if !s.success() => bail!(
            "qemu-system-x86_64 failed ({s}) booting {}: {}; {}",
            kernel.image.display(),
            qemu_err.trim(),
            console_tail(&console)
        ),
        Some(_) => Ok(console),
    }
}

fn console_tail(console: &str) -> String {
    let lines: Vec<&str> = console.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(15)..];
    if tail.is_empty() {
        "the console stayed empty".into()
    } else {
        format!("the console ended with:\n    {}", tail.join("\n    "))
    }
}

// ---------------------------------------------------------------------------
// Results

/// One section of the guest's output.
#[derive(Debug, Default)]
struct Section {
    lines: Vec<String>,
    /// Exit code, or `unavailable`.
    status: String,
}

impl Section {
    fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// The sections between the result markers; lines outside a section (kernel
/// messages) are ignored.
fn parse_console(console: &str) -> Result<BTreeMap<String, Section>> {
    let mut lines = console.lines().map(str::trim_end);
    if !lines.any(|l| l == "THPTRACE-RESULT-BEGIN") {
        bail!(
            "the guest never started the scenario (no THPTRACE-RESULT-BEGIN on its console): {}",
            console_tail(console)
        );
    }
    let mut sections = BTreeMap::new();
    let mut current: Option<(String, Section)> = None;
    for line in lines {
        if line == "THPTRACE-RESULT-END" {
            return Ok(sections);
        }
        if let Some(name) = line.strip_prefix("THPTRACE-BEGIN ") {
            current = Some((name.to_string(), Section::default()));
        } else if let Some(rest) = line.strip_prefix("THPTRACE-END ") {
            let (name, status) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some((open, mut section)) = current.take()
                && open == name
            {
                section.status = status.to_string();
                sections.insert(open, section);
            }
        } else if let Some((_, section)) = current.as_mut()
            && !line.is_empty()
        {
            section.lines.push(line.to_string());
        }
    }
    bail!(
        "the guest stopped in the middle of the scenario (no THPTRACE-RESULT-END): {}",
        console_tail(console)
    )
}

/// One call the helper made, or one event thptrace reported.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Call {
    syscall: String,
    tid: i64,
    start: Option<u64>,
    len: Option<u64>,
    advice: i64,
    ret: i64,
}

impl Call {
    fn from_json(v: &Value) -> Option<Call> {
        Some(Call {
            syscall: v["syscall"].as_str()?.to_string(),
            tid: v["tid"].as_i64()?,
            start: v["start"].as_u64(),
            len: v["len"].as_u64(),
            advice: v["advice"].as_i64()?,
            ret: v["ret"].as_i64()?,
        })
    }

    /// The same call in another run: everything but addresses and thread.
    fn outcome(&self) -> (&str, i64, i64) {
        (&self.syscall, self.advice, self.ret)
    }
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = |v: Option<u64>| v.map_or("?".into(), |v| format!("{v:#x}"));
        write!(
            f,
            "{}[tid {}]({}, {}, {}) = {}",
            self.syscall,
            self.tid,
            hex(self.start),
            self.len.map_or("?".into(), |v| v.to_string()),
            self.advice,
            self.ret
        )
    }
}

/// The helper's calls, from its JSON lines (lines without `syscall` are its
/// pid and end markers).
fn parse_calls(text: &str) -> Result<Vec<Call>> {
    let mut calls = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).with_context(|| {
            format!("madvise-scenarios printed a line that is not JSON: {line}")
        })?;
        if v.get("syscall").is_some() {
            calls.push(Call::from_json(&v).with_context(|| {
                format!("madvise-scenarios printed an incomplete call: {line}")
            })?);
        }
    }
    Ok(calls)
}

#[derive(Debug)]
enum Outcome {
    Pass,
    Fail(String),
}

#[derive(Debug)]
struct Check {
    name: String,
    outcome: Outcome,
    /// What was seen, for a passing check.
    detail: String,
}

impl Check {
    fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            outcome: Outcome::Pass,
            detail: detail.into(),
        }
    }

    fn fail(name: impl Into<String>, why: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            outcome: Outcome::Fail(why.into()),
            detail: String::new(),
        }
    }

    fn when(name: &str, ok: bool, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        if ok {
            Check::pass(name, detail)
        } else {
            Check::fail(name, detail)
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (tag, text) = match &self.outcome {
            Outcome::Pass => ("PASS", &self.detail),
            Outcome::Fail(why) => ("FAIL", why),
        };
        write!(f, "  {tag}  {}", self.name)?;
        let mut lines = text.lines();
        if let Some(first) = lines.next() {
            write!(f, ": {first}")?;
        }
        for l in lines {
            write!(f, "\n          {l}")?;
        }
        Ok(())
    }
}

/// Every value of `key` anywhere inside `v`.
fn find_key<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                if k == key {
                    out.push(x);
                }
                find_key(x, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|x| find_key(x, key, out)),
        _ => {}
    }
}

/// The checks for one guest's console.
fn evaluate(kernel: &Kernel, console: &str, host_calls: &[Call]) -> Vec<Check> {
    let sections = match parse_console(console) {
        Ok(s) => s,
        Err(e) => return vec![Check::fail("the guest ran the scenario", format!("{e:#}"))],
    };
    let empty = Section::default();
    let get = |name: &str| sections.get(name).unwrap_or(&empty);
    let nothp = kernel.kind == Kind::Nothp;
    let mut checks = vec![Check::pass(
        "the guest ran the scenario and powered off",
        format!("{} sections", sections.len()),
    )];

    let release = get("kernel").text();
    checks.push(Check::when(
        "runs the expected kernel",
        release == kernel.release,
        format!("uname -r: `{release}`, expected `{}`", kernel.release),
    ));
    let thp = get("thp").text();
    checks.push(if nothp {
        Check::when(
            "THP is not built in",
            thp == "absent",
            format!("/sys/kernel/mm/transparent_hugepage: {thp}"),
        )
    } else {
        Check::when(
            "THP is built in and not `never`",
            thp.starts_with("present") && !thp.contains("[never]"),
            format!("/sys/kernel/mm/transparent_hugepage: {thp}"),
        )
    });
    let btf = get("btf").text();
    checks.push(Check::when(
        "the kernel has BTF",
        btf == "present",
        format!("/sys/kernel/btf/vmlinux: {btf}"),
    ));

    let check = get("check");
    checks.push(match check.status.as_str() {
        "unavailable" => Check::fail(
            "`thptrace check` says this guest can trace",
            "`thptrace check` is missing from this build",
        ),
        "0" => Check::pass(
            "`thptrace check` says this guest can trace",
            format!("exit 0; it printed:\n{}", check.text()),
        ),
        other => Check::fail(
            "`thptrace check` says this guest can trace",
            format!("exit {other}; it printed:\n{}", check.text()),
        ),
    });

    // The trace itself.
    let trace = get("trace");
    checks.push(Check::when(
        "`thptrace -- madvise-scenarios nohugepage failures` exits 0",
        trace.status == "0",
        format!(
            "exit {}; its standard error:\n{}",
            trace.status,
            trace.text()
        ),
    ));
    let calls = match parse_calls(&get("scenario").text()) {
        Ok(c) if c.len() == host_calls.len() + 1 => c,
        Ok(c) => {
            checks.push(Check::fail(
                "the helper made its calls",
                format!(
                    "expected {} calls (nohugepage, then the {} of `failures`), got {}:\n{}",
                    host_calls.len() + 1,
                    host_calls.len(),
                    c.len(),
                    get("scenario").text()
                ),
            ));
            return checks;
        }
        Err(e) => {
            checks.push(Check::fail("the helper made its calls", format!("{e:#}")));
            return checks;
        }
    };
    let mut events = Vec::new();
    for line in &get("events").lines {
        match serde_json::from_str::<Value>(line) {
            Ok(v) => events.push(v),
            Err(e) => {
                checks.push(Check::fail(
                    "thptrace's JSON lines parse",
                    format!("{e}: {line}"),
                ));
                return checks;
            }
        }
    }
    let event_calls: Vec<Option<Call>> = events.iter().map(Call::from_json).collect();
    let reported = |c: &Call| event_calls.iter().filter(|e| e.as_ref() == Some(c)).count();

    // The NOHUGEPAGE call CRIU's restorer makes.
    let nohuge = &calls[0];
    if nohuge.advice != 15 {
        checks.push(Check::fail(
            "the helper's first call is madvise(..., MADV_NOHUGEPAGE)",
            format!("it is {nohuge}: the `nohugepage` scenario changed"),
        ));
        return checks;
    }
    checks.push(if nothp {
        Check::when(
            "madvise(area, len, MADV_NOHUGEPAGE) fails with EINVAL",
            nohuge.ret == -22,
            format!("{nohuge}"),
        )
    } else {
        Check::when(
            "madvise(area, len, MADV_NOHUGEPAGE) succeeds",
            nohuge.ret == 0,
            format!("{nohuge}"),
        )
    });
    let nohuge_event = events
        .iter()
        .zip(&event_calls)
        .find(|(_, c)| c.as_ref() == Some(nohuge))
        .map(|(v, _)| v);
    if nothp {
        checks.push(match nohuge_event {
            None => Check::fail(
                "thptrace reports the NOHUGEPAGE failure, decoded",
                format!(
                    "no event matches {nohuge}; events:\n{}",
                    get("events").text()
                ),
            ),
            Some(v) => Check::when(
                "thptrace reports the NOHUGEPAGE failure, decoded",
                v["advice_name"] == "MADV_NOHUGEPAGE"
                    && v["errno_name"] == "EINVAL"
                    && v["errno"] == 22
                    && reported(nohuge) == 1,
                format!("{v}"),
            ),
        });
    } else {
        checks.push(Check::when(
            "thptrace does not report the succeeding NOHUGEPAGE call",
            nohuge_event.is_none(),
            match nohuge_event {
                Some(v) => format!("it reported {v}"),
                None => format!("no event for {nohuge}"),
            },
        ));
    }

    // The live tests' failures: same results as on this machine, each
    // reported once, field by field.
    let failures = &calls[1..];
    let differ: Vec<String> = failures
        .iter()
        .zip(host_calls)
        .filter(|(g, h)| g.outcome() != h.outcome())
        .map(|(g, h)| format!("guest {g}, this machine {h}"))
        .collect();
    checks.push(Check::when(
        "the `failures` calls return what they return on this machine",
        differ.is_empty(),
        if differ.is_empty() {
            failures
                .iter()
                .map(|c| format!("{}({}) = {}", c.syscall, c.advice, c.ret))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            differ.join("\n")
        },
    ));
    let wrong: Vec<String> = failures
        .iter()
        .filter(|c| c.ret < 0)
        .filter(|c| reported(c) != 1)
        .map(|c| format!("{c} reported {} times", reported(c)))
        .collect();
    checks.push(Check::when(
        "each failing call is reported once (syscall, tid, start, len, advice, ret)",
        wrong.is_empty(),
        if wrong.is_empty() {
            format!(
                "{} failing calls, {} events",
                failures.iter().filter(|c| c.ret < 0).count(),
                events.len()
            )
        } else {
            format!("{}\nevents:\n{}", wrong.join("\n"), get("events").text())
        },
    ));
    let stray: Vec<String> = events
        .iter()
        .zip(&event_calls)
        .filter(|(_, c)| !c.as_ref().is_some_and(|c| c.ret < 0 && calls.contains(c)))
        .map(|(v, _)| v.to_string())
        .collect();
    checks.push(Check::when(
        "nothing else is reported",
        stray.is_empty(),
        if stray.is_empty() {
            format!("{} events, all matched", events.len())
        } else {
            format!("unexpected events:\n{}", stray.join("\n"))
        },
    ));

    // A duration of 0 means the guest's clock ticks in jiffies (see the
    // clock options in KERNEL_OPTIONS), which would hide a wrong duration.
    let clock = get("clocksource").text();
    let without: Vec<String> = events
        .iter()
        .filter(|v| v["duration_ns"].as_u64().is_none_or(|d| d == 0))
        .map(|v| v.to_string())
        .collect();
    checks.push(Check::when(
        "each event has a duration above 0",
        without.is_empty(),
        if without.is_empty() {
            format!("{} events; clocksource {clock}", events.len())
        } else {
            format!(
                "clocksource {clock}; events with no or a 0 duration:\n{}",
                without.join("\n")
            )
        },
    ));

    // The explanation and the memory area.
    if nothp {
        let mut codes_anywhere = Vec::new();
        events
            .iter()
            .for_each(|v| find_key(v, "cause_code", &mut codes_anywhere));
        let name = "the NOHUGEPAGE event's cause is `thp_not_built_in`, alone";
        checks.push(match nohuge_event {
            _ if codes_anywhere.is_empty() => Check::fail(
                name,
                "events carry no `cause_code`: the JSON output lost its explanations",
            ),
            None => Check::fail(name, "there is no NOHUGEPAGE event"),
            Some(v) => {
                let mut codes = Vec::new();
                find_key(v, "cause_code", &mut codes);
                let mut texts = Vec::new();
                find_key(v, "cause", &mut texts);
                let text_ok = texts.is_empty()
                    || texts
                        .iter()
                        .any(|t| t.as_str().is_some_and(|t| t.contains(THP_CAUSE_TEXT)));
                Check::when(
                    name,
                    codes.len() == 1 && codes[0] == THP_CAUSE_CODE && text_ok,
                    format!(
                        "cause_code {}; cause {}",
                        Value::Array(codes.into_iter().cloned().collect()),
                        Value::Array(texts.into_iter().cloned().collect())
                    ),
                )
            }
        });
        let name = "the NOHUGEPAGE event names its memory area";
        checks.push(match nohuge_event {
            // The area holding the start, anonymous and mapped: what CRIU's
            // restorer advises is a thread stack.
            Some(v)
                if v["area"]["mapped"] == true
                    && v["area"]["flags"]["anonymous"] == true
                    && v["area"]["start"].as_u64() <= v["start"].as_u64()
                    && v["start"].as_u64() < v["area"]["end"].as_u64() =>
            {
                Check::pass(name, format!("area {}", v["area"]))
            }
            Some(v) => Check::fail(
                name,
                format!(
                    "expected the mapped anonymous area holding the start, got {}",
                    v["area"]
                ),
            ),
            None => Check::fail(name, "there is no NOHUGEPAGE event"),
        });
    }

    let explain = get("explain");
    let name = format!("`thptrace explain '{CRIU_LINE}'` names the cause");
    if nothp {
        checks.push(match explain.status.as_str() {
            "unavailable" => Check::fail(name, "`thptrace explain` is missing from this build"),
            status => Check::when(
                &name,
                status == "0" && explain.text().contains(THP_CAUSE_TEXT),
                format!(
                    "exit {status}, expected 0 and \"{THP_CAUSE_TEXT}\"; it printed:\n{}",
                    explain.text()
                ),
            ),
        });
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real consoles of the two guests, from a run of this command.
    const NOTHP: &str = include_str!("../testdata/console-nothp.log");
    const STOCK: &str = include_str!("../testdata/console-stock.log");

    fn kernel(kind: Kind) -> Kernel {
        Kernel {
            kind,
            image: PathBuf::new(),
            release: match kind {
                Kind::Nothp => "6.1.192-thptrace-nothp",
                Kind::Stock => "6.1.0-56-amd64",
            }
            .into(),
            origin: String::new(),
        }
    }

    /// The `failures` calls as this machine returns them: the same as both
    /// guests return them.
    fn host_calls(console: &str) -> Vec<Call> {
        let sections = parse_console(console).unwrap();
        parse_calls(&sections["scenario"].text()).unwrap()[1..].to_vec()
    }

    fn verdicts(kind: Kind, console: &str) -> Vec<(String, &'static str)> {
        evaluate(&kernel(kind), console, &host_calls(console))
            .into_iter()
            .map(|c| {
                let tag = match c.outcome {
                    Outcome::Pass => "pass",
                    Outcome::Fail(_) => "fail",
                };
                (c.name, tag)
            })
            .collect()
    }

    fn failed(kind: Kind, console: &str) -> Vec<String> {
        verdicts(kind, console)
            .into_iter()
            .filter(|(_, t)| *t == "fail")
            .map(|(n, _)| n)
            .collect()
    }

    /// `console` with the NOHUGEPAGE event's line (the one 8 pages long)
    /// changed by `f`.
    fn edit_nohugepage_event(console: &str, f: impl Fn(&str) -> String) -> String {
        console
            .lines()
            .map(|l| {
                if l.starts_with("{\"schema\"") && l.contains("\"len\":32768") {
                    f(l)
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn real_consoles_pass_every_check() {
        assert_eq!(failed(Kind::Nothp, NOTHP), Vec::<String>::new());
        assert_eq!(failed(Kind::Stock, STOCK), Vec::<String>::new());
    }

    #[test]
    fn each_kernel_fails_the_other_kernels_expectations() {
        let f = failed(Kind::Stock, NOTHP);
        assert!(
            f.contains(&"THP is built in and not `never`".to_string()),
            "{f:?}"
        );
        assert!(f.contains(&"madvise(area, len, MADV_NOHUGEPAGE) succeeds".to_string()));

        let f = failed(Kind::Nothp, STOCK);
        assert!(f.contains(&"madvise(area, len, MADV_NOHUGEPAGE) fails with EINVAL".to_string()));
        assert!(f.contains(&"thptrace reports the NOHUGEPAGE failure, decoded".to_string()));
    }

    #[test]
    fn a_lost_or_wrong_event_fails() {
        let lost = edit_nohugepage_event(NOTHP, |_| String::new());
        assert!(
            failed(Kind::Nothp, &lost)
                .contains(&"thptrace reports the NOHUGEPAGE failure, decoded".to_string())
        );
        let undecoded = edit_nohugepage_event(NOTHP, |l| {
            l.replace("\"errno_name\":\"EINVAL\"", "\"errno_name\":null")
        });
        assert!(
            failed(Kind::Nothp, &undecoded)
                .contains(&"thptrace reports the NOHUGEPAGE failure, decoded".to_string())
        );
        let moved = edit_nohugepage_event(NOTHP, |l| l.replace("\"len\":32768", "\"len\":4096"));
        assert!(!failed(Kind::Nothp, &moved).is_empty());
        let zero = edit_nohugepage_event(NOTHP, |l| {
            let v: Value = serde_json::from_str(l).unwrap();
            l.replace(
                &format!("\"duration_ns\":{}", v["duration_ns"]),
                "\"duration_ns\":0",
            )
        });
        assert_eq!(
            failed(Kind::Nothp, &zero),
            ["each event has a duration above 0"]
        );
    }

    #[test]
    fn causes_areas_and_explanations_are_checked() {
        let verdict = |console: &str, prefix: &str| {
            verdicts(Kind::Nothp, console)
                .into_iter()
                .find(|(n, _)| n.starts_with(prefix))
                .unwrap()
                .1
        };
        let cause = "the NOHUGEPAGE event's cause";
        let area = "the NOHUGEPAGE event names its memory area";
        let explain = "`thptrace explain";
        assert_eq!(verdict(NOTHP, cause), "pass");
        assert_eq!(verdict(NOTHP, area), "pass");
        assert_eq!(verdict(NOTHP, explain), "pass");

        let other_cause = edit_nohugepage_event(NOTHP, |l| {
            l.replace(
                "\"cause_code\":\"thp_not_built_in\"",
                "\"cause_code\":\"misaligned_start\"",
            )
        });
        assert_eq!(verdict(&other_cause, cause), "fail");
        let no_area = edit_nohugepage_event(NOTHP, |l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v["area"] = Value::Null;
            v.to_string()
        });
        assert_eq!(verdict(&no_area, area), "fail");
        let wrong_explain =
            NOTHP.replace("built without transparent huge pages", "built without KSM");
        assert_eq!(verdict(&wrong_explain, explain), "fail");
    }

    #[test]
    fn reads_a_kernel_config() {
        let c = parse_config(
            "CONFIG_64BIT=y\n# CONFIG_TRANSPARENT_HUGEPAGE is not set\nCONFIG_LOCALVERSION=\"-x\"\nCONFIG_UNIX=m\n",
        );
        assert_eq!(c["64BIT"], "y");
        assert_eq!(c["TRANSPARENT_HUGEPAGE"], "n");
        assert_eq!(
            not_built_in(&c, &["64BIT", "UNIX", "NET"]),
            ["CONFIG_UNIX=m", "CONFIG_NET missing"]
        );
    }

    #[test]
    fn cpio_entries_are_aligned() {
        let mut c = Cpio::new();
        c.file("init", 0o755, b"#!/bin/sh\n");
        c.chardev("dev/console", 5, 1);
        let data = c.finish();
        assert_eq!(data.len() % 4, 0);
        assert!(data.starts_with(b"070701"));
        assert!(data.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn reads_sections_between_markers() {
        let console = "boot noise\nTHPTRACE-RESULT-BEGIN\nTHPTRACE-BEGIN kernel\n6.1.0\n\nTHPTRACE-END kernel 0\n[ 1.0] kernel message\nTHPTRACE-BEGIN check\n\nTHPTRACE-END check unavailable\nTHPTRACE-RESULT-END\n";
        let s = parse_console(console).unwrap();
        assert_eq!(s["kernel"].lines, ["6.1.0"]);
        assert_eq!(s["kernel"].status, "0");
        assert_eq!(s["check"].status, "unavailable");
        assert!(parse_console("THPTRACE-RESULT-BEGIN\nTHPTRACE-BEGIN x\n").is_err());
        assert!(parse_console("Kernel panic").is_err());
    }
}
