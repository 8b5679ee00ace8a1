//! TLS streams over real sockets on the loop: the IoStream API through the TLS layer,
//! Tornado's SSL contracts (the handshake run by the loop, `wait_for_handshake`, `start_tls` on an
//! idle stream only, hostname checks), and peers that do not speak TLS.

mod common;

use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use common::{send_all, Pki};
use squall_ioloop::IoLoop;
use squall_iostream::{CloseCause, IoStream, StreamError};
use squall_tcpserver::{TcpClient, TcpServer};
use squall_tls::{TlsAcceptor, TlsConnector, TlsError, TlsStreamExt};

type BoxError = Box<dyn std::error::Error>;

fn run<F: Future<Output = Result<(), BoxError>> + 'static>(f: F) {
    IoLoop::new()
        .unwrap()
        .run_sync(f, Some(Duration::from_secs(30)))
        .expect("the test timed out")
        .unwrap();
}

/// A listener and a loop-side server stream plus a client stream, both plain.
async fn plain_pair() -> Result<(IoStream, IoStream), BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = IoStream::connect(listener.local_addr()?).await?;
    let (conn, _) = listener.accept()?;
    Ok((IoStream::new(conn)?, client))
}

/// A server stream and a client stream over TLS (`localhost`), the handshake done.
async fn tls_pair(pki: &Pki) -> Result<(IoStream, IoStream), BoxError> {
    let (server, client) = plain_pair().await?;
    server.start_tls_server(&pki.server_config())?;
    client.start_tls_client(&pki.client_config(), "localhost")?;
    let (a, b) = futures_join(server.wait_for_handshake(), client.wait_for_handshake()).await;
    a?;
    b?;
    Ok((server, client))
}

/// A TLS echo server: every line comes back.
fn echo_server(pki: &Pki) -> Result<(TcpServer, SocketAddr), BoxError> {
    let server = TcpServer::new(|stream: IoStream, _| async move {
        loop {
            let data = stream.read_bytes(64 * 1024, true).await?;
            stream.write(data).await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), StreamError>(())
    })?;
    server.set_stream_setup(Arc::new(TlsAcceptor::new(pki.server_config())));
    let addr = server.listen(0, "127.0.0.1")?[0];
    Ok((server, addr))
}

fn tls_error(e: &StreamError) -> &TlsError {
    TlsError::from_stream_error(e).unwrap_or_else(|| panic!("not a TLS error: {e:?}"))
}

#[test]
fn echo_through_tls_with_the_iostream_api() {
    let pki = Pki::localhost();
    run(async move {
        let (server, addr) = echo_server(&pki)?;
        let conn = TlsConnector::new(pki.client_config());
        let client = conn
            .connect(&TcpClient::new(), "localhost", addr.port(), None, None)
            .await?;
        let info = client.tls_info().unwrap();
        assert!(info.handshake_done);
        assert_eq!(info.alpn_protocol.as_deref(), Some(&b"http/1.1"[..]));

        client.write(&b"hello\r\nworld\r\n"[..]).await?;
        assert_eq!(
            &client.read_until(b"\r\n", Some(100)).await?[..],
            b"hello\r\n"
        );
        assert_eq!(&client.read_bytes(7, false).await?[..], b"world\r\n");

        // A large payload both ways: many records, partial writes, the layer's
        // outbox and rustls's plaintext limit all come into play.
        let big: Vec<u8> = (0..3 << 20).map(|i| (i % 253) as u8).collect();
        let w = client.write(big.clone());
        let back = client.read_bytes(big.len(), false).await?;
        w.await?;
        assert!(back == big, "the echo differs");

        // read_until's max_bytes still applies through TLS (Tornado's
        // test_read_until_max_bytes): the stream closes with Unsatisfiable.
        client.write(&b"no delimiter here"[..]).await?;
        let err = client.read_until(b"\n", Some(8)).await.unwrap_err();
        assert!(
            matches!(err, StreamError::Unsatisfiable { max_bytes: 8 }),
            "{err}"
        );
        assert!(matches!(client.error(), Some(CloseCause::Unsatisfiable)));
        server.stop();
        Ok(())
    });
}

#[test]
fn handshake_is_deferred_to_the_first_write_and_writes_wait_for_it() {
    // Tornado's test_handshake_fail/test_wait_for_handshake*: start_tls does not wait
    // for the handshake; a write queued during the handshake is sent after it, and its
    // future resolves only then.
    let pki = Pki::localhost();
    run(async move {
        let (server, client) = plain_pair().await?;
        server.start_tls_server(&pki.server_config())?;
        client.start_tls_client(&pki.client_config(), "localhost")?;
        assert!(!client.tls_info().unwrap().handshake_done);
        let srv = async {
            let line = server.read_until(b"\n", None).await?;
            server.write(line).await?;
            Ok::<_, StreamError>(())
        };
        let cli = async {
            client.write(&b"ping\n"[..]).await?;
            assert!(client.tls_info().unwrap().handshake_done);
            client.read_until(b"\n", None).await
        };
        let (s, c) = futures_join(srv, cli).await;
        s?;
        assert_eq!(&c?[..], b"ping\n");
        Ok(())
    });
}

#[test]
fn the_handshake_starts_with_start_tls_and_runs_with_nobody_using_the_stream() {
    // Tornado's SSLIOStream starts its handshake on the next loop iteration, whatever
    // its user does: TestIOStreamSSL runs the read/write mixin (test_read_bytes_partial:
    // the client's write is awaited before the server reads) over streams whose
    // handshake nobody drove. Here the server stream is left alone after
    // start_tls_server, and the client's write still completes; then the client is
    // left alone after start_tls_client, and the server's wait still completes.
    let pki = Pki::localhost();
    run(async move {
        let (server, client) = plain_pair().await?;
        server.start_tls_server(&pki.server_config())?;
        client.start_tls_client(&pki.client_config(), "localhost")?;
        client.write(&b"hello"[..]).await?;
        assert!(client.tls_info().unwrap().handshake_done);
        assert_eq!(&server.read_bytes(50, true).await?[..], b"hello");

        let (server, client) = plain_pair().await?;
        server.start_tls_server(&pki.server_config())?;
        client.start_tls_client(&pki.client_config(), "localhost")?;
        // The client is left alone: its first flight goes out all the same.
        server.wait_for_handshake().await?;
        assert!(client.tls_info().unwrap().handshake_done);
        server.write(&b"ready"[..]).await?;
        assert_eq!(&client.read_bytes(5, false).await?[..], b"ready");
        Ok(())
    });
}

#[test]
fn an_empty_write_or_a_flush_moves_the_handshake_on() {
    // Tornado's test_write_zero_bytes over TLS (TestIOStreamSSL), with the handshake
    // still to run: a write is one of the things that move a deferred handshake on
    // (SSLIOStream's _handle_write runs the handshake first). An empty write, or a
    // flush with nothing queued, sent nothing and armed nothing: with the peer only
    // waiting, the handshake never started, and the client's future (waiting for its
    // ClientHello to leave) never resolved.
    let pki = Pki::localhost();
    run(async move {
        // The client's empty write, then its flush, with the server only waiting.
        for flush in [false, true] {
            let (server, client) = plain_pair().await?;
            server.start_tls_server(&pki.server_config())?;
            client.start_tls_client(&pki.client_config(), "localhost")?;
            let written = async {
                if flush {
                    client.flush().await
                } else {
                    client.write(&b""[..]).await
                }
            };
            let (w, s) = futures_join(written, server.wait_for_handshake()).await;
            w?;
            s?;
            client.wait_for_handshake().await?;
        }
        // The server's empty write, with the client only waiting.
        let (server, client) = plain_pair().await?;
        server.start_tls_server(&pki.server_config())?;
        client.start_tls_client(&pki.client_config(), "localhost")?;
        let (w, c) = futures_join(server.write(&b""[..]), client.wait_for_handshake()).await;
        w?;
        c?;
        server.wait_for_handshake().await?;
        Ok(())
    });
}

#[test]
fn wait_for_handshake_twice_is_an_error() {
    // Tornado's test_wait_for_handshake_already_waiting_error.
    let pki = Pki::localhost();
    run(async move {
        let (server, client) = plain_pair().await?;
        server.start_tls_server(&pki.server_config())?;
        client.start_tls_client(&pki.client_config(), "localhost")?;
        let first = server.wait_for_handshake();
        // Tornado's RuntimeError: an error of its own, the stream still open.
        let err = server.wait_for_handshake().await.unwrap_err();
        assert!(matches!(err, StreamError::AlreadyWaiting), "{err:?}");
        assert!(!server.closed());
        let (a, b) = futures_join(first, client.wait_for_handshake()).await;
        a?;
        b?;
        // Once done, waiting again resolves at once, for any number of callers.
        server.wait_for_handshake().await?;
        let (x, y) = (client.wait_for_handshake(), client.wait_for_handshake());
        let (x, y) = futures_join(x, y).await;
        x?;
        y?;
        let info = server.tls_info().unwrap();
        assert_eq!(info.server_name.as_deref(), Some("localhost"));
        // Still done once the peer has gone and the stream closed (Tornado's future
        // resolves too: the handshake did succeed).
        client.close();
        assert!(server.read_until_close().await?.is_empty());
        assert!(server.closed());
        server.wait_for_handshake().await?;
        Ok(())
    });
}

#[test]
fn a_handshake_waited_for_while_a_read_ran_it_and_met_the_end_succeeded() {
    // Tornado's test_wait_for_handshake_future: the future resolves when the handshake
    // completes, whatever becomes of the stream after. Here a read moves the handshake
    // on, takes the data behind it and meets the peer's end, closing the stream, all
    // before the waiter made during the handshake is polled: it succeeded all the same
    // (it came back closed, with end of file, as if the handshake had failed).
    let pki = Pki::localhost();
    run(async move {
        let (server, client) = plain_pair().await?;
        server.start_tls_server(&pki.server_config())?;
        client.start_tls_client(&pki.client_config(), "localhost")?;
        let waiter = server.wait_for_handshake();
        let cli = async {
            client.write(&b"hi"[..]).await?;
            client.close();
            Ok::<_, StreamError>(())
        };
        let (got, sent) = futures_join(server.read_until_close(), cli).await;
        sent?;
        assert_eq!(&got?[..], b"hi");
        assert!(server.closed() && server.tls_info().unwrap().handshake_done);
        waiter.await?;
        // A handshake that failed still fails once the stream is closed.
        let (server, client) = plain_pair().await?;
        server.start_tls_server(&pki.server_config())?;
        let waiter = server.wait_for_handshake();
        client.write(&b"GET / HTTP/1.0\r\n\r\n"[..]).await?;
        let err = server.read_bytes(1, false).await.unwrap_err();
        assert!(
            matches!(tls_error(&err), TlsError::NotTls { .. }),
            "{err:?}"
        );
        let err = waiter.await.unwrap_err();
        assert!(
            matches!(tls_error(&err), TlsError::NotTls { .. }),
            "{err:?}"
        );
        Ok(())
    });
}

#[test]
fn start_tls_needs_an_idle_stream() {
    // Tornado's test_start_tls_smtp prerequisites: ValueError("IOStream is not idle").
    let pki = Pki::localhost();
    run(async move {
        let (server, client) = plain_pair().await?;
        client.write(&b"line\nunread"[..]).await?;
        assert_eq!(&server.read_until(b"\n", None).await?[..], b"line\n");
        assert_eq!(server.buffered_len(), 6);
        // Bytes buffered unread.
        let err = server.start_tls_server(&pki.server_config()).unwrap_err();
        assert!(matches!(err, TlsError::StreamNotIdle), "{err}");
        // A pending read.
        let (a, _b) = plain_pair().await?;
        {
            let read = a.read_bytes(1, false);
            let mut read = std::pin::pin!(read);
            std::future::poll_fn(|cx| {
                assert!(read.as_mut().poll(cx).is_pending());
                std::task::Poll::Ready(())
            })
            .await;
            assert!(a.reading());
            assert!(matches!(
                a.start_tls_server(&pki.server_config()),
                Err(TlsError::StreamNotIdle)
            ));
        }
        // The read is gone: the stream is idle again.
        a.start_tls_server(&pki.server_config())?;
        // Twice.
        let (c, _d) = plain_pair().await?;
        c.start_tls_server(&pki.server_config())?;
        assert!(matches!(
            c.start_tls_server(&pki.server_config()),
            Err(TlsError::AlreadyTls)
        ));
        Ok(())
    });
}

#[test]
fn starttls_upgrades_a_plain_stream() {
    // Tornado's test_start_tls_smtp: a plain exchange, then TLS on the same streams.
    let pki = Pki::localhost();
    run(async move {
        let (server, client) = plain_pair().await?;
        let srv = async {
            assert_eq!(
                &server.read_until(b"\r\n", None).await?[..],
                b"STARTTLS\r\n"
            );
            server.write(&b"220 go ahead\r\n"[..]).await?;
            server.start_tls_server(&pki.server_config())?;
            let line = server.read_until(b"\r\n", None).await?;
            server.write(line).await?;
            Ok::<_, BoxError>(())
        };
        let cli = async {
            client.write(&b"STARTTLS\r\n"[..]).await?;
            assert_eq!(
                &client.read_until(b"\r\n", None).await?[..],
                b"220 go ahead\r\n"
            );
            client.start_tls_client(&pki.client_config(), "localhost")?;
            client.write(&b"EHLO secret\r\n"[..]).await?;
            let back = client.read_until(b"\r\n", None).await?;
            Ok::<_, BoxError>(back)
        };
        let (s, c) = futures_join(srv, cli).await;
        s?;
        assert_eq!(&c?[..], b"EHLO secret\r\n");
        assert!(client.is_tls() && server.is_tls());
        Ok(())
    });
}

/// The warnings the TLS crate logged that name `peer` (a client's address).
fn warnings_about(peer: SocketAddr) -> Vec<String> {
    squall_testing::records()
        .into_iter()
        .filter(|r| r.level == log::Level::Warn && r.target.starts_with("squall_tls"))
        .map(|r| r.message)
        .filter(|m| m.contains(&peer.to_string()))
        .collect()
}

/// Tornado's test_non_ssl_request and test_error_logging: a plain HTTP request to the
/// TLS port fails at once, with a typed cause, and the server logs it as a warning
/// naming the client (Tornado's "SSL Error on fd peer").
#[test]
fn plain_http_to_the_tls_port_closes_with_a_typed_cause() {
    squall_testing::install_logger();
    let pki = Pki::localhost();
    run(async move {
        let (server, client) = plain_pair().await?;
        let peer = client.local_addr()?;
        client
            .write(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..])
            .await?;
        let acceptor = TlsAcceptor::new(pki.server_config());
        let err = acceptor.accept(server.clone()).await.unwrap_err();
        assert!(matches!(
            tls_error(&err),
            TlsError::NotTls { first_byte: b'G' }
        ));
        assert!(server.closed());
        let cause = server.error().unwrap();
        assert!(matches!(
            TlsError::from_close_cause(&cause),
            Some(TlsError::NotTls { .. })
        ));
        // The client sees the connection end.
        let rest = client.read_until_close().await?;
        assert!(rest.is_empty());
        let logged = warnings_about(peer);
        assert!(
            logged.len() == 1 && logged[0].contains("does not speak TLS"),
            "{logged:?}"
        );
        Ok(())
    });
}

/// The client's side of the same mistake (an `https://` URL to a plain HTTP server):
/// the error says the server answered in plain text, not that it sent a request.
#[test]
fn a_plain_http_server_to_a_tls_client_closes_with_a_typed_cause() {
    let pki = Pki::localhost();
    run(async move {
        let (server, client) = plain_pair().await?;
        client.start_tls_client(&pki.client_config(), "localhost")?;
        let plain = async {
            // The hello reaches the plain server, which answers as HTTP servers do.
            let got = server.read_bytes(1, false).await?;
            server
                .write(&b"HTTP/1.1 400 Bad Request\r\n\r\n"[..])
                .await?;
            Ok::<_, StreamError>(got)
        };
        let (got, shook) = futures_join(plain, client.wait_for_handshake()).await;
        assert_eq!(got?[0], 0x16);
        let err = shook.unwrap_err();
        let e = tls_error(&err);
        assert!(matches!(e, TlsError::NotTls { first_byte: b'H' }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("plain text") && !text.contains("request"),
            "{text}"
        );
        Ok(())
    });
}

#[test]
fn noise_closes_cleanly() {
    let pki = Pki::localhost();
    run(async move {
        for noise in [
            &[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5][..],
            &[0x16, 0x03][..],
            &[0xff; 300][..],
        ] {
            let (server, client) = plain_pair().await?;
            client.write(noise.to_vec()).await?;
            client.close();
            let acceptor = TlsAcceptor::new(pki.server_config());
            let err = acceptor.accept(server).await.unwrap_err();
            let e = tls_error(&err);
            assert!(e.is_peer_error(), "{e:?}");
        }
        Ok(())
    });
}

/// A handshake cut by its timeout closes the stream with that cause, and the error goes
/// back to the caller, so nothing is logged as a warning (a stalled client is a port
/// scan or a health check, which Tornado closes quietly).
#[test]
fn handshake_timeout() {
    squall_testing::install_logger();
    let pki = Pki::localhost();
    run(async move {
        let (server, _client) = plain_pair().await?;
        let config = pki
            .server_config()
            .with_handshake_timeout(Duration::from_millis(200));
        let err = TlsAcceptor::new(config)
            .accept(server.clone())
            .await
            .unwrap_err();
        assert!(matches!(tls_error(&err), TlsError::HandshakeTimeout));
        let cause = server.error().unwrap();
        assert!(matches!(
            TlsError::from_close_cause(&cause),
            Some(TlsError::HandshakeTimeout)
        ));
        let warned: Vec<String> = squall_testing::logs_here(log::Level::Warn);
        assert!(warned.is_empty(), "{warned:?}");
        Ok(())
    });
}

/// The handshake timeout is one deadline, which a peer cannot push back by sending
/// something now and then: a client trickling its hello a byte at a time is cut when
/// it ends, as a silent one is.
#[test]
fn a_trickled_hello_is_cut_at_the_handshake_deadline() {
    let pki = Pki::localhost();
    // A real hello, from a session in memory.
    let mut hello = Vec::new();
    let mut c = squall_tls::TlsSession::client(&pki.client_config(), "localhost").unwrap();
    send_all(&mut c, &mut hello);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A byte every 20 ms: the hello would take seconds; the trickler stops when the
    // server has closed the connection.
    let trickler = std::thread::spawn(move || {
        let mut sock = TcpStream::connect(addr).unwrap();
        for b in &hello {
            if std::io::Write::write_all(&mut sock, &[*b]).is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    });
    let config = pki
        .server_config()
        .with_handshake_timeout(Duration::from_millis(300));
    run(async move {
        let (conn, _) = listener.accept()?;
        let err = TlsAcceptor::new(config)
            .accept(IoStream::new(conn)?)
            .await
            .unwrap_err();
        assert!(
            matches!(tls_error(&err), TlsError::HandshakeTimeout),
            "{err:?}"
        );
        Ok(())
    });
    assert!(trickler.join().unwrap(), "the whole hello went through");
}

/// Tornado's `TCPClient.connect(timeout=...)` is one deadline for the connect and the
/// TLS handshake: a server that accepts and never answers the hello is cut at the
/// caller's timeout, not at the configuration's 10 s handshake timeout.
#[test]
fn the_connect_timeout_bounds_the_handshake_too() {
    let pki = Pki::localhost();
    run(async move {
        // The kernel completes the TCP connection; nothing ever answers the hello.
        let silent = TcpListener::bind("127.0.0.1:0")?;
        let port = silent.local_addr()?.port();
        let conn = TlsConnector::new(pki.client_config());
        assert_eq!(conn.config().handshake_timeout(), Duration::from_secs(10));
        let started = std::time::Instant::now();
        let err = conn
            .connect(
                &TcpClient::new(),
                "127.0.0.1",
                port,
                Some("localhost"),
                Some(Duration::from_millis(300)),
            )
            .await
            .unwrap_err();
        let e = TlsError::from_io_error(&err).unwrap_or_else(|| panic!("{err:?}"));
        assert!(matches!(e, TlsError::HandshakeTimeout), "{e:?}");
        // Far below the configuration's 10 s, whatever the machine's load.
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{:?}",
            started.elapsed()
        );
        // A timeout no clock can reach is no deadline, not an overflow.
        let (server, addr) = echo_server(&pki)?;
        conn.connect(
            &TcpClient::new(),
            "localhost",
            addr.port(),
            None,
            Some(Duration::MAX),
        )
        .await?;
        server.stop();
        drop(silent);
        Ok(())
    });
}

#[test]
fn hostname_is_checked_on_the_client_side() {
    // Tornado's test_check_hostname.
    let pki = Pki::new(&["example.test"]);
    run(async move {
        let (server, addr) = echo_server(&pki)?;
        let conn = TlsConnector::new(pki.client_config());
        let err = conn
            .connect(
                &TcpClient::new(),
                "127.0.0.1",
                addr.port(),
                Some("localhost"),
                None,
            )
            .await
            .unwrap_err();
        let e = TlsError::from_io_error(&err).unwrap_or_else(|| panic!("{err:?}"));
        assert!(
            matches!(e, TlsError::Protocol(rustls::Error::InvalidCertificate(_))),
            "{e:?}"
        );
        // The right name passes.
        let ok = conn
            .connect(
                &TcpClient::new(),
                "127.0.0.1",
                addr.port(),
                Some("example.test"),
                None,
            )
            .await?;
        ok.write(&b"x"[..]).await?;
        assert_eq!(&ok.read_bytes(1, false).await?[..], b"x");
        server.stop();
        Ok(())
    });
}

#[test]
fn close_sends_close_notify_and_the_peer_sees_end_of_file() {
    let pki = Pki::localhost();
    run(async move {
        let (server, client) = tls_pair(&pki).await?;
        server.write(&b"last words"[..]).await?;
        server.close();
        let all = client.read_until_close().await?;
        assert_eq!(&all[..], b"last words");
        assert!(matches!(client.error(), Some(CloseCause::Eof)));
        Ok(())
    });
}

/// Tornado's test_read_until_close_after_close, over TLS: bytes received before the
/// peer went away are read, even when it went away with a reset. A TLS 1.3 client that
/// never read the server's session tickets (as here: it only writes) closes with bytes
/// unread, which resets the connection; the plaintext the server had decrypted and
/// held in the layer behind a short read came back as nothing.
#[test]
fn read_until_close_after_the_peer_closed_with_a_reset() {
    let pki = Pki::localhost();
    run(async move {
        let (rs, ws) = tls_pair(&pki).await?;
        ws.write(&b"1234"[..]).await?;
        assert_eq!(&rs.read_bytes(1, false).await?[..], b"1");
        ws.close();
        assert_eq!(&rs.read_until_close().await?[..], b"234");
        Ok(())
    });
}

/// A client that closes during the handshake (a port scan, a health check) is closed
/// quietly: no warning, as Tornado's SSL_ERROR_EOF.
#[test]
fn peer_closing_during_the_handshake() {
    squall_testing::install_logger();
    let pki = Pki::localhost();
    run(async move {
        let (server, client) = plain_pair().await?;
        let peer = client.local_addr()?;
        drop(client);
        let err = TlsAcceptor::new(pki.server_config())
            .accept(server)
            .await
            .unwrap_err();
        assert!(matches!(tls_error(&err), TlsError::HandshakeEof), "{err:?}");
        assert_eq!(warnings_about(peer), Vec::<String>::new());
        // One that says hello, then gives up with close_notify (a squall client closed
        // mid-handshake does): the same.
        let (server, client) = plain_pair().await?;
        let peer = client.local_addr()?;
        client.start_tls_client(&pki.client_config(), "localhost")?;
        let hello = client.wait_for_handshake();
        let mut hello = std::pin::pin!(hello);
        std::future::poll_fn(|cx| {
            assert!(hello.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        client.close();
        let err = TlsAcceptor::new(pki.server_config())
            .accept(server)
            .await
            .unwrap_err();
        assert!(matches!(tls_error(&err), TlsError::HandshakeEof), "{err:?}");
        assert_eq!(warnings_about(peer), Vec::<String>::new());
        Ok(())
    });
}

#[test]
fn blocking_std_client_against_the_loop_server() {
    // A client on another thread with rustls's own blocking stream: an independent
    // implementation of the record handling.
    let pki = Pki::localhost();
    let client_config = pki.client_config();
    run(async move {
        let (server, addr) = echo_server(&pki)?;
        let got = on_thread(move || -> std::io::Result<Vec<u8>> {
            use std::io::{Read, Write};
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut conn =
                rustls::ClientConnection::new(client_config.rustls().clone(), name).unwrap();
            let mut sock = TcpStream::connect(addr)?;
            let mut tls = rustls::Stream::new(&mut conn, &mut sock);
            tls.write_all(b"over rustls::Stream")?;
            let mut buf = vec![0u8; 19];
            tls.read_exact(&mut buf)?;
            Ok(buf)
        })
        .await?;
        assert_eq!(&got[..], b"over rustls::Stream");
        server.stop();
        Ok(())
    });
}

#[test]
fn futures_io_traits_through_tls() {
    // A TLS stream is an IoStream: futures-io's AsyncRead/AsyncWrite go through the
    // TLS layer like every other read and write.
    use futures_util::{AsyncReadExt, AsyncWriteExt};
    let pki = Pki::localhost();
    run(async move {
        let (server, addr) = echo_server(&pki)?;
        let mut client = TlsConnector::new(pki.client_config())
            .connect(&TcpClient::new(), "localhost", addr.port(), None, None)
            .await?;
        let msg: Vec<u8> = (0..200_000).map(|i| (i % 241) as u8).collect();
        client.write_all(&msg).await?;
        client.flush().await?;
        let mut back = vec![0u8; msg.len()];
        client.read_exact(&mut back).await?;
        assert!(back == msg, "the echo differs");
        AsyncWriteExt::close(&mut client).await?;
        server.stop();
        Ok(())
    });
}

/// Runs `f` on another thread; the future resolves with its result, woken by the
/// thread itself (no polling).
async fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    use std::sync::{Arc, Mutex};
    use std::task::{Poll, Waker};
    let slot: Arc<Mutex<(Option<T>, Option<Waker>)>> = Arc::new(Mutex::new((None, None)));
    let theirs = slot.clone();
    std::thread::spawn(move || {
        let out = f();
        let mut s = theirs.lock().unwrap();
        s.0 = Some(out);
        if let Some(w) = s.1.take() {
            w.wake();
        }
    });
    std::future::poll_fn(|cx| {
        let mut s = slot.lock().unwrap();
        match s.0.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await
}

/// Polls two futures together until both are done.
async fn futures_join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let std::task::Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let std::task::Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    (ra.take().unwrap(), rb.take().unwrap())
}

/// A blocking rustls session's handshake over `sock` (the peer of the tests below).
fn blocking_handshake(s: &mut squall_tls::TlsSession, sock: &mut TcpStream) {
    handshake_holding_the_last_flight(s, sock);
    send_all(s, sock);
}

/// [`blocking_handshake`] but for its last flight (a client's Finished), which stays
/// queued in the session, to go with what is written next.
fn handshake_holding_the_last_flight(s: &mut squall_tls::TlsSession, sock: &mut TcpStream) {
    use std::io::Read;
    let mut buf = vec![0u8; 65536];
    while s.is_handshaking() {
        send_all(s, sock);
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "end of file in the handshake");
        s.feed(&buf[..n]).unwrap();
    }
}

/// Reads plaintext until the transport's end of file or the peer's close_notify (at
/// most `limit` per read); the plaintext, and whether close_notify came.
fn blocking_read_to_end(
    s: &mut squall_tls::TlsSession,
    sock: &mut TcpStream,
    limit: Duration,
) -> (Vec<u8>, bool) {
    use std::io::Read;
    sock.set_read_timeout(Some(limit)).unwrap();
    let (mut buf, mut plain, mut out) = (vec![0u8; 65536], vec![0u8; 65536], Vec::new());
    loop {
        loop {
            let n = s.read_plaintext(&mut plain).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&plain[..n]);
        }
        if s.peer_closed() {
            return (out, true);
        }
        match sock.read(&mut buf) {
            Ok(n) if n > 0 && s.feed(&buf[..n]).is_ok() => {}
            _ => return (out, s.peer_closed()),
        }
    }
}

/// RFC 8446 §6.1: close_notify ends the data. A peer that sends its last data and its
/// close_notify in one segment and then waits, connection open, for ours (OpenSSL's
/// two-way shutdown, Python's `unwrap()`) must see the read end at once, and its
/// close_notify answered.
#[test]
fn close_notify_with_the_last_data_ends_the_read_and_is_answered() {
    let pki = Pki::localhost();
    run(async move {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let server_config = pki.server_config();
        let peer = on_thread(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let mut s = squall_tls::TlsSession::server(&server_config).unwrap();
            blocking_handshake(&mut s, &mut sock);
            s.write_plaintext(&[std::io::IoSlice::new(b"last words")])
                .unwrap();
            s.send_close_notify();
            let mut wire = Vec::new();
            send_all(&mut s, &mut wire);
            std::io::Write::write_all(&mut sock, &wire).unwrap();
            blocking_read_to_end(&mut s, &mut sock, Duration::from_secs(20)).1
        });
        let client = async {
            let stream = TlsConnector::new(pki.client_config())
                .connect(&TcpClient::new(), "localhost", port, None, None)
                .await?;
            let got = stream.read_until_close().await?;
            Ok::<_, BoxError>(got)
        };
        let (answered, got) = futures_join(peer, client).await;
        assert_eq!(&got?[..], b"last words");
        assert!(answered, "our close_notify did not answer the peer's");
        Ok(())
    });
}

/// A peer's data arrives with a forged record behind it, in one segment: the data
/// before it is the peer's (authenticated) and is read, as OpenSSL and so Tornado
/// give it; the next read fails with the typed cause and the peer gets the alert. The
/// same when the data rides with the client's Finished (TLS 1.3 clients send their
/// first request with it): the handshake succeeds, then the data is read.
#[test]
fn data_before_a_bad_record_is_read_then_the_failure() {
    let pki = Pki::localhost();
    for with_finished in [false, true] {
        let client_config = pki.client_config();
        let acceptor = TlsAcceptor::new(pki.server_config());
        run(async move {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let peer = on_thread(move || {
                let mut sock = TcpStream::connect(addr).unwrap();
                let mut s = squall_tls::TlsSession::client(&client_config, "localhost").unwrap();
                if with_finished {
                    handshake_holding_the_last_flight(&mut s, &mut sock);
                } else {
                    blocking_handshake(&mut s, &mut sock);
                }
                let mut wire = Vec::new();
                for part in [&b"GET / HTTP/1.1\r\n\r\n"[..], b"forged"] {
                    s.write_plaintext(&[std::io::IoSlice::new(part)]).unwrap();
                    send_all(&mut s, &mut wire);
                }
                *wire.last_mut().unwrap() ^= 1;
                std::io::Write::write_all(&mut sock, &wire).unwrap();
                // What comes back: an alert, which fails this session with its
                // description.
                let mut back = Vec::new();
                let _ = std::io::Read::read_to_end(&mut sock, &mut back);
                s.feed(&back).err()
            });
            let server = async {
                let (conn, _) = listener.accept()?;
                let stream = acceptor.accept(IoStream::new(conn)?).await?;
                let head = stream.read_until(b"\r\n\r\n", None).await?;
                let err = stream.read_bytes(1, false).await.unwrap_err();
                Ok::<_, BoxError>((head, err))
            };
            let (alert, got) = futures_join(peer, server).await;
            let (head, err) = got?;
            assert_eq!(&head[..], b"GET / HTTP/1.1\r\n\r\n");
            assert!(
                matches!(
                    tls_error(&err),
                    TlsError::Protocol(rustls::Error::DecryptError)
                ),
                "{err:?}"
            );
            assert!(
                matches!(
                    alert,
                    Some(TlsError::Protocol(rustls::Error::AlertReceived(
                        rustls::AlertDescription::BadRecordMac
                    )))
                ),
                "{alert:?}"
            );
            Ok(())
        });
    }
}

/// RFC 8446 §6.1: an end of file without close_notify may be an attacker's cut. The
/// stream takes it as an end of file (as Tornado does), and says it was one.
#[test]
fn an_end_without_close_notify_is_told_from_a_clean_one() {
    let pki = Pki::localhost();
    for clean in [true, false] {
        let server_config = pki.server_config();
        let client_config = pki.client_config();
        run(async move {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let port = listener.local_addr()?.port();
            let peer = on_thread(move || {
                let (mut sock, _) = listener.accept().unwrap();
                let mut s = squall_tls::TlsSession::server(&server_config).unwrap();
                blocking_handshake(&mut s, &mut sock);
                s.write_plaintext(&[std::io::IoSlice::new(b"body")])
                    .unwrap();
                if clean {
                    s.send_close_notify();
                }
                send_all(&mut s, &mut sock);
            });
            let client = async {
                let stream = TlsConnector::new(client_config)
                    .connect(&TcpClient::new(), "localhost", port, None, None)
                    .await?;
                assert!(!stream.truncated());
                let got = stream.read_until_close().await?;
                Ok::<_, BoxError>((got, stream.truncated(), stream.error()))
            };
            let ((), got) = futures_join(peer, client).await;
            let (got, truncated, cause) = got?;
            assert_eq!(&got[..], b"body");
            assert!(matches!(cause, Some(CloseCause::Eof)), "{cause:?}");
            assert_eq!(truncated, !clean, "clean={clean}");
            Ok(())
        });
    }
}

/// A TLS stream whose last handle is dropped says goodbye (close_notify) rather than
/// looking truncated, and one that closes on the peer's close_notify answers it
/// (RFC 5246 §7.2.1, RFC 8446 §6.1).
#[test]
fn a_dropped_or_answered_tls_stream_sends_close_notify() {
    let pki = Pki::localhost();
    run(async move {
        // The handler writes and returns: its stream is dropped.
        let server = TcpServer::new(|stream: IoStream, _| async move {
            stream.write(&b"hello\n"[..]).await?;
            Ok::<(), StreamError>(())
        })?;
        server.set_stream_setup(Arc::new(TlsAcceptor::new(pki.server_config())));
        let addr = server.listen(0, "127.0.0.1")?[0];
        let (echo, echo_addr) = echo_server(&pki)?;
        let config = pki.client_config();
        let (dropped, answered) = on_thread(move || {
            let mut sock = TcpStream::connect(addr).unwrap();
            let mut s = squall_tls::TlsSession::client(&config, "localhost").unwrap();
            blocking_handshake(&mut s, &mut sock);
            let dropped = blocking_read_to_end(&mut s, &mut sock, Duration::from_secs(20));
            let mut sock = TcpStream::connect(echo_addr).unwrap();
            let mut s = squall_tls::TlsSession::client(&config, "localhost").unwrap();
            blocking_handshake(&mut s, &mut sock);
            s.send_close_notify();
            send_all(&mut s, &mut sock);
            let answered = blocking_read_to_end(&mut s, &mut sock, Duration::from_secs(20)).1;
            (dropped, answered)
        })
        .await;
        assert_eq!(dropped, (b"hello\n".to_vec(), true));
        assert!(answered);
        server.stop();
        echo.stop();
        Ok(())
    });
}

/// Tornado's close callback fires when the peer closes with no read pending, for SSL
/// streams too: the close_notify (which a peek at the socket cannot tell from data) is
/// read through the layer, and what came before it stays readable.
#[test]
fn the_close_callback_fires_when_a_tls_peer_closes_with_no_read_pending() {
    let pki = Pki::localhost();
    run(async move {
        let (server, client) = tls_pair(&pki).await?;
        let fired = std::rc::Rc::new(std::cell::Cell::new(false));
        let f = fired.clone();
        server.set_close_callback(move || f.set(true));
        client.write(&b"before the end"[..]).await?;
        client.close();
        while !fired.get() {
            squall_ioloop::sleep(Duration::from_millis(2)).await;
        }
        assert!(server.closed());
        // What came before the end is still there to read.
        assert_eq!(&server.read_until_close().await?[..], b"before the end");
        Ok(())
    });
}

/// `write().await; close()` loses nothing, on the peer's side either, for a TLS client
/// that only writes: the server's session tickets (TLS 1.3) wait unread in its socket,
/// and a socket closed with bytes unread is reset, not closed, which makes the peer's
/// kernel drop what it had not read yet (half of it, here). The client reads what
/// waits before it closes.
#[test]
fn a_tls_client_that_writes_then_closes_or_drops_loses_nothing() {
    for drop_it in [false, true] {
        let pki = Pki::localhost();
        run(async move {
            let (rs, ws) = tls_pair(&pki).await?;
            ws.write(vec![b'q'; 100_000]).await?;
            if drop_it {
                drop(ws);
            } else {
                ws.close();
            }
            let got = rs.read_until_close().await?;
            assert_eq!(got.len(), 100_000, "drop={drop_it}: {:?}", rs.error());
            assert!(
                matches!(rs.error(), Some(CloseCause::Eof)),
                "{:?}",
                rs.error()
            );
            Ok(())
        });
    }
}

/// A write whose future resolved is on the socket (Tornado's contract), also through
/// TLS: closing (or dropping) right after loses none of it, and says goodbye. The peer
/// reads nothing until the server is done, with a small receive buffer, so the last
/// records stay with the server for a while.
#[test]
fn resolved_tls_writes_survive_close_and_drop() {
    for close in [true, false] {
        let pki = Pki::localhost();
        run(async move {
            let (done_tx, done_rx) = std::sync::mpsc::channel::<usize>();
            let server = TcpServer::new(move |stream: IoStream, _| {
                let done_tx = done_tx.clone();
                async move {
                    let mut resolved = 0usize;
                    // Until a write does not complete for a while: the socket is full.
                    while let Ok(r) = squall_ioloop::with_timeout(
                        Duration::from_millis(300),
                        stream.write(vec![b'b'; 60 * 1024]),
                    )
                    .await
                    {
                        r?;
                        resolved += 60 * 1024;
                    }
                    if close {
                        stream.close();
                    }
                    done_tx.send(resolved).unwrap();
                    Ok::<(), StreamError>(())
                }
            })?;
            server.set_stream_setup(Arc::new(TlsAcceptor::new(pki.server_config())));
            let addr = server.listen(0, "127.0.0.1")?[0];
            let config = pki.client_config();
            let (resolved, (data, close_notify)) = on_thread(move || {
                let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                    .unwrap();
                sock.set_recv_buffer_size(4096).unwrap();
                sock.connect(&addr.into()).unwrap();
                let mut sock: TcpStream = sock.into();
                let mut s = squall_tls::TlsSession::client(&config, "localhost").unwrap();
                blocking_handshake(&mut s, &mut sock);
                let resolved = done_rx.recv_timeout(Duration::from_secs(30)).unwrap();
                (
                    resolved,
                    blocking_read_to_end(&mut s, &mut sock, Duration::from_secs(20)),
                )
            })
            .await;
            assert!(resolved > 0);
            assert!(
                data.len() >= resolved,
                "close={close}: {} bytes of resolved writes lost",
                resolved - data.len()
            );
            assert!(close_notify, "close={close}: no close_notify");
            server.stop();
            Ok(())
        });
    }
}
