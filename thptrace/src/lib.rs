//! thptrace: trace failing `madvise()` and `process_madvise()` calls with eBPF
//! and tell the person at the keyboard what went wrong.
//!
//! Map of the crate:
//! - [`probe`] is the only module that touches aya: it loads the kernel object,
//!   attaches, streams events and reads the kernel counters.
//! - [`event`] is the decoded event every other module works on; [`decode`]
//!   names advice and errno values.
//! - [`filter`], [`format`] and [`summary`] decide what is shown and how.
//! - [`trace`] runs a live trace; [`cli`] is the command line.

pub mod annotate;
pub mod btf;
pub mod callparse;
pub mod capture;
pub mod check;
pub mod child;
pub mod cli;
pub mod clock;
pub mod decode;
pub mod digits;
pub mod event;
pub mod explain;
pub mod explain_cmd;
pub mod filter;
pub mod format;
pub mod host;
pub mod logging;
pub mod poll;
pub mod probe;
pub mod record;
pub mod report;
pub mod setup;
pub mod summary;
pub mod trace;
pub mod version;
