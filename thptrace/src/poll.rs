//! Registering descriptors with tokio so the single-threaded loop can wait on
//! the ring buffer, the kernel log and the traced command at once.

use std::os::fd::AsRawFd;

use anyhow::{Result, anyhow};
use tokio::io::{Interest, unix::AsyncFd};

/// Registers `inner` for readability. Callers pass objects that own their
/// descriptor (aya maps, `OwnedFd`), which is what makes this sound.
pub fn readable<T: AsRawFd>(inner: T, what: &str) -> Result<AsyncFd<T>> {
    // SAFETY: `inner` owns its descriptor, which stays open and the same for
    // as long as the AsyncFd owns `inner`.
    unsafe { AsyncFd::register_with_interest(inner, Interest::READABLE) }.map_err(|e| {
        anyhow!(
            "registering {what} with the event loop: {}",
            e.into_parts().1
        )
    })
}
