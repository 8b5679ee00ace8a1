//! EMFILE survival, in a test binary of its own because it lowers `RLIMIT_NOFILE` for
//! the whole process. Tornado has no such test (it spins); this shows a listener that
//! runs out of fds pauses without spinning and serves the waiting client once fds free
//! up. One `#[test]` runs every backend in turn, so nothing else shares the fd table.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};
use squall_ioloop::sleep;
use squall_iostream::IoStream;
use squall_tcpserver::{PeerAddr, TcpServer};

async fn survives_emfile() {
    let server = TcpServer::new(|stream: IoStream, _addr: PeerAddr| async move {
        stream.write(&b"served"[..]).await?;
        stream.close();
        Ok::<(), squall_iostream::StreamError>(())
    })
    .unwrap();
    let addr: SocketAddr = server.listen(0, "127.0.0.1").unwrap()[0];
    // A served connection first, to see the server works.
    let warm = IoStream::connect(addr).await.unwrap();
    assert_eq!(&warm.read_bytes(6, false).await.unwrap()[..], b"served");
    drop(warm);

    // The client socket exists before the table is full; connect needs no new fd.
    let client = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    client.set_nonblocking(true).unwrap();
    let hog = squall_testing::fill_fd_table();
    match client.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => panic!("connect: {e}"),
    }
    let calls_before: u64 = server.accept_handles().iter().map(|h| h.2).sum();
    // Let the loop run for a while with the connection pending and no fd to take it.
    sleep(Duration::from_millis(400)).await;
    let handles = server.accept_handles();
    let calls: u64 = handles.iter().map(|h| h.2).sum::<u64>() - calls_before;
    assert!(calls >= 1, "the listener never tried to accept");
    // Backoff from 10 ms doubling: a handful of tries in 400 ms, never thousands.
    assert!(
        calls <= 10,
        "the accept loop spun: {calls} accept calls in 400 ms"
    );
    assert!(handles.iter().any(|h| h.1), "the listener is paused");

    // Free the fds: the waiting client is served.
    drop(hog);
    let stream = IoStream::new(OwnedFd::from(client)).unwrap();
    stream.wait_connected().await.unwrap();
    let got = squall_ioloop::with_timeout(Duration::from_secs(10), stream.read_bytes(6, false))
        .await
        .expect("the pending client was not served after fds freed up")
        .unwrap();
    assert_eq!(&got[..], b"served");
    server.stop();
}

#[test]
fn emfile_pauses_the_listener_then_serves() {
    let old = squall_testing::set_nofile(256);
    for backend in squall_testing::BACKENDS {
        squall_testing::run_on(backend, survives_emfile);
    }
    squall_testing::set_nofile(old);
}
