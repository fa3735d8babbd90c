//! The command line: what each subcommand and option means. Values are read
//! and checked here, so the rest of the program gets typed, valid options.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::filter::{self, Filters};
use crate::format::Format;

#[derive(Parser, Debug)]
#[command(
    name = "thptrace",
    version = crate::version::SHORT,
    long_version = crate::version::LONG,
    about = "Trace failing madvise() and process_madvise() calls with eBPF, and say why they failed",
    long_about = None,
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  thptrace                          every failing madvise on the host\n  thptrace -- criu restore -D dir   run a command, trace it and all it forks\n  thptrace -p 4242 --advice NOHUGEPAGE,HUGEPAGE\n  thptrace --format json -o failures.jsonl\n  thptrace check                    can this host trace? (run it first)\n  thptrace explain 15 EINVAL        why a logged call failed"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub trace: TraceArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Trace live and print each failing call (the default).
    Trace(TraceArgs),
    /// Check that this host can trace: privileges, BPF, tracepoints, BTF,
    /// the kernel facts that change what madvise accepts, and a live self-test.
    #[command(
        after_help = "Exit status: 0 when the self-test passed (tracing works on this host), 1 otherwise."
    )]
    Check(CheckArgs),
    /// Decode and explain one failing call, as CRIU, strace, perf trace or
    /// a person wrote it, against this host's facts.
    #[command(after_help = EXPLAIN_HELP)]
    Explain(ExplainArgs),
    /// Record failing calls to a capture file (rotated, bounded, crash-safe)
    /// for `thptrace report`, on this machine or another.
    #[command(after_help = crate::record::RECORD_HELP)]
    Record(crate::record::RecordArgs),
    /// Read capture files: the same lines as live tracing, JSON, or a
    /// summary with the kernel counters; several hosts merge in time order.
    #[command(after_help = crate::report::REPORT_HELP)]
    Report(crate::report::ReportArgs),
}

const EXPLAIN_HELP: &str = "Examples:
  thptrace explain 'madvise(0x7f06e7f30000, 4096, 15) failed with -22'
  thptrace explain 'madvise(0x7f06e7f30000, 4096, MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument)'
  thptrace explain 'madvise(start: 0x7f06e7f30000, len_in: 4096, behavior: MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument)'
  thptrace explain 15 EINVAL

Exit status: 0 when the call was read and explained, 2 when the text is not a call thptrace can read.";

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,

    /// Say more: -v shows set-up steps.
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Args, Debug, Clone)]
pub struct ExplainArgs {
    /// The call: one quoted argument, or several words joined with spaces.
    #[arg(required = true, num_args = 1.., value_name = "TEXT", allow_negative_numbers = true)]
    pub text: Vec<String>,

    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,

    /// Explain against the host facts recorded in this capture file (the
    /// kernel the calls ran on) instead of this host's.
    #[arg(long, value_name = "FILE")]
    pub capture: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct TraceArgs {
    #[command(flatten)]
    pub filter: FilterArgs,

    /// Write the calls to FILE instead of standard output (the summary still goes to standard error).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Output format.
    #[arg(short = 'f', long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// One line per call, like strace: no memory-area or cause lines (JSON
    /// keeps them, as fields).
    #[arg(long)]
    pub brief: bool,

    /// Do not print the summary at the end.
    #[arg(long)]
    pub no_summary: bool,

    #[command(flatten)]
    pub run: RunArgs,
}

impl TraceArgs {
    pub fn filters(&self) -> Filters {
        self.filter.filters()
    }
}

/// Which calls to show: the filters `trace`, `record` and `report` share.
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Trace only these processes (thread-group ids, comma-separated), with all their threads.
    #[arg(short = 'p', long = "pid", value_name = "PID[,PID...]", value_delimiter = ',', value_parser = pid)]
    pub pids: Option<Vec<u32>>,

    /// Trace only these threads (thread ids, comma-separated).
    #[arg(short = 't', long = "tid", value_name = "TID[,TID...]", value_delimiter = ',', value_parser = tid)]
    pub tids: Option<Vec<u32>>,

    /// Show only calls from processes with this name (comm, comma-separated).
    #[arg(long, value_name = "NAME[,NAME...]", value_delimiter = ',', value_parser = comm)]
    pub comm: Option<Vec<String>>,

    /// Show only calls with this advice: names (MADV_NOHUGEPAGE, nohugepage) or numbers, comma-separated.
    #[arg(long, value_name = "ADVICE[,ADVICE...]", value_delimiter = ',', value_parser = advice)]
    pub advice: Option<Vec<i32>>,

    /// Show only failures with this errno: names (EINVAL) or numbers, comma-separated.
    #[arg(long, value_name = "ERRNO[,ERRNO...]", value_delimiter = ',', value_parser = errno, conflicts_with = "all")]
    pub errno: Option<Vec<i32>>,

    /// Show calls that succeed too.
    #[arg(short = 'a', long)]
    pub all: bool,
}

impl FilterArgs {
    pub fn filters(&self) -> Filters {
        Filters {
            pids: self.pids.clone().unwrap_or_default(),
            tids: self.tids.clone().unwrap_or_default(),
            comms: self.comm.clone().unwrap_or_default(),
            advice: self.advice.clone().unwrap_or_default(),
            errnos: self.errno.clone().unwrap_or_default(),
            all: self.all,
        }
    }
}

/// How a run with the kernel programs goes: what `trace` and `record` share.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Stop after showing (or recording) this many calls.
    #[arg(short = 'c', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Stop after this long: 30s, 500ms, 5m, 1h (a bare number is seconds).
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = duration)]
    pub duration: Option<Duration>,

    /// Do not time calls: nothing runs at system call entry, so the host's
    /// other system calls cost nothing extra (timing costs each of them
    /// tens of nanoseconds); lines show no <duration>, JSON has null.
    #[arg(long)]
    pub no_durations: bool,

    /// Kernel ring buffer size: a power of two such as 16M, 64M, 256M.
    #[arg(long, value_name = "SIZE", value_parser = buffer_size, default_value = "64M")]
    pub buffer_size: u32,

    /// Say more: -v shows set-up steps and the kernel programs' own diagnostics.
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Run this command and trace it and every process it forks; thptrace
    /// exits with its exit status.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

fn pid(s: &str) -> Result<u32, String> {
    filter::parse_id("--pid", s).map_err(|e| e.to_string())
}

fn tid(s: &str) -> Result<u32, String> {
    filter::parse_id("--tid", s).map_err(|e| e.to_string())
}

fn comm(s: &str) -> Result<String, String> {
    filter::parse_comm(s).map_err(|e| e.to_string())
}

fn advice(s: &str) -> Result<i32, String> {
    filter::parse_advice_item(s).map_err(|e| e.to_string())
}

fn errno(s: &str) -> Result<i32, String> {
    filter::parse_errno_item(s).map_err(|e| e.to_string())
}

/// `30s`, `500ms`, `5m`, `1h`, `2.5s` or a bare number of seconds.
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: write it like 30s, 500ms, 5m or 1h"))?;
    let scale = match unit.trim() {
        "" | "s" | "sec" => 1.0,
        "ms" => 1e-3,
        "us" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "`{other}` is not a unit of time: use ms, s, m or h (e.g. 30s)"
            ));
        }
    };
    let secs = value * scale;
    if !(secs > 0.0 && secs.is_finite() && secs < 1e9) {
        return Err(format!("`{s}`: a duration must be more than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The ring buffer must be a power of two and a multiple of the page size
/// (the kernel refuses anything else).
fn buffer_size(s: &str) -> Result<u32, String> {
    let n = crate::capture::parse_size(s).map_err(|e| e.to_string())?;
    if !n.is_power_of_two() || !(4096..=(1 << 30)).contains(&n) {
        return Err(format!(
            "`{s}`: the ring buffer size must be a power of two from 4k to 1G, e.g. 16M, 64M or 256M"
        ));
    }
    Ok(n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("1.5m"), Ok(Duration::from_secs(90)));
        assert!(duration("0").is_err());
        assert!(duration("5 days").is_err());
        assert!(duration("").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(buffer_size("16M"), Ok(16 << 20));
        assert!(buffer_size("3M").is_err());
        assert!(buffer_size("1k").is_err());
    }

    #[test]
    fn parses_a_traced_command_and_filters() {
        let cli = Cli::try_parse_from([
            "thptrace",
            "-p",
            "1,2",
            "--advice",
            "nohugepage",
            "--errno",
            "EINVAL",
            "-c",
            "3",
            "--",
            "criu",
            "restore",
            "-D",
            "dir",
        ])
        .unwrap();
        assert_eq!(cli.trace.run.command, ["criu", "restore", "-D", "dir"]);
        let f = cli.trace.filters();
        assert_eq!(
            (f.pids, f.advice, f.errnos),
            (vec![1, 2], vec![15], vec![22])
        );
        assert_eq!(cli.trace.run.count, Some(3));
    }

    #[test]
    fn rejects_bad_and_conflicting_options() {
        let err = |args: &[&str]| {
            let mut v = vec!["thptrace"];
            v.extend_from_slice(args);
            Cli::try_parse_from(v).unwrap_err().to_string()
        };
        assert!(err(&["--advice", "nohuge"]).contains("unknown advice `nohuge`"));
        assert!(err(&["--errno", "EFOO"]).contains("unknown errno `EFOO`"));
        assert!(err(&["--all", "--errno", "EINVAL"]).contains("cannot be used with"));
        assert!(err(&["-c", "0"]).contains("0"));
        assert!(err(&["-p", "abc"]).contains("not a process or thread id"));
        assert!(err(&["--buffer-size", "3M"]).contains("power of two"));
    }
}
