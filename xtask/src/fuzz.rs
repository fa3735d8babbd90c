//! `cargo xtask fuzz`: runs the capture reader's fuzz target
//! (fuzz/fuzz_targets/capture_reader.rs) for a bounded time, installing
//! what it needs on first use: the nightly toolchain (libFuzzer and the
//! sanitizers need it) and cargo-fuzz from crates.io.
//!
//! New inputs libFuzzer finds go to a work directory in cargo's target
//! directory, not to the committed seed corpus (fuzz/corpus/capture_reader),
//! which stays small; a crash leaves its input in fuzz/artifacts/ and fails
//! the command.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::util::{self, cmd, output, step, target_dir, workspace_root};

/// The cargo-fuzz release this was written against; `--locked` builds it
/// with the dependencies it was released with.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

#[derive(clap::Args)]
pub struct Args {
    /// How long to fuzz, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The fuzz target (see fuzz/Cargo.toml).
    #[arg(long, default_value = "capture_reader")]
    target: String,
    /// Where new inputs go (default: fuzz-corpus/TARGET in cargo's target
    /// directory).
    #[arg(long)]
    work: Option<PathBuf>,
}

fn ensure_tools() -> Result<()> {
    let toolchains = output(cmd("rustup").args(["toolchain", "list"]))?;
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        step("installing the nightly toolchain (libFuzzer and sanitizers need it)");
        util::run(cmd("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))?;
    }
    if output(cmd("cargo").args(["fuzz", "--version"])).is_err() {
        step(&format!(
            "installing cargo-fuzz {CARGO_FUZZ_VERSION} from crates.io"
        ));
        util::run(cmd("cargo").args([
            "install",
            "cargo-fuzz",
            "--version",
            CARGO_FUZZ_VERSION,
            "--locked",
        ]))?;
    }
    Ok(())
}

pub fn run(args: &Args) -> Result<()> {
    ensure_tools()?;
    let fuzz_dir = workspace_root().join("fuzz");
    let seeds = fuzz_dir.join("corpus").join(&args.target);
    let work = args
        .work
        .clone()
        .unwrap_or_else(|| target_dir().join("fuzz-corpus").join(&args.target));
    std::fs::create_dir_all(&work)
        .with_context(|| format!("creating the fuzz work directory {}", work.display()))?;
    step(&format!(
        "fuzzing {} for {} s (seeds: {}, new inputs: {})",
        args.target,
        args.seconds,
        seeds.display(),
        work.display()
    ));
    util::run(
        cmd("cargo")
            .current_dir(&fuzz_dir)
            .arg("+nightly")
            .args(["fuzz", "run", "--target-dir"])
            .arg(target_dir().join("fuzz"))
            .arg(&args.target)
            .arg(&work)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={}", args.seconds))
            // Generous for one input of a reader with bounded memory; a
            // slower input is a bug.
            .arg("-timeout=10")
            .arg("-rss_limit_mb=2048"),
    )
    .context(
        "the fuzz target failed: a crashing input is in fuzz/artifacts/; reproduce it with \
         `cd fuzz && cargo +nightly fuzz run capture_reader ARTIFACT`",
    )
}
