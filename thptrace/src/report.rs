//! `thptrace report`: reads capture files written by `thptrace record` and
//! prints what live tracing would have printed: the same lines (format.rs),
//! JSON, or the summary with the kernel counters the recorder stored.
//!
//! Several captures (several hosts) merge in wall-clock order with a host
//! column; FILE of a rotated set reads the whole set in order. Damage (a
//! file cut short, a bad checksum) is reported on standard error with the
//! file and the byte offset, every complete record before it is used, and
//! the exit status is non-zero only with `--strict`.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::annotate::Annotator;
use crate::capture::{CaptureSet, Counters, Merged, ReadOptions, Record, merge};
use crate::cli::FilterArgs;
use crate::clock::{Clock, parse_rfc3339, rfc3339};
use crate::event::KernelCounters;
use crate::format::{Format, Formatter};
use crate::record::RecordedFilters;
use crate::summary::Summary;

pub const REPORT_HELP: &str = "Examples:
  thptrace report restore.thp                      the calls, as live tracing prints them
  thptrace report --summary /var/log/thptrace/host.thp
  thptrace report -f json --since -10m node-a.thp node-b.thp
  thptrace report --errno EINVAL --since 2026-11-27T06:00:00Z --until 2026-11-27T07:00:00Z cap.thp

Exit status: 0 when every file was read; damage (a file cut short, a bad checksum)
is reported on standard error and counts as an error only with --strict.";

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// Capture files. FILE of a rotated set (FILE.000001, ...) reads the
    /// whole set in order; several captures merge in time order, with the
    /// host each call came from.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub filter: FilterArgs,

    /// Only calls at or after TIME: RFC 3339 (2026-11-27T06:00:00Z,
    /// 2026-11-27T07:00:00+01:00) or relative to now (-10m, -2h, -30s).
    #[arg(long, value_name = "TIME", value_parser = time_arg, allow_hyphen_values = true)]
    pub since: Option<i128>,

    /// Only calls at or before TIME (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = time_arg, allow_hyphen_values = true)]
    pub until: Option<i128>,

    /// Print the summary (calls per comm, syscall, advice and errno, and the
    /// kernel counters the recorder stored) instead of the calls.
    #[arg(short = 's', long, conflicts_with = "format")]
    pub summary: bool,

    /// Output format.
    #[arg(short = 'f', long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// One line per call: no memory-area or cause lines (JSON keeps them).
    #[arg(long)]
    pub brief: bool,

    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Exit non-zero when a capture is damaged or did not end cleanly
    /// (without it, damage is reported on standard error and every complete
    /// record before it is used).
    #[arg(long)]
    pub strict: bool,

    /// Never show the progress bar (shown on a terminal for large captures).
    #[arg(long)]
    pub no_progress: bool,
}

fn now_wall_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

fn time_arg(s: &str) -> Result<i128, String> {
    parse_time(s, now_wall_ns())
}

/// `--since`/`--until`: RFC 3339, `now`, or `-DURATION` before `now_ns`.
pub fn parse_time(text: &str, now_ns: i128) -> Result<i128, String> {
    let t = text.trim();
    if t == "now" {
        return Ok(now_ns);
    }
    if let Some(rel) = t.strip_prefix('-') {
        let d = crate::cli::duration(rel)?;
        return Ok(now_ns - d.as_nanos() as i128);
    }
    parse_rfc3339(t).ok_or_else(|| {
        format!(
            "`{text}` is not a time: give RFC 3339 (2026-11-27T06:00:00Z or \
             2026-11-27T07:00:00+01:00) or a time before now (-10m, -2h, -30s)"
        )
    })
}

/// What was seen of one capture.
#[derive(Default)]
struct Seen {
    /// The last counters snapshot: the authority on what was lost.
    counters: Option<Counters>,
    events: u64,
    first_ns: Option<u64>,
    last_ns: u64,
}

/// A hand-rolled progress bar on standard error: one line redrawn at most
/// ten times a second, from the bytes the readers consumed.
struct Progress {
    total: u64,
    enabled: bool,
    started: Instant,
    last: Instant,
    drawn: bool,
}

/// Captures smaller than this read in well under a second: no bar.
const PROGRESS_MIN_BYTES: u64 = 32 << 20;

impl Progress {
    fn new(total: u64, enabled: bool) -> Progress {
        let now = Instant::now();
        Progress {
            total,
            enabled: enabled && total >= PROGRESS_MIN_BYTES,
            started: now,
            last: now,
            drawn: false,
        }
    }

    fn update(&mut self, done: u64, events: u64) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        let frac = (done as f64 / self.total.max(1) as f64).min(1.0);
        const WIDTH: usize = 30;
        let filled = (frac * WIDTH as f64) as usize;
        let rate = events as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r[{}{}] {:3.0}%  {} of {} MiB  {:.1}M events/s ",
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            frac * 100.0,
            done >> 20,
            self.total >> 20,
            rate / 1e6
        );
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[K");
            self.drawn = false;
        }
    }
}

/// Reads the captures and prints; returns the exit status.
pub fn run(args: &ReportArgs) -> Result<i32> {
    let opts = ReadOptions {
        strict: args.strict,
        ..Default::default()
    };
    let mut sets = Vec::new();
    let mut unreadable = 0;
    for f in &args.files {
        match CaptureSet::open(f, opts) {
            Ok(s) => sets.push(s),
            Err(e) if args.strict || args.files.len() == 1 => {
                return Err(anyhow::Error::new(e).context(format!(
                    "{} cannot be read as a capture (give files that `thptrace record -o FILE` wrote)",
                    f.display()
                )));
            }
            Err(e) => {
                eprintln!("thptrace: skipping {}: {e}", f.display());
                unreadable += 1;
            }
        }
    }
    if sets.is_empty() {
        bail!("none of the files could be read as a capture");
    }
    let total_bytes: u64 = sets
        .iter()
        .flat_map(|s| s.files())
        .filter_map(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let multi = sets.len() > 1;
    let n = sets.len();
    // Each capture's calls are explained against the facts it recorded: the
    // facts of the kernel they ran on, whatever host reads them.
    let mut annotators: Vec<Option<Annotator>> = sets
        .iter()
        .map(|set| {
            args.format
                .explains(args.brief)
                .then(|| Annotator::new(set.header().host.host_facts().0))
        })
        .collect();

    let mut out: Option<BufWriter<Box<dyn Write>>> = if args.summary {
        None
    } else {
        Some(open_output(args)?)
    };
    let to_terminal = args.output.is_none() && io::stdout().is_terminal();
    let mut progress = Progress::new(
        total_bytes,
        !args.no_progress && io::stderr().is_terminal() && (args.summary || !to_terminal),
    );

    let filters = args.filter.filters();
    let (since, until) = (args.since, args.until);
    let mut formatter = Formatter::new(args.format, Clock { boot_epoch_ns: 0 });
    let mut summary = Summary::default();
    let mut seen: Vec<Seen> = (0..n).map(|_| Seen::default()).collect();
    let mut line = String::with_capacity(512);
    let mut host: Option<Arc<str>> = None;
    let mut records: u64 = 0;
    let mut merged = merge(sets);
    let mut broken_pipe = false;

    while let Some(item) = merged.next() {
        let Merged {
            source,
            host: record_host,
            wall_ns,
            record,
        } = match item {
            Ok(m) => m,
            Err(e) => {
                progress.clear();
                let why = if args.strict {
                    "--strict: the capture is damaged (leave out --strict to read every complete \
                     record before the damage)"
                } else {
                    "reading the capture failed"
                };
                return Err(anyhow::Error::new(e).context(why));
            }
        };
        records += 1;
        if records.is_multiple_of(16_384) {
            let done: u64 = merged.sources().iter().map(|s| s.stats().bytes).sum();
            progress.update(done, records);
        }
        match record {
            Record::Event(e) => {
                let s = &mut seen[source];
                s.events += 1;
                s.first_ns.get_or_insert(wall_ns);
                s.last_ns = wall_ns;
                let t = wall_ns as i128;
                if since.is_some_and(|since| t < since)
                    || until.is_some_and(|until| t > until)
                    || !filters.matches(&e)
                {
                    continue;
                }
                let note = annotators[source].as_mut().and_then(|a| a.annotate(&e));
                summary.add_with_cause(&e, note.as_ref().map(|n| &n.explanation));
                let Some(w) = out.as_mut() else { continue };
                formatter.set_clock(Clock {
                    boot_epoch_ns: wall_ns as i128 - e.ts_boot_ns as i128,
                });
                if multi && host.as_ref() != Some(&record_host) {
                    formatter.set_host(Some(record_host.clone()));
                    host = Some(record_host);
                }
                line.clear();
                formatter.write_annotated(&mut line, &e, note.as_ref());
                if let Err(err) = w.write_all(line.as_bytes()) {
                    if err.kind() == io::ErrorKind::BrokenPipe {
                        broken_pipe = true;
                        break;
                    }
                    return Err(err).context("writing the report");
                }
            }
            Record::Counters(c) => seen[source].counters = Some(c),
            Record::End(_) => {}
        }
    }
    progress.clear();
    if let Some(mut w) = out.take()
        && !broken_pipe
    {
        match w.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            other => other.context("writing the report")?,
        }
    }

    // Damage and unclean ends, per capture, on standard error.
    let mut problems = unreadable;
    for d in merged.damages() {
        eprintln!("thptrace: damaged capture: {d}");
        problems += 1;
    }
    let sources = merged.sources();
    for set in sources {
        let clean = set.end().is_some_and(|e| !e.continued);
        if !clean && !broken_pipe {
            let last = set
                .files()
                .last()
                .map(|(_, p)| p.clone())
                .unwrap_or_default();
            eprintln!(
                "thptrace: {}: the capture has no end marker after its last record in {}: the \
                 recorder was killed, the machine stopped, or it is still recording; every \
                 complete record was read",
                set_name(set),
                last.display()
            );
            problems += 1;
        }
    }
    let total = total_counters(&seen);
    if !args.summary {
        if let Some(t) = &total
            && t.lost > 0
        {
            eprintln!(
                "thptrace: WARNING: {} EVENTS WERE LOST while recording (the ring buffer was full): \
                 these calls are incomplete; `thptrace report --summary` says which capture",
                t.lost
            );
        }
        for (set, s) in sources.iter().zip(&seen) {
            if s.counters.is_none() {
                eprintln!("thptrace: WARNING: {}", no_counters(set));
            }
        }
    }

    if args.summary {
        let text = render_summary(sources, &seen, &summary, total.as_ref(), args);
        let mut w = open_output(args)?;
        w.write_all(text.as_bytes())
            .and_then(|()| w.flush())
            .context("writing the report")?;
    }
    Ok(if args.strict && problems > 0 { 1 } else { 0 })
}

fn open_output(args: &ReportArgs) -> Result<BufWriter<Box<dyn Write>>> {
    let w: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(File::create(p).with_context(|| {
            format!(
                "cannot create the output file {}: give -o a path in a writable directory",
                p.display()
            )
        })?),
        None => Box::new(io::stdout().lock()),
    };
    Ok(BufWriter::with_capacity(1 << 20, w))
}

fn set_name(set: &CaptureSet) -> String {
    set.files()
        .first()
        .map(|(seq, p)| {
            if *seq == 0 {
                p.display().to_string()
            } else {
                // The base name: the set started at FILE.
                let s = p.display().to_string();
                s.rsplit_once('.').map_or(s.clone(), |(b, _)| b.to_string())
            }
        })
        .unwrap_or_default()
}

fn no_counters(set: &CaptureSet) -> String {
    format!(
        "{} holds no kernel counters (the recorder stopped within its first second): it cannot \
         tell a quiet host from a recorder that lost events",
        set_name(set)
    )
}

/// The counters of every capture added up, or `None` when a capture has none.
fn total_counters(seen: &[Seen]) -> Option<KernelCounters> {
    let mut t = KernelCounters::default();
    for s in seen {
        let k = s.counters?.kernel();
        t.calls += k.calls;
        t.failures += k.failures;
        t.sent += k.sent;
        t.lost += k.lost;
        t.restarts += k.restarts;
        t.no_duration += k.no_duration;
    }
    Some(t)
}

fn render_summary(
    sources: &[CaptureSet],
    seen: &[Seen],
    summary: &Summary,
    total: Option<&KernelCounters>,
    args: &ReportArgs,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for (set, s) in sources.iter().zip(seen) {
        let h = set.header();
        let filters = serde_json::from_value::<RecordedFilters>(h.filters.clone())
            .map(|f| f.describe())
            .unwrap_or_else(|_| h.filters.to_string());
        let host = if h.host.hostname.is_empty() {
            "unknown"
        } else {
            &h.host.hostname
        };
        let _ = writeln!(
            out,
            "capture {}: host {host}, kernel {} {}, recorded by thptrace {}, filters: {filters}",
            set_name(set),
            h.host.kernel_release,
            h.host.arch,
            h.thptrace_version,
        );
        let files = set.files();
        let mut line = format!(
            "    {} file{}, {} events",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            s.events
        );
        if let Some(first) = s.first_ns {
            let _ = write!(
                line,
                " from {} to {}",
                rfc3339(first as i128),
                rfc3339(s.last_ns as i128)
            );
        }
        let _ = writeln!(out, "{line}");
        if let Some((seq, _)) = files.first()
            && *seq > 0
        {
            let _ = writeln!(
                out,
                "    the first {seq} files of this capture were rotated away (--max-files or \
                 --flight-recorder): what it recorded before its first event above is gone"
            );
        }
        match s.counters {
            Some(c) if sources.len() > 1 => {
                let k = c.kernel();
                let _ = writeln!(
                    out,
                    "    kernel counters: {} calls from traced processes, {} failed, {} events \
                     sent, {} lost, {} restarted, {} without a duration",
                    k.calls, k.failures, k.sent, k.lost, k.restarts, k.no_duration
                );
            }
            Some(_) => {}
            None => {
                let _ = writeln!(out, "    WARNING: {}", no_counters(set));
            }
        }
    }
    if args.since.is_some() || args.until.is_some() {
        let _ = writeln!(
            out,
            "calls shown: {} to {} (the kernel counters cover the whole capture)",
            args.since.map_or("the start".into(), rfc3339),
            args.until.map_or("the end".into(), rfc3339)
        );
    }
    let hint = "Record again with a larger --buffer-size or narrower filters.";
    out.push_str(&summary.render(total, hint));
    match total {
        None => {}
        Some(t) if t.lost > 0 => {}
        Some(t) if summary.events() == 0 && t.sent == 0 => {
            let _ = writeln!(
                out,
                "No events were lost: the host was quiet (the kernel saw {} calls from traced \
                 processes, {} failing, and had nothing to send).",
                t.calls, t.failures
            );
        }
        Some(t) => {
            let _ = writeln!(
                out,
                "No events were lost: the ring buffer had room for all {} events the kernel sent.",
                t.sent
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    const NS: i128 = 1_000_000_000;

    #[test]
    fn times_parse_absolute_and_relative() {
        let now = 1_800_000_000 * NS;
        assert_eq!(parse_time("-10m", now), Ok(now - 600 * NS));
        assert_eq!(parse_time("-2h", now), Ok(now - 7200 * NS));
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(
            parse_time("2024-02-29T12:34:56Z", now),
            Ok(1_709_210_096 * NS)
        );
        let e = parse_time("yesterday", now).unwrap_err();
        assert!(e.contains("RFC 3339") && e.contains("-10m"), "{e}");
        assert!(parse_time("-10 parsecs", now).is_err());
    }

    fn parse(args: &[&str]) -> Result<ReportArgs, String> {
        let mut v = vec!["thptrace", "report"];
        v.extend_from_slice(args);
        match Cli::try_parse_from(v).map_err(|e| e.to_string())?.command {
            Some(Command::Report(a)) => Ok(a),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn options() {
        let a = parse(&["--since", "-10m", "--errno", "EINVAL", "a.thp", "b.thp"]).unwrap();
        assert_eq!(a.files.len(), 2);
        assert!(a.since.is_some());
        assert_eq!(a.filter.filters().errnos, vec![22]);
        assert!(parse(&[]).unwrap_err().contains("FILE"));
        assert!(
            parse(&["--summary", "-f", "json", "a"])
                .unwrap_err()
                .contains("cannot be used with")
        );
        assert!(
            parse(&["--since", "soon", "a"])
                .unwrap_err()
                .contains("not a time")
        );
    }
}
