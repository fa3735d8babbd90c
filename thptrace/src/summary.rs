//! The end-of-run summary: calls per comm x syscall x advice x errno, most
//! frequent first, and the kernel counters that say whether anything was
//! missed.

use std::collections::HashMap;
use std::fmt::Write;

use crate::decode::{advice_name, errno_name};
use crate::event::{COMM_MAX, Event, KernelCounters, Syscall, comm_str};
use crate::explain::{Explanation, ExplanationKind};
use thptrace_common::COMM_LEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    comm: [u8; COMM_LEN],
    syscall: Syscall,
    advice: i32,
    /// 0 for success.
    errno: i32,
    /// Index into `Summary::causes` of the cause (0: none known).
    cause: u16,
}

/// Counts events as they are shown.
pub struct Summary {
    counts: HashMap<Key, u64>,
    /// Runs of events with the same key (the usual case in a burst) are
    /// counted here before they reach the map, which saves hashing each one.
    run: Option<(Key, u64)>,
    events: u64,
    /// Cause codes seen; index 0 is "no single cause".
    causes: Vec<String>,
}

/// One row of the summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub count: u64,
    pub comm: String,
    pub syscall: Syscall,
    pub advice: i32,
    /// `None` for calls that succeeded.
    pub errno: Option<i32>,
    /// The cause code when the events' explanation named one, `possible`
    /// when it listed several.
    pub cause: Option<String>,
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            counts: HashMap::new(),
            run: None,
            events: 0,
            causes: vec![String::new()],
        }
    }
}

impl Summary {
    pub fn add(&mut self, e: &Event) {
        self.add_with_cause(e, None);
    }

    /// Counts an event under its explanation's cause as well.
    pub fn add_with_cause(&mut self, e: &Event, explanation: Option<&Explanation>) {
        let code = explanation.map(|x| match &x.kind {
            ExplanationKind::Single(c) => c.code.as_str(),
            ExplanationKind::Possible(_) => "possible",
            ExplanationKind::Unknown => "unknown",
        });
        let cause = match code {
            None => 0,
            Some(code) => match self.causes.iter().position(|c| c == code) {
                Some(i) => i as u16,
                None if self.causes.len() < u16::MAX as usize => {
                    self.causes.push(code.to_string());
                    (self.causes.len() - 1) as u16
                }
                None => 0,
            },
        };
        let key = Key {
            comm: e.comm,
            syscall: e.syscall,
            advice: e.advice,
            errno: e.errno().unwrap_or(0),
            cause,
        };
        self.events += 1;
        match &mut self.run {
            Some((k, n)) if *k == key => *n += 1,
            run => {
                if let Some((k, n)) = run.replace((key, 1)) {
                    *self.counts.entry(k).or_insert(0) += n;
                }
            }
        }
    }

    /// How many events were added.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The rows, most frequent first; ties in a stable order.
    pub fn rows(&self) -> Vec<Row> {
        let mut counts = self.counts.clone();
        if let Some((k, n)) = self.run {
            *counts.entry(k).or_insert(0) += n;
        }
        let mut rows: Vec<(Key, u64)> = counts.into_iter().collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        rows.into_iter()
            .map(|(k, count)| Row {
                count,
                comm: comm_str(&k.comm).into_owned(),
                syscall: k.syscall,
                advice: k.advice,
                errno: (k.errno != 0).then_some(k.errno),
                cause: (k.cause != 0).then(|| self.causes[k.cause as usize].clone()),
            })
            .collect()
    }

    /// The summary as text. `counters` is `None` where the kernel's counters
    /// are not known (a capture without them).
    pub fn render(&self, counters: Option<&KernelCounters>, buffer_hint: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\nthptrace summary: {} calls shown", self.events);
        if self.events > 0 {
            let _ = writeln!(
                out,
                "{:>9}  {:<w$}  {:<15}  {:<20}  {:<8}  CAUSE",
                "COUNT",
                "COMM",
                "SYSCALL",
                "ADVICE",
                "RESULT",
                w = COMM_MAX
            );
            for row in self.rows() {
                let advice =
                    advice_name(row.advice).map_or_else(|| row.advice.to_string(), str::to_string);
                let result = match row.errno {
                    None => "ok".to_string(),
                    Some(e) => errno_name(e).map_or_else(|| format!("errno {e}"), str::to_string),
                };
                let _ = writeln!(
                    out,
                    "{:>9}  {:<w$}  {:<15}  {:<20}  {result:<8}  {}",
                    row.count,
                    row.comm,
                    row.syscall.name(),
                    advice,
                    row.cause.as_deref().unwrap_or("-"),
                    w = COMM_MAX
                );
            }
        }
        if let Some(c) = counters {
            let _ = writeln!(
                out,
                "kernel counters: {} calls from traced processes, {} failed, {} events sent, {} lost, {} restarted, {} without a duration",
                c.calls, c.failures, c.sent, c.lost, c.restarts, c.no_duration
            );
            if c.lost > 0 {
                let _ = writeln!(
                    out,
                    "WARNING: {} EVENTS WERE LOST: the ring buffer was full, so the calls above are incomplete. {buffer_hint}",
                    c.lost
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{comm_from_str, tests::sample};

    #[test]
    fn rows_are_grouped_and_sorted_by_count() {
        let mut s = Summary::default();
        for _ in 0..3 {
            s.add(&sample(0x1000, 4096, 15, -22));
        }
        s.add(&sample(0x1000, 4096, 9999, -22));
        let mut other = sample(0x1000, 4096, 15, -12);
        other.comm = comm_from_str("restorer");
        s.add(&other);
        s.add(&other);
        let rows = s.rows();
        assert_eq!(s.events(), 6);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[0].count, rows[0].advice, rows[0].errno),
            (3, 15, Some(22))
        );
        assert_eq!((rows[1].count, rows[1].comm.as_str()), (2, "restorer"));
        assert_eq!((rows[2].count, rows[2].advice), (1, 9999));
    }

    #[test]
    fn render_names_values_and_warns_about_loss() {
        let mut s = Summary::default();
        s.add(&sample(0x1000, 4096, 15, -22));
        s.add(&sample(0x1000, 4096, 0, 0));
        let counters = KernelCounters {
            calls: 10,
            failures: 5,
            sent: 4,
            lost: 1,
            ..Default::default()
        };
        let text = s.render(Some(&counters), "raise --buffer-size");
        assert!(text.contains("MADV_NOHUGEPAGE"), "{text}");
        assert!(text.contains("EINVAL"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.contains("MADV_NORMAL") && l.contains(" ok ")),
            "{text}"
        );
        assert!(text.contains("10 calls from traced processes, 5 failed, 4 events sent, 1 lost"));
        assert!(
            text.contains("WARNING: 1 EVENTS WERE LOST") && text.contains("raise --buffer-size")
        );
        let quiet = Summary::default().render(Some(&KernelCounters::default()), "");
        assert!(!quiet.contains("WARNING"), "{quiet}");
    }
}
