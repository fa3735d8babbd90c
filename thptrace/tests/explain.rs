//! `thptrace check` and `thptrace explain`, end to end, on this host.
//!
//! `check` loads the real kernel programs, so these tests need root (or
//! CAP_BPF + CAP_PERFMON): without it they fail, they do not skip. `explain`
//! reads this host's facts; what it must say depends on whether this kernel
//! has transparent huge pages, which the tests read from sysfs themselves.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::{THPTRACE, require_root};

/// The forms issue 3 names, each as one argument.
const FORMS: &[&str] = &[
    "madvise(0x7f06e7f30000, 4096, 15) failed with -22",
    "madvise(0x7f06e7f30000, 4096, MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument)",
    "madvise(start: 0x7f06e7f30000, len_in: 4096, behavior: MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument)",
    "15 EINVAL",
];

fn thptrace(args: &[&str]) -> Output {
    Command::new(THPTRACE)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {THPTRACE}: {e}"))
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(out: &Output) -> Value {
    let (stdout, stderr) = text(out);
    assert_eq!(
        stdout.lines().count(),
        1,
        "expected one JSON line\nstdout: {stdout}\nstderr: {stderr}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("bad JSON {stdout}: {e}"))
}

fn this_host_has_thp() -> bool {
    Path::new("/sys/kernel/mm/transparent_hugepage").is_dir()
}

#[test]
fn check_passes_on_this_host() {
    require_root();
    let out = thptrace(&["check"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    for label in [
        "privileges",
        "bpf() system call",
        "BPF ring buffer",
        "tracefs",
        "madvise tracepoints",
        "kernel BTF",
        "transparent huge pages",
        "load and attach",
        "event arrives",
        "decoded",
        "explained",
    ] {
        assert!(
            stdout.contains(&format!("  {label} ")),
            "no {label}: {stdout}"
        );
    }
    assert!(stdout.contains("[advice_unknown_to_kernel]"), "{stdout}");
    assert!(
        stdout.contains("result: tracing works on this host"),
        "{stdout}"
    );
}

#[test]
fn check_json_self_test_passed() {
    require_root();
    let out = thptrace(&["check", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let v = json(&out);
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["self_test"]["passed"], true, "{v:#}");
    let steps: Vec<&str> = v["self_test"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["attach", "event", "decoded", "explained", "counters"],
        "{v:#}"
    );
    for step in v["self_test"]["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "ok", "{step}");
    }
    let line = v["self_test"]["line"].as_str().unwrap();
    assert!(
        line.contains(", 4096, 9999) = -1 EINVAL (Invalid argument)"),
        "{line}"
    );
    assert_eq!(
        v["self_test"]["explanation"]["causes"]["cause_code"],
        "advice_unknown_to_kernel"
    );
    let items = v["items"].as_array().unwrap();
    let item = |name: &str| {
        items
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("no item {name} in {v:#}"))
    };
    for name in [
        "privileges",
        "bpf_syscall",
        "ring_buffer",
        "tracepoint_programs",
        "tracefs",
        "tracepoint_madvise",
    ] {
        assert_eq!(item(name)["status"], "ok", "{}", item(name));
        assert_eq!(item(name)["group"], "environment");
    }
    for name in [
        "kernel",
        "page_size",
        "thp",
        "ksm",
        "memory_failure",
        "swap",
    ] {
        assert_eq!(item(name)["group"], "host_facts", "{}", item(name));
    }
    let thp = if this_host_has_thp() { "yes" } else { "no" };
    assert_eq!(v["facts"]["thp"]["value"], thp, "{v:#}");
}

#[test]
fn explain_reads_every_accepted_form() {
    for form in FORMS {
        let out = thptrace(&["explain", form]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{form}\n{stdout}\n{stderr}");
        assert!(stdout.contains("MADV_NOHUGEPAGE (15)"), "{stdout}");
        assert!(stdout.contains("EINVAL (22): Invalid argument"), "{stdout}");
        assert!(stdout.contains("on this host: kernel "), "{stdout}");
        assert!(
            stdout.contains("the call may have come from another machine"),
            "{stdout}"
        );
        let short = *form == "15 EINVAL";
        if this_host_has_thp() {
            assert!(stdout.contains("THP built in"), "{stdout}");
            if short {
                // Without a start address, a bad start stays possible too.
                assert!(stdout.contains("possible causes:"), "{stdout}");
                assert!(
                    stdout.contains(
                        "may have run on a kernel built without CONFIG_TRANSPARENT_HUGEPAGE"
                    ),
                    "{stdout}"
                );
            } else {
                assert!(stdout.contains("not this kernel:"), "{stdout}");
                assert!(
                    stdout.contains(
                        "must have run on a kernel built without CONFIG_TRANSPARENT_HUGEPAGE"
                    ),
                    "{stdout}"
                );
                assert!(stdout.contains("[thp_not_built_in]"), "{stdout}");
            }
        } else {
            assert!(
                stdout.contains("cause: this kernel is built without transparent huge pages"),
                "{stdout}"
            );
        }
    }
}

#[test]
fn explain_joins_words() {
    for words in [&["15", "EINVAL"][..], &["MADV_NOHUGEPAGE", "-22"]] {
        let mut args = vec!["explain"];
        args.extend_from_slice(words);
        let out = thptrace(&args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{words:?}\n{stdout}\n{stderr}");
        assert!(
            stdout.starts_with("madvise(?, ?, MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument)\n"),
            "{stdout}"
        );
    }
    // Options may follow the words.
    let v = json(&thptrace(&["explain", "MADV_NOHUGEPAGE", "-22", "--json"]));
    assert_eq!(v["form"], "short");
}

#[test]
fn explain_json_parses_for_every_form() {
    for form in FORMS {
        let out = thptrace(&["explain", "--json", form]);
        assert_eq!(out.status.code(), Some(0), "{form}: {:?}", text(&out));
        let v = json(&out);
        assert_eq!(v["call"]["syscall"], "madvise", "{v:#}");
        assert_eq!(v["call"]["advice"], 15, "{v:#}");
        assert_eq!(v["call"]["advice_name"], "MADV_NOHUGEPAGE", "{v:#}");
        assert_eq!(v["call"]["errno"], 22, "{v:#}");
        assert_eq!(v["call"]["errno_name"], "EINVAL", "{v:#}");
        assert_eq!(v["facts"]["origin"], "this_host", "{v:#}");
        let codes: Vec<&str> = v["cause_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(codes.contains(&"thp_not_built_in"), "{v:#}");
        if *form == "15 EINVAL" {
            assert_eq!(v["call"]["start"], Value::Null);
            assert_eq!(v["explanation"]["kind"], "possible", "{v:#}");
            assert_eq!(v["other_kernel"], false);
        } else {
            assert_eq!(v["call"]["start"], 0x7f06_e7f3_0000u64, "{v:#}");
            assert_eq!(v["call"]["len"], 4096, "{v:#}");
            assert_eq!(v["explanation"]["kind"], "single", "{v:#}");
            assert_eq!(v["explanation"]["causes"]["cause_code"], "thp_not_built_in");
            assert_eq!(v["other_kernel"], this_host_has_thp(), "{v:#}");
        }
    }
}

#[test]
fn explain_rejects_garbage_with_the_accepted_forms() {
    for garbage in [
        &["hello", "world"][..],
        &["madvise(1, 2)"],
        &["15", "EWHAT"],
    ] {
        let mut args = vec!["explain"];
        args.extend_from_slice(garbage);
        let out = thptrace(&args);
        let (stdout, stderr) = text(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{garbage:?}\n{stdout}\n{stderr}"
        );
        assert!(stdout.is_empty(), "{stdout}");
        assert!(stderr.starts_with("thptrace: explain: "), "{stderr}");
        assert!(stderr.contains("\naccepted forms:\n"), "{stderr}");
        for example in &FORMS[..3] {
            assert!(stderr.contains(example), "{stderr}");
        }
        assert!(stderr.contains("15 EINVAL"), "{stderr}");
    }
}

/// What `thptrace check` traced, fed back to `thptrace explain`: thptrace's
/// own output is one of the forms it reads.
#[test]
fn explain_reads_the_self_tests_own_line() {
    require_root();
    let v = json(&thptrace(&["check", "--json"]));
    let line = v["self_test"]["line"].as_str().unwrap().to_string();
    let v = json(&thptrace(&["explain", "--json", &line]));
    assert_eq!(v["form"], "thptrace", "{v:#}");
    assert_eq!(v["call"]["advice"], 9999);
    assert_eq!(v["call"]["advice_name"], Value::Null);
    assert_eq!(v["call"]["comm"], "thptrace");
    assert_eq!(
        v["cause_codes"],
        serde_json::json!(["advice_unknown_to_kernel"])
    );
}
