//! Running the command given after `--`: fork it, hold it before `exec` until
//! the tracer has added its pid to the kernel's filter (so not even its first
//! call is missed), then let it go and wait for it.
//!
//! std's `Command::spawn` cannot do this: it returns only after the child has
//! exec'd, and the pid is needed before that.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{Context, Result, bail};
use tokio::io::unix::AsyncFd;

/// A forked child, stopped before exec.
pub struct Held {
    pid: u32,
    go: OwnedFd,
    exec_error: OwnedFd,
    command: String,
}

/// A running child.
pub struct Running {
    pid: u32,
    pidfd: AsyncFd<OwnedFd>,
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 with a valid two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Forks `argv`, held before exec.
pub fn spawn_held(argv: &[String]) -> Result<Held> {
    let command = argv.join(" ");
    let args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("`{command}`: an argument contains a NUL byte"))?;
    let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let (go_read, go_write) = pipe().context("creating a pipe for the traced command")?;
    let (err_read, err_write) = pipe().context("creating a pipe for the traced command")?;

    // SAFETY: after fork the child only calls async-signal-safe functions
    // (read, close, execvp, write, _exit) on data prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error()).context("fork failed");
    }
    if pid == 0 {
        unsafe {
            libc::close(go_write.as_raw_fd());
            libc::close(err_read.as_raw_fd());
            let mut byte = 0u8;
            // Wait for the tracer; EOF (tracer died) means do not run.
            if libc::read(go_read.as_raw_fd(), (&mut byte as *mut u8).cast(), 1) != 1 {
                libc::_exit(126);
            }
            libc::execvp(ptrs[0], ptrs.as_ptr());
            let errno = *libc::__errno_location();
            libc::write(
                err_write.as_raw_fd(),
                (&errno as *const i32).cast(),
                size_of::<i32>(),
            );
            libc::_exit(127);
        }
    }
    drop(go_read);
    drop(err_write);
    Ok(Held {
        pid: pid as u32,
        go: go_write,
        exec_error: err_read,
        command,
    })
}

impl Held {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Lets the child exec; fails if exec failed (command not found, ...).
    pub fn release(self) -> Result<Running> {
        // SAFETY: pidfd_open on our own child, which cannot be reaped yet.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.pid, 0) };
        if pidfd < 0 {
            return Err(io::Error::last_os_error()).context("pidfd_open on the traced command");
        }
        // SAFETY: a fresh descriptor we own.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
        let byte = 1u8;
        // SAFETY: writing one byte from a valid buffer.
        unsafe { libc::write(self.go.as_raw_fd(), (&byte as *const u8).cast(), 1) };
        drop(self.go);
        let mut errno = 0i32;
        // Blocks until exec succeeds (the CLOEXEC pipe closes) or fails.
        // SAFETY: reading into a valid i32.
        let n = unsafe {
            libc::read(
                self.exec_error.as_raw_fd(),
                (&mut errno as *mut i32).cast(),
                size_of::<i32>(),
            )
        };
        if n == size_of::<i32>() as isize {
            reap(self.pid);
            let why = io::Error::from_raw_os_error(errno);
            bail!(
                "cannot run `{}`: {why}; check the command's name and that it is in PATH",
                self.command
            );
        }
        Ok(Running {
            pid: self.pid,
            pidfd: crate::poll::readable(pidfd, "the traced command")?,
        })
    }
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the child to exit; returns the exit status a shell would
    /// report (128 + signal for a killed child).
    pub async fn wait(&self) -> Result<i32> {
        let _ready = self.pidfd.readable().await?;
        Ok(reap(self.pid))
    }
}

fn reap(pid: u32) -> i32 {
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    unsafe { libc::waitpid(pid as i32, &mut status, 0) };
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}
