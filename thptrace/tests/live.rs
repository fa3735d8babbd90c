//! Live tracing, end to end, as root: these tests load the real kernel
//! programs, run `madvise-scenarios` (which makes calls with known outcomes
//! and reports exactly what it did), and compare thptrace's events with that
//! report field by field. Other processes on the machine call madvise too, so
//! every check is limited to the scenario's own pid.
//!
//! They need root (or CAP_BPF + CAP_PERFMON): without it they fail, they do
//! not skip.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::*;

fn events(path: &Path) -> Vec<Value> {
    json_lines(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

struct Run {
    _dir: tempfile::TempDir,
    out: PathBuf,
    output: Output,
}

impl Run {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    fn scenario(&self) -> Scenario {
        Scenario::parse(&self.output.stdout)
    }
    /// Checks that exactly `calls` were reported from the scenario's process.
    fn assert_reported(&self, scenario: &Scenario, calls: &[&Value]) {
        let events = of_pid(events(&self.out), scenario.pid);
        assert_events_are(&events, calls, scenario.pid);
    }
}

/// `thptrace -f json -o FILE ARGS -- madvise-scenarios SCENARIOS`.
fn trace_command(args: &[&str], scenarios: &[&str]) -> Run {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.jsonl");
    let output = Command::new(THPTRACE)
        .args(["-f", "json", "-o"])
        .arg(&out)
        .args(args)
        .arg("--")
        .arg(SCENARIOS)
        .args(scenarios)
        .output()
        .unwrap();
    let run = Run {
        _dir: dir,
        out,
        output,
    };
    assert!(
        run.output.status.success(),
        "thptrace failed: {}",
        run.stderr()
    );
    run
}

/// Starts `thptrace -v -f json -o FILE ARGS` host-wide and waits until it is
/// attached.
fn trace_background(out: &Path, args: &[&str]) -> Background {
    require_root();
    let mut c = Command::new(THPTRACE);
    c.args(["-v", "-f", "json", "-o"]).arg(out).args(args);
    let mut bg = Background::start(&mut c);
    bg.wait_for("tracing failing madvise calls");
    bg
}

/// Runs madvise-scenarios in `--wait` mode: returns it with its pid, stopped
/// before its calls until `go` is called.
struct Waiting {
    child: Child,
    pid: u64,
    first_line: String,
}

impl Waiting {
    fn start(scenarios: &[&str]) -> Waiting {
        let mut child = Command::new(SCENARIOS)
            .arg("--wait")
            .args(scenarios)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first_line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        let v: Value = serde_json::from_str(&first_line).unwrap();
        Waiting {
            pid: v["pid"].as_u64().unwrap(),
            child,
            first_line,
        }
    }

    fn go(mut self) -> Scenario {
        self.child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let out = self.child.wait_with_output().unwrap();
        assert!(out.status.success());
        Scenario::parse(&(self.first_line + &String::from_utf8_lossy(&out.stdout)))
    }
}

#[test]
fn reports_every_failure_exactly_and_no_success() {
    let run = trace_command(&[], &["failures", "successes", "thread"]);
    let scenario = run.scenario();
    let failures = scenario.failures();
    // invalid advice, misaligned NOHUGEPAGE, unmapped range, REMOVE on
    // private memory, DONTNEED on mlocked memory, process_madvise flags,
    // invalid advice from a second thread.
    assert_eq!(failures.len(), 7, "the scenarios changed: {scenario:#?}");
    assert_eq!(scenario.calls.len(), 10);
    let events = of_pid(events(&run.out), scenario.pid);
    assert_events_are(&events, &failures, scenario.pid);
    // The thread's call carries the thread's own tid.
    assert_ne!(events[6]["tid"], events[6]["pid"]);
    let stderr = run.stderr();
    assert!(
        stderr.contains("events sent, 0 lost"),
        "summary without kernel counters or with loss: {stderr}"
    );
    assert!(
        stderr.contains("thptrace summary: 7 calls shown"),
        "{stderr}"
    );
}

/// The process details (ids, name, uid/gid, cgroup) come straight from the
/// task where the kernel allows it, through helpers where it does not: both
/// give the same events. Also from another user and another cgroup.
#[test]
fn process_details_are_the_same_read_directly_or_through_helpers() {
    require_root();
    // A cgroup of its own when cgroup v2 is mounted: its id is the inode
    // number of its directory.
    let unified = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.subtree_control").exists());
    let cgroup = unified.map(|root| {
        let dir = root.join(format!("thptrace-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    });
    for helpers_only in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("events.jsonl");
        let script = match &cgroup {
            Some(cg) => format!(
                "echo $$ > {}/cgroup.procs && exec setpriv --reuid=65534 --regid=65533 --clear-groups {SCENARIOS} failures",
                cg.display()
            ),
            None => format!(
                "exec setpriv --reuid=65534 --regid=65533 --clear-groups {SCENARIOS} failures"
            ),
        };
        let mut c = Command::new(THPTRACE);
        c.args(["-v", "-f", "json", "-o"])
            .arg(&out)
            .args(["--", "sh", "-c", &script]);
        if helpers_only {
            c.env(thptrace::probe::HELPERS_ONLY_ENV, "1");
        }
        let output = c.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert_eq!(
            stderr.contains("reading process details through helpers"),
            helpers_only,
            "{stderr}"
        );
        let scenario = Scenario::parse(&output.stdout);
        let events = of_pid(events(&out), scenario.pid);
        assert_eq!(events.len(), scenario.failures().len(), "{events:#?}");
        for (e, call) in events.iter().zip(scenario.failures()) {
            assert_eq!(e["tid"], call["tid"], "{e}");
            assert_eq!(e["comm"], "madvise-scenari", "{e}");
            assert_eq!(
                (e["uid"].as_u64(), e["gid"].as_u64()),
                (Some(65534), Some(65533)),
                "{e}"
            );
            if let Some(cg) = &cgroup {
                use std::os::unix::fs::MetadataExt;
                let id = std::fs::metadata(cg).unwrap().ino();
                assert_eq!(e["cgroup_id"], id, "{e}");
            }
        }
    }
    if let Some(cg) = cgroup {
        // Empty once the scenario has exited.
        let _ = std::fs::remove_dir(cg);
    }
}

#[test]
fn all_shows_successes_too() {
    let run = trace_command(&["--all"], &["failures", "successes"]);
    let scenario = run.scenario();
    let calls: Vec<&Value> = scenario.calls.iter().collect();
    let events = of_pid(events(&run.out), scenario.pid);
    assert_events_are(&events, &calls, scenario.pid);
    assert!(
        events.iter().any(|e| e["ret"] == 4096),
        "process_madvise success returns bytes"
    );
}

/// An event of an untimed run: exactly the call, with no duration.
fn assert_untimed_event_is(event: &Value, call: &Value, pid: u64) {
    assert!(event["duration_ns"].is_null(), "a duration in {event}");
    let mut timed = event.clone();
    timed["duration_ns"] = 1.into();
    assert_event_is(&timed, call, pid);
}

#[test]
fn no_durations_attaches_nothing_at_entry_and_reports_the_same_calls() {
    let run = trace_command(&["-v", "--no-durations"], &["failures", "successes"]);
    let scenario = run.scenario();
    let events = of_pid(events(&run.out), scenario.pid);
    assert_events_match(
        &events,
        &scenario.failures(),
        scenario.pid,
        assert_untimed_event_is,
    );
    let stderr = run.stderr();
    assert!(
        stderr.contains("program sys_exit_madvise:"),
        "-v lists the programs: {stderr}"
    );
    assert!(
        !stderr.contains("program sys_enter:"),
        "the entry program was attached: {stderr}"
    );
    assert!(
        stderr.contains("events sent, 0 lost, 0 restarted, 0 without a duration"),
        "untimed calls are not counted as durations lost: {stderr}"
    );

    // Text: like strace without -T, no <duration> at the end.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trace.txt");
    let status = Command::new(THPTRACE)
        .arg("-o")
        .arg(&out)
        .args(["--no-durations", "--no-summary", "--brief", "--"])
        .args([SCENARIOS, "failures"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 6, "{text}");
    for line in text.lines() {
        assert!(
            line.ends_with("(Invalid argument)") || line.ends_with("(Cannot allocate memory)"),
            "{line}"
        );
    }
}

#[test]
fn text_output_reads_like_strace() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trace.txt");
    let status = Command::new(THPTRACE)
        .arg("-o")
        .arg(&out)
        .args(["--no-summary", "--brief", "--", SCENARIOS, "failures"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    let misaligned = lines[1];
    assert!(
        misaligned.contains("] madvise(0x")
            && misaligned.contains("MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument) <0.0"),
        "{misaligned}"
    );
    assert!(lines[0].contains(", 9999) = -1 EINVAL"), "{}", lines[0]);
    assert!(
        lines[2].contains("MADV_NORMAL) = -1 ENOMEM (Cannot allocate memory)"),
        "{}",
        lines[2]
    );
    assert!(
        lines[5].contains("process_madvise(") && lines[5].contains("MADV_COLD, 1) = -1 EINVAL"),
        "{}",
        lines[5]
    );
}

#[test]
fn annotates_each_failure_with_its_area_and_cause() {
    let run = trace_command(&[], &["failures", "shared-file"]);
    let scenario = run.scenario();
    let failures = scenario.failures();
    let events = of_pid(events(&run.out), scenario.pid);
    assert_events_are(&events, &failures, scenario.pid);
    let expected = [
        // Refused before any memory is looked at: no area is looked up.
        ("advice_unknown_to_kernel", "none"),
        ("misaligned_start", "none"),
        ("range_not_mapped", "unmapped"),
        ("remove_on_private", "anon"),
        ("area_locked", "locked"),
        ("process_madvise_flags", "anon"),
        ("wipeonfork_on_shared_or_file", "shared-file"),
    ];
    assert_eq!(events.len(), expected.len());
    for (e, (code, kind)) in events.iter().zip(expected) {
        let ctx = format!("{e:#}");
        assert_eq!(e["cause_code"], code, "{ctx}");
        assert!(e["cause"].as_str().is_some_and(|c| !c.is_empty()), "{ctx}");
        assert_eq!(e["possible_causes"], serde_json::json!([]), "{ctx}");
        let area = &e["area"];
        let flags = &area["flags"];
        let start = e["start"].as_u64().unwrap();
        if kind == "none" {
            assert!(area.is_null(), "{ctx}");
            continue;
        }
        if kind == "unmapped" {
            assert_eq!(area["mapped"], false, "{ctx}");
            assert_eq!(area["end"], 0, "{ctx}");
            assert_eq!(area["unmapped"]["start"], start, "{ctx}");
            continue;
        }
        let (a_start, a_end) = (
            area["start"].as_u64().unwrap(),
            area["end"].as_u64().unwrap(),
        );
        assert!(
            a_start <= start && start < a_end,
            "the area does not hold the start: {ctx}"
        );
        assert_eq!(area["mapped"], true, "{ctx}");
        assert_eq!(flags["writable"], true, "{ctx}");
        assert_eq!(flags["locked"], kind == "locked", "{ctx}");
        assert_eq!(flags["shared"], kind == "shared-file", "{ctx}");
        assert_eq!(flags["file_backed"], kind == "shared-file", "{ctx}");
        assert_eq!(flags["anonymous"], kind != "shared-file", "{ctx}");
    }
}

#[test]
fn text_output_explains_under_each_call() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trace.txt");
    let status = Command::new(THPTRACE)
        .arg("-o")
        .arg(&out)
        .args(["--no-summary", "--", SCENARIOS, "failures"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Each call, then its area (not for the two refused before any memory
    // is looked at), then its cause.
    assert_eq!(lines.len(), 16, "{text}");
    assert!(
        lines[1].starts_with("    cause: ") && lines[1].ends_with("[advice_unknown_to_kernel]"),
        "{text}"
    );
    assert!(lines[10].contains("MADV_DONTNEED) = -1 EINVAL"), "{text}");
    assert!(
        lines[11].starts_with("    area: ") && lines[11].ends_with(" rw-p anon locked"),
        "{text}"
    );
    assert!(
        lines[12].starts_with("    cause: ") && lines[12].ends_with("[area_locked]"),
        "{text}"
    );
    assert_eq!(lines[5], "    area: not mapped", "{text}");
}

#[test]
fn filter_by_pid() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.jsonl");
    let waiting = Waiting::start(&["failures"]);
    let pid = waiting.pid.to_string();
    let tracer = trace_background(&out, &["-p", &pid]);
    let scenario = waiting.go();
    let (status, stderr) = tracer.interrupt();
    assert!(status.success(), "{stderr}");
    let all = events(&out);
    assert!(
        all.iter().all(|e| e["pid"] == scenario.pid),
        "other pids leaked: {all:#?}"
    );
    assert_events_are(&all, &scenario.failures(), scenario.pid);
}

#[test]
fn filter_by_tid() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.jsonl");
    let waiting = Waiting::start(&["failures", "thread"]);
    // The main thread's tid is the pid: the second thread's call is left out.
    let tid = waiting.pid.to_string();
    let tracer = trace_background(&out, &["--tid", &tid]);
    let scenario = waiting.go();
    let (status, stderr) = tracer.interrupt();
    assert!(status.success(), "{stderr}");
    let expected: Vec<&Value> = scenario
        .failures()
        .into_iter()
        .filter(|c| c["tid"] == scenario.pid)
        .collect();
    assert_eq!(expected.len(), 6);
    assert_events_are(&events(&out), &expected, scenario.pid);
}

#[test]
fn filter_by_advice() {
    let run = trace_command(&["--advice", "MADV_REMOVE,9999"], &["failures"]);
    let scenario = run.scenario();
    let expected: Vec<&Value> = scenario
        .failures()
        .into_iter()
        .filter(|c| c["advice"] == 9 || c["advice"] == 9999)
        .collect();
    assert_eq!(expected.len(), 2);
    run.assert_reported(&scenario, &expected);
}

#[test]
fn filter_by_errno() {
    let run = trace_command(&["--errno", "ENOMEM"], &["failures"]);
    let scenario = run.scenario();
    let expected: Vec<&Value> = scenario
        .failures()
        .into_iter()
        .filter(|c| c["ret"] == -12)
        .collect();
    assert_eq!(expected.len(), 1);
    run.assert_reported(&scenario, &expected);
    // The kernel still counts the failures it did not send.
    assert!(
        run.stderr().contains("6 failed, 1 events sent"),
        "{}",
        run.stderr()
    );
}

#[test]
fn filter_by_comm() {
    let run = trace_command(&["--comm", "madvise-scenarios"], &["failures"]);
    let scenario = run.scenario();
    run.assert_reported(&scenario, &scenario.failures());
    let run = trace_command(&["--comm", "criu"], &["failures"]);
    assert_eq!(events(&run.out).len(), 0);
}

#[test]
fn count_stops_after_n_calls() {
    let run = trace_command(&["-c", "2"], &["failures"]);
    let scenario = run.scenario();
    let failures = scenario.failures();
    run.assert_reported(&scenario, &failures[..2]);
    assert!(
        run.stderr().contains("thptrace summary: 2 calls shown"),
        "{}",
        run.stderr()
    );
}

#[test]
fn duration_stops_the_trace() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = Command::new(THPTRACE)
        .args(["--duration", "1s", "--comm", "no-such-process", "-o"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(took >= Duration::from_secs(1), "stopped after {took:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("kernel counters:"), "{stderr}");
}

#[test]
fn exit_status_is_the_commands() {
    require_root();
    let status = Command::new(THPTRACE)
        .args([
            "--no-summary",
            "-o",
            "/dev/null",
            "--",
            "sh",
            "-c",
            "exit 7",
        ])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(7));
    let out = Command::new(THPTRACE)
        .args(["-o", "/dev/null", "--", "/no/such/command"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot run `/no/such/command`"), "{stderr}");
}

#[test]
fn follows_forked_children() {
    // The scenario runs as a grandchild of thptrace, through a shell.
    let cmd = format!("{SCENARIOS} failures; true");
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.jsonl");
    let output = Command::new(THPTRACE)
        .args(["-f", "json", "-o"])
        .arg(&out)
        .args(["--", "sh", "-c", &cmd])
        .output()
        .unwrap();
    assert!(output.status.success());
    let scenario = Scenario::parse(&output.stdout);
    let all = events(&out);
    assert_events_are(
        &of_pid(all, scenario.pid),
        &scenario.failures(),
        scenario.pid,
    );
}

/// Whether a BPF program with this id is loaded (BPF_PROG_GET_FD_BY_ID).
fn program_exists(id: u32) -> bool {
    const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
    let mut attr = [0u32; 4];
    attr[0] = id;
    // SAFETY: bpf(2) with a zeroed attribute union holding prog_id.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_GET_FD_BY_ID,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if fd >= 0 {
        // SAFETY: closing the descriptor just returned.
        unsafe { libc::close(fd as i32) };
        return true;
    }
    let err = std::io::Error::last_os_error();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::ENOENT),
        "BPF_PROG_GET_FD_BY_ID {id}: {err}"
    );
    false
}

#[test]
fn no_program_stays_loaded_after_exit() {
    require_root();
    let output = Command::new(THPTRACE)
        .args(["-v", "-o", "/dev/null", "--", SCENARIOS, "failures"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let ids: Vec<u32> = stderr
        .lines()
        .find_map(|l| l.split_once("kernel programs loaded, ids ["))
        .map(|(_, rest)| {
            rest.trim_end_matches(']')
                .split(", ")
                .map(|n| n.parse().unwrap())
                .collect()
        })
        .unwrap_or_else(|| panic!("thptrace -v did not list its programs: {stderr}"));
    assert!(ids.len() >= 4, "{ids:?}");
    // The kernel frees a program shortly after its last reference goes (the
    // release is deferred), so allow it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    for id in ids {
        while program_exists(id) {
            assert!(
                Instant::now() < deadline,
                "program {id} is still loaded 5 s after thptrace exited"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn two_tracers_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out_a = dir.path().join("a.jsonl");
    let host_wide = trace_background(&out_a, &[]);
    let run_b = trace_command(&[], &["failures"]);
    let (status, stderr) = host_wide.interrupt();
    assert!(status.success(), "{stderr}");
    let scenario = run_b.scenario();
    let failures = scenario.failures();
    assert_events_are(
        &of_pid(events(&run_b.out), scenario.pid),
        &failures,
        scenario.pid,
    );
    assert_events_are(
        &of_pid(events(&out_a), scenario.pid),
        &failures,
        scenario.pid,
    );
}

#[test]
fn bad_input_gets_a_clear_error() {
    let run = |args: &[&str]| {
        let out = Command::new(THPTRACE).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--advice", "nohuge"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("unknown advice `nohuge`") && err.contains("MADV_NOHUGEPAGE"),
        "{err}"
    );
    let (code, err) = run(&["--errno", "EBOGUS"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown errno `EBOGUS`"), "{err}");
    let (code, err) = run(&["--all", "--errno", "EINVAL"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cannot be used with"), "{err}");
    let (code, err) = run(&["-o", "/no/such/dir/out.txt", "--duration", "1"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("cannot create the output file /no/such/dir/out.txt"),
        "{err}"
    );
}

#[test]
fn a_failing_output_stops_the_trace_loudly() {
    require_root();
    let out = Command::new(THPTRACE)
        .args(["-o", "/dev/full", "--", SCENARIOS, "failures"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("writing the trace to /dev/full failed") && err.contains("No space left"),
        "{err}"
    );
}

#[test]
fn without_privileges_says_what_to_do() {
    // setpriv (util-linux) drops to nobody with no capabilities.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            THPTRACE,
            "--duration",
            "1",
        ])
        .output()
        .expect("setpriv (util-linux) is needed for this test");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs root, or the capabilities CAP_BPF and CAP_PERFMON")
            && err.contains("setcap"),
        "{err}"
    );
}
