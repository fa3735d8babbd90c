//! `thptrace record`: the live trace's event loop, writing a capture file
//! (docs/capture-format.md) instead of lines, for `thptrace report` to read
//! later on any machine.
//!
//! Every event that passes the filters is appended to the capture; the
//! kernel counters are appended once a second and at exit, so a report can
//! tell a quiet host from a recorder that lost events. The file is flushed
//! at least once a second (after each tick, and after any batch once the
//! last flush is a second old) and at exit, where the end marker is written
//! and the file synced.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::annotate::Annotator;
use crate::capture::{CaptureError, CaptureWriter, Counters, HostInfo, WriterOptions};
use crate::cli::{FilterArgs, RunArgs};
use crate::event::{Event, KernelCounters};
use crate::filter::Filters;
use crate::host::HostFacts;
use crate::trace::{self, Sink};

pub const RECORD_HELP: &str = "Examples:
  thptrace record -o restore.thp -- criu restore -D dir
  thptrace record -o /var/log/thptrace/host.thp --flight-recorder 256M
  thptrace record -o failures.thp --max-size 64M --max-files 10 --advice NOHUGEPAGE
  thptrace report restore.thp

Files are created with mode 0600. Rotated files are FILE.000001, FILE.000002, ...;
`thptrace report FILE` reads the whole set in order.";

#[derive(Args, Debug, Clone)]
pub struct RecordArgs {
    /// The capture file to write (mode 0600). Rotation adds FILE.000001, FILE.000002, ...
    #[arg(short = 'o', long, value_name = "FILE", required = true)]
    pub output: PathBuf,

    /// Start the next file rather than let one grow past SIZE (512k, 64M, 1G).
    #[arg(long, value_name = "SIZE", value_parser = size)]
    pub max_size: Option<u64>,

    /// Keep at most N files, deleting the oldest (needs --max-size).
    #[arg(long, value_name = "N", requires = "max_size", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_files: Option<u64>,

    /// Always-on recording: keep only about the newest SIZE of records on
    /// disk, never more than SIZE in all (8 rotated files of SIZE/8).
    #[arg(long, value_name = "SIZE", value_parser = size, conflicts_with_all = ["max_size", "max_files"])]
    pub flight_recorder: Option<u64>,

    /// Do not print the summary at the end.
    #[arg(long)]
    pub no_summary: bool,

    #[command(flatten)]
    pub filter: FilterArgs,

    #[command(flatten)]
    pub run: RunArgs,
}

fn size(s: &str) -> Result<u64, String> {
    match crate::capture::parse_size(s) {
        Ok(0) => Err(format!("`{s}`: a size must be more than zero")),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// What a capture's header says about the filters: the filters themselves
/// (as [`Filters`] serializes them) and the command traced, if any (its
/// processes were followed, so the pid filter grew as it forked).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordedFilters {
    #[serde(flatten)]
    pub filters: Filters,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

impl RecordedFilters {
    /// How a report describes them: `pid 4242, advice MADV_NOHUGEPAGE`,
    /// `command criu restore (and its children)`, or `none`.
    pub fn describe(&self) -> String {
        let filters = self.filters.describe();
        if self.command.is_empty() {
            return filters;
        }
        let cmd = format!("command `{}` and its children", self.command.join(" "));
        if filters == "none" {
            cmd
        } else {
            format!("{cmd}, {filters}")
        }
    }
}

/// The writer options the command line asks for.
pub fn writer_options(args: &RecordArgs) -> WriterOptions {
    let mut opts = match args.flight_recorder {
        Some(total) => WriterOptions::flight_recorder(&args.output, total),
        None => {
            let mut o = WriterOptions::new(&args.output);
            o.max_size = args.max_size;
            o.max_files = args.max_files;
            o
        }
    };
    opts.untimed = args.run.no_durations;
    opts
}

/// The sink: events and counters into the capture.
struct Recorder {
    writer: CaptureWriter,
    /// The first write that failed; recording stops at the next flush.
    error: Option<CaptureError>,
}

impl Recorder {
    fn failed(e: CaptureError) -> anyhow::Error {
        anyhow::Error::new(e).context(
            "recording stopped: the capture cannot be written (is the disk full? free space, \
             bound the capture with --max-size/--max-files or --flight-recorder, or record \
             elsewhere with -o)",
        )
    }
}

impl Sink for Recorder {
    fn event(&mut self, e: &Event, _note: Option<&std::sync::Arc<crate::annotate::Annotation>>) {
        if self.error.is_none()
            && let Err(err) = self.writer.write_event(e)
        {
            self.error = Some(err);
        }
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(Self::failed(e));
        }
        self.writer.flush_if_due().map_err(Self::failed)?;
        Ok(())
    }

    fn tick(&mut self, counters: &KernelCounters) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(Self::failed(e));
        }
        self.writer
            .write_counters(&Counters::snapshot(crate::clock::boot_now_ns(), counters))
            .and_then(|()| self.writer.flush())
            .map_err(Self::failed)
    }
}

/// This host, for the capture's header: name, kernel, clocks, and the
/// facts the explanations use (so `thptrace explain --capture` and a report
/// on another machine judge the calls by the kernel they ran on).
pub fn host_info(facts: &HostFacts) -> Result<HostInfo> {
    let mut host = HostInfo::detect();
    host.facts = serde_json::to_value(facts)
        .context("serializing this host's facts for the capture header")?;
    Ok(host)
}

/// Records; returns the process exit status (the traced command's).
pub async fn run(args: RecordArgs) -> Result<i32> {
    let filters = args.filter.filters();
    let header_filters = serde_json::to_value(RecordedFilters {
        filters: filters.clone(),
        command: args.run.command.clone(),
    })
    .context("serializing the filters for the capture header")?;
    let target = format!(" to {}", args.output.display());
    // The facts go into the header; the annotator gives the end-of-run
    // summary its cause column (the capture itself stores no explanation:
    // `report` explains each call against the recorded facts).
    let facts = HostFacts::read(Path::new("/"));
    let annotator = Some(Annotator::new(facts.clone()));
    let done = trace::run_loop(&args.run, &filters, "recording", &target, annotator, || {
        let writer =
            CaptureWriter::create(writer_options(&args), host_info(&facts)?, header_filters)
                .with_context(|| {
                    format!(
                        "cannot record to {}: give -o a path in a directory that exists and is \
                     writable",
                        args.output.display()
                    )
                })?;
        Ok(Recorder {
            writer,
            error: None,
        })
    })
    .await?;

    let mut rec = done.sink;
    if let Some(e) = rec.error.take() {
        return Err(Recorder::failed(e));
    }
    // The last snapshot is the authority on what was lost.
    rec.writer
        .write_counters(&Counters::snapshot(
            crate::clock::boot_now_ns(),
            &done.counters,
        ))
        .map_err(Recorder::failed)?;
    let last_file = rec.writer.current_path().to_path_buf();
    let stats = rec.writer.finish().map_err(Recorder::failed)?;

    if !args.no_summary {
        eprint!(
            "{}",
            trace::render_summary(&done.summary, &done.counters, &args.run, &filters)
        );
    }
    let files = if stats.files_created > 1 {
        format!(
            "{} files, {} deleted by rotation, the newest {}",
            stats.files_created,
            stats.files_deleted,
            last_file.display()
        )
    } else {
        "1 file".to_string()
    };
    eprintln!(
        "thptrace: recorded {} events to {} ({} bytes, {files}); read it with `thptrace report {}`",
        stats.events,
        args.output.display(),
        stats.bytes,
        args.output.display()
    );
    Ok(done.stop.status())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<RecordArgs, String> {
        let mut v = vec!["thptrace", "record"];
        v.extend_from_slice(args);
        match Cli::try_parse_from(v).map_err(|e| e.to_string())?.command {
            Some(Command::Record(a)) => Ok(a),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn options_and_filters() {
        let a = parse(&[
            "-o",
            "cap.thp",
            "--max-size",
            "64M",
            "--max-files",
            "3",
            "--advice",
            "nohugepage",
            "--",
            "criu",
            "restore",
        ])
        .unwrap();
        let o = writer_options(&a);
        assert_eq!(o.path, PathBuf::from("cap.thp"));
        assert_eq!((o.max_size, o.max_files), (Some(64 << 20), Some(3)));
        assert_eq!(a.filter.filters().advice, vec![15]);
        assert_eq!(a.run.command, ["criu", "restore"]);

        let a = parse(&["-o", "f", "--flight-recorder", "256M"]).unwrap();
        let o = writer_options(&a);
        assert_eq!(o.max_size, Some(32 << 20));
        assert_eq!(o.max_files, Some(8));
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(parse(&[]).unwrap_err().contains("--output"));
        assert!(
            parse(&["-o", "f", "--max-files", "3"])
                .unwrap_err()
                .contains("--max-size")
        );
        assert!(
            parse(&["-o", "f", "--flight-recorder", "1M", "--max-size", "1M"])
                .unwrap_err()
                .contains("cannot be used with")
        );
        assert!(
            parse(&["-o", "f", "--max-size", "1.5M"])
                .unwrap_err()
                .contains("1.5M")
        );
        assert!(
            parse(&["-o", "f", "--max-size", "0"])
                .unwrap_err()
                .contains("more than zero")
        );
    }

    #[test]
    fn header_filters_round_trip_and_describe_themselves() {
        let r = RecordedFilters {
            filters: Filters {
                pids: vec![1],
                ..Default::default()
            },
            command: vec!["criu".into(), "restore".into()],
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["pids"], serde_json::json!([1]));
        assert_eq!(serde_json::from_value::<RecordedFilters>(v).unwrap(), r);
        assert_eq!(
            r.describe(),
            "command `criu restore` and its children, pid 1"
        );
        // The plain Filters in a header read as well.
        let plain = serde_json::to_value(Filters::default()).unwrap();
        let back: RecordedFilters = serde_json::from_value(plain).unwrap();
        assert_eq!(back.describe(), "none");
    }
}
