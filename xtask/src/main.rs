//! `cargo xtask`: the commands that build the kernel object, check it, run
//! every test, and measure thptrace against its peers.
mod bench;
mod bench_capture;
mod ebpf;
mod fuzz;
mod util;
mod vm;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "thptrace's build, CI and benchmark commands"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what building the kernel object needs, when missing: the
    /// nightly toolchain's rust-src and bpf-linker 0.13 (linked against
    /// nightly's own libLLVM, kept in ~/.cache/thptrace).
    SetupEbpf,
    /// Rebuild the kernel object from source and write it to
    /// thptrace/bpf/thptrace-ebpf.o (commit the result).
    BuildEbpf,
    /// Fail if the committed kernel object does not match its sources.
    CheckEbpf,
    /// Everything CI runs: kernel object check, formatting, clippy, and the
    /// whole test suite (as root: the tests load the real kernel programs).
    Test,
    /// Measure the cost thptrace adds to madvise calls, next to no tracer
    /// and to bpftrace (installed from apt when missing).
    Bench(bench::Args),
    /// Measure recording and reading captures: bytes per event, the rate
    /// `thptrace record` keeps up with (1,000,000 back-to-back failures, none
    /// lost), and events per second `thptrace report --summary` reads.
    BenchCapture(bench_capture::Args),
    /// Fuzz the capture reader for a bounded time (`--seconds`, default 60),
    /// installing the nightly toolchain and cargo-fuzz when missing.
    Fuzz(fuzz::Args),
    /// Boot a 6.1 kernel built without THP and Debian's stock 6.1 kernel in
    /// QEMU, trace the CRIU case and the live tests' failures in each, and
    /// report per kernel (docs/vm-test.md). Installs what it needs from apt;
    /// kernels are cached in ~/.cache/thptrace/vm.
    VmTest(vm::Args),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::SetupEbpf => ebpf::setup().map(|_| ()),
        Command::BuildEbpf => ebpf::build_and_install(),
        Command::CheckEbpf => ebpf::check(),
        Command::Test => test(),
        Command::Bench(args) => bench::run(&args),
        Command::BenchCapture(args) => bench_capture::run(&args),
        Command::Fuzz(args) => fuzz::run(&args),
        Command::VmTest(args) => vm::run(&args),
    }
}

/// The README's test command.
fn test() -> Result<()> {
    let root = util::workspace_root();
    util::step("rustup components for the stable toolchain");
    util::run(util::cmd("rustup").args(["component", "add", "rustfmt", "clippy"]))?;
    util::step("kernel object matches its sources");
    ebpf::check()?;
    util::step("cargo fmt --check");
    util::run(
        util::cargo()
            .current_dir(&root)
            .args(["fmt", "--all", "--", "--check"]),
    )?;
    util::step("cargo clippy");
    util::run(util::cargo().current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The README's main command must find the tracer among the workspace's
    // binaries (it did not once: madvise-scenarios made `cargo run`
    // ambiguous). --version keeps it from tracing.
    util::step("the README's main command: cargo run --release -- --version");
    let version = util::output(util::cargo().current_dir(&root).args([
        "run",
        "--quiet",
        "--release",
        "--",
        "--version",
    ]))?;
    if !version.starts_with("thptrace ") {
        anyhow::bail!(
            "`cargo run --release -- --version` printed {version:?}, not thptrace's version"
        );
    }
    util::step("cargo test (unit tests, and integration tests that load the kernel programs)");
    let (passed, failed) = util::run_counting_tests(util::cargo().current_dir(&root).args([
        "test",
        "--workspace",
        "--no-fail-fast",
    ]))?;
    // The kernel matrix: a kernel without THP and Debian's stock one, in
    // QEMU (docs/vm-test.md). The kernel build is cached after the first run.
    util::step("cargo xtask vm-test (the CRIU case on a kernel without THP, and a stock 6.1)");
    let vm = vm::run(&vm::Args::default());
    let (passed, failed) = match &vm {
        Ok(()) => (passed + 1, failed),
        Err(e) => {
            eprintln!("vm-test failed: {e:#}");
            (passed, failed + 1)
        }
    };
    // One closing line for the whole suite: cargo's own last line is that
    // of whichever test binary ran last (often one with no tests).
    println!("tests: {passed} passed, {failed} failed");
    if failed > 0 {
        anyhow::bail!("{failed} tests failed");
    }
    Ok(())
}
