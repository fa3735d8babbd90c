//! What the integration tests share: the binaries, the root check,
//! madvise-scenarios's own report of its calls, JSON lines, and a thptrace
//! running in the background.
#![allow(dead_code)] // Each test binary uses its own part of this.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const THPTRACE: &str = env!("CARGO_BIN_EXE_thptrace");
pub const SCENARIOS: &str = env!("CARGO_BIN_EXE_madvise-scenarios");

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "these tests load eBPF programs and must run as root (`cargo xtask test` as root)"
    );
}

/// What madvise-scenarios said it did.
#[derive(Debug, Default)]
pub struct Scenario {
    pub pid: u64,
    pub calls: Vec<Value>,
}

impl Scenario {
    pub fn parse(stdout: impl AsRef<[u8]>) -> Scenario {
        let stdout = String::from_utf8_lossy(stdout.as_ref());
        let mut s = Scenario::default();
        let mut done = false;
        for line in stdout.lines() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("madvise-scenarios wrote `{line}`: {e}"));
            if let Some(pid) = v["pid"].as_u64() {
                s.pid = pid;
            } else if v["done"] == true {
                done = true;
            } else {
                s.calls.push(v);
            }
        }
        assert!(
            done && s.pid > 0,
            "madvise-scenarios did not finish: {stdout}"
        );
        s
    }

    pub fn failures(&self) -> Vec<&Value> {
        self.calls
            .iter()
            .filter(|c| c["ret"].as_i64().unwrap() < 0)
            .collect()
    }
}

/// Runs madvise-scenarios untraced.
pub fn run_scenarios(scenarios: &[&str]) -> Scenario {
    let out = Command::new(SCENARIOS).args(scenarios).output().unwrap();
    assert!(out.status.success());
    Scenario::parse(&out.stdout)
}

pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line `{l}`: {e}")))
        .collect()
}

pub fn of_pid(events: Vec<Value>, pid: u64) -> Vec<Value> {
    events.into_iter().filter(|e| e["pid"] == pid).collect()
}

/// Checks one event against the call madvise-scenarios made, field by field.
pub fn assert_event_is(event: &Value, call: &Value, pid: u64) {
    let ctx = format!("event {event}\ncall {call}");
    assert_eq!(event["schema"], 1, "{ctx}");
    assert_eq!(event["pid"], pid, "{ctx}");
    assert_eq!(event["tid"], call["tid"], "{ctx}");
    assert_eq!(event["comm"], "madvise-scenari", "{ctx}");
    assert_eq!(event["syscall"], call["syscall"], "{ctx}");
    assert_eq!(event["start"], call["start"], "{ctx}");
    assert_eq!(event["len"], call["len"], "{ctx}");
    assert_eq!(event["advice"], call["advice"], "{ctx}");
    assert_eq!(event["ret"], call["ret"], "{ctx}");
    let ret = call["ret"].as_i64().unwrap();
    if ret < 0 {
        assert_eq!(event["errno"], -ret, "{ctx}");
        let name = match -ret {
            22 => "EINVAL",
            12 => "ENOMEM",
            other => panic!("unexpected errno {other} in {ctx}"),
        };
        assert_eq!(event["errno_name"], name, "{ctx}");
    } else {
        assert!(event["errno"].is_null(), "{ctx}");
    }
    let advice_name = match call["advice"].as_i64().unwrap() {
        9999 => Value::Null,
        0 => "MADV_NORMAL".into(),
        4 => "MADV_DONTNEED".into(),
        9 => "MADV_REMOVE".into(),
        15 => "MADV_NOHUGEPAGE".into(),
        20 => "MADV_COLD".into(),
        18 => "MADV_WIPEONFORK".into(),
        other => panic!("unexpected advice {other}"),
    };
    assert_eq!(event["advice_name"], advice_name, "{ctx}");
    if call["syscall"] == "process_madvise" {
        assert_eq!(event["flags"], call["flags"], "{ctx}");
        assert_eq!(event["vlen"], call["vlen"], "{ctx}");
        assert_eq!(event["pidfd"], call["pidfd"], "{ctx}");
    } else {
        assert!(event.get("pidfd").is_none(), "{ctx}");
    }
    assert_eq!(event["uid"], 0, "{ctx}");
    assert_eq!(event["gid"], 0, "{ctx}");
    assert!(event["cpu"].is_u64(), "{ctx}");
    assert!(event["cgroup_id"].as_u64().unwrap() > 0, "{ctx}");
    assert!(event["duration_ns"].as_u64().unwrap() > 0, "{ctx}");
    assert!(event["ts_boot_ns"].as_u64().unwrap() > 0, "{ctx}");
    assert!(event["time"].as_str().unwrap().ends_with('Z'), "{ctx}");
}

pub fn assert_events_are(events: &[Value], calls: &[&Value], pid: u64) {
    assert_events_match(events, calls, pid, assert_event_is);
}

/// Exactly one event per call, in order, each checked by `check`.
pub fn assert_events_match(
    events: &[Value],
    calls: &[&Value],
    pid: u64,
    check: fn(&Value, &Value, u64),
) {
    assert_eq!(
        events.len(),
        calls.len(),
        "expected exactly {} events, got:\n{events:#?}",
        calls.len()
    );
    for (event, call) in events.iter().zip(calls) {
        check(event, call, pid);
    }
}

/// A background process whose stderr lines arrive on a channel.
pub struct Background {
    pub child: Child,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Background {
    pub fn start(c: &mut Command) -> Background {
        let mut child = c.stderr(Stdio::piped()).spawn().unwrap();
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Background {
            child,
            stderr: rx,
            seen: Vec::new(),
        }
    }

    pub fn wait_for(&mut self, marker: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(100)) {
                let hit = line.contains(marker);
                self.seen.push(line);
                if hit {
                    return;
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("exited ({status}) before `{marker}`: {:?}", self.seen);
            }
        }
        panic!("no `{marker}` within 30 s: {:?}", self.seen);
    }

    /// Sends `signal`, then returns the exit status and all of stderr.
    pub fn signal(mut self, signal: i32) -> (std::process::ExitStatus, String) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        self.seen.extend(self.stderr.try_iter());
        (status, self.seen.join("\n"))
    }

    /// SIGINT: the way a person stops a trace.
    pub fn interrupt(self) -> (std::process::ExitStatus, String) {
        self.signal(libc::SIGINT)
    }
}
