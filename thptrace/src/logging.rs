//! thptrace's own diagnostics (`-v`), and the kernel programs' (aya-log),
//! on standard error.

use log::{Level, LevelFilter, Log, Metadata, Record};

struct StderrLog;

impl Log for StderrLog {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        // aya-log records come from the kernel programs; say so.
        let source =
            if record.target().starts_with("thptrace_ebpf") || record.target() == "thptrace-ebpf" {
                "kernel: "
            } else {
                ""
            };
        let level = match record.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            _ => "",
        };
        eprintln!("thptrace: {source}{level}{}", record.args());
    }

    fn flush(&self) {}
}

/// `-v` shows set-up steps and kernel diagnostics; `-vv` everything.
pub fn init(verbose: u8) {
    static LOGGER: StderrLog = StderrLog;
    let level = match verbose {
        0 => LevelFilter::Warn,
        1 => LevelFilter::Info,
        _ => LevelFilter::Trace,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}
