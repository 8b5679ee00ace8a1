//! Server and client over real sockets, one loop: Tornado's `websocket_test.py`
//! contracts (close code and reason, closed writes, origin, subprotocols, pings,
//! keep-alive timeouts, the message size limit, compression parameters, order of
//! messages with an async `on_message`, a refused handshake's status).

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use http::{HeaderValue, StatusCode};
use squall_httpserver::{HttpServer, HttpServerRequest, Response};
use squall_ioloop::{sleep, IoLoop};
use squall_websocket::{
    websocket_connect, websocket_response, websocket_response_with, ClientOptions, CloseCode,
    DeflateConfig, HandshakeError, Message, WebSocket, WebSocketConfig, WebSocketError,
    WebSocketHandler,
};

fn run(test: impl Future<Output = ()> + 'static) {
    IoLoop::new()
        .unwrap()
        .run_sync(test, Some(Duration::from_secs(60)))
        .unwrap();
}

type Route = Rc<dyn Fn(HttpServerRequest) -> Response>;

/// A server on 127.0.0.1:0 answering every request with `route` (kept alive by the
/// returned value).
fn listen(route: Route) -> (impl Sized, SocketAddr) {
    let mut server = HttpServer::new(move |req| std::future::ready(route(req)));
    let addr = server.listen(0, "127.0.0.1").unwrap();
    (server, addr)
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

/// What the server-side handler saw.
#[derive(Default)]
struct Seen {
    messages: Vec<Message>,
    pongs: Vec<Vec<u8>>,
    pings: Vec<Vec<u8>>,
    closed: Option<(Option<CloseCode>, Option<String>)>,
    /// How many times `on_close` ran.
    closes: u32,
    subprotocol: Option<String>,
}

struct Recorder {
    seen: Rc<RefCell<Seen>>,
    echo: bool,
}

impl WebSocketHandler for Recorder {
    fn select_subprotocol(&mut self, offered: &[String]) -> Option<String> {
        offered.iter().find(|p| p.starts_with("goodproto")).cloned()
    }

    async fn open(&mut self, ws: &WebSocket) {
        self.seen.borrow_mut().subprotocol = ws.selected_subprotocol().map(str::to_owned);
    }

    async fn on_message(&mut self, ws: &WebSocket, message: Message) {
        if message == Message::Text("close me".into()) {
            let _ = ws.close(Some(CloseCode(1001)), "goodbye");
            return;
        }
        if message == Message::Text("panic".into()) {
            panic!("a handler that fails");
        }
        if message == Message::Text("ping me".into()) {
            let _ = ws.ping(b"data");
            return;
        }
        // An async step between messages: the next must still wait for this one.
        if let Message::Text(t) = &message {
            if t.starts_with("slow") {
                sleep(Duration::from_millis(20)).await;
            }
        }
        self.seen.borrow_mut().messages.push(message.clone());
        if self.echo {
            let _ = ws.write_message(message);
        }
    }

    fn on_ping(&mut self, _ws: &WebSocket, data: &[u8]) {
        self.seen.borrow_mut().pings.push(data.to_vec());
    }

    fn on_pong(&mut self, _ws: &WebSocket, data: &[u8]) {
        self.seen.borrow_mut().pongs.push(data.to_vec());
    }

    fn on_close(&mut self, ws: &WebSocket) {
        let mut seen = self.seen.borrow_mut();
        seen.closed = Some((ws.close_code(), ws.close_reason()));
        seen.closes += 1;
    }
}

fn recorder_server(config: WebSocketConfig) -> (impl Sized, SocketAddr, Rc<RefCell<Seen>>) {
    let seen = Rc::new(RefCell::new(Seen::default()));
    let s = seen.clone();
    let (server, addr) = listen(Rc::new(move |req| {
        websocket_response(
            &req,
            &config,
            Recorder {
                seen: s.clone(),
                echo: true,
            },
        )
    }));
    (server, addr, seen)
}

async fn until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        sleep(Duration::from_millis(2)).await;
    }
}

/// Runs `client` on a thread of its own with a blocking socket to `addr` that has sent
/// an upgrade request as `version` (`"1.0"` or `"1.1"`); the loop serves it meanwhile.
/// Resolves to what `client` returns.
async fn raw_upgrade<T: Send + 'static>(
    addr: SocketAddr,
    version: &str,
    client: impl FnOnce(std::net::TcpStream) -> T + Send + 'static,
) -> T {
    use std::io::Write;
    let request = format!(
        "GET / HTTP/{version}\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sock = std::net::TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        sock.write_all(request.as_bytes()).unwrap();
        tx.send(client(sock)).unwrap();
    });
    let mut got = None;
    until(|| {
        got = rx.try_recv().ok();
        got.is_some()
    })
    .await;
    got.unwrap()
}

#[test]
fn echo_text_and_binary_in_order_even_with_an_async_on_message() {
    run(async {
        let (_server, addr, seen) = recorder_server(WebSocketConfig::default());
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::default())
            .await
            .unwrap();
        let sent: Vec<Message> = vec![
            "slow 1".into(),
            b"\x00\x01".as_slice().into(),
            "2".into(),
            "slow 3".into(),
            "4".into(),
        ];
        for m in &sent {
            ws.write_message(m.clone()).unwrap();
        }
        for m in &sent {
            assert_eq!(ws.next().await.as_ref(), Some(m));
        }
        assert_eq!(seen.borrow().messages, sent);
    });
}

#[test]
fn close_code_and_reason_reach_on_close_and_writes_after_close_fail() {
    run(async {
        let (_server, addr, seen) = recorder_server(WebSocketConfig::default());
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::default())
            .await
            .unwrap();
        ws.close(Some(CloseCode(1001)), "goodbye").unwrap();
        assert!(matches!(
            ws.write_message("late"),
            Err(WebSocketError::Closed)
        ));
        // The server echoes the close; the client's read ends.
        assert_eq!(ws.next().await, None);
        assert_eq!(ws.close_code(), Some(CloseCode(1001)));
        until(|| seen.borrow().closed.is_some()).await;
        assert_eq!(
            seen.borrow().closed,
            Some((Some(CloseCode(1001)), Some("goodbye".into())))
        );
    });
}

#[test]
fn the_server_closes_with_a_code_and_the_client_sees_it() {
    run(async {
        let (_server, addr, _seen) = recorder_server(WebSocketConfig::default());
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::default())
            .await
            .unwrap();
        ws.write_message("close me").unwrap();
        assert_eq!(ws.next().await, None);
        assert_eq!(ws.close_code(), Some(CloseCode(1001)));
        assert_eq!(ws.close_reason().as_deref(), Some("goodbye"));
        assert!(matches!(ws.send("late").await, Err(WebSocketError::Closed)));
    });
}

#[test]
fn cross_origin_handshakes_are_refused_with_403_and_the_client_gets_the_status() {
    run(async {
        let (_server, addr, _seen) = recorder_server(WebSocketConfig::default());
        let mut options = ClientOptions::default();
        options
            .headers
            .insert("origin", HeaderValue::from_static("http://evil.example"));
        match websocket_connect(&url(addr, "/"), &options).await {
            Err(WebSocketError::Handshake(HandshakeError::Status(status))) => {
                assert_eq!(status, StatusCode::FORBIDDEN)
            }
            other => panic!("{other:?}"),
        }
        // An origin without a scheme names no host (Tornado's
        // `test_check_origin_invalid_partial_url`).
        let mut options = ClientOptions::default();
        options
            .headers
            .insert("origin", HeaderValue::from_str(&addr.to_string()).unwrap());
        match websocket_connect(&url(addr, "/"), &options).await {
            Err(WebSocketError::Handshake(HandshakeError::Status(status))) => {
                assert_eq!(status, StatusCode::FORBIDDEN)
            }
            other => panic!("{other:?}"),
        }
        // The same origin is fine.
        let mut options = ClientOptions::default();
        options.headers.insert(
            "origin",
            HeaderValue::from_str(&format!("http://{addr}")).unwrap(),
        );
        assert!(websocket_connect(&url(addr, "/"), &options).await.is_ok());
    });
}

#[test]
fn a_plain_http_answer_is_an_error_with_its_status() {
    run(async {
        let (_server, addr) = listen(Rc::new(|_req| {
            Response::text("not here").with_status(StatusCode::NOT_FOUND)
        }));
        match websocket_connect(&url(addr, "/"), &ClientOptions::default()).await {
            Err(WebSocketError::Handshake(HandshakeError::Status(status))) => {
                assert_eq!(status, StatusCode::NOT_FOUND)
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            websocket_connect("http://x/", &ClientOptions::default()).await,
            Err(WebSocketError::BadUrl(_))
        ));
    });
}

// Tornado's test_websocket_header_echo: a header the server adds to its 101 reaches
// the client, which reads the handshake response's headers.
#[test]
fn the_client_reads_the_handshake_response_headers() {
    run(async {
        let config = WebSocketConfig::default();
        let (_server, addr) = listen(Rc::new(move |req| {
            let mut response = websocket_response(
                &req,
                &config,
                Recorder {
                    seen: Rc::default(),
                    echo: true,
                },
            );
            response.headers.insert(
                "x-extra-response-header",
                http::HeaderValue::from_static("Extra-Response-Value"),
            );
            response
        }));
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::default())
            .await
            .unwrap();
        let headers = ws.response_headers().expect("a client's connection");
        assert_eq!(
            headers.get("X-Extra-Response-Header").unwrap(),
            "Extra-Response-Value"
        );
        assert!(headers
            .get("upgrade")
            .unwrap()
            .to_str()
            .unwrap()
            .eq_ignore_ascii_case("websocket"));
        ws.write_message("x").unwrap();
        assert_eq!(ws.next().await.unwrap(), Message::Text("x".into()));
    });
}

#[test]
fn select_subprotocol_picks_from_the_offer_or_none() {
    run(async {
        let (_server, addr, seen) = recorder_server(WebSocketConfig::default());
        let mut options = ClientOptions::default();
        options.subprotocols = vec!["badproto".into(), "goodproto".into()];
        let ws = websocket_connect(&url(addr, "/"), &options).await.unwrap();
        assert_eq!(ws.selected_subprotocol(), Some("goodproto"));
        ws.write_message("x").unwrap();
        ws.next().await.unwrap();
        assert_eq!(seen.borrow().subprotocol.as_deref(), Some("goodproto"));
        options.subprotocols = vec!["badproto".into()];
        let ws = websocket_connect(&url(addr, "/"), &options).await.unwrap();
        assert_eq!(ws.selected_subprotocol(), None);
    });
}

#[test]
fn pings_are_answered_and_pongs_reported() {
    run(async {
        let (_server, addr, seen) = recorder_server(WebSocketConfig::default());
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::default())
            .await
            .unwrap();
        // The client pings: the server's handler sees on_ping, the client gets a pong.
        ws.ping(b"hello").unwrap();
        ws.write_message("sync").unwrap();
        assert_eq!(ws.next().await, Some("sync".into()));
        assert_eq!(seen.borrow().pings, vec![b"hello".to_vec()]);
        // The server pings: the client answers, the server's on_pong sees the data.
        ws.write_message("ping me").unwrap();
        ws.write_message("sync").unwrap();
        assert_eq!(ws.next().await, Some("sync".into()));
        ws.write_message("sync").unwrap();
        assert_eq!(ws.next().await, Some("sync".into()));
        until(|| !seen.borrow().pongs.is_empty()).await;
        assert_eq!(seen.borrow().pongs, vec![b"data".to_vec()]);
    });
}

#[test]
fn ping_timeout_closes_a_silent_peer_with_1000_and_a_reason() {
    run(async {
        let mut config = WebSocketConfig::default();
        config.ping_interval = Some(Duration::from_millis(50));
        config.close_timeout = Duration::from_millis(200);
        let (_server, addr, seen) = recorder_server(config);
        // A client that does not read and sends no pings of its own: nothing answers the
        // server's pings (Tornado 6.5: `close(reason="ping timed out")`).
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::default())
            .await
            .unwrap();
        until(|| seen.borrow().closed.is_some()).await;
        assert_eq!(
            seen.borrow().closed,
            Some((None, None)),
            "the client never answered: the server dropped it after close_timeout"
        );
        // What the server sent: pings, then its close frame.
        while ws.next().await.is_some() {}
        assert_eq!(ws.close_code(), Some(CloseCode::NORMAL));
        assert_eq!(ws.close_reason().as_deref(), Some("ping timed out"));
    });
}

#[test]
fn a_ping_timeout_longer_than_the_interval_is_cut_to_it() {
    let mut config = WebSocketConfig::default();
    assert_eq!(
        config.effective_ping_timeout(),
        None,
        "no pings, no timeout"
    );
    config.ping_interval = Some(Duration::from_secs(10));
    assert_eq!(
        config.effective_ping_timeout(),
        Some(Duration::from_secs(10))
    );
    config.ping_timeout = Some(Duration::from_secs(30));
    assert_eq!(
        config.effective_ping_timeout(),
        Some(Duration::from_secs(10))
    );
    config.ping_timeout = Some(Duration::from_secs(2));
    assert_eq!(
        config.effective_ping_timeout(),
        Some(Duration::from_secs(2))
    );
}

#[test]
fn a_client_that_does_not_read_still_answers_pings_and_sees_pongs() {
    run(async {
        // Tornado's `test_client_ping_timeout`: a client with pings of its own that never
        // reads stays open, and what came meanwhile is read later, in order.
        let mut server_config = WebSocketConfig::default();
        server_config.ping_interval = Some(Duration::from_millis(300));
        let (_server, addr, seen) = recorder_server(server_config);
        let mut client = WebSocketConfig::default();
        client.ping_interval = Some(Duration::from_millis(100));
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::new(client))
            .await
            .unwrap();
        for m in ["one", "two", "three"] {
            ws.write_message(m).unwrap();
        }
        // Ten of the client's intervals and three of the server's, reading nothing.
        sleep(Duration::from_millis(1000)).await;
        assert_eq!(seen.borrow().closed, None, "the server heard its pongs");
        assert!(!ws.is_closed(), "the client heard its pongs");
        assert!(
            seen.borrow().pongs.len() >= 2,
            "the client answered the server's pings: {:?}",
            seen.borrow().pongs
        );
        for m in ["one", "two", "three"] {
            assert_eq!(ws.next().await, Some(m.into()));
        }
        ws.write_message("four").unwrap();
        assert_eq!(ws.next().await, Some("four".into()));
        ws.close(None, "").unwrap();
        assert_eq!(ws.next().await, None);
    });
}

#[test]
fn a_close_frame_read_while_the_application_was_not_reading_ends_the_next_read() {
    run(async {
        let (_server, addr, seen) = recorder_server(WebSocketConfig::default());
        let mut client = WebSocketConfig::default();
        client.ping_interval = Some(Duration::from_millis(20));
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::new(client))
            .await
            .unwrap();
        ws.write_message("hello").unwrap();
        ws.write_message("close me").unwrap();
        // The keep-alive task reads the echo and the close frame, and echoes the close
        // (its code, no reason).
        until(|| seen.borrow().closed.is_some()).await;
        assert_eq!(seen.borrow().closed, Some((Some(CloseCode(1001)), None)));
        assert_eq!(ws.next().await, Some("hello".into()));
        assert_eq!(ws.next().await, None);
        assert_eq!(ws.close_code(), Some(CloseCode(1001)));
        assert_eq!(ws.close_reason().as_deref(), Some("goodbye"));
    });
}

#[test]
fn a_reason_without_a_code_goes_with_1000_and_a_code_alone_has_no_reason() {
    run(async {
        let (_server, addr, seen) = recorder_server(WebSocketConfig::default());
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::default())
            .await
            .unwrap();
        ws.close(None, "goodbye").unwrap();
        assert_eq!(ws.next().await, None);
        until(|| seen.borrow().closed.is_some()).await;
        assert_eq!(
            seen.borrow().closed,
            Some((Some(CloseCode::NORMAL), Some("goodbye".into())))
        );
        // The server echoed the code alone: no reason (Tornado's `close_reason` is None).
        assert_eq!(ws.close_code(), Some(CloseCode::NORMAL));
        assert_eq!(ws.close_reason(), None);
    });
}

#[test]
fn keep_alive_pings_keep_an_answering_peer() {
    run(async {
        let mut config = WebSocketConfig::default();
        config.ping_interval = Some(Duration::from_millis(20));
        config.ping_timeout = Some(Duration::from_millis(200));
        let (_server, addr, seen) = recorder_server(config);
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::default())
            .await
            .unwrap();
        // Reading answers the pings; after ten timeouts' worth the connection lives.
        let reader = ws.clone();
        let reading = IoLoop::current()
            .unwrap()
            .spawn(async move { while reader.next().await.is_some() {} });
        sleep(Duration::from_millis(600)).await;
        assert!(seen.borrow().closed.is_none());
        ws.close(None, "").unwrap();
        reading.await.unwrap();
    });
}

#[test]
fn a_message_over_max_message_size_closes_with_1009() {
    run(async {
        let mut config = WebSocketConfig::default();
        config.max_message_size = 1024;
        let (_server, addr, seen) = recorder_server(config);
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::default())
            .await
            .unwrap();
        ws.write_message(vec![0u8; 1024]).unwrap();
        assert_eq!(ws.next().await.map(|m| m.as_bytes().len()), Some(1024));
        ws.write_message(vec![0u8; 1025]).unwrap();
        assert_eq!(ws.next().await, None);
        assert_eq!(ws.close_code(), Some(CloseCode::MESSAGE_TOO_BIG));
        assert_eq!(ws.close_reason().as_deref(), Some("message too big"));
        until(|| seen.borrow().closed.is_some()).await;
    });
}

#[test]
fn a_connection_whose_application_is_gone_is_dropped_even_with_keep_alive_pings() {
    run(async {
        let mut config = WebSocketConfig::default();
        config.ping_interval = Some(Duration::from_millis(20));
        // A handler that panics (Tornado's `test_error_in_on_message`: logged, and the
        // connection closes).
        let (_server, addr, _seen) = recorder_server(config.clone());
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::default())
            .await
            .unwrap();
        ws.write_message("panic").unwrap();
        assert_eq!(ws.next().await, None);
        assert_eq!(ws.close_code(), None);
        // An async form whose task returns without closing.
        let (_server, addr) = listen(Rc::new(move |req| {
            websocket_response_with(&req, &config, |ws| async move {
                let _ = ws.next().await;
            })
        }));
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::default())
            .await
            .unwrap();
        ws.write_message("bye").unwrap();
        assert_eq!(ws.next().await, None);
    });
}

/// A handler that panics in `on_message` has its connection aborted (the client's read
/// ends, no close frame) and still hears `on_close`, once, as Tornado calls it after an
/// exception in `on_message`: cleanup done there (a registry of open connections)
/// happens whatever the handler did. (It was never called.)
#[test]
fn a_handler_that_panics_still_hears_on_close() {
    run(async {
        let (_server, addr, seen) = recorder_server(WebSocketConfig::default());
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::default())
            .await
            .unwrap();
        ws.write_message("before").unwrap();
        assert_eq!(ws.next().await, Some(Message::Text("before".into())));
        ws.write_message("panic").unwrap();
        assert_eq!(ws.next().await, None);
        assert_eq!(ws.close_code(), None);
        until(|| seen.borrow().closed.is_some()).await;
        let seen = seen.borrow();
        assert_eq!(seen.closed, Some((None, None)));
        assert_eq!(seen.closes, 1);
        assert_eq!(seen.messages, [Message::Text("before".into())]);
    });
}

#[test]
fn compression_parameters_are_negotiated_and_honoured() {
    run(async {
        let mut server_config = WebSocketConfig::default();
        server_config.compression = Some(DeflateConfig::default());
        let (_server, addr, _seen) = recorder_server(server_config);
        for (client_nct, server_bits) in [(false, 15), (true, 15), (false, 9), (true, 10)] {
            let mut config = WebSocketConfig::default();
            config.compression = Some(DeflateConfig {
                client_no_context_takeover: client_nct,
                server_max_window_bits: server_bits,
                ..DeflateConfig::default()
            });
            let options = ClientOptions::new(config);
            let ws = websocket_connect(&url(addr, "/"), &options).await.unwrap();
            for i in 0..3 {
                let text = format!("{i} {}", "squall ".repeat(500));
                ws.send(text.clone()).await.unwrap();
                assert_eq!(ws.next().await, Some(Message::Text(text)));
            }
        }
        // A client without compression is served uncompressed.
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::default())
            .await
            .unwrap();
        ws.send("plain").await.unwrap();
        assert_eq!(ws.next().await, Some("plain".into()));
    });
}

#[test]
fn the_async_form_reads_with_next_and_sends_with_back_pressure() {
    run(async {
        let (_server, addr) = listen(Rc::new(|req| {
            websocket_response_with(&req, &WebSocketConfig::default(), |ws| async move {
                let mut n = 0;
                while let Some(message) = ws.next().await {
                    n += 1;
                    if ws
                        .send(format!(
                            "{n}: {}",
                            String::from_utf8_lossy(message.as_bytes())
                        ))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            })
        }));
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::default())
            .await
            .unwrap();
        ws.send("a").await.unwrap();
        ws.send("b").await.unwrap();
        assert_eq!(ws.next().await, Some("1: a".into()));
        assert_eq!(ws.next().await, Some("2: b".into()));
    });
}

#[test]
fn a_peer_that_does_not_read_hits_the_write_buffer_limit() {
    run(async {
        let full = Rc::new(std::cell::Cell::new(false));
        let flag = full.clone();
        let (_server, addr) = listen(Rc::new(move |req| {
            let mut config = WebSocketConfig::default();
            config.max_write_buffer_size = 64 * 1024;
            let flag = flag.clone();
            websocket_response_with(&req, &config, move |ws| async move {
                let chunk = vec![7u8; 16 * 1024];
                // The client does not read: the socket buffers fill, then the queue.
                for _ in 0..100_000 {
                    match ws.write_message(chunk.clone()) {
                        Ok(()) => {}
                        Err(WebSocketError::WriteBufferFull) => {
                            flag.set(true);
                            return;
                        }
                        Err(e) => panic!("{e}"),
                    }
                    sleep(Duration::ZERO).await;
                }
                panic!("the write queue grew without bound");
            })
        }));
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::default())
            .await
            .unwrap();
        until(|| full.get()).await;
        // The server dropped the connection: what arrived ends without a close frame.
        let mut got = 0usize;
        while let Some(m) = ws.next().await {
            got += m.as_bytes().len();
        }
        assert!(got < 100_000 * 16 * 1024);
        assert_eq!(ws.close_code(), None);
    });
}

#[test]
fn an_http_1_0_upgrade_request_is_refused_with_400() {
    run(async {
        let (_server, addr, seen) = recorder_server(WebSocketConfig::default());
        let answer = raw_upgrade(addr, "1.0", |mut sock| {
            use std::io::Read;
            let mut answer = Vec::new();
            let _ = sock.read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).into_owned()
        })
        .await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        assert!(answer.contains("HTTP/1.1 or later"), "{answer}");
        assert!(seen.borrow().closed.is_none(), "no WebSocket was opened");
    });
}

// A server that fails a connection (here: a message over max_message_size) while the
// peer is still sending does not close into a reset: it half-closes after its close
// frame and reads and drops what still comes, so the peer reads the 1009 and then a
// clean end-of-file, not ECONNRESET (which made Node's `ws` report 1006).
#[test]
fn a_failed_connection_lingers_so_the_peer_reads_its_close_frame() {
    run(async {
        let mut config = WebSocketConfig::default();
        config.max_message_size = 1024;
        let (_server, addr, _seen) = recorder_server(config);
        let (head, answer, end) = raw_upgrade(addr, "1.1", |mut sock| {
            use std::io::{Read, Write};
            // The 101's head, byte by byte up to its empty line.
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                sock.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            // A binary frame announcing 4 MiB (masked, zero key), then 256 KiB of it:
            // the server refuses it from its header, with most of what was sent unread.
            let mut frame = vec![0x82, 0x80 | 127];
            frame.extend_from_slice(&(4u64 << 20).to_be_bytes());
            frame.extend_from_slice(&[0, 0, 0, 0]);
            frame.extend_from_slice(&vec![0u8; 256 << 10]);
            sock.write_all(&frame).unwrap();
            let mut answer = Vec::new();
            let end = sock.read_to_end(&mut answer).map(|_| ());
            (head, answer, end.map_err(|e| e.kind()))
        })
        .await;
        assert!(head.starts_with(b"HTTP/1.1 101 "), "{head:?}");
        // An unmasked close frame: 1009, "message too big".
        let mut close = vec![0x88, 2 + 15, 0x03, 0xf1];
        close.extend_from_slice(b"message too big");
        assert_eq!(answer, close);
        assert_eq!(end, Ok(()), "the close frame was followed by a reset");
    });
}

// The lingering of a failed connection reads and drops at most 16 MiB, then waits,
// reading no more, until `close_timeout`: a peer that keeps sending while it reads gets
// that time to read the close frame before the close resets (a server that closed at
// its byte bound reset the connection at once, before a busy peer had read it).
#[test]
fn a_failed_connection_lingers_its_close_timeout_past_the_byte_bound() {
    run(async {
        let mut config = WebSocketConfig::default();
        config.max_message_size = 1024;
        config.close_timeout = Duration::from_secs(1);
        let (_server, addr, _seen) = recorder_server(config);
        let (answer, sent, lasted) = raw_upgrade(addr, "1.1", |mut sock| {
            use std::io::{Read, Write};
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                sock.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            // The close frame is read while the writer below goes on sending.
            let mut reader = sock.try_clone().unwrap();
            let read = std::thread::spawn(move || {
                let mut close = [0u8; 19];
                reader.read_exact(&mut close).map(|_| close.to_vec())
            });
            // A binary frame announcing 64 MiB, then as much of it as the server
            // takes, until the connection fails.
            let started = std::time::Instant::now();
            let mut frame = vec![0x82, 0x80 | 127];
            frame.extend_from_slice(&(64u64 << 20).to_be_bytes());
            frame.extend_from_slice(&[0, 0, 0, 0]);
            let chunk = vec![0u8; 64 << 10];
            let mut sent = 0usize;
            let mut next: &[u8] = &frame;
            while sent < 64 << 20 && sock.write_all(next).is_ok() {
                sent += next.len();
                next = &chunk;
            }
            (read.join().unwrap(), sent, started.elapsed())
        })
        .await;
        let mut close = vec![0x88, 2 + 15, 0x03, 0xf1];
        close.extend_from_slice(b"message too big");
        assert_eq!(answer.unwrap(), close);
        assert!(
            sent > 16 << 20,
            "the server read and dropped its bound: {sent}"
        );
        assert!(sent < 64 << 20, "the server stopped reading: {sent}");
        // The server closed no earlier than `close_timeout` after it failed the
        // connection, which it did after the frame's header was sent.
        assert!(
            lasted >= Duration::from_millis(990),
            "closed after {lasted:?}"
        );
    });
}

// A ping interval (and timeout) of `Duration::MAX` means pings never come due, not an
// `Instant` overflow in the keep-alive task (which panicked once), on both ends.
#[test]
fn a_ping_interval_of_duration_max_never_pings() {
    squall_testing::install_logger();
    run(async {
        let mut config = WebSocketConfig::default();
        config.ping_interval = Some(Duration::MAX);
        config.ping_timeout = Some(Duration::MAX);
        let (_server, addr, seen) = recorder_server(config.clone());
        let mut options = ClientOptions::default();
        options.config = config;
        options.connect_timeout = Some(Duration::MAX);
        options.handshake_timeout = Some(Duration::MAX);
        let ws = websocket_connect(&url(addr, "/"), &options).await.unwrap();
        ws.write_message("sync").unwrap();
        assert_eq!(ws.next().await, Some("sync".into()));
        ws.close(None, "").unwrap();
        while ws.next().await.is_some() {}
        until(|| seen.borrow().closed.is_some()).await;
        assert!(seen.borrow().pongs.is_empty(), "no ping went out");
    });
    // A task that panics is logged as an error by the loop, on this thread.
    let errors = squall_testing::logs_here(log::Level::Error);
    assert!(errors.is_empty(), "{errors:?}");
}

// A ping interval of zero turns pings off, as Tornado's `websocket_ping_interval = 0`,
// on both ends (it was taken literally: a ping on every turn of the loop, some 100,000
// a second, with the CPU spinning).
#[test]
fn a_ping_interval_of_zero_sends_no_pings() {
    let mut config = WebSocketConfig::default();
    config.ping_interval = Some(Duration::ZERO);
    assert_eq!(config.effective_ping_interval(), None);
    assert_eq!(
        config.effective_ping_timeout(),
        None,
        "no pings, no timeout"
    );
    config.ping_timeout = Some(Duration::from_secs(1));
    assert_eq!(config.effective_ping_timeout(), None);
    run(async move {
        let (_server, addr, seen) = recorder_server(config.clone());
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::new(config))
            .await
            .unwrap();
        for i in 0..20 {
            ws.send(format!("sync {i}")).await.unwrap();
            assert_eq!(ws.next().await, Some(format!("sync {i}").into()));
        }
        ws.close(None, "").unwrap();
        while ws.next().await.is_some() {}
        until(|| seen.borrow().closed.is_some()).await;
        assert!(seen.borrow().pongs.is_empty(), "the server pinged");
        assert!(seen.borrow().pings.is_empty(), "the client pinged");
    });
}

// A ping timeout of zero keeps the pings but turns their check off (Tornado 6.5): a
// peer that never answers is pinged on, not closed with "ping timed out".
#[test]
fn a_ping_timeout_of_zero_pings_without_closing_a_silent_peer() {
    run(async {
        let mut config = WebSocketConfig::default();
        config.ping_interval = Some(Duration::from_millis(20));
        config.ping_timeout = Some(Duration::ZERO);
        assert_eq!(config.effective_ping_timeout(), Some(Duration::ZERO));
        let (_server, addr, _seen) = recorder_server(config);
        let frames = raw_upgrade(addr, "1.1", |mut sock| {
            use std::io::Read;
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                sock.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            // Five of the server's frames (each with a payload under 126 bytes),
            // none answered.
            let mut frames = Vec::new();
            for _ in 0..5 {
                let mut header = [0u8; 2];
                sock.read_exact(&mut header).unwrap();
                let mut payload = vec![0u8; usize::from(header[1] & 0x7f)];
                sock.read_exact(&mut payload).unwrap();
                frames.push((header[0], payload));
            }
            frames
        })
        .await;
        // Empty pings (FIN, opcode 9), and no close frame between them.
        assert_eq!(frames, vec![(0x89, Vec::new()); 5]);
    });
}

// What a server gets from `ws://user:pw@127.0.0.1:P?x=1` with a `Host` of the caller's:
// the resource name `/?x=1` (the request line was `GET ?x=1`), one `Host`, the
// caller's (the generated one went out beside it, which servers refuse with 400, and
// held the credentials), and the credentials as basic auth.
#[test]
fn the_handshake_request_has_the_resource_name_one_host_and_basic_auth() {
    type Heard = Rc<RefCell<Vec<(String, Vec<String>, Vec<String>)>>>;
    run(async {
        let heard: Heard = Rc::default();
        let h = heard.clone();
        let (_server, addr) = listen(Rc::new(move |req| {
            let values = |name: &str| -> Vec<String> {
                req.headers()
                    .get_all(name)
                    .iter()
                    .map(|v| v.to_str().unwrap().to_owned())
                    .collect()
            };
            h.borrow_mut().push((
                req.uri().to_string(),
                values("host"),
                values("authorization"),
            ));
            websocket_response(
                &req,
                &WebSocketConfig::default(),
                Recorder {
                    seen: Rc::default(),
                    echo: true,
                },
            )
        }));
        let port = addr.port();
        let mut options = ClientOptions::default();
        options
            .headers
            .insert("host", HeaderValue::from_static("example.com"));
        let ws = websocket_connect(&format!("ws://user:pw@127.0.0.1:{port}?x=1"), &options)
            .await
            .unwrap();
        ws.send("hi").await.unwrap();
        assert_eq!(ws.next().await, Some("hi".into()));
        let ws = websocket_connect(
            &format!("ws://user:pw@127.0.0.1:{port}/p"),
            &ClientOptions::default(),
        )
        .await
        .unwrap();
        ws.send("hi").await.unwrap();
        assert_eq!(ws.next().await, Some("hi".into()));
        let basic = "Basic dXNlcjpwdw==".to_owned();
        assert_eq!(
            *heard.borrow(),
            [
                (
                    "/?x=1".to_owned(),
                    vec!["example.com".to_owned()],
                    vec![basic.clone()]
                ),
                (
                    "/p".to_owned(),
                    vec![format!("127.0.0.1:{port}")],
                    vec![basic]
                ),
            ]
        );
        // A header the handshake sets itself is refused, before connecting.
        let mut options = ClientOptions::default();
        options
            .headers
            .insert("sec-websocket-key", HeaderValue::from_static("x"));
        assert!(matches!(
            websocket_connect(&url(addr, "/"), &options).await,
            Err(WebSocketError::HandshakeHeader(name)) if name == "sec-websocket-key"
        ));
        assert_eq!(heard.borrow().len(), 2);
    });
}

// An async form that closes and returns: nobody is left to read the peer's close echo,
// which stayed unread until `close_timeout`, and the close then reset the connection
// (Python `websockets` reported ConnectionResetError). The server reads the echo and
// closes at once, with nothing unread: the peer reads a clean end-of-file.
#[test]
fn a_task_that_closes_and_returns_still_reads_the_close_echo() {
    run(async {
        let mut config = WebSocketConfig::default();
        config.close_timeout = Duration::from_secs(20);
        let (_server, addr) = listen(Rc::new(move |req| {
            websocket_response_with(&req, &config, |ws| async move {
                ws.close(Some(CloseCode::NORMAL), "bye").unwrap();
            })
        }));
        let (close, end, lasted) = raw_upgrade(addr, "1.1", |mut sock| {
            use std::io::{Read, Write};
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                sock.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            let mut close = [0u8; 7];
            sock.read_exact(&mut close).unwrap();
            let started = std::time::Instant::now();
            // A ping and a message the server drops unanswered, then the echo of its
            // code (masked, zero key).
            sock.write_all(&[0x89, 0x80, 0, 0, 0, 0]).unwrap();
            sock.write_all(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i'])
                .unwrap();
            sock.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8])
                .unwrap();
            let mut rest = Vec::new();
            let end = sock.read_to_end(&mut rest).map(|_| rest);
            (close, end.map_err(|e| e.kind()), started.elapsed())
        })
        .await;
        assert_eq!(close, [0x88, 5, 0x03, 0xe8, b'b', b'y', b'e']);
        assert_eq!(end, Ok(Vec::new()), "after the echo: a clean end-of-file");
        assert!(lasted < Duration::from_secs(10), "closed after {lasted:?}");
    });
}

// The same on the client: a client that closes and drops its handle reads the server's
// echo, then waits for the server to close, and closes with nothing unread.
#[test]
fn a_client_that_closes_and_lets_go_still_reads_the_close_echo() {
    run(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut sock, _) = listener.accept().unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                sock.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            let head = String::from_utf8(head).unwrap();
            let key = head
                .lines()
                .find_map(|l| l.strip_prefix("sec-websocket-key: "))
                .unwrap();
            let accept = squall_websocket::handshake::accept_key(key.as_bytes());
            write!(
                sock,
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            )
            .unwrap();
            // The client's close frame (masked: 2 + 4 + 2 bytes for a code alone).
            let mut close = [0u8; 8];
            sock.read_exact(&mut close).unwrap();
            let started = std::time::Instant::now();
            sock.write_all(&[0x81, 2, b'h', b'i']).unwrap();
            sock.write_all(&[0x88, 2, 0x03, 0xe8]).unwrap();
            sock.shutdown(std::net::Shutdown::Write).unwrap();
            let mut rest = Vec::new();
            let end = sock.read_to_end(&mut rest).map(|_| rest);
            tx.send((close, end.map_err(|e| e.kind()), started.elapsed()))
                .unwrap();
        });
        let mut options = ClientOptions::default();
        options.config.close_timeout = Duration::from_secs(20);
        let ws = websocket_connect(&format!("ws://{addr}/"), &options)
            .await
            .unwrap();
        ws.close(Some(CloseCode::NORMAL), "").unwrap();
        drop(ws);
        let mut got = None;
        until(|| {
            got = rx.try_recv().ok();
            got.is_some()
        })
        .await;
        let (close, end, lasted) = got.unwrap();
        assert_eq!(close[..2], [0x88, 0x82]);
        assert_eq!(end, Ok(Vec::new()), "after the echo: a clean end-of-file");
        assert!(lasted < Duration::from_secs(10), "closed after {lasted:?}");
    });
}

/// A server with `no_keep_alive` (or one draining) still answers a handshake with
/// `Connection: Upgrade`: a 101 switches protocols, so keep-alive does not apply to it
/// (the server's `Connection: close` took its place, and clients refused the answer).
#[test]
fn a_no_keep_alive_server_still_upgrades() {
    run(async {
        let config = squall_httpserver::HttpServerConfig {
            no_keep_alive: true,
            ..squall_httpserver::HttpServerConfig::default()
        };
        let seen = Rc::new(RefCell::new(Seen::default()));
        let handler_seen = seen.clone();
        let mut server = HttpServer::new(move |req: HttpServerRequest| {
            let handler = Recorder {
                seen: handler_seen.clone(),
                echo: true,
            };
            std::future::ready(websocket_response(
                &req,
                &WebSocketConfig::default(),
                handler,
            ))
        })
        .with_config(config);
        let addr = server.listen(0, "127.0.0.1").unwrap();
        let ws = websocket_connect(&url(addr, "/"), &ClientOptions::default())
            .await
            .unwrap();
        ws.write_message(Message::Text("hi".into())).unwrap();
        assert_eq!(ws.next().await, Some(Message::Text("hi".into())));
        drop(server);
    });
}

/// A connection dropped by its application after it sent its close, whose loop then
/// closes before the task reading the peer's answer ever ran: the loop drops that task
/// unpolled, and the state it held is not handed on again (it was, recursively, until
/// the stack overflowed).
#[test]
fn a_closing_connection_dropped_as_its_loop_closes() {
    let io_loop = IoLoop::new().unwrap();
    let (ws, server) = io_loop
        .run_sync(
            async {
                let (server, addr) = listen(Rc::new(|req: HttpServerRequest| {
                    let handler = Recorder {
                        seen: Rc::default(),
                        echo: false,
                    };
                    websocket_response(&req, &WebSocketConfig::default(), handler)
                }));
                let ws = websocket_connect(&url(addr, "/"), &ClientOptions::default())
                    .await
                    .unwrap();
                ws.close(None, "bye").unwrap();
                (ws, server)
            },
            Some(Duration::from_secs(20)),
        )
        .unwrap();
    // The closing state goes to a task queued on the idle loop...
    drop(ws);
    // ...which the loop's close drops before its first poll.
    io_loop.close(true).unwrap();
    drop(server);
}
