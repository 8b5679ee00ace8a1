//! A stream that nobody reads: the READ reports nobody takes must not spin the loop (a
//! level-triggered backend repeats them while bytes wait, and epoll does once the peer
//! has closed), and a close callback still hears the close (Tornado's
//! `test_future_close_callback`, for sockets and pipes), once the bytes before it are
//! read.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use squall_ioloop::{sleep, IoLoop};
use squall_iostream::{CloseCause, IoStream};
use squall_poller::{Events, Interest, Poller};
use squall_testing::{tcp_pair, BACKENDS, PATIENCE};

/// A backend that counts how often it reports one fd.
struct Counting {
    inner: Box<dyn Poller>,
    fd: Rc<Cell<RawFd>>,
    reports: Rc<Cell<usize>>,
}

impl Poller for Counting {
    fn register(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.inner.register(fd, interest)
    }
    fn modify(&mut self, fd: RawFd, interest: Interest) -> io::Result<()> {
        self.inner.modify(fd, interest)
    }
    fn unregister(&mut self, fd: RawFd) -> io::Result<()> {
        self.inner.unregister(fd)
    }
    fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        let n = self.inner.poll(events, timeout)?;
        let watched = self.fd.get();
        let seen = events.iter().filter(|e| e.fd == watched).count();
        self.reports.set(self.reports.get() + seen);
        Ok(n)
    }
}

/// Resolves once the stream's close callback has run.
fn closed_signal(stream: &IoStream) -> impl Future<Output = ()> {
    let state = Rc::new((Cell::new(false), Cell::new(None::<Waker>)));
    let s = state.clone();
    stream.set_close_callback(move || {
        s.0.set(true);
        if let Some(w) = s.1.take() {
            w.wake();
        }
    });
    poll_fn(move |cx| {
        if state.0.get() {
            Poll::Ready(())
        } else {
            state.1.set(Some(cx.waker().clone()));
            Poll::Pending
        }
    })
}

#[derive(Clone, Copy, Debug)]
enum Unread {
    /// The peer closes; nobody reads the end-of-file.
    PeerCloses,
    /// Bytes arrive; nobody reads them.
    Bytes,
    /// Bytes arrive with a close callback set; nobody reads them, then the peer closes.
    BytesWithCloseCallback,
}

/// How many times the stream's fd is reported during a 50 ms timer while nobody reads
/// what it reports; then the bytes are read, and the close is heard.
fn reports_while_unread(backend: &str, case: Unread) -> usize {
    let fd = Rc::new(Cell::new(-1));
    let reports = Rc::new(Cell::new(0));
    let poller = Counting {
        inner: squall_ioloop::poller_by_name(backend).unwrap(),
        fd: fd.clone(),
        reports: reports.clone(),
    };
    let io_loop = IoLoop::with_poller(Box::new(poller)).unwrap();
    let n = io_loop
        .run_sync(
            async move {
                let (server, client) = tcp_pair().await;
                fd.set(server.as_raw_fd());
                // A read that waits arms READ, which stays armed once it is done.
                {
                    let mut read = pin!(server.read_bytes(1, false));
                    let first = poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx).is_pending()));
                    assert!(first.await, "nothing was sent yet");
                    client.write(&b"x"[..]).await.unwrap();
                    assert_eq!(&read.await.unwrap()[..], b"x");
                }
                let closed = match case {
                    Unread::PeerCloses => {
                        client.close();
                        None
                    }
                    Unread::Bytes => {
                        client.write(&b"unread"[..]).await.unwrap();
                        None
                    }
                    Unread::BytesWithCloseCallback => {
                        let closed = closed_signal(&server);
                        client.write(&b"unread"[..]).await.unwrap();
                        Some(closed)
                    }
                };
                let before = reports.get();
                sleep(Duration::from_millis(50)).await;
                let n = reports.get() - before;
                match case {
                    Unread::PeerCloses => {
                        assert!(server.read_until_close().await.unwrap().is_empty())
                    }
                    Unread::Bytes => {
                        assert_eq!(&server.read_bytes(6, false).await.unwrap()[..], b"unread")
                    }
                    Unread::BytesWithCloseCallback => {
                        assert_eq!(&server.read_bytes(6, false).await.unwrap()[..], b"unread");
                        client.close();
                        closed.unwrap().await;
                        assert!(matches!(server.error(), Some(CloseCause::Eof)));
                    }
                }
                n
            },
            Some(PATIENCE),
        )
        .unwrap();
    io_loop.close(true).unwrap();
    n
}

// An idle stream whose READ interest is armed: a report nobody takes comes at most
// twice (the second is how a repeat is told from an edge), not on every poll.
#[test]
fn unread_reports_do_not_spin_the_loop() {
    for backend in BACKENDS {
        for case in [
            Unread::PeerCloses,
            Unread::Bytes,
            Unread::BytesWithCloseCallback,
        ] {
            let n = reports_while_unread(backend, case);
            assert!(n <= 2, "{backend}, {case:?}: reported {n} times in 50 ms");
        }
    }
}

// Tornado: test_future_close_callback, on a pipe: the read end hears the writer's close
// after reading what it wrote.
async fn close_callback_on_a_pipes_read_end() {
    let (r, w) = IoStream::pipe().unwrap();
    let closed = closed_signal(&r);
    w.write(&b"a"[..]).await.unwrap();
    assert_eq!(&r.read_bytes(1, false).await.unwrap()[..], b"a");
    w.close();
    closed.await;
    assert!(matches!(r.error(), Some(CloseCause::Eof)));
}

// The bytes and the close both arrive while nobody reads: the bytes stay readable, and
// the close callback runs.
async fn close_callback_on_a_pipe_with_bytes_unread() {
    let (r, w) = IoStream::pipe().unwrap();
    let closed = closed_signal(&r);
    w.write(&b"last words"[..]).await.unwrap();
    w.close();
    closed.await;
    assert_eq!(&r.read_until_close().await.unwrap()[..], b"last words");
}

// A pipe's write end hears its reader go (as a write would: EPIPE).
async fn close_callback_on_a_pipes_write_end() {
    let (r, w) = IoStream::pipe().unwrap();
    let closed = closed_signal(&w);
    r.close();
    closed.await;
    let cause = w.error().unwrap();
    assert!(cause.is_peer_gone(), "{cause:?}");
}

// An accepted socket whose peer resets while nobody reads: the close callback runs, and
// the reset is the cause.
async fn close_callback_on_a_reset() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let stream = IoStream::new(listener.accept().unwrap().0).unwrap();
    let closed = closed_signal(&stream);
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
    closed.await;
    assert!(
        matches!(stream.error(), Some(CloseCause::Reset(_))),
        "{:?}",
        stream.error()
    );
}

// A close callback set while connecting hears the peer's close once connected, with
// nobody reading (Tornado watches every idle stream for its close).
async fn close_callback_set_while_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = IoStream::start_connect(listener.local_addr().unwrap()).unwrap();
    let closed = closed_signal(&stream);
    stream.wait_connected().await.unwrap();
    drop(listener.accept().unwrap());
    closed.await;
    assert!(
        stream.error().unwrap().is_peer_gone(),
        "{:?}",
        stream.error()
    );
}

squall_testing::backend_tests!(
    close_callback_set_while_connecting,
    close_callback_on_a_pipes_read_end,
    close_callback_on_a_pipe_with_bytes_unread,
    close_callback_on_a_pipes_write_end,
    close_callback_on_a_reset,
);
