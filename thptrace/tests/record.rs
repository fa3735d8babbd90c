//! `thptrace record` and `thptrace report`, end to end, as root: the real
//! kernel programs record what `madvise-scenarios` does (it reports exactly
//! which calls it made), and the report must give back every field. The
//! approach is live.rs's: every check is limited to the scenario's own pid,
//! since other processes on the machine call madvise too.
//!
//! They need root (or CAP_BPF + CAP_PERFMON): without it they fail, they do
//! not skip.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;
use common::*;
use thptrace::capture::{CaptureReader, ReadOptions};

/// The fields a live trace writes for a madvise and a process_madvise call.
const MADVISE_FIELDS: &[&str] = &[
    "schema",
    "time",
    "ts_boot_ns",
    "pid",
    "tid",
    "comm",
    "uid",
    "gid",
    "cpu",
    "cgroup_id",
    "syscall",
    "start",
    "len",
    "advice",
    "advice_name",
    "ret",
    "errno",
    "errno_name",
    "duration_ns",
    "area",
    "cause_code",
    "cause",
    "possible_causes",
];

/// An event's frame on disk: a 12-byte frame header and the 144-byte event
/// of format 1.1.
const EVENT_FRAME_BYTES: u64 = 12 + 144;

/// Checks one event against the call madvise-scenarios made: exactly the
/// fields a live trace writes, then each of them (common::assert_event_is).
fn assert_event_has_every_field(event: &Value, call: &Value, pid: u64) {
    let ctx = format!("event {event}\ncall {call}");
    let mut fields: Vec<&str> = MADVISE_FIELDS.to_vec();
    if call["syscall"] == "process_madvise" {
        fields.extend(["pidfd", "vlen", "flags"]);
    }
    let mut keys: Vec<&str> = event
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "host")
        .collect();
    keys.sort_unstable();
    fields.sort_unstable();
    assert_eq!(keys, fields, "{ctx}");
    common::assert_event_is(event, call, pid);
}

/// Like common::assert_events_are, with the exact field set checked too.
fn assert_events_are(events: &[Value], calls: &[&Value], pid: u64) {
    assert_events_match(events, calls, pid, assert_event_has_every_field);
}

fn run(args: &[&str]) -> Output {
    Command::new(THPTRACE).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `thptrace report ARGS`, which must succeed; its standard output.
fn report(args: &[&str]) -> String {
    let out = run(&[&["report"], args].concat());
    assert!(
        out.status.success(),
        "thptrace report {args:?} failed: {}",
        stderr(&out)
    );
    stdout(&out)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `thptrace record -o FILE ARGS -- madvise-scenarios SCENARIOS`; returns
/// what the scenario did and the recorder's standard error.
fn record_command(file: &Path, args: &[&str], scenarios: &[&str]) -> (Scenario, String) {
    require_root();
    let out = Command::new(THPTRACE)
        .args(["record", "-o", s(file)])
        .args(args)
        .arg("--")
        .arg(SCENARIOS)
        .args(scenarios)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "thptrace record failed: {}",
        stderr(&out)
    );
    (Scenario::parse(&out.stdout), stderr(&out))
}

/// Starts `thptrace ARGS` in the background, its output discarded.
fn background(args: &[&str]) -> Background {
    require_root();
    Background::start(Command::new(THPTRACE).args(args).stdout(Stdio::null()))
}

/// Starts `thptrace record -v ARGS` and waits until it is attached.
fn background_record(args: &[&str]) -> Background {
    let mut bg = background(&[&["record", "-v"], args].concat());
    bg.wait_for("recording failing madvise calls");
    bg
}

fn header_boot_time(file: &Path) -> u64 {
    CaptureReader::open(file, ReadOptions::default())
        .unwrap()
        .header()
        .host
        .boot_time_ns
}

#[test]
fn record_then_report_gives_back_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("cap.thp");
    let (scenario, err) = record_command(&cap, &[], &["failures", "thread"]);
    assert!(err.contains("recorded 7 events"), "{err}");
    assert!(err.contains("0 lost"), "{err}");
    // The recorder's own summary names each failure's cause, as the live
    // trace's does.
    let row = err
        .lines()
        .find(|l| l.contains("MADV_REMOVE"))
        .unwrap_or_else(|| panic!("no MADV_REMOVE row in the summary: {err}"));
    assert!(row.trim_end().ends_with("remove_on_private"), "{row}");
    assert_eq!(
        std::fs::metadata(&cap).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let events = of_pid(json_lines(&report(&["-f", "json", s(&cap)])), scenario.pid);
    assert_events_are(&events, &scenario.failures(), scenario.pid);
    // Wall-clock time is the capture's boot time plus the kernel's stamp.
    let boot = header_boot_time(&cap);
    for e in &events {
        let ts = e["ts_boot_ns"].as_u64().unwrap();
        let expected = thptrace::clock::rfc3339(boot as i128 + ts as i128);
        assert_eq!(e["time"], expected.as_str(), "{e}");
    }
    // The header carries the filters with the command, and the host facts.
    let r = CaptureReader::open(&cap, ReadOptions::default()).unwrap();
    let h = r.header();
    assert_eq!(h.filters["command"][1], "failures");
    assert!(h.host.facts["thp"].is_object(), "{}", h.host.facts);

    // Text: the same lines as the live trace.
    let text = report(&["--brief", "--pid", &scenario.pid.to_string(), s(&cap)]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert!(
        lines[1].contains("] madvise(0x")
            && lines[1].contains("MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument) <0.0"),
        "{}",
        lines[1]
    );
    assert!(lines[5].contains("process_madvise("), "{}", lines[5]);

    // The filters work on a capture as they do live.
    let only = of_pid(
        json_lines(&report(&["-f", "json", "--errno", "ENOMEM", s(&cap)])),
        scenario.pid,
    );
    let enomem: Vec<&Value> = scenario
        .failures()
        .into_iter()
        .filter(|c| c["ret"] == -12)
        .collect();
    assert_events_are(&only, &enomem, scenario.pid);
    let tid = scenario.failures()[6]["tid"].as_u64().unwrap().to_string();
    assert_eq!(
        report(&["--tid", &tid, "-f", "json", s(&cap)])
            .lines()
            .count(),
        1
    );
    assert_eq!(report(&["--comm", "criu", s(&cap)]), "");
    assert_eq!(report(&["--since", "now", s(&cap)]), "");
    assert_eq!(report(&["--until", "-1h", s(&cap)]), "");
    assert_eq!(
        report(&["--brief", "--since", "-1h", s(&cap)])
            .lines()
            .count(),
        7
    );
}

/// The recorder and a live trace watch the same calls: the report of the
/// capture is the live trace's output. Each tracer stamps the calls with its
/// own kernel programs, so times and durations differ by the time the other
/// tracer's programs took; every other field is equal.
#[test]
fn an_untimed_recording_reports_no_durations() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("untimed.thp");
    let (scenario, _) = record_command(&file, &["--no-durations"], &["failures"]);
    let events = of_pid(json_lines(&report(&["-f", "json", s(&file)])), scenario.pid);
    assert_eq!(events.len(), scenario.failures().len(), "{events:#?}");
    assert!(
        events.iter().all(|e| e["duration_ns"].is_null()),
        "{events:#?}"
    );
    let text = report(&["--brief", s(&file)]);
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("madvise")).collect();
    assert_eq!(lines.len(), scenario.failures().len(), "{text}");
    for line in lines {
        assert!(
            line.ends_with(')'),
            "a duration (or <?>) in an untimed capture: {line}"
        );
    }
}

#[test]
fn report_equals_the_live_trace_of_the_same_calls() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("cap.thp");
    let live = dir.path().join("live.jsonl");
    let recorder = background_record(&["-o", s(&cap), "--comm", "madvise-scenari"]);
    let out = Command::new(THPTRACE)
        .args([
            "-f",
            "json",
            "--no-summary",
            "-o",
            s(&live),
            "--",
            SCENARIOS,
        ])
        .args(["failures", "thread"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let scenario = Scenario::parse(&out.stdout);
    let (status, err) = recorder.signal(libc::SIGINT);
    assert!(status.success(), "{err}");

    let live = of_pid(
        json_lines(&std::fs::read_to_string(&live).unwrap()),
        scenario.pid,
    );
    let recorded = of_pid(json_lines(&report(&["-f", "json", s(&cap)])), scenario.pid);
    assert_events_are(&live, &scenario.failures(), scenario.pid);
    assert_events_are(&recorded, &scenario.failures(), scenario.pid);
    for (l, r) in live.iter().zip(&recorded) {
        let (l, r) = (l.as_object().unwrap(), r.as_object().unwrap());
        assert_eq!(
            l.keys().collect::<Vec<_>>(),
            r.keys().collect::<Vec<_>>(),
            "same fields in the same order"
        );
        for (k, v) in l {
            match k.as_str() {
                "ts_boot_ns" => {
                    let d = v.as_u64().unwrap().abs_diff(r[k].as_u64().unwrap());
                    assert!(d < 1_000_000, "{k}: live {v}, recorded {}", r[k]);
                }
                "time" => {
                    let t =
                        |v: &Value| thptrace::clock::parse_rfc3339(v.as_str().unwrap()).unwrap();
                    let d = (t(v) - t(&r[k])).abs();
                    assert!(d < 1_000_000, "{k}: live {v}, recorded {}", r[k]);
                }
                "duration_ns" => assert!(r[k].as_u64().unwrap() > 0),
                _ => assert_eq!(v, &r[k], "field {k}"),
            }
        }
    }
}

/// After kill -9 the capture holds every record flushed before it (the
/// recorder flushes at least once a second); the report says the capture
/// did not end cleanly. A file then cut inside a record loses only that
/// record, and the report names the byte where the damage starts.
#[test]
fn kill_9_then_report_keeps_every_complete_record() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("cap.thp");
    let recorder = background_record(&["-o", s(&cap), "--comm", "madvise-scenari"]);
    let scenario = run_scenarios(&["failures"]);
    // Two flush ticks.
    std::thread::sleep(Duration::from_millis(2200));
    let (status, _) = recorder.signal(libc::SIGKILL);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );

    let out = run(&["report", "-f", "json", s(&cap)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let events = of_pid(json_lines(&stdout(&out)), scenario.pid);
    assert_events_are(&events, &scenario.failures(), scenario.pid);
    assert!(stderr(&out).contains("no end marker"), "{}", stderr(&out));
    let strict = run(&["report", "--strict", s(&cap)]);
    assert_eq!(strict.status.code(), Some(1), "{}", stderr(&strict));

    // The summary has the counters written before the kill.
    let summary = report(&["--summary", s(&cap)]);
    assert!(summary.contains("kernel counters: "), "{summary}");

    // Cut the file inside its last record (a counters snapshot: the
    // recorder wrote two after the calls).
    let len = std::fs::metadata(&cap).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&cap).unwrap();
    f.set_len(len - 10).unwrap();
    drop(f);
    let out = run(&["report", "-f", "json", s(&cap)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let last_frame = len - 12 - 56;
    assert!(
        err.contains(&format!("file cut short at byte {last_frame}")) && err.contains(s(&cap)),
        "{err}"
    );
    let events = of_pid(json_lines(&stdout(&out)), scenario.pid);
    assert_events_are(&events, &scenario.failures(), scenario.pid);
    let strict = run(&["report", "--strict", "-f", "json", s(&cap)]);
    assert_eq!(strict.status.code(), Some(1));
    assert!(
        stderr(&strict).contains(&format!("byte {last_frame}")),
        "{}",
        stderr(&strict)
    );
}

fn set_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut v: Vec<(PathBuf, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.path(), e.metadata().unwrap().len()))
        .collect();
    v.sort();
    v
}

#[test]
fn rotation_stays_within_its_bounds_and_reads_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("rotated");
    std::fs::create_dir(&sub).unwrap();
    let cap = sub.join("cap.thp");
    const MAX: u64 = 64 << 10;
    let (scenario, err) = record_command(
        &cap,
        &["--max-size", "64k", "--max-files", "3"],
        &["loop-fail", "20000"],
    );
    assert!(err.contains("0 lost"), "{err}");
    let files = set_files(&sub);
    assert_eq!(files.len(), 3, "{files:?}");
    for (p, len) in &files {
        assert!(*len <= MAX, "{} is {len} bytes", p.display());
        let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
    // The newest calls, in order, with none missing between the first and
    // the last kept.
    let events = of_pid(json_lines(&report(&["-f", "json", s(&cap)])), scenario.pid);
    let ts: Vec<u64> = events
        .iter()
        .map(|e| e["ts_boot_ns"].as_u64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "out of order");
    let kept = events.len() as u64;
    assert!(kept > 1000 && kept < 20000, "{kept} events kept");
    assert!(kept * EVENT_FRAME_BYTES <= 3 * MAX);
    let summary = report(&["--summary", s(&cap)]);
    assert!(summary.contains("3 files"), "{summary}");
    assert!(summary.contains("rotated away"), "{summary}");
    assert!(summary.contains("0 lost"), "{summary}");

    // The flight recorder keeps the whole set within its size.
    let sub = dir.path().join("flight");
    std::fs::create_dir(&sub).unwrap();
    let cap = sub.join("cap.thp");
    let (scenario, _) = record_command(
        &cap,
        &["--flight-recorder", "256k"],
        &["loop-fail", "20000"],
    );
    let files = set_files(&sub);
    let total: u64 = files.iter().map(|(_, l)| l).sum();
    assert!(files.len() <= 8 && total <= 256 << 10, "{files:?}");
    let events = of_pid(json_lines(&report(&["-f", "json", s(&cap)])), scenario.pid);
    // Roughly the newest 7/8 of the budget at least.
    assert!(
        events.len() as u64 * EVENT_FRAME_BYTES >= (256 << 10) * 6 / 8,
        "{}",
        events.len()
    );
    // The last call of the loop is the last event kept.
    let last = events.last().unwrap();
    assert_eq!(last["advice"], 9999);
}

#[test]
fn two_hosts_merge_in_time_order_with_host_names() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.thp");
    let b = dir.path().join("b.thp");
    let (first, _) = record_command(&a, &["--no-summary"], &["failures"]);
    // The second "host": a UTS namespace with its own host name.
    let out = Command::new("unshare")
        .args(["--uts", "sh", "-c"])
        .arg(format!(
            "hostname node-b && exec {THPTRACE} record --no-summary -o {} -- {SCENARIOS} failures",
            s(&b)
        ))
        .output()
        .expect("unshare (util-linux) is needed for this test");
    assert!(out.status.success(), "{}", stderr(&out));
    let second = Scenario::parse(&out.stdout);
    let this_host = CaptureReader::open(&a, ReadOptions::default())
        .unwrap()
        .header()
        .host
        .hostname
        .clone();
    assert_ne!(this_host, "node-b");

    // Given in the opposite order, read in time order.
    let all = json_lines(&report(&["-f", "json", s(&b), s(&a)]));
    let events: Vec<&Value> = all
        .iter()
        .filter(|e| e["pid"] == first.pid || e["pid"] == second.pid)
        .collect();
    assert_eq!(events.len(), 12);
    let t = |e: &Value| thptrace::clock::parse_rfc3339(e["time"].as_str().unwrap()).unwrap();
    assert!(
        events.windows(2).all(|w| t(w[0]) <= t(w[1])),
        "not in time order"
    );
    for (i, e) in events.iter().enumerate() {
        let (host, pid) = if i < 6 {
            (this_host.as_str(), first.pid)
        } else {
            ("node-b", second.pid)
        };
        assert_eq!(e["host"], host, "{e}");
        assert_eq!(e["pid"], pid, "{e}");
    }
    let firsts: Vec<Value> = events[..6].iter().map(|e| (*e).clone()).collect();
    assert_events_are(&firsts, &first.failures(), first.pid);
    let seconds: Vec<Value> = events[6..].iter().map(|e| (*e).clone()).collect();
    assert_events_are(&seconds, &second.failures(), second.pid);

    // Text: each line starts with its host.
    let text = report(&["--brief", "--pid", &second.pid.to_string(), s(&a), s(&b)]);
    assert_eq!(text.lines().count(), 6);
    assert!(text.lines().all(|l| l.starts_with("node-b ")), "{text}");
    // A single capture has no host column.
    let text = report(&[s(&b)]);
    assert!(!text.contains("node-b"), "{text}");
    let summary = report(&["--summary", s(&a), s(&b)]);
    assert!(
        summary.contains("host node-b") && summary.contains(&format!("host {this_host}")),
        "{summary}"
    );
}

#[test]
fn summary_shows_the_counters_and_tells_quiet_from_lost() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("cap.thp");
    record_command(&cap, &["--no-summary"], &["failures"]);
    let summary = report(&["--summary", s(&cap)]);
    assert!(
        summary.contains("thptrace summary: 6 calls shown"),
        "{summary}"
    );
    assert!(
        summary.contains(
            "kernel counters: 6 calls from traced processes, 6 failed, 6 events sent, 0 lost"
        ),
        "{summary}"
    );
    assert!(summary.contains("No events were lost"), "{summary}");

    // Nothing to record: a quiet host, said as such.
    let quiet = dir.path().join("quiet.thp");
    let out = run(&[
        "record",
        "-o",
        s(&quiet),
        "-d",
        "1500ms",
        "--comm",
        "no-such-process",
        "--advice",
        "9998",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = report(&["--summary", s(&quiet)]);
    assert!(
        summary.contains("0 calls shown") && summary.contains("the host was quiet"),
        "{summary}"
    );

    // A ring buffer far too small for a burst: the loss is loud, live and
    // in the report.
    let lossy = dir.path().join("lossy.thp");
    let (_, err) = record_command(&lossy, &["--buffer-size", "4k"], &["loop-fail", "200000"]);
    assert!(err.contains("EVENTS WERE LOST"), "{err}");
    let summary = report(&["--summary", s(&lossy)]);
    assert!(summary.contains("EVENTS WERE LOST"), "{summary}");
    assert!(!summary.contains("No events were lost"), "{summary}");
    let out = run(&["report", s(&lossy)]);
    assert!(
        stderr(&out).contains("EVENTS WERE LOST"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"not a capture at all").unwrap();
    let out = run(&["report", s(&junk)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(s(&junk)) && err.contains("not a thptrace capture") && err.contains("byte 0"),
        "{err}"
    );
    let out = run(&["report", s(&dir.path().join("missing"))]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no capture file there"),
        "{}",
        stderr(&out)
    );
    let out = run(&["record", "-o", "/no/such/dir/cap.thp", "-d", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot record to /no/such/dir/cap.thp"),
        "{}",
        stderr(&out)
    );
}
