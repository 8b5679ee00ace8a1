//! The floor answers like an HTTP server would, whatever the read and write sizes:
//! keep-alive, a request split byte by byte, deep pipelines that overflow the socket
//! buffers (partial writes and WRITE interest), and close on end of file. Also checks
//! the load generator against it.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use squall_benches::floor::{Floor, RESPONSE};
use squall_benches::loadgen;

const REQ: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
const PATIENCE: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    fn start() -> Server {
        let mut floor = Floor::new(TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
        let addr = floor.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                floor.turn(Some(Duration::from_millis(20)))?;
            }
            Ok(())
        });
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let result = t.join().expect("floor thread panicked");
            if !std::thread::panicking() {
                result.expect("floor loop failed");
            }
        }
    }
}

fn read_responses(s: &mut TcpStream, n: usize) {
    let mut got = vec![0u8; n * RESPONSE.len()];
    s.read_exact(&mut got).unwrap();
    assert!(
        got.chunks(RESPONSE.len()).all(|r| r == RESPONSE),
        "responses are whole and in order"
    );
}

/// After the peer's EOF the floor closes: nothing more arrives, and the read sees EOF.
fn expect_close(mut s: TcpStream) {
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(
        rest.is_empty(),
        "no extra responses: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

#[test]
fn keep_alive_answers_each_request() {
    let server = Server::start();
    let mut s = server.connect();
    for _ in 0..100 {
        s.write_all(REQ).unwrap();
        read_responses(&mut s, 1);
    }
    expect_close(s);
}

#[test]
fn request_split_byte_by_byte_gets_one_response() {
    let server = Server::start();
    let mut s = server.connect();
    for b in REQ {
        s.write_all(std::slice::from_ref(b)).unwrap();
    }
    // The terminator split at every place still makes exactly one response; a second
    // whole request after it makes exactly one more.
    read_responses(&mut s, 1);
    s.write_all(&REQ[..REQ.len() - 3]).unwrap();
    s.write_all(&REQ[REQ.len() - 3..]).unwrap();
    read_responses(&mut s, 1);
    expect_close(s);
}

#[test]
fn deep_pipeline_survives_partial_writes() {
    // 20,000 responses (about 2.4 MB) overflow the socket buffers while the client is
    // still writing, so the floor must keep a backlog, wait for WRITE and resume.
    const N: usize = 20_000;
    let server = Server::start();
    let mut s = server.connect();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let all = REQ.repeat(N);
        for part in all.chunks(7919) {
            w.write_all(part).unwrap();
        }
    });
    read_responses(&mut s, N);
    writer.join().unwrap();
    expect_close(s);
}

#[test]
fn many_connections_interleaved() {
    let server = Server::start();
    let mut conns: Vec<TcpStream> = (0..50).map(|_| server.connect()).collect();
    for round in 1..=3 {
        for c in &mut conns {
            c.write_all(&REQ.repeat(round)).unwrap();
        }
        for c in &mut conns {
            read_responses(c, round);
        }
    }
    for c in conns {
        expect_close(c);
    }
}

#[test]
fn closes_on_eof_with_nothing_sent() {
    let server = Server::start();
    expect_close(server.connect());
}

#[test]
fn loadgen_counts_what_the_floor_serves() {
    let server = Server::start();
    let mut cfg = loadgen::Config::new(server.addr);
    cfg.connections = 8;
    cfg.pipeline = 16;
    cfg.duration = Duration::from_millis(300);
    let report = loadgen::run(&cfg).unwrap();
    assert_eq!(report.errors, loadgen::Errors::default());
    assert!(
        report.requests >= 16,
        "at least one batch answered: {}",
        report.requests
    );
    assert_eq!(report.latency.len(), report.requests);
    let json = report.to_json();
    assert!(
        json.starts_with("{\"generator\":\"squall-loadgen\""),
        "{json}"
    );

    let held = loadgen::hold(server.addr, 100, PATIENCE).unwrap();
    assert_eq!(held.len(), 100);
}
