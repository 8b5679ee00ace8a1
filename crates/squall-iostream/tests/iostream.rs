//! Tornado's `iostream_test.py` behaviours, in our own words, run on every backend the
//! platform has (epoll or kqueue, poll, select). Each test names the Tornado test it
//! follows.

use std::cell::Cell;
use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use squall_ioloop::{sleep, IoLoop};
use squall_iostream::{CloseCause, IoStream, ReadParseError, StreamError};
use squall_testing::{tcp_pair, tcp_with_std_peer};

/// Yields to the loop for one turn.
async fn turn() {
    sleep(Duration::ZERO).await;
}

// Tornado: test_read_until (many small writes) / test_streaming_callback_with_data_in_buffer.
async fn read_until_across_many_small_writes() {
    let (server, client) = tcp_pair().await;
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    let reader = IoLoop::current().unwrap().spawn(async move {
        let got = server.read_until(b"\r\n", None).await.unwrap();
        let rest = server.read_until(b"!", None).await.unwrap();
        (got, rest)
    });
    for &b in line.iter() {
        client.write(Bytes::copy_from_slice(&[b])).await.unwrap();
        turn().await;
    }
    client.write(&b"tail!"[..]).await.unwrap();
    let (got, rest) = reader.await.unwrap();
    assert_eq!(&got[..], &line[..]);
    assert_eq!(&rest[..], b"tail!");
}

// Tornado: test_read_until_max_bytes.
async fn read_until_max_bytes() {
    let (server, client) = tcp_pair().await;
    client.write(&b"abcd\r\nefgh"[..]).await.unwrap();
    // Within the limit: fine (the match ends exactly at max_bytes).
    let got = server.read_until(b"\r\n", Some(6)).await.unwrap();
    assert_eq!(&got[..], b"abcd\r\n");
    // Not found within 6 bytes once more than that is buffered: unsatisfiable, closed.
    client.write(&b"ijklmnop"[..]).await.unwrap();
    let err = server.read_until(b"\r\n", Some(6)).await.unwrap_err();
    assert!(
        matches!(err, StreamError::Unsatisfiable { max_bytes: 6 }),
        "{err:?}"
    );
    assert!(server.closed());
    assert!(matches!(server.error(), Some(CloseCause::Unsatisfiable)));
}

// Tornado: test_read_until_max_bytes_ignores_extra / test_read_until_max_bytes_inline.
async fn read_until_max_bytes_match_past_limit() {
    let (server, client) = tcp_pair().await;
    // The delimiter is there, but ends past max_bytes.
    client.write(&b"123456789\r\n"[..]).await.unwrap();
    let err = server.read_until(b"\r\n", Some(5)).await.unwrap_err();
    assert!(
        matches!(err, StreamError::Unsatisfiable { max_bytes: 5 }),
        "{err:?}"
    );
    assert!(server.closed());
}

// Tornado closes only once *more* than max_bytes arrived without the delimiter:
// exactly max_bytes leave the read waiting, and an end-of-file then is a close (Tornado's
// StreamClosedError), not an unsatisfiable read; the bytes stay buffered.
async fn read_until_exactly_max_bytes_then_eof() {
    let (server, mut peer) = tcp_with_std_peer().await;
    peer.write_all(b"12345").unwrap();
    let mut read = std::pin::pin!(server.read_until(b"def", Some(5)));
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(read.as_mut().poll(cx)));
    assert!(first.await.is_pending(), "5 bytes are not more than 5");
    assert!(!server.closed());
    drop(peer);
    let err = read.await.unwrap_err();
    assert!(
        matches!(err, StreamError::Closed(CloseCause::Eof)),
        "{err:?}"
    );
    assert_eq!(server.buffered_len(), 5);
}

// Tornado: test_read_until_unsatisfied_after_close.
async fn read_until_eof_before_match_is_closed_not_unsatisfiable() {
    let (server, mut peer) = tcp_with_std_peer().await;
    peer.write_all(b"no delimiter here").unwrap();
    drop(peer);
    let err = server.read_until(b"\r\n", Some(1000)).await.unwrap_err();
    assert!(
        matches!(err, StreamError::Closed(CloseCause::Eof)),
        "{err:?}"
    );
}

// Tornado: test_read_bytes_partial.
async fn read_bytes_partial() {
    let (server, client) = tcp_pair().await;
    client.write(&b"hello"[..]).await.unwrap();
    let got = server.read_bytes(50, true).await.unwrap();
    assert_eq!(&got[..], b"hello");
    client.write(&b"world"[..]).await.unwrap();
    let got = server.read_bytes(3, true).await.unwrap();
    assert_eq!(&got[..], b"wor");
    let got = server.read_bytes(50, true).await.unwrap();
    assert_eq!(&got[..], b"ld");
}

// Large `read_bytes` (a block read into its own buffer, handed over without a copy):
// exact, partial, with bytes left over for the next read, and only a little arriving.
async fn read_bytes_large_blocks() {
    let (server, mut peer) = tcp_with_std_peer().await;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    peer.write_all(&data[..100_000]).unwrap();
    // Exactly 40,000, then 50,000: the first read may take more than its block, and
    // the second starts from what it left.
    let a = server.read_bytes(40_000, false).await.unwrap();
    assert_eq!(&a[..], &data[..40_000]);
    let b = server.read_bytes(50_000, false).await.unwrap();
    assert_eq!(&b[..], &data[40_000..90_000]);
    // Partial: what is there (the 10,000 left), not more.
    let c = server.read_bytes(65_536, true).await.unwrap();
    assert_eq!(&c[..], &data[90_000..100_000]);
    // A large partial read that gets three bytes, then the rest of a large exact one.
    peer.write_all(b"abc").unwrap();
    assert_eq!(&server.read_bytes(65_536, true).await.unwrap()[..], b"abc");
    let (tail, _) = data.split_at(100_000);
    peer.write_all(tail).unwrap();
    let d = server.read_bytes(100_000, false).await.unwrap();
    assert_eq!(&d[..], tail);
    // End of file in the middle of a large exact read: the stream closes with EOF.
    peer.write_all(&data[..20_000]).unwrap();
    drop(peer);
    let err = server.read_bytes(30_000, false).await.unwrap_err();
    assert!(
        matches!(err, StreamError::Closed(CloseCause::Eof)),
        "{err:?}"
    );
}

// Tornado: test_read_zero_bytes.
async fn read_zero_bytes() {
    let (server, client) = tcp_pair().await;
    client.write(&b"HTTP/1.1 200"[..]).await.unwrap();
    assert_eq!(
        &server.read_bytes(9, false).await.unwrap()[..],
        b"HTTP/1.1 "
    );
    assert_eq!(&server.read_bytes(0, false).await.unwrap()[..], b"");
    // An empty delimiter matches at once, consuming nothing.
    assert_eq!(&server.read_until(b"", Some(4)).await.unwrap()[..], b"");
    // Both still hold the read slot while they exist.
    let pending = server.read_bytes(1, false);
    assert!(matches!(
        server.read_bytes(0, false).await,
        Err(StreamError::ReadInProgress)
    ));
    assert!(matches!(
        server.read_until(b"", None).await,
        Err(StreamError::ReadInProgress)
    ));
    drop(pending);
    assert_eq!(&server.read_bytes(3, false).await.unwrap()[..], b"200");
}

// Tornado: test_read_until_close / test_future_read_until_close.
async fn read_until_close_gets_everything() {
    let (stream, mut peer) = tcp_with_std_peer().await;
    peer.write_all(b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
    let head = stream.read_until(b"\r\n\r\n", None).await.unwrap();
    assert_eq!(&head[..], b"HTTP/1.0 200 OK\r\n\r\n");
    let body = vec![b'x'; 300_000];
    let writer = std::thread::spawn(move || {
        peer.write_all(&body).unwrap();
    });
    let all = stream.read_until_close().await.unwrap();
    writer.join().unwrap();
    assert_eq!(all.len(), 300_000);
    assert!(all.iter().all(|&b| b == b'x'));
    // Nothing else to read: the error comes at once.
    let err = stream.read_bytes(1, false).await.unwrap_err();
    assert!(
        matches!(err, StreamError::Closed(CloseCause::Eof)),
        "{err:?}"
    );
}

// Tornado: test_large_write / test_write_memoryview... with a slow reader.
async fn large_write_to_slow_reader() {
    let (server, client) = tcp_pair().await;
    const TOTAL: usize = 10 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    // Queue 10 MiB as shared chunks: the stream queues them without copying.
    let chunk = Bytes::from(vec![7u8; CHUNK]);
    for _ in 0..TOTAL / CHUNK {
        client.write_buffered(chunk.clone()).unwrap();
    }
    assert_eq!(client.write_buffer_len(), TOTAL);
    let done = client.flush();
    // The OS took some at once, not all.
    assert!(client.write_buffer_len() < TOTAL);
    assert!(client.writing());
    let mut got = 0;
    let mut max_cap = 0;
    while got < TOTAL {
        let b = server.read_bytes(4096, true).await.unwrap();
        assert!(b.iter().all(|&x| x == 7));
        got += b.len();
        // The reader never holds more than one read's worth.
        max_cap = max_cap.max(server.read_buffer_capacity());
        // Memory on the writer side is what is still queued, no more.
        assert!(client.write_buffer_len() <= TOTAL - got);
    }
    done.await.unwrap();
    assert_eq!(client.write_buffer_len(), 0);
    assert!(!client.writing());
    assert!(max_cap <= 64 * 1024, "reader buffer grew to {max_cap}");
}

// Tornado: test_future_close_callback / test_close_callback_with_pending_read.
async fn close_callback_runs_once() {
    let (server, client) = tcp_pair().await;
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    server.set_close_callback(move || c.set(c.get() + 1));
    // No read pending: the peer's close is still noticed.
    client.close();
    for _ in 0..1000 {
        if calls.get() > 0 {
            break;
        }
        sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(calls.get(), 1);
    assert!(server.closed());
    server.close();
    turn().await;
    turn().await;
    assert_eq!(calls.get(), 1);
}

// Tornado: set_close_callback(None). A cleared callback never runs, and what it held
// (here a clone of its own stream, which kept the fd open) is released at once.
async fn cleared_close_callback_never_runs() {
    let (server, client) = tcp_pair().await;
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let held = server.clone();
    server.set_close_callback(move || {
        let _keep = &held;
        c.set(c.get() + 1);
    });
    assert_eq!(Rc::strong_count(&calls), 2);
    assert!(server.clear_close_callback());
    assert_eq!(Rc::strong_count(&calls), 1, "the callback was dropped");
    assert!(!server.clear_close_callback(), "nothing left to clear");
    client.close();
    let err = server.read_bytes(1, false).await.unwrap_err();
    assert!(matches!(err, StreamError::Closed(_)), "{err:?}");
    turn().await;
    turn().await;
    assert_eq!(calls.get(), 0);
}

// Tornado: test_close_callback_with_pending_read.
async fn close_callback_with_pending_read() {
    let (server, client) = tcp_pair().await;
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    client.set_close_callback(move || c.set(c.get() + 1));
    let io_loop = IoLoop::current().unwrap();
    let s = server.clone();
    io_loop.add_callback(move || s.close());
    let err = client.read_bytes(1, false).await.unwrap_err();
    assert!(
        matches!(err, StreamError::Closed(CloseCause::Eof)),
        "{err:?}"
    );
    turn().await;
    assert_eq!(calls.get(), 1);
}

// Tornado: test_future_read_until_close (reads on a closed stream fail at once).
async fn read_from_closed_stream_errors_at_once() {
    let (server, _client) = tcp_pair().await;
    server.close();
    let err = server.read_bytes(1, false).await.unwrap_err();
    assert!(
        matches!(err, StreamError::Closed(CloseCause::Local)),
        "{err:?}"
    );
    let err = server.write(&b"x"[..]).await.unwrap_err();
    assert!(err.is_closed());
    let err = server.read_until(b"\n", None).await.unwrap_err();
    assert!(err.is_closed());
    // read_until_close gives what is buffered: nothing.
    assert!(server.read_until_close().await.unwrap().is_empty());
}

// Tornado: test_connection_refused.
async fn connection_refused_surfaces_the_real_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = IoStream::connect(addr).await.unwrap_err();
    let io = err.io_error().expect("an OS error");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    // With start_connect the stream carries the error too.
    let stream = IoStream::start_connect(addr);
    if let Ok(stream) = stream {
        let called = Rc::new(Cell::new(false));
        let c = called.clone();
        stream.set_close_callback(move || c.set(true));
        let err = stream.wait_connected().await.unwrap_err();
        assert_eq!(
            err.io_error().unwrap().kind(),
            std::io::ErrorKind::ConnectionRefused
        );
        assert!(matches!(stream.error(), Some(CloseCause::Io(_))));
        turn().await;
        assert!(called.get());
    }
}

// Tornado: test_write_while_connecting.
async fn write_while_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stream = IoStream::start_connect(addr).unwrap();
    let w = stream.write(&b"early bird"[..]);
    stream.wait_connected().await.unwrap();
    w.await.unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 10];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"early bird");
}

// Tornado: test_write_zero_bytes.
async fn write_zero_bytes() {
    let (server, _client) = tcp_pair().await;
    server.write(Bytes::new()).await.unwrap();
    server.flush().await.unwrap();
}

// Tornado: test_many_mixed_reads / large writes interleaved with reads.
async fn large_writes_interleaved_with_reads() {
    let (server, client) = tcp_pair().await;
    let io_loop = IoLoop::current().unwrap();
    let c2 = client.clone();
    // The echo side: read a length-prefixed block, answer with it.
    let echo = io_loop.spawn(async move {
        loop {
            let head = match server.read_until(b"\n", Some(32)).await {
                Ok(h) => h,
                Err(_) => return,
            };
            let n: usize = std::str::from_utf8(&head[..head.len() - 1])
                .unwrap()
                .parse()
                .unwrap();
            let body = server.read_bytes(n, false).await.unwrap();
            server.write(body).await.unwrap();
        }
    });
    for round in 0..6usize {
        let n = 100_000 * (round + 1);
        let payload: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        c2.write(format!("{n}\n")).await.unwrap();
        let w = c2.write(payload.clone());
        let back = c2.read_bytes(n, false).await.unwrap();
        w.await.unwrap();
        assert_eq!(&back[..], &payload[..]);
    }
    client.close();
    echo.await.unwrap();
}

// Tornado: test_read_into / test_read_into_partial.
async fn read_into() {
    let (server, client) = tcp_pair().await;
    client
        .write(&b"hello world, this is squall"[..])
        .await
        .unwrap();
    let mut buf = [0u8; 5];
    assert_eq!(server.read_into(&mut buf, false).await.unwrap(), 5);
    assert_eq!(&buf, b"hello");
    // Buffered first, surplus kept.
    let _ = server.read_bytes(1, false).await.unwrap();
    let mut big = [0u8; 100];
    let n = server.read_into(&mut big, true).await.unwrap();
    assert!(n >= 1);
    let mut rest = big[..n].to_vec();
    while rest.len() < 21 {
        let n = server.read_into(&mut big, true).await.unwrap();
        rest.extend_from_slice(&big[..n]);
    }
    assert_eq!(&rest[..], b"world, this is squall");
    // Non-partial across writes.
    let mut six = [0u8; 6];
    let s2 = server.clone();
    let io_loop = IoLoop::current().unwrap();
    let c = client.clone();
    io_loop.add_callback(move || {
        drop(c.write(&b"abc"[..]));
        let c2 = c.clone();
        IoLoop::current()
            .unwrap()
            .add_callback(move || drop(c2.write(&b"defg"[..])));
    });
    assert_eq!(s2.read_into(&mut six, false).await.unwrap(), 6);
    assert_eq!(&six, b"abcdef");
    assert_eq!(&server.read_bytes(1, false).await.unwrap()[..], b"g");
}

// Tornado: the "Already reading" assertion.
async fn second_concurrent_read_is_an_error() {
    let (server, client) = tcp_pair().await;
    let first = server.read_bytes(4, false);
    let second = server.read_until(b"\n", None);
    assert!(server.reading());
    let err = second.await.unwrap_err();
    assert!(matches!(err, StreamError::ReadInProgress), "{err:?}");
    client.write(&b"abcd"[..]).await.unwrap();
    assert_eq!(&first.await.unwrap()[..], b"abcd");
    assert!(!server.reading());
    // A dropped read gives the slot back.
    drop(server.read_bytes(1, false));
    client.write(&b"z"[..]).await.unwrap();
    assert_eq!(&server.read_bytes(1, false).await.unwrap()[..], b"z");
}

// One read at a time covers take_buffered too: while a read_until is pending (it
// remembers how far it searched the buffer), take_buffered takes nothing, so the
// delimiter that straddles the next arrival is still found.
async fn take_buffered_waits_for_a_pending_read() {
    let (server, mut peer) = tcp_with_std_peer().await;
    peer.write_all(b"abc\r").unwrap();
    let mut read = std::pin::pin!(server.read_until(b"\r\n", None));
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(read.as_mut().poll(cx)));
    assert!(first.await.is_pending());
    assert_eq!(server.buffered_len(), 4);
    assert!(server.take_buffered(2).is_empty());
    peer.write_all(b"\nrest").unwrap();
    assert_eq!(&read.await.unwrap()[..], b"abc\r\n");
    assert_eq!(&server.take_buffered(2)[..], b"re");
}

// Tornado: set_nodelay is defined for TCP streams only and a no-op on others (a pipe,
// a Unix socket) and on a closed stream, where it used to fail.
async fn set_nodelay_is_for_tcp_only() {
    let (server, _client) = tcp_pair().await;
    server.set_nodelay(true).unwrap();
    server.set_nodelay(false).unwrap();
    server.close();
    server.set_nodelay(true).unwrap();
    let (r, w) = IoStream::pipe().unwrap();
    r.set_nodelay(true).unwrap();
    w.set_nodelay(true).unwrap();
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    IoStream::new(a).unwrap().set_nodelay(true).unwrap();
}

// read_until_close resolves with every byte received whatever closed the stream, even
// an fd the loop cannot watch: a regular file on epoll (EPERM) once its bytes are read.
async fn read_until_close_of_a_regular_file() {
    let dir = squall_testing::TempDir::new("iostream-file").unwrap();
    let path = dir.path().join("data");
    std::fs::write(&path, b"file contents").unwrap();
    let stream = IoStream::new(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(
        &stream.read_until_close().await.unwrap()[..],
        b"file contents"
    );
    assert!(stream.closed());
}

// Tornado: TestPipeIOStream.test_pipe_iostream.
async fn pipe_streams() {
    let (r, w) = IoStream::pipe().unwrap();
    w.write(&b"hel"[..]).await.unwrap();
    w.write(&b"lo world"[..]).await.unwrap();
    assert_eq!(&r.read_until(b" ", None).await.unwrap()[..], b"hello ");
    assert_eq!(&r.read_bytes(3, false).await.unwrap()[..], b"wor");
    w.close();
    assert_eq!(&r.read_until_close().await.unwrap()[..], b"ld");
    assert!(r.closed());
}

// Tornado: TestPipeIOStream.test_pipe_iostream_big_write.
async fn pipe_big_write() {
    let (r, w) = IoStream::pipe().unwrap();
    const N: usize = 1024 * 1024;
    let w2 = w.clone();
    let io_loop = IoLoop::current().unwrap();
    let writer = io_loop.spawn(async move {
        w2.write(vec![b'1'; N]).await.unwrap();
        w2.close();
    });
    let got = r.read_bytes(N, false).await.unwrap();
    assert_eq!(got.len(), N);
    writer.await.unwrap();
    drop(w);
}

// Tornado: test_close_buffered_data (bytes in the kernel buffer stay readable).
async fn close_buffered_data() {
    let (server, client) = tcp_pair().await;
    client.set_read_chunk_size(256);
    server.write(vec![b'A'; 512]).await.unwrap();
    let first = client.read_bytes(256, false).await.unwrap();
    assert_eq!(&first[..], &[b'A'; 256][..]);
    server.close();
    let second = client.read_bytes(256, false).await.unwrap();
    assert_eq!(&second[..], &[b'A'; 256][..]);
    let err = client.read_bytes(1, false).await.unwrap_err();
    assert!(
        matches!(err, StreamError::Closed(CloseCause::Eof)),
        "{err:?}"
    );
}

// Tornado: test_future_delayed_close_callback.
async fn delayed_close_callback() {
    let (server, client) = tcp_pair().await;
    server.write(&b"12"[..]).await.unwrap();
    let a = client.read_bytes(1, false).await.unwrap();
    server.close();
    let b = client.read_bytes(1, false).await.unwrap();
    assert_eq!((&a[..], &b[..]), (&b"1"[..], &b"2"[..]));
}

// Tornado: test_small_reads_from_large_buffer (backpressure).
async fn small_reads_from_large_buffer() {
    let (server, client) = tcp_pair().await;
    server.set_max_buffer_size(10 * 1024);
    let w = client.write(vec![b'a'; 100 * 1024]);
    for _ in 0..100 {
        let b = server.read_bytes(1024, false).await.unwrap();
        assert_eq!(b.len(), 1024);
    }
    w.await.unwrap();
}

// Tornado: test_small_read_untils_from_large_buffer.
async fn small_read_untils_from_large_buffer() {
    let (server, client) = tcp_pair().await;
    server.set_max_buffer_size(10 * 1024);
    let w = client.write(
        b"a".repeat(1023)
            .iter()
            .chain(b"\n")
            .copied()
            .cycle()
            .take(100 * 1024)
            .collect::<Vec<u8>>(),
    );
    for _ in 0..100 {
        let b = server.read_until(b"\n", Some(4096)).await.unwrap();
        assert_eq!(b.len(), 1024);
    }
    w.await.unwrap();
}

// Tornado: test_read_until_close with max_buffer_size (StreamBufferFullError).
async fn read_until_close_past_max_buffer_size() {
    let (server, client) = tcp_pair().await;
    server.set_max_buffer_size(4096);
    let _w = client.write(vec![b'z'; 10_000]);
    let err = server.read_until_close().await.unwrap_err();
    assert!(
        matches!(err, StreamError::BufferFull { limit: 4096 }),
        "{err:?}"
    );
    assert!(matches!(server.error(), Some(CloseCause::BufferFull)));
}

// Tornado fails only past max_buffer_size: exactly that many bytes, then end of file,
// is a whole read_until_close (and one byte more is still BufferFull, above). Each size
// is tried with the peer's bytes and its close already in the socket, the case where the
// buffer fills before end of file is seen.
async fn read_until_close_at_exactly_max_buffer_size() {
    for size in [1usize, 4096, 100_000] {
        let (server, mut peer) = tcp_with_std_peer().await;
        server.set_max_buffer_size(size);
        peer.write_all(&vec![b'q'; size]).unwrap();
        drop(peer);
        let all = server.read_until_close().await.unwrap();
        assert_eq!(all.len(), size);
        assert!(matches!(server.error(), None | Some(CloseCause::Eof)));
    }
}

// Tornado: max_write_buffer_size (StreamBufferFullError at write).
async fn max_write_buffer_size() {
    let (_server, client) = tcp_pair().await;
    client.set_max_write_buffer_size(Some(100));
    client.write_buffered(vec![0u8; 60]).unwrap();
    let err = client.write_buffered(vec![0u8; 60]).unwrap_err();
    assert!(
        matches!(err, StreamError::WriteBufferFull { limit: 100 }),
        "{err:?}"
    );
    assert!(!client.closed());
    client.flush().await.unwrap();
    client.write(vec![0u8; 60]).await.unwrap();
}

// Our own: `poll_write_buf` writes straight from the caller's buffer when nothing is
// queued (the buffer keeps its allocation, nothing is queued); what a full socket does
// not take goes to the queue, behind nothing and before later writes, and arrives whole
// and in order; after a shutdown or a close it fails.
async fn poll_write_buf_direct_and_queued() {
    use std::future::poll_fn;
    let (server, mut peer) = tcp_with_std_peer().await;
    let mut out = bytes::BytesMut::with_capacity(4096);
    out.extend_from_slice(b"small batch");
    let cap = out.capacity();
    poll_fn(|cx| server.poll_write_buf(cx, &mut out))
        .await
        .unwrap();
    assert!(out.is_empty());
    assert_eq!(out.capacity(), cap, "written in place, the allocation kept");
    assert_eq!(server.write_buffer_len(), 0);
    let mut got = [0u8; 11];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"small batch");

    // Far more than the socket buffers hold: part is written, the rest queued.
    let big: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    out.extend_from_slice(&big);
    let mut first = Some(());
    let pending = poll_fn(|cx| {
        let p = server.poll_write_buf(cx, &mut out);
        std::task::Poll::Ready((first.take(), p.is_pending()))
    })
    .await;
    assert_eq!(
        pending,
        (Some(()), true),
        "the socket cannot take 8 MiB at once"
    );
    assert!(out.is_empty(), "the rest moved to the queue");
    assert!(server.write_buffer_len() > 0);
    // Queued behind it: a later write keeps its place.
    let tail = server.write(&b"tail"[..]);
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = vec![0u8; 65536];
        while all.len() < 8 * 1024 * 1024 + 4 {
            let n = peer.read(&mut buf).unwrap();
            assert!(n > 0, "end of file before everything arrived");
            all.extend_from_slice(&buf[..n]);
        }
        (all, peer)
    });
    tail.await.unwrap();
    poll_fn(|cx| server.poll_write_buf(cx, &mut out))
        .await
        .unwrap();
    let (all, _peer) = reader.join().unwrap();
    assert_eq!(&all[..big.len()], &big[..]);
    assert_eq!(&all[big.len()..], b"tail");

    server.shutdown_write().await.unwrap();
    out.extend_from_slice(b"late");
    let err = poll_fn(|cx| server.poll_write_buf(cx, &mut out))
        .await
        .unwrap_err();
    assert!(matches!(err, StreamError::WriteShutdown), "{err:?}");
    server.close();
    let err = poll_fn(|cx| server.poll_write_buf(cx, &mut out))
        .await
        .unwrap_err();
    assert!(matches!(err, StreamError::Closed(_)), "{err:?}");
}

// Our own: an idle stream owns no buffer; READ interest stays armed across reads.
async fn idle_stream_holds_no_buffer() {
    let (server, client) = tcp_pair().await;
    assert_eq!(server.read_buffer_capacity(), 0);
    client
        .write(&b"GET / HTTP/1.1\r\n\r\nGET /2"[..])
        .await
        .unwrap();
    let head = server.read_until(b"\r\n\r\n", None).await.unwrap();
    assert_eq!(&head[..], b"GET / HTTP/1.1\r\n\r\n");
    // The leftover is kept, exactly.
    assert_eq!(server.buffered_len(), 6);
    assert!(server.read_buffer_capacity() < 64);
    client.write(&b" HTTP/1.1\r\n\r\n"[..]).await.unwrap();
    let head = server.read_until(b"\r\n\r\n", None).await.unwrap();
    assert_eq!(&head[..], b"GET /2 HTTP/1.1\r\n\r\n");
    assert_eq!(server.buffered_len(), 0);
    assert_eq!(
        server.read_buffer_capacity(),
        0,
        "an idle stream keeps no capacity"
    );
}

type LineResult = Result<Option<(Vec<u8>, usize)>, &'static str>;

/// A parse callback for "<line>\n" messages that counts its calls.
fn line_parser(calls: &Cell<usize>) -> impl FnMut(&[u8]) -> LineResult + '_ {
    move |buf: &[u8]| {
        calls.set(calls.get() + 1);
        if buf.first() == Some(&b'!') {
            return Err("bang");
        }
        Ok(memchr_line(buf).map(|end| (buf[..end].to_vec(), end)))
    }
}

fn memchr_line(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n').map(|i| i + 1)
}

// Our own: the zero-copy parse hook, pipelining and limits.
async fn read_parse_pipelined_and_limits() {
    let (server, client) = tcp_pair().await;
    let calls = Cell::new(0);
    client.write(&b"one\ntwo\nthr"[..]).await.unwrap();
    let a = server.read_parse(64, line_parser(&calls)).await.unwrap();
    assert_eq!(a, b"one\n");
    // The second message is already buffered: a pipelining server sees it.
    assert_eq!(server.buffered_len(), 7);
    let b = server.read_parse(64, line_parser(&calls)).await.unwrap();
    assert_eq!(b, b"two\n");
    assert_eq!(server.buffered_len(), 3);
    // A partial message waits for more; the callback is not asked twice about the same
    // bytes.
    calls.set(0);
    let io_loop = IoLoop::current().unwrap();
    let c = client.clone();
    io_loop.add_callback(move || drop(c.write(&b"ee\n"[..])));
    let t = server.read_parse(64, line_parser(&calls)).await.unwrap();
    assert_eq!(t, b"three\n");
    assert_eq!(calls.get(), 2);
    assert_eq!(server.read_buffer_capacity(), 0);
    // Too large: the stream stays open and the bytes stay buffered.
    client.write(vec![b'x'; 100]).await.unwrap();
    let err = server
        .read_parse(64, line_parser(&calls))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ReadParseError::TooLarge { max_bytes: 64 }),
        "{err:?}"
    );
    assert!(!server.closed());
    assert!(server.buffered_len() >= 64);
    let _ = server.take_buffered(usize::MAX);
    // A parse error comes back as is.
    client.write(&b"!oops\n"[..]).await.unwrap();
    let err = server
        .read_parse(64, line_parser(&calls))
        .await
        .unwrap_err();
    assert!(matches!(err, ReadParseError::Parse("bang")), "{err:?}");
    assert_eq!(&server.take_buffered(3)[..], b"!oo");
    assert_eq!(&server.take_buffered(100)[..], b"ps\n");
    // A clean end-of-file between messages.
    client.close();
    let err = server
        .read_parse(64, line_parser(&calls))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ReadParseError::Stream(StreamError::Closed(CloseCause::Eof))
        ),
        "{err:?}"
    );
    assert_eq!(server.buffered_len(), 0);
}

// Our own: a batch of responses queued with write_buffered goes out with one flush.
async fn write_buffered_then_flush() {
    let (server, client) = tcp_pair().await;
    for i in 0..10 {
        server.write_buffered(format!("response {i}\n")).unwrap();
    }
    assert_eq!(server.write_buffer_len(), 110);
    server.flush().await.unwrap();
    assert_eq!(server.write_buffer_len(), 0);
    let all = client.read_bytes(110, false).await.unwrap();
    assert!(all.starts_with(b"response 0\n") && all.ends_with(b"response 9\n"));
}

// Tornado: test_async_read_error_logging / a reset peer closes quietly with a cause.
async fn peer_reset_is_a_reset_cause() {
    let (stream, peer) = tcp_with_std_peer().await;
    // SO_LINGER 0 makes close() send a RST.
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
    let err = stream.read_bytes(1, false).await.unwrap_err();
    match err.close_cause() {
        Some(CloseCause::Reset(_)) | Some(CloseCause::Eof) => {}
        other => panic!("unexpected cause {other:?}"),
    }
    assert!(err.close_cause().unwrap().is_peer_gone());
}

// Tornado reads before it handles an error (`_handle_events`): what a peer wrote before
// it reset the connection reaches the reader, whether the read waited when the reset
// came or comes after it, and `read_until_close` returns it as well.
async fn data_before_a_reset_is_not_lost() {
    use std::future::poll_fn;
    use std::pin::pin;
    use std::task::Poll;

    for waiting in [true, false] {
        for until_close in [false, true] {
            let (stream, peer) = tcp_with_std_peer().await;
            let mut read = pin!(async {
                if until_close {
                    stream.read_until_close().await
                } else {
                    stream.read_bytes(5, false).await
                }
            });
            if waiting {
                // Polled once: the read waits, with its waker registered.
                let pending = poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx).is_pending())).await;
                assert!(pending);
            }
            (&peer).write_all(b"hello").unwrap();
            // SO_LINGER 0 makes close() send a RST behind the data.
            socket2::SockRef::from(&peer)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(peer);
            if !waiting {
                // Give the loop turns in which to meet the reset with nobody reading.
                for _ in 0..3 {
                    sleep(Duration::ZERO).await;
                }
            }
            let got = read.await;
            assert_eq!(
                got.as_deref().ok(),
                Some(&b"hello"[..]),
                "waiting {waiting}, until_close {until_close}: {got:?}"
            );
        }
    }
}

// Our own: a read dropped by a timeout loses no data.
async fn dropped_read_loses_nothing() {
    let (server, client) = tcp_pair().await;
    client.write(&b"partial"[..]).await.unwrap();
    let r = squall_ioloop::with_timeout(Duration::from_millis(20), server.read_until(b"\n", None))
        .await;
    assert!(r.is_err());
    client.write(&b" line\n"[..]).await.unwrap();
    assert_eq!(
        &server.read_until(b"\n", None).await.unwrap()[..],
        b"partial line\n"
    );
}

// Tornado's loop keeps a stream with a pending write alive (test_handle_stream_native_
// coroutine writes and returns): a write that was not awaited goes out in full when the
// last handle is dropped, and then the stream closes.
async fn dropping_the_last_handle_sends_what_is_queued() {
    let (server, client) = tcp_pair().await;
    const N: usize = 8 * 1024 * 1024;
    drop(server.write(vec![b'x'; N]));
    assert!(
        server.write_buffer_len() > 0,
        "more than the socket takes at once"
    );
    drop(server);
    let got = client.read_until_close().await.unwrap();
    assert_eq!(got.len(), N);
    // Nothing queued: dropping closes at once.
    let (server, client) = tcp_pair().await;
    drop(server.write(&b"small"[..]));
    drop(server);
    assert_eq!(&client.read_until_close().await.unwrap()[..], b"small");
}

// Not Tornado's (its streams have no poll-style read): `poll_read_buf` into a caller's
// buffer, read into directly when it has room and through the thread's buffer when it
// has little or bytes flow in bulk; either way every byte arrives once and in order.
async fn poll_read_buf_into_the_callers_room() {
    use bytes::BytesMut;
    use std::future::poll_fn;

    let (server, mut peer) = tcp_with_std_peer().await;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    // A small message into a buffer with room (direct), then one into a buffer with
    // too little room for a direct read (through the thread's buffer).
    peer.write_all(&data[..100]).unwrap();
    let mut dst = BytesMut::with_capacity(4096);
    let n = poll_fn(|cx| server.poll_read_buf(cx, &mut dst))
        .await
        .unwrap();
    assert_eq!(n, 100);
    assert_eq!(&dst[..], &data[..100]);
    peer.write_all(&data[100..300]).unwrap();
    let mut small = BytesMut::with_capacity(16);
    let n = poll_fn(|cx| server.poll_read_buf(cx, &mut small))
        .await
        .unwrap();
    assert_eq!(n, 200);
    assert_eq!(&small[..], &data[100..300]);
    // Bulk: reads fill the room and the stream switches to whole chunks; a consumer
    // that empties its buffer after each read gets everything, in order.
    let writer = std::thread::spawn({
        let rest = data[300..].to_vec();
        move || {
            peer.write_all(&rest).unwrap();
            peer
        }
    });
    let mut got = data[..300].to_vec();
    let mut buf = BytesMut::with_capacity(2048);
    while got.len() < data.len() {
        let n = poll_fn(|cx| server.poll_read_buf(cx, &mut buf))
            .await
            .unwrap();
        assert!(n > 0 && n == buf.len(), "{n} of {}", buf.len());
        got.extend_from_slice(&buf.split());
        buf.reserve(2048);
    }
    assert!(got == data, "every byte once, in order");
    // End of file after bytes that fill the room exactly: the bytes, then 0.
    let mut peer = writer.join().unwrap();
    peer.write_all(&data[..1024]).unwrap();
    drop(peer);
    let mut exact = BytesMut::with_capacity(1024);
    let mut total = 0;
    loop {
        let n = poll_fn(|cx| server.poll_read_buf(cx, &mut exact))
            .await
            .unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, 1024);
    assert_eq!(&exact[..], &data[..1024]);
}

squall_testing::backend_tests!(
    dropping_the_last_handle_sends_what_is_queued,
    read_until_across_many_small_writes,
    read_until_max_bytes,
    read_until_max_bytes_match_past_limit,
    read_until_eof_before_match_is_closed_not_unsatisfiable,
    read_until_exactly_max_bytes_then_eof,
    read_bytes_partial,
    read_bytes_large_blocks,
    read_zero_bytes,
    read_until_close_gets_everything,
    read_until_close_of_a_regular_file,
    large_write_to_slow_reader,
    close_callback_runs_once,
    close_callback_with_pending_read,
    cleared_close_callback_never_runs,
    read_from_closed_stream_errors_at_once,
    connection_refused_surfaces_the_real_error,
    write_while_connecting,
    write_zero_bytes,
    large_writes_interleaved_with_reads,
    read_into,
    second_concurrent_read_is_an_error,
    set_nodelay_is_for_tcp_only,
    take_buffered_waits_for_a_pending_read,
    pipe_streams,
    pipe_big_write,
    close_buffered_data,
    delayed_close_callback,
    small_reads_from_large_buffer,
    small_read_untils_from_large_buffer,
    read_until_close_past_max_buffer_size,
    read_until_close_at_exactly_max_buffer_size,
    max_write_buffer_size,
    idle_stream_holds_no_buffer,
    poll_write_buf_direct_and_queued,
    read_parse_pipelined_and_limits,
    write_buffered_then_flush,
    peer_reset_is_a_reset_cause,
    data_before_a_reset_is_not_lost,
    dropped_read_loses_nothing,
    poll_read_buf_into_the_callers_room,
);
