//! `thptrace explain TEXT`: decode and explain one failing call as CRIU,
//! strace, perf trace, thptrace or a person wrote it, without tracing
//! anything.
//!
//! The call is read with [`crate::callparse`] and explained with
//! [`crate::explain`] against this host's facts, or against the facts a
//! capture file recorded. A pasted log line may come from another machine,
//! so the report says whose facts it used, and when this host's facts rule
//! out every cause it says the call must have run on a kernel unlike this
//! one, and what that kernel lacks.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::callparse::{CallForm, CallParseError, ParsedCall, parse_call};
use crate::capture::{CaptureReader, ReadOptions};
use crate::cli::ExplainArgs;
use crate::decode::{advice_name, errno_message, errno_name};
use crate::event::Syscall;
use crate::explain::{Call, Explanation, ExplanationKind, FactsOrigin, explain_with_context};
use crate::host::{Fact, HostFacts, Tri};

/// Exit status for text that cannot be read as a call.
pub const EXIT_UNREADABLE: i32 = 2;

/// Whose facts an explanation used, and how to name them.
#[derive(Clone, Debug)]
pub struct FactsUsed {
    pub facts: HostFacts,
    pub origin: FactsOrigin,
    /// `this host`, or `capture FILE (host NAME)`.
    pub from: String,
    /// Said once under the facts: why they may not fit the call.
    pub caveat: Option<String>,
}

impl FactsUsed {
    /// The facts of the host thptrace runs on.
    pub fn this_host(facts: HostFacts) -> FactsUsed {
        FactsUsed {
            facts,
            origin: FactsOrigin::ThisHost,
            from: "this host".into(),
            caveat: Some(
                "the call may have come from another machine: these are the facts of this host, not necessarily of the kernel the call ran on".into(),
            ),
        }
    }

    /// The facts recorded in a capture file's header.
    pub fn from_capture(path: &Path) -> Result<FactsUsed> {
        let reader = CaptureReader::open(path, ReadOptions::default()).with_context(|| {
            format!(
                "cannot read the capture file {}; give a file `thptrace` recorded, or leave out --capture to use this host's facts",
                path.display()
            )
        })?;
        let host = &reader.header().host;
        let name = if host.hostname.is_empty() {
            "unknown".to_string()
        } else {
            host.hostname.clone()
        };
        let from = format!("capture {} (host {name})", path.display());
        let (facts, caveat) = host.host_facts();
        let caveat = caveat.map(str::to_string);
        Ok(FactsUsed {
            facts,
            origin: FactsOrigin::Capture,
            from,
            caveat,
        })
    }
}

/// One fact the explanation depended on, as shown to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsedFact {
    /// Stable name: `kernel`, `page_size`, `thp`, `ksm`, `memory_failure`, `swap`.
    pub name: &'static str,
    /// `yes`, `no`, `unknown`, or the value (`6.18.44`, `4096`).
    pub value: String,
    /// How it reads in a sentence: `THP built in (mode madvise)`.
    pub text: String,
    /// Where it came from, when known.
    pub source: Option<String>,
}

/// A call, decoded and explained.
#[derive(Clone, Debug)]
pub struct Report {
    pub input: String,
    pub parsed: ParsedCall,
    pub call: Call,
    pub facts: FactsUsed,
    pub used: Vec<UsedFact>,
    pub explanation: Explanation,
}

/// Reads `text` and explains it with `facts`.
pub fn report(text: &str, facts: FactsUsed) -> Result<Report, CallParseError> {
    let parsed = parse_call(text)?;
    let call = parsed.call();
    let explanation = explain_with_context(
        &call,
        None,
        &facts.facts,
        facts.facts.page_size,
        facts.origin,
    );
    let used = facts_used(&call, &facts.facts);
    Ok(Report {
        input: text.trim().to_string(),
        parsed,
        call,
        facts,
        used,
        explanation,
    })
}

/// Runs `thptrace explain`; returns the exit status.
pub fn run(args: &ExplainArgs) -> Result<i32> {
    let text = args.text.join(" ");
    let facts = match &args.capture {
        Some(path) => FactsUsed::from_capture(path)?,
        None => FactsUsed::this_host(HostFacts::read(Path::new("/"))),
    };
    match report(&text, facts) {
        Ok(r) => {
            let text = if args.json {
                format!("{}\n", to_json(&r))
            } else {
                render(&r)
            };
            print_out(&text)?;
            Ok(0)
        }
        Err(e) => {
            eprintln!("thptrace: explain: {e}");
            Ok(EXIT_UNREADABLE)
        }
    }
}

/// Writes to standard output; a closed pipe (`| head`) is not an error.
pub fn print_out(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing to standard output")
        }
        _ => Ok(()),
    }
}

/// The facts an explanation of `call` rests on: the kernel and page size
/// always, and the build options the advice or errno depends on.
pub fn facts_used(call: &Call, facts: &HostFacts) -> Vec<UsedFact> {
    let mut out = vec![UsedFact {
        name: "kernel",
        value: facts
            .kernel_release
            .clone()
            .unwrap_or_else(|| "unknown".into()),
        text: format!(
            "kernel {} ({})",
            facts.kernel_release.as_deref().unwrap_or("unknown"),
            facts.machine.as_deref().unwrap_or("architecture unknown")
        ),
        source: None,
    }];
    out.push(UsedFact {
        name: "page_size",
        value: facts
            .page_size
            .map_or_else(|| "unknown".into(), |p| p.to_string()),
        text: match facts.page_size {
            Some(p) => format!("page size {p}"),
            None => "page size unknown".into(),
        },
        source: None,
    });
    match call.advice {
        14 | 15 | 25 => {
            let mut text = built_in("THP", &facts.thp);
            if let (Tri::Yes, Some(mode)) = (facts.thp.value, &facts.thp_mode) {
                text.push_str(&format!(" (mode {mode})"));
            }
            out.push(fact("thp", text, &facts.thp));
        }
        12 | 13 => out.push(fact("ksm", built_in("KSM", &facts.ksm), &facts.ksm)),
        100 | 101 => out.push(fact(
            "memory_failure",
            built_in("memory failure handling", &facts.memory_failure),
            &facts.memory_failure,
        )),
        // Only EBADF depends on swap (WILLNEED on anonymous memory).
        3 if call.errno == 9 => out.push(fact(
            "swap",
            built_in("swap support", &facts.swap),
            &facts.swap,
        )),
        _ => {}
    }
    out
}

fn built_in(what: &str, f: &Fact) -> String {
    match f.value {
        Tri::Yes => format!("{what} built in"),
        Tri::No => format!("{what} not built in"),
        Tri::Unknown => format!("{what} unknown"),
    }
}

fn fact(name: &'static str, text: String, f: &Fact) -> UsedFact {
    UsedFact {
        name,
        value: tri(f.value).into(),
        text,
        source: Some(f.source.clone()),
    }
}

fn tri(t: Tri) -> &'static str {
    match t {
        Tri::Yes => "yes",
        Tri::No => "no",
        Tri::Unknown => "unknown",
    }
}

/// Which tool's way of writing the call the text was in.
pub fn form_name(form: CallForm) -> &'static str {
    match form {
        CallForm::Criu => "criu",
        CallForm::Strace => "strace",
        CallForm::PerfTrace => "perf_trace",
        CallForm::Thptrace => "thptrace",
        CallForm::Short => "short",
    }
}

fn form_label(form: CallForm) -> &'static str {
    match form {
        CallForm::Criu => "a CRIU log line",
        CallForm::Strace => "strace output",
        CallForm::PerfTrace => "perf trace output",
        CallForm::Thptrace => "thptrace output",
        CallForm::Short => "advice and errno only",
    }
}

fn advice_text(advice: i32) -> String {
    match advice_name(advice) {
        Some(n) => format!("{n} ({advice})"),
        None => format!("{advice} (a value no kernel defines)"),
    }
}

fn errno_text(errno: i32) -> String {
    let name = errno_name(errno).unwrap_or("unnamed errno");
    match errno_message(errno) {
        Some(m) => format!("{name} ({errno}): {m}"),
        None => format!("{name} ({errno})"),
    }
}

/// The call as strace writes it, `?` for what the text did not give.
pub fn canonical(call: &Call, parsed: &ParsedCall) -> String {
    let advice = advice_name(call.advice).map_or_else(|| call.advice.to_string(), str::to_string);
    let hex = |v: Option<u64>| v.map_or_else(|| "?".to_string(), |v| format!("{v:#x}"));
    let dec = |v: Option<u64>| v.map_or_else(|| "?".to_string(), |v| v.to_string());
    let args = match call.syscall {
        Syscall::Madvise => format!("{}, {}, {advice}", hex(call.start), dec(call.len)),
        Syscall::ProcessMadvise => format!(
            "{}, [{{iov_base={}, iov_len={}}}{}], {}, {advice}, {}",
            parsed
                .pidfd
                .map_or_else(|| "?".to_string(), |p| p.to_string()),
            hex(call.start),
            dec(call.len),
            if call.vlen.unwrap_or(1) > 1 {
                ", ..."
            } else {
                ""
            },
            dec(call.vlen),
            call.flags
                .map_or_else(|| "?".to_string(), |f| f.to_string()),
        ),
    };
    let errno = errno_name(call.errno).map_or_else(|| call.errno.to_string(), str::to_string);
    let message = errno_message(call.errno).map_or_else(String::new, |m| format!(" ({m})"));
    format!("{}({args}) = -1 {errno}{message}", call.syscall.name())
}

/// What a kernel must lack (or have) for a cause this host rules out.
pub fn other_kernel_lacks(code: &str) -> Option<&'static str> {
    Some(match code {
        "thp_not_built_in" => "transparent huge pages (built without CONFIG_TRANSPARENT_HUGEPAGE)",
        "ksm_not_built_in" => "kernel samepage merging (built without CONFIG_KSM)",
        "memory_failure_not_built_in" => {
            "memory failure handling (built without CONFIG_MEMORY_FAILURE)"
        }
        "no_swap_willneed" => "swap support (built without CONFIG_SWAP)",
        "advice_unknown_to_kernel" => "this advice (an older kernel that predates it)",
        "sealed" => "nothing: it has mseal (Linux 6.10 or later), which this host's kernel lacks",
        _ => return None,
    })
}

/// The report for a person.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let call = &r.call;
    let p = &r.parsed;
    let _ = writeln!(out, "{}", canonical(call, p));
    let _ = writeln!(out, "  read as:      {}", form_label(p.form));
    if p.comm.is_some() || p.pid.is_some() {
        let who = match (&p.comm, p.pid, p.tid) {
            (Some(c), Some(pid), Some(tid)) if tid != pid => {
                format!("{c} (pid {pid}, thread {tid})")
            }
            (Some(c), Some(pid), _) => format!("{c} (pid {pid})"),
            (Some(c), None, _) => c.clone(),
            (None, Some(pid), _) => format!("pid {pid}"),
            (None, None, _) => String::new(),
        };
        let _ = writeln!(out, "  process:      {who}");
    }
    let _ = writeln!(out, "  system call:  {}", call.syscall.name());
    if let Some(fd) = p.pidfd {
        let _ = writeln!(out, "  pidfd:        {fd}");
    }
    let (start_label, len_label) = match call.syscall {
        Syscall::Madvise => ("start:", "length:"),
        Syscall::ProcessMadvise => ("first iovec:", "its length:"),
    };
    match call.start {
        Some(s) => {
            let _ = writeln!(out, "  {start_label:<13} {s:#x}");
        }
        None => {
            let _ = writeln!(out, "  {start_label:<13} not given");
        }
    }
    match call.len {
        Some(l) => {
            let _ = writeln!(out, "  {len_label:<13} {l} bytes ({l:#x})");
        }
        None => {
            let _ = writeln!(out, "  {len_label:<13} not given");
        }
    }
    if let Some(v) = call.vlen {
        let _ = writeln!(out, "  iovecs:       {v}");
    }
    if let Some(f) = call.flags {
        let _ = writeln!(out, "  flags:        {f:#x}");
    }
    let _ = writeln!(out, "  advice:       {}", advice_text(call.advice));
    let _ = writeln!(out, "  error:        {}", errno_text(call.errno));
    out.push('\n');

    let facts: Vec<String> = r
        .used
        .iter()
        .map(|f| match &f.source {
            Some(s) => format!("{} [{s}]", f.text),
            None => f.text.clone(),
        })
        .collect();
    let _ = writeln!(out, "on {}: {}", r.facts.from, facts.join(", "));
    if let Some(c) = &r.facts.caveat {
        let _ = writeln!(out, "  ({c})");
    }
    out.push('\n');

    let e = &r.explanation;
    if e.other_kernel {
        let lacks: Vec<&str> = e
            .codes()
            .into_iter()
            .filter_map(other_kernel_lacks)
            .collect();
        let what = match lacks.as_slice() {
            [] => String::new(),
            [one] => format!(": a kernel without {one}"),
            many => format!(": a kernel without one of: {}", many.join("; ")),
        };
        let _ = writeln!(
            out,
            "not this kernel: this call, as written, cannot fail with {} on the kernel of {}, so it must have run on a kernel unlike this one{what}.",
            errno_name(call.errno).map_or_else(|| format!("errno {}", call.errno), str::to_string),
            r.facts.from,
        );
    }
    match &e.kind {
        ExplanationKind::Single(c) => {
            let _ = writeln!(out, "cause: {} [{}]", c.sentence, c.code);
        }
        ExplanationKind::Possible(causes) => {
            let _ = writeln!(out, "possible causes:");
            for (i, c) in causes.iter().enumerate() {
                let _ = writeln!(out, "  {}. {} [{}]", i + 1, c.sentence, c.code);
            }
        }
        ExplanationKind::Unknown => {
            let _ = writeln!(out, "cause: unknown");
        }
    }
    for c in &e.also {
        let _ = writeln!(out, "also:  {} [{}]", c.sentence, c.code);
    }
    if let Some(n) = &e.note {
        let _ = writeln!(out, "note:  {n}");
    }
    out
}

/// The report for machines: one JSON object.
pub fn to_json(r: &Report) -> Value {
    let call = &r.call;
    let p = &r.parsed;
    let used: Vec<Value> = r
        .used
        .iter()
        .map(|f| json!({ "name": f.name, "value": f.value, "text": f.text, "source": f.source }))
        .collect();
    let codes = r.explanation.codes();
    let lacks: Vec<&str> = if r.explanation.other_kernel {
        codes.iter().filter_map(|c| other_kernel_lacks(c)).collect()
    } else {
        Vec::new()
    };
    json!({
        "input": r.input,
        "form": form_name(p.form),
        "call": {
            "text": canonical(call, p),
            "syscall": call.syscall.name(),
            "start": call.start,
            "start_hex": call.start.map(|s| format!("{s:#x}")),
            "len": call.len,
            "advice": call.advice,
            "advice_name": advice_name(call.advice),
            "errno": call.errno,
            "errno_name": errno_name(call.errno),
            "errno_message": errno_message(call.errno),
            "pidfd": p.pidfd,
            "vlen": call.vlen,
            "flags": call.flags,
            "comm": p.comm,
            "pid": p.pid,
            "tid": p.tid,
        },
        "facts": {
            "origin": r.facts.origin,
            "from": r.facts.from,
            "caveat": r.facts.caveat,
            "used": used,
            "host": r.facts.facts,
        },
        "explanation": r.explanation,
        "cause_codes": codes,
        "other_kernel": r.explanation.other_kernel,
        "other_kernel_lacks": lacks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Fact;

    const CRIU: &str = "madvise(0x7f06e7f30000, 4096, 15) failed with -22";
    const STRACE: &str =
        "madvise(0x7f06e7f30000, 4096, MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument)";
    const PERF: &str = "madvise(start: 0x7f06e7f30000, len_in: 4096, behavior: MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument)";
    const SHORT: &str = "15 EINVAL";

    fn host(thp: Tri) -> HostFacts {
        let mut h = HostFacts::unknown();
        h.kernel_release = Some("6.18.44-test".into());
        h.machine = Some("x86_64".into());
        h.page_size = Some(4096);
        h.thp = match thp {
            Tri::Yes => Fact::yes("/sys/kernel/mm/transparent_hugepage"),
            Tri::No => Fact::no("/sys/kernel/mm/transparent_hugepage is absent"),
            Tri::Unknown => {
                Fact::unknown("no /sys/kernel/mm/transparent_hugepage and no kernel config")
            }
        };
        if thp == Tri::Yes {
            h.thp_mode = Some("madvise".into());
        }
        h.ksm = Fact::yes("/sys/kernel/mm/ksm");
        h.memory_failure = Fact::yes("/proc/sys/vm/memory_failure_early_kill");
        h.swap = Fact::yes("/proc/swaps");
        h
    }

    fn on(text: &str, thp: Tri) -> Report {
        report(text, FactsUsed::this_host(host(thp))).unwrap()
    }

    #[test]
    fn every_accepted_form_decodes_the_same_call() {
        for text in [CRIU, STRACE, PERF] {
            let r = on(text, Tri::Yes);
            assert_eq!(
                r.call,
                Call::madvise(0x7f06e7f30000, 4096, 15, 22),
                "{text}"
            );
            let out = render(&r);
            assert!(out.starts_with(&format!("{STRACE}\n")), "{out}");
            assert!(
                out.contains("  advice:       MADV_NOHUGEPAGE (15)\n"),
                "{out}"
            );
            assert!(
                out.contains("  error:        EINVAL (22): Invalid argument\n"),
                "{out}"
            );
        }
        assert!(render(&on(CRIU, Tri::Yes)).contains("read as:      a CRIU log line"));
        assert!(render(&on(PERF, Tri::Yes)).contains("read as:      perf trace output"));
        let out = render(&on(SHORT, Tri::Yes));
        assert!(
            out.starts_with("madvise(?, ?, MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument)\n"),
            "{out}"
        );
        assert!(out.contains("  start:        not given\n"), "{out}");
    }

    #[test]
    fn thp_host_says_the_call_ran_on_another_kernel() {
        let r = on(CRIU, Tri::Yes);
        assert!(r.explanation.other_kernel);
        let out = render(&r);
        assert!(
            out.contains("on this host: kernel 6.18.44-test (x86_64), page size 4096, THP built in (mode madvise) [/sys/kernel/mm/transparent_hugepage]\n"),
            "{out}"
        );
        assert!(
            out.contains("the call may have come from another machine"),
            "{out}"
        );
        assert!(
            out.contains("not this kernel: this call, as written, cannot fail with EINVAL on the kernel of this host, so it must have run on a kernel unlike this one: a kernel without transparent huge pages (built without CONFIG_TRANSPARENT_HUGEPAGE).\n"),
            "{out}"
        );
        assert!(
            out.contains("cause: this host's kernel has transparent huge pages"),
            "{out}"
        );
        assert!(out.contains("[thp_not_built_in]"), "{out}");
        assert!(!out.contains("possible causes"), "{out}");
    }

    #[test]
    fn host_without_thp_names_the_cause_directly() {
        let out = render(&on(STRACE, Tri::No));
        assert!(!out.contains("not this kernel"), "{out}");
        assert!(
            out.contains("THP not built in [/sys/kernel/mm/transparent_hugepage is absent]"),
            "{out}"
        );
        assert!(
            out.contains("cause: this kernel is built without transparent huge pages (CONFIG_TRANSPARENT_HUGEPAGE), so it rejects MADV_NOHUGEPAGE"),
            "{out}"
        );
    }

    #[test]
    fn short_form_lists_possible_causes() {
        let r = on(SHORT, Tri::Yes);
        assert!(!r.explanation.other_kernel);
        let out = render(&r);
        assert!(out.contains("possible causes:\n  1. "), "{out}");
        assert!(
            out.contains("may have run on a kernel built without CONFIG_TRANSPARENT_HUGEPAGE"),
            "{out}"
        );
        let v = to_json(&r);
        assert_eq!(v["explanation"]["kind"], "possible");
        assert_eq!(
            v["cause_codes"],
            json!(["misaligned_start", "length_overflow", "thp_not_built_in"])
        );
        assert_eq!(v["call"]["start"], Value::Null);
    }

    #[test]
    fn unknown_thp_is_a_possible_cause() {
        let out = render(&on(CRIU, Tri::Unknown));
        assert!(
            out.contains("THP unknown [no /sys/kernel/mm/transparent_hugepage"),
            "{out}"
        );
        assert!(
            out.contains(
                "possible causes:\n  1. this kernel may be built without transparent huge pages"
            ),
            "{out}"
        );
    }

    #[test]
    fn json_shape() {
        let v = to_json(&on(PERF, Tri::Yes));
        assert_eq!(v["form"], "perf_trace");
        assert_eq!(v["call"]["syscall"], "madvise");
        assert_eq!(v["call"]["start"], 0x7f06e7f30000u64);
        assert_eq!(v["call"]["start_hex"], "0x7f06e7f30000");
        assert_eq!(v["call"]["len"], 4096);
        assert_eq!(v["call"]["advice"], 15);
        assert_eq!(v["call"]["advice_name"], "MADV_NOHUGEPAGE");
        assert_eq!(v["call"]["errno"], 22);
        assert_eq!(v["call"]["errno_name"], "EINVAL");
        assert_eq!(v["call"]["errno_message"], "Invalid argument");
        assert_eq!(v["facts"]["origin"], "this_host");
        assert_eq!(v["facts"]["used"][2]["name"], "thp");
        assert_eq!(v["facts"]["used"][2]["value"], "yes");
        assert_eq!(
            v["facts"]["used"][2]["source"],
            "/sys/kernel/mm/transparent_hugepage"
        );
        assert_eq!(v["facts"]["host"]["thp_mode"], "madvise");
        assert_eq!(v["explanation"]["kind"], "single");
        assert_eq!(v["explanation"]["causes"]["cause_code"], "thp_not_built_in");
        assert!(
            v["explanation"]["causes"]["cause"]
                .as_str()
                .unwrap()
                .contains("CONFIG_TRANSPARENT_HUGEPAGE")
        );
        assert_eq!(v["cause_codes"], json!(["thp_not_built_in"]));
        assert_eq!(v["other_kernel"], true);
        assert_eq!(
            v["other_kernel_lacks"],
            json!(["transparent huge pages (built without CONFIG_TRANSPARENT_HUGEPAGE)"])
        );
    }

    #[test]
    fn unknown_advice_prints_its_number() {
        let r = on(
            "madvise(0x7f06e7f30000, 4096, 9999) = -1 EINVAL (Invalid argument)",
            Tri::Yes,
        );
        let out = render(&r);
        assert!(
            out.starts_with("madvise(0x7f06e7f30000, 4096, 9999) = -1 EINVAL"),
            "{out}"
        );
        assert!(
            out.contains("advice:       9999 (a value no kernel defines)"),
            "{out}"
        );
        assert!(out.contains("[advice_unknown_to_kernel]"), "{out}");
        // Only the kernel and page size matter here.
        assert_eq!(r.used.len(), 2);
        assert_eq!(to_json(&r)["call"]["advice_name"], Value::Null);
    }

    #[test]
    fn process_madvise_and_thptrace_lines() {
        let r = on(
            "process_madvise(3, [{iov_base=0x7f06e7f30000, iov_len=4096}], 1, MADV_COLD, 1) = -1 EINVAL (Invalid argument)",
            Tri::Yes,
        );
        let out = render(&r);
        assert!(out.starts_with("process_madvise(3, [{iov_base=0x7f06e7f30000, iov_len=4096}], 1, MADV_COLD, 1) = -1 EINVAL (Invalid argument)\n"), "{out}");
        assert!(out.contains("  flags:        0x1\n"), "{out}");
        assert!(out.contains("[process_madvise_flags]"), "{out}");
        let r = on(
            "12:04:33.120512 criu[4242/4250] madvise(0x7f06e7f30000, 4096, MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument) <0.000004>",
            Tri::Yes,
        );
        assert!(render(&r).contains("  process:      criu (pid 4242, thread 4250)\n"));
    }

    #[test]
    fn garbage_lists_the_accepted_forms() {
        let e = report("hello world", FactsUsed::this_host(host(Tri::Yes))).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("accepted forms:"), "{msg}");
        assert!(msg.contains("failed with -22"), "{msg}");
    }

    #[test]
    fn capture_facts_are_the_calls_own() {
        use crate::capture::{CaptureWriter, HostInfo, WriterOptions};
        let dir = crate::host::tests::TempTree::new();
        // A capture whose header carries full host facts: no THP there.
        let path = dir.0.join("with-facts.thpcap");
        let info = HostInfo {
            hostname: "old-box".into(),
            kernel_release: "6.1.0-nothp".into(),
            arch: "x86_64".into(),
            page_size: 4096,
            boot_time_ns: 1,
            facts: serde_json::to_value(host(Tri::No)).unwrap(),
        };
        CaptureWriter::create(WriterOptions::new(&path), info.clone(), json!({}))
            .unwrap()
            .finish()
            .unwrap();
        let facts = FactsUsed::from_capture(&path).unwrap();
        assert_eq!(facts.origin, FactsOrigin::Capture);
        assert!(facts.caveat.is_none());
        let r = report(CRIU, facts).unwrap();
        assert!(!r.explanation.other_kernel);
        assert_eq!(r.explanation.codes(), ["thp_not_built_in"]);
        let out = render(&r);
        assert!(
            out.contains(&format!(
                "on capture {} (host old-box): kernel 6.18.44-test",
                path.display()
            )),
            "{out}"
        );

        // An older capture with only the kernel release: THP unknown.
        let path = dir.0.join("bare.thpcap");
        let bare = HostInfo {
            facts: Value::Null,
            ..info
        };
        CaptureWriter::create(WriterOptions::new(&path), bare, json!({}))
            .unwrap()
            .finish()
            .unwrap();
        let facts = FactsUsed::from_capture(&path).unwrap();
        assert_eq!(facts.facts.kernel_release.as_deref(), Some("6.1.0-nothp"));
        assert_eq!(facts.facts.page_size, Some(4096));
        assert!(facts.facts.thp.is_unknown());
        let r = report(CRIU, facts).unwrap();
        assert_eq!(r.explanation.codes(), ["thp_not_built_in"]);
        assert!(render(&r).contains("capture records only the kernel release"));

        let err = FactsUsed::from_capture(&dir.0.join("missing")).unwrap_err();
        assert!(
            format!("{err:#}").contains("leave out --capture"),
            "{err:#}"
        );
    }
}
