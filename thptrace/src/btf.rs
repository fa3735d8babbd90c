//! Just enough of a BTF reader to find where a kernel structure keeps a field.
//!
//! Rust eBPF programs have no CO-RE field relocations, so the loader reads the
//! offsets of the `vm_area_struct` fields the kernel programs need from the
//! running kernel's BTF (`/sys/kernel/btf/vmlinux`) and hands them over as
//! configuration. aya parses BTF too, but keeps member offsets private.
//!
//! Format: include/uapi/linux/btf.h and Documentation/bpf/btf.rst.

use std::fmt;

const MAGIC: u16 = 0xeb9f;

const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// Why BTF could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BtfError {
    /// Not BTF, or cut short.
    Malformed(String),
    /// No structure of that name.
    NoStruct(String),
}

impl fmt::Display for BtfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BtfError::Malformed(why) => write!(f, "malformed BTF: {why}"),
            BtfError::NoStruct(name) => write!(f, "BTF has no struct {name}"),
        }
    }
}

impl std::error::Error for BtfError {}

/// Parsed BTF: where each type starts, and the string table.
pub struct Btf<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    /// Offset in `types` of type id `i + 1`.
    starts: Vec<usize>,
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

impl<'a> Btf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Btf<'a>, BtfError> {
        let bad = |why: &str| BtfError::Malformed(why.to_string());
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            return Err(bad("no BTF magic (little-endian only)"));
        }
        let hdr_len = u32_at(data, 4).ok_or_else(|| bad("header"))? as usize;
        let field = |i: usize| u32_at(data, 8 + 4 * i).map(|v| v as usize);
        let (type_off, type_len, str_off, str_len) = (
            field(0).ok_or_else(|| bad("header"))?,
            field(1).ok_or_else(|| bad("header"))?,
            field(2).ok_or_else(|| bad("header"))?,
            field(3).ok_or_else(|| bad("header"))?,
        );
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off)?;
            data.get(start..start.checked_add(len)?)
        };
        let types = section(type_off, type_len).ok_or_else(|| bad("type section out of bounds"))?;
        let strings =
            section(str_off, str_len).ok_or_else(|| bad("string section out of bounds"))?;

        let mut starts = Vec::new();
        let mut off = 0;
        while off < types.len() {
            let info = u32_at(types, off + 4).ok_or_else(|| bad("truncated type"))?;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
                0 | 2 | 7 | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | 12 | 16
                | KIND_TYPE_TAG => 0,
                other => return Err(BtfError::Malformed(format!("unknown type kind {other}"))),
            };
            starts.push(off);
            off += 12 + extra;
        }
        if off != types.len() {
            return Err(bad("type section ends inside a type"));
        }
        Ok(Btf {
            types,
            strings,
            starts,
        })
    }

    fn string(&self, off: u32) -> &'a str {
        let rest = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("")
    }

    /// (name offset, kind, vlen, kind_flag, size_or_type, start of extra data)
    fn header(&self, id: u32) -> Option<(u32, u32, usize, bool, u32, usize)> {
        let off = *self.starts.get((id as usize).checked_sub(1)?)?;
        let name = u32_at(self.types, off)?;
        let info = u32_at(self.types, off + 4)?;
        let size_or_type = u32_at(self.types, off + 8)?;
        Some((
            name,
            (info >> 24) & 0x1f,
            (info & 0xffff) as usize,
            info >> 31 == 1,
            size_or_type,
            off + 12,
        ))
    }

    /// Follows typedefs and qualifiers to the type underneath.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.header(id) {
                Some((
                    _,
                    KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG,
                    _,
                    _,
                    next,
                    _,
                )) => id = next,
                _ => break,
            }
        }
        id
    }

    fn struct_id(&self, name: &str) -> Option<u32> {
        (1..=self.starts.len() as u32).find(
            |&id| matches!(self.header(id), Some((n, KIND_STRUCT, ..)) if self.string(n) == name),
        )
    }

    /// Byte offset of `field` in struct/union `id`, looking inside anonymous
    /// members (the kernel wraps `vm_start` and `vm_flags` in unions).
    fn member_offset(&self, id: u32, field: &str, depth: u32) -> Option<u32> {
        if depth > 8 {
            return None;
        }
        let (_, kind, vlen, kind_flag, _, extra) = self.header(id)?;
        if kind != KIND_STRUCT && kind != KIND_UNION {
            return None;
        }
        for i in 0..vlen {
            let m = extra + 12 * i;
            let name = u32_at(self.types, m)?;
            let ty = u32_at(self.types, m + 4)?;
            let raw = u32_at(self.types, m + 8)?;
            // With kind_flag the low 24 bits are the bit offset.
            let bits = if kind_flag { raw & 0x00ff_ffff } else { raw };
            if name != 0 && self.string(name) == field {
                return (bits % 8 == 0).then_some(bits / 8);
            }
            if name == 0
                && let Some(inner) = self.member_offset(self.resolve(ty), field, depth + 1)
            {
                return Some(bits / 8 + inner);
            }
        }
        None
    }

    /// Offsets of `fields` in `struct name`, `None` for a field it lacks.
    pub fn offsets(&self, name: &str, fields: &[&str]) -> Result<Vec<Option<u32>>, BtfError> {
        let id = self
            .struct_id(name)
            .ok_or_else(|| BtfError::NoStruct(name.to_string()))?;
        Ok(fields
            .iter()
            .map(|f| self.member_offset(id, f, 0))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds BTF with: 1 = int "long" (8 bytes), 2 = anonymous struct
    /// { long vm_start @0; long vm_end @8 }, 3 = anonymous union { struct 2 },
    /// 4 = struct vm_area_struct { union 3 @0; long vm_flags @16 (kind_flag
    /// encoding) }.
    fn sample() -> Vec<u8> {
        let strings = b"\0long\0vm_start\0vm_end\0vm_area_struct\0vm_flags\0";
        let s = |name: &str| {
            let pos = strings
                .windows(name.len() + 1)
                .position(|w| &w[..name.len()] == name.as_bytes() && w[name.len()] == 0)
                .unwrap();
            pos as u32
        };
        let mut types = Vec::new();
        let mut push = |words: &[u32]| {
            for w in words {
                types.extend_from_slice(&w.to_le_bytes());
            }
        };
        push(&[s("long"), KIND_INT << 24, 8, 64]);
        push(&[
            0,
            KIND_STRUCT << 24 | 2,
            16,
            s("vm_start"),
            1,
            0,
            s("vm_end"),
            1,
            64,
        ]);
        push(&[0, KIND_UNION << 24 | 1, 16, 0, 2, 0]);
        push(&[
            s("vm_area_struct"),
            1 << 31 | KIND_STRUCT << 24 | 2,
            24,
            0,
            3,
            0,
            s("vm_flags"),
            1,
            128,
        ]);
        let mut data = Vec::new();
        data.extend_from_slice(&MAGIC.to_le_bytes());
        data.extend_from_slice(&[1, 0]);
        for w in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            data.extend_from_slice(&w.to_le_bytes());
        }
        data.extend_from_slice(&types);
        data.extend_from_slice(strings);
        data
    }

    #[test]
    fn finds_fields_inside_anonymous_members() {
        let data = sample();
        let btf = Btf::parse(&data).unwrap();
        let offs = btf
            .offsets(
                "vm_area_struct",
                &["vm_start", "vm_end", "vm_flags", "vm_file"],
            )
            .unwrap();
        assert_eq!(offs, vec![Some(0), Some(8), Some(16), None]);
        assert_eq!(
            btf.offsets("task_struct", &["pid"]).unwrap_err(),
            BtfError::NoStruct("task_struct".into())
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(Btf::parse(b"not btf at all, not at all").is_err());
        let data = sample();
        for cut in 0..data.len() {
            let _ = Btf::parse(&data[..cut]);
        }
    }

    #[test]
    fn reads_this_kernels_vm_area_struct() {
        // Every kernel thptrace supports has BTF (setup::prepare insists).
        let data = std::fs::read("/sys/kernel/btf/vmlinux").expect("this kernel's BTF");
        let btf = Btf::parse(&data).unwrap();
        let offs = btf
            .offsets(
                "vm_area_struct",
                &["vm_start", "vm_end", "vm_flags", "vm_file"],
            )
            .unwrap();
        assert_eq!(offs[0], Some(0), "vm_start comes first in every kernel");
        assert_eq!(offs[1], Some(8));
        assert!(offs[2].is_some() && offs[3].is_some(), "{offs:?}");
    }
}
