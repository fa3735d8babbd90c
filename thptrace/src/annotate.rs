//! Explaining events as they are shown: the memory area the kernel captured,
//! decoded, and the cause the explanation engine finds for it against the
//! facts of the kernel the call ran on.
//!
//! A burst of failures usually repeats one call, so explanations are
//! remembered by their inputs: the engine runs once per distinct call.

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::Event;
use crate::explain::{Area, Call, Explanation, FactsOrigin, explain_with_context};
use crate::host::HostFacts;

/// Bounds the memory of the cache: past this many distinct calls it starts
/// over.
const CACHE_LIMIT: usize = 4096;

/// One event's area and explanation.
pub struct Annotation {
    pub area: Option<Area>,
    pub explanation: Arc<Explanation>,
}

pub struct Annotator {
    facts: HostFacts,
    origin: FactsOrigin,
    cache: HashMap<(Call, Option<Area>), Arc<Explanation>>,
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
            cache: HashMap::new(),
        }
    }

    pub fn facts(&self) -> &HostFacts {
        &self.facts
    }

    /// The area and explanation of a failed call; `None` for a success.
    pub fn annotate(&mut self, e: &Event) -> Option<Annotation> {
        let call = Call::from_event(e)?;
        let area = Area::from_event(e);
        let key = (call, area);
        if let Some(x) = self.cache.get(&key) {
            return Some(Annotation {
                area: key.1,
                explanation: x.clone(),
            });
        }
        let explanation = Arc::new(explain_with_context(
            &key.0,
            key.1.as_ref(),
            &self.facts,
            self.facts.page_size,
            self.origin,
        ));
        if self.cache.len() >= CACHE_LIMIT {
            self.cache.clear();
        }
        self.cache.insert(key.clone(), explanation.clone());
        Some(Annotation {
            area: key.1,
            explanation,
        })
    }
}
