//! Embeds the identity of the committed kernel object in the binary, for
//! `thptrace --version`: the object's own digest, and the digest of the
//! sources `cargo xtask build-ebpf` built it from.
use sha2::{Digest, Sha256};

const OBJECT: &str = "bpf/thptrace-ebpf.o";
const SOURCES: &str = "bpf/thptrace-ebpf.sources.sha256";

fn main() {
    println!("cargo:rerun-if-changed={OBJECT}");
    println!("cargo:rerun-if-changed={SOURCES}");
    let object = std::fs::read(OBJECT).unwrap_or_else(|e| {
        panic!("{OBJECT}: {e}; the kernel object is committed: run `cargo xtask build-ebpf` to regenerate it")
    });
    let digest: String = Sha256::digest(&object)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("cargo:rustc-env=THPTRACE_OBJECT_SHA256={digest}");
    let sources = std::fs::read_to_string(SOURCES).unwrap_or_default();
    let sources = sources.split_whitespace().next().unwrap_or("unknown");
    println!("cargo:rustc-env=THPTRACE_SOURCES_SHA256={sources}");
}
