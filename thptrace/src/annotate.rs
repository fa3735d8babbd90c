//! Explaining events as they are shown: the memory area the kernel captured,
//! decoded, and the cause the explanation engine finds for it against the
//! facts of the kernel the call ran on.
//!
//! A burst of failures usually repeats one call, and a live trace can see a
//! million a second: so an annotation, text included, is made once per
//! distinct call and then reused (the last one is checked first, before any
//! hashing).

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::{AreaRaw, Event, Syscall};
use crate::explain::{Area, Call, Explanation, ExplanationKind, FactsOrigin, explain_with_context};
use crate::host::HostFacts;

/// Bounds the memory of the cache: past this many distinct calls it starts
/// over.
const CACHE_LIMIT: usize = 4096;

/// One event's area and explanation, and the lines that show them under the
/// call in text output.
pub struct Annotation {
    pub area: Option<Area>,
    pub explanation: Explanation,
    /// `    area: ...` and `    cause: ...` lines, each ending in a newline.
    pub text: String,
}

/// Everything in an event an annotation depends on.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    syscall: Syscall,
    start: u64,
    len: u64,
    advice: i32,
    ret: i64,
    flags: u32,
    vlen: u64,
    iovec_unreadable: bool,
    area: AreaRaw,
}

impl Key {
    fn of(e: &Event) -> Key {
        Key {
            syscall: e.syscall,
            start: e.start,
            len: e.len,
            advice: e.advice,
            ret: e.ret,
            flags: e.flags,
            vlen: e.vlen,
            iovec_unreadable: e.iovec_unreadable,
            area: e.area,
        }
    }
}

pub struct Annotator {
    facts: HostFacts,
    origin: FactsOrigin,
    last: Option<(Key, Arc<Annotation>)>,
    cache: HashMap<Key, Arc<Annotation>>,
}

impl Annotator {
    /// `facts` are those of the kernel the events ran on: this host's for a
    /// live trace, the recorded ones for a capture.
    pub fn new(facts: HostFacts) -> Self {
        Annotator {
            facts,
            // The events ran on the kernel these facts describe, so a fact
            // that rules a cause out is final (never "another kernel").
            origin: FactsOrigin::Capture,
            last: None,
            cache: HashMap::new(),
        }
    }

    /// The area and explanation of a failed call; `None` for a success.
    pub fn annotate(&mut self, e: &Event) -> Option<Arc<Annotation>> {
        if !e.failed() {
            return None;
        }
        let key = Key::of(e);
        if let Some((k, note)) = &self.last
            && *k == key
        {
            return Some(note.clone());
        }
        let note = match self.cache.get(&key) {
            Some(note) => note.clone(),
            None => {
                let note = Arc::new(self.make(e)?);
                if self.cache.len() >= CACHE_LIMIT {
                    self.cache.clear();
                }
                self.cache.insert(key, note.clone());
                note
            }
        };
        self.last = Some((key, note.clone()));
        Some(note)
    }

    fn make(&self, e: &Event) -> Option<Annotation> {
        let call = Call::from_event(e)?;
        let area = Area::from_event(e);
        let explanation = explain_with_context(
            &call,
            area.as_ref(),
            &self.facts,
            self.facts.page_size,
            self.origin,
        );
        let text = render(area.as_ref(), &explanation);
        Some(Annotation {
            area,
            explanation,
            text,
        })
    }
}

/// The indented lines under a failure: its area and its cause(s).
fn render(area: Option<&Area>, x: &Explanation) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if let Some(area) = area {
        let _ = writeln!(out, "    area: {}", area.describe());
    }
    match &x.kind {
        ExplanationKind::Single(c) => {
            let _ = writeln!(out, "    cause: {} [{}]", c.sentence, c.code);
        }
        ExplanationKind::Possible(causes) => {
            out.push_str("    possible causes:\n");
            for c in causes {
                let _ = writeln!(out, "      - {} [{}]", c.sentence, c.code);
            }
        }
        ExplanationKind::Unknown => {
            let _ = writeln!(
                out,
                "    cause: unknown: {}",
                x.note
                    .as_deref()
                    .unwrap_or("no known reason fits what the kernel reported")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample;
    use thptrace_common::area;

    #[test]
    fn explains_once_per_distinct_call() {
        let mut a = Annotator::new(HostFacts::unknown());
        let e = sample(0x7f06e7f30001, 4096, 15, -22);
        let first = a.annotate(&e).unwrap();
        let again = a.annotate(&e).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(first.explanation.codes(), ["misaligned_start"]);
        assert!(
            first
                .text
                .starts_with("    cause: the start address 0x7f06e7f30001")
        );
        // Another call, then the first again: from the cache, not remade.
        let other = a.annotate(&sample(0x1000, 4096, 9999, -22)).unwrap();
        assert_eq!(other.explanation.codes(), ["advice_unknown_to_kernel"]);
        assert!(Arc::ptr_eq(&first, &a.annotate(&e).unwrap()));
        assert!(a.annotate(&sample(0x1000, 4096, 0, 0)).is_none());
    }

    #[test]
    fn renders_the_area_and_possible_causes() {
        let mut a = Annotator::new(HostFacts::unknown());
        let mut e = sample(0x7f06e7f30000, 4096, 4, -22);
        e.area = AreaRaw {
            start: 0x7f06e7f30000,
            end: 0x7f06e7f31000,
            vm_flags: 0x2003,
            gap: 0,
            status: area::LOOKED_UP | area::START_MAPPED | area::FULLY_MAPPED,
        };
        let note = a.annotate(&e).unwrap();
        assert_eq!(
            note.text.lines().next(),
            Some("    area: 7f06e7f30000-7f06e7f31000 rw-p anon locked")
        );
        assert!(note.text.contains("[area_locked]"), "{}", note.text);
    }
}
