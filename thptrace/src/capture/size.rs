//! Sizes as people type them on a command line: `64M`, `1G`, `512k`, `100`.

use std::fmt;

/// Why a size did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SizeError {
    Empty,
    /// No digits before the unit (`M`, `-5M`, `1.5G`).
    NotANumber(String),
    UnknownUnit {
        text: String,
        unit: String,
    },
    TooLarge(String),
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeError::Empty => write!(f, "empty size: expected a number such as 64M"),
            SizeError::NotANumber(t) => write!(
                f,
                "size {t:?}: expected a whole number of bytes, optionally followed by k, M, G or T \
                 (such as 512k, 64M, 1G)"
            ),
            SizeError::UnknownUnit { text, unit } => write!(
                f,
                "size {text:?}: unknown unit {unit:?}: expected k, M, G or T (powers of 1024), \
                 optionally followed by B or iB"
            ),
            SizeError::TooLarge(t) => write!(f, "size {t:?} does not fit in 64 bits"),
        }
    }
}

impl std::error::Error for SizeError {}

/// Parses a byte count with an optional binary unit: `100` (bytes), `512k`,
/// `64M`, `1G`, `2T`; units are case-insensitive powers of 1024 and may be
/// written `MB` or `MiB` too, since people do. Fractions are refused rather
/// than rounded so the size used is the size typed.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(SizeError::Empty);
    }
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(SizeError::NotANumber(text.to_string()));
    }
    let (num, unit) = t.split_at(digits);
    if unit.starts_with('.') || unit.starts_with(',') {
        return Err(SizeError::NotANumber(text.to_string()));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| SizeError::TooLarge(text.to_string()))?;
    let unit_l = unit.trim_start().to_ascii_lowercase();
    let base = unit_l
        .strip_suffix("ib")
        .or_else(|| unit_l.strip_suffix('b'))
        .unwrap_or(&unit_l);
    let shift = match base {
        "" if unit_l.is_empty() || unit_l == "b" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => {
            return Err(SizeError::UnknownUnit {
                text: text.to_string(),
                unit: unit.trim().to_string(),
            });
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| SizeError::TooLarge(text.to_string()))
}
