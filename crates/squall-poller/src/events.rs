//! The caller-owned event buffer that [`Poller::poll`](crate::Poller::poll) fills.

use std::os::fd::RawFd;

use crate::Ready;

/// One readiness report: an fd and what is ready on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The fd the report is about (the key it was registered under).
    pub fd: RawFd,
    /// What is ready.
    pub ready: Ready,
}

/// A fixed-capacity buffer of [`Event`]s, owned by the caller and reused across polls.
///
/// A backend calls [`clear`](Events::clear) at the start of each poll and
/// [`push`](Events::push)es at most [`capacity`](Events::capacity) events; whatever did
/// not fit stays ready and is reported by the next poll (the contract is
/// level-triggered). The buffer never grows, so polling allocates nothing.
#[derive(Debug)]
pub struct Events {
    list: Vec<Event>,
    capacity: usize,
}

impl Events {
    /// A buffer for up to `capacity` events per poll (at least 1).
    pub fn with_capacity(capacity: usize) -> Events {
        let capacity = capacity.max(1);
        Events {
            list: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// How many events one poll may report.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many events the last poll reported.
    #[inline]
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the last poll reported nothing.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether the buffer is full (a backend stops collecting here).
    #[inline]
    pub fn is_full(&self) -> bool {
        self.list.len() >= self.capacity
    }

    /// Forgets every event (backends call this first in `poll`).
    #[inline]
    pub fn clear(&mut self) {
        self.list.clear();
    }

    /// Adds an event; returns `false`, and drops it, when the buffer is full.
    #[inline]
    pub fn push(&mut self, event: Event) -> bool {
        if self.is_full() {
            return false;
        }
        self.list.push(event);
        true
    }

    /// The events, in the order the backend reported them.
    #[inline]
    pub fn iter(&self) -> std::slice::Iter<'_, Event> {
        self.list.iter()
    }

    /// The events as a slice.
    #[inline]
    pub fn as_slice(&self) -> &[Event] {
        &self.list
    }

    /// The ready set reported for `fd`, if any (a linear scan; for tests and tools).
    pub fn get(&self, fd: RawFd) -> Option<Ready> {
        self.list.iter().find(|e| e.fd == fd).map(|e| e.ready)
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = std::slice::Iter<'a, Event>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_reusable() {
        let mut ev = Events::with_capacity(2);
        assert!(ev.push(Event {
            fd: 1,
            ready: Ready::READ
        }));
        assert!(ev.push(Event {
            fd: 2,
            ready: Ready::WRITE
        }));
        assert!(!ev.push(Event {
            fd: 3,
            ready: Ready::READ
        }));
        assert_eq!(ev.len(), 2);
        assert_eq!(ev.get(2), Some(Ready::WRITE));
        assert_eq!(ev.get(3), None);
        ev.clear();
        assert!(ev.is_empty());
        assert_eq!(Events::with_capacity(0).capacity(), 1);
    }
}
