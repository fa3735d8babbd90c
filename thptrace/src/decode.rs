//! Names for the numbers a madvise call is made of: advice values and errno
//! values, both ways (number to name for printing, name to number for
//! filters and for reading other tools' output).
//!
//! Unknown values are never dropped: callers print the number instead.

/// Advice values from include/uapi/asm-generic/mman-common.h, as used by every
/// architecture but alpha (DONTNEED is 6 there) and parisc before 6.2.
const ADVICE: &[(i32, &str)] = &[
    (0, "MADV_NORMAL"),
    (1, "MADV_RANDOM"),
    (2, "MADV_SEQUENTIAL"),
    (3, "MADV_WILLNEED"),
    (4, "MADV_DONTNEED"),
    (8, "MADV_FREE"),
    (9, "MADV_REMOVE"),
    (10, "MADV_DONTFORK"),
    (11, "MADV_DOFORK"),
    (12, "MADV_MERGEABLE"),
    (13, "MADV_UNMERGEABLE"),
    (14, "MADV_HUGEPAGE"),
    (15, "MADV_NOHUGEPAGE"),
    (16, "MADV_DONTDUMP"),
    (17, "MADV_DODUMP"),
    (18, "MADV_WIPEONFORK"),
    (19, "MADV_KEEPONFORK"),
    (20, "MADV_COLD"),
    (21, "MADV_PAGEOUT"),
    (22, "MADV_POPULATE_READ"),
    (23, "MADV_POPULATE_WRITE"),
    (24, "MADV_DONTNEED_LOCKED"),
    (25, "MADV_COLLAPSE"),
    (100, "MADV_HWPOISON"),
    (101, "MADV_SOFT_OFFLINE"),
    (102, "MADV_GUARD_INSTALL"),
    (103, "MADV_GUARD_REMOVE"),
];

/// The advice's name (`MADV_NOHUGEPAGE`), or `None` for a value no kernel
/// defines.
pub fn advice_name(advice: i32) -> Option<&'static str> {
    ADVICE.iter().find(|(v, _)| *v == advice).map(|(_, n)| *n)
}

/// Every advice value and name this build knows, in numeric order.
pub fn advice_table() -> &'static [(i32, &'static str)] {
    ADVICE
}

/// Reads an advice as a person or another tool writes it: `MADV_NOHUGEPAGE`,
/// `NOHUGEPAGE`, `nohugepage`, `15` or `0xf`.
pub fn parse_advice(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Some(n) = parse_int(text) {
        return i32::try_from(n).ok();
    }
    let upper = text.to_ascii_uppercase();
    let bare = upper.strip_prefix("MADV_").unwrap_or(&upper);
    ADVICE
        .iter()
        .find(|(_, n)| &n[5..] == bare)
        .map(|(v, _)| *v)
}

/// errno names and messages (include/uapi/asm-generic/errno-base.h and
/// errno.h, x86 and most other architectures), plus the kernel-internal values
/// (include/linux/errno.h) that a tracepoint can see but user space never does.
const ERRNO: &[(i32, &str, &str)] = &[
    (1, "EPERM", "Operation not permitted"),
    (2, "ENOENT", "No such file or directory"),
    (3, "ESRCH", "No such process"),
    (4, "EINTR", "Interrupted system call"),
    (5, "EIO", "Input/output error"),
    (6, "ENXIO", "No such device or address"),
    (7, "E2BIG", "Argument list too long"),
    (8, "ENOEXEC", "Exec format error"),
    (9, "EBADF", "Bad file descriptor"),
    (10, "ECHILD", "No child processes"),
    (11, "EAGAIN", "Resource temporarily unavailable"),
    (12, "ENOMEM", "Cannot allocate memory"),
    (13, "EACCES", "Permission denied"),
    (14, "EFAULT", "Bad address"),
    (15, "ENOTBLK", "Block device required"),
    (16, "EBUSY", "Device or resource busy"),
    (17, "EEXIST", "File exists"),
    (18, "EXDEV", "Invalid cross-device link"),
    (19, "ENODEV", "No such device"),
    (20, "ENOTDIR", "Not a directory"),
    (21, "EISDIR", "Is a directory"),
    (22, "EINVAL", "Invalid argument"),
    (23, "ENFILE", "Too many open files in system"),
    (24, "EMFILE", "Too many open files"),
    (25, "ENOTTY", "Inappropriate ioctl for device"),
    (26, "ETXTBSY", "Text file busy"),
    (27, "EFBIG", "File too large"),
    (28, "ENOSPC", "No space left on device"),
    (29, "ESPIPE", "Illegal seek"),
    (30, "EROFS", "Read-only file system"),
    (31, "EMLINK", "Too many links"),
    (32, "EPIPE", "Broken pipe"),
    (33, "EDOM", "Numerical argument out of domain"),
    (34, "ERANGE", "Numerical result out of range"),
    (35, "EDEADLK", "Resource deadlock avoided"),
    (36, "ENAMETOOLONG", "File name too long"),
    (37, "ENOLCK", "No locks available"),
    (38, "ENOSYS", "Function not implemented"),
    (39, "ENOTEMPTY", "Directory not empty"),
    (40, "ELOOP", "Too many levels of symbolic links"),
    (42, "ENOMSG", "No message of desired type"),
    (43, "EIDRM", "Identifier removed"),
    (44, "ECHRNG", "Channel number out of range"),
    (45, "EL2NSYNC", "Level 2 not synchronized"),
    (46, "EL3HLT", "Level 3 halted"),
    (47, "EL3RST", "Level 3 reset"),
    (48, "ELNRNG", "Link number out of range"),
    (49, "EUNATCH", "Protocol driver not attached"),
    (50, "ENOCSI", "No CSI structure available"),
    (51, "EL2HLT", "Level 2 halted"),
    (52, "EBADE", "Invalid exchange"),
    (53, "EBADR", "Invalid request descriptor"),
    (54, "EXFULL", "Exchange full"),
    (55, "ENOANO", "No anode"),
    (56, "EBADRQC", "Invalid request code"),
    (57, "EBADSLT", "Invalid slot"),
    (59, "EBFONT", "Bad font file format"),
    (60, "ENOSTR", "Device not a stream"),
    (61, "ENODATA", "No data available"),
    (62, "ETIME", "Timer expired"),
    (63, "ENOSR", "Out of streams resources"),
    (64, "ENONET", "Machine is not on the network"),
    (65, "ENOPKG", "Package not installed"),
    (66, "EREMOTE", "Object is remote"),
    (67, "ENOLINK", "Link has been severed"),
    (68, "EADV", "Advertise error"),
    (69, "ESRMNT", "Srmount error"),
    (70, "ECOMM", "Communication error on send"),
    (71, "EPROTO", "Protocol error"),
    (72, "EMULTIHOP", "Multihop attempted"),
    (73, "EDOTDOT", "RFS specific error"),
    (74, "EBADMSG", "Bad message"),
    (75, "EOVERFLOW", "Value too large for defined data type"),
    (76, "ENOTUNIQ", "Name not unique on network"),
    (77, "EBADFD", "File descriptor in bad state"),
    (78, "EREMCHG", "Remote address changed"),
    (79, "ELIBACC", "Can not access a needed shared library"),
    (80, "ELIBBAD", "Accessing a corrupted shared library"),
    (81, "ELIBSCN", ".lib section in a.out corrupted"),
    (
        82,
        "ELIBMAX",
        "Attempting to link in too many shared libraries",
    ),
    (83, "ELIBEXEC", "Cannot exec a shared library directly"),
    (
        84,
        "EILSEQ",
        "Invalid or incomplete multibyte or wide character",
    ),
    (
        85,
        "ERESTART",
        "Interrupted system call should be restarted",
    ),
    (86, "ESTRPIPE", "Streams pipe error"),
    (87, "EUSERS", "Too many users"),
    (88, "ENOTSOCK", "Socket operation on non-socket"),
    (89, "EDESTADDRREQ", "Destination address required"),
    (90, "EMSGSIZE", "Message too long"),
    (91, "EPROTOTYPE", "Protocol wrong type for socket"),
    (92, "ENOPROTOOPT", "Protocol not available"),
    (93, "EPROTONOSUPPORT", "Protocol not supported"),
    (94, "ESOCKTNOSUPPORT", "Socket type not supported"),
    (95, "EOPNOTSUPP", "Operation not supported"),
    (96, "EPFNOSUPPORT", "Protocol family not supported"),
    (
        97,
        "EAFNOSUPPORT",
        "Address family not supported by protocol",
    ),
    (98, "EADDRINUSE", "Address already in use"),
    (99, "EADDRNOTAVAIL", "Cannot assign requested address"),
    (100, "ENETDOWN", "Network is down"),
    (101, "ENETUNREACH", "Network is unreachable"),
    (102, "ENETRESET", "Network dropped connection on reset"),
    (103, "ECONNABORTED", "Software caused connection abort"),
    (104, "ECONNRESET", "Connection reset by peer"),
    (105, "ENOBUFS", "No buffer space available"),
    (106, "EISCONN", "Transport endpoint is already connected"),
    (107, "ENOTCONN", "Transport endpoint is not connected"),
    (
        108,
        "ESHUTDOWN",
        "Cannot send after transport endpoint shutdown",
    ),
    (109, "ETOOMANYREFS", "Too many references: cannot splice"),
    (110, "ETIMEDOUT", "Connection timed out"),
    (111, "ECONNREFUSED", "Connection refused"),
    (112, "EHOSTDOWN", "Host is down"),
    (113, "EHOSTUNREACH", "No route to host"),
    (114, "EALREADY", "Operation already in progress"),
    (115, "EINPROGRESS", "Operation now in progress"),
    (116, "ESTALE", "Stale file handle"),
    (117, "EUCLEAN", "Structure needs cleaning"),
    (118, "ENOTNAM", "Not a XENIX named type file"),
    (119, "ENAVAIL", "No XENIX semaphores available"),
    (120, "EISNAM", "Is a named type file"),
    (121, "EREMOTEIO", "Remote I/O error"),
    (122, "EDQUOT", "Disk quota exceeded"),
    (123, "ENOMEDIUM", "No medium found"),
    (124, "EMEDIUMTYPE", "Wrong medium type"),
    (125, "ECANCELED", "Operation canceled"),
    (126, "ENOKEY", "Required key not available"),
    (127, "EKEYEXPIRED", "Key has expired"),
    (128, "EKEYREVOKED", "Key has been revoked"),
    (129, "EKEYREJECTED", "Key was rejected by service"),
    (130, "EOWNERDEAD", "Owner died"),
    (131, "ENOTRECOVERABLE", "State not recoverable"),
    (132, "ERFKILL", "Operation not possible due to RF-kill"),
    (133, "EHWPOISON", "Memory page has hardware error"),
    (512, "ERESTARTSYS", "To be restarted"),
    (513, "ERESTARTNOINTR", "To be restarted"),
    (514, "ERESTARTNOHAND", "To be restarted if no handler"),
    (515, "ENOIOCTLCMD", "No ioctl command"),
    (516, "ERESTART_RESTARTBLOCK", "To be restarted"),
    (517, "EPROBE_DEFER", "Driver requests probe retry"),
    (524, "ENOTSUPP", "Operation is not supported"),
];

/// Aliases accepted when reading names (`EWOULDBLOCK` is `EAGAIN`, and so on).
const ERRNO_ALIASES: &[(&str, i32)] = &[("EWOULDBLOCK", 11), ("EDEADLOCK", 35), ("ENOTSUP", 95)];

/// The errno's symbolic name (`EINVAL`), or `None` for a value with none.
pub fn errno_name(errno: i32) -> Option<&'static str> {
    ERRNO.iter().find(|(v, _, _)| *v == errno).map(|e| e.1)
}

/// The errno's message as strerror(3) gives it (`Invalid argument`).
pub fn errno_message(errno: i32) -> Option<&'static str> {
    ERRNO.iter().find(|(v, _, _)| *v == errno).map(|e| e.2)
}

/// Reads an errno as it is written: `EINVAL`, `einval`, `22`, `-22`.
pub fn parse_errno(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Some(n) = parse_int(text.strip_prefix('-').unwrap_or(text)) {
        return i32::try_from(n).ok().filter(|n| *n > 0 && *n < 4096);
    }
    let upper = text.to_ascii_uppercase();
    ERRNO
        .iter()
        .find(|(_, n, _)| *n == upper)
        .map(|e| e.0)
        .or_else(|| ERRNO_ALIASES.iter().find(|(n, _)| *n == upper).map(|e| e.1))
}

/// A decimal or `0x` hexadecimal integer.
pub fn parse_int(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16).ok();
    }
    if text.starts_with('-') || text.starts_with('+') {
        return text.parse().ok();
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Writes `advice` the way strace does: the name, or the number for a value
/// with no name.
pub fn write_advice(out: &mut String, advice: i32) {
    match advice_name(advice) {
        Some(name) => out.push_str(name),
        None => crate::digits::push_i64(out, advice.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_round_trips_by_name_and_number() {
        for &(value, name) in ADVICE {
            assert_eq!(advice_name(value), Some(name));
            assert_eq!(parse_advice(name), Some(value));
            assert_eq!(parse_advice(&name[5..].to_lowercase()), Some(value));
            assert_eq!(parse_advice(&value.to_string()), Some(value));
        }
    }

    #[test]
    fn advice_values_match_the_kernel_header() {
        assert_eq!(parse_advice("MADV_HUGEPAGE"), Some(14));
        assert_eq!(parse_advice("MADV_NOHUGEPAGE"), Some(15));
        assert_eq!(parse_advice("MADV_COLLAPSE"), Some(25));
        assert_eq!(parse_advice("MADV_GUARD_REMOVE"), Some(103));
        assert_eq!(parse_advice("0x19"), Some(25));
    }

    #[test]
    fn unknown_advice_has_no_name_and_prints_as_a_number() {
        for value in [5, 6, 7, 26, 99, 9999, -1] {
            assert_eq!(advice_name(value), None);
        }
        let mut s = String::new();
        write_advice(&mut s, 9999);
        assert_eq!(s, "9999");
        assert_eq!(parse_advice("MADV_BOGUS"), None);
        assert_eq!(parse_advice(""), None);
    }

    #[test]
    fn errno_names_messages_and_parsing() {
        assert_eq!(errno_name(22), Some("EINVAL"));
        assert_eq!(errno_message(22), Some("Invalid argument"));
        assert_eq!(errno_name(12), Some("ENOMEM"));
        assert_eq!(errno_name(133), Some("EHWPOISON"));
        assert_eq!(errno_name(41), None);
        assert_eq!(parse_errno("einval"), Some(22));
        assert_eq!(parse_errno("-22"), Some(22));
        assert_eq!(parse_errno("EWOULDBLOCK"), Some(11));
        assert_eq!(parse_errno("0"), None);
        assert_eq!(parse_errno("EBOGUS"), None);
        for &(value, name, _) in ERRNO {
            assert_eq!(parse_errno(name), Some(value));
        }
    }

    #[test]
    fn integers() {
        assert_eq!(parse_int("0x7f06e7f30000"), Some(0x7f06e7f30000));
        assert_eq!(parse_int("4096"), Some(4096));
        assert_eq!(parse_int("-22"), Some(-22));
        assert_eq!(parse_int("12a"), None);
        assert_eq!(parse_int(""), None);
    }
}
