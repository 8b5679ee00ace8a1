//! Tornado's `testing_test.py`, in our words: the timeout of an async test, gen_test's
//! arguments, ExpectLog's required and forbidden lines, bind_unused_port, and the
//! AsyncHTTPTestCase harness.

use std::cell::RefCell;
use std::time::Duration;

use http::StatusCode;
use squall_httpserver::{HttpServerRequest, Response};
use squall_ioloop::IoLoop;
use squall_testing::{
    bind_unused_port, for_each_backend, gen_test, AsyncHttpTestCase, ExpectLog, BACKENDS,
};

// AsyncTestCaseTest.test_wait_timeout / GenTest.test_timeout: a test that outlives its
// timeout fails, and says so.
#[gen_test(timeout = 0.05)]
#[should_panic(expected = "timed out after")]
async fn test_timeout_fails_the_test() {
    std::future::pending::<()>().await;
}

#[gen_test]
async fn test_no_timeout() {
    squall_ioloop::sleep(Duration::from_millis(1)).await;
}

// GenTest.test_with_method_args is not possible in Rust (no self); the Result form is.
#[gen_test(timeout = 5)]
async fn test_returns_result() -> Result<(), String> {
    let n: u32 = "42".parse().map_err(|e| format!("{e}"))?;
    assert_eq!(n, 42);
    Ok(())
}

thread_local! {
    static SEEN: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

#[gen_test(backends)]
async fn runs_on_every_backend() {
    let name = IoLoop::current().expect("a current loop").poller_name();
    SEEN.with(|s| s.borrow_mut().push(name));
}

#[test]
fn test_backends_all_ran() {
    SEEN.with(|s| s.borrow_mut().clear());
    runs_on_every_backend();
    let seen = SEEN.with(|s| s.borrow().clone());
    assert_eq!(seen, BACKENDS.to_vec());
}

#[test]
fn test_backends_failure_names_the_backend() {
    let failed = std::panic::catch_unwind(|| {
        squall_testing::run_test_on_every_backend("t", None, || async { Err::<(), _>("boom") })
    })
    .unwrap_err();
    let msg = failed.downcast_ref::<String>().unwrap();
    assert_eq!(msg, &format!("test t [{}] failed: \"boom\"", BACKENDS[0]));
}

#[test]
fn test_backends_panic_names_the_backend() {
    let failed = std::panic::catch_unwind(|| {
        squall_testing::run_test_on_every_backend("t", None, || async {
            let name = IoLoop::current().unwrap().poller_name();
            assert!(name != BACKENDS[0], "failed on {name}");
        })
    })
    .unwrap_err();
    let msg = failed.downcast_ref::<String>().unwrap();
    assert_eq!(
        msg,
        &format!("test t [{0}] failed: failed on {0}", BACKENDS[0])
    );
}

#[test]
fn test_for_each_backend() {
    let count = std::rc::Rc::new(std::cell::Cell::new(0));
    let c = count.clone();
    for_each_backend(move || {
        let c = c.clone();
        async move { c.set(c.get() + 1) }
    });
    assert_eq!(count.get(), BACKENDS.len());
}

// ExpectLogTest.test_required_not_met.
#[test]
#[should_panic(expected = "did not get expected log message")]
fn test_expect_log_required_not_met() {
    let _expect = ExpectLog::new("testing_test", "never logged");
}

#[test]
fn test_expect_log_required_met() {
    let expect = ExpectLog::new("testing", "hello there");
    log::warn!(target: "testing::sub", "hello there, 1");
    log::warn!(target: "other", "hello there, not counted");
    assert_eq!(expect.check(), 1);
}

// ExpectLogTest's level: only a line at the given level counts.
#[test]
fn test_expect_log_level() {
    let expect = ExpectLog::new("level_test", "at a level").level(log::Level::Info);
    log::debug!(target: "level_test", "at a level below");
    assert!(expect.matched().is_empty());
    log::info!(target: "level_test", "at a level that counts");
    assert_eq!(expect.check(), 1);
}

#[test]
#[should_panic(
    expected = "did not get expected log message \"only info\" from target \"level_test\" at level INFO"
)]
fn test_expect_log_level_not_met() {
    let _expect = ExpectLog::new("level_test", "only info").level(log::Level::Info);
    log::warn!(target: "level_test", "only info, but a warning");
}

#[test]
fn test_expect_log_not_required() {
    let expect = ExpectLog::new("testing", "maybe").required(false);
    assert!(expect.matched().is_empty());
}

#[test]
#[should_panic(expected = "got forbidden log message")]
fn test_expect_log_forbidden() {
    let expect = ExpectLog::new("forbid_test", "bad thing").forbid();
    log::error!(target: "forbid_test", "a bad thing happened");
    expect.check();
}

#[test]
fn test_bind_unused_port() {
    let (listener, port) = bind_unused_port().unwrap();
    assert_ne!(port, 0);
    assert_eq!(listener.local_addr().unwrap().port(), port);
    std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_listener2, port2) = bind_unused_port().unwrap();
    assert_ne!(port, port2);
}

async fn app(req: HttpServerRequest) -> Response {
    match req.path() {
        "/" => Response::text("Hello, world!"),
        _ => Response::text("nope").with_status(StatusCode::NOT_FOUND),
    }
}

// AsyncHTTPTestCaseTest.test_fetch_segment / test_fetch_full_http_url.
#[gen_test]
async fn test_http_test_case() {
    let case = AsyncHttpTestCase::start(app).unwrap();
    let port = case.get_http_port();
    assert_eq!(case.get_url("/x"), format!("http://127.0.0.1:{port}/x"));
    let r = case.fetch("/").await.unwrap();
    assert_eq!(r.text(), "Hello, world!");
    let r = case.fetch(&case.get_url("/")).await.unwrap();
    assert_eq!(r.text(), "Hello, world!");
    // Non-2xx is a response here, as in Tornado's AsyncHTTPTestCase.fetch.
    let r = case.fetch("/missing").await.unwrap();
    assert_eq!(r.code, 404);
    let client = case.http_client().clone();
    drop(case);
    // Dropped: the client's kept connections are closed.
    assert_eq!(client.idle_connections(), 0);
}

// Tornado's tearDown: stop, close_all_connections, close the client. A keep-alive
// peer of the test's server sees its end of file once the case is dropped, and the
// port refuses new connections at once.
#[gen_test(timeout = 10)]
async fn test_http_test_case_teardown_closes_connections() {
    let case = AsyncHttpTestCase::start(app).unwrap();
    let port = case.get_http_port();
    let peer =
        squall_iostream::IoStream::connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .unwrap();
    peer.write(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..])
        .await
        .unwrap();
    peer.read_until(b"Hello, world!", None).await.unwrap();
    drop(case);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert_eq!(&peer.read_until_close().await.unwrap()[..], b"");
}

/// Visibility and literal forms the macro keeps: `pub`, and a timeout written `1_0`.
#[gen_test(timeout = 1_0)]
pub async fn test_a_public_gen_test_with_a_spelled_out_timeout() {}

/// A test that fails or times out still closes its loop with its fds (Tornado's
/// tearDown always does), even when a task kept the loop.
#[test]
fn test_a_failed_or_timed_out_test_closes_its_loop() {
    for timeout in [Duration::from_millis(20), Duration::from_secs(30)] {
        let (listener, port) = bind_unused_port().unwrap();
        let r = std::panic::catch_unwind(move || {
            squall_testing::run_test("t", Some(timeout), move || async move {
                let l = IoLoop::current().unwrap();
                l.add_handler(listener, squall_ioloop::Interest::READ, |_, _| ())
                    .unwrap();
                let kept = l.clone();
                drop(l.spawn(async move {
                    let _kept = kept;
                    std::future::pending::<()>().await
                }));
                if timeout > Duration::from_secs(1) {
                    panic!("the test fails");
                }
                std::future::pending::<()>().await
            })
        });
        assert!(r.is_err());
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the listener of a test that failed ({timeout:?}) is still open"
        );
    }
}

// AsyncHTTPTestCase.fetch takes a full URL whatever the case of its scheme.
#[gen_test(timeout = 10)]
async fn test_fetch_takes_a_full_url_in_any_case() {
    let case =
        AsyncHttpTestCase::start(|_req: HttpServerRequest| async { Response::text("hi") }).unwrap();
    let r = case
        .fetch(&format!("HTTP://127.0.0.1:{}/", case.get_http_port()))
        .await
        .unwrap();
    assert_eq!(r.code, 200);
}
