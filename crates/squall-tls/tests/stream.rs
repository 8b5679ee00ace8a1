//! TLS streams over real sockets on the loop: the IoStream API through the TLS layer,
//! Tornado's SSL contracts (deferred handshake, `wait_for_handshake`, `start_tls` on an
//! idle stream only, hostname checks), and peers that do not speak TLS.

mod common;

use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use common::Pki;
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
    // Tornado's test_handshake_fail/test_wait_for_handshake*: nothing happens on
    // start_tls; a write queued during the handshake is sent after it, and its future
    // resolves only then.
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
fn wait_for_handshake_twice_is_an_error() {
    // Tornado's test_wait_for_handshake_already_waiting_error.
    let pki = Pki::localhost();
    run(async move {
        let (server, client) = plain_pair().await?;
        server.start_tls_server(&pki.server_config())?;
        client.start_tls_client(&pki.client_config(), "localhost")?;
        let first = server.wait_for_handshake();
        let err = server.wait_for_handshake().await.unwrap_err();
        assert!(matches!(tls_error(&err), TlsError::AlreadyWaiting));
        let (a, b) = futures_join(first, client.wait_for_handshake()).await;
        a?;
        b?;
        // Once done, waiting again resolves at once.
        server.wait_for_handshake().await?;
        let info = server.tls_info().unwrap();
        assert_eq!(info.server_name.as_deref(), Some("localhost"));
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

#[test]
fn plain_http_to_the_tls_port_closes_with_a_typed_cause() {
    let pki = Pki::localhost();
    run(async move {
        let (server, client) = plain_pair().await?;
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

#[test]
fn handshake_timeout() {
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
        let (server, client) = plain_pair().await?;
        server.start_tls_server(&pki.server_config())?;
        client.start_tls_client(&pki.client_config(), "localhost")?;
        let (a, b) = futures_join(server.wait_for_handshake(), client.wait_for_handshake()).await;
        a?;
        b?;
        server.write(&b"last words"[..]).await?;
        server.close();
        let all = client.read_until_close().await?;
        assert_eq!(&all[..], b"last words");
        assert!(matches!(client.error(), Some(CloseCause::Eof)));
        Ok(())
    });
}

#[test]
fn peer_closing_during_the_handshake() {
    let pki = Pki::localhost();
    run(async move {
        let (server, client) = plain_pair().await?;
        drop(client);
        let err = TlsAcceptor::new(pki.server_config())
            .accept(server)
            .await
            .unwrap_err();
        assert!(matches!(tls_error(&err), TlsError::HandshakeEof), "{err:?}");
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
