//! madvise-scenarios: makes madvise and process_madvise calls with known
//! outcomes, and says exactly what it did, so thptrace's tests and benchmarks
//! can compare what thptrace saw with what really happened.
//!
//! Output: JSON lines on stdout. First `{"pid":P}`; with `--wait`, it then
//! waits for a line on stdin (so a tracer can attach first). Then one line per
//! call: `{"syscall":"madvise","tid":T,"start":S,"len":L,"advice":A,"ret":R,
//! "flags":F,"vlen":V}` where `ret` is the kernel's return value (`-errno` on
//! failure), and finally `{"done":true}`.
//!
//! Scenarios (default: `failures successes`):
//!   failures        the failing calls thptrace's tests expect
//!   successes       calls that succeed (must not be reported without --all)
//!   thread          one failing call from a second thread
//!   shared-file     MADV_WIPEONFORK on a shared file mapping (EINVAL: only
//!                   private anonymous memory can be wiped on fork)
//!   nohugepage      what CRIU's restorer does for a thread stack:
//!                   madvise(page-aligned private anonymous area, MADV_NOHUGEPAGE)
//!   loop-fail N     N back-to-back failing calls (advice 9999); prints the
//!                   mean ns per call instead of one line per call
//!   loop-ok N       N back-to-back succeeding calls (MADV_NORMAL)
//!   loop-other N    N calls of another system call (getppid), to measure
//!                   what a tracer costs the rest of the host
//!   cpu N           run the rest on CPU N only (a tracer's cost can depend
//!                   on the CPU: bpftrace's does)
use std::io::{BufRead, Write};
use std::time::Instant;

const INVALID_ADVICE: i32 = 9999;

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

fn gettid() -> i64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) }
}

/// The raw system call, so the return value is the kernel's own (`-errno`).
fn madvise(start: usize, len: usize, advice: i32) -> i64 {
    // SAFETY: madvise may fail but cannot corrupt memory for the advice values
    // used here (none of them discards memory this program still uses).
    let r = unsafe { libc::syscall(libc::SYS_madvise, start, len, advice) };
    if r < 0 { -(errno() as i64) } else { r }
}

fn process_madvise(pidfd: i32, iov: &[libc::iovec], advice: i32, flags: u32) -> i64 {
    // SAFETY: iov points at valid iovecs for the duration of the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_process_madvise,
            pidfd,
            iov.as_ptr(),
            iov.len(),
            advice,
            flags,
        )
    };
    if r < 0 { -(errno() as i64) } else { r }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// An anonymous private mapping of `pages` pages.
fn map(pages: usize) -> usize {
    // SAFETY: a fresh anonymous mapping; the kernel picks the address.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            pages * page_size(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(
        p,
        libc::MAP_FAILED,
        "mmap failed: {}",
        std::io::Error::last_os_error()
    );
    p as usize
}

/// An address range that is certainly not mapped: mapped, then unmapped.
fn unmapped(pages: usize) -> usize {
    let p = map(pages);
    // SAFETY: unmapping the mapping made just above.
    unsafe { libc::munmap(p as *mut _, pages * page_size()) };
    p
}

struct Report {
    out: std::io::StdoutLock<'static>,
}

/// One call as madvise-scenarios reports it (see the module comment).
struct Call<'a> {
    tid: i64,
    syscall: &'a str,
    start: usize,
    len: usize,
    advice: i32,
    ret: i64,
    flags: u32,
    vlen: usize,
    pidfd: i32,
}

impl Report {
    /// Makes `madvise(start, len, advice)` from this thread and reports it.
    fn madvise(&mut self, start: usize, len: usize, advice: i32) {
        let ret = madvise(start, len, advice);
        self.call(&Call::madvise(gettid(), start, len, advice, ret));
    }

    /// Makes `process_madvise(pidfd, iov, advice, flags)` and reports it
    /// with its first iovec.
    fn process_madvise(&mut self, pidfd: i32, iov: &[libc::iovec], advice: i32, flags: u32) {
        let ret = process_madvise(pidfd, iov, advice, flags);
        self.call(&Call {
            tid: gettid(),
            syscall: "process_madvise",
            start: iov[0].iov_base as usize,
            len: iov[0].iov_len,
            advice,
            ret,
            flags,
            vlen: iov.len(),
            pidfd,
        });
    }

    fn call(&mut self, c: &Call) {
        writeln!(
            self.out,
            r#"{{"syscall":"{}","tid":{},"start":{},"len":{},"advice":{},"ret":{},"flags":{},"vlen":{},"pidfd":{}}}"#,
            c.syscall, c.tid, c.start, c.len, c.advice, c.ret, c.flags, c.vlen, c.pidfd
        )
        .unwrap();
    }
}

impl Call<'_> {
    /// A madvise call made by thread `tid`.
    fn madvise(tid: i64, start: usize, len: usize, advice: i32, ret: i64) -> Self {
        Call {
            tid,
            syscall: "madvise",
            start,
            len,
            advice,
            ret,
            flags: 0,
            vlen: 0,
            pidfd: -1,
        }
    }
}

fn failures(r: &mut Report) {
    let ps = page_size();
    let area = map(4);

    // An advice no kernel knows: EINVAL before any memory is looked at.
    r.madvise(area, ps, INVALID_ADVICE);
    // A start that is not page-aligned: EINVAL.
    r.madvise(area + 1, ps, libc::MADV_NOHUGEPAGE);
    // A range that is not mapped: ENOMEM.
    let hole = unmapped(2);
    r.madvise(hole, 2 * ps, libc::MADV_NORMAL);
    // MADV_REMOVE on private anonymous memory: EINVAL.
    r.madvise(area, ps, libc::MADV_REMOVE);
    // MADV_DONTNEED on mlocked memory: EINVAL.
    let locked = map(1);
    // SAFETY: locking our own fresh mapping.
    let rc = unsafe { libc::mlock(locked as *const _, ps) };
    assert_eq!(rc, 0, "mlock failed: {}", std::io::Error::last_os_error());
    r.madvise(locked, ps, libc::MADV_DONTNEED);
    // process_madvise with flags that are not 0: EINVAL.
    // SAFETY: pidfd_open on our own pid.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, std::process::id(), 0) } as i32;
    assert!(
        pidfd >= 0,
        "pidfd_open failed: {}",
        std::io::Error::last_os_error()
    );
    let iov = [
        libc::iovec {
            iov_base: area as *mut _,
            iov_len: ps,
        },
        libc::iovec {
            iov_base: (area + 2 * ps) as *mut _,
            iov_len: ps,
        },
    ];
    r.process_madvise(pidfd, &iov, libc::MADV_COLD, 1);
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(pidfd) };
}

fn successes(r: &mut Report) {
    let ps = page_size();
    let area = map(2);
    r.madvise(area, ps, libc::MADV_NORMAL);
    r.madvise(area, 2 * ps, libc::MADV_DONTNEED);
    // SAFETY: pidfd_open on our own pid.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, std::process::id(), 0) } as i32;
    let iov = [libc::iovec {
        iov_base: area as *mut _,
        iov_len: ps,
    }];
    r.process_madvise(pidfd, &iov, libc::MADV_COLD, 0);
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(pidfd) };
}

fn thread(r: &mut Report) {
    let ps = page_size();
    let area = map(1);
    let (tid, ret) = std::thread::spawn(move || (gettid(), madvise(area, ps, INVALID_ADVICE)))
        .join()
        .unwrap();
    r.call(&Call::madvise(tid, area, ps, INVALID_ADVICE, ret));
}

fn shared_file(r: &mut Report) {
    let ps = page_size();
    let path = std::env::temp_dir().join(format!("madvise-scenarios-{}", std::process::id()));
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("creating a file in the temporary directory");
    file.set_len(2 * ps as u64).unwrap();
    let _ = std::fs::remove_file(&path);
    use std::os::fd::AsRawFd;
    // SAFETY: a fresh shared mapping of our own file.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * ps,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(
        p,
        libc::MAP_FAILED,
        "mmap failed: {}",
        std::io::Error::last_os_error()
    );
    let area = p as usize;
    r.madvise(area, ps, libc::MADV_WIPEONFORK);
}

fn nohugepage(r: &mut Report) {
    let ps = page_size();
    let area = map(8);
    r.madvise(area, 8 * ps, libc::MADV_NOHUGEPAGE);
}

fn run_loop(r: &mut Report, n: u64, kind: &str) {
    let ps = page_size();
    let area = map(1);
    let advice = if kind == "fail" {
        INVALID_ADVICE
    } else {
        libc::MADV_NORMAL
    };
    let t = Instant::now();
    for _ in 0..n {
        if kind == "other" {
            // SAFETY: getppid has no preconditions.
            std::hint::black_box(unsafe { libc::syscall(libc::SYS_getppid) });
        } else {
            std::hint::black_box(madvise(area, ps, advice));
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / n.max(1) as f64;
    writeln!(
        r.out,
        r#"{{"loop":"{kind}","calls":{n},"ns_per_call":{ns:.1}}}"#
    )
    .unwrap();
}

/// Restricts this process to one CPU.
fn pin_to_cpu(cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET bounds-checks
    // nothing, so the number is checked against the set's size first.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let wait = args.first().is_some_and(|a| a == "--wait");
    if wait {
        args.remove(0);
    }
    if args.is_empty() {
        args = vec!["failures".into(), "successes".into()];
    }
    let mut r = Report {
        out: std::io::stdout().lock(),
    };
    writeln!(r.out, r#"{{"pid":{}}}"#, std::process::id()).unwrap();
    r.out.flush().unwrap();
    if wait {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).unwrap();
    }
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "failures" => failures(&mut r),
            "successes" => successes(&mut r),
            "thread" => thread(&mut r),
            "nohugepage" => nohugepage(&mut r),
            "shared-file" => shared_file(&mut r),
            "cpu" => {
                let cpu = args.get(i + 1).and_then(|n| n.parse().ok());
                match cpu.map(pin_to_cpu) {
                    Some(Ok(())) => {}
                    Some(Err(e)) => {
                        eprintln!("madvise-scenarios: cannot run on CPU {}: {e}", args[i + 1]);
                        std::process::exit(1)
                    }
                    None => {
                        eprintln!("madvise-scenarios: cpu needs a CPU number, e.g. `cpu 0`");
                        std::process::exit(2)
                    }
                }
                i += 1;
            }
            "loop-fail" | "loop-ok" | "loop-other" => {
                let n = args
                    .get(i + 1)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| {
                        eprintln!(
                            "madvise-scenarios: {} needs a call count, e.g. `{} 1000000`",
                            args[i], args[i]
                        );
                        std::process::exit(2)
                    });
                run_loop(&mut r, n, &args[i]["loop-".len()..]);
                i += 1;
            }
            other => {
                eprintln!(
                    "madvise-scenarios: unknown scenario `{other}`; known: failures, successes, thread, shared-file, nohugepage, loop-fail N, loop-ok N, loop-other N, cpu N"
                );
                std::process::exit(2);
            }
        }
        i += 1;
    }
    writeln!(r.out, r#"{{"done":true}}"#).unwrap();
    r.out.flush().unwrap();
}
