//! `cargo xtask bench-capture`: what recording costs and how fast a capture
//! reads back.
//!
//! - Recording: `thptrace record` runs host-wide in the background (an
//!   always-on recorder, keeping only `madvise-scenari`'s calls) while
//!   `madvise-scenarios loop-fail N` makes N back-to-back failing calls.
//!   The capture must then hold exactly N events from the loop's process and
//!   its stored kernel counters must show nothing lost. Reported: the rate
//!   the loop offered (which the recorder kept up with), the recorder's CPU
//!   time per event (its capacity), and bytes per event on disk.
//! - Reading: `thptrace report --summary` over that capture, warm (one run
//!   to warm the page cache, then the median of the rest), in events/s.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bench::{Running, cpu_seconds, median, proc_field};
use crate::util::{self, output, step, target_dir};

#[derive(clap::Args)]
pub struct Args {
    /// Back-to-back failing calls to record.
    #[arg(long, default_value_t = 1_000_000)]
    calls: u64,
    /// Timed runs of `report --summary` (after one warm-up run).
    #[arg(long, default_value_t = 5)]
    reads: usize,
    /// Where to write the markdown report (default: bench/capture.md in
    /// cargo's target directory).
    #[arg(long)]
    report: Option<PathBuf>,
}

/// Parses `madvise-scenarios`' output: (pid, ns per call of the loop).
fn loop_result(out: &str) -> Result<(u64, f64)> {
    let mut pid = 0;
    let mut ns = f64::NAN;
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if let Some(p) = v["pid"].as_u64() {
            pid = p;
        }
        if let Some(n) = v["ns_per_call"].as_f64() {
            ns = n;
        }
    }
    if pid == 0 || ns.is_nan() {
        bail!("madvise-scenarios did not report its pid and loop: {out}");
    }
    Ok((pid, ns))
}

/// The number just before `key` in `text`: `number_before("6 lost", " lost")`
/// is 6.
fn number_before(text: &str, key: &str) -> Option<u64> {
    let (before, _) = text.split_once(key)?;
    before.split_whitespace().last()?.parse().ok()
}

pub fn run(args: &Args) -> Result<()> {
    let (thptrace, scenarios) = util::build_release_bins()?;
    let bench_dir = target_dir().join("bench");
    std::fs::create_dir_all(&bench_dir)?;
    let cap = bench_dir.join("capture.thp");

    step(&format!(
        "recording {} back-to-back failing calls (thptrace record, host-wide, in the background)",
        args.calls
    ));
    let mut c = Command::new(&thptrace);
    c.args(["record", "-v", "--comm", "madvise-scenari", "-o"])
        .arg(&cap);
    let mut recorder = Running::start(c)?;
    recorder.wait_for("recording failing madvise calls")?;
    let recorder_pid = recorder.child.id();
    let cpu_before = cpu_seconds(recorder_pid);
    let loop_out = output(
        Command::new(&scenarios)
            .arg("loop-fail")
            .arg(args.calls.to_string()),
    )?;
    let (pid, ns_per_call) = loop_result(&loop_out)?;
    // Let the recorder catch up with what the ring buffer holds, so its CPU
    // time covers every event.
    let mut cpu = cpu_seconds(recorder_pid);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = cpu_seconds(recorder_pid);
        if now - cpu < 0.02 {
            break;
        }
        cpu = now;
    }
    let cpu = cpu - cpu_before;
    let rss_kib = proc_field(recorder_pid, "status", "VmHWM:").unwrap_or(0);
    let stderr = recorder.stop()?;
    eprintln!("{}", stderr.lines().last().unwrap_or(""));

    let file_bytes = std::fs::metadata(&cap)
        .with_context(|| format!("{}: the recorder wrote no capture", cap.display()))?
        .len();
    let summary = output(
        Command::new(&thptrace)
            .args(["report", "--summary", "--pid", &pid.to_string()])
            .arg(&cap),
    )?;
    let events = number_before(&summary, "calls shown").unwrap_or(0);
    let lost = number_before(&summary, " lost").context("no kernel counters in the report")?;
    let sent = number_before(&summary, "events sent").unwrap_or(0);
    eprintln!(
        "loop {pid}: {ns_per_call:.1} ns per call; capture: {events} events from the loop, {sent} sent, {lost} lost, {file_bytes} bytes; recorder {cpu:.2} s CPU"
    );

    step(&format!(
        "reading it back: thptrace report --summary, 1 warm-up + {} runs",
        args.reads
    ));
    let all_summary = output(
        Command::new(&thptrace)
            .args(["report", "--summary"])
            .arg(&cap),
    )?;
    let all_events = number_before(&all_summary, "calls shown").unwrap_or(0);
    let mut secs = Vec::new();
    for _ in 0..args.reads {
        let t = Instant::now();
        output(
            Command::new(&thptrace)
                .args(["report", "--summary"])
                .arg(&cap),
        )?;
        secs.push(t.elapsed().as_secs_f64());
    }
    let read_s = median(&secs);
    let best_s = secs.iter().cloned().fold(f64::INFINITY, f64::min);

    let offered = 1e9 / ns_per_call;
    let report = format!(
        "Capture benchmark (`cargo xtask bench-capture --calls {calls} --reads {reads}`).\n\n\
         | measure | value |\n|---|---|\n\
         | failing calls recorded (loop-fail, back to back) | {calls} |\n\
         | events from the loop in the capture | {events} |\n\
         | events lost (stored kernel counters) | {lost} |\n\
         | rate the loop offered, kept up with without loss | {offered:.0} events/s ({ns_per_call:.1} ns per call) |\n\
         | recorder CPU time for them | {cpu:.2} s ({cpu_ns:.0} ns per event, {capacity:.0} events per CPU-second) |\n\
         | recorder peak RSS | {rss:.1} MiB |\n\
         | capture size | {file_bytes} bytes, {bpe:.1} bytes per event (156 per event frame in format 1.1; the rest is the header and one counters record a second) |\n\
         | `report --summary` over {all_events} events, warm | median {read_s:.3} s = {read_rate:.0} events/s (best {best_s:.3} s = {best_rate:.0} events/s) |\n",
        calls = args.calls,
        reads = args.reads,
        cpu_ns = cpu * 1e9 / events.max(1) as f64,
        capacity = events as f64 / cpu.max(1e-9),
        rss = rss_kib as f64 / 1024.0,
        bpe = file_bytes as f64 / all_events.max(1) as f64,
        read_rate = all_events as f64 / read_s,
        best_rate = all_events as f64 / best_s,
    );
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| bench_dir.join("capture.md"));
    write_report(&report_path, &report)?;
    println!("\n{report}");
    if events != args.calls || lost != 0 {
        bail!(
            "the recorder lost events: {events} of {} calls in the capture, {lost} lost",
            args.calls
        );
    }
    if all_events as f64 / read_s < 2_000_000.0 {
        bail!("report --summary read fewer than 2,000,000 events/s");
    }
    Ok(())
}

fn write_report(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)?;
    eprintln!("report written to {}", path.display());
    Ok(())
}
