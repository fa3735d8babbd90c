//! `cargo xtask`: the commands that build the kernel object, check it, run
//! every test, and measure thptrace against its peers.
mod bench;
mod ebpf;
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
    util::step("cargo test (unit tests, and integration tests that load the kernel programs)");
    util::run(
        util::cargo()
            .current_dir(&root)
            .args(["test", "--workspace", "--no-fail-fast"]),
    )?;
    Ok(())
}
