//! Tornado's `tcpclient_test.py` (`TCPClientTest`) and `netutil_test.py`'s
//! `test_is_valid_ip`, with scripted resolvers, on every backend. The happy-eyeballs
//! state machine itself is tested in `src/connector.rs` (Tornado's `ConnectorTest`).

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use squall_iostream::IoStream;
use squall_tcpserver::{
    is_valid_ip, ConnectOptions, DefaultResolver, Family, Resolver, Resolving, TcpClient,
};

/// Generous: a test that waits for it has failed.
const PATIENCE: Duration = Duration::from_secs(20);

/// Resolves every name to a fixed list, and records the family it was asked for.
struct Scripted {
    addrs: Vec<SocketAddr>,
    asked: Arc<Mutex<Vec<Family>>>,
}

impl Scripted {
    fn new(addrs: &[SocketAddr]) -> Scripted {
        Scripted {
            addrs: addrs.to_vec(),
            asked: Arc::default(),
        }
    }
}

impl Resolver for Scripted {
    fn resolve(&self, _host: &str, port: u16, family: Family) -> Resolving {
        self.asked.lock().unwrap().push(family);
        let addrs = self
            .addrs
            .iter()
            .map(|a| SocketAddr::new(a.ip(), if a.port() == 0 { port } else { a.port() }))
            .collect();
        Box::pin(std::future::ready(Ok(addrs)))
    }
}

/// A resolver that never answers (Tornado's `TimeoutResolver`).
struct Never;

impl Resolver for Never {
    fn resolve(&self, _: &str, _: u16, _: Family) -> Resolving {
        Box::pin(std::future::pending())
    }
}

/// A loopback listener of the given family, or `None` (with a loud line) if this host
/// has no such loopback.
fn listener(ip: &str) -> Option<TcpListener> {
    match TcpListener::bind((ip.parse::<IpAddr>().unwrap(), 0)) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("SKIP: cannot bind {ip} ({e}); this host has no such loopback");
            None
        }
    }
}

/// A port on `ip` where nothing listens (bound, then closed).
fn refusing_port(ip: &str) -> Option<SocketAddr> {
    let l = listener(ip)?;
    let addr = l.local_addr().unwrap();
    drop(l);
    Some(addr)
}

/// Tornado's `do_test_connect`: connect, write, and read it on the server side.
async fn check_stream(stream: &IoStream, server: &TcpListener) {
    let (mut conn, _) = server.accept().unwrap();
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write(&b"hello"[..]).await.unwrap();
    let mut got = [0u8; 5];
    std::io::Read::read_exact(&mut conn, &mut got).unwrap();
    assert_eq!(&got, b"hello");
}

fn with_timeout() -> ConnectOptions {
    ConnectOptions::new().timeout(PATIENCE)
}

// Tornado: test_connect_ipv4_ipv4 (and test_connect_unspec_ipv4).
async fn test_connect_ipv4_ipv4() {
    let server = listener("127.0.0.1").unwrap();
    let port = server.local_addr().unwrap().port();
    let client = TcpClient::new();
    let s = client
        .connect_with("127.0.0.1", port, &with_timeout())
        .await
        .unwrap();
    check_stream(&s, &server).await;
    let s = client
        .connect_with("127.0.0.1", port, &with_timeout().family(Family::V4))
        .await
        .unwrap();
    check_stream(&s, &server).await;
}

// Tornado: test_connect_ipv6_ipv6 (and test_connect_unspec_ipv6).
async fn test_connect_ipv6_ipv6() {
    let Some(server) = listener("::1") else {
        return;
    };
    let port = server.local_addr().unwrap().port();
    let s = TcpClient::new()
        .connect_with("[::1]", port, &with_timeout())
        .await
        .unwrap();
    check_stream(&s, &server).await;
    assert!(s.peer_addr().unwrap().is_ipv6());
}

// Tornado: test_connect_ipv4_dual, with a scripted "localhost" that lists ::1 first
// where nothing listens: the refusal starts the IPv4 family at once, without waiting
// for the happy-eyeballs delay (set to an hour here, so waiting would time out).
async fn dual_stack_failure_starts_the_other_family_at_once() {
    let server = listener("127.0.0.1").unwrap();
    let port = server.local_addr().unwrap().port();
    let Some(v6) = refusing_port("::1") else {
        return;
    };
    let resolver = Scripted::new(&[
        SocketAddr::new(v6.ip(), port),
        SocketAddr::new("127.0.0.1".parse().unwrap(), port),
    ]);
    let mut client = TcpClient::with_resolver(resolver);
    client.set_happy_eyeballs_delay(Duration::from_secs(3600));
    let s = client
        .connect_with("localhost", port, &with_timeout())
        .await
        .unwrap();
    assert!(s.peer_addr().unwrap().is_ipv4());
    check_stream(&s, &server).await;
}

// The family option reaches the resolver and filters what it returns.
async fn family_filters_addresses() {
    let server = listener("127.0.0.1").unwrap();
    let port = server.local_addr().unwrap().port();
    let resolver = Scripted::new(&["[::1]:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap()]);
    let asked = resolver.asked.clone();
    let mut client = TcpClient::with_resolver(resolver);
    client.set_happy_eyeballs_delay(Duration::from_secs(3600));
    let s = client
        .connect_with("dual", port, &with_timeout().family(Family::V4))
        .await
        .unwrap();
    assert!(s.peer_addr().unwrap().is_ipv4());
    check_stream(&s, &server).await;
    assert_eq!(*asked.lock().unwrap(), vec![Family::V4]);
    // No address of the family left: NotFound, with no attempt made.
    let only_v4 = TcpClient::with_resolver(Scripted::new(&["127.0.0.1:0".parse().unwrap()]));
    let err = only_v4
        .connect_with("v4only", port, &with_timeout().family(Family::V6))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
}

/// No timeout: a failure must end the connect by itself (the test harness's own
/// deadline catches one that waits for something else).
fn no_timeout() -> ConnectOptions {
    ConnectOptions::new()
}

/// A timeout past what the clock can hold (`Duration::MAX`) is no deadline at all, not
/// an overflow panic in the connect.
async fn a_timeout_beyond_the_clock_is_no_deadline() {
    let l = listener("127.0.0.1").unwrap();
    let port = l.local_addr().unwrap().port();
    let stream = TcpClient::new()
        .connect_with(
            "127.0.0.1",
            port,
            &ConnectOptions::new().timeout(Duration::MAX),
        )
        .await
        .unwrap();
    assert!(!stream.closed());
}

// Tornado: test_refused_ipv4: the real OS error.
async fn test_refused_ipv4() {
    let addr = refusing_port("127.0.0.1").unwrap();
    let err = TcpClient::new()
        .connect_with("127.0.0.1", addr.port(), &no_timeout())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    assert!(err.raw_os_error().is_some());
}

// Tornado: netutil_test.py's resolver tests, whose `resolve(host, port, family)` gives
// only addresses of the family asked for (getaddrinfo with that family): an address of
// another family is no answer, and a literal of the other family is an error.
async fn default_resolver_honours_family() {
    let r = DefaultResolver;
    let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let v6: SocketAddr = "[::1]:80".parse().unwrap();
    assert_eq!(r.resolve("127.0.0.1", 80, Family::Any).await.unwrap(), [v4]);
    assert_eq!(r.resolve("127.0.0.1", 80, Family::V4).await.unwrap(), [v4]);
    assert_eq!(r.resolve("[::1]", 80, Family::V6).await.unwrap(), [v6]);
    for (host, family) in [("127.0.0.1", Family::V6), ("::1", Family::V4)] {
        let err = r.resolve(host, 80, family).await.unwrap_err();
        assert_eq!(
            err.kind(),
            io::ErrorKind::NotFound,
            "{host} {family:?}: {err}"
        );
    }
    // A name: whatever it resolves to, only the family asked for comes back.
    for family in [Family::V4, Family::V6] {
        if let Ok(addrs) = r.resolve("localhost", 80, family).await {
            assert!(!addrs.is_empty(), "{family:?}: an empty answer is an error");
            assert!(
                addrs.iter().all(|a| a.is_ipv4() == (family == Family::V4)),
                "{family:?}: {addrs:?}"
            );
        }
    }
}

// Tornado: test_source_ip_fail: a source address this host does not have.
async fn test_source_ip_fail() {
    let server = listener("127.0.0.1").unwrap();
    let port = server.local_addr().unwrap().port();
    let err = TcpClient::new()
        .connect_with(
            "127.0.0.1",
            port,
            &no_timeout().source_ip("8.8.8.8".parse().unwrap()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrNotAvailable, "{err}");
}

// Tornado: test_source_ip_success.
async fn test_source_ip_success() {
    let server = listener("127.0.0.1").unwrap();
    let port = server.local_addr().unwrap().port();
    let s = TcpClient::new()
        .connect_with(
            "127.0.0.1",
            port,
            &with_timeout().source_ip("127.0.0.1".parse().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(
        s.local_addr().unwrap().ip(),
        "127.0.0.1".parse::<IpAddr>().unwrap()
    );
    check_stream(&s, &server).await;
}

// Tornado: test_source_port_fail, with a port certainly in use (Tornado uses port 1,
// which root may bind).
async fn test_source_port_fail() {
    let server = listener("127.0.0.1").unwrap();
    let addr = server.local_addr().unwrap();
    let err = TcpClient::new()
        .connect_with(
            "127.0.0.1",
            addr.port(),
            &no_timeout().source_ip(addr.ip()).source_port(addr.port()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
}

// Tornado: test_connect_timeout: the timeout covers the lookup.
async fn test_connect_timeout() {
    let t0 = Instant::now();
    let err = TcpClient::with_resolver(Never)
        .connect_with(
            "1.2.3.4",
            12345,
            &ConnectOptions::new().timeout(Duration::from_millis(50)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(t0.elapsed() >= Duration::from_millis(50));
}

/// A loopback address whose connects hang: a listener with a backlog of 0 whose one
/// queue slot is taken (Linux then drops further SYNs). The listener and the queued
/// connection must stay alive.
#[cfg(target_os = "linux")]
fn hanging_v4() -> (Vec<std::net::TcpListener>, std::net::TcpStream, SocketAddr) {
    let l = squall_tcpserver::bind_sockets(0, "127.0.0.1", Family::V4, 0, false).unwrap();
    let addr = l[0].local_addr().unwrap();
    let queued = std::net::TcpStream::connect(addr).unwrap();
    (l, queued, addr)
}

// Happy eyeballs: the first family hangs, the second starts after the delay (no
// earlier) and wins; the hanging attempt is closed.
#[cfg(target_os = "linux")]
async fn second_family_starts_after_the_delay() {
    let Some(v6) = listener("::1") else {
        return;
    };
    let (_keep, _queued, hang) = hanging_v4();
    let resolver = Scripted::new(&[hang, v6.local_addr().unwrap()]);
    let mut client = TcpClient::with_resolver(resolver);
    let delay = Duration::from_millis(100);
    client.set_happy_eyeballs_delay(delay);
    let t0 = Instant::now();
    let s = client
        .connect_with("slow-v4", 0, &with_timeout())
        .await
        .unwrap();
    assert!(t0.elapsed() >= delay);
    assert!(s.peer_addr().unwrap().is_ipv6());
    check_stream(&s, &v6).await;
}

// The timeout spans the attempts too: a connect that hangs times out.
#[cfg(target_os = "linux")]
async fn timeout_spans_the_attempts() {
    let (_keep, _queued, hang) = hanging_v4();
    let client = TcpClient::with_resolver(Scripted::new(&[hang]));
    let err = client
        .connect_with(
            "slow",
            0,
            &ConnectOptions::new().timeout(Duration::from_millis(100)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
}

squall_testing::backend_tests!(
    test_connect_ipv4_ipv4,
    test_connect_ipv6_ipv6,
    dual_stack_failure_starts_the_other_family_at_once,
    family_filters_addresses,
    test_refused_ipv4,
    default_resolver_honours_family,
    test_source_ip_fail,
    test_source_ip_success,
    test_source_port_fail,
    test_connect_timeout,
    a_timeout_beyond_the_clock_is_no_deadline,
);

/// How many threads of this process are resolver threads (their names, cut to 15
/// bytes by the kernel, start with "squall-resolve").
#[cfg(target_os = "linux")]
fn resolver_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("squall-resolve"))
        .count()
}

// Tornado's resolvers run getaddrinfo on a bounded pool (ThreadedResolver: 10 threads,
// DefaultExecutorResolver: the loop's executor), so a burst of lookups waits for a
// thread instead of starting one thread each (hundreds at once, which a container's
// thread limit refuses, failing every connect).
#[cfg(target_os = "linux")]
async fn default_resolver_threads_are_bounded() {
    let io_loop = squall_ioloop::IoLoop::current().unwrap();
    let lookups: Vec<_> = (0..200)
        .map(|_| io_loop.spawn(DefaultResolver.resolve("localhost", 80, Family::Any)))
        .collect();
    // The next turn polls every lookup once (each hands its work to a thread); this
    // task runs in the turn after that.
    squall_ioloop::sleep(Duration::ZERO).await;
    let threads = resolver_threads();
    for lookup in lookups {
        let addrs = lookup.await.unwrap().unwrap();
        assert!(!addrs.is_empty());
    }
    assert!(threads <= 10, "{threads} resolver threads at once");
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    squall_testing::backend_tests!(
        second_family_starts_after_the_delay,
        timeout_spans_the_attempts,
        default_resolver_threads_are_bounded,
    );
}

// Tornado's netutil_test.py: test_is_valid_ip.
#[test]
fn test_is_valid_ip() {
    for ok in [
        "127.0.0.1",
        "4.4.4.4",
        "::1",
        "2620:0:1cfe:face:b00c::3",
        "fe80::1%eth0",
        "fe80::1%2",
        "fe80::1%enp0s31f6.100",
    ] {
        assert!(is_valid_ip(ok), "{ok}");
    }
    let long = "a".repeat(100);
    // A zone is an interface name (IFNAMSIZ: 15 bytes at most) or an index.
    let long_zone = format!("fe80::1%{}", "e".repeat(16));
    let huge_index = "fe80::1%99999999999".to_owned();
    for bad in [
        "www.google.com",
        "localhost",
        "4.4.4.4<",
        " 127.0.0.1",
        "",
        " ",
        "\n",
        "\x00",
        long.as_str(),
        "127.0.0.1\x00",
        "fe80::1%",
        "127.0.0.1%eth0",
        "[::1]",
        long_zone.as_str(),
        huge_index.as_str(),
        "fe80::1%eth 0",
    ] {
        assert!(!is_valid_ip(bad), "{bad:?}");
    }
}
