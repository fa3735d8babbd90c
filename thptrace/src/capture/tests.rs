use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::format::{self, FRAME_HEADER_LEN, PREAMBLE_LEN, kind};
use super::*;
use crate::event::tests::sample;
use crate::event::{Event, Syscall, comm_from_str};

/// A directory removed when the test ends, pass or fail.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(format!("thptrace-capture-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn host(name: &str, boot_time_ns: u64) -> HostInfo {
    HostInfo {
        hostname: name.into(),
        kernel_release: "6.1.0-thp-off".into(),
        arch: "x86_64".into(),
        page_size: 4096,
        boot_time_ns,
        facts: serde_json::json!({ "thp_built_in": false }),
    }
}

fn extreme_events() -> Vec<Event> {
    let max = Event {
        ts_boot_ns: u64::MAX,
        duration_ns: u64::MAX,
        tgid: u32::MAX,
        tid: u32::MAX,
        uid: u32::MAX,
        gid: u32::MAX,
        cpu: u32::MAX,
        cgroup_id: u64::MAX,
        comm: [0xff; 16],
        syscall: Syscall::ProcessMadvise,
        start: u64::MAX,
        len: u64::MAX,
        advice: i32::MAX,
        pidfd: i32::MAX,
        vlen: u64::MAX,
        flags: u32::MAX,
        iovec_unreadable: true,
        ret: i64::MAX,
        area: crate::event::AreaRaw::NONE,
    };
    let min = Event {
        ts_boot_ns: 0,
        duration_ns: 0,
        tgid: 0,
        tid: 0,
        uid: 0,
        gid: 0,
        cpu: 0,
        cgroup_id: 0,
        comm: [0; 16],
        syscall: Syscall::Madvise,
        start: 0,
        len: 0,
        advice: i32::MIN,
        pidfd: i32::MIN,
        vlen: 0,
        flags: 0,
        iovec_unreadable: false,
        ret: i64::MIN,
        area: crate::event::AreaRaw::NONE,
    };
    // Each field distinct, so a swapped pair of offsets would show.
    let distinct = Event {
        ts_boot_ns: 0x0102_0304_0506_0708,
        duration_ns: 0x1112_1314_1516_1718,
        tgid: 0x2122_2324,
        tid: 0x3132_3334,
        uid: 0x4142_4344,
        gid: 0x5152_5354,
        cpu: 0x6162_6364,
        cgroup_id: 0x7172_7374_7576_7778,
        comm: *b"0123456789abcdef",
        syscall: Syscall::ProcessMadvise,
        start: 0x8182_8384_8586_8788,
        len: 0x9192_9394_9596_9798,
        advice: -15,
        pidfd: 7,
        vlen: 0xa1a2_a3a4_a5a6_a7a8,
        flags: 0xb1b2_b3b4,
        iovec_unreadable: true,
        ret: -22,
        area: crate::event::AreaRaw::NONE,
    };
    let mut criu = sample(0x7f06_e7f3_0000, 4096, 15, -22);
    criu.comm = comm_from_str("criu");
    vec![max, min, distinct, criu]
}

/// A small single-file capture: 4 events, a counters snapshot, the end.
fn small_capture(dir: &TempDir) -> (PathBuf, Vec<Event>, Counters) {
    let path = dir.path("small.thp");
    let mut w = CaptureWriter::create(
        WriterOptions::new(&path),
        host("node-a", 1_700_000_000_000_000_000),
        serde_json::json!({ "advice": [14, 15] }),
    )
    .unwrap();
    let events = extreme_events();
    let counters = Counters {
        ts_boot_ns: 5,
        kernel: crate::event::KernelCounters {
            calls: 1,
            failures: 2,
            sent: 3,
            lost: 4,
            restarts: 5,
            no_duration: u64::MAX,
        },
    };
    for e in &events[..2] {
        w.write_event(e).unwrap();
    }
    w.write_counters(&counters).unwrap();
    for e in &events[2..] {
        w.write_event(e).unwrap();
    }
    w.finish().unwrap();
    (path, events, counters)
}

/// Offsets where each frame after the header starts, and the file length.
fn frame_starts(bytes: &[u8]) -> (usize, Vec<usize>) {
    let mut at = PREAMBLE_LEN;
    let mut starts = Vec::new();
    let mut first = true;
    let mut header_end = 0;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if first {
            first = false;
            header_end = at + FRAME_HEADER_LEN + len;
        } else {
            starts.push(at);
        }
        at += FRAME_HEADER_LEN + len;
    }
    assert_eq!(at, bytes.len());
    (header_end, starts)
}

fn read_bytes(bytes: &[u8], strict: bool) -> Result<(Vec<Record>, Option<Damage>), CaptureError> {
    let opts = ReadOptions {
        strict,
        ..Default::default()
    };
    let mut r = CaptureReader::new(bytes, "mem.thp", opts)?;
    let mut out = Vec::new();
    while let Some(rec) = r.next_record()? {
        out.push(rec);
    }
    Ok((out, r.take_damage()))
}

#[test]
fn every_event_field_round_trips_through_a_file() {
    let dir = TempDir::new("roundtrip");
    let (path, events, counters) = small_capture(&dir);
    let mut r = CaptureReader::open(&path, ReadOptions::strict()).unwrap();
    let h = r.header().clone();
    assert_eq!(h.format_major, FORMAT_MAJOR);
    assert_eq!(h.thptrace_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(h.host, host("node-a", 1_700_000_000_000_000_000));
    assert_eq!(h.filters, serde_json::json!({ "advice": [14, 15] }));
    assert_eq!(h.sequence, 0);
    let recs: Vec<Record> = r.by_ref().map(Result::unwrap).collect();
    assert_eq!(recs.len(), 6);
    assert_eq!(recs[0], Record::Event(events[0]));
    assert_eq!(recs[1], Record::Event(events[1]));
    assert_eq!(recs[2], Record::Counters(counters));
    assert_eq!(recs[3], Record::Event(events[2]));
    assert_eq!(recs[4], Record::Event(events[3]));
    match recs[5] {
        Record::End(e) => {
            assert_eq!(e.events, 4);
            assert!(!e.continued);
        }
        ref other => panic!("expected the end marker, got {other:?}"),
    }
    assert!(r.damage().is_none());
    assert_eq!(r.stats().events, 4);
    assert_eq!(r.end().map(|e| e.continued), Some(false));
}

/// An unknown duration (the kernel's `NO_DURATION`, all bits set) reads back
/// as unknown, not as 584 years; the kernel counters keep their names.
#[test]
fn unknown_duration_and_counters_round_trip() {
    let dir = TempDir::new("no-duration");
    let path = dir.path("cap");
    let mut e = sample(0x1000, 4096, 15, -22);
    e.duration_ns = thptrace_common::NO_DURATION;
    let k = crate::event::KernelCounters {
        calls: 9,
        failures: 7,
        sent: 7,
        lost: 1,
        restarts: 2,
        no_duration: 1,
    };
    let mut w = CaptureWriter::create(
        WriterOptions::new(&path),
        host("node-a", 1),
        serde_json::json!({}),
    )
    .unwrap();
    w.write_event(&e).unwrap();
    w.write_counters(&Counters::snapshot(5, &k)).unwrap();
    w.finish().unwrap();
    let recs: Vec<Record> = CaptureReader::open(&path, ReadOptions::strict())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    match recs[0] {
        Record::Event(got) => {
            assert_eq!(got, e);
            assert_eq!(got.duration(), None);
        }
        ref other => panic!("expected the event, got {other:?}"),
    }
    match recs[1] {
        Record::Counters(c) => {
            assert_eq!(c.ts_boot_ns, 5);
            assert_eq!(c.kernel(), k);
        }
        ref other => panic!("expected counters, got {other:?}"),
    }
}

/// An untimed recording (`--no-durations`) says so in its header; its
/// events hold the 1.1 "unknown" bytes, and read back as not measured.
#[test]
fn untimed_capture_reads_back_untimed() {
    let dir = TempDir::new("untimed");
    let mut e = sample(0x1000, 4096, 15, -22);
    e.duration_ns = thptrace_common::NOT_TIMED;
    assert_eq!(
        &format::encode_event(&e)[8..16],
        &thptrace_common::NO_DURATION.to_le_bytes()
    );
    for untimed in [true, false] {
        let path = dir.path(&format!("cap-{untimed}"));
        let mut opts = WriterOptions::new(&path);
        opts.untimed = untimed;
        let mut w = CaptureWriter::create(opts, host("node-a", 1), serde_json::json!({})).unwrap();
        w.write_event(&e).unwrap();
        w.finish().unwrap();
        let r = CaptureReader::open(&path, ReadOptions::strict()).unwrap();
        assert_eq!(r.header().untimed, untimed);
        let got: Vec<Record> = r.map(Result::unwrap).collect();
        match got[0] {
            // A timed capture's unknown duration stays unknown (`<?>`).
            Record::Event(got) => assert_eq!(got.timed(), !untimed),
            ref other => panic!("expected the event, got {other:?}"),
        }
    }
}

#[test]
fn event_layout_is_fixed_little_endian() {
    let e = extreme_events()[2];
    let b = format::encode_event(&e);
    assert_eq!(b.len(), EVENT_LEN);
    assert_eq!(&b[0..8], &0x0102_0304_0506_0708u64.to_le_bytes());
    assert_eq!(&b[56..60], &0x2122_2324u32.to_le_bytes());
    assert_eq!(&b[88..104], b"0123456789abcdef");
    assert_eq!(b[104], 1);
    assert_eq!(b[105], 1);
    assert_eq!(format::decode_event(&b), Some(e));
    // A newer minor version may append fields: the known prefix still reads.
    let mut longer = b.to_vec();
    longer.extend_from_slice(&[0xee; 8]);
    assert_eq!(format::decode_event(&longer), Some(e));
    assert_eq!(format::decode_event(&b[..format::EVENT_V1_0_LEN - 1]), None);
}

#[test]
fn events_carry_their_area_and_1_0_events_read_without_one() {
    let mut e = extreme_events()[2];
    e.area = crate::event::AreaRaw {
        start: 0x7f06_e7f3_0000,
        end: 0x7f06_e7f3_4000,
        vm_flags: 0x2003,
        gap: 0x7f06_e7f3_4000,
        status: 0x27,
    };
    let b = format::encode_event(&e);
    assert_eq!(&b[108..116], &0x7f06_e7f3_0000u64.to_le_bytes());
    assert_eq!(&b[140..144], &0x27u32.to_le_bytes());
    assert_eq!(format::decode_event(&b), Some(e));
    // A 1.0 writer's event: the same prefix, no area.
    let old = format::decode_event(&b[..format::EVENT_V1_0_LEN]).unwrap();
    assert_eq!(old.area, crate::event::AreaRaw::NONE);
    assert_eq!(old.ts_boot_ns, e.ts_boot_ns);
    // Cut inside the area: the prefix reads, the partial area is not trusted.
    let cut = format::decode_event(&b[..120]).unwrap();
    assert_eq!(cut.area, crate::event::AreaRaw::NONE);
}

#[test]
fn files_are_private() {
    let dir = TempDir::new("mode");
    let path = dir.path("c.thp");
    std::fs::write(&path, b"old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let w = CaptureWriter::create(
        WriterOptions::new(&path),
        host("h", 0),
        serde_json::Value::Null,
    )
    .unwrap();
    drop(w);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn truncation_at_every_offset_keeps_every_complete_record() {
    let dir = TempDir::new("trunc");
    let (path, _, _) = small_capture(&dir);
    let bytes = std::fs::read(&path).unwrap();
    let (header_end, starts) = frame_starts(&bytes);
    let (full, _) = read_bytes(&bytes, true).unwrap();
    assert_eq!(full.len(), starts.len());
    for cut in 0..=bytes.len() {
        let part = &bytes[..cut];
        if cut < header_end {
            match read_bytes(part, false) {
                Err(CaptureError::TruncatedHeader { .. }) => {}
                other => panic!("cut at {cut}: expected a truncated header, got {other:?}"),
            }
            continue;
        }
        let complete = starts
            .iter()
            .enumerate()
            .filter(|&(i, _)| starts.get(i + 1).copied().unwrap_or(bytes.len()) <= cut)
            .count();
        let (recs, damage) = read_bytes(part, false).unwrap();
        assert_eq!(recs, full[..complete], "cut at {cut}");
        let on_boundary = cut == bytes.len() || starts.contains(&cut) || cut == header_end;
        if on_boundary {
            assert_eq!(damage, None, "cut at {cut}");
        } else {
            let d = damage.unwrap_or_else(|| panic!("cut at {cut}: no damage reported"));
            assert_eq!(d.kind, DamageKind::Truncated, "cut at {cut}");
            assert_eq!(d.offset as usize, starts[complete], "cut at {cut}");
            assert_eq!(d.file, Path::new("mem.thp"));
            // Strict mode turns the same damage into an error.
            match read_bytes(part, true) {
                Err(CaptureError::Truncated { offset, .. }) => {
                    assert_eq!(offset as usize, starts[complete])
                }
                other => panic!("cut at {cut}: strict read gave {other:?}"),
            }
        }
    }
}

#[test]
fn flipped_bytes_are_caught_at_the_damaged_record() {
    let dir = TempDir::new("flip");
    let (path, _, _) = small_capture(&dir);
    let bytes = std::fs::read(&path).unwrap();
    let (header_end, starts) = frame_starts(&bytes);
    let (full, _) = read_bytes(&bytes, true).unwrap();
    for at in 0..bytes.len() {
        let mut b = bytes.clone();
        b[at] ^= 0x10;
        let res = read_bytes(&b, false);
        if at < header_end {
            assert!(res.is_err(), "flip at {at} in the header went unnoticed");
            continue;
        }
        let frame = starts.iter().rposition(|&s| s <= at).unwrap();
        let (recs, damage) = res.unwrap();
        assert_eq!(recs, full[..frame], "flip at {at}");
        let d = damage.unwrap_or_else(|| panic!("flip at {at}: no damage"));
        assert_eq!(d.offset as usize, starts[frame], "flip at {at}");
        let in_payload = at >= starts[frame] + FRAME_HEADER_LEN;
        let in_length = (starts[frame] + 4..starts[frame] + 8).contains(&at);
        if in_payload || !in_length {
            assert!(
                matches!(d.kind, DamageKind::BadChecksum { .. }),
                "flip at {at}: {d}"
            );
        }
    }
}

#[test]
fn not_a_capture_file() {
    let err = read_bytes(b"GIF89a this is a picture, not a capture", false).unwrap_err();
    assert!(matches!(err, CaptureError::NotCapture { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("not a thptrace capture file"), "{msg}");
    assert!(msg.contains("byte 0"), "{msg}");
    assert!(matches!(
        read_bytes(b"", false),
        Err(CaptureError::TruncatedHeader { .. })
    ));
    assert!(matches!(
        read_bytes(&MAGIC[..5], false),
        Err(CaptureError::TruncatedHeader { .. })
    ));
}

#[test]
fn newer_major_version_asks_for_a_newer_thptrace() {
    let dir = TempDir::new("newer");
    let (path, _, _) = small_capture(&dir);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..PREAMBLE_LEN].copy_from_slice(&format::encode_preamble(FORMAT_MAJOR + 1, 3));
    let err = read_bytes(&bytes, false).unwrap_err();
    match &err {
        CaptureError::NewerVersion {
            major,
            minor,
            supported,
            ..
        } => assert_eq!(
            (*major, *minor, *supported),
            (FORMAT_MAJOR + 1, 3, FORMAT_MAJOR)
        ),
        other => panic!("expected NewerVersion, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&format!("{}.3", FORMAT_MAJOR + 1)), "{msg}");
    assert!(msg.contains("newer thptrace"), "{msg}");
    // A newer minor version is read: additions are skippable by design.
    bytes[..PREAMBLE_LEN].copy_from_slice(&format::encode_preamble(FORMAT_MAJOR, 99));
    let (recs, d) = read_bytes(&bytes, true).unwrap();
    assert_eq!(recs.len(), 6);
    assert!(d.is_none());
}

#[test]
fn oversized_lengths_are_refused_without_allocating() {
    let dir = TempDir::new("oversize");
    let (path, _, _) = small_capture(&dir);
    let bytes = std::fs::read(&path).unwrap();
    let (header_end, starts) = frame_starts(&bytes);

    // A record claiming 4 GiB: refused from its frame header.
    let mut b = bytes[..header_end].to_vec();
    b.extend_from_slice(&kind::EVENT.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    let (recs, d) = read_bytes(&b, false).unwrap();
    assert!(recs.is_empty());
    let d = d.unwrap();
    assert_eq!(
        d.kind,
        DamageKind::BadLength {
            length: u32::MAX.into()
        }
    );
    assert_eq!(d.offset as usize, header_end);
    match read_bytes(&b, true) {
        Err(e @ CaptureError::BadLength { .. }) => {
            assert!(e.to_string().contains(&format!("byte {header_end}")))
        }
        other => panic!("{other:?}"),
    }

    // The header frame too.
    let mut h = bytes.clone();
    h[PREAMBLE_LEN + 4..PREAMBLE_LEN + 8].copy_from_slice(&(MAX_HEADER_LEN + 1).to_le_bytes());
    assert!(matches!(
        read_bytes(&h, false),
        Err(CaptureError::BadLength { offset: 16, .. })
    ));

    // An intact event frame shorter than an event is damage, not a panic.
    let mut s = bytes[..header_end].to_vec();
    format::push_frame(&mut s, kind::EVENT, 0, &[0u8; 10]);
    let (_, d) = read_bytes(&s, false).unwrap();
    assert_eq!(d.unwrap().kind, DamageKind::BadLength { length: 10 });
    assert!(!starts.is_empty());
}

#[test]
fn unknown_record_types_are_skipped() {
    let dir = TempDir::new("unknown");
    let (path, events, _) = small_capture(&dir);
    let bytes = std::fs::read(&path).unwrap();
    let (header_end, _) = frame_starts(&bytes);
    let mut b = bytes[..header_end].to_vec();
    format::push_frame(
        &mut b,
        kind::AREA,
        0,
        b"a memory area from a newer thptrace",
    );
    format::push_frame(&mut b, 999, 0xffff, &[]);
    let mut longer = format::encode_event(&events[3]).to_vec();
    longer.extend_from_slice(&[1, 2, 3, 4]);
    format::push_frame(&mut b, kind::EVENT, record_flag::EVENT_HAS_AREA, &longer);
    // A system call this build does not know: intact, skipped.
    let mut future = format::encode_event(&events[3]);
    future[104] = 7;
    format::push_frame(&mut b, kind::EVENT, 0, &future);
    let mut r = CaptureReader::new(&b[..], "mem", ReadOptions::strict()).unwrap();
    let recs: Vec<Record> = r.by_ref().map(Result::unwrap).collect();
    assert_eq!(recs, vec![Record::Event(events[3])]);
    assert_eq!(r.stats().skipped, 3);
}

/// Deterministic garbage and mutations of a valid file: the reader must
/// return, not panic, whatever it is fed. The fuzz target does this at scale.
#[test]
fn arbitrary_input_never_panics() {
    let dir = TempDir::new("garbage");
    let (path, _, _) = small_capture(&dir);
    let bytes = std::fs::read(&path).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..3000 {
        let mut b = bytes.clone();
        for _ in 0..1 + rand() % 4 {
            let at = (rand() as usize) % b.len();
            b[at] = rand() as u8;
        }
        let cut = (rand() as usize) % (b.len() + 1);
        for strict in [false, true] {
            if let Ok(r) = CaptureReader::new(
                &b[..cut],
                "m",
                ReadOptions {
                    strict,
                    ..Default::default()
                },
            ) {
                for rec in r {
                    if rec.is_err() {
                        break;
                    }
                }
            }
        }
        let noise: Vec<u8> = (0..rand() % 200).map(|_| rand() as u8).collect();
        let _ = read_bytes(&noise, false);
    }
}

#[test]
fn drop_flushes_but_only_finish_marks_a_clean_end() {
    let dir = TempDir::new("drop");
    let path = dir.path("c.thp");
    let mut w = CaptureWriter::create(
        WriterOptions::new(&path),
        host("h", 0),
        serde_json::Value::Null,
    )
    .unwrap();
    for i in 0..10 {
        w.write_event(&synthetic_event(i)).unwrap();
    }
    drop(w);
    let mut set = CaptureSet::open(&path, ReadOptions::strict()).unwrap();
    let n = set.by_ref().map(Result::unwrap).count();
    assert_eq!(n, 10);
    assert_eq!(set.end(), None);
}

#[test]
fn flush_if_due_follows_the_interval() {
    let dir = TempDir::new("due");
    let path = dir.path("c.thp");
    let mut opts = WriterOptions::new(&path);
    opts.flush_interval = std::time::Duration::from_secs(3600);
    let mut w = CaptureWriter::create(opts, host("h", 0), serde_json::Value::Null).unwrap();
    let header_len = std::fs::metadata(&path).unwrap().len();
    w.write_event(&synthetic_event(0)).unwrap();
    assert!(!w.flush_if_due().unwrap());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), header_len);
    w.flush().unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        header_len + EVENT_FRAME_LEN
    );
    w.finish().unwrap();
}

fn sequence_of(rec: &Record) -> Option<u64> {
    match rec {
        Record::Event(e) => Some((e.ts_boot_ns - 1_000_000_000) / 50_000),
        _ => None,
    }
}

#[test]
fn rotation_stays_within_bounds_and_reads_back_in_order() {
    let dir = TempDir::new("rotate");
    let path = dir.path("cap.thp");
    // Leftovers of an earlier run at the same path must not be stitched on.
    std::fs::write(rotated_path(&path, 7), b"stale").unwrap();
    let max_size = 4096;
    let mut opts = WriterOptions::new(&path);
    opts.max_size = Some(max_size);
    opts.max_files = Some(3);
    opts.buffer_size = 1000;
    let mut w = CaptureWriter::create(opts, host("h", 0), serde_json::Value::Null).unwrap();
    let total = 1000;
    for i in 0..total {
        w.write_event(&synthetic_event(i)).unwrap();
        let files = set_files(&path).unwrap();
        assert!(files.len() <= 3, "{} files after event {i}", files.len());
    }
    let stats = w.finish().unwrap();
    assert_eq!(stats.events, total);
    assert_eq!(stats.files_deleted, stats.files_created - 3);

    let files = set_files(&path).unwrap();
    assert_eq!(files.len(), 3);
    assert!(
        !path.exists(),
        "the oldest file should have been rotated away"
    );
    let last_seq = stats.files_created - 1;
    let seqs: Vec<u64> = files.iter().map(|f| f.0).collect();
    assert_eq!(seqs, vec![last_seq - 2, last_seq - 1, last_seq]);
    for (seq, p) in &files {
        let len = std::fs::metadata(p).unwrap().len();
        assert!(len <= max_size, "{} is {len} bytes", p.display());
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(name, format!("cap.thp.{seq:06}"));
        let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let r = CaptureReader::open(p, ReadOptions::strict()).unwrap();
        assert_eq!(r.header().sequence, *seq, "each file is readable alone");
    }

    let mut set = CaptureSet::open(&path, ReadOptions::strict()).unwrap();
    let got: Vec<u64> = set
        .by_ref()
        .map(Result::unwrap)
        .filter_map(|r| sequence_of(&r))
        .collect();
    assert!(set.damages().is_empty(), "{:?}", set.damages());
    assert_eq!(*got.last().unwrap(), total - 1, "the newest event is kept");
    let first = got[0];
    assert_eq!(got, (first..total).collect::<Vec<_>>(), "in order, no gaps");
    // Two full files plus the current one survive: the flight-recorder bound.
    let per_file = (max_size - 400) / EVENT_FRAME_LEN;
    assert!(total - first >= 2 * per_file, "kept only {}", total - first);
    assert_eq!(set.end().map(|e| e.continued), Some(false));
}

#[test]
fn rotation_without_max_files_keeps_everything() {
    let dir = TempDir::new("rotate-all");
    let path = dir.path("cap");
    let mut opts = WriterOptions::new(&path);
    opts.max_size = Some(2048);
    let mut w = CaptureWriter::create(opts, host("h", 0), serde_json::Value::Null).unwrap();
    for i in 0..300 {
        w.write_event(&synthetic_event(i)).unwrap();
    }
    let stats = w.finish().unwrap();
    assert!(stats.files_created > 10);
    assert_eq!(stats.files_deleted, 0);
    let (read, damage) = scan(&path, ReadOptions::strict()).unwrap();
    assert_eq!(read.events, 300);
    assert!(damage.is_empty());
    assert_eq!(read.ends, stats.files_created);

    // A file lost from the middle is reported, and the rest still read.
    std::fs::remove_file(rotated_path(&path, 3)).unwrap();
    let (read, damage) = scan(&path, ReadOptions::default()).unwrap();
    assert!(read.events < 300);
    assert_eq!(damage.len(), 1);
    assert!(damage[0].what_was_expected.contains("sequence 3"));
    assert!(matches!(
        scan(&path, ReadOptions::strict()),
        Err(CaptureError::BrokenSet { .. })
    ));
}

#[test]
fn flight_recorder_bounds_the_whole_set() {
    let dir = TempDir::new("flight");
    let path = dir.path("fr");
    let total = 64 << 10;
    let w_opts = WriterOptions::flight_recorder(&path, total);
    let mut w = CaptureWriter::create(w_opts, host("h", 0), serde_json::Value::Null).unwrap();
    for i in 0..5000 {
        w.write_event(&synthetic_event(i)).unwrap();
    }
    w.finish().unwrap();
    let on_disk: u64 = set_files(&path)
        .unwrap()
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(on_disk <= total, "{on_disk} bytes on disk");
    assert!(
        on_disk >= total * 7 / 8 - 8 * 400,
        "{on_disk} bytes on disk"
    );
}

#[test]
fn bad_writer_options_are_refused() {
    let dir = TempDir::new("opts");
    let path = dir.path("c");
    let mut o = WriterOptions::new(&path);
    o.max_files = Some(2);
    assert!(matches!(
        CaptureWriter::create(o, host("h", 0), serde_json::Value::Null),
        Err(CaptureError::BadOptions { .. })
    ));
    let mut o = WriterOptions::new(&path);
    o.max_size = Some(100);
    let err = CaptureWriter::create(o, host("h", 0), serde_json::Value::Null)
        .err()
        .unwrap();
    assert!(err.to_string().contains("too small"), "{err}");
    assert!(!path.exists());
}

#[test]
fn merge_interleaves_hosts_by_wall_clock() {
    let dir = TempDir::new("merge");
    let write = |name: &str, boot: u64, stamps: &[u64]| {
        let p = dir.path(name);
        let mut w = CaptureWriter::create(
            WriterOptions::new(&p),
            host(name, boot),
            serde_json::Value::Null,
        )
        .unwrap();
        for &ts in stamps {
            let mut e = sample(0, 4096, 15, -22);
            e.ts_boot_ns = ts;
            w.write_event(&e).unwrap();
        }
        drop(w);
        p
    };
    // Host b booted 1000 ns after a: b's ts 0 is a's ts 1000.
    let a = write("a", 10_000, &[100, 1500, 1500, 4000]);
    let b = write("b", 11_000, &[0, 400, 2000]);
    let sets = vec![
        CaptureSet::open(&a, ReadOptions::strict()).unwrap(),
        CaptureSet::open(&b, ReadOptions::strict()).unwrap(),
    ];
    let got: Vec<(String, u64)> = merge(sets)
        .map(Result::unwrap)
        .map(|m| (m.host.to_string(), m.wall_ns))
        .collect();
    let want: Vec<(String, u64)> = [
        ("a", 10_100),
        ("b", 11_000),
        ("b", 11_400),
        ("a", 11_500),
        ("a", 11_500),
        ("b", 13_000),
        ("a", 14_000),
    ]
    .iter()
    .map(|(h, t)| (h.to_string(), *t))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn sizes_parse_as_people_write_them() {
    assert_eq!(parse_size("100"), Ok(100));
    assert_eq!(parse_size("512k"), Ok(512 << 10));
    assert_eq!(parse_size("512K"), Ok(512 << 10));
    assert_eq!(parse_size("64M"), Ok(64 << 20));
    assert_eq!(parse_size("64MiB"), Ok(64 << 20));
    assert_eq!(parse_size("64mb"), Ok(64 << 20));
    assert_eq!(parse_size("1G"), Ok(1 << 30));
    assert_eq!(parse_size("2T"), Ok(2 << 40));
    assert_eq!(parse_size(" 7 "), Ok(7));
    assert_eq!(parse_size("10B"), Ok(10));
    assert_eq!(parse_size(""), Err(SizeError::Empty));
    assert!(matches!(parse_size("M"), Err(SizeError::NotANumber(_))));
    assert!(matches!(parse_size("-5M"), Err(SizeError::NotANumber(_))));
    assert!(matches!(parse_size("1.5G"), Err(SizeError::NotANumber(_))));
    assert!(matches!(
        parse_size("5X"),
        Err(SizeError::UnknownUnit { .. })
    ));
    assert!(matches!(
        parse_size("64 megs"),
        Err(SizeError::UnknownUnit { .. })
    ));
    assert!(matches!(
        parse_size("99999999999T"),
        Err(SizeError::TooLarge(_))
    ));
    assert!(matches!(
        parse_size("99999999999999999999"),
        Err(SizeError::TooLarge(_))
    ));
    assert!(
        parse_size("5X")
            .unwrap_err()
            .to_string()
            .contains("k, M, G or T")
    );
}

#[test]
fn host_detection_fills_what_it_can() {
    let h = HostInfo::detect();
    assert!(!h.kernel_release.is_empty());
    assert!(h.page_size >= 4096);
    // Booted after 2020 and before now.
    assert!(h.boot_time_ns > 1_577_836_800_000_000_000);
    assert!(wall_clock_ns(&h, crate::clock::boot_now_ns()) > h.boot_time_ns);
}

/// A measurement, not an assertion: run with
/// `cargo test --release -p thptrace --lib capture::tests::measure -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_read_rate() {
    let dir = TempDir::new("measure");
    let path = dir.path("bench.thp");
    let n = 4_000_000;
    let t = std::time::Instant::now();
    write_synthetic(&path, n).unwrap();
    let w = t.elapsed();
    let size = std::fs::metadata(&path).unwrap().len();
    // Warm the page cache, then time three reads.
    scan(&path, ReadOptions::default()).unwrap();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let (stats, damage) = scan(&path, ReadOptions::default()).unwrap();
        let d = t.elapsed();
        assert_eq!(stats.events, n);
        assert!(damage.is_empty());
        println!(
            "read {n} events ({size} bytes) in {d:?}: {:.0} events/s, {:.0} MB/s",
            n as f64 / d.as_secs_f64(),
            size as f64 / d.as_secs_f64() / 1e6
        );
    }
    println!(
        "wrote {n} events in {w:?}: {:.0} events/s",
        n as f64 / w.as_secs_f64()
    );
}

#[test]
fn no_rotated_file_exceeds_max_size_whatever_the_size() {
    let dir = TempDir::new("sizes");
    // Step through a whole event frame's worth of sizes so every way the
    // last record and the end marker can land against the limit is tried.
    for max_size in (2000..2000 + EVENT_FRAME_LEN + 8).step_by(4) {
        let path = dir.path(&format!("c{max_size}"));
        let mut opts = WriterOptions::new(&path);
        opts.max_size = Some(max_size);
        let mut w = CaptureWriter::create(opts, host("h", 0), serde_json::Value::Null).unwrap();
        for i in 0..60 {
            w.write_event(&synthetic_event(i)).unwrap();
        }
        w.finish().unwrap();
        let files = set_files(&path).unwrap();
        assert!(files.len() > 2);
        for (_, p) in files {
            let len = std::fs::metadata(&p).unwrap().len();
            assert!(len <= max_size, "{}: {len} > {max_size}", p.display());
        }
        assert_eq!(scan(&path, ReadOptions::strict()).unwrap().0.events, 60);
    }
}

/// Regenerates the fuzz corpus, not a check: run with
/// `cargo test -p thptrace --lib capture::tests::write_fuzz_corpus -- --ignored`.
#[test]
#[ignore]
fn write_fuzz_corpus() {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/capture_reader");
    std::fs::create_dir_all(&out).unwrap();
    let dir = TempDir::new("corpus");
    let (path, events, _) = small_capture(&dir);
    let small = std::fs::read(&path).unwrap();
    let (header_end, starts) = frame_starts(&small);

    let empty = dir.path("empty");
    CaptureWriter::create(
        WriterOptions::new(&empty),
        host("h", 0),
        serde_json::Value::Null,
    )
    .unwrap()
    .finish()
    .unwrap();

    let mut unknown = small[..header_end].to_vec();
    format::push_frame(&mut unknown, kind::AREA, 0, b"area");
    format::push_frame(
        &mut unknown,
        kind::EVENT,
        1,
        &format::encode_event(&events[3]),
    );

    let rotated = dir.path("rot");
    let mut o = WriterOptions::new(&rotated);
    o.max_size = Some(1024);
    let mut w = CaptureWriter::create(o, host("h", 0), serde_json::Value::Null).unwrap();
    for i in 0..12 {
        w.write_event(&synthetic_event(i)).unwrap();
    }
    w.finish().unwrap();

    let mut flipped = small.clone();
    flipped[starts[1] + 20] ^= 1;

    let files: Vec<(&str, Vec<u8>)> = vec![
        ("valid-small", small.clone()),
        ("valid-empty", std::fs::read(&empty).unwrap()),
        ("valid-unknown-records", unknown),
        ("valid-rotated-first", std::fs::read(&rotated).unwrap()),
        (
            "valid-rotated-second",
            std::fs::read(rotated_path(&rotated, 1)).unwrap(),
        ),
        ("truncated-mid-event", small[..starts[1] + 50].to_vec()),
        (
            "truncated-mid-frame-header",
            small[..starts[2] + 5].to_vec(),
        ),
        ("truncated-mid-header", small[..header_end - 10].to_vec()),
        ("truncated-preamble", small[..10].to_vec()),
        ("flipped-byte", flipped),
    ];
    for (name, bytes) in files {
        std::fs::write(out.join(name), bytes).unwrap();
    }
}

#[test]
fn a_symlink_planted_at_the_next_rotated_path_is_not_followed() {
    let dir = TempDir::new("symlink");
    let target = dir.path("precious");
    std::fs::write(&target, b"keep me").unwrap();
    let path = dir.path("cap");
    let mut o = WriterOptions::new(&path);
    o.max_size = Some(1024);
    let mut w = CaptureWriter::create(o, host("h", 0), serde_json::Value::Null).unwrap();
    // Planted after the writer cleaned up the set, before it rotates.
    let next = rotated_path(&path, 1);
    std::os::unix::fs::symlink(&target, &next).unwrap();
    for i in 0..20 {
        w.write_event(&synthetic_event(i)).unwrap();
    }
    w.finish().unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    assert!(
        !std::fs::symlink_metadata(&next)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(scan(&path, ReadOptions::strict()).unwrap().0.events, 20);
}
