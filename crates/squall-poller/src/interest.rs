//! The two bit sets of the seam: what a caller asks for ([`Interest`]) and what a
//! backend reports ([`Ready`]).

use std::fmt;
use std::ops::{BitOr, BitOrAssign, Sub};

/// What a registration asks to be told about.
///
/// Tornado's `IOLoop.READ` and `IOLoop.WRITE`. Errors and hang-ups come with either
/// direction, as in Tornado, where the loop always adds `ERROR` to the mask.
/// `Interest::NONE` is a valid registration that is never reported READ or WRITE;
/// whether it still hears errors and hang-ups depends on the OS (epoll and poll: yes;
/// select and kqueue: nothing at all), so use it to park an fd, not to watch it.
///
/// [`Interest::EDGE`] is a hint added to a direction, not a direction of its own: see
/// it for the promise a caller makes with it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interest(u8);

impl Interest {
    /// Errors and hang-ups only.
    pub const NONE: Interest = Interest(0);
    /// The fd has data to read (or end-of-file, or a pending connection to accept).
    pub const READ: Interest = Interest(1);
    /// The fd can take more data without blocking (or a connect has finished).
    pub const WRITE: Interest = Interest(2);
    /// Both directions.
    pub const BOTH: Interest = Interest(3);
    /// A hint: the caller keeps track of readiness itself, so the backend may report
    /// the fd only when its state changes (new data, new room, a hang-up) instead of on
    /// every poll while it stays ready (epoll: `EPOLLET`).
    ///
    /// The caller's promise: after a report it goes on reading (or writing) until the
    /// fd is drained (a read or write that would block, or a short one on a socket or
    /// pipe) before it waits for the next report; or it changes the interest, which
    /// makes the backend look at the fd afresh. A backend that honours the hint keeps
    /// reporting an fd whose peer has closed (a short read does not reach the
    /// end-of-file queued behind the data, so the close must not pass as one edge):
    /// epoll makes such an fd level-triggered. Every report an edge-triggered backend
    /// makes, a level-triggered one makes too, so a backend may ignore the hint
    /// (select, poll and kqueue do), and code that keeps the promise works on both.
    /// Tokio and mio work this way on every backend.
    pub const EDGE: Interest = Interest(4);

    /// Whether READ is asked for.
    #[inline]
    pub const fn is_readable(self) -> bool {
        self.0 & Self::READ.0 != 0
    }

    /// Whether WRITE is asked for.
    #[inline]
    pub const fn is_writable(self) -> bool {
        self.0 & Self::WRITE.0 != 0
    }

    /// Whether the [`EDGE`](Interest::EDGE) hint is given.
    #[inline]
    pub const fn is_edge(self) -> bool {
        self.0 & Self::EDGE.0 != 0
    }

    /// Whether neither direction is asked for (the [`EDGE`](Interest::EDGE) hint aside).
    #[inline]
    pub const fn is_none(self) -> bool {
        self.0 & Self::BOTH.0 == 0
    }

    /// Whether every bit of `other` is set in `self`.
    #[inline]
    pub const fn contains(self, other: Interest) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of two interests (usable in `const` context, unlike `|`).
    #[inline]
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// `self` without the bits of `other`.
    #[inline]
    pub const fn remove(self, other: Interest) -> Interest {
        Interest(self.0 & !other.0)
    }

    /// The raw bits (READ = 1, WRITE = 2, EDGE = 4).
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Rebuilds an `Interest` from [`bits`](Interest::bits); unknown bits are dropped.
    #[inline]
    pub const fn from_bits_truncate(bits: u8) -> Interest {
        Interest(bits & 0x07)
    }
}

impl BitOr for Interest {
    type Output = Interest;
    #[inline]
    fn bitor(self, rhs: Interest) -> Interest {
        self.add(rhs)
    }
}

impl BitOrAssign for Interest {
    #[inline]
    fn bitor_assign(&mut self, rhs: Interest) {
        *self = self.add(rhs);
    }
}

impl Sub for Interest {
    type Output = Interest;
    #[inline]
    fn sub(self, rhs: Interest) -> Interest {
        self.remove(rhs)
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.is_readable(), self.is_writable()) {
            (false, false) => "NONE",
            (true, false) => "READ",
            (false, true) => "WRITE",
            (true, true) => "READ | WRITE",
        })?;
        if self.is_edge() {
            f.write_str(" | EDGE")?;
        }
        Ok(())
    }
}

/// What a backend found ready on an fd.
///
/// The meaning of each bit is part of the [`Poller`](crate::Poller) contract and is
/// pinned by the conformance suite (the `conformance` feature):
///
/// * `READ`: a read will not block. That includes end-of-file: a peer that writes and
///   then closes gives `READ`, its data is still readable, and the read after it
///   returns 0. End-of-file is **not** an error.
/// * `WRITE`: a write will not block.
/// * `HUP`: the fd is hung up (both directions closed). A backend *may* report it beside
///   `READ` when a peer closes (epoll and poll do for pipes and socket pairs; select
///   only for fds it also found writable); it never reports `HUP` *instead of* `READ`
///   for an fd watched for READ.
///   Learn end-of-file from a read that returns 0, not from `HUP`.
/// * `ERROR`: the fd has a pending socket error. A refused non-blocking connect watched
///   for WRITE (as a connecting stream is) is `ERROR` on epoll and kqueue, and on poll
///   and select on Linux (macOS's poll(2) and select(2) cannot see it without consuming
///   it: there it shows as HUP or WRITE, and the stream reads `SO_ERROR`); the error is
///   still pending afterwards: no backend consumes it, so `getsockopt(SO_ERROR)` reads
///   it. Other errors (a connection reset, a pipe whose reader is gone) are `ERROR` on
///   epoll and poll but may show only as READ or WRITE on select, or as `HUP` on
///   kqueue; the read or write that follows returns the error either way.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Ready(u8);

impl Ready {
    /// Nothing.
    pub const EMPTY: Ready = Ready(0);
    /// A read will not block (data, end-of-file, or a connection to accept).
    pub const READ: Ready = Ready(1);
    /// A write will not block.
    pub const WRITE: Ready = Ready(2);
    /// The fd has a pending error (Tornado's `IOLoop.ERROR`).
    pub const ERROR: Ready = Ready(4);
    /// The fd is hung up.
    pub const HUP: Ready = Ready(8);

    /// Whether READ is set.
    #[inline]
    pub const fn is_readable(self) -> bool {
        self.0 & Self::READ.0 != 0
    }

    /// Whether WRITE is set.
    #[inline]
    pub const fn is_writable(self) -> bool {
        self.0 & Self::WRITE.0 != 0
    }

    /// Whether ERROR is set.
    #[inline]
    pub const fn is_error(self) -> bool {
        self.0 & Self::ERROR.0 != 0
    }

    /// Whether HUP is set.
    #[inline]
    pub const fn is_hup(self) -> bool {
        self.0 & Self::HUP.0 != 0
    }

    /// Whether no bit is set.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every bit of `other` is set in `self`.
    #[inline]
    pub const fn contains(self, other: Ready) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any bit of `other` is set in `self`.
    #[inline]
    pub const fn intersects(self, other: Ready) -> bool {
        self.0 & other.0 != 0
    }

    /// The union (usable in `const` context, unlike `|`).
    #[inline]
    pub const fn add(self, other: Ready) -> Ready {
        Ready(self.0 | other.0)
    }

    /// `self` without the bits of `other`.
    #[inline]
    pub const fn remove(self, other: Ready) -> Ready {
        Ready(self.0 & !other.0)
    }

    /// The raw bits (READ = 1, WRITE = 2, ERROR = 4, HUP = 8).
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Rebuilds a `Ready` from [`bits`](Ready::bits); unknown bits are dropped.
    #[inline]
    pub const fn from_bits_truncate(bits: u8) -> Ready {
        Ready(bits & 0x0f)
    }

    /// The directions of an interest, as readiness (READ to READ, WRITE to WRITE; the
    /// [`EDGE`](Interest::EDGE) hint is no readiness).
    #[inline]
    pub const fn from_interest(interest: Interest) -> Ready {
        Ready(interest.bits() & Interest::BOTH.bits())
    }
}

impl BitOr for Ready {
    type Output = Ready;
    #[inline]
    fn bitor(self, rhs: Ready) -> Ready {
        self.add(rhs)
    }
}

impl BitOrAssign for Ready {
    #[inline]
    fn bitor_assign(&mut self, rhs: Ready) {
        *self = self.add(rhs);
    }
}

impl Sub for Ready {
    type Output = Ready;
    #[inline]
    fn sub(self, rhs: Ready) -> Ready {
        self.remove(rhs)
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("EMPTY");
        }
        let names = [
            (Ready::READ, "READ"),
            (Ready::WRITE, "WRITE"),
            (Ready::ERROR, "ERROR"),
            (Ready::HUP, "HUP"),
        ];
        let mut first = true;
        for (bit, name) in names {
            if self.contains(bit) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interest_bits() {
        assert!(Interest::BOTH.is_readable() && Interest::BOTH.is_writable());
        assert_eq!(Interest::READ | Interest::WRITE, Interest::BOTH);
        assert_eq!(Interest::BOTH - Interest::WRITE, Interest::READ);
        assert!(Interest::NONE.is_none());
        assert_eq!(format!("{:?}", Interest::BOTH), "READ | WRITE");
        let edge = Interest::READ | Interest::EDGE;
        assert!(edge.is_edge() && edge.is_readable() && !edge.is_writable());
        assert!(Interest::EDGE.is_none() && !Interest::READ.is_edge());
        assert_eq!(format!("{edge:?}"), "READ | EDGE");
        assert_eq!(
            Interest::from_bits_truncate(0xff),
            Interest::BOTH | Interest::EDGE
        );
        assert_eq!(
            Ready::from_interest(Interest::BOTH | Interest::EDGE),
            Ready::READ | Ready::WRITE
        );
    }

    #[test]
    fn ready_bits() {
        let r = Ready::READ | Ready::HUP;
        assert!(r.is_readable() && r.is_hup() && !r.is_error() && !r.is_writable());
        assert!(r.intersects(Ready::HUP | Ready::ERROR));
        assert_eq!(Ready::from_bits_truncate(0xff).bits(), 0x0f);
        assert_eq!(Ready::from_interest(Interest::WRITE), Ready::WRITE);
        assert_eq!(format!("{:?}", r), "READ | HUP");
        assert_eq!(format!("{:?}", Ready::EMPTY), "EMPTY");
    }
}
