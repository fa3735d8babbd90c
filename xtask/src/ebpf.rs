//! Building the kernel object.
//!
//! The object is a generated file kept in the repository
//! (thptrace/bpf/thptrace-ebpf.o), so `thptrace` builds with stable Rust
//! alone. Building it needs the nightly toolchain (build-std), its rust-src
//! component and bpf-linker 0.13, which needs LLVM 21+: no such LLVM is
//! packaged here, but nightly ships its own libLLVM, so bpf-linker is built
//! against that and cached in ~/.cache/thptrace (see shared/DESIGN.md §4).
//!
//! The build is reproducible: debug info and BTF carry source paths, and they
//! are remapped to fixed prefixes, so a clone anywhere produces the same bytes.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::util::{cmd, output, run, step, workspace_root};

const BPF_LINKER_VERSION: &str = "0.13.0";
const OBJECT: &str = "thptrace/bpf/thptrace-ebpf.o";
const SOURCES_DIGEST: &str = "thptrace/bpf/thptrace-ebpf.sources.sha256";
/// What the object is built from: these crates' tracked files.
const SOURCE_DIRS: &[&str] = &["thptrace-ebpf", "thptrace-common"];

/// The tools the build uses.
pub struct Toolchain {
    bpf_linker_dir: PathBuf,
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

fn nightly_sysroot() -> Result<PathBuf> {
    let sysroot = output(cmd("rustup").args(["run", "nightly", "rustc", "--print", "sysroot"]))
        .context("the nightly toolchain is needed to build the kernel object: install it with `rustup toolchain install nightly`")?;
    Ok(PathBuf::from(sysroot.trim()))
}

/// Installs rust-src and bpf-linker when missing.
pub fn setup() -> Result<Toolchain> {
    let sysroot = nightly_sysroot()?;
    if !sysroot.join("lib/rustlib/src/rust/library/core").exists() {
        step("rustup component add rust-src --toolchain nightly");
        run(cmd("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))?;
    }

    // nightly's libLLVM: `libLLVM.so.22.1-rust-1.97.0-nightly`.
    let libdir = sysroot.join("lib");
    let llvm = fs::read_dir(&libdir)
        .with_context(|| format!("reading {}", libdir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("libLLVM.so."))
        .with_context(|| {
            format!(
                "no libLLVM.so.* in {}: this nightly toolchain does not ship its LLVM as a shared library",
                libdir.display()
            )
        })?;
    let major: u32 = llvm["libLLVM.so.".len()..]
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .with_context(|| format!("cannot read LLVM's major version from {llvm}"))?;
    if major < 21 {
        bail!(
            "bpf-linker {BPF_LINKER_VERSION} needs LLVM 21 or later; nightly ships LLVM {major}: update nightly"
        );
    }

    // Keyed by the exact LLVM it links against: a nightly update rebuilds it.
    let cache = home()
        .join(".cache/thptrace")
        .join(format!("bpf-linker-{BPF_LINKER_VERSION}-{llvm}"));
    let linker = cache.join("bin/bpf-linker");
    if !linker.exists() {
        step(&format!(
            "building bpf-linker {BPF_LINKER_VERSION} against nightly's {llvm} (about a minute, once)"
        ));
        let prefix = cache.join("llvm");
        let lib = prefix.join("lib");
        fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
        for name in ["libLLVM.so", llvm.as_str()] {
            let link = lib.join(name);
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(libdir.join(&llvm), &link)
                .with_context(|| format!("linking {}", link.display()))?;
        }
        run(cmd("cargo")
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
                "--no-default-features",
                "--features",
                &format!("llvm-{major}"),
                "--root",
            ])
            .arg(&cache)
            .env("LLVM_PREFIX", &prefix))?;
    }
    Ok(Toolchain {
        bpf_linker_dir: cache.join("bin"),
    })
}

/// Builds the object into `target_dir` and returns its path.
fn build(tools: &Toolchain, target_dir: &Path) -> Result<PathBuf> {
    let root = workspace_root();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cargo"));
    let rustup_home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".rustup"));
    // BTF (needed for maps and callbacks) comes from debug info, which holds
    // absolute paths: map them to fixed prefixes so the bytes do not depend
    // on where the repository or the toolchain lives.
    let flags = [
        "-Cdebuginfo=2".to_string(),
        "-Clink-arg=--btf".to_string(),
        format!("--remap-path-prefix={}=/thptrace", root.display()),
        format!("--remap-path-prefix={}=/cargo", cargo_home.display()),
        format!("--remap-path-prefix={}=/rustup", rustup_home.display()),
    ]
    .join("\x1f");
    let path = format!(
        "{}:{}",
        tools.bpf_linker_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(cmd("rustup")
        .current_dir(&root)
        .args([
            "run",
            "nightly",
            "cargo",
            "build",
            "--package",
            "thptrace-ebpf",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--release",
            "--target-dir",
        ])
        .arg(target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", flags)
        .env("PATH", path))?;
    Ok(target_dir.join("bpfel-unknown-none/release/thptrace-ebpf"))
}

/// Digest of every file the object is built from, in a fixed order.
fn sources_digest() -> Result<String> {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in SOURCE_DIRS {
        collect(&root.join(dir), &mut files)?;
    }
    files.sort();
    let mut hash = Sha256::new();
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap_or(file);
        hash.update(rel.to_string_lossy().as_bytes());
        hash.update([0]);
        hash.update(fs::read(file).with_context(|| format!("reading {}", file.display()))?);
        hash.update([0]);
    }
    Ok(hex(&hash.finalize()))
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name == "target" || name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest_file_contents(digest: &str) -> String {
    format!(
        "{digest}  sources of {OBJECT} ({})\n",
        SOURCE_DIRS.join(", ")
    )
}

/// `cargo xtask build-ebpf`.
pub fn build_and_install() -> Result<()> {
    let tools = setup()?;
    let root = workspace_root();
    let built = build(&tools, &root.join("target/bpf"))?;
    fs::copy(&built, root.join(OBJECT)).with_context(|| format!("copying to {OBJECT}"))?;
    fs::write(
        root.join(SOURCES_DIGEST),
        digest_file_contents(&sources_digest()?),
    )?;
    eprintln!("wrote {OBJECT} and {SOURCES_DIGEST}: commit both");
    Ok(())
}

/// `cargo xtask check-ebpf`: rebuilds and compares with the committed bytes.
pub fn check() -> Result<()> {
    let tools = setup()?;
    let root = workspace_root();
    let recorded = fs::read_to_string(root.join(SOURCES_DIGEST)).unwrap_or_default();
    let digest = sources_digest()?;
    if recorded != digest_file_contents(&digest) {
        bail!(
            "{SOURCES_DIGEST} does not match the sources of the kernel object: the sources changed without `cargo xtask build-ebpf`; run it and commit the object and the digest"
        );
    }
    let built = build(&tools, &root.join("target/bpf-check"))?;
    let fresh = fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    let committed = fs::read(root.join(OBJECT)).with_context(|| format!("reading {OBJECT}"))?;
    if fresh != committed {
        bail!(
            "{OBJECT} differs from a fresh build of its sources ({} bytes committed, {} built): run `cargo xtask build-ebpf` and commit the result",
            committed.len(),
            fresh.len()
        );
    }
    eprintln!(
        "{OBJECT} matches its sources (sha256 {})",
        hex(&Sha256::digest(&committed))
    );
    Ok(())
}
