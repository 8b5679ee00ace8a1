//! Faults at the TcpServer level, in a test binary of its own with one `#[test]`, so
//! that the process's open fd count is ours to compare: clients that vanish while the
//! server writes a large buffer (quiet logs, every handler ends, no fd left behind), and
//! a peer that never reads (the stream's write buffer bound holds and the handler
//! closes the connection with the limit error).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use log::{Level, LevelFilter};
use squall_ioloop::with_timeout;
use squall_iostream::{IoStream, StreamError};
use squall_tcpserver::{PeerAddr, TcpServer};
use squall_testing::open_fds;

/// The records at warn level or above, as `level target: message`.
fn loud_records() -> Vec<String> {
    squall_testing::records()
        .into_iter()
        .filter(|r| r.level <= Level::Warn)
        .map(|r| format!("{} {}: {}", r.level, r.target, r.message))
        .collect()
}

const BIG: usize = 32 << 20;
const PATIENCE: Duration = Duration::from_secs(30);

/// Clients that close while the server writes 32 MiB to each, at several points of
/// the response: every handler ends (with the quiet peer-gone error), nothing is
/// logged at warn or error level.
async fn vanishing_clients() {
    let big = Bytes::from(vec![b'z'; BIG]);
    let ended = Rc::new(Cell::new(0usize));
    let peer_gone = Rc::new(Cell::new(0usize));
    let (e, g) = (ended.clone(), peer_gone.clone());
    let server = TcpServer::new(move |stream: IoStream, _addr: PeerAddr| {
        let (big, e, g) = (big.clone(), e.clone(), g.clone());
        async move {
            let res = stream.write(big).await;
            e.set(e.get() + 1);
            if let Err(err) = &res {
                if err.close_cause().is_some_and(|c| c.is_peer_gone()) {
                    g.set(g.get() + 1);
                }
            }
            res
        }
    })
    .unwrap();
    let addr = server.listen(0, "127.0.0.1").unwrap()[0];
    let points = [0usize, 1, 64 << 10, 1 << 20, 8 << 20];
    for &n in &points {
        let client = IoStream::connect(addr).await.unwrap();
        if n > 0 {
            let got = client.read_bytes(n, false).await.unwrap();
            assert_eq!(got.len(), n);
        }
        client.close();
    }
    let all_ended = with_timeout(PATIENCE, async {
        while ended.get() < points.len() {
            squall_ioloop::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        all_ended.is_ok(),
        "{} of {} handlers ended",
        ended.get(),
        points.len()
    );
    assert_eq!(
        peer_gone.get(),
        points.len(),
        "every write ended with the peer gone"
    );
    server.stop();
}

/// A peer that never reads: the handler caps its stream's write buffer at 1 MiB and
/// writes until the cap refuses more, then closes the connection. The queue never
/// passes the cap, and the peer sees the connection end.
async fn peer_never_reads() {
    const CAP: usize = 1 << 20;
    let outcome: Rc<Cell<Option<(usize, usize)>>> = Rc::new(Cell::new(None));
    let o = outcome.clone();
    let server = TcpServer::new(move |stream: IoStream, _addr: PeerAddr| {
        let o = o.clone();
        async move {
            stream.set_max_write_buffer_size(Some(CAP));
            let piece = Bytes::from(vec![b'q'; 64 << 10]);
            let mut most = 0;
            let mut accepted = 0usize;
            loop {
                match stream.write_buffered(piece.clone()) {
                    Ok(()) => accepted += piece.len(),
                    Err(StreamError::WriteBufferFull { limit }) => {
                        assert_eq!(limit, CAP);
                        break;
                    }
                    Err(e) => panic!("unexpected write error: {e}"),
                }
                // Sends what the socket takes now; the future is not needed.
                drop(stream.flush());
                most = most.max(stream.write_buffer_len());
                // Let the loop run: the peer's socket fills up and stays full.
                squall_ioloop::sleep(Duration::ZERO).await;
            }
            o.set(Some((most, accepted)));
            stream.close();
        }
    })
    .unwrap();
    let addr = server.listen(0, "127.0.0.1").unwrap()[0];
    let client = IoStream::connect(addr).await.unwrap();
    let done = with_timeout(PATIENCE, async {
        while outcome.get().is_none() {
            squall_ioloop::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(done.is_ok(), "the writer never hit its cap");
    let (most, accepted) = outcome.get().unwrap();
    assert!(
        most <= CAP,
        "the write queue reached {most} bytes past its {CAP} cap"
    );
    // What was accepted went to the kernel's socket buffers or the capped queue.
    assert!(accepted >= CAP, "only {accepted} bytes accepted");
    // The peer now reads what was sent before the close, then the end of the stream.
    let rest = client.read_until_close().await.unwrap();
    assert!(rest.len() <= accepted);
    server.stop();
}

#[test]
fn faults_vanishing_clients_and_a_peer_that_never_reads() {
    squall_testing::install_logger_at(LevelFilter::Warn);
    for backend in squall_testing::BACKENDS {
        let before = open_fds();
        // The count sees a new fd (else the comparison below would prove nothing).
        let probe = squall_poller::sys::pipe().unwrap();
        assert_eq!(
            open_fds().len(),
            before.len() + 2,
            "the fd count missed a pipe"
        );
        drop(probe);
        squall_testing::run_on(backend, vanishing_clients);
        squall_testing::run_on(backend, peer_never_reads);
        let after = open_fds();
        assert_eq!(before, after, "{backend}: fds left open");
        let loud = loud_records();
        assert!(loud.is_empty(), "{backend}: {loud:#?}");
    }
}
