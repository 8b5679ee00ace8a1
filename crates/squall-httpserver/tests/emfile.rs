//! The HTTP server runs out of file descriptors while accepting, then serves again once
//! fds free up. In a test binary of its own: it lowers `RLIMIT_NOFILE` and fills the
//! whole process's fd table.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use common::serve;
use squall_httpserver::{HttpServer, Response};
use squall_testing::{install_logger_at, wait_for_record};

fn get(addr: std::net::SocketAddr, stream: Option<TcpStream>) -> String {
    let mut s = stream.unwrap_or_else(|| TcpStream::connect(addr).unwrap());
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn http_server_survives_emfile_while_accepting() {
    install_logger_at(log::LevelFilter::Info);
    let old = squall_testing::set_nofile(256);
    let (tx, rx) = mpsc::channel();
    let s = serve(move || {
        tx.send(std::thread::current().id()).unwrap();
        HttpServer::new(|_req| async { Response::text("served") })
    });
    let server_thread = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(get(s.addr, None).ends_with("\r\n\r\nserved"));

    // Fill the fd table, then give one fd back for the client's socket: the server's
    // accept4 finds none left.
    let mut hog = squall_testing::fill_fd_table();
    drop(hog.pop());
    let client = TcpStream::connect(s.addr).expect("connect with the last free fd");
    let warned = wait_for_record(server_thread, Duration::from_secs(30), |r| {
        r.level == log::Level::Warn && r.message.contains("pausing the listener")
    });
    assert!(
        warned.is_some(),
        "the server never ran out of fds accepting"
    );
    assert_eq!(s.stats.connections_accepted(), 1, "accepted without an fd");

    // Free the fds: the waiting client is served, and so are new ones.
    drop(hog);
    assert!(get(s.addr, Some(client)).ends_with("\r\n\r\nserved"));
    assert!(get(s.addr, None).ends_with("\r\n\r\nserved"));
    assert_eq!(s.stats.connections_accepted(), 3);
    drop(s);
    squall_testing::set_nofile(old);
}
