//! Reads one madvise call as other tools write it, for `thptrace explain TEXT`:
//! a person pastes the line CRIU, strace, perf trace or thptrace printed, and
//! gets the cause without tracing anything.
//!
//! Each tool prints the same call differently (numbers or names, named or
//! positional arguments, `failed with -22` or `= -1 EINVAL`), so the parser
//! finds the call by its name and parenthesised arguments, and reads the
//! result after them; whatever precedes the call (timestamps, pids, CRIU's
//! `Error (file:line):`) is only mined for the process.

use std::fmt;

use crate::decode::{parse_advice, parse_errno};
use crate::event::Syscall;
use crate::explain::Call;

/// Which tool's way of writing the call the text was in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallForm {
    /// `madvise(0x7f06e7f30000, 4096, 15) failed with -22`
    Criu,
    /// `madvise(0x7f06e7f30000, 4096, MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument)`
    Strace,
    /// `madvise(start: 0x7f06e7f30000, len_in: 4096, behavior: MADV_NOHUGEPAGE) = -1 EINVAL ...`
    PerfTrace,
    /// `12:04:33.120512 criu[4242/4250] madvise(...) = -1 EINVAL (Invalid argument) <0.000004>`
    Thptrace,
    /// `15 EINVAL`: advice then errno.
    Short,
}

/// One call read from text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCall {
    pub form: CallForm,
    pub syscall: Syscall,
    /// madvise's start, or process_madvise's first iovec base, when given.
    pub start: Option<u64>,
    pub len: Option<u64>,
    pub advice: i32,
    /// The positive errno.
    pub errno: i32,
    pub comm: Option<String>,
    /// The process (or, for strace and perf, thread) id the tool printed.
    pub pid: Option<u32>,
    /// The thread id, where the tool printed both (thptrace).
    pub tid: Option<u32>,
    /// process_madvise only.
    pub pidfd: Option<i32>,
    pub vlen: Option<u64>,
    pub flags: Option<u32>,
}

impl ParsedCall {
    /// The call for [`crate::explain`]. Whether a process_madvise target was
    /// another process cannot be told from text, so `remote` is unknown.
    pub fn call(&self) -> Call {
        Call {
            syscall: self.syscall,
            start: self.start,
            len: self.len,
            advice: self.advice,
            errno: self.errno,
            remote: None,
            flags: self.flags,
            vlen: self.vlen,
        }
    }
}

/// Why text could not be read as a call. Every variant keeps the text; the
/// message lists the accepted forms with an example of each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallParseError {
    Empty,
    /// Neither a `madvise(...)`/`process_madvise(...)` call nor `ADVICE ERRNO`.
    NoCall {
        text: String,
    },
    /// The arguments are not what the call takes.
    BadArguments {
        text: String,
        detail: String,
    },
    /// The advice is neither a name nor a number.
    UnknownAdvice {
        text: String,
        advice: String,
    },
    /// The call has no result (`failed with -22`, `= -1 EINVAL`).
    NoResult {
        text: String,
    },
    /// The result does not name or number an errno.
    UnknownErrno {
        text: String,
        errno: String,
    },
    /// The call succeeded: there is nothing to explain.
    NotAFailure {
        text: String,
    },
}

/// The forms [`parse_call`] accepts, each with an example.
pub const ACCEPTED_FORMS: &[(&str, &str)] = &[
    ("CRIU", "madvise(0x7f06e7f30000, 4096, 15) failed with -22"),
    (
        "strace",
        "madvise(0x7f06e7f30000, 4096, MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument)",
    ),
    (
        "perf trace",
        "madvise(start: 0x7f06e7f30000, len_in: 4096, behavior: MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument)",
    ),
    (
        "thptrace",
        "12:04:33.120512 criu[4242/4250] madvise(0x7f06e7f30000, 4096, MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument) <0.000004>",
    ),
    (
        "process_madvise",
        "process_madvise(3, [{iov_base=0x7f06e7f30000, iov_len=4096}], 1, MADV_COLD, 0) = -1 EINVAL (Invalid argument)",
    ),
    ("short", "15 EINVAL   or   MADV_NOHUGEPAGE -22"),
];

impl fmt::Display for CallParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallParseError::Empty => write!(f, "no call given")?,
            CallParseError::NoCall { text } => write!(f, "cannot find a madvise call in `{text}`")?,
            CallParseError::BadArguments { text, detail } => {
                write!(f, "cannot read the arguments of `{text}`: {detail}")?
            }
            CallParseError::UnknownAdvice { text, advice } if advice.is_empty() => write!(
                f,
                "`{text}` gives no advice (perf trace leaves it empty for values it has no name for; strace or thptrace print the number)"
            )?,
            CallParseError::UnknownAdvice { text, advice } => {
                write!(f, "`{advice}` in `{text}` is not an advice name or number")?
            }
            CallParseError::NoResult { text } => write!(
                f,
                "`{text}` does not say how the call failed (`failed with -22` or `= -1 EINVAL`)"
            )?,
            CallParseError::UnknownErrno { text, errno } => {
                write!(f, "`{errno}` in `{text}` is not an errno name or number")?
            }
            CallParseError::NotAFailure { text } => {
                write!(f, "`{text}` did not fail: there is nothing to explain")?
            }
        }
        write!(f, "\naccepted forms:")?;
        for (name, example) in ACCEPTED_FORMS {
            write!(f, "\n  {:<16} {example}", format!("{name}:"))?;
        }
        Ok(())
    }
}

impl std::error::Error for CallParseError {}

/// Reads one call; see [`ACCEPTED_FORMS`].
pub fn parse_call(text: &str) -> Result<ParsedCall, CallParseError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(CallParseError::Empty);
    }
    let Some((syscall, at)) = find_call(text) else {
        return parse_short(text);
    };
    let own = || text.to_string();
    let open = at + syscall.name().len();
    let close = closing_paren(text, open).ok_or_else(|| CallParseError::BadArguments {
        text: own(),
        detail: "no closing parenthesis".into(),
    })?;
    let args: Vec<Arg> = split_args(&text[open + 1..close])
        .into_iter()
        .map(Arg::new)
        .collect();
    let named = args.iter().any(|a| a.name.is_some());
    let prefix = &text[..at];
    let rest = &text[close + 1..];

    let mut call = ParsedCall {
        form: CallForm::Strace,
        syscall,
        start: None,
        len: None,
        advice: 0,
        errno: 0,
        comm: None,
        pid: None,
        tid: None,
        pidfd: None,
        vlen: None,
        flags: None,
    };
    let bad = |detail: String| CallParseError::BadArguments {
        text: own(),
        detail,
    };
    let advice_text = match syscall {
        Syscall::Madvise => {
            if args.len() != 3 {
                return Err(bad(format!(
                    "madvise takes 3 arguments (start, length, advice), not {}",
                    args.len()
                )));
            }
            let start = pick(&args, 0, &["start", "addr"]);
            let len = pick(&args, 1, &["len_in", "len", "length"]);
            call.start =
                Some(parse_u64(start).ok_or_else(|| bad(format!("`{start}` is not an address")))?);
            call.len = Some(parse_u64(len).ok_or_else(|| bad(format!("`{len}` is not a length")))?);
            pick(&args, 2, &["behavior", "advice"])
        }
        Syscall::ProcessMadvise => {
            if args.len() != 5 {
                return Err(bad(format!(
                    "process_madvise takes 5 arguments (pidfd, iovec, count, advice, flags), not {}",
                    args.len()
                )));
            }
            let pidfd = pick(&args, 0, &["pidfd"]);
            call.pidfd = Some(
                parse_u64(pidfd)
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(|| bad(format!("`{pidfd}` is not a pidfd")))?,
            );
            (call.start, call.len) = first_iovec(pick(&args, 1, &["vec", "iovec"]));
            let vlen = pick(&args, 2, &["vlen"]);
            call.vlen =
                Some(parse_u64(vlen).ok_or_else(|| bad(format!("`{vlen}` is not a count")))?);
            let flags = pick(&args, 4, &["flags"]);
            call.flags = Some(
                parse_u64(flags)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| bad(format!("`{flags}` is not a flags value")))?,
            );
            pick(&args, 3, &["behavior", "advice"])
        }
    };
    call.advice = parse_advice(advice_text).ok_or_else(|| CallParseError::UnknownAdvice {
        text: own(),
        advice: advice_text.to_string(),
    })?;

    let (form, errno) = read_result(text, rest)?;
    call.errno = errno;
    call.form = if form == CallForm::Criu {
        CallForm::Criu
    } else if named {
        CallForm::PerfTrace
    } else {
        CallForm::Strace
    };
    read_prefix(prefix, &mut call);
    Ok(call)
}

/// `ADVICE ERRNO`, e.g. `15 EINVAL` or `MADV_NOHUGEPAGE -22`.
fn parse_short(text: &str) -> Result<ParsedCall, CallParseError> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let [advice, errno] = words.as_slice() else {
        return Err(CallParseError::NoCall {
            text: text.to_string(),
        });
    };
    let advice_value = parse_advice(advice);
    let errno_value = parse_errno(errno);
    match (advice_value, errno_value) {
        (Some(advice), Some(errno)) => Ok(ParsedCall {
            form: CallForm::Short,
            syscall: Syscall::Madvise,
            start: None,
            len: None,
            advice,
            errno,
            comm: None,
            pid: None,
            tid: None,
            pidfd: None,
            vlen: None,
            flags: None,
        }),
        // Two words neither of which reads: not an attempt at this form.
        (None, None) => Err(CallParseError::NoCall {
            text: text.to_string(),
        }),
        (None, Some(_)) => Err(CallParseError::UnknownAdvice {
            text: text.to_string(),
            advice: advice.to_string(),
        }),
        (Some(_), None) => Err(CallParseError::UnknownErrno {
            text: text.to_string(),
            errno: errno.to_string(),
        }),
    }
}

/// Where the call's name starts: `process_madvise(` or `madvise(` not part
/// of a longer name.
fn find_call(text: &str) -> Option<(Syscall, usize)> {
    for syscall in [Syscall::ProcessMadvise, Syscall::Madvise] {
        let needle = format!("{}(", syscall.name());
        let mut from = 0;
        while let Some(i) = text[from..].find(&needle) {
            let at = from + i;
            let before = text[..at].chars().next_back();
            if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Some((syscall, at));
            }
            from = at + needle.len();
        }
    }
    None
}

/// The index of the `)` closing the `(` at `open`, skipping nested brackets
/// and `/* comments */` (strace's `/* MADV_??? */`).
fn closing_paren(text: &str, open: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"/*") {
            i += text[i..].find("*/")? + 2;
            continue;
        }
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return (bytes[i] == b')').then_some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The arguments, split at top-level commas, comments removed.
fn split_args(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    let mut rest = args;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            rest = &rest[end..];
            continue;
        }
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                rest = &rest[1..];
                continue;
            }
            _ => {}
        }
        cur.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if !cur.trim().is_empty() || !out.is_empty() {
        out.push(cur);
    }
    out
}

/// One argument, with perf trace's `name: ` taken off.
struct Arg {
    name: Option<String>,
    value: String,
}

impl Arg {
    fn new(raw: String) -> Arg {
        let raw = raw.trim();
        if let Some((name, value)) = raw.split_once(':')
            && !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        {
            return Arg {
                name: Some(name.to_string()),
                value: value.trim().to_string(),
            };
        }
        Arg {
            name: None,
            value: raw.to_string(),
        }
    }
}

/// The argument called one of `names`, else the one at `index`.
fn pick<'a>(args: &'a [Arg], index: usize, names: &[&str]) -> &'a str {
    args.iter()
        .find(|a| a.name.as_deref().is_some_and(|n| names.contains(&n)))
        .unwrap_or(&args[index])
        .value
        .as_str()
}

/// strace's `[{iov_base=0x7f06e7f30000, iov_len=4096}, ...]`: the first
/// iovec. A bare pointer (perf trace) tells neither.
fn first_iovec(vec: &str) -> (Option<u64>, Option<u64>) {
    let field = |name: &str| {
        let i = vec.find(name)? + name.len();
        let v = &vec[i..];
        let end = v.find([',', '}', ']']).unwrap_or(v.len());
        parse_u64(v[..end].trim())
    };
    (field("iov_base="), field("iov_len="))
}

/// Decimal or `0x` hexadecimal, the whole u64 range (addresses above
/// i64::MAX included).
fn parse_u64(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok();
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The errno after the call: CRIU's `failed with -22`, or `= -1 EINVAL`,
/// `= ? ERESTARTSYS`, `= -22`.
fn read_result(text: &str, rest: &str) -> Result<(CallForm, i32), CallParseError> {
    let unknown = |errno: &str| CallParseError::UnknownErrno {
        text: text.to_string(),
        errno: errno.to_string(),
    };
    if let Some(i) = rest.find("failed with") {
        let word = rest[i + "failed with".len()..]
            .split_whitespace()
            .next()
            .unwrap_or("");
        let word = word.trim_end_matches([',', '.', ':', ';']);
        return match parse_errno(word) {
            Some(e) => Ok((CallForm::Criu, e)),
            None if word == "0" => Err(CallParseError::NotAFailure {
                text: text.to_string(),
            }),
            None => Err(unknown(word)),
        };
    }
    let Some(i) = rest.find('=') else {
        return Err(CallParseError::NoResult {
            text: text.to_string(),
        });
    };
    let mut words = rest[i + 1..].split_whitespace();
    let first = words.next().unwrap_or("");
    match first {
        "-1" | "?" => {
            let name = words.next().unwrap_or("");
            parse_errno(name)
                .map(|e| (CallForm::Strace, e))
                .ok_or_else(|| unknown(name))
        }
        _ if first.starts_with('-') => parse_errno(first)
            .map(|e| (CallForm::Strace, e))
            .ok_or_else(|| unknown(first)),
        _ if parse_u64(first).is_some() => Err(CallParseError::NotAFailure {
            text: text.to_string(),
        }),
        _ => Err(unknown(first)),
    }
}

/// What the text before the call says of the process: thptrace's
/// `comm[pid/tid]`, perf trace's `comm/tid`, strace's `[pid N]` or leading
/// pid, CRIU's `pie: N:`.
fn read_prefix(prefix: &str, call: &mut ParsedCall) {
    let words: Vec<&str> = prefix.split_whitespace().collect();
    if let Some(last) = words.last() {
        if let Some((comm, ids)) = last.strip_suffix(']').and_then(|s| s.split_once('['))
            && !comm.is_empty()
        {
            let (pid, tid) = ids.split_once('/').unwrap_or((ids, ""));
            if let Ok(pid) = pid.parse() {
                call.form = CallForm::Thptrace;
                call.comm = Some(comm.to_string());
                call.pid = Some(pid);
                call.tid = tid.parse().ok();
                return;
            }
        }
        if call.form == CallForm::PerfTrace
            && let Some((comm, tid)) = last.rsplit_once('/')
            && let Ok(tid) = tid.parse()
        {
            call.comm = Some(comm.to_string());
            call.pid = Some(tid);
            return;
        }
    }
    for (i, w) in words.iter().enumerate() {
        // strace -f: `[pid  4242] madvise(...)`.
        if *w == "[pid"
            && let Some(n) = words
                .get(i + 1)
                .and_then(|n| n.trim_end_matches(']').parse().ok())
        {
            call.pid = Some(n);
            return;
        }
        // CRIU's restorer: `pie: 4242: Error (...)`.
        if *w == "pie:"
            && let Some(n) = words
                .get(i + 1)
                .and_then(|n| n.trim_end_matches(':').parse().ok())
        {
            call.pid = Some(n);
            return;
        }
    }
    // strace -f written to a file: `4242  12:04:33.120512 madvise(...)`.
    if call.form == CallForm::Strace
        && let Some(n) = words.first().and_then(|w| w.parse().ok())
    {
        call.pid = Some(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: u64 = 0x7f06_e7f3_0000;

    fn ok(text: &str) -> ParsedCall {
        parse_call(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn abc(p: &ParsedCall) -> (Option<u64>, Option<u64>, i32, i32) {
        (p.start, p.len, p.advice, p.errno)
    }

    #[test]
    fn criu() {
        let p = ok("madvise(0x7f06e7f30000, 4096, 15) failed with -22");
        assert_eq!(p.form, CallForm::Criu);
        assert_eq!(p.syscall, Syscall::Madvise);
        assert_eq!(abc(&p), (Some(START), Some(4096), 15, 22));
        assert_eq!((p.comm, p.pid), (None, None));
        let p = ok(
            "Error (criu/pie/restorer.c:123): madvise(0x7f06e7f30000, 4096, 15) failed with -22",
        );
        assert_eq!(p.form, CallForm::Criu);
        assert_eq!(abc(&p), (Some(START), Some(4096), 15, 22));
        let p = ok(
            "pie: 4242: Error (criu/pie/restorer.c:123): madvise(0x7f06e7f30000, 4096, 14) failed with -22",
        );
        assert_eq!(p.pid, Some(4242));
        assert_eq!(p.advice, 14);
    }

    #[test]
    fn strace_forms() {
        let p = ok("madvise(0x7f06e7f30000, 4096, MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument)");
        assert_eq!(p.form, CallForm::Strace);
        assert_eq!(abc(&p), (Some(START), Some(4096), 15, 22));
        let p = ok(
            "4242  12:04:33.120512 madvise(0x7f06e7f30000, 8192, MADV_DONTNEED) = -1 ENOMEM (Cannot allocate memory) <0.000004>",
        );
        assert_eq!(abc(&p), (Some(START), Some(8192), 4, 12));
        assert_eq!(p.pid, Some(4242));
        let p = ok(
            "[pid  4250] madvise(0x7f06e7f30000, 4096, 0x270f /* MADV_??? */) = -1 EINVAL (Invalid argument)",
        );
        assert_eq!(abc(&p), (Some(START), Some(4096), 9999, 22));
        assert_eq!(p.pid, Some(4250));
        let p = ok(
            "madvise(0x7f06e7f30000, 4096, MADV_DONTNEED) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)",
        );
        assert_eq!(p.errno, 512);
        // A raw kernel return value, as bpftrace users print it.
        assert_eq!(ok("madvise(0x1000, 4096, 25) = -22").errno, 22);
        // Addresses above i64::MAX are read whole.
        assert_eq!(
            ok("madvise(0xfffffffffffff000, 0x2000, 0) = -1 EINVAL (Invalid argument)").start,
            Some(0xffff_ffff_ffff_f000)
        );
    }

    #[test]
    fn perf_trace_forms() {
        let p = ok(
            "madvise(start: 0x7f06e7f30000, len_in: 4096, behavior: MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument)",
        );
        assert_eq!(p.form, CallForm::PerfTrace);
        assert_eq!(abc(&p), (Some(START), Some(4096), 15, 22));
        let p = ok(
            "     0.123 ( 0.004 ms): criu/4242 madvise(start: 0x7f06e7f30000, len_in: 4096, behavior: MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument)",
        );
        assert_eq!(p.form, CallForm::PerfTrace);
        assert_eq!((p.comm.as_deref(), p.pid), (Some("criu"), Some(4242)));
        assert_eq!(abc(&p), (Some(START), Some(4096), 15, 22));
        // perf leaves the advice empty for values it has no name for.
        let e = parse_call("madvise(start: 0x7f06e7f30000, len_in: 4096, behavior: ) = -1 EINVAL (Invalid argument)").unwrap_err();
        assert!(matches!(&e, CallParseError::UnknownAdvice { advice, .. } if advice.is_empty()));
        assert!(e.to_string().starts_with("`madvise(start: 0x7f06e7f30000, len_in: 4096, behavior: ) = -1 EINVAL (Invalid argument)` gives no advice (perf trace leaves it empty"), "{e}");
    }

    #[test]
    fn thptrace_form() {
        let p = ok(
            "12:04:33.120512 criu[4242/4250] madvise(0x7f06e7f30000, 4096, MADV_NOHUGEPAGE) = -1 EINVAL (Invalid argument) <0.000004>",
        );
        assert_eq!(p.form, CallForm::Thptrace);
        assert_eq!(abc(&p), (Some(START), Some(4096), 15, 22));
        assert_eq!(
            (p.comm.as_deref(), p.pid, p.tid),
            (Some("criu"), Some(4242), Some(4250))
        );
        let p = ok(
            "12:04:33.120512 stress-ng[77] madvise(0x1000, 4096, 9) = -1 EACCES (Permission denied)",
        );
        assert_eq!(
            (p.comm.as_deref(), p.pid, p.tid),
            (Some("stress-ng"), Some(77), None)
        );
    }

    #[test]
    fn process_madvise_forms() {
        let p = ok(
            "process_madvise(3, [{iov_base=0x7f06e7f30000, iov_len=4096}, {iov_base=0x1000, iov_len=1}], 2, MADV_COLD, 0) = -1 EINVAL (Invalid argument)",
        );
        assert_eq!(p.syscall, Syscall::ProcessMadvise);
        assert_eq!(abc(&p), (Some(START), Some(4096), 20, 22));
        assert_eq!((p.pidfd, p.vlen, p.flags), (Some(3), Some(2), Some(0)));
        let c = p.call();
        assert_eq!((c.remote, c.vlen, c.flags), (None, Some(2), Some(0)));
        let p = ok(
            "process_madvise(pidfd: 5, vec: 0x7ffd12345678, vlen: 1, behavior: MADV_PAGEOUT, flags: 1) = -1 EINVAL (Invalid argument)",
        );
        assert_eq!(p.form, CallForm::PerfTrace);
        assert_eq!(abc(&p), (None, None, 21, 22));
        assert_eq!((p.pidfd, p.flags), (Some(5), Some(1)));
        let e = parse_call("process_madvise(3, 0x1, MADV_COLD) = -1 EINVAL (Invalid argument)")
            .unwrap_err();
        assert_eq!(
            e,
            CallParseError::BadArguments {
                text: "process_madvise(3, 0x1, MADV_COLD) = -1 EINVAL (Invalid argument)".into(),
                detail:
                    "process_madvise takes 5 arguments (pidfd, iovec, count, advice, flags), not 3"
                        .into(),
            }
        );
    }

    #[test]
    fn short_forms() {
        for text in [
            "15 EINVAL",
            "MADV_NOHUGEPAGE -22",
            "nohugepage einval",
            "0xf, 22",
        ] {
            let p = ok(text);
            assert_eq!(p.form, CallForm::Short, "{text}");
            assert_eq!(abc(&p), (None, None, 15, 22), "{text}");
        }
        assert_eq!(ok("9999 EINVAL").advice, 9999);
    }

    #[test]
    fn garbage_is_refused_with_the_forms_listed() {
        assert_eq!(parse_call("   "), Err(CallParseError::Empty));
        let e = parse_call("hello world again").unwrap_err();
        assert_eq!(
            e,
            CallParseError::NoCall {
                text: "hello world again".into()
            }
        );
        let msg = e.to_string();
        assert!(msg.starts_with("cannot find a madvise call in `hello world again`\naccepted forms:\n  CRIU:            madvise(0x7f06e7f30000, 4096, 15) failed with -22\n  strace:          madvise(0x7f06e7f30000, 4096, MADV_NOHUGEPAGE) = -1 EINVAL"), "{msg}");
        assert!(
            msg.contains("\n  short:           15 EINVAL   or   MADV_NOHUGEPAGE -22"),
            "{msg}"
        );
        assert!(
            matches!(parse_call("MADV_BOGUS EINVAL"), Err(CallParseError::UnknownAdvice { advice, .. }) if advice == "MADV_BOGUS")
        );
        assert!(
            matches!(parse_call("15 EBOGUS"), Err(CallParseError::UnknownErrno { errno, .. }) if errno == "EBOGUS")
        );
        assert!(matches!(
            parse_call("madvise(0x1000, 4096, 15"),
            Err(CallParseError::BadArguments { .. })
        ));
        assert!(matches!(
            parse_call("madvise(0x1000, 4096)"),
            Err(CallParseError::BadArguments { .. })
        ));
        assert!(
            matches!(parse_call("madvise(zzz, 4096, 15) = -1 EINVAL"), Err(CallParseError::BadArguments { detail, .. }) if detail == "`zzz` is not an address")
        );
        assert!(matches!(
            parse_call("madvise(0x1000, 4096, 15)"),
            Err(CallParseError::NoResult { .. })
        ));
        assert!(matches!(
            parse_call("madvise(0x1000, 4096, 15) = 0"),
            Err(CallParseError::NotAFailure { .. })
        ));
        assert!(
            matches!(parse_call("madvise(0x1000, 4096, 15) = -1 EWHAT (x)"), Err(CallParseError::UnknownErrno { errno, .. }) if errno == "EWHAT")
        );
        // Another function whose name ends in madvise is not the call.
        assert!(matches!(
            parse_call("posix_madvise(0x1000, 4096, 4) = 0"),
            Err(CallParseError::NoCall { .. })
        ));
    }

    #[test]
    fn criu_line_explained_end_to_end() {
        use crate::explain::{FactsOrigin, explain_with_context};
        use crate::host::{Fact, HostFacts};
        let p = ok(
            "Error (criu/pie/restorer.c:123): madvise(0x7f06e7f30000, 4096, 15) failed with -22",
        );
        let mut h = HostFacts::unknown();
        h.page_size = Some(4096);
        h.thp = Fact::no("/sys/kernel/mm/transparent_hugepage is absent");
        let e = explain_with_context(&p.call(), None, &h, h.page_size, FactsOrigin::ThisHost);
        assert_eq!(e.codes(), ["thp_not_built_in"]);
        assert!(
            e.single()
                .unwrap()
                .sentence
                .ends_with("see kernel commit 7190b3c8bd2b")
        );
        assert!(!e.other_kernel);
        h.thp = Fact::yes("/sys/kernel/mm/transparent_hugepage");
        let e = explain_with_context(&p.call(), None, &h, h.page_size, FactsOrigin::ThisHost);
        assert!(e.other_kernel);
        assert!(
            e.single()
                .unwrap()
                .sentence
                .starts_with("this host's kernel has transparent huge pages")
        );
    }
}
