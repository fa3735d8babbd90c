//! Arbitrary bytes into the capture reader: it must never panic, never
//! allocate beyond its caps, and strict and non-strict reads must agree on
//! which records precede the damage.

#![no_main]

use libfuzzer_sys::fuzz_target;
use thptrace::capture::{CaptureReader, ReadOptions, Record};

fn read(data: &[u8], strict: bool) -> Option<(Vec<Record>, bool)> {
    // A small buffer: the default 1 MiB would be allocated for every input.
    let opts = ReadOptions {
        strict,
        buffer_size: 4096,
    };
    let mut r = CaptureReader::new(data, "fuzz", opts).ok()?;
    let mut records = Vec::new();
    let damaged = loop {
        match r.next_record() {
            Ok(Some(rec)) => records.push(rec),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(r.offset() <= data.len() as u64);
    if let Some(d) = r.damage() {
        assert!(d.offset <= data.len() as u64);
        assert!(!strict);
        return Some((records, true));
    }
    Some((records, damaged))
}

fuzz_target!(|data: &[u8]| {
    let lenient = read(data, false);
    let strict = read(data, true);
    match (lenient, strict) {
        (Some(a), Some(b)) => assert_eq!(a, b),
        (None, None) => {}
        _ => panic!("strict and non-strict disagree on the header"),
    }
});
