//! Time: the kernel stamps events with `CLOCK_BOOTTIME` (it keeps counting
//! through suspend and never jumps); people read wall-clock time. The offset
//! between the two is taken once, at start-up.

use std::fmt::Write;

use crate::digits::push_padded;

const NS: i128 = 1_000_000_000;

fn now(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime with a valid clock and a valid out pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * NS + ts.tv_nsec as i128
}

/// `CLOCK_BOOTTIME` now, in nanoseconds.
pub fn boot_now_ns() -> u64 {
    now(libc::CLOCK_BOOTTIME) as u64
}

/// Turns boot-time stamps into wall-clock time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// Wall-clock time of boot, in nanoseconds since the Unix epoch.
    pub boot_epoch_ns: i128,
}

impl Clock {
    /// This host's clock. The clocks are read boot, real, boot and the
    /// midpoint taken, so a preemption between the reads costs at most half
    /// its length.
    pub fn host() -> Self {
        let b1 = now(libc::CLOCK_BOOTTIME);
        let real = now(libc::CLOCK_REALTIME);
        let b2 = now(libc::CLOCK_BOOTTIME);
        Clock {
            boot_epoch_ns: real - (b1 + b2) / 2,
        }
    }

    /// Nanoseconds since the Unix epoch for a boot-time stamp.
    pub fn wall_ns(&self, ts_boot_ns: u64) -> i128 {
        self.boot_epoch_ns + ts_boot_ns as i128
    }
}

/// Formats the local time of day, `HH:MM:SS.uuuuuu`, as strace -tt does.
/// Remembers the last second it converted: events come in bursts within one
/// second, and localtime_r is the costly part.
#[derive(Default)]
pub struct LocalTime {
    cached_sec: i64,
    cached_offset: i64,
    valid: bool,
}

impl LocalTime {
    pub fn write(&mut self, out: &mut String, wall_ns: i128) {
        let secs = wall_ns.div_euclid(NS) as i64;
        let micros = (wall_ns.rem_euclid(NS) / 1000) as u32;
        if !self.valid || secs != self.cached_sec {
            self.cached_offset = utc_offset(secs);
            self.cached_sec = secs;
            self.valid = true;
        }
        let local = (secs + self.cached_offset).rem_euclid(86_400) as u64;
        push_padded(out, local / 3600, 2);
        out.push(':');
        push_padded(out, local / 60 % 60, 2);
        out.push(':');
        push_padded(out, local % 60, 2);
        out.push('.');
        push_padded(out, micros as u64, 6);
    }
}

/// The local time zone's offset from UTC at `secs`, in seconds.
fn utc_offset(secs: i64) -> i64 {
    // SAFETY: localtime_r with valid pointers; tm is plain data.
    unsafe {
        let t: libc::time_t = secs as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff as i64
    }
}

/// RFC 3339 in UTC with nanoseconds: `2026-11-27T06:19:35.123456789Z`.
pub fn rfc3339(wall_ns: i128) -> String {
    let mut out = String::with_capacity(30);
    write_rfc3339(&mut out, wall_ns);
    out
}

pub fn write_rfc3339(out: &mut String, wall_ns: i128) {
    let secs = wall_ns.div_euclid(NS) as i64;
    let nanos = wall_ns.rem_euclid(NS) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
}

/// Reads RFC 3339 (`2026-11-27T06:19:35.5Z`, `+01:00` offsets) into
/// nanoseconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<i128> {
    let b = text.trim().as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        std::str::from_utf8(b.get(r)?).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i128 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &text.trim()[start..i];
        if digits.is_empty() {
            return None;
        }
        let mut frac: String = digits.chars().take(9).collect();
        while frac.len() < 9 {
            frac.push('0');
        }
        nanos = frac.parse().ok()?;
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        b'+' | b'-' if i + 6 == b.len() && b[i + 3] == b':' => {
            let sign = if b[i] == b'-' { -1 } else { 1 };
            sign * (num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset;
    Some(secs as i128 * NS + nanos)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        // 2024-02-29T12:34:56.000000789Z
        let t = 1_709_210_096 * NS + 789;
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.000000789Z");
        assert_eq!(parse_rfc3339("2024-02-29T12:34:56.000000789Z"), Some(t));
        assert_eq!(
            parse_rfc3339("2024-02-29T13:34:56.000000789+01:00"),
            Some(t)
        );
        assert_eq!(parse_rfc3339("2024-02-29T12:34:56Z"), Some(t - 789));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2024-13-01T00:00:00Z"), None);
    }

    #[test]
    fn calendar_round_trips() {
        for days in [-800_000, -1, 0, 59, 365, 11_016, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn boot_offset_is_the_boot_time() {
        let c = Clock::host();
        let wall = c.wall_ns(boot_now_ns());
        let real = now(libc::CLOCK_REALTIME);
        assert!((wall - real).abs() < NS, "{wall} vs {real}");
    }

    #[test]
    fn time_of_day_has_microseconds() {
        let mut s = String::new();
        LocalTime::default().write(&mut s, 1_709_210_096 * NS + 123_456_789);
        assert_eq!(s.len(), "12:34:56.123456".len());
        assert!(s.ends_with(".123456"), "{s}");
    }
}
