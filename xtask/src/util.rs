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
