//! Which calls to show: reading the filter options, and matching events
//! against them. Pid, tid, advice and errno filters also run in the kernel
//! (see [`crate::probe::ProbeConfig`]); matching here again is what lets the
//! same filters work on capture files, and is how `--comm` works live.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::decode::{advice_name, advice_table, parse_advice, parse_errno};
use crate::event::{COMM_MAX, Event};

/// The filters in force. Empty lists match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    pub pids: Vec<u32>,
    pub tids: Vec<u32>,
    pub comms: Vec<String>,
    pub advice: Vec<i32>,
    pub errnos: Vec<i32>,
    /// Successful calls too.
    pub all: bool,
}

/// A filter option that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterError {
    Id { option: &'static str, text: String },
    Advice(String),
    Errno(String),
    Comm(String),
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::Id { option, text } => write!(
                f,
                "{option}: `{text}` is not a process or thread id: give positive numbers separated by commas, e.g. {option} 4242,4250"
            ),
            FilterError::Advice(text) => {
                let names: Vec<&str> = advice_table().iter().map(|(_, n)| *n).collect();
                write!(
                    f,
                    "--advice: unknown advice `{text}`: give a name (MADV_NOHUGEPAGE or nohugepage) or a number; known names: {}",
                    names.join(", ")
                )
            }
            FilterError::Errno(text) => write!(
                f,
                "--errno: unknown errno `{text}`: give a name such as EINVAL or ENOMEM, or a number from 1 to 4095"
            ),
            FilterError::Comm(text) => write!(
                f,
                "--comm: `{text}` cannot match: give a process name of 1 to {COMM_MAX} bytes (longer ones are cut, as the kernel does)"
            ),
        }
    }
}

impl std::error::Error for FilterError {}

/// One id for -p and -t.
pub fn parse_id(option: &'static str, text: &str) -> Result<u32, FilterError> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| FilterError::Id {
            option,
            text: text.to_string(),
        })
}

/// One advice for --advice: `MADV_NOHUGEPAGE`, `nohugepage` or `15`. Numbers
/// with no name are allowed: tracing an advice this build does not know is
/// the point.
pub fn parse_advice_item(text: &str) -> Result<i32, FilterError> {
    parse_advice(text).ok_or_else(|| FilterError::Advice(text.to_string()))
}

/// One errno for --errno: `EINVAL`, `einval` or `22`.
pub fn parse_errno_item(text: &str) -> Result<i32, FilterError> {
    parse_errno(text).ok_or_else(|| FilterError::Errno(text.to_string()))
}

/// One process name for --comm. Longer names are cut to what the kernel
/// keeps, so `--comm a-very-long-process-name` still matches.
pub fn parse_comm(text: &str) -> Result<String, FilterError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(FilterError::Comm(text.to_string()));
    }
    let mut end = s.len().min(COMM_MAX);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Ok(s[..end].to_string())
}

impl Filters {
    /// Whether `event` passes every filter.
    pub fn matches(&self, event: &Event) -> bool {
        if !self.all && !event.failed() {
            return false;
        }
        if !self.pids.is_empty() && !self.pids.contains(&event.tgid) {
            return false;
        }
        self.matches_after_kernel(event)
    }

    /// What the kernel cannot check: run on live events, which already passed
    /// the kernel's pid, tid, advice and errno filters. (The pid filter is not
    /// repeated here because following forks adds pids the list lacks.)
    pub fn matches_after_kernel(&self, event: &Event) -> bool {
        if !self.tids.is_empty() && !self.tids.contains(&event.tid) {
            return false;
        }
        if !self.advice.is_empty() && !self.advice.contains(&event.advice) {
            return false;
        }
        if !self.errnos.is_empty() {
            match event.errno() {
                Some(e) if self.errnos.contains(&e) => {}
                Some(_) => return false,
                // Successes (with --all) have no errno to filter on.
                None => {}
            }
        }
        if !self.comms.is_empty() {
            let comm = event.comm();
            if !self.comms.iter().any(|c| *c == comm) {
                return false;
            }
        }
        true
    }

    /// A short description for headers and summaries: `pid 4242, advice
    /// MADV_NOHUGEPAGE`, or `none`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let join = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        if !self.pids.is_empty() {
            parts.push(format!("pid {}", join(&self.pids)));
        }
        if !self.tids.is_empty() {
            parts.push(format!("tid {}", join(&self.tids)));
        }
        if !self.comms.is_empty() {
            parts.push(format!("comm {}", self.comms.join(",")));
        }
        if !self.advice.is_empty() {
            let names: Vec<String> = self
                .advice
                .iter()
                .map(|&a| advice_name(a).map_or_else(|| a.to_string(), str::to_string))
                .collect();
            parts.push(format!("advice {}", names.join(",")));
        }
        if !self.errnos.is_empty() {
            let names: Vec<String> = self
                .errnos
                .iter()
                .map(|&e| {
                    crate::decode::errno_name(e).map_or_else(|| e.to_string(), str::to_string)
                })
                .collect();
            parts.push(format!("errno {}", names.join(",")));
        }
        if self.all {
            parts.push("successful calls too".to_string());
        }
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{comm_from_str, tests::sample};

    #[test]
    fn parses_items() {
        assert_eq!(parse_id("-p", " 42"), Ok(42));
        assert!(parse_id("-p", "x").is_err());
        assert!(parse_id("-p", "0").is_err());
        assert!(parse_id("-p", "").is_err());
        assert_eq!(parse_advice_item("MADV_NOHUGEPAGE"), Ok(15));
        assert_eq!(parse_advice_item("hugepage"), Ok(14));
        assert_eq!(parse_advice_item("9999"), Ok(9999));
        assert_eq!(
            parse_advice_item("bogus"),
            Err(FilterError::Advice("bogus".into()))
        );
        assert_eq!(parse_errno_item("enomem"), Ok(12));
        assert!(parse_errno_item("ENOPE").is_err());
        assert_eq!(
            parse_comm("a-very-long-process-name"),
            Ok("a-very-long-pro".to_string())
        );
        assert!(parse_comm(" ").is_err());
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = parse_advice_item("nohuge").unwrap_err().to_string();
        assert!(
            e.contains("`nohuge`") && e.contains("MADV_NOHUGEPAGE"),
            "{e}"
        );
        let e = parse_errno_item("EFOO").unwrap_err().to_string();
        assert!(e.contains("EFOO") && e.contains("EINVAL"), "{e}");
    }

    #[test]
    fn each_filter_matches_and_rejects() {
        let e = sample(0x1000, 4096, 15, -22);
        assert!(Filters::default().matches(&e));

        let f = |edit: fn(&mut Filters)| {
            let mut f = Filters::default();
            edit(&mut f);
            f.matches(&e)
        };
        assert!(f(|f| f.pids = vec![4242]));
        assert!(!f(|f| f.pids = vec![1]));
        assert!(f(|f| f.tids = vec![4250]));
        assert!(!f(|f| f.tids = vec![4242]));
        assert!(f(|f| f.comms = vec!["criu".into()]));
        assert!(!f(|f| f.comms = vec!["cri".into()]));
        assert!(f(|f| f.advice = vec![14, 15]));
        assert!(!f(|f| f.advice = vec![14]));
        assert!(f(|f| f.errnos = vec![22]));
        assert!(!f(|f| f.errnos = vec![12]));
    }

    #[test]
    fn successes_only_with_all() {
        let mut ok = sample(0x1000, 4096, 0, 0);
        ok.comm = comm_from_str("x");
        assert!(!Filters::default().matches(&ok));
        let all = Filters {
            all: true,
            errnos: vec![22],
            ..Default::default()
        };
        assert!(all.matches(&ok));
    }

    #[test]
    fn describes_itself() {
        let f = Filters {
            pids: vec![1, 2],
            advice: vec![15, 9999],
            errnos: vec![22],
            ..Default::default()
        };
        assert_eq!(
            f.describe(),
            "pid 1,2, advice MADV_NOHUGEPAGE,9999, errno EINVAL"
        );
        assert_eq!(Filters::default().describe(), "none");
    }
}
