//! Running commands with clear errors.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Where cargo builds: `CARGO_TARGET_DIR` when set (relative to the
/// workspace), else `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => workspace_root().join(d),
        _ => workspace_root().join("target"),
    }
}

/// Builds thptrace and madvise-scenarios in release mode; returns their
/// paths (thptrace, madvise-scenarios).
pub fn build_release_bins() -> Result<(PathBuf, PathBuf)> {
    step("building thptrace and madvise-scenarios (release)");
    run(cargo().current_dir(workspace_root()).args([
        "build",
        "--release",
        "--package",
        "thptrace",
        "--bins",
    ]))?;
    let bin = target_dir().join("release");
    Ok((bin.join("thptrace"), bin.join("madvise-scenarios")))
}

/// A command with the variables a parent cargo sets removed, so toolchain
/// selection (`+nightly`, rustup) works as if typed in a shell.
pub fn cmd(program: &str) -> Command {
    let mut c = Command::new(program);
    for key in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTUP_TOOLCHAIN",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
    ] {
        c.env_remove(key);
    }
    c
}

/// Stable cargo, for the workspace's own builds and tests.
pub fn cargo() -> Command {
    cmd("cargo")
}

pub fn describe(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command, inheriting output; fails on a non-zero exit.
pub fn run(c: &mut Command) -> Result<()> {
    let what = describe(c);
    let status = c
        .status()
        .with_context(|| format!("cannot run `{what}`: is it installed?"))?;
    if !status.success() {
        bail!("`{what}` failed ({status})");
    }
    Ok(())
}

/// Runs a command and returns its standard output.
pub fn output(c: &mut Command) -> Result<String> {
    let what = describe(c);
    let out = c
        .output()
        .with_context(|| format!("cannot run `{what}`: is it installed?"))?;
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cargo test`, passing its output through, and adds up its
/// `test result:` lines: (passed, failed).
pub fn run_counting_tests(c: &mut Command) -> Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    let what = describe(c);
    let mut child = c
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{what}`"))?;
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            // "ok. 116 passed; 0 failed; 2 ignored; ..."
            let count = |word: &str| -> u64 {
                rest.split("; ")
                    .find_map(|part| {
                        let mut words = part.rsplit(' ');
                        let (w, n) = (words.next()?, words.next()?);
                        (w == word).then(|| n.parse().ok()).flatten()
                    })
                    .unwrap_or(0)
            };
            passed += count("passed");
            failed += count("failed");
        }
    }
    let status = child.wait()?;
    if !status.success() && failed == 0 {
        bail!("`{what}` failed ({status}) before running all tests");
    }
    Ok((passed, failed))
}

pub fn step(what: &str) {
    eprintln!("\n==> {what}");
}

/// Runs a command with its output appended to `log`; on failure the error
/// shows the log's last lines, so a long build's noise stays out of sight
/// until it matters.
pub fn run_logged(c: &mut Command, log: &std::path::Path) -> Result<()> {
    use std::fs::OpenOptions;
    let what = describe(c);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let status = c
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .with_context(|| format!("cannot run `{what}`: is it installed?"))?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        bail!(
            "`{what}` failed ({status}); the last lines of {}:\n{}",
            log.display(),
            lines[lines.len().saturating_sub(25)..].join("\n")
        );
    }
    Ok(())
}
