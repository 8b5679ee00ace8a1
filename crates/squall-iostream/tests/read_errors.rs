//! How a read error is reported: Tornado raises an error met by an inline read to its
//! caller without logging it (`test_inline_read_error`), and logs one that nobody will
//! see (`test_async_read_error_logging`). Here a read error goes back through the read's
//! future and is not logged at warn level; a `read_until_close`, which succeeds whatever
//! closed the stream, logs the error it swallows, once.

use std::cell::Cell;
use std::rc::Rc;
use std::task::{Poll, Waker};

use log::Level;
use squall_iostream::{CloseCause, IoStream, StreamError};

thread_local! {
    /// How many of this thread's records came before the current test.
    static MARK: Cell<usize> = const { Cell::new(0) };
}

/// Captures the log (squall-testing's logger; each test thread reads its own records)
/// and starts this test's records here.
fn capture() {
    squall_testing::install_logger();
    let seen = squall_testing::records_of(std::thread::current().id()).len();
    MARK.with(|m| m.set(seen));
}

/// This test's records from squall-iostream.
fn records() -> Vec<(Level, String)> {
    let from = MARK.with(Cell::get);
    squall_testing::records_of(std::thread::current().id())
        .into_iter()
        .skip(from)
        .filter(|r| r.target.starts_with("squall_iostream"))
        .map(|r| (r.level, r.message))
        .collect()
}

fn warnings() -> Vec<String> {
    records()
        .into_iter()
        .filter(|(l, _)| *l <= Level::Warn)
        .map(|(_, m)| m)
        .collect()
}

// Tornado: test_inline_read_error. Reading a pipe's write end fails with EBADF: the
// error comes back from the read, with its OS error, and is not logged at warn level.
async fn inline_read_error_is_returned_unlogged() {
    capture();
    let (_r, w) = IoStream::pipe().unwrap();
    let err = w.read_bytes(1, false).await.unwrap_err();
    let os = err.io_error().expect("the OS error is kept");
    assert_eq!(os.raw_os_error(), Some(libc::EBADF), "{err:?}");
    assert!(matches!(err, StreamError::Closed(CloseCause::Io(_))));
    assert!(w.closed());
    assert!(warnings().is_empty(), "{:?}", warnings());
    // It is still in the debug log, and the stream remembers it.
    assert!(
        records()
            .iter()
            .any(|(l, m)| *l == Level::Debug && m.contains("closed")),
        "{:?}",
        records()
    );
    assert!(matches!(w.error(), Some(CloseCause::Io(_))));
}

// The same error met by a read_until_close, which resolves with what was received
// whatever closed the stream: nobody else hears of the error, so it is logged, once.
async fn read_until_close_logs_the_error_it_swallows() {
    capture();
    let (_r, w) = IoStream::pipe().unwrap();
    let got = w.read_until_close().await.unwrap();
    assert!(got.is_empty());
    let warns = warnings();
    assert_eq!(warns.len(), 1, "{warns:?}");
    assert!(matches!(w.error(), Some(CloseCause::Io(_))));
}

// Tornado's _handle_connect: a failed connect that somebody awaits goes to them,
// unlogged (a refused happy-eyeballs attempt is no warning); with nobody waiting on the
// stream, it is logged.
async fn a_failed_connect_is_logged_only_when_nobody_waits() {
    capture();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = IoStream::connect(addr).await.unwrap_err();
    assert_eq!(
        err.io_error().map(|e| e.kind()),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    assert!(warnings().is_empty(), "{:?}", warnings());
    // Nobody waits: the stream is left connecting, and its error is heard of only here.
    let Ok(stream) = IoStream::start_connect(addr) else {
        return; // refused at once, inline: nothing for the stream to log
    };
    // The close callback says when the connect has failed.
    let closed: Rc<(Cell<bool>, Cell<Option<Waker>>)> = Rc::default();
    let c = closed.clone();
    stream.set_close_callback(move || {
        c.0.set(true);
        if let Some(w) = c.1.take() {
            w.wake();
        }
    });
    std::future::poll_fn(|cx| {
        if closed.0.get() {
            return Poll::Ready(());
        }
        closed.1.set(Some(cx.waker().clone()));
        Poll::Pending
    })
    .await;
    assert_eq!(warnings().len(), 1, "{:?}", warnings());
}

squall_testing::backend_tests!(
    inline_read_error_is_returned_unlogged,
    read_until_close_logs_the_error_it_swallows,
    a_failed_connect_is_logged_only_when_nobody_waits,
);
