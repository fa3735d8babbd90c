//! `cargo xtask bench`: what thptrace adds to each madvise call, measured in
//! one run next to no tracer and next to bpftrace counting failures, as
//! medians over rounds. The machines are noisy: the tracers take turns within
//! each round so drift hits them alike, and only ratios are compared.
//!
//! Each round and tracer runs `madvise-scenarios loop-ok N loop-fail N`: N
//! succeeding calls (MADV_NORMAL on a mapped page) then N back-to-back failing
//! ones (advice 9999, EINVAL). thptrace traces the whole host and writes its
//! lines to a file; afterwards the file must hold exactly N lines from the
//! loop's process, and the kernel must report no lost event.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::{self, cmd, output, step, workspace_root};

const BPFTRACE_PROGRAM: &str =
    "tracepoint:syscalls:sys_exit_madvise /args->ret < 0/ { @[comm, args->ret] = count(); }";
/// A program on the same tracepoint whose filter is never true (system calls
/// return -4095 at worst): what any tracer of `sys_exit_madvise` pays before
/// its program does anything, the floor for the succeeding path.
const FLOOR_PROGRAM: &str =
    "tracepoint:syscalls:sys_exit_madvise /args->ret < -4096/ { @ = count(); }";

#[derive(clap::Args)]
pub struct Args {
    /// Rounds; the report gives medians over them.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Calls per loop.
    #[arg(long, default_value_t = 1_000_000)]
    calls: u64,
    /// Where to write the markdown report.
    #[arg(long, default_value = "target/bench/madvise.md")]
    report: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tracer {
    None,
    Thptrace,
    /// `thptrace --no-durations`: no program at system call entry.
    ThptraceUntimed,
    Bpftrace,
    Floor,
}

impl Tracer {
    fn name(self) -> &'static str {
        match self {
            Tracer::None => "none (the call itself)",
            Tracer::Thptrace => "thptrace (full event per failure, to a file)",
            Tracer::ThptraceUntimed => "thptrace --no-durations (the same, calls not timed)",
            Tracer::Bpftrace => "bpftrace (failures counted by comm and errno)",
            Tracer::Floor => "floor: a program on sys_exit_madvise that does nothing",
        }
    }
}

#[derive(Default)]
struct Samples {
    ok_ns: Vec<f64>,
    fail_ns: Vec<f64>,
    /// Another system call (getppid): what the tracer costs the rest of the
    /// host.
    other_ns: Vec<f64>,
}

/// What one thptrace round saw.
struct ThptraceRound {
    tracer: Tracer,
    events: u64,
    lost: u64,
    max_rss_kib: u64,
    cpu_s: f64,
}

/// A tracer running in the background, with its output drained by threads so
/// it can never block on a full pipe.
pub(crate) struct Running {
    pub(crate) child: Child,
    stderr: mpsc::Receiver<String>,
    stdout: mpsc::Receiver<String>,
}

fn drain(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Running {
    pub(crate) fn start(mut c: Command) -> Result<Running> {
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {:?}", c.get_program()))?;
        let stdout = drain(child.stdout.take().unwrap());
        let stderr = drain(child.stderr.take().unwrap());
        Ok(Running {
            child,
            stderr,
            stdout,
        })
    }

    /// Waits for a line containing `marker` on either stream.
    pub(crate) fn wait_for(&mut self, marker: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            for rx in [&self.stdout, &self.stderr] {
                while let Ok(line) = rx.try_recv() {
                    if line.contains(marker) {
                        return Ok(());
                    }
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the tracer exited before it was ready ({status})");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("the tracer did not say `{marker}` within 60 s")
    }

    /// Stops with SIGINT and returns everything it wrote to standard error.
    pub(crate) fn stop(mut self) -> Result<String> {
        // SAFETY: kill(2) on our own child.
        unsafe { libc_kill(self.child.id() as i32, 2) };
        self.child.wait()?;
        std::thread::sleep(Duration::from_millis(50));
        Ok(self.stderr.try_iter().collect::<Vec<_>>().join("\n"))
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

pub(crate) fn proc_field(pid: u32, file: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// User plus system CPU seconds of a running process.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised comm; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks as f64 / 100.0
}

pub(crate) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs the three loops; returns (pid, ok, fail, other ns/call).
fn run_loops(scenarios: &Path, calls: u64) -> Result<(u32, f64, f64, f64)> {
    let out = output(
        Command::new(scenarios)
            .arg("loop-ok")
            .arg(calls.to_string())
            .arg("loop-fail")
            .arg(calls.to_string())
            .arg("loop-other")
            .arg(calls.to_string()),
    )?;
    let mut pid = 0;
    let (mut ok, mut fail, mut other) = (f64::NAN, f64::NAN, f64::NAN);
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if let Some(p) = v["pid"].as_u64() {
            pid = p as u32;
        }
        match v["loop"].as_str() {
            Some("ok") => ok = v["ns_per_call"].as_f64().unwrap_or(f64::NAN),
            Some("fail") => fail = v["ns_per_call"].as_f64().unwrap_or(f64::NAN),
            Some("other") => other = v["ns_per_call"].as_f64().unwrap_or(f64::NAN),
            _ => {}
        }
    }
    Ok((pid, ok, fail, other))
}

fn ensure_bpftrace() -> Result<()> {
    if output(Command::new("bpftrace").arg("--version")).is_ok() {
        return Ok(());
    }
    step("installing bpftrace from apt");
    util::run(cmd("apt-get").arg("update").arg("-q"))?;
    util::run(
        cmd("apt-get")
            .args(["install", "-y", "-q", "bpftrace"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

pub fn run(args: &Args) -> Result<()> {
    let root = workspace_root();
    let (thptrace, scenarios) = util::build_release_bins()?;
    ensure_bpftrace()?;
    let bench_dir = root.join("target/bench");
    std::fs::create_dir_all(&bench_dir)?;
    let trace_file = bench_dir.join("thptrace-output.txt");

    let tracers = [
        Tracer::None,
        Tracer::Thptrace,
        Tracer::Bpftrace,
        Tracer::Floor,
        Tracer::ThptraceUntimed,
    ];
    let mut samples: Vec<Samples> = tracers.iter().map(|_| Samples::default()).collect();
    let mut rounds: Vec<ThptraceRound> = Vec::new();

    for round in 0..args.rounds {
        step(&format!("round {} of {}", round + 1, args.rounds));
        // Rotate the order so no tracer always runs first or last.
        for k in 0..tracers.len() {
            let i = (k + round) % tracers.len();
            let tracer = tracers[i];
            let running = match tracer {
                Tracer::None => None,
                Tracer::Thptrace | Tracer::ThptraceUntimed => {
                    let mut c = Command::new(&thptrace);
                    c.args(["-v", "-o"]).arg(&trace_file);
                    if tracer == Tracer::ThptraceUntimed {
                        c.arg("--no-durations");
                    }
                    let mut r = Running::start(c)?;
                    r.wait_for("tracing failing madvise calls")?;
                    Some(r)
                }
                Tracer::Bpftrace | Tracer::Floor => {
                    let program = if tracer == Tracer::Floor {
                        FLOOR_PROGRAM
                    } else {
                        BPFTRACE_PROGRAM
                    };
                    let mut c = Command::new("bpftrace");
                    c.args(["-e", program]);
                    let mut r = Running::start(c)?;
                    r.wait_for("Attaching")?;
                    // bpftrace prints before its probes are live.
                    std::thread::sleep(Duration::from_millis(500));
                    Some(r)
                }
            };
            let tracer_pid = running.as_ref().map(|r| r.child.id());
            let (pid, ok, fail, other) = run_loops(&scenarios, args.calls)?;
            samples[i].ok_ns.push(ok);
            samples[i].fail_ns.push(fail);
            samples[i].other_ns.push(other);
            let (rss, cpu) = tracer_pid
                .map(|p| {
                    (
                        proc_field(p, "status", "VmHWM:").unwrap_or(0),
                        cpu_seconds(p),
                    )
                })
                .unwrap_or((0, 0.0));
            if let Some(r) = running {
                let stderr = r.stop()?;
                if matches!(tracer, Tracer::Thptrace | Tracer::ThptraceUntimed) {
                    let text = std::fs::read_to_string(&trace_file)?;
                    let marker = format!("[{pid}/");
                    let events = text.lines().filter(|l| l.contains(&marker)).count() as u64;
                    let lost = stderr
                        .lines()
                        .find_map(|l| {
                            let (_, rest) = l.split_once("events sent, ")?;
                            rest.split_whitespace().next()?.parse().ok()
                        })
                        .with_context(|| {
                            format!("no kernel counters in thptrace's summary:\n{stderr}")
                        })?;
                    eprintln!(
                        "thptrace: {events} events from the loop, {lost} lost, max RSS {rss} KiB, {cpu:.2} s CPU"
                    );
                    rounds.push(ThptraceRound {
                        tracer,
                        events,
                        lost,
                        max_rss_kib: rss,
                        cpu_s: cpu,
                    });
                }
            }
            eprintln!(
                "{:<48} ok {ok:8.1}   fail {fail:8.1}   other {other:8.1} ns/call",
                tracer.name()
            );
        }
    }

    let report = render(args, &tracers, &samples, &rounds);
    if let Some(dir) = args.report.parent() {
        std::fs::create_dir_all(root.join(dir))?;
    }
    std::fs::write(root.join(&args.report), &report)?;
    println!("\n{report}");
    eprintln!("report written to {}", args.report.display());
    let all_events = rounds.iter().all(|r| r.events == args.calls && r.lost == 0);
    if !all_events {
        bail!("thptrace lost events in at least one round: see the table");
    }
    Ok(())
}

fn render(
    args: &Args,
    tracers: &[Tracer],
    samples: &[Samples],
    rounds: &[ThptraceRound],
) -> String {
    use std::fmt::Write;
    let base_ok = median(&samples[0].ok_ns);
    let base_fail = median(&samples[0].fail_ns);
    let base_other = median(&samples[0].other_ns);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Cost added to one madvise call: median of {} rounds of {} calls each (`cargo xtask bench --rounds {} --calls {}`).\n",
        args.rounds, args.calls, args.rounds, args.calls
    );
    let _ = writeln!(
        s,
        "| tracer | succeeding madvise | added | failing madvise | added | other syscall (getppid) | added |\n|---|---|---|---|---|---|---|"
    );
    let mut added = Vec::new();
    for (t, smp) in tracers.iter().zip(samples) {
        let ok = median(&smp.ok_ns);
        let fail = median(&smp.fail_ns);
        let other = median(&smp.other_ns);
        added.push((ok - base_ok, fail - base_fail));
        let plus = |v: f64| {
            if *t == Tracer::None {
                "".to_string()
            } else {
                format!("{v:+.0} ns")
            }
        };
        let _ = writeln!(
            s,
            "| {} | {ok:.0} ns | {} | {fail:.0} ns | {} | {other:.0} ns | {} |",
            t.name(),
            plus(ok - base_ok),
            plus(fail - base_fail),
            plus(other - base_other)
        );
    }
    let (th, bt, floor, untimed) = (added[1], added[2], added[3], added[4]);
    let _ = writeln!(
        s,
        "\nthptrace adds {:.2}x what bpftrace adds to a succeeding call and {:.2}x to a failing one (below 1 is cheaper).",
        th.0 / bt.0,
        th.1 / bt.1
    );
    let _ = writeln!(
        s,
        "thptrace --no-durations adds {:.2}x and {:.2}x.",
        untimed.0 / bt.0,
        untimed.1 / bt.1
    );
    let _ = writeln!(
        s,
        "\nAbove the floor (what any program on sys_exit_madvise costs): bpftrace {:+.0} ns on a succeeding call and {:+.0} ns on a failing one; thptrace {:+.0} ns and {:+.0} ns; thptrace --no-durations {:+.0} ns and {:+.0} ns.",
        bt.0 - floor.0,
        bt.1 - floor.1,
        th.0 - floor.0,
        th.1 - floor.1,
        untimed.0 - floor.0,
        untimed.1 - floor.1
    );
    // bpftrace's cost moves between rounds more than the others': show the
    // spread so one median is not over-read.
    for (t, smp) in tracers.iter().zip(samples).skip(1) {
        let (ok_lo, ok_hi) = spread(&smp.ok_ns);
        let (fail_lo, fail_hi) = spread(&smp.fail_ns);
        let _ = writeln!(
            s,
            "- {}: succeeding {ok_lo:.0}..{ok_hi:.0} ns, failing {fail_lo:.0}..{fail_hi:.0} ns over the rounds",
            t.name()
        );
    }
    let rounds: Vec<&ThptraceRound> = rounds
        .iter()
        .filter(|r| r.tracer == Tracer::Thptrace)
        .collect();
    if !rounds.is_empty() {
        let min_events = rounds.iter().map(|r| r.events).min().unwrap_or(0);
        let lost: u64 = rounds.iter().map(|r| r.lost).sum();
        let rss = median(
            &rounds
                .iter()
                .map(|r| r.max_rss_kib as f64)
                .collect::<Vec<_>>(),
        );
        let cpu = median(&rounds.iter().map(|r| r.cpu_s).collect::<Vec<_>>());
        let _ = writeln!(
            s,
            "\nthptrace with default settings: fewest events from one loop of {} failing calls: {min_events}; lost in all rounds: {lost}; median peak RSS {:.1} MiB; median CPU time of thptrace per round {cpu:.2} s.",
            args.calls,
            rss / 1024.0
        );
    }
    s
}

/// The lowest and highest sample.
fn spread(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}
