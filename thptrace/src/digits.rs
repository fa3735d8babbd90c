//! Writing numbers into a line without `fmt` machinery: a live trace formats
//! a million lines a second, and `write!` was most of the loader's CPU time.

/// Decimal.
#[inline]
pub fn push_u64(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Decimal, with a sign when negative.
#[inline]
pub fn push_i64(out: &mut String, v: i64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// `0x` and lowercase hexadecimal, as `{:#x}` writes it.
#[inline]
pub fn push_hex(out: &mut String, v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 18];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = DIGITS[(v & 0xf) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    i -= 2;
    buf[i] = b'0';
    buf[i + 1] = b'x';
    // The bytes are ASCII.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("0x?"));
}

/// Decimal, zero-padded to `width` digits (more digits are all written).
#[inline]
pub fn push_padded(out: &mut String, v: u64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let s = buf.format(v);
    for _ in s.len()..width {
        out.push('0');
    }
    out.push_str(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_std_formatting() {
        for v in [0u64, 1, 9, 10, 4095, 0x7f06e7f30000, u64::MAX] {
            let mut s = String::new();
            push_hex(&mut s, v);
            assert_eq!(s, format!("{v:#x}"));
            s.clear();
            push_u64(&mut s, v);
            assert_eq!(s, v.to_string());
            s.clear();
            push_padded(&mut s, v % 1_000_000, 6);
            assert_eq!(s, format!("{:06}", v % 1_000_000));
        }
        let mut s = String::new();
        push_i64(&mut s, -22);
        assert_eq!(s, "-22");
    }
}
