//! `thptrace trace`: load, attach, print each call as it happens, and end
//! with a summary on Ctrl-C, SIGTERM, `--count`, `--duration` or the end of
//! the traced command.
//!
//! The event loop ([`run_loop`]) is shared with `thptrace record`: the two
//! differ only in the [`Sink`] events go to (lines here, a capture file
//! there).

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

use crate::annotate::{Annotation, Annotator};
use crate::child;
use crate::cli::{RunArgs, TraceArgs};
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
pub(crate) enum Stop {
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

impl Stop {
    /// thptrace's exit status: the traced command's, or 0.
    pub(crate) fn status(&self) -> i32 {
        match self {
            Stop::Command(status) => *status,
            _ => 0,
        }
    }
}

/// Where the events that pass the filters go.
pub(crate) trait Sink {
    /// One event that passed the filters, with its area and cause when the
    /// loop annotates. Errors are kept and returned by the next
    /// [`flush`](Sink::flush) (or surface through [`stop`](Sink::stop)): the
    /// kernel hands events over in a callback that cannot fail.
    fn event(&mut self, e: &Event, note: Option<&Arc<Annotation>>);
    /// After each batch of events.
    fn flush(&mut self) -> Result<()>;
    /// Whether the sink cannot take more (its output went away or failed).
    fn stop(&self) -> Option<Stop> {
        None
    }
    /// Once a second, with the kernel counters.
    fn tick(&mut self, _counters: &KernelCounters) -> Result<()> {
        Ok(())
    }
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

/// The live trace's sink: one line per event (with its area and cause).
struct Lines {
    output: Output,
    formatter: Formatter,
    /// The reader of our output is gone.
    closed: bool,
    /// Writing failed for another reason.
    write_error: Option<io::Error>,
}

impl Lines {
    fn write_failed(&mut self, e: io::Error) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            self.closed = true;
        } else if self.write_error.is_none() {
            self.write_error = Some(e);
        }
    }
}

impl Sink for Lines {
    fn event(&mut self, e: &Event, note: Option<&Arc<Annotation>>) {
        if self.stop().is_some() {
            return;
        }
        let out = &mut self.output;
        out.line.clear();
        self.formatter.write_annotated(&mut out.line, e, note);
        if let Err(err) = out.sink.write_all(out.line.as_bytes()) {
            self.write_failed(err);
        }
    }

    fn flush(&mut self) -> Result<()> {
        if let Err(e) = self.output.sink.flush() {
            self.write_failed(e);
        }
        Ok(())
    }

    fn stop(&self) -> Option<Stop> {
        if self.write_error.is_some() {
            Some(Stop::OutputFailed)
        } else if self.closed {
            Some(Stop::OutputClosed)
        } else {
            None
        }
    }
}

/// Runs a live trace; returns the process exit status.
pub async fn run(args: TraceArgs) -> Result<i32> {
    let filters = args.filters();
    // The host's facts, read once: the facts of the kernel the calls run on.
    let annotator = args
        .format
        .explains(args.brief)
        .then(|| Annotator::new(HostFacts::read(Path::new("/"))));
    let mut done = run_loop(&args.run, &filters, "tracing", "", annotator, || {
        Ok(Lines {
            output: Output::open(&args)?,
            formatter: Formatter::new(args.format, Clock::host()),
            closed: false,
            write_error: None,
        })
    })
    .await?;
    if !args.no_summary {
        eprint!(
            "{}",
            render_summary(&done.summary, &done.counters, &args.run, &filters)
        );
    }
    if let Some(e) = done.sink.write_error.take() {
        let place = args.output.as_ref().map_or_else(
            || "standard output".to_string(),
            |p| p.display().to_string(),
        );
        anyhow::bail!(
            "writing the trace to {place} failed: {e}; the {} calls before it were written, later ones were not (the summary above counts what was shown); free space or choose another --output",
            done.summary.events()
        );
    }
    Ok(done.stop.status())
}

/// How a run ended.
pub(crate) struct Done<S> {
    pub stop: Stop,
    /// The kernel counters after the last event was taken.
    pub counters: KernelCounters,
    /// The events that passed the filters.
    pub summary: Summary,
    pub sink: S,
}

/// Loads and attaches the kernel programs, runs `run.command` if any, and
/// hands every event that passes `filters` to the sink `make_sink` makes
/// (once the programs are loaded), annotated when `annotator` is given,
/// until a signal, `--count`, `--duration`, the end of the command or the
/// sink's own stop. `verb` and `target` word the start-up line:
/// "thptrace: {verb} failing madvise calls of ...{target} (filters: ...)".
pub(crate) async fn run_loop<S: Sink>(
    run: &RunArgs,
    filters: &Filters,
    verb: &str,
    target: &str,
    annotator: Option<Annotator>,
    make_sink: impl FnOnce() -> Result<S>,
) -> Result<Done<S>> {
    // Before anything is attached: a Ctrl-C from now on detaches cleanly and
    // still prints the summary (a script that waits for the "tracing" line
    // and interrupts at once must not kill us mid-setup).
    let mut sigterm = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    setup::prepare()?;
    let config = ProbeConfig {
        pids: filters.pids.clone(),
        tids: filters.tids.clone(),
        advice: filters.advice.clone(),
        errnos: filters.errnos.clone(),
        report_success: filters.all,
        follow_forks: !run.command.is_empty(),
        buffer_size: run.buffer_size,
        kernel_log: run.verbose > 0,
        untimed: run.no_durations,
    };
    let mut probe = Probe::load(&config)?;
    let mut kernel_log = probe.take_kernel_log();
    for notice in probe.notices() {
        eprintln!("thptrace: {notice}");
    }
    log::info!("kernel programs loaded, ids {:?}", probe.program_ids());

    let mut shown = Shown {
        sink: make_sink()?,
        annotator,
        summary: Summary::default(),
        filters: filters.clone(),
        limit: run.count.unwrap_or(u64::MAX),
    };

    let running = if run.command.is_empty() {
        None
    } else {
        let held = child::spawn_held(&run.command)?;
        probe.add_pid(held.pid())?;
        Some(held.release()?)
    };
    if io::stderr().is_terminal() || run.verbose > 0 {
        let what = match &running {
            Some(c) => format!(
                "`{}` (pid {}) and its children",
                run.command.join(" "),
                c.pid()
            ),
            None if filters.pids.is_empty() => "the whole host".to_string(),
            None => format!("pid {}", join(&filters.pids)),
        };
        eprintln!(
            "thptrace: {verb} failing madvise calls of {what}{target} (filters: {}); Ctrl-C to stop",
            filters.describe()
        );
    }

    let deadline = async {
        match run.duration {
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
                shown.sink.flush()?;
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
                    shown.sink.flush()?;
                    if let Some(stop) = shown.stop() {
                        break stop;
                    }
                }
            }
            _ = tick.tick() => {
                let counters = probe.counters()?;
                shown.sink.tick(&counters)?;
                let lost = counters.lost;
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
    shown.sink.flush()?;
    let counters = probe.counters()?;
    drop(probe);
    log::info!("detached: {stop:?}");
    Ok(Done {
        stop,
        counters,
        summary: shown.summary,
        sink: shown.sink,
    })
}

/// What is shown, and the tally of it.
struct Shown<S> {
    sink: S,
    /// Areas and causes (off with `--brief`).
    annotator: Option<Annotator>,
    summary: Summary,
    filters: Filters,
    limit: u64,
}

impl<S: Sink> Shown<S> {
    fn show(&mut self, e: &Event) {
        if self.stop().is_some() || !self.filters.matches_after_kernel(e) {
            return;
        }
        let note = self.annotator.as_mut().and_then(|a| a.annotate(e));
        self.sink.event(e, note.as_ref());
        if self.sink.stop().is_some() {
            // Not shown after all (the output failed).
            return;
        }
        self.summary
            .add_with_cause(e, note.as_ref().map(|n| &n.explanation));
    }

    /// Whether to stop: `--count` reached, or the sink cannot take more.
    fn stop(&self) -> Option<Stop> {
        self.sink
            .stop()
            .or_else(|| (self.summary.events() >= self.limit).then_some(Stop::Count))
    }
}

pub(crate) fn render_summary(
    summary: &Summary,
    counters: &KernelCounters,
    run: &RunArgs,
    filters: &Filters,
) -> String {
    let hint = format!(
        "Raise --buffer-size (now {} MiB) or narrow the filters (now: {}).",
        run.buffer_size >> 20,
        filters.describe()
    );
    summary.render(Some(counters), &hint)
}

fn join(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}
