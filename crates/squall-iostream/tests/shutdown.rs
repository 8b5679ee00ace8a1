//! `IoStream::shutdown_write`: the half-close a server needs to close like nginx (shut
//! the write side, then keep reading for a while), on every backend.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use squall_ioloop::IoLoop;
use squall_iostream::{CloseCause, IoStream, StreamError};
use squall_testing::{tcp_pair, tcp_with_std_peer};

/// A generous deadline for the blocking std peer, so a bug fails instead of hanging.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

// The peer reads everything, then end-of-file; this side still reads the peer's reply.
async fn peer_sees_eof_after_data_and_reads_continue() {
    let (stream, mut peer) = tcp_with_std_peer().await;
    peer.set_read_timeout(Some(PEER_TIMEOUT)).unwrap();
    stream.write(&b"hello"[..]).await.unwrap();
    stream.shutdown_write().await.unwrap();
    assert!(stream.write_shut_down());
    assert!(!stream.closed());
    let mut got = Vec::new();
    peer.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hello");
    // Writes are refused now, with a typed error; the stream stays open for reading.
    let err = stream.write(&b"late"[..]).await.unwrap_err();
    assert!(matches!(err, StreamError::WriteShutdown), "{err:?}");
    let err = stream.write_buffered(&b"late"[..]).unwrap_err();
    assert!(matches!(err, StreamError::WriteShutdown), "{err:?}");
    assert_eq!(stream.write_buffer_len(), 0);
    assert!(!stream.closed());
    peer.write_all(b"reply").unwrap();
    drop(peer);
    let reply = stream.read_until_close().await.unwrap();
    assert_eq!(&reply[..], b"reply");
    assert!(matches!(stream.error(), Some(CloseCause::Eof)));
}

// Everything queued goes out before the shutdown, even when it takes many WRITE events.
async fn queued_data_is_flushed_before_the_shutdown() {
    let (server, client) = tcp_pair().await;
    let body: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let expected = body.clone();
    let reader = IoLoop::current()
        .unwrap()
        .spawn(async move { client.read_until_close().await.unwrap() });
    // Not awaited: the write and the shutdown happen regardless.
    drop(server.write(body));
    let shut = server.shutdown_write();
    assert!(server.writing() || server.write_shut_down());
    shut.await.unwrap();
    let got = reader.await.unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got[..] == expected[..]);
    // The client closed after its end-of-file: this side's read sees it.
    let rest = server.read_until_close().await.unwrap();
    assert!(rest.is_empty());
}

// Shutting down a closed stream is a typed error carrying the close cause.
async fn shutdown_of_a_closed_stream_is_an_error() {
    let (server, _client) = tcp_pair().await;
    server.close();
    let err = server.shutdown_write().await.unwrap_err();
    assert!(
        matches!(err, StreamError::Closed(CloseCause::Local)),
        "{err:?}"
    );
}

// A close while the shutdown waits for the queue fails the shutdown's future.
async fn close_before_the_flush_fails_the_shutdown() {
    let (server, client) = tcp_pair().await;
    // More than the socket buffers hold, with a peer that does not read.
    drop(server.write(vec![7u8; 16 * 1024 * 1024]));
    let shut = server.shutdown_write();
    assert!(server.writing());
    server.close();
    let err = shut.await.unwrap_err();
    assert!(err.is_closed(), "{err:?}");
    assert!(!server.write_shut_down());
    drop(client);
}

// Calling it twice is harmless, and the second future resolves too.
async fn shutdown_twice() {
    let (stream, mut peer) = tcp_with_std_peer().await;
    peer.set_read_timeout(Some(PEER_TIMEOUT)).unwrap();
    stream.write_buffered(&b"once"[..]).unwrap();
    let first = stream.shutdown_write();
    let second = stream.shutdown_write();
    first.await.unwrap();
    second.await.unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"once");
}

// While connecting, the shutdown waits for the connection and the queued data.
async fn shutdown_while_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = IoStream::start_connect(listener.local_addr().unwrap()).unwrap();
    stream.write_buffered(&b"early"[..]).unwrap();
    let shut = stream.shutdown_write();
    shut.await.unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(PEER_TIMEOUT)).unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"early");
    assert!(!stream.closed());
}

// A pipe's write end has no half-close: it is closed once flushed, and the reader sees
// the data, then end-of-file.
async fn pipe_write_end_closes() {
    let (r, w) = IoStream::pipe().unwrap();
    w.write_buffered(&b"through the pipe"[..]).unwrap();
    w.shutdown_write().await.unwrap();
    assert!(w.closed());
    assert!(matches!(w.error(), Some(CloseCause::Local)));
    let got = r.read_until_close().await.unwrap();
    assert_eq!(&got[..], b"through the pipe");
}

squall_testing::backend_tests!(
    peer_sees_eof_after_data_and_reads_continue,
    queued_data_is_flushed_before_the_shutdown,
    shutdown_of_a_closed_stream_is_an_error,
    close_before_the_flush_fails_the_shutdown,
    shutdown_twice,
    shutdown_while_connecting,
    pipe_write_end_closes,
);
