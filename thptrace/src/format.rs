//! How an event is printed: one line per call, the way the call was written,
//! in the style of strace and perf trace; or one JSON object per line for log
//! pipelines.
//!
//! Text:
//! `12:04:33.120512 criu[4242/4250] madvise(0x7f06e7f30000, 4096, MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument) <0.000004>`

use std::fmt::Write;

use serde::Serialize;

use std::sync::Arc;

use crate::annotate::Annotation;
use crate::clock::{Clock, LocalTime, write_rfc3339};
use crate::decode::{advice_name, errno_message, errno_name, write_advice};
use crate::digits::{push_hex, push_i64, push_padded, push_u64};
use crate::event::{Event, Syscall};
use crate::explain::{Area, Cause, ExplanationKind};

/// Version of the JSON lines schema (docs/json-schema.md). Bump it when a
/// field changes meaning or goes away; adding a field does not.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per call, like strace.
    Text,
    /// One JSON object per line.
    Json,
}

impl Format {
    /// Whether events are explained (areas and causes): `--brief` drops the
    /// text lines, but JSON keeps them as fields, as the help promises.
    pub fn explains(self, brief: bool) -> bool {
        !brief || self == Format::Json
    }
}

/// Turns events into lines. Keeps the state that makes that cheap: the
/// boot-to-wall-clock offset and the local time zone of the last second.
pub struct Formatter {
    format: Format,
    clock: Clock,
    local: LocalTime,
    /// The thread and annotation of the last annotated text line: a thread
    /// repeating one failure gets its area and cause lines once, not for
    /// every call of a burst.
    last_note: Option<(u32, Arc<Annotation>)>,
    /// `thptrace report` of several hosts: the host each line came from.
    host: Option<Arc<str>>,
}

impl Formatter {
    pub fn new(format: Format, clock: Clock) -> Self {
        Formatter {
            format,
            clock,
            local: LocalTime::default(),
            last_note: None,
            host: None,
        }
    }

    /// The clock that puts the next events on the wall clock (a capture's
    /// boot time, when reading one).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// The host the next events came from: a `host` prefix on text lines,
    /// a `host` field in JSON. `None` (the default, and live) leaves it out.
    pub fn set_host(&mut self, host: Option<Arc<str>>) {
        self.host = host;
    }

    /// Appends the event's line, with its newline, to `out`.
    pub fn write(&mut self, out: &mut String, event: &Event) {
        self.write_annotated(out, event, None);
    }

    /// Appends the event's line and, with a note, its memory area and cause:
    /// indented `area:` and `cause:` lines under the call in text (not
    /// repeated for a thread's run of identical failures), fields in JSON.
    pub fn write_annotated(
        &mut self,
        out: &mut String,
        event: &Event,
        note: Option<&Arc<Annotation>>,
    ) {
        match self.format {
            Format::Text => self.write_text(out, event, note),
            Format::Json => self.write_json(out, event, note),
        }
    }

    fn write_text(&mut self, out: &mut String, e: &Event, note: Option<&Arc<Annotation>>) {
        if let Some(host) = &self.host {
            out.push_str(host);
            out.push(' ');
        }
        self.local.write(out, self.clock.wall_ns(e.ts_boot_ns));
        out.push(' ');
        out.push_str(&e.comm());
        out.push('[');
        push_u64(out, e.tgid.into());
        out.push('/');
        push_u64(out, e.tid.into());
        out.push_str("] ");
        write_call(out, e);
        match e.duration() {
            Some(d) => {
                out.push_str(" <");
                push_u64(out, d / 1_000_000_000);
                out.push('.');
                push_padded(out, d / 1000 % 1_000_000, 6);
                out.push_str(">\n");
            }
            // Like strace without -T: an untimed run shows no duration.
            None if !e.timed() => out.push('\n'),
            None => out.push_str(" <?>\n"),
        }
        if let Some(note) = note {
            let repeat = matches!(&self.last_note, Some((tid, last)) if *tid == e.tid && Arc::ptr_eq(last, note));
            if !repeat {
                out.push_str(&note.text);
                self.last_note = Some((e.tid, note.clone()));
            }
        }
    }

    fn write_json(&mut self, out: &mut String, e: &Event, note: Option<&Arc<Annotation>>) {
        let mut time = String::with_capacity(32);
        write_rfc3339(&mut time, self.clock.wall_ns(e.ts_boot_ns));
        let comm = e.comm();
        let errno = e.errno();
        let process = e.syscall == Syscall::ProcessMadvise;
        let line = JsonEvent {
            schema: JSON_SCHEMA_VERSION,
            host: self.host.as_deref(),
            time: &time,
            ts_boot_ns: e.ts_boot_ns,
            pid: e.tgid,
            tid: e.tid,
            comm: &comm,
            uid: e.uid,
            gid: e.gid,
            cpu: e.cpu,
            cgroup_id: e.cgroup_id,
            syscall: e.syscall.name(),
            start: (!e.iovec_unreadable).then_some(e.start),
            len: (!e.iovec_unreadable).then_some(e.len),
            advice: e.advice,
            advice_name: advice_name(e.advice),
            pidfd: process.then_some(e.pidfd),
            vlen: process.then_some(e.vlen),
            flags: process.then_some(e.flags),
            ret: e.ret,
            errno,
            errno_name: errno.and_then(errno_name),
            duration_ns: e.duration(),
            area: None,
            cause_code: None,
            cause: None,
            possible_causes: Vec::new(),
        };
        let mut line = line;
        if let Some(note) = note {
            line.area = note.area.as_ref();
            match &note.explanation.kind {
                ExplanationKind::Single(c) => {
                    line.cause_code = Some(&c.code);
                    line.cause = Some(&c.sentence);
                }
                ExplanationKind::Possible(v) => line.possible_causes = v.iter().collect(),
                ExplanationKind::Unknown => {}
            }
        }
        // Writing to a String cannot fail.
        out.push_str(&serde_json::to_string(&line).unwrap_or_default());
        out.push('\n');
    }
}

/// The call and its result, as strace writes it:
/// `madvise(0x7f06e7f30000, 4096, MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument)`.
pub fn write_call(out: &mut String, e: &Event) {
    match e.syscall {
        Syscall::Madvise => {
            out.push_str("madvise(");
            push_hex(out, e.start);
            out.push_str(", ");
            push_u64(out, e.len);
            out.push_str(", ");
        }
        Syscall::ProcessMadvise => {
            out.push_str("process_madvise(");
            push_i64(out, e.pidfd.into());
            out.push_str(", ");
            if e.iovec_unreadable {
                out.push_str("[?]");
            } else if e.vlen == 0 {
                out.push_str("[]");
            } else {
                out.push_str("[{iov_base=");
                push_hex(out, e.start);
                out.push_str(", iov_len=");
                push_u64(out, e.len);
                out.push('}');
                if e.vlen > 1 {
                    out.push_str(", ...");
                }
                out.push(']');
            }
            out.push_str(", ");
            push_u64(out, e.vlen);
            out.push_str(", ");
        }
    }
    write_advice(out, e.advice);
    if e.syscall == Syscall::ProcessMadvise {
        out.push_str(", ");
        push_u64(out, e.flags.into());
    }
    out.push_str(") = ");
    write_result(out, e.ret);
}

/// `-1 EINVAL (Invalid argument)`, or the value of a call that succeeded.
pub fn write_result(out: &mut String, ret: i64) {
    if ret >= 0 {
        push_i64(out, ret);
        return;
    }
    let errno = (-ret) as i32;
    match (errno_name(errno), errno_message(errno)) {
        (Some(name), Some(msg)) => {
            out.push_str("-1 ");
            out.push_str(name);
            out.push_str(" (");
            out.push_str(msg);
            out.push(')');
        }
        _ => {
            let _ = write!(out, "-1 errno {errno} (Unknown error {errno})");
        }
    }
}

#[derive(Serialize)]
struct JsonEvent<'a> {
    schema: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    time: &'a str,
    ts_boot_ns: u64,
    pid: u32,
    tid: u32,
    comm: &'a str,
    uid: u32,
    gid: u32,
    cpu: u32,
    cgroup_id: u64,
    syscall: &'a str,
    start: Option<u64>,
    len: Option<u64>,
    advice: i32,
    advice_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pidfd: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlen: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flags: Option<u32>,
    ret: i64,
    errno: Option<i32>,
    errno_name: Option<&'a str>,
    duration_ns: Option<u64>,
    /// The memory area the call hit (null when not looked up).
    area: Option<&'a Area>,
    /// The cause, when the facts single one out.
    cause_code: Option<&'a str>,
    cause: Option<&'a str>,
    /// The candidates, when they do not.
    possible_causes: Vec<&'a Cause>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotate::Annotator;
    use crate::event::tests::sample;
    use crate::host::HostFacts;
    use thptrace_common::area;

    fn text(e: &Event) -> String {
        let mut f = Formatter::new(Format::Text, Clock { boot_epoch_ns: 0 });
        let mut s = String::new();
        f.write(&mut s, e);
        // Drop the local time of day: it depends on the time zone.
        s.split_once(' ').unwrap().1.to_string()
    }

    #[test]
    fn madvise_failure_reads_like_strace() {
        let e = sample(0x7f06e7f30000, 4096, 15, -22);
        assert_eq!(
            text(&e),
            "criu[4242/4250] madvise(0x7f06e7f30000, 4096, MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument) <0.000004>\n"
        );
    }

    #[test]
    fn unknown_values_print_as_numbers() {
        let e = sample(0x1000, 1, 9999, -600);
        assert_eq!(
            text(&e),
            "criu[4242/4250] madvise(0x1000, 1, 9999) = -1 errno 600 (Unknown error 600) <0.000004>\n"
        );
    }

    #[test]
    fn process_madvise_shows_the_first_iovec() {
        let mut e = sample(0x2000, 8192, 20, -22);
        e.syscall = Syscall::ProcessMadvise;
        e.pidfd = 5;
        e.vlen = 2;
        e.flags = 1;
        assert_eq!(
            text(&e),
            "criu[4242/4250] process_madvise(5, [{iov_base=0x2000, iov_len=8192}, ...], 2, MADV_COLD, 1) = -1 EINVAL (Invalid argument) <0.000004>\n"
        );
        e.iovec_unreadable = true;
        assert!(text(&e).contains("process_madvise(5, [?], 2, MADV_COLD, 1)"));
    }

    #[test]
    fn duration_unknown_or_not_measured() {
        let mut e = sample(0x1000, 4096, 15, -22);
        e.duration_ns = thptrace_common::NO_DURATION;
        assert!(
            text(&e).ends_with("(Invalid argument) <?>\n"),
            "{}",
            text(&e)
        );
        // An untimed run (--no-durations) reads like strace without -T.
        e.duration_ns = thptrace_common::NOT_TIMED;
        assert!(text(&e).ends_with("(Invalid argument)\n"), "{}", text(&e));
        for d in [thptrace_common::NO_DURATION, thptrace_common::NOT_TIMED] {
            e.duration_ns = d;
            let mut f = Formatter::new(Format::Json, Clock { boot_epoch_ns: 0 });
            let mut s = String::new();
            f.write(&mut s, &e);
            let v: serde_json::Value = serde_json::from_str(&s).unwrap();
            assert!(v["duration_ns"].is_null(), "{s}");
        }
    }

    #[test]
    fn brief_drops_explanations_from_text_only() {
        assert!(Format::Text.explains(false));
        assert!(!Format::Text.explains(true));
        assert!(Format::Json.explains(true));
        assert!(Format::Json.explains(false));
    }

    #[test]
    fn success_shows_the_return_value() {
        let e = sample(0x1000, 4096, 0, 0);
        assert!(text(&e).contains("madvise(0x1000, 4096, MADV_NORMAL) = 0 <"));
    }

    #[test]
    fn a_threads_repeated_failure_is_explained_once() {
        let mut annotator = Annotator::new(HostFacts::unknown());
        let mut f = Formatter::new(Format::Text, Clock { boot_epoch_ns: 0 });
        let e = sample(0x7f06e7f30001, 4096, 15, -22);
        let mut lines = |e: &Event| {
            let note = annotator.annotate(e);
            let mut s = String::new();
            f.write_annotated(&mut s, e, note.as_ref());
            s.lines().count()
        };
        assert_eq!(lines(&e), 2, "the call and its cause");
        assert_eq!(lines(&e), 1, "the same failure again: the call alone");
        let mut other_thread = e;
        other_thread.tid += 1;
        assert_eq!(lines(&other_thread), 2);
        assert_eq!(lines(&sample(0x1000, 4096, 9999, -22)), 2);
        assert_eq!(lines(&e), 2, "after another failure it is explained again");
    }

    /// The first example in docs/json.md has exactly the fields, with the
    /// same JSON types, that the formatter writes.
    #[test]
    fn documented_example_matches_real_output() {
        let doc = include_str!("../../docs/json.md");
        let example = doc
            .lines()
            .find(|l| l.starts_with("{\"schema\""))
            .expect("docs/json.md has an example line");
        let documented: serde_json::Value = serde_json::from_str(example).unwrap();
        // Like the example: a misaligned start, its area captured.
        let mut e = sample(0x7f06e7f30001, 4096, 15, -22);
        e.area = crate::event::AreaRaw {
            start: 0x7f06e7f30000,
            end: 0x7f06e7f34000,
            vm_flags: 0x3,
            gap: 0,
            status: area::LOOKED_UP | area::START_MAPPED | area::FULLY_MAPPED,
        };
        let mut annotator = Annotator::new(HostFacts::unknown());
        let note = annotator.annotate(&e);
        let mut f = Formatter::new(Format::Json, Clock { boot_epoch_ns: 0 });
        let mut s = String::new();
        f.write_annotated(&mut s, &e, note.as_ref());
        let real: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(real["cause_code"], "misaligned_start", "{s}");
        let (doc, real) = (documented.as_object().unwrap(), real.as_object().unwrap());
        let keys =
            |m: &serde_json::Map<String, serde_json::Value>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            keys(doc),
            keys(real),
            "docs/json.md and the formatter disagree on fields"
        );
        for (k, v) in doc {
            let kind = |v: &serde_json::Value| std::mem::discriminant(v);
            assert_eq!(
                kind(v),
                kind(&real[k]),
                "field {k}: {v} in the docs, {} written",
                real[k]
            );
        }
        assert_eq!(documented["schema"], JSON_SCHEMA_VERSION);
    }

    #[test]
    fn host_prefixes_text_and_is_a_json_field() {
        let e = sample(0x7f06e7f30000, 4096, 15, -22);
        let mut f = Formatter::new(Format::Text, Clock { boot_epoch_ns: 0 });
        f.set_host(Some("node-a".into()));
        let mut s = String::new();
        f.write(&mut s, &e);
        assert!(s.starts_with("node-a "), "{s}");
        assert!(s.ends_with("criu[4242/4250] madvise(0x7f06e7f30000, 4096, MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument) <0.000004>\n"), "{s}");

        let mut f = Formatter::new(Format::Json, Clock { boot_epoch_ns: 0 });
        f.set_host(Some("node-a".into()));
        f.set_clock(Clock {
            boot_epoch_ns: 1_000_000_000,
        });
        let mut s = String::new();
        f.write(&mut s, &e);
        assert!(s.starts_with("{\"schema\":1,\"host\":\"node-a\","), "{s}");
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["time"], "1970-01-01T00:00:02.000000000Z");
    }

    /// The merged-report example in docs/json.md is real output with a host.
    #[test]
    fn documented_report_example_matches_real_output() {
        let doc = include_str!("../../docs/json.md");
        let example = doc
            .lines()
            .find(|l| l.starts_with("{\"schema\":1,\"host\""))
            .expect("docs/json.md has an example of a merged report");
        let documented: serde_json::Value = serde_json::from_str(example).unwrap();
        let mut f = Formatter::new(Format::Json, Clock { boot_epoch_ns: 0 });
        f.set_host(Some("node-a".into()));
        let mut s = String::new();
        f.write(&mut s, &sample(0x7f06e7f30000, 4096, 15, -22));
        let real: serde_json::Value = serde_json::from_str(&s).unwrap();
        let keys =
            |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&documented), keys(&real));
    }

    #[test]
    fn json_has_raw_and_named_fields() {
        let mut f = Formatter::new(Format::Json, Clock { boot_epoch_ns: 0 });
        let mut s = String::new();
        f.write(&mut s, &sample(0x7f06e7f30000, 4096, 15, -22));
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["time"], "1970-01-01T00:00:01.000000000Z");
        assert_eq!(v["advice"], 15);
        assert_eq!(v["advice_name"], "MADV_NOHUGEPAGE");
        assert_eq!(v["errno"], 22);
        assert_eq!(v["errno_name"], "EINVAL");
        assert_eq!(v["start"], 0x7f06e7f30000u64);
        assert_eq!(v["pid"], 4242);
        assert_eq!(v["comm"], "criu");
        assert!(v.get("pidfd").is_none());
        assert!(s.ends_with('\n') && s.matches('\n').count() == 1);
    }
}
