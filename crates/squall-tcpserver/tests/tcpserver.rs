//! Tornado's `tcpserver_test.py`, `tcpclient_test.py` and `netutil_test.py` behaviours,
//! in our own words, on every backend the platform has (epoll or kqueue, poll, select).

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::rc::Rc;
use std::time::Duration;

use squall_ioloop::{sleep, IoLoop};
use squall_iostream::{IoStream, StreamError};
use squall_tcpserver::{
    add_accept_handler, bind_sockets, bind_unix_socket, Family, PeerAddr, ServerThreads, TcpClient,
    TcpServer,
};

fn echo_server() -> (TcpServer, SocketAddr) {
    let server = TcpServer::new(|stream: IoStream, _addr: PeerAddr| async move {
        loop {
            let data = stream.read_bytes(64 * 1024, true).await?;
            stream.write(data).await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), StreamError>(())
    })
    .unwrap();
    let addr = server.listen(0, "127.0.0.1").unwrap()[0];
    (server, addr)
}

// Tornado: test_handle_stream_coroutine_logging / the basic echo.
async fn handle_stream_may_be_async() {
    let (server, addr) = echo_server();
    let client = IoStream::connect(addr).await.unwrap();
    for i in 0..20 {
        let msg = format!("message {i}");
        client.write(msg.clone()).await.unwrap();
        let back = client.read_bytes(msg.len(), false).await.unwrap();
        assert_eq!(&back[..], msg.as_bytes());
    }
    server.stop();
}

// Tornado: test_handle_stream_coroutine_logging: an error the handler's future ends
// with is logged at error level in Tornado's words ("Exception in callback"), naming
// the peer and the error.
async fn handle_stream_error_is_logged() {
    squall_testing::install_logger();
    let server = TcpServer::new(|stream: IoStream, _addr: PeerAddr| async move {
        stream.read_bytes(5, false).await?;
        stream.close();
        Err::<(), std::io::Error>(std::io::Error::other("boom in handle_stream"))
    })
    .unwrap();
    let addr = server.listen(0, "127.0.0.1").unwrap()[0];
    let client = IoStream::connect(addr).await.unwrap();
    let needle = format!("connection from {}", client.local_addr().unwrap());
    client.write(&b"hello"[..]).await.unwrap();
    let _ = client.read_until_close().await;
    let logged = squall_ioloop::with_timeout(Duration::from_secs(20), async {
        loop {
            let lines: Vec<String> = squall_testing::logs_here(log::Level::Error)
                .into_iter()
                .filter(|m| m.contains(&needle))
                .collect();
            if !lines.is_empty() {
                return lines;
            }
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the handler's error was not logged");
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(
        logged[0].contains("Exception in callback") && logged[0].contains("boom in handle_stream"),
        "{logged:?}"
    );
    server.stop();
}

// Tornado: test_stop_twice.
async fn stop_twice() {
    let (server, addr) = echo_server();
    assert_eq!(server.local_addrs(), vec![addr]);
    server.stop();
    server.stop();
    // It listens on nothing now, and takes no new socket.
    assert!(server.local_addrs().is_empty());
    let more = bind_sockets(0, "127.0.0.1", Family::V4, 16, false).unwrap();
    assert!(server.add_sockets(more).is_err());
    assert!(server.local_addrs().is_empty());
    // The listener is closed: a new connection is refused.
    let err = IoStream::connect(addr).await.unwrap_err();
    assert_eq!(
        err.io_error().unwrap().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
}

// Tornado: test_stop_in_callback (stop from inside the handler; live connections go on).
async fn stop_in_callback() {
    let slot: Rc<RefCell<Option<TcpServer>>> = Rc::new(RefCell::new(None));
    let handled = Rc::new(Cell::new(0));
    let (s2, h2) = (slot.clone(), handled.clone());
    let server = TcpServer::new(move |stream: IoStream, _addr: PeerAddr| {
        h2.set(h2.get() + 1);
        if let Some(s) = s2.borrow().as_ref() {
            s.stop();
        }
        async move {
            let line = stream.read_until(b"\n", Some(100)).await?;
            stream.write(line).await
        }
    })
    .unwrap();
    *slot.borrow_mut() = Some(server.clone());
    let addr = server.listen(0, "127.0.0.1").unwrap()[0];
    // Several connections in the backlog at once: the batch stops after the first.
    let a = IoStream::connect(addr).await.unwrap();
    let b = TcpStream::connect(addr);
    a.write(&b"still served\n"[..]).await.unwrap();
    assert_eq!(
        &a.read_until(b"\n", None).await.unwrap()[..],
        b"still served\n"
    );
    assert_eq!(handled.get(), 1);
    drop(b);
    slot.borrow_mut().take();
}

// Tornado: TestMultiprocess / add_sockets with pre-bound sockets.
async fn add_sockets_serves_prebound() {
    let listeners = bind_sockets(0, "127.0.0.1", Family::V4, 128, false).unwrap();
    let addr = listeners[0].local_addr().unwrap();
    let server = TcpServer::new(|stream: IoStream, addr: PeerAddr| async move {
        let ip = addr.inet().map(|a| a.ip().to_string()).unwrap_or_default();
        stream.write(ip).await
    })
    .unwrap();
    server.add_sockets(listeners).unwrap();
    assert_eq!(server.local_addrs(), vec![addr]);
    let c = IoStream::connect(addr).await.unwrap();
    assert_eq!(&c.read_bytes(9, false).await.unwrap()[..], b"127.0.0.1");
    server.stop();
}

// Our own: a burst of more connections than one event accepts (128) is all served.
async fn accept_burst() {
    let (server, addr) = echo_server();
    let mut clients = Vec::new();
    for _ in 0..300 {
        clients.push(IoStream::connect(addr).await.unwrap());
    }
    for (i, c) in clients.iter().enumerate() {
        c.write(format!("{i:04}")).await.unwrap();
    }
    for (i, c) in clients.iter().enumerate() {
        assert_eq!(
            &c.read_bytes(4, false).await.unwrap()[..],
            format!("{i:04}").as_bytes()
        );
    }
    server.stop();
}

// Tornado: test_connect_ipv4_ipv4 / refused / happy eyeballs falling back.
async fn tcp_client_connects_and_falls_back() {
    let (server, addr) = echo_server();
    let client = TcpClient::new();
    let s = client
        .connect("127.0.0.1", addr.port(), Some(Duration::from_secs(10)))
        .await
        .unwrap();
    s.write(&b"ok"[..]).await.unwrap();
    assert_eq!(&s.read_bytes(2, false).await.unwrap()[..], b"ok");
    // "localhost" may resolve to ::1 first, where nothing listens: the v4 address wins.
    let s = client
        .connect("localhost", addr.port(), Some(Duration::from_secs(10)))
        .await
        .unwrap();
    s.write(&b"v4"[..]).await.unwrap();
    assert_eq!(&s.read_bytes(2, false).await.unwrap()[..], b"v4");
    server.stop();
    // Refused everywhere: the real error.
    let err = client
        .connect("127.0.0.1", addr.port(), Some(Duration::from_secs(10)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
    // A name that does not resolve.
    let err = client
        .connect("no-such-host.invalid", 80, Some(Duration::from_secs(10)))
        .await;
    assert!(err.is_err());
}

// Tornado: test_reuse_port.
async fn reuse_port_lets_sockets_share() {
    let a = bind_sockets(0, "127.0.0.1", Family::V4, 16, true).unwrap();
    let port = a[0].local_addr().unwrap().port();
    let b = bind_sockets(port, "127.0.0.1", Family::V4, 16, true).unwrap();
    assert_eq!(b[0].local_addr().unwrap().port(), port);
    // Without reuse_port the same bind fails.
    let err = bind_sockets(port, "127.0.0.1", Family::V4, 16, false).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    // The OS error, errno included (Tornado raises the socket's OSError).
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
}

// Tornado: test_same_port_allocation (port 0 gives every family one port).
async fn same_port_allocation() {
    let ls = match bind_sockets(0, "localhost", Family::Any, 16, false) {
        Ok(ls) => ls,
        Err(e) => panic!("bind localhost: {e}"),
    };
    let ports: Vec<u16> = ls.iter().map(|l| l.local_addr().unwrap().port()).collect();
    assert!(!ports.is_empty());
    assert!(ports.iter().all(|&p| p == ports[0] && p != 0), "{ports:?}");
}

// Tornado's bind_sockets binds the families in order, IPv4 first (it sorts getaddrinfo's
// answers by family), so that with port 0 the kernel picks a port that is free for
// IPv4, where nearly every socket of the host lives. Picked for an IPv6-only socket
// first, the port could be one an IPv4 connection uses as its local port (which does
// not stop a V6ONLY bind), and the IPv4 bind on it then failed with EADDRINUSE.
#[test]
fn bind_sockets_binds_ipv4_first() {
    for address in ["", "localhost"] {
        let ls = bind_sockets(0, address, Family::Any, 16, false).unwrap();
        let addrs: Vec<SocketAddr> = ls.iter().map(|l| l.local_addr().unwrap()).collect();
        let first_v6 = addrs.iter().position(SocketAddr::is_ipv6);
        let last_v4 = addrs.iter().rposition(SocketAddr::is_ipv4);
        if let (Some(v6), Some(v4)) = (first_v6, last_v4) {
            assert!(v4 < v6, "{address:?}: IPv4 first: {addrs:?}");
        }
    }
}

// Tornado: UnixSocketTest (and "replace a stale socket file only").
async fn unix_socket_server() {
    let dir = std::env::temp_dir().join(format!(
        "squall-unix-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    // A regular file is not replaced.
    std::fs::write(&path, b"not a socket").unwrap();
    assert_eq!(
        bind_unix_socket(&path, 0o600, 16).unwrap_err().kind(),
        std::io::ErrorKind::AlreadyExists
    );
    std::fs::remove_file(&path).unwrap();
    // A stale socket file is.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let listener = bind_unix_socket(&path, 0o600, 16).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A live one is not.
    assert_eq!(
        bind_unix_socket(&path, 0o600, 16).unwrap_err().kind(),
        std::io::ErrorKind::AddrInUse
    );
    let server = TcpServer::new(|stream: IoStream, addr: PeerAddr| async move {
        assert_eq!(addr, PeerAddr::Unix);
        let line = stream.read_until(b"\n", Some(100)).await?;
        stream.write(line).await
    })
    .unwrap();
    server.add_unix_socket(listener).unwrap();
    let client = IoStream::new(std::os::unix::net::UnixStream::connect(&path).unwrap()).unwrap();
    client.write(&b"over unix\n"[..]).await.unwrap();
    assert_eq!(
        &client.read_until(b"\n", None).await.unwrap()[..],
        b"over unix\n"
    );
    server.stop();
    std::fs::remove_dir_all(&dir).unwrap();
}

// Tornado: bind_unix_socket with a name starting with a NUL byte binds Linux's abstract
// namespace (no file: nothing to stat, replace or chmod).
#[cfg(target_os = "linux")]
async fn unix_socket_abstract_name() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("squall-abstract-{}-{}", std::process::id(), rand_suffix());
    let listener = bind_unix_socket(format!("\0{name}"), 0o600, 16).unwrap();
    let server = TcpServer::new(|stream: IoStream, addr: PeerAddr| async move {
        assert_eq!(addr, PeerAddr::Unix);
        stream.write(&b"abstract"[..]).await
    })
    .unwrap();
    server.add_unix_socket(listener).unwrap();
    let at = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let client = IoStream::new(std::os::unix::net::UnixStream::connect_addr(&at).unwrap()).unwrap();
    assert_eq!(&client.read_bytes(8, false).await.unwrap()[..], b"abstract");
    server.stop();
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::Instant::now())
}

// Tornado: add_accept_handler with a plain callback, removal inside it.
async fn accept_handler_remove_inside_callback() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let io_loop = IoLoop::current().unwrap();
    let got = Rc::new(Cell::new(0));
    let slot = Rc::new(RefCell::new(None));
    let (g, s) = (got.clone(), slot.clone());
    let handle = add_accept_handler(&io_loop, listener, move |fd, _addr| {
        g.set(g.get() + 1);
        drop(fd);
        if let Some(h) = s.borrow().as_ref() {
            squall_tcpserver::AcceptHandle::remove(h);
        }
    })
    .unwrap();
    *slot.borrow_mut() = Some(handle);
    let _a = TcpStream::connect(addr).unwrap();
    let _b = TcpStream::connect(addr).unwrap();
    for _ in 0..200 {
        if got.get() > 0 {
            break;
        }
        sleep(Duration::from_millis(5)).await;
    }
    sleep(Duration::from_millis(20)).await;
    assert_eq!(got.get(), 1, "the batch stops once the handler is removed");
    assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
    slot.borrow_mut().take();
}

// Tornado: a server nobody keeps a reference to goes on serving (the loop's accept
// handler holds it). Dropping every TcpServer handle, or add_accept_handler's handle,
// without stop/remove leaves the listener accepting, not registered and readable with
// nobody accepting (which spun the loop).
async fn dropped_handles_keep_accepting() {
    let addr = {
        let server = TcpServer::new(|stream: IoStream, _addr: PeerAddr| async move {
            stream.write(&b"served"[..]).await
        })
        .unwrap();
        server.listen(0, "127.0.0.1").unwrap()[0]
    };
    let c = IoStream::connect(addr).await.unwrap();
    let got = squall_ioloop::with_timeout(Duration::from_secs(20), c.read_bytes(6, false))
        .await
        .expect("a dropped TcpServer stopped accepting")
        .unwrap();
    assert_eq!(&got[..], b"served");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let io_loop = IoLoop::current().unwrap();
    let got = Rc::new(Cell::new(0));
    let g = got.clone();
    drop(add_accept_handler(&io_loop, listener, move |fd, _addr| {
        g.set(g.get() + 1);
        drop(fd);
    }));
    let _c = TcpStream::connect(addr).unwrap();
    let accepted = squall_ioloop::with_timeout(Duration::from_secs(20), async {
        while got.get() == 0 {
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(accepted.is_ok(), "a dropped AcceptHandle stopped accepting");
}

// Our own: a panic in the handler itself (not in its future) is the connection's alone;
// the next connection is served. The handler runs inside the connection's task.
async fn handler_panic_is_contained() {
    let calls = Rc::new(Cell::new(0));
    let c2 = calls.clone();
    let server = TcpServer::new(move |stream: IoStream, addr: PeerAddr| {
        c2.set(c2.get() + 1);
        if c2.get() == 1 {
            panic!("handle_stream failed for {addr}");
        }
        async move { stream.write(&b"served"[..]).await }
    })
    .unwrap();
    let addr = server.listen(0, "127.0.0.1").unwrap()[0];
    let first = IoStream::connect(addr).await.unwrap();
    // The panicking connection's task drops its stream: the client sees end-of-file.
    let rest = first.read_until_close().await.unwrap();
    assert!(rest.is_empty());
    let second = IoStream::connect(addr).await.unwrap();
    assert_eq!(&second.read_bytes(6, false).await.unwrap()[..], b"served");
    assert_eq!(calls.get(), 2);
    server.stop();
}

squall_testing::backend_tests!(
    handle_stream_error_is_logged,
    handle_stream_may_be_async,
    handler_panic_is_contained,
    dropped_handles_keep_accepting,
    stop_twice,
    stop_in_callback,
    add_sockets_serves_prebound,
    accept_burst,
    tcp_client_connects_and_falls_back,
    reuse_port_lets_sockets_share,
    same_port_allocation,
    unix_socket_server,
    accept_handler_remove_inside_callback,
);

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    squall_testing::backend_tests!(unix_socket_abstract_name);
}

// A live Unix socket whose backlog is full is still live: bind_unix_socket says
// `AddrInUse` at once (its probe connect does not block until the server accepts) and
// leaves the socket file alone.
#[test]
fn unix_socket_live_with_a_full_backlog_is_kept() {
    use socket2::{Domain, SockAddr, Socket, Type};
    let dir = squall_testing::TempDir::new("unix-backlog").unwrap();
    let path = dir.path().join("sock");
    let listener = bind_unix_socket(&path, 0o600, 0).unwrap();
    // Fill the backlog (nobody accepts) until a connect would wait.
    let mut queued = Vec::new();
    loop {
        let s = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        match s.connect(&SockAddr::unix(&path).unwrap()) {
            Ok(()) => queued.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("connect: {e}"),
        }
        assert!(queued.len() < 1000, "the backlog never filled");
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.clone();
    std::thread::spawn(move || {
        let _ = tx.send(bind_unix_socket(&p, 0o600, 16).map(drop));
    });
    let res = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("bind_unix_socket blocked on a live socket with a full backlog");
    assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::AddrInUse);
    // The live server's socket file is still there, and its queue still its own.
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_socket());
    assert!(listener.accept().is_ok());
    drop(queued);
}

// Tornado: test_bind_start / test_listen_multi_reuse_port, with threads.
#[test]
fn server_threads_share_one_port() {
    let threads = ServerThreads::start(3, 0, "127.0.0.1", || {
        |stream: IoStream, _addr: PeerAddr| async move {
            let line = stream.read_until(b"\n", Some(100)).await?;
            let name = std::thread::current().name().unwrap_or("?").to_owned();
            stream
                .write(format!("{name}:{}", String::from_utf8_lossy(&line)))
                .await
        }
    })
    .unwrap();
    assert_eq!(threads.len(), 3);
    let addr = threads.local_addrs()[0];
    for _ in 0..30 {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"hi\n").unwrap();
        let mut buf = Vec::new();
        let mut b = [0u8; 64];
        while !buf.ends_with(b"\n") {
            let n = c.read(&mut b).unwrap();
            assert!(n > 0);
            buf.extend_from_slice(&b[..n]);
        }
        let s = String::from_utf8(buf).unwrap();
        assert!(
            s.starts_with("squall-server-") && s.ends_with(":hi\n"),
            "{s}"
        );
    }
    // A second server on the same port is refused, not let into the first one's
    // SO_REUSEPORT group (Tornado binds with reuse_port=False).
    let again = ServerThreads::start(2, addr.port(), "127.0.0.1", || {
        |_stream: IoStream, _addr: PeerAddr| async move { Ok::<(), std::io::Error>(()) }
    });
    assert_eq!(
        again.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::AddrInUse)
    );
    threads.stop();
    threads.join();
    assert!(TcpStream::connect(addr).is_err());
}

// The per-thread setup hook behind ServerThreads::start and HttpServer::start: each
// thread runs its setup with its own loop, current; the teardown runs after the loop
// stops; a failing setup stops the threads already started and returns its error.
#[test]
fn server_threads_spawn_runs_each_setup_on_its_own_loop() {
    use squall_tcpserver::Teardown;
    use std::sync::mpsc;
    let (tx, rx) = mpsc::channel::<(String, bool)>();
    let (down_tx, down_rx) = mpsc::channel::<String>();
    let setups = (0..3).map(|_| {
        let (tx, down_tx) = (tx.clone(), down_tx.clone());
        move |io_loop: &IoLoop| -> std::io::Result<Teardown> {
            let name = std::thread::current().name().unwrap_or("?").to_owned();
            let current = IoLoop::current().is_some_and(|l| &l == io_loop);
            tx.send((name.clone(), current)).unwrap();
            Ok(Box::new(move || down_tx.send(name).unwrap()))
        }
    });
    let threads = ServerThreads::spawn("hook", setups).unwrap();
    assert_eq!(threads.len(), 3);
    assert!(threads.local_addrs().is_empty());
    let mut seen: Vec<(String, bool)> = (0..3).map(|_| rx.recv().unwrap()).collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("hook-0".to_owned(), true),
            ("hook-1".to_owned(), true),
            ("hook-2".to_owned(), true)
        ]
    );
    threads.stop();
    threads.join();
    let mut down: Vec<String> = down_rx.try_iter().collect();
    down.sort();
    assert_eq!(down, vec!["hook-0", "hook-1", "hook-2"]);

    // The second setup fails: its error comes back, the first thread is stopped and
    // joined (its teardown has run when spawn returns).
    let (down_tx, down_rx) = mpsc::channel::<usize>();
    let setups = (0..3).map(|i| {
        let down_tx = down_tx.clone();
        move |_: &IoLoop| -> std::io::Result<Teardown> {
            if i == 1 {
                return Err(std::io::Error::other("setup 1 fails"));
            }
            Ok(Box::new(move || down_tx.send(i).unwrap()))
        }
    });
    let err = ServerThreads::spawn("failing", setups).unwrap_err();
    assert_eq!(err.to_string(), "setup 1 fails");
    assert_eq!(down_rx.try_iter().collect::<Vec<_>>(), vec![0]);
}
