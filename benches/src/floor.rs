//! "The floor": the cheapest thing that can answer an HTTP/1.1 load generator.
//!
//! One thread, a level-triggered epoll loop on raw libc, no HTTP parsing. Each read is
//! scanned for request terminators (`\r\n\r\n`, also when split across reads), and the
//! same number of fixed [`RESPONSE`]s go out in one `write` (so a pipelined batch is one
//! syscall). READ interest stays armed for the life of a connection; WRITE interest is
//! added only when a write would block and dropped once the backlog is flushed. End of
//! file or an error closes the connection.
//!
//! It is what squall is measured against in `cargo xtask bench`: the cost of the
//! syscalls alone. It is not a server: it answers anything that ends in a blank line.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use crate::sys::{self, Epoll};

/// The fixed response, the same shape as a hello-world server's (status line, `Server`,
/// `Date`, `Content-Type`, `Content-Length`, 13-byte body).
pub const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: floor\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";

/// How many responses the prebuilt batch holds; a larger backlog goes out in several
/// writes.
const BATCH: usize = 256;
/// The shared read buffer (one per loop, never per connection).
const READ_BUF: usize = 64 * 1024;
const EVENTS: usize = 1024;
/// Marks the listener in `epoll_event.u64` (connection fds are below it).
const LISTENER_KEY: u64 = u64::MAX;

/// Counts complete `\r\n\r\n` terminators across a stream that arrives in pieces.
///
/// A small matcher whose state (how much of a terminator the stream ends with) carries
/// over between reads, so a terminator split over two reads, in any place, is counted
/// once, in the read that completes it. Matches do not overlap: `\r\n\r\n\r\n` holds
/// one terminator, like an HTTP parser that skips a stray CRLF before the next request.
#[derive(Debug, Default, Clone)]
pub struct TerminatorCounter {
    /// How many bytes of `\r\n\r\n` the stream so far ends with (0..=3).
    matched: u8,
}

impl TerminatorCounter {
    /// Feeds the next piece of the stream and returns how many terminators it completes.
    pub fn feed(&mut self, buf: &[u8]) -> usize {
        const PAT: &[u8; 4] = b"\r\n\r\n";
        let mut count = 0;
        let mut pos = 0;
        let mut s = self.matched as usize;
        while pos < buf.len() {
            if s == 0 {
                // Skip to the next CR with memchr: most bytes are not part of a match.
                match memchr::memchr(b'\r', &buf[pos..]) {
                    Some(i) => {
                        pos += i + 1;
                        s = 1;
                    }
                    None => break,
                }
                continue;
            }
            let b = buf[pos];
            pos += 1;
            s = if b == PAT[s] {
                s + 1
            } else if b == b'\r' {
                1
            } else {
                0
            };
            if s == 4 {
                count += 1;
                s = 0;
            }
        }
        self.matched = s as u8;
        count
    }
}

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    counter: TerminatorCounter,
    /// Response bytes owed to the peer.
    owed: usize,
    /// Where in [`RESPONSE`] the next owed byte is.
    offset: usize,
    /// WRITE interest is armed (a write would have blocked).
    want_write: bool,
}

/// The floor's event loop: a listener and its connections on one epoll instance.
#[derive(Debug)]
pub struct Floor {
    epoll: Epoll,
    listener: TcpListener,
    conns: Vec<Option<Conn>>,
    /// The events of one turn, copied out of the epoll buffer.
    turn_events: Vec<(u64, u32)>,
    read_buf: Box<[u8]>,
    batch: Box<[u8]>,
}

impl Floor {
    /// Takes over a bound listener (made non-blocking here) and registers it for READ.
    ///
    /// # Errors
    ///
    /// The OS error of `epoll_create1`, `epoll_ctl` or making the listener non-blocking.
    pub fn new(listener: TcpListener) -> io::Result<Floor> {
        listener.set_nonblocking(true)?;
        let floor = Floor {
            epoll: Epoll::new(EVENTS)?,
            listener,
            conns: Vec::new(),
            turn_events: Vec::with_capacity(EVENTS),
            read_buf: vec![0u8; READ_BUF].into_boxed_slice(),
            batch: RESPONSE.repeat(BATCH).into_boxed_slice(),
        };
        floor
            .epoll
            .add(floor.listener.as_raw_fd(), sys::IN, LISTENER_KEY)?;
        Ok(floor)
    }

    /// The listener's address.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockname`.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// The number of open connections.
    pub fn connections(&self) -> usize {
        self.conns.iter().filter(|c| c.is_some()).count()
    }

    /// Serves forever.
    ///
    /// # Errors
    ///
    /// A failure of `epoll_wait` or `epoll_ctl` (connection errors only close that
    /// connection).
    pub fn run(&mut self) -> io::Result<()> {
        loop {
            self.turn(None)?;
        }
    }

    /// Waits once for events (at most `timeout`, `None` for ever) and handles them.
    ///
    /// # Errors
    ///
    /// A failure of `epoll_wait` or `epoll_ctl`.
    pub fn turn(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let mut ready = std::mem::take(&mut self.turn_events);
        ready.clear();
        ready.extend(self.epoll.wait(timeout)?);
        let mut result = Ok(());
        for &(key, events) in &ready {
            result = if key == LISTENER_KEY {
                self.accept()
            } else {
                self.ready(key as RawFd, events)
            };
            if result.is_err() {
                break;
            }
        }
        self.turn_events = ready;
        result
    }

    fn accept(&mut self) -> io::Result<()> {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A peer that gave up before we accepted it.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // EMFILE/ENFILE/ENOBUFS: keep serving the connections we have; the
                    // listener stays readable and is retried on the next turn.
                    log::warn!("floor: accept: {e}");
                    return Ok(());
                }
            };
            stream.set_nonblocking(true)?;
            stream.set_nodelay(true)?;
            let fd = stream.as_raw_fd();
            self.epoll.add(fd, sys::IN, fd as u64)?;
            let idx = fd as usize;
            if self.conns.len() <= idx {
                self.conns.resize_with(idx + 1, || None);
            }
            self.conns[idx] = Some(Conn {
                stream,
                counter: TerminatorCounter::default(),
                owed: 0,
                offset: 0,
                want_write: false,
            });
        }
    }

    fn ready(&mut self, fd: RawFd, events: u32) -> io::Result<()> {
        let Some(Some(conn)) = self.conns.get_mut(fd as usize) else {
            return Ok(()); // closed earlier in this batch of events
        };
        let readable = events & (sys::IN | sys::HUP_ERR) != 0;
        let mut open = true;
        if readable {
            // Read until a short read (then the socket is assumed drained).
            loop {
                match (&conn.stream).read(&mut self.read_buf) {
                    Ok(0) => {
                        open = false;
                        break;
                    }
                    Ok(n) => {
                        let requests = conn.counter.feed(&self.read_buf[..n]);
                        conn.owed += requests * RESPONSE.len();
                        if n < self.read_buf.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        open = false;
                        break;
                    }
                }
            }
        }
        // Write when there is something owed and the socket is not known to be full
        // (or it just became writable).
        if open && conn.owed > 0 && (!conn.want_write || events & sys::OUT != 0) {
            match flush(conn, &self.batch) {
                Ok(true) => {}
                Ok(false) => open = false,
                Err(_) => open = false,
            }
        }
        if !open {
            self.close(fd)?;
            return Ok(());
        }
        let Some(Some(conn)) = self.conns.get_mut(fd as usize) else {
            return Ok(());
        };
        let need_write = conn.owed > 0;
        if need_write != conn.want_write {
            conn.want_write = need_write;
            let mask = if need_write {
                sys::IN | sys::OUT
            } else {
                sys::IN
            };
            self.epoll.modify(fd, mask, fd as u64)?;
        }
        Ok(())
    }

    fn close(&mut self, fd: RawFd) -> io::Result<()> {
        if let Some(conn) = self.conns[fd as usize].take() {
            // Deregister before the fd is closed (and can be reused).
            self.epoll.delete(fd)?;
            drop(conn);
        }
        Ok(())
    }
}

/// Writes what the connection owes until done or the socket is full. `Ok(false)` if
/// the peer is gone.
fn flush(conn: &mut Conn, batch: &[u8]) -> io::Result<bool> {
    while conn.owed > 0 {
        let len = conn.owed.min(batch.len() - conn.offset);
        match (&conn.stream).write(&batch[conn.offset..conn.offset + len]) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                conn.owed -= n;
                conn.offset = (conn.offset + n) % RESPONSE.len();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::TerminatorCounter;

    #[test]
    fn counts_whole_terminators() {
        let mut c = TerminatorCounter::default();
        assert_eq!(
            c.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
            2
        );
        assert_eq!(
            c.feed(b"\r\n"),
            0,
            "a lone CRLF after a terminator is not another one"
        );
    }

    #[test]
    fn counts_a_terminator_split_at_every_place() {
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        for cut in 0..=req.len() {
            let mut c = TerminatorCounter::default();
            let n = c.feed(&req[..cut]) + c.feed(&req[cut..]);
            assert_eq!(n, 1, "cut at {cut}");
        }
    }

    #[test]
    fn counts_byte_by_byte() {
        let stream = b"A\r\n\r\nB\r\n\r\r\n\r\n\n\r\n\r\n".repeat(3);
        let mut c = TerminatorCounter::default();
        let n: usize = stream.iter().map(|b| c.feed(std::slice::from_ref(b))).sum();
        assert_eq!(n, 3 * 3);
        let mut whole = TerminatorCounter::default();
        assert_eq!(whole.feed(&stream), 9);
    }

    #[test]
    fn overlapping_crlfs_are_not_double_counted() {
        let mut c = TerminatorCounter::default();
        // "\r\n\r\n\r\n" holds one terminator, then a CRLF that starts a new match.
        assert_eq!(c.feed(b"x\r\n\r\n\r\n"), 1);
        assert_eq!(
            c.feed(b"\r\n"),
            1,
            "the stray CRLF plus this one form a terminator"
        );
        assert_eq!(
            c.feed(b"\r\r\n\r\n"),
            1,
            "a doubled CR still ends in a terminator"
        );
    }
}
