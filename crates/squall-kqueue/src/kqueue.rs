//! The syscall glue: `libc::kevent` to and from the types of [`crate::translate`].

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use squall_poller::{sys, syscall, util, Events, Interest, Poller};

use crate::translate::{self, Action, Applied, Change, Changes, Filter, RawEvent, Receipt};

/// A level-triggered kqueue poller.
///
/// Tornado's `_KQueue`. Each direction of interest is one filter (`EVFILT_READ`,
/// `EVFILT_WRITE`) without `EV_CLEAR`, so readiness is level-triggered like epoll's.
/// kqueue itself never answers "already registered" (`EV_ADD` on a known filter just
/// updates it) and has no notion of an fd without filters, so the poller keeps a map of
/// registered fds and their interest: it gives the contract's `AlreadyExists` and
/// `NotFound`, and lets `modify` send only the difference (delete what is no longer
/// wanted, add what is new) in one `kevent` call with `EV_RECEIPT`.
///
/// See the [crate docs](crate) for what each result means.
#[doc(alias = "_KQueue")]
#[doc(alias = "kqueue")]
#[derive(Debug)]
pub struct Kqueue {
    kq: OwnedFd,
    /// Every registered fd: its interest, and whether the kernel refused its write
    /// filter.
    regs: HashMap<RawFd, Reg>,
    /// The fds watched for WRITE whose write filter the kernel refused (usually none):
    /// each poll reports them WRITE and HUP itself.
    refused: Vec<RawFd>,
    /// Raw results for `kevent`, grown to the caller's `Events` capacity once.
    buf: Vec<libc::kevent>,
    /// The same results in our terms, for merging (reused).
    raw: Vec<RawEvent>,
}

/// One registration.
#[derive(Debug, Clone, Copy)]
struct Reg {
    interest: Interest,
    write_refused: bool,
}

fn empty_kevent() -> libc::kevent {
    // SAFETY: kevent is plain old data (integers and a udata pointer, here null); all
    // zeroes is a valid value.
    unsafe { std::mem::zeroed() }
}

fn filter_to_sys(filter: Filter) -> i16 {
    match filter {
        Filter::Read => libc::EVFILT_READ,
        Filter::Write => libc::EVFILT_WRITE,
    }
}

fn filter_from_sys(filter: i16) -> Option<Filter> {
    match filter {
        libc::EVFILT_READ => Some(Filter::Read),
        libc::EVFILT_WRITE => Some(Filter::Write),
        _ => None,
    }
}

/// `kevent::data`, which is `isize` on Apple and `i64` on FreeBSD.
#[allow(clippy::unnecessary_cast)]
fn data_of(k: &libc::kevent) -> i64 {
    k.data as i64
}

fn timespec(t: Duration) -> libc::timespec {
    let (secs, nanos) = translate::timespec_parts(t);
    libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: nanos as _,
    }
}

impl Kqueue {
    /// Creates a kqueue (close-on-exec).
    ///
    /// # Errors
    ///
    /// The OS error of `kqueue()` (`EMFILE`, `ENOMEM`) or of setting `FD_CLOEXEC`.
    pub fn new() -> io::Result<Kqueue> {
        // SAFETY: kqueue takes no arguments and has no memory preconditions.
        let fd = syscall!(unsafe { libc::kqueue() })?;
        // SAFETY: kqueue just returned this fd and nothing else owns it.
        let kq = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: F_SETFD takes an integer argument; the fd is open and ours.
        syscall!(unsafe { libc::fcntl(kq.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
        Ok(Kqueue {
            kq,
            regs: HashMap::new(),
            refused: Vec::new(),
            buf: Vec::new(),
            raw: Vec::new(),
        })
    }

    /// Sends `changes` for `fd` in one `kevent` call and checks every receipt. If a
    /// change fails, the ones the kernel applied before it are undone (best effort: an
    /// undo that fails too is logged), so that a failed registration leaves no filter
    /// behind and a failed modify keeps the old interest.
    fn apply(&self, fd: RawFd, changes: &Changes) -> io::Result<Applied> {
        match self.send(fd, changes)? {
            Ok(applied) => Ok(applied),
            Err(failed) => {
                if !failed.undo.is_empty() {
                    match self.send(fd, &failed.undo) {
                        Ok(Ok(_)) => {}
                        Ok(Err(f)) => {
                            log::warn!("kqueue: undoing a failed change on fd {fd}: {}", f.error)
                        }
                        Err(e) => log::warn!("kqueue: undoing a failed change on fd {fd}: {e}"),
                    }
                }
                Err(failed.error)
            }
        }
    }

    /// One `kevent` call with `changes` for `fd` and `EV_RECEIPT`: the call's own error,
    /// or what the receipts say.
    fn send(&self, fd: RawFd, changes: &Changes) -> io::Result<Result<Applied, translate::Failed>> {
        let list: &[Change] = changes.as_slice();
        let mut kevs = [empty_kevent(), empty_kevent()];
        for (k, c) in kevs.iter_mut().zip(list) {
            k.ident = fd as libc::uintptr_t;
            k.filter = filter_to_sys(c.filter);
            k.flags = libc::EV_RECEIPT
                | match c.action {
                    Action::Add => libc::EV_ADD,
                    Action::Delete => libc::EV_DELETE,
                };
        }
        let n = list.len() as libc::c_int;
        let zero = timespec(Duration::ZERO);
        let ptr = kevs.as_mut_ptr();
        let got = loop {
            // SAFETY: `kevs` holds `n` initialised changes and room for `n` receipts;
            // the kernel reads each change before writing receipts over it (the same
            // buffer for both, as mio does). `zero` is a live timespec.
            match syscall!(unsafe { libc::kevent(self.kq.as_raw_fd(), ptr, n, ptr, n, &zero) }) {
                // Changes are idempotent here (EV_ADD updates, a repeated EV_DELETE is
                // ENOENT, which is ignored), so retrying after a signal is safe.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                res => break res? as usize,
            }
        };
        let mut receipts = [Receipt {
            filter: None,
            error: false,
            data: 0,
        }; 2];
        for (r, k) in receipts.iter_mut().zip(&kevs[..got.min(2)]) {
            *r = Receipt {
                filter: filter_from_sys(k.filter),
                error: k.flags & libc::EV_ERROR != 0,
                data: data_of(k),
            };
        }
        Ok(translate::check_receipts(list, &receipts[..got.min(2)]))
    }

    /// Records `fd`'s registration after a successful change to `new`.
    fn record(
        &mut self,
        fd: RawFd,
        was_refused: bool,
        changes: &Changes,
        applied: Applied,
        new: Interest,
    ) {
        let write_refused = translate::write_refused_after(was_refused, changes, applied, new);
        self.regs.insert(
            fd,
            Reg {
                interest: new,
                write_refused,
            },
        );
        self.refused.retain(|&f| f != fd);
        if write_refused {
            self.refused.push(fd);
        }
    }
}

impl Poller for Kqueue {
    fn register(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        if self.regs.contains_key(&fd) {
            return Err(util::already_registered(fd));
        }
        let changes = translate::changes(Interest::NONE, interest);
        if changes.is_empty() {
            // No filter to add, so no kevent call to find a bad fd.
            sys::check_fd(fd)?;
        }
        let applied = self.apply(fd, &changes)?;
        self.record(fd, false, &changes, applied, interest);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        let old = *self.regs.get(&fd).ok_or_else(|| util::not_registered(fd))?;
        let changes = translate::changes(old.interest, interest);
        let applied = self.apply(fd, &changes)?;
        self.record(fd, old.write_refused, &changes, applied, interest);
        Ok(())
    }

    fn unregister(&mut self, fd: RawFd) -> io::Result<()> {
        let old = self
            .regs
            .remove(&fd)
            .ok_or_else(|| util::not_registered(fd))?;
        self.refused.retain(|&f| f != fd);
        self.apply(fd, &translate::changes(old.interest, Interest::NONE))
            .map(drop)
    }

    fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        events.clear();
        let cap = events.capacity().min(i32::MAX as usize);
        if self.buf.len() < cap {
            self.buf.resize(cap, empty_kevent());
        }
        let kq = self.kq.as_raw_fd();
        let buf = &mut self.buf;
        // An fd reported by the poller itself is ready now: do not wait.
        let timeout = if self.refused.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        let n = util::retry_eintr(timeout, |t| {
            let ts = t.map(timespec);
            let tsp = ts
                .as_ref()
                .map_or(std::ptr::null(), |ts| ts as *const libc::timespec);
            // SAFETY: no changes are passed; `buf` holds at least `cap` initialised
            // kevents and is not touched elsewhere during the call; the kernel writes at
            // most `cap`. `tsp` is null or points at a live timespec.
            syscall!(unsafe {
                libc::kevent(
                    kq,
                    std::ptr::null(),
                    0,
                    buf.as_mut_ptr(),
                    cap as libc::c_int,
                    tsp,
                )
            })
            .map(|n| n as usize)
        })?;
        self.raw.clear();
        self.raw.extend(self.buf[..n].iter().map(|k| RawEvent {
            fd: k.ident as RawFd,
            filter: filter_from_sys(k.filter),
            eof: k.flags & libc::EV_EOF != 0,
            error: k.flags & libc::EV_ERROR != 0,
            fflags: k.fflags,
            data: data_of(k),
        }));
        self.raw.extend(
            self.refused
                .iter()
                .map(|&fd| translate::refused_write_event(fd)),
        );
        translate::merge_into(&mut self.raw, events);
        Ok(events.len())
    }

    fn name(&self) -> &'static str {
        "kqueue"
    }
}
