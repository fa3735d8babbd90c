//! `thptrace trace`: load, attach, print each call as it happens, and end
//! with a summary on Ctrl-C, SIGTERM, `--count`, `--duration` or the end of
//! the traced command.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

use std::path::Path;

use crate::annotate::Annotator;
use crate::child;
use crate::cli::TraceArgs;
use crate::clock::Clock;
use crate::event::{Event, KernelCounters};
use crate::filter::Filters;
use crate::format::Formatter;
use crate::host::HostFacts;
use crate::probe::{Probe, ProbeConfig};
use crate::setup;
use crate::summary::Summary;

/// Why tracing stopped.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    Signal,
    Count,
    Duration,
    /// The traced command exited with this status.
    Command(i32),
    /// The reader of our output went away (`thptrace | head`).
    OutputClosed,
    /// Writing the output failed (disk full, ...): stop rather than drop
    /// events without saying so.
    OutputFailed,
}

/// Where event lines go: buffered, flushed after each batch so a person
/// watching sees lines as they come.
struct Output {
    sink: Box<dyn Write>,
    line: String,
}

impl Output {
    fn open(args: &TraceArgs) -> Result<Output> {
        let sink: Box<dyn Write> = match &args.output {
            Some(path) => Box::new(io::BufWriter::with_capacity(
                1 << 20,
                File::create(path)
                    .with_context(|| format!("cannot create the output file {}", path.display()))?,
            )),
            None => Box::new(io::BufWriter::with_capacity(1 << 16, io::stdout().lock())),
        };
        Ok(Output {
            sink,
            line: String::with_capacity(512),
        })
    }
}

/// Runs a live trace; returns the process exit status.
pub async fn run(args: TraceArgs) -> Result<i32> {
    // Before anything is attached: a Ctrl-C from now on detaches cleanly and
    // still prints the summary (a script that waits for the "tracing" line
    // and interrupts at once must not kill us mid-setup).
    let mut sigterm = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    let filters = args.filters();
    setup::prepare()?;
    let config = ProbeConfig {
        pids: filters.pids.clone(),
        tids: filters.tids.clone(),
        advice: filters.advice.clone(),
        errnos: filters.errnos.clone(),
        report_success: filters.all,
        follow_forks: !args.command.is_empty(),
        buffer_size: args.buffer_size,
        kernel_log: args.verbose > 0,
    };
    let mut probe = Probe::load(&config)?;
    let mut kernel_log = probe.take_kernel_log();
    for notice in probe.notices() {
        eprintln!("thptrace: {notice}");
    }
    log::info!("kernel programs loaded, ids {:?}", probe.program_ids());

    let mut shown = Shown {
        output: Output::open(&args)?,
        formatter: Formatter::new(args.format, Clock::host()),
        annotator: (!args.brief).then(|| Annotator::new(HostFacts::read(Path::new("/")))),
        summary: Summary::default(),
        filters: filters.clone(),
        limit: args.count.unwrap_or(u64::MAX),
        closed: false,
        write_error: None,
    };

    let running = if args.command.is_empty() {
        None
    } else {
        let held = child::spawn_held(&args.command)?;
        probe.add_pid(held.pid())?;
        Some(held.release()?)
    };
    if io::stderr().is_terminal() || args.verbose > 0 {
        let what = match &running {
            Some(c) => format!(
                "`{}` (pid {}) and its children",
                args.command.join(" "),
                c.pid()
            ),
            None if filters.pids.is_empty() => "the whole host".to_string(),
            None => format!("pid {}", join(&filters.pids)),
        };
        eprintln!(
            "thptrace: tracing failing madvise calls of {what} (filters: {}); Ctrl-C to stop",
            filters.describe()
        );
    }

    let deadline = async {
        match args.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let child_exit = async {
        match &running {
            Some(c) => c.wait().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(child_exit);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // The kernel does not wake us for every event (see probe::DRAIN_INTERVAL).
    let mut drain = tokio::time::interval(crate::probe::DRAIN_INTERVAL);
    let mut lost_reported = 0;

    let stop = loop {
        tokio::select! {
            batch = probe.next_batch(|e| shown.show(e)) => {
                batch?;
                shown.flush();
                if let Some(stop) = shown.stop() {
                    break stop;
                }
            }
            status = &mut child_exit => break Stop::Command(status?),
            _ = sigint.recv() => break Stop::Signal,
            _ = sigterm.recv() => break Stop::Signal,
            _ = &mut deadline => break Stop::Duration,
            log = crate::probe::forward_kernel_log(&mut kernel_log) => log?,
            _ = drain.tick() => {
                if probe.drain(|e| shown.show(e)) > 0 {
                    shown.flush();
                    if let Some(stop) = shown.stop() {
                        break stop;
                    }
                }
            }
            _ = tick.tick() => {
                let lost = probe.counters()?.lost;
                if lost > lost_reported {
                    eprintln!(
                        "thptrace: WARNING: {} events lost so far: the ring buffer is full; raise --buffer-size",
                        lost
                    );
                    lost_reported = lost;
                }
            }
        }
    };
    // Whatever the kernel wrote before we stopped is still shown.
    probe.drain(|e| shown.show(e));
    shown.flush();
    let counters = probe.counters()?;
    drop(probe);
    log::info!("detached: {stop:?}");

    if !args.no_summary {
        eprint!(
            "{}",
            render_summary(&shown.summary, &counters, &args, &filters)
        );
    }
    if let Some(e) = shown.write_error.take() {
        let place = args.output.as_ref().map_or_else(
            || "standard output".to_string(),
            |p| p.display().to_string(),
        );
        anyhow::bail!(
            "writing the trace to {place} failed: {e}; the {} calls before it were written, later ones were not (the summary above counts what was shown); free space or choose another --output",
            shown.summary.events()
        );
    }
    Ok(match stop {
        Stop::Command(status) => status,
        _ => 0,
    })
}

/// What is shown, and the tally of it.
struct Shown {
    output: Output,
    formatter: Formatter,
    /// Areas and causes (off with `--brief`).
    annotator: Option<Annotator>,
    summary: Summary,
    filters: Filters,
    limit: u64,
    /// The reader of our output is gone.
    closed: bool,
    /// Writing failed for another reason.
    write_error: Option<io::Error>,
}

impl Shown {
    fn show(&mut self, e: &Event) {
        if self.stop().is_some() || !self.filters.matches_after_kernel(e) {
            return;
        }
        let out = &mut self.output;
        out.line.clear();
        let note = self.annotator.as_mut().and_then(|a| a.annotate(e));
        self.formatter
            .write_annotated(&mut out.line, e, note.as_ref());
        if let Err(e) = out.sink.write_all(out.line.as_bytes()) {
            self.write_failed(e);
            return;
        }
        self.summary
            .add_with_cause(e, note.as_ref().map(|n| &n.explanation));
    }

    /// Whether showing must stop: `--count` reached, or the output gone.
    fn stop(&self) -> Option<Stop> {
        if self.write_error.is_some() {
            Some(Stop::OutputFailed)
        } else if self.closed {
            Some(Stop::OutputClosed)
        } else if self.summary.events() >= self.limit {
            Some(Stop::Count)
        } else {
            None
        }
    }

    fn write_failed(&mut self, e: io::Error) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            self.closed = true;
        } else if self.write_error.is_none() {
            self.write_error = Some(e);
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.output.sink.flush() {
            self.write_failed(e);
        }
    }
}

fn render_summary(
    summary: &Summary,
    counters: &KernelCounters,
    args: &TraceArgs,
    filters: &Filters,
) -> String {
    let hint = format!(
        "Raise --buffer-size (now {} MiB) or narrow the filters (now: {}).",
        args.buffer_size >> 20,
        filters.describe()
    );
    summary.render(Some(counters), &hint)
}

fn join(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}
