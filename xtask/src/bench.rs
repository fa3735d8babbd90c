//! `cargo xtask bench`: what thptrace adds to each madvise call, measured in
//! one run next to no tracer and next to bpftrace counting failures, as
//! medians over rounds. The machines are noisy: the tracers take turns within
//! each round so drift hits them alike, and only ratios are compared.
//!
//! Each round and tracer runs `madvise-scenarios cpu C loop-ok N loop-fail N
//! loop-other N` once pinned to the first CPU and once to the last: N
//! succeeding calls (MADV_NORMAL on a mapped page), N back-to-back failing
//! ones (advice 9999, EINVAL), N getppid calls. Pinning matters: bpftrace
//! costs far more on CPU 0, where its perf event lives, than elsewhere.
//! thptrace traces the whole host and writes its lines to a file; afterwards
//! the file must hold exactly N lines from each loop's process, and the
//! kernel must report no lost event.
//!
//! Tracers: none, thptrace, thptrace --no-durations, bpftrace counting
//! failures, and the floor (bpftrace with a filter that is never true: what
//! any program on sys_exit_madvise costs).

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

/// Runs the three loops on one CPU; returns (pid, ok, fail, other ns/call).
fn run_loops(scenarios: &Path, calls: u64, cpu: usize) -> Result<(u32, f64, f64, f64)> {
    let out = output(
        Command::new(scenarios)
            .arg("cpu")
            .arg(cpu.to_string())
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
    // The loops run pinned, on the first and on the last CPU: a tracer's
    // cost can depend on the CPU (bpftrace's does: see docs/benchmarks.md).
    let nr_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpus: Vec<usize> = if nr_cpus > 1 {
        vec![0, nr_cpus - 1]
    } else {
        vec![0]
    };
    let mut samples: Vec<Vec<Samples>> = tracers
        .iter()
        .map(|_| cpus.iter().map(|_| Samples::default()).collect())
        .collect();
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
            let mut pids = Vec::new();
            for (c, &cpu) in cpus.iter().enumerate() {
                let (pid, ok, fail, other) = run_loops(&scenarios, args.calls, cpu)?;
                pids.push(pid);
                let smp = &mut samples[i][c];
                smp.ok_ns.push(ok);
                smp.fail_ns.push(fail);
                smp.other_ns.push(other);
                eprintln!(
                    "{:<56} CPU {cpu}: ok {ok:8.1}   fail {fail:8.1}   other {other:8.1} ns/call",
                    tracer.name()
                );
            }
            let (rss, cpu_s) = tracer_pid
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
                    // Every loop's failures, each loop its own process.
                    let events = pids
                        .iter()
                        .map(|pid| {
                            let marker = format!("[{pid}/");
                            text.lines().filter(|l| l.contains(&marker)).count() as u64
                        })
                        .min()
                        .unwrap_or(0);
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
                        "thptrace: at least {events} events from each loop, {lost} lost, max RSS {rss} KiB, {cpu_s:.2} s CPU"
                    );
                    rounds.push(ThptraceRound {
                        tracer,
                        events,
                        lost,
                        max_rss_kib: rss,
                        cpu_s,
                    });
                }
            }
        }
    }

    let report = render(args, &tracers, &cpus, &samples, &rounds);
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

/// Added cost (succeeding, failing, other) of one tracer on one CPU, from the
/// medians, against no tracer on the same CPU.
#[derive(Clone, Copy)]
struct Added {
    ok: f64,
    fail: f64,
    other: f64,
}

fn added(samples: &[Vec<Samples>], tracer: usize, cpu: usize) -> Added {
    let (t, base) = (&samples[tracer][cpu], &samples[0][cpu]);
    Added {
        ok: median(&t.ok_ns) - median(&base.ok_ns),
        fail: median(&t.fail_ns) - median(&base.fail_ns),
        other: median(&t.other_ns) - median(&base.other_ns),
    }
}

fn render(
    args: &Args,
    tracers: &[Tracer],
    cpus: &[usize],
    samples: &[Vec<Samples>],
    rounds: &[ThptraceRound],
) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Cost added to one madvise call: median of {} rounds of {} calls each, the loops pinned to each CPU listed (`cargo xtask bench --rounds {} --calls {}`).\n",
        args.rounds, args.calls, args.rounds, args.calls
    );
    let _ = writeln!(
        s,
        "| tracer | CPU | succeeding madvise | added | failing madvise | added | other syscall (getppid) | added |\n|---|---|---|---|---|---|---|---|"
    );
    for (t, tracer) in tracers.iter().enumerate() {
        for (c, cpu) in cpus.iter().enumerate() {
            let smp = &samples[t][c];
            let (ok, fail, other) = (
                median(&smp.ok_ns),
                median(&smp.fail_ns),
                median(&smp.other_ns),
            );
            let a = added(samples, t, c);
            let plus = |v: f64| {
                if *tracer == Tracer::None {
                    String::new()
                } else {
                    format!("{v:+.0} ns")
                }
            };
            let _ = writeln!(
                s,
                "| {} | {cpu} | {ok:.0} ns | {} | {fail:.0} ns | {} | {other:.0} ns | {} |",
                tracer.name(),
                plus(a.ok),
                plus(a.fail),
                plus(a.other)
            );
        }
    }
    let index = |t: Tracer| tracers.iter().position(|&x| x == t).unwrap_or(0);
    let (th, untimed, bt, floor) = (
        index(Tracer::Thptrace),
        index(Tracer::ThptraceUntimed),
        index(Tracer::Bpftrace),
        index(Tracer::Floor),
    );
    let _ = writeln!(
        s,
        "\nWhat thptrace adds, as a multiple of what bpftrace adds (below 1 is cheaper):\n"
    );
    for (c, cpu) in cpus.iter().enumerate() {
        let b = added(samples, bt, c);
        let (t, u) = (added(samples, th, c), added(samples, untimed, c));
        let _ = writeln!(
            s,
            "- CPU {cpu}: thptrace {:.2}x on a succeeding call and {:.2}x on a failing one; thptrace --no-durations {:.2}x and {:.2}x.",
            t.ok / b.ok,
            t.fail / b.fail,
            u.ok / b.ok,
            u.fail / b.fail
        );
    }
    let _ = writeln!(
        s,
        "\nAbove the floor (a program on sys_exit_madvise whose filter is never true):\n"
    );
    for (c, cpu) in cpus.iter().enumerate() {
        let f = added(samples, floor, c);
        let above = |t: usize| {
            let a = added(samples, t, c);
            format!("{:+.0} / {:+.0} ns", a.ok - f.ok, a.fail - f.fail)
        };
        let _ = writeln!(
            s,
            "- CPU {cpu} (floor {:+.0} / {:+.0} ns, succeeding / failing): bpftrace {}, thptrace {}, thptrace --no-durations {}.",
            f.ok,
            f.fail,
            above(bt),
            above(th),
            above(untimed)
        );
    }
    // bpftrace's cost moves between rounds more than the others': show the
    // spread so one median is not over-read.
    let _ = writeln!(s, "\nSpread over the rounds (succeeding, failing):\n");
    for (t, tracer) in tracers.iter().enumerate().skip(1) {
        for (c, cpu) in cpus.iter().enumerate() {
            let (ok_lo, ok_hi) = spread(&samples[t][c].ok_ns);
            let (fail_lo, fail_hi) = spread(&samples[t][c].fail_ns);
            let _ = writeln!(
                s,
                "- {}, CPU {cpu}: {ok_lo:.0}..{ok_hi:.0} ns, {fail_lo:.0}..{fail_hi:.0} ns",
                tracer.name()
            );
        }
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
