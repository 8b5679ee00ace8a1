//! `IoStream` under the ecosystem's I/O traits: futures-io's (a `BufReader` reading
//! lines, `write_all`/`close`) and tokio's (tokio-util's `LinesCodec` both ways), over
//! stream pairs on an `IoLoop`, with no tokio runtime anywhere.

use std::os::unix::net::UnixStream;
use std::time::Duration;

use squall_ioloop::IoLoop;
use squall_iostream::compat::COMPAT_WRITE_HIGH_WATER;
use squall_iostream::IoStream;
use squall_testing::tcp_with_std_peer;

const PATIENCE: Option<Duration> = Some(Duration::from_secs(20));

fn pair() -> (IoStream, IoStream) {
    let (a, b) = UnixStream::pair().unwrap();
    (IoStream::new(a).unwrap(), IoStream::new(b).unwrap())
}

mod futures_io_traits {
    use super::*;
    use futures_util::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use futures_util::StreamExt;

    #[test]
    fn lines_over_a_stream_pair() {
        let io_loop = IoLoop::new().unwrap();
        let lines = io_loop
            .run_sync(
                async {
                    let (mut a, b) = pair();
                    let writer = IoLoop::current().unwrap().spawn(async move {
                        for i in 0..100 {
                            a.write_all(format!("line {i}\n").as_bytes()).await?;
                        }
                        a.write_all(b"last, no newline").await?;
                        AsyncWriteExt::close(&mut a).await?;
                        Ok::<_, std::io::Error>(())
                    });
                    let lines: Vec<String> = BufReader::new(b)
                        .lines()
                        .map(|l| l.unwrap())
                        .collect()
                        .await;
                    writer.await.unwrap().unwrap();
                    lines
                },
                PATIENCE,
            )
            .unwrap();
        assert_eq!(lines.len(), 101);
        assert_eq!(lines[0], "line 0");
        assert_eq!(lines[99], "line 99");
        assert_eq!(lines[100], "last, no newline");
    }

    #[test]
    fn a_large_write_is_paced_by_backpressure_and_arrives_whole() {
        // Several times the high-water mark and more than a socket buffer holds: the
        // writer must wait for the reader, and every byte arrives in order.
        let size = 16 * COMPAT_WRITE_HIGH_WATER + 123;
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let io_loop = IoLoop::new().unwrap();
        let expect = data.clone();
        let got = io_loop
            .run_sync(
                async move {
                    let (mut a, mut b) = pair();
                    let writer = IoLoop::current().unwrap().spawn(async move {
                        a.write_all(&data).await?;
                        // Never more than the mark queued, however large the write.
                        assert!(a.write_buffer_len() <= COMPAT_WRITE_HIGH_WATER);
                        AsyncWriteExt::flush(&mut a).await?;
                        assert_eq!(a.write_buffer_len(), 0);
                        AsyncWriteExt::close(&mut a).await
                    });
                    let mut got = Vec::new();
                    b.read_to_end(&mut got).await.unwrap();
                    writer.await.unwrap().unwrap();
                    got
                },
                PATIENCE,
            )
            .unwrap();
        assert!(
            got == expect,
            "{} bytes arrived of {}",
            got.len(),
            expect.len()
        );
    }

    #[test]
    fn one_large_write_queues_no_more_than_the_mark() {
        // A peer that does not read: one write of many megabytes takes only what keeps
        // the queue within the mark, instead of queueing a copy of all of it.
        let io_loop = IoLoop::new().unwrap();
        io_loop
            .run_sync(
                async {
                    let (mut a, _b) = pair();
                    let big = vec![5u8; 32 << 20];
                    let n = AsyncWriteExt::write(&mut a, &big).await.unwrap();
                    assert!((1..=COMPAT_WRITE_HIGH_WATER).contains(&n), "{n}");
                    assert!(a.write_buffer_len() <= COMPAT_WRITE_HIGH_WATER);
                    let m = tokio::io::AsyncWriteExt::write(&mut a, &big).await.unwrap();
                    assert!(m <= COMPAT_WRITE_HIGH_WATER, "{m}");
                    assert!(a.write_buffer_len() <= COMPAT_WRITE_HIGH_WATER);
                },
                PATIENCE,
            )
            .unwrap();
    }

    #[test]
    fn errors_are_io_errors_with_the_cause() {
        let io_loop = IoLoop::new().unwrap();
        io_loop
            .run_sync(
                async {
                    let (mut a, b) = pair();
                    // A read while one of the stream's own reads is pending.
                    let pending = b.read_until(b"\n", None);
                    let mut pending = Box::pin(pending);
                    std::future::poll_fn(|cx| {
                        assert!(std::future::Future::poll(pending.as_mut(), cx).is_pending());
                        std::task::Poll::Ready(())
                    })
                    .await;
                    let mut b2 = b.clone();
                    let mut buf = [0u8; 4];
                    let err = b2.read(&mut buf).await.unwrap_err();
                    assert!(err.to_string().contains("already reading"), "{err}");
                    drop(pending);
                    // End-of-file is Ok(0); a write after close (a half-close, as
                    // tokio's and async-std's) fails as a write after shutdown(2) does,
                    // and one to a stream closed here says it is not connected.
                    AsyncWriteExt::close(&mut a).await.unwrap();
                    assert_eq!(b2.read(&mut buf).await.unwrap(), 0);
                    let err = AsyncWriteExt::write(&mut a, b"x").await.unwrap_err();
                    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
                    a.close();
                    let err = AsyncWriteExt::write(&mut a, b"x").await.unwrap_err();
                    assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
                    AsyncWriteExt::close(&mut a).await.unwrap();
                },
                PATIENCE,
            )
            .unwrap();
    }

    // A write the OS refuses (the peer is gone: EPIPE) is an error, not bytes accepted,
    // and the flush and close that follow fail too: the close threw bytes away. A
    // tokio or std TcpStream fails the same write_all at once.
    #[test]
    fn a_write_to_a_gone_peer_fails_and_so_do_flush_and_close() {
        let io_loop = IoLoop::new().unwrap();
        io_loop
            .run_sync(
                async {
                    let (a, b) = UnixStream::pair().unwrap();
                    let mut a = IoStream::new(a).unwrap();
                    drop(b);
                    let err = a.write_all(b"important message").await.unwrap_err();
                    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
                    assert!(a.closed());
                    // Bytes queued when the stream closed for an error are lost: the
                    // flush and the close say so.
                    let (mut c, d) = tcp_with_std_peer().await;
                    let chunk = vec![7u8; COMPAT_WRITE_HIGH_WATER];
                    // The kernel's buffers fill (the peer does not read), then the
                    // stream's queue holds what they cannot take.
                    while c.write_buffer_len() == 0 {
                        let n = std::future::poll_fn(|cx| {
                            std::task::Poll::Ready(futures_util::io::AsyncWrite::poll_write(
                                std::pin::Pin::new(&mut c),
                                cx,
                                &chunk,
                            ))
                        })
                        .await;
                        assert!(!matches!(n, std::task::Poll::Ready(Err(_))), "{n:?}");
                        if n.is_pending() {
                            break;
                        }
                    }
                    assert!(c.write_buffer_len() > 0);
                    socket2::SockRef::from(&d)
                        .set_linger(Some(Duration::ZERO))
                        .unwrap();
                    drop(d);
                    // The read meets the reset (a close that drops the queue).
                    let mut buf = [0u8; 8];
                    assert!(c.read(&mut buf).await.is_err());
                    assert!(AsyncWriteExt::flush(&mut c).await.is_err());
                    assert!(AsyncWriteExt::close(&mut c).await.is_err());
                },
                PATIENCE,
            )
            .unwrap();
    }

    // A stream that closed at the peer's end of file with nothing queued has nothing
    // left to flush: flush and close are done (a tokio TcpStream's flush is a no-op),
    // so copy loops and codecs that flush after reading the end finish cleanly; a
    // write still fails.
    #[test]
    fn a_stream_closed_at_end_of_file_flushes_and_closes() {
        let io_loop = IoLoop::new().unwrap();
        io_loop
            .run_sync(
                async {
                    let (mut a, b) = pair();
                    b.write(&b"all of it"[..]).await.unwrap();
                    b.close();
                    let mut got = Vec::new();
                    a.read_to_end(&mut got).await.unwrap();
                    assert_eq!(got, b"all of it");
                    AsyncWriteExt::flush(&mut a).await.unwrap();
                    AsyncWriteExt::close(&mut a).await.unwrap();
                    assert!(AsyncWriteExt::write(&mut a, b"x").await.is_err());
                },
                PATIENCE,
            )
            .unwrap();
    }

    #[test]
    fn a_write_limit_is_kept() {
        let io_loop = IoLoop::new().unwrap();
        io_loop
            .run_sync(
                async {
                    let (mut a, mut b) = pair();
                    a.set_max_write_buffer_size(Some(1000));
                    // One write offers more than the limit: only what fits is taken.
                    let big = vec![7u8; 5000];
                    let reader = IoLoop::current().unwrap().spawn(async move {
                        let mut got = Vec::new();
                        b.read_to_end(&mut got).await.unwrap();
                        got
                    });
                    let n = AsyncWriteExt::write(&mut a, &big).await.unwrap();
                    assert!((1..=1000).contains(&n), "{n}");
                    a.write_all(&big[n..]).await.unwrap();
                    AsyncWriteExt::close(&mut a).await.unwrap();
                    assert_eq!(reader.await.unwrap(), big);
                    // A zero limit can never be passed: an error, not a hang.
                    let (mut c, _d) = pair();
                    c.set_max_write_buffer_size(Some(0));
                    let err = AsyncWriteExt::write(&mut c, b"x").await.unwrap_err();
                    assert!(err.to_string().contains("write buffer"), "{err}");
                },
                PATIENCE,
            )
            .unwrap();
    }
}

mod tokio_traits {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec};

    #[test]
    fn tokio_util_lines_codec_both_ways() {
        let io_loop = IoLoop::new().unwrap();
        let lines = io_loop
            .run_sync(
                async {
                    let (a, b) = pair();
                    let writer = IoLoop::current().unwrap().spawn(async move {
                        let mut sink = FramedWrite::new(a, LinesCodec::new());
                        for i in 0..50 {
                            sink.send(format!("frame {i}")).await.unwrap();
                        }
                        SinkExt::<String>::close(&mut sink).await.unwrap();
                    });
                    let lines: Vec<String> =
                        FramedRead::new(b, LinesCodec::new_with_max_length(64))
                            .map(|l| l.unwrap())
                            .collect()
                            .await;
                    writer.await.unwrap();
                    lines
                },
                PATIENCE,
            )
            .unwrap();
        assert_eq!(lines.len(), 50);
        assert_eq!(lines[49], "frame 49");
    }

    #[test]
    fn tokio_read_exact_and_shutdown() {
        let io_loop = IoLoop::new().unwrap();
        io_loop
            .run_sync(
                async {
                    let (mut a, mut b) = pair();
                    a.write_all(b"hello, tokio").await.unwrap();
                    a.shutdown().await.unwrap();
                    // A half-close, as tokio's TcpStream::poll_shutdown: shutting down
                    // again is harmless, and the answer can still be read.
                    assert!(a.write_shut_down() && !a.closed());
                    a.shutdown().await.unwrap();
                    let mut head = [0u8; 5];
                    b.read_exact(&mut head).await.unwrap();
                    assert_eq!(&head, b"hello");
                    // (Before its own end-of-file: a stream that reads end-of-file
                    // closes, as Tornado's does.)
                    b.write_all(b"answer").await.unwrap();
                    b.shutdown().await.unwrap();
                    let mut rest = String::new();
                    b.read_to_string(&mut rest).await.unwrap();
                    assert_eq!(rest, ", tokio");
                    let mut answer = String::new();
                    a.read_to_string(&mut answer).await.unwrap();
                    assert_eq!(answer, "answer");
                },
                PATIENCE,
            )
            .unwrap();
    }
}
