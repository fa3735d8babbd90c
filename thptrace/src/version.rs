//! What `thptrace --version` says: the loader's version and the identity of
//! the kernel object it carries (set by build.rs from the committed object).

pub const SHORT: &str = env!("CARGO_PKG_VERSION");

pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nkernel object: sha256:",
    env!("THPTRACE_OBJECT_SHA256"),
    "\nbuilt from kernel sources: sha256:",
    env!("THPTRACE_SOURCES_SHA256"),
);
