//! Shared helpers for this crate's socket tests: a server on its own thread and a
//! raw-socket client (the helpers every crate shares are in squall-testing).
#![allow(dead_code, unreachable_pub)]

use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use squall_httpserver::{HttpServer, HttpServerConnectionDelegate, ServerStats};
use squall_ioloop::{IoLoop, RemoteHandle};

/// Read timeout of test clients: generous, so a slow machine never fails a test.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

type Hook = Box<dyn Fn(Duration)>;

thread_local! {
    static SHUTDOWN: RefCell<Option<Hook>> = const { RefCell::new(None) };
}

/// A server listening on 127.0.0.1 (a free port), its loop on a thread of its own.
pub struct TestServer {
    pub addr: SocketAddr,
    pub stats: ServerStats,
    remote: RemoteHandle,
    thread: Option<JoinHandle<()>>,
}

/// Start the server `make` returns on a new thread.
pub fn serve<D, F>(make: F) -> TestServer
where
    D: HttpServerConnectionDelegate + Clone,
    F: FnOnce() -> HttpServer<D> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let io_loop = IoLoop::new().unwrap();
        io_loop.make_current();
        let mut server = make();
        let addr = server.listen(0, "127.0.0.1").unwrap();
        tx.send((addr, server.stats(), io_loop.remote())).unwrap();
        let server = Rc::new(server);
        SHUTDOWN.with(|h| {
            *h.borrow_mut() = Some(Box::new(move |grace| {
                let s = server.clone();
                let l = IoLoop::current().unwrap();
                drop(l.clone().spawn(async move {
                    s.shutdown(grace).await;
                    l.stop();
                }));
            }))
        });
        io_loop.start().unwrap();
        SHUTDOWN.with(|h| h.borrow_mut().take());
        io_loop.close(true).unwrap();
    });
    let (addr, stats, remote) = rx.recv_timeout(READ_TIMEOUT).expect("server started");
    TestServer {
        addr,
        stats,
        remote,
        thread: Some(thread),
    }
}

impl TestServer {
    /// A new raw client connection.
    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// `HttpServer::shutdown(grace)` on the server's loop, in the background; the loop
    /// stops when it completes. `wait` joins the thread.
    pub fn start_shutdown(&self, grace: Duration) {
        self.remote
            .add_callback(move || SHUTDOWN.with(|h| (h.borrow().as_ref().unwrap())(grace)))
            .unwrap();
    }

    /// Wait for the server thread to end.
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.remote.stop();
            let _ = t.join();
        }
    }
}

/// A parsed response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A blocking client over a raw socket.
pub struct Client {
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(s),
        }
    }

    pub fn send(&mut self, data: &[u8]) {
        self.reader.get_mut().write_all(data).unwrap();
    }

    pub fn try_send(&mut self, data: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(data)
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).unwrap();
        assert!(n > 0, "connection closed while reading a response");
        line
    }

    /// Read one response; `head`: the request was HEAD (no body follows).
    pub fn read_response_to(&mut self, head: bool) -> RawResponse {
        let status_line = self.line();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.line();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').expect("header line");
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let mut resp = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if head || status == 204 || status == 304 || (100..200).contains(&status) {
            return resp;
        }
        if let Some(n) = resp.header("content-length") {
            let n: usize = n.parse().unwrap();
            resp.body = vec![0; n];
            self.reader.read_exact(&mut resp.body).unwrap();
        } else if resp
            .header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let size = usize::from_str_radix(self.line().trim(), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).unwrap();
                resp.body.extend_from_slice(&chunk[..size]);
                if size == 0 {
                    break;
                }
            }
        } else {
            self.reader.read_to_end(&mut resp.body).unwrap();
        }
        resp
    }

    pub fn read_response(&mut self) -> RawResponse {
        self.read_response_to(false)
    }

    /// One request, one response.
    pub fn request(&mut self, raw: &[u8]) -> RawResponse {
        self.send(raw);
        self.read_response()
    }

    /// True once the server has closed the connection: a read returns end of file or
    /// a reset (within the read timeout).
    pub fn is_closed_by_server(&mut self) -> bool {
        let mut buf = [0u8; 1024];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return false
                }
                Err(e) => panic!("unexpected read error: {e}"),
            }
        }
    }

    /// Everything until the server closes.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return out,
                Err(e) => panic!("read error before close: {e}"),
            }
        }
    }
}
