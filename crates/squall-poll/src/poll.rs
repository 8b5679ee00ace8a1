use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use squall_poller::{sys, syscall, util, Event, Events, Interest, Poller, Ready};

/// A level-triggered poll(2) poller: a `pollfd` vector plus an fd-to-index map.
///
/// See the [crate docs](crate) for the readiness mapping and the costs.
#[doc(alias = "poll")]
#[doc(alias = "PollIOLoop")]
#[derive(Debug, Default)]
pub struct Poll {
    /// What the kernel gets on each wait, one entry per registered fd.
    fds: Vec<libc::pollfd>,
    /// Where each registered fd sits in `fds`.
    index: HashMap<RawFd, usize>,
    /// Where the next scan for results starts (after the last fd reported), so that a
    /// small `Events` buffer does not starve the fds at the end of the vector.
    cursor: usize,
}

impl Poll {
    /// An empty poller. It owns no fd, so creating one cannot fail.
    pub fn new() -> Poll {
        Poll::default()
    }

    /// How many fds are registered.
    pub fn len(&self) -> usize {
        self.fds.len()
    }

    /// Whether no fd is registered.
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }
}

/// The `events` mask for an interest (`POLLERR`, `POLLHUP` and `POLLNVAL` are always
/// reported by the kernel).
fn interest_to_poll(interest: Interest) -> libc::c_short {
    let mut bits = 0;
    if interest.is_readable() {
        bits |= libc::POLLIN;
    }
    if interest.is_writable() {
        bits |= libc::POLLOUT;
    }
    bits
}

/// What a `revents` word means in the contract's terms, given the `events` asked for.
fn poll_to_ready(revents: libc::c_short, asked: libc::c_short) -> Ready {
    let mut ready = Ready::EMPTY;
    if revents & (libc::POLLIN | libc::POLLPRI) != 0 {
        ready |= Ready::READ;
    }
    if revents & libc::POLLOUT != 0 {
        ready |= Ready::WRITE;
    }
    if revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        ready |= Ready::ERROR;
    }
    if revents & libc::POLLHUP != 0 {
        ready |= Ready::HUP;
        // A hung-up fd watched for READ must be read to see the end-of-file.
        if asked & libc::POLLIN != 0 {
            ready |= Ready::READ;
        }
    }
    ready
}

impl Poller for Poll {
    fn register(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        if self.index.contains_key(&fd) {
            return Err(util::already_registered(fd));
        }
        sys::check_fd(fd)?;
        self.index.insert(fd, self.fds.len());
        self.fds.push(libc::pollfd {
            fd,
            events: interest_to_poll(interest),
            revents: 0,
        });
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        let &i = self
            .index
            .get(&fd)
            .ok_or_else(|| util::not_registered(fd))?;
        self.fds[i].events = interest_to_poll(interest);
        Ok(())
    }

    fn unregister(&mut self, fd: RawFd) -> io::Result<()> {
        let i = self
            .index
            .remove(&fd)
            .ok_or_else(|| util::not_registered(fd))?;
        self.fds.swap_remove(i);
        if let Some(moved) = self.fds.get(i) {
            self.index.insert(moved.fd, i);
        }
        Ok(())
    }

    fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        events.clear();
        let fds = &mut self.fds;
        let n = util::retry_eintr(timeout, |t| {
            // SAFETY: `fds` is a live, initialised slice of `fds.len()` pollfds that
            // nothing else touches during the call; the kernel writes only `revents`.
            // With zero entries the pointer is dangling but never read.
            syscall!(unsafe {
                libc::poll(
                    fds.as_mut_ptr(),
                    fds.len() as libc::nfds_t,
                    util::timeout_millis(t),
                )
            })
            .map(|n| n as usize)
        })?;
        if n == 0 {
            return Ok(0);
        }
        let len = self.fds.len();
        let start = self.cursor.min(len);
        let mut left = n;
        for i in (start..len).chain(0..start) {
            let pfd = self.fds[i];
            if pfd.revents == 0 {
                continue;
            }
            if events.is_full() {
                // The rest stay ready (level-triggered): start here next time.
                self.cursor = i;
                break;
            }
            events.push(Event {
                fd: pfd.fd,
                ready: poll_to_ready(pfd.revents, pfd.events),
            });
            self.cursor = i + 1;
            left -= 1;
            if left == 0 {
                break;
            }
        }
        Ok(events.len())
    }

    fn name(&self) -> &'static str {
        "poll"
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn masks() {
        assert_eq!(interest_to_poll(Interest::NONE), 0);
        assert_eq!(interest_to_poll(Interest::READ), libc::POLLIN);
        assert_eq!(interest_to_poll(Interest::WRITE), libc::POLLOUT);
        assert_eq!(poll_to_ready(libc::POLLIN, libc::POLLIN), Ready::READ);
        assert_eq!(poll_to_ready(libc::POLLOUT, libc::POLLOUT), Ready::WRITE);
        assert_eq!(
            poll_to_ready(libc::POLLHUP, libc::POLLIN),
            Ready::READ | Ready::HUP
        );
        assert_eq!(poll_to_ready(libc::POLLHUP, libc::POLLOUT), Ready::HUP);
        let refused = poll_to_ready(libc::POLLOUT | libc::POLLERR | libc::POLLHUP, libc::POLLOUT);
        assert_eq!(refused, Ready::WRITE | Ready::ERROR | Ready::HUP);
        assert_eq!(poll_to_ready(libc::POLLNVAL, 0), Ready::ERROR);
    }

    #[test]
    fn unregister_keeps_the_index_right() {
        let fds: Vec<_> = (0..4).map(|_| sys::pipe().unwrap()).collect();
        let mut p = Poll::new();
        for (r, _) in &fds {
            p.register(r.as_raw_fd(), Interest::READ).unwrap();
        }
        let first = fds[0].0.as_raw_fd();
        let last = fds[3].0.as_raw_fd();
        p.unregister(first).unwrap();
        assert_eq!(p.len(), 3);
        // The last entry moved into slot 0; modifying it must touch the right pollfd.
        p.modify(last, Interest::WRITE).unwrap();
        assert_eq!(p.fds[p.index[&last]].fd, last);
        assert_eq!(p.fds[p.index[&last]].events, libc::POLLOUT);
        for (fd, &i) in &p.index {
            assert_eq!(p.fds[i].fd, *fd);
        }
        for (r, _) in &fds[1..] {
            p.unregister(r.as_raw_fd()).unwrap();
        }
        assert!(p.is_empty() && p.index.is_empty());
    }
}
