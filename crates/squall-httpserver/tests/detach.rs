//! Handing a connection over after `101 Switching Protocols` (`ResponseWriter::detach`,
//! `Response::on_upgrade`): the new owner gets the stream and every byte read past the
//! request head, in both handler styles, and a graceful shutdown leaves it alone.

mod common;

use std::io::Read;
use std::time::Duration;

use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue, StatusCode};
use squall_httpserver::{
    handler_fn, ConnectionInfo, Detached, HttpMessageDelegate, HttpServer,
    HttpServerConnectionDelegate, OnUpgrade, RequestStart, Response, ResponseWriter,
};
use squall_ioloop::IoLoop;

use common::{serve, Client};

/// The new protocol: echo what was read ahead, then everything that follows.
fn echo(d: Detached) {
    drop(IoLoop::current().unwrap().spawn(async move {
        let Detached {
            stream, read_ahead, ..
        } = d;
        if !read_ahead.is_empty() && stream.write(read_ahead).await.is_err() {
            return;
        }
        while let Ok(data) = stream.read_bytes(4096, true).await {
            if stream.write(data).await.is_err() {
                return;
            }
        }
    }));
}

fn switching() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(UPGRADE, HeaderValue::from_static("echo"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers
}

fn simple_server() -> HttpServer<impl HttpServerConnectionDelegate + Clone> {
    HttpServer::new(|req| async move {
        match req.path() {
            "/up" => {
                let mut resp =
                    Response::new(StatusCode::SWITCHING_PROTOCOLS).on_upgrade(OnUpgrade::new(echo));
                resp.headers = switching();
                resp
            }
            // An upgrade on a status that does not switch is refused (and logged).
            "/bad" => Response::text("no").on_upgrade(OnUpgrade::new(echo)),
            _ => Response::text("http"),
        }
    })
}

fn read_exactly(client: &mut Client, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    client.reader.read_exact(&mut buf).unwrap();
    buf
}

const UPGRADE_REQUEST: &[u8] =
    b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n";

#[test]
fn pipelined_bytes_behind_an_upgrade_go_to_the_new_owner() {
    let server = serve(simple_server);
    let mut client = server.client();
    // The new protocol's first bytes arrive with the request, and look like HTTP: they
    // must not be parsed as a second request.
    let mut first = UPGRADE_REQUEST.to_vec();
    first.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    client.send(&first);
    let resp = client.read_response_to(true);
    assert_eq!(resp.status, 101);
    assert_eq!(resp.header("upgrade"), Some("echo"));
    assert_eq!(
        read_exactly(&mut client, 27),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    client.send(b"more bytes");
    assert_eq!(read_exactly(&mut client, 10), b"more bytes");
    // Other connections still speak HTTP.
    assert_eq!(
        server
            .client()
            .request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .text(),
        "http"
    );
}

#[test]
fn an_upgrade_without_101_is_refused_and_http_goes_on() {
    let server = serve(simple_server);
    let mut client = server.client();
    assert_eq!(
        client
            .request(b"GET /bad HTTP/1.1\r\nHost: x\r\n\r\n")
            .text(),
        "no"
    );
    assert_eq!(
        client.request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").text(),
        "http"
    );
}

#[test]
fn graceful_shutdown_leaves_detached_connections_to_their_owner() {
    let server = serve(simple_server);
    let mut detached = server.client();
    detached.send(UPGRADE_REQUEST);
    assert_eq!(detached.read_response_to(true).status, 101);
    detached.send(b"ping");
    assert_eq!(read_exactly(&mut detached, 4), b"ping");
    // A long grace period: the shutdown must not wait for the detached connection.
    let started = std::time::Instant::now();
    server.start_shutdown(Duration::from_secs(60));
    server.wait();
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// The streaming style: a delegate that switches in `headers_received`.
#[derive(Clone)]
struct Streaming;

struct StreamingRequest;

impl HttpServerConnectionDelegate for Streaming {
    type Message<'a> = StreamingRequest;

    fn start_request(&self, _connection: &ConnectionInfo) -> StreamingRequest {
        StreamingRequest
    }
}

impl HttpMessageDelegate for StreamingRequest {
    async fn headers_received(&mut self, request: RequestStart, writer: &mut ResponseWriter<'_>) {
        if request.head.uri().path() == "/up" {
            assert!(
                writer.detach(OnUpgrade::new(echo)).is_err(),
                "no 101 written yet"
            );
            writer
                .respond(StatusCode::SWITCHING_PROTOCOLS, switching(), b"")
                .unwrap();
            writer.detach(OnUpgrade::new(echo)).unwrap();
        }
    }

    async fn finish(&mut self, writer: &mut ResponseWriter<'_>) {
        if !writer.is_started() {
            writer
                .respond(StatusCode::OK, HeaderMap::new(), b"http")
                .unwrap();
        }
    }
}

#[test]
fn a_streaming_delegate_detaches_in_headers_received() {
    let server = serve(|| HttpServer::with_delegate(Streaming));
    let mut client = server.client();
    let mut first = UPGRADE_REQUEST.to_vec();
    first.extend_from_slice(b"early");
    client.send(&first);
    assert_eq!(client.read_response_to(true).status, 101);
    assert_eq!(read_exactly(&mut client, 5), b"early");
    client.send(b"late");
    assert_eq!(read_exactly(&mut client, 4), b"late");
}

#[test]
fn detach_on_a_memory_transport_closes() {
    use squall_httpserver::{Http1Connection, HttpServerConfig, MemoryTransport};
    use std::rc::Rc;
    let io_loop = IoLoop::new().unwrap();
    let (transport, peer) = MemoryTransport::pair();
    let handler = handler_fn(|_req| async {
        Response::new(StatusCode::SWITCHING_PROTOCOLS)
            .on_upgrade(OnUpgrade::new(|_| panic!("no stream to detach")))
    });
    let conn = Http1Connection::new(
        transport,
        Rc::new(handler),
        HttpServerConfig::default(),
        None,
    );
    peer.send(UPGRADE_REQUEST);
    io_loop
        .run_sync(conn.serve(), Some(Duration::from_secs(30)))
        .unwrap();
    assert!(peer
        .take_output()
        .starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(peer.is_closed());
}
