//! Reading the BPF ring buffer through our own mapping of it.
//!
//! aya's `RingBuf` publishes the consumer position after every record. The
//! kernel reads that position on every reservation, so each publication costs
//! the traced program a cache miss on its CPU: at a million events a second
//! that was a large part of what thptrace added to a failing call. Here the
//! position is published once per batch (and every quarter of the ring, so a
//! long batch still frees room). The layout is the kernel's
//! (kernel/bpf/ringbuf.c): a consumer page, then a producer page followed by
//! the data pages, mapped twice in a row so no record wraps.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use anyhow::{Result, bail};
use aya::maps::MapData;

const BUSY: u32 = 1 << 31;
const DISCARD: u32 = 1 << 30;
const HEADER: u64 = 8;

pub struct Ring {
    map: MapData,
    consumer: *mut libc::c_void,
    producer: *mut libc::c_void,
    page: usize,
    size: usize,
}

// SAFETY: the mappings are owned by this value and only used through &mut.
unsafe impl Send for Ring {}

fn mmap(fd: RawFd, len: usize, prot: i32, offset: usize) -> Result<*mut libc::c_void> {
    // SAFETY: mmap of a ring buffer map's descriptor, as the kernel documents.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_SHARED,
            fd,
            offset as i64,
        )
    };
    if p == libc::MAP_FAILED {
        bail!(
            "mapping the ring buffer: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(p)
}

impl Ring {
    /// Maps the ring buffer `map` of `size` bytes (a power of two).
    pub fn new(map: MapData, size: usize) -> Result<Ring> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let fd = map.fd().as_fd().as_raw_fd();
        let consumer = mmap(fd, page, libc::PROT_READ | libc::PROT_WRITE, 0)?;
        let producer = match mmap(fd, page + 2 * size, libc::PROT_READ, page) {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: unmapping what was mapped just above.
                unsafe { libc::munmap(consumer, page) };
                return Err(e);
            }
        };
        Ok(Ring {
            map,
            consumer,
            producer,
            page,
            size,
        })
    }

    fn consumer_pos(&self) -> &AtomicU64 {
        // SAFETY: the consumer page starts with the 8-byte aligned position.
        unsafe { &*(self.consumer as *const AtomicU64) }
    }

    fn producer_pos(&self) -> &AtomicU64 {
        // SAFETY: the producer page starts with the 8-byte aligned position.
        unsafe { &*(self.producer as *const AtomicU64) }
    }

    /// Hands every committed record to `sink`; returns how many.
    pub fn drain(&mut self, mut sink: impl FnMut(&[u8])) -> usize {
        let mask = self.size as u64 - 1;
        // SAFETY: the data pages follow the producer page.
        let data = unsafe { (self.producer as *const u8).add(self.page) };
        let mut cons = self.consumer_pos().load(Ordering::Relaxed);
        let mut published = cons;
        let mut n = 0;
        loop {
            let prod = self.producer_pos().load(Ordering::Acquire);
            if cons == prod {
                break;
            }
            while cons != prod {
                let offset = (cons & mask) as usize;
                // SAFETY: offset is inside the ring; the header is 8-byte aligned.
                let header = unsafe { &*(data.add(offset) as *const AtomicU32) };
                let h = header.load(Ordering::Acquire);
                if h & BUSY != 0 {
                    // Reserved but not yet committed: stop here, come back later.
                    self.consumer_pos().store(cons, Ordering::Release);
                    return n;
                }
                let len = (h & !(BUSY | DISCARD)) as usize;
                if h & DISCARD == 0 {
                    // SAFETY: the record lies in the double mapping, past its header.
                    let record = unsafe {
                        std::slice::from_raw_parts(data.add(offset + HEADER as usize), len)
                    };
                    sink(record);
                    n += 1;
                }
                cons += (len as u64 + HEADER + 7) & !7;
                if cons - published >= self.size as u64 / 4 {
                    self.consumer_pos().store(cons, Ordering::Release);
                    published = cons;
                }
            }
        }
        self.consumer_pos().store(cons, Ordering::Release);
        n
    }
}

impl AsRawFd for Ring {
    fn as_raw_fd(&self) -> RawFd {
        self.map.fd().as_fd().as_raw_fd()
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mappings, once.
        unsafe {
            libc::munmap(self.consumer, self.page);
            libc::munmap(self.producer, self.page + 2 * self.size);
        }
    }
}
