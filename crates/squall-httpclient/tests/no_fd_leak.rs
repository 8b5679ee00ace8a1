//! Bad servers leave no file descriptor behind: after every failure mode (garbage, a
//! reset mid-body, a body shorter than its Content-Length, a server that never
//! answers, a stream of interim responses, a refused connection) and after a body
//! longer than its Content-Length (the response stands, its connection is dropped) the
//! process has as many fds open as before. One test in its own binary, so no other test opens fds
//! meanwhile.
#![cfg(unix)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use squall_httpclient::{HttpClient, HttpRequest};
use squall_ioloop::IoLoop;

fn open_fds() -> Vec<i32> {
    squall_testing::open_fds()
}

#[test]
fn bad_servers_leave_no_fd_behind() {
    let io_loop = IoLoop::new().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let refused = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // (answer, reset after it, the fetch succeeds)
    let answers: Vec<(&[u8], bool, bool)> = vec![
        (b"garbage\r\n\r\n", false, false),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            false,
            false,
        ),
        // The response stands; the stray bytes go with the connection.
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef",
            false,
            true,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc",
            true,
            false,
        ),
        (b"", false, false),
        // Over the 64 KiB head cap in interim heads.
        (
            Box::leak(b"HTTP/1.1 100 Continue\r\n\r\n".repeat(3000).into()),
            false,
            false,
        ),
    ];
    let outcomes: Vec<bool> = answers.iter().map(|a| a.2).collect();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (exit_tx, exit_rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        for (answer, reset, _) in answers {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => seen.extend_from_slice(&buf[..k]),
                }
            }
            // The client may hang up before the whole answer is written.
            let _ = s.write_all(answer);
            if reset {
                socket2::SockRef::from(&s)
                    .set_linger(Some(Duration::ZERO))
                    .unwrap();
            } else if answer.is_empty() {
                // Never answer: wait for the client to give up and close.
                while matches!(s.read(&mut buf), Ok(k) if k > 0) {}
            }
            drop(s);
            done_tx.send(()).unwrap();
        }
        // Keep the listener open until the count is taken.
        let _ = exit_rx.recv();
    });
    let client = HttpClient::new();
    // Warm up what the loop and the client allocate once (the waker, the poller).
    let c = client.clone();
    io_loop
        .run_sync(
            async move { c.fetch(format!("http://{refused}/")).await },
            None,
        )
        .unwrap()
        .unwrap_err();
    let before = open_fds();
    for ok in outcomes {
        let c = client.clone();
        let request =
            HttpRequest::new(format!("http://{addr}/")).request_timeout(Duration::from_millis(300));
        let result = io_loop
            .run_sync(
                async move { c.fetch(request).await },
                Some(Duration::from_secs(30)),
            )
            .unwrap();
        assert_eq!(result.is_ok(), ok, "{result:?}");
        // The server's end of the connection is closed too before the next round.
        done_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    }
    let c = client.clone();
    io_loop
        .run_sync(
            async move { c.fetch(format!("http://{refused}/")).await },
            None,
        )
        .unwrap()
        .unwrap_err();
    assert_eq!(client.idle_connections(), 0);
    assert_eq!(open_fds(), before, "a failed fetch left an fd open");
    exit_tx.send(()).unwrap();
    server.join().unwrap();
}
