//! The kqueue logic that needs no kqueue, compiled and unit-tested on every platform:
//! which `kevent` changes move an fd from one [`Interest`] to another, what the
//! kernel's results mean as [`Ready`], and which change receipts are errors.
//!
//! The types here are our own, not libc's, so that this file builds on Linux; the glue
//! in `kqueue.rs` converts `libc::kevent` to and from them and nothing more.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use squall_poller::{Event, Events, Interest, Ready};

/// The two kqueue filters a registration uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Filter {
    /// `EVFILT_READ`.
    Read,
    /// `EVFILT_WRITE`.
    Write,
}

/// What a change does to a filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// `EV_ADD` (level-triggered: no `EV_CLEAR`, no `EV_ONESHOT`).
    Add,
    /// `EV_DELETE`.
    Delete,
}

/// One entry of a `kevent` change list, for the fd being changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) filter: Filter,
    pub(crate) action: Action,
}

/// The changes of one interest transition: at most one per filter, deletes first, all
/// sent in one `kevent` call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Changes {
    list: [Change; 2],
    len: usize,
}

impl Changes {
    fn empty() -> Changes {
        Changes {
            list: [Change {
                filter: Filter::Read,
                action: Action::Add,
            }; 2],
            len: 0,
        }
    }

    pub(crate) fn as_slice(&self) -> &[Change] {
        &self.list[..self.len]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, change: Change) {
        self.list[self.len] = change;
        self.len += 1;
    }
}

/// The changes that move an fd from `old` to `new` interest: delete the filters no
/// longer wanted, add the new ones, touch nothing else. `register` is the move from
/// [`Interest::NONE`], `unregister` the move to it; a move to the same interest is no
/// change at all (and no syscall).
pub(crate) fn changes(old: Interest, new: Interest) -> Changes {
    let mut out = Changes::empty();
    let dirs = [
        (Filter::Read, old.is_readable(), new.is_readable()),
        (Filter::Write, old.is_writable(), new.is_writable()),
    ];
    for (filter, was, now) in dirs {
        if was && !now {
            out.push(Change {
                filter,
                action: Action::Delete,
            });
        }
    }
    for (filter, was, now) in dirs {
        if now && !was {
            out.push(Change {
                filter,
                action: Action::Add,
            });
        }
    }
    out
}

/// One `kevent` result, in our terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawEvent {
    /// The fd (`ident`).
    pub(crate) fd: RawFd,
    /// The filter, or `None` for one we never add.
    pub(crate) filter: Option<Filter>,
    /// `EV_EOF`: the direction of this filter is closed.
    pub(crate) eof: bool,
    /// `EV_ERROR`: the kernel could not process the knote; `data` is the errno.
    pub(crate) error: bool,
    /// `fflags`: with `EV_EOF`, the socket error (`so_error`), or 0 for a clean close.
    pub(crate) fflags: u32,
    /// `data`: bytes available, buffer space, or an errno with `EV_ERROR`.
    pub(crate) data: i64,
}

/// What one `kevent` result means in the contract's terms:
///
/// * `EVFILT_READ` is READ, with or without `EV_EOF`: a peer's end-of-file is read as
///   0 bytes, never an error. If `EV_EOF` carries a socket error in `fflags` (a reset, a
///   refused connect), ERROR is added, as epoll's `EPOLLERR` would.
/// * `EVFILT_WRITE` is WRITE; with `EV_EOF` it is also ERROR when `fflags` carries a
///   socket error (a refused connect, a reset) and HUP otherwise (the write side is shut:
///   the peer went away, or a pipe lost its reader).
/// * `EV_ERROR` is ERROR.
/// * Any other filter means nothing (we never add one).
pub(crate) fn ready_of(ev: &RawEvent) -> Ready {
    let mut ready = if ev.error { Ready::ERROR } else { Ready::EMPTY };
    match ev.filter {
        Some(Filter::Read) => {
            ready |= Ready::READ;
            if ev.eof && ev.fflags != 0 {
                ready |= Ready::ERROR;
            }
        }
        Some(Filter::Write) => {
            ready |= Ready::WRITE;
            if ev.eof {
                ready |= if ev.fflags != 0 {
                    Ready::ERROR
                } else {
                    Ready::HUP
                };
            }
        }
        None => {}
    }
    ready
}

/// Merges one poll's results into `events`, one [`Event`] per fd: kqueue reports the
/// read and write filters of an fd as separate results, in any order, while the
/// contract reports an fd once. Sorts `raw` by fd in place (no allocation). Results
/// that mean nothing are dropped; at most `events.capacity()` fds are kept (the caller
/// never asks the kernel for more results than that, so none is lost).
pub(crate) fn merge_into(raw: &mut [RawEvent], events: &mut Events) {
    if raw.len() > 1 {
        raw.sort_unstable_by_key(|e| e.fd);
    }
    let mut current: Option<Event> = None;
    for ev in raw.iter() {
        let ready = ready_of(ev);
        if ready.is_empty() {
            continue;
        }
        match current.as_mut() {
            Some(c) if c.fd == ev.fd => c.ready |= ready,
            _ => {
                if let Some(done) = current.take() {
                    events.push(done);
                }
                current = Some(Event { fd: ev.fd, ready });
            }
        }
    }
    if let Some(done) = current {
        events.push(done);
    }
}

/// The receipt (`EV_RECEIPT`) the kernel returns for one change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Receipt {
    /// The filter of the change it answers.
    pub(crate) filter: Option<Filter>,
    /// `EV_ERROR` (set on every receipt; `data` 0 then means success).
    pub(crate) error: bool,
    /// The errno, or 0.
    pub(crate) data: i64,
}

/// What a batch of changes did, when it did not fail.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    /// The kernel refused to add the write filter with `EPIPE` (a pipe whose reader is
    /// gone, on older macOS): the fd is registered without it, and the poller reports
    /// it WRITE and HUP itself while it is watched for WRITE, as the kernel would have
    /// for the filter (and as epoll reports such a pipe).
    pub(crate) write_refused: bool,
}

/// A batch of changes that failed: the error, and the changes that undo what the
/// kernel did apply before it (a half-done registration must not stay behind).
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) error: io::Error,
    pub(crate) undo: Changes,
}

/// What the kernel did with one change, by its receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    /// Applied.
    Done,
    /// Nothing to do: a delete of a filter that is already gone (`ENOENT`), which is
    /// what was asked.
    Nothing,
    /// The write filter could not be added because the write side is gone (`EPIPE`).
    WriteRefused,
    /// A real error.
    Error(i32),
    /// No receipt came back for it (the kernel stopped early): unknown.
    Unknown,
}

fn effect(change: &Change, receipts: &[Receipt]) -> Effect {
    let Some(r) = receipts.iter().find(|r| r.filter == Some(change.filter)) else {
        return Effect::Unknown;
    };
    if !r.error || r.data == 0 {
        return Effect::Done;
    }
    let errno = i32::try_from(r.data).unwrap_or(libc::EINVAL);
    match (change.action, change.filter) {
        (Action::Delete, _) if errno == libc::ENOENT => Effect::Nothing,
        (Action::Add, Filter::Write) if errno == libc::EPIPE => Effect::WriteRefused,
        _ => Effect::Error(errno),
    }
}

/// Turns the receipts of `changes` into the call's result: the first real error, as
/// the OS error it names, with the changes that undo the ones that were applied.
///
/// Two errnos are not errors: `ENOENT` for a delete (the filter is already gone, which
/// is what was asked), and `EPIPE` for adding a write filter (older macOS answers that
/// for a pipe whose reader is gone; [`Applied::write_refused`] says so, and the poller
/// reports the fd WRITE and HUP itself).
pub(crate) fn check_receipts(changes: &[Change], receipts: &[Receipt]) -> Result<Applied, Failed> {
    let mut applied = Applied::default();
    let mut error = None;
    for c in changes {
        match effect(c, receipts) {
            Effect::Error(errno) => {
                error.get_or_insert(errno);
            }
            Effect::WriteRefused => applied.write_refused = true,
            Effect::Done | Effect::Nothing | Effect::Unknown => {}
        }
    }
    let Some(errno) = error else {
        return Ok(applied);
    };
    let mut undo = Changes::empty();
    for c in changes {
        if effect(c, receipts) == Effect::Done {
            undo.push(Change {
                filter: c.filter,
                action: match c.action {
                    Action::Add => Action::Delete,
                    Action::Delete => Action::Add,
                },
            });
        }
    }
    Err(Failed {
        error: io::Error::from_raw_os_error(errno),
        undo,
    })
}

/// Whether an fd's write filter stays refused after a transition to `new` that sent
/// `changes` and got `applied`: a new add decides; without one, it stays as it `was`
/// while WRITE is still wanted.
pub(crate) fn write_refused_after(
    was: bool,
    changes: &Changes,
    applied: Applied,
    new: Interest,
) -> bool {
    if !new.is_writable() {
        return false;
    }
    let added = changes
        .as_slice()
        .iter()
        .any(|c| c.filter == Filter::Write && c.action == Action::Add);
    if added {
        applied.write_refused
    } else {
        was
    }
}

/// The result the poller reports for an fd whose write filter the kernel refused
/// ([`Applied::write_refused`]) while it is watched for WRITE: what the filter would
/// have given, an end-of-file on the write side without a socket error (WRITE and
/// HUP).
pub(crate) fn refused_write_event(fd: RawFd) -> RawEvent {
    RawEvent {
        fd,
        filter: Some(Filter::Write),
        eof: true,
        error: false,
        fflags: 0,
        data: 0,
    }
}

/// Longest single wait handed to kevent (68 years); longer timeouts are clamped, which
/// no caller can tell from waiting forever.
pub(crate) const MAX_WAIT_SECS: u64 = i32::MAX as u64;

/// A wait as `(seconds, nanoseconds)` for a `timespec`: exact (kevent takes
/// nanoseconds, so nothing needs rounding), clamped to [`MAX_WAIT_SECS`].
pub(crate) fn timespec_parts(t: Duration) -> (i64, i64) {
    if t.as_secs() >= MAX_WAIT_SECS {
        return (MAX_WAIT_SECS as i64, 0);
    }
    (t.as_secs() as i64, i64::from(t.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Interest; 4] = [
        Interest::NONE,
        Interest::READ,
        Interest::WRITE,
        Interest::BOTH,
    ];

    fn ch(filter: Filter, action: Action) -> Change {
        Change { filter, action }
    }

    /// A model of the kernel's filters for one fd.
    fn apply(mut filters: (bool, bool), changes: &Changes) -> (bool, bool) {
        for c in changes.as_slice() {
            let on = c.action == Action::Add;
            match c.filter {
                Filter::Read => filters.0 = on,
                Filter::Write => filters.1 = on,
            }
        }
        filters
    }

    #[test]
    fn register_modify_unregister_changes() {
        use Action::*;
        use Filter::*;
        assert!(changes(Interest::NONE, Interest::NONE).is_empty());
        assert_eq!(
            changes(Interest::NONE, Interest::READ).as_slice(),
            [ch(Read, Add)]
        );
        assert_eq!(
            changes(Interest::NONE, Interest::BOTH).as_slice(),
            [ch(Read, Add), ch(Write, Add)]
        );
        // modify: delete what is no longer wanted, then add what is new, in one batch.
        assert_eq!(
            changes(Interest::READ, Interest::WRITE).as_slice(),
            [ch(Read, Delete), ch(Write, Add)]
        );
        assert_eq!(
            changes(Interest::WRITE, Interest::READ).as_slice(),
            [ch(Write, Delete), ch(Read, Add)]
        );
        assert_eq!(
            changes(Interest::BOTH, Interest::READ).as_slice(),
            [ch(Write, Delete)]
        );
        assert_eq!(
            changes(Interest::READ, Interest::BOTH).as_slice(),
            [ch(Write, Add)]
        );
        assert_eq!(
            changes(Interest::BOTH, Interest::NONE).as_slice(),
            [ch(Read, Delete), ch(Write, Delete)]
        );
    }

    #[test]
    fn every_transition_lands_on_the_new_interest_with_the_fewest_changes() {
        for old in ALL {
            for new in ALL {
                let c = changes(old, new);
                let before = (old.is_readable(), old.is_writable());
                let after = apply(before, &c);
                assert_eq!(
                    after,
                    (new.is_readable(), new.is_writable()),
                    "{old:?} -> {new:?}"
                );
                let differing = usize::from(before.0 != after.0) + usize::from(before.1 != after.1);
                assert_eq!(c.as_slice().len(), differing, "{old:?} -> {new:?}");
                // Deletes come before adds.
                let first_add = c.as_slice().iter().position(|c| c.action == Action::Add);
                if let Some(i) = first_add {
                    assert!(c.as_slice()[i..].iter().all(|c| c.action == Action::Add));
                }
            }
        }
        // Any sequence of modifies from NONE and back leaves no filter behind.
        for a in ALL {
            for b in ALL {
                for d in ALL {
                    let mut f = (false, false);
                    let mut cur = Interest::NONE;
                    for next in [a, b, d, Interest::NONE] {
                        f = apply(f, &changes(cur, next));
                        cur = next;
                    }
                    assert_eq!(f, (false, false), "{a:?} {b:?} {d:?}");
                }
            }
        }
    }

    fn raw(fd: RawFd, filter: Option<Filter>, eof: bool, fflags: u32) -> RawEvent {
        RawEvent {
            fd,
            filter,
            eof,
            error: false,
            fflags,
            data: 0,
        }
    }

    #[test]
    fn results_mean_what_the_contract_says() {
        use Filter::*;
        let r = |f, eof, fflags| ready_of(&raw(3, Some(f), eof, fflags));
        assert_eq!(r(Read, false, 0), Ready::READ);
        // A peer's end-of-file is READ, never an error.
        assert_eq!(r(Read, true, 0), Ready::READ);
        assert_eq!(
            r(Read, true, libc::ECONNRESET as u32),
            Ready::READ | Ready::ERROR
        );
        assert_eq!(r(Write, false, 0), Ready::WRITE);
        // A refused connect: the write filter's EOF carries the socket error.
        assert_eq!(
            r(Write, true, libc::ECONNREFUSED as u32),
            Ready::WRITE | Ready::ERROR
        );
        assert_eq!(r(Write, true, 0), Ready::WRITE | Ready::HUP);
        let mut e = raw(3, Some(Read), false, 0);
        e.error = true;
        e.data = i64::from(libc::EBADF);
        assert_eq!(ready_of(&e), Ready::READ | Ready::ERROR);
        assert_eq!(ready_of(&raw(3, None, true, 1)), Ready::EMPTY);
    }

    #[test]
    fn results_merge_per_fd() {
        use Filter::*;
        let mut list = [
            raw(7, Some(Write), false, 0),
            raw(5, Some(Read), false, 0),
            raw(9, None, false, 0),
            raw(7, Some(Read), true, 0),
            raw(5, Some(Write), true, libc::ECONNREFUSED as u32),
        ];
        let mut ev = Events::with_capacity(8);
        merge_into(&mut list, &mut ev);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(ev.get(7), Some(Ready::READ | Ready::WRITE));
        assert_eq!(ev.get(5), Some(Ready::READ | Ready::WRITE | Ready::ERROR));
        assert_eq!(ev.get(9), None);

        let mut one = [raw(4, Some(Read), false, 0)];
        let mut ev = Events::with_capacity(1);
        merge_into(&mut one, &mut ev);
        assert_eq!(
            ev.as_slice(),
            [Event {
                fd: 4,
                ready: Ready::READ
            }]
        );
        merge_into(&mut [], &mut ev);
        assert_eq!(ev.len(), 1, "merging nothing adds nothing");
    }

    fn receipt(filter: Filter, errno: i32) -> Receipt {
        Receipt {
            filter: Some(filter),
            error: true,
            data: i64::from(errno),
        }
    }

    #[test]
    fn receipts_become_the_right_errors() {
        use Action::*;
        use Filter::*;
        let add_both = [ch(Read, Add), ch(Write, Add)];
        assert_eq!(
            check_receipts(&add_both, &[receipt(Read, 0), receipt(Write, 0)]).unwrap(),
            Applied::default()
        );
        let err = check_receipts(
            &add_both,
            &[receipt(Read, libc::EBADF), receipt(Write, libc::EBADF)],
        )
        .unwrap_err();
        assert_eq!(err.error.raw_os_error(), Some(libc::EBADF));
        assert!(err.undo.is_empty(), "nothing was applied: {err:?}");
        // The first real error wins.
        let err = check_receipts(&add_both, &[receipt(Read, 0), receipt(Write, libc::ENOMEM)])
            .unwrap_err();
        assert_eq!(err.error.raw_os_error(), Some(libc::ENOMEM));
        // Deleting a filter that is already gone is what was asked.
        let swap = [ch(Read, Delete), ch(Write, Add)];
        assert!(check_receipts(&swap, &[receipt(Read, libc::ENOENT), receipt(Write, 0)]).is_ok());
        // ENOENT on an add is a real error.
        let err = check_receipts(&[ch(Read, Add)], &[receipt(Read, libc::ENOENT)]).unwrap_err();
        assert_eq!(err.error.kind(), io::ErrorKind::NotFound);
        // EPIPE on a read filter is a real error too.
        assert!(check_receipts(&add_both, &[receipt(Read, libc::EPIPE)]).is_err());
        // A result without EV_ERROR is no receipt of failure.
        let plain = Receipt {
            filter: Some(Read),
            error: false,
            data: 12,
        };
        assert!(check_receipts(&add_both, &[plain]).is_ok());
    }

    #[test]
    fn a_refused_write_filter_is_registered_and_reported_write_hup() {
        use Action::*;
        use Filter::*;
        // Older macOS refuses a write filter on a pipe whose reader is gone.
        let add_both = [ch(Read, Add), ch(Write, Add)];
        let applied =
            check_receipts(&add_both, &[receipt(Read, 0), receipt(Write, libc::EPIPE)]).unwrap();
        assert!(applied.write_refused);
        let applied = check_receipts(&[ch(Write, Add)], &[receipt(Write, libc::EPIPE)]).unwrap();
        assert!(applied.write_refused);
        // The poller reports it as epoll reports such a pipe: writable, hung up.
        assert_eq!(ready_of(&refused_write_event(5)), Ready::WRITE | Ready::HUP);
        // Merged with a read result for the same fd, one event.
        let mut list = [raw(5, Some(Read), true, 0), refused_write_event(5)];
        let mut ev = Events::with_capacity(4);
        merge_into(&mut list, &mut ev);
        assert_eq!(ev.get(5), Some(Ready::READ | Ready::WRITE | Ready::HUP));
    }

    #[test]
    fn a_half_done_batch_is_undone() {
        use Action::*;
        use Filter::*;
        // register(BOTH): the read filter went in, the write filter failed. Undo: delete
        // the read filter.
        let add_both = [ch(Read, Add), ch(Write, Add)];
        let err = check_receipts(&add_both, &[receipt(Read, 0), receipt(Write, libc::ENOMEM)])
            .unwrap_err();
        assert_eq!(err.undo.as_slice(), [ch(Read, Delete)]);
        // modify(READ -> WRITE): the read filter was deleted, the write filter failed.
        // Undo: add the read filter back.
        let swap = [ch(Read, Delete), ch(Write, Add)];
        let err =
            check_receipts(&swap, &[receipt(Read, 0), receipt(Write, libc::ENOMEM)]).unwrap_err();
        assert_eq!(err.undo.as_slice(), [ch(Read, Add)]);
        // A delete that found nothing needs no undo (the filter was not there).
        let err = check_receipts(
            &swap,
            &[receipt(Read, libc::ENOENT), receipt(Write, libc::ENOMEM)],
        )
        .unwrap_err();
        assert!(err.undo.is_empty());
        // The undo of any half-done transition lands back on the old interest.
        for old in ALL {
            for new in ALL {
                let c = changes(old, new);
                let list = c.as_slice();
                for failing in 0..list.len() {
                    let receipts: Vec<Receipt> = list
                        .iter()
                        .enumerate()
                        .map(|(i, x)| {
                            receipt(x.filter, if i == failing { libc::ENOMEM } else { 0 })
                        })
                        .collect();
                    let err = check_receipts(list, &receipts).unwrap_err();
                    let before = (old.is_readable(), old.is_writable());
                    let mut half = before;
                    for (i, x) in list.iter().enumerate() {
                        if i != failing {
                            half = apply(half, &single(*x));
                        }
                    }
                    assert_eq!(
                        apply(half, &err.undo),
                        before,
                        "{old:?} -> {new:?}, change {failing} failed"
                    );
                }
            }
        }
    }

    #[test]
    fn a_refused_write_filter_is_remembered_while_write_is_wanted() {
        let refused = Applied {
            write_refused: true,
        };
        let fine = Applied::default();
        // register(WRITE) refused: remembered.
        let c = changes(Interest::NONE, Interest::WRITE);
        assert!(write_refused_after(false, &c, refused, Interest::WRITE));
        // WRITE -> BOTH adds only the read filter: still refused.
        let c = changes(Interest::WRITE, Interest::BOTH);
        assert!(write_refused_after(true, &c, fine, Interest::BOTH));
        // WRITE -> READ: no longer wanted, forgotten.
        let c = changes(Interest::WRITE, Interest::READ);
        assert!(!write_refused_after(true, &c, fine, Interest::READ));
        // READ -> WRITE adds it again and the kernel takes it this time.
        let c = changes(Interest::READ, Interest::WRITE);
        assert!(!write_refused_after(false, &c, fine, Interest::WRITE));
    }

    fn single(c: Change) -> Changes {
        let mut out = Changes::empty();
        out.push(c);
        out
    }

    #[test]
    fn timespecs_are_exact_and_clamped() {
        assert_eq!(timespec_parts(Duration::ZERO), (0, 0));
        assert_eq!(timespec_parts(Duration::from_micros(1500)), (0, 1_500_000));
        assert_eq!(timespec_parts(Duration::new(3, 7)), (3, 7));
        assert_eq!(timespec_parts(Duration::MAX), (MAX_WAIT_SECS as i64, 0));
    }
}
