//! The access log with squall's `LoopLogger` installed (its own test binary: a process
//! has one logger): one line per request, in order, Tornado's format, and the lines of
//! a pipelined batch written together rather than one write per request.

mod common;

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use log::LevelFilter;
use squall_httpserver::{HttpServer, Response, ACCESS_LOG_TARGET};
use squall_ioloop::logger::{Filter, LoopLogger};

/// Keeps every write it is given, apart.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Vec<u8>>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().push(b.to_vec());
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn access_lines_are_buffered_per_loop_iteration() {
    let cap = Capture::default();
    let filter = Filter::new(LevelFilter::Warn).directive(ACCESS_LOG_TARGET, LevelFilter::Info);
    LoopLogger::with_sink(filter, cap.clone()).init().unwrap();

    let server = common::serve(|| {
        HttpServer::new(|req| async move {
            match req.path() {
                "/missing" => Response::text("no").with_status(http::StatusCode::NOT_FOUND),
                _ => Response::text("hi"),
            }
        })
    });
    let mut client = server.client();
    let batch: String = (0..20)
        .map(|i| format!("GET /r{i}?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"))
        .collect();
    client.send(
        format!("{batch}POST /missing HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    );
    for i in 0..21 {
        let resp = client.read_response_to(false);
        assert_eq!(resp.status, if i < 20 { 200 } else { 404 });
    }
    drop(client);
    // Stopping the loop writes what it still buffers.
    drop(server);

    let writes = cap.0.lock().unwrap().clone();
    let text = String::from_utf8(writes.concat()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 21, "{text}");
    for (i, line) in lines.iter().enumerate() {
        let expect = if i < 20 {
            format!("[INFO squall_httpserver::access] 200 GET /r{i}?q=1 (127.0.0.1) ")
        } else {
            // A 4xx line is a warning, as Tornado's log_request has it.
            "[WARN squall_httpserver::access] 404 POST /missing (127.0.0.1) ".to_owned()
        };
        assert!(
            line.starts_with(&expect),
            "{line:?} should start with {expect:?}"
        );
        assert!(line.ends_with("ms"), "{line:?}");
    }
    assert!(
        writes.len() < 21,
        "{} writes for 21 pipelined requests: not one per line",
        writes.len()
    );
}
