//! Testing support for squall applications and for squall itself: Tornado's
//! `tornado.testing`.
//!
//! - [`gen_test`]: an `async fn` test on a fresh `IoLoop`, failed with a clear message
//!   when it outlives its timeout (`#[gen_test(timeout = 30)]`; `ASYNC_TEST_TIMEOUT`);
//!   `#[gen_test(backends)]` runs it on every poller backend.
//! - [`AsyncHttpTestCase`]: an application served on an unused port of the test's own
//!   loop, with `get_url` and `fetch`; with the `tls` feature, over HTTPS with a
//!   bundled test certificate (`AsyncHttpTestCase::start_https`, Tornado's
//!   `AsyncHTTPSTestCase`, and `test_tls_server_config`).
//! - [`bind_unused_port`] and [`free_port`].
//! - [`ExpectLog`]: assert that a log line was (or was not) written, over a capturing
//!   `log` logger ([`install_logger`], [`logs_here`], [`wait_for_record`]...).
//! - Backend matrices: [`BACKENDS`], [`new_loop`], [`run_on`], [`for_each_backend`] and
//!   the [`backend_tests!`] macro (one `#[test]` per function and backend).
//! - For squall's own tests: [`tcp_pair`], [`start_guarded`], [`have_tool`] for
//!   interop tests (a loud skip, a failure under `CI=true`), and on Unix
//!   [`open_fds`] and the `RLIMIT_NOFILE` helpers ([`set_nofile`], [`fill_fd_table`]).
//!
//! Use it as a dev-dependency.
//!
//! # Example
//!
//! A test file (`tests/app.rs`) of an application:
//!
//! ```
//! use squall_httpserver::{HttpServerRequest, Response};
//! use squall_testing::{AsyncHttpTestCase, ExpectLog};
//!
//! async fn app(req: HttpServerRequest) -> Response {
//!     if req.path() == "/fail" {
//!         log::warn!(target: "app", "failing on purpose");
//!         return Response::text("no").with_status(http::StatusCode::INTERNAL_SERVER_ERROR);
//!     }
//!     Response::text("Hello, world!")
//! }
//!
//! // In a test file this is `#[squall_testing::gen_test(timeout = 10)] async fn
//! // test_app() { ... }`; the attribute expands to this call.
//! # fn main() {
//! squall_testing::run_test("test_app", None, || async {
//!     let app = AsyncHttpTestCase::start(app).unwrap();
//!     assert_eq!(app.fetch("/").await.unwrap().text(), "Hello, world!");
//!     let expect = ExpectLog::new("app", "failing on purpose");
//!     assert_eq!(app.fetch("/fail").await.unwrap().code, 500);
//!     expect.check();
//! });
//! # }
//! ```
//!
//! # Differences from Tornado
//!
//! - No test-case classes: Rust tests are functions. `AsyncTestCase`'s loop is the one
//!   [`gen_test`] makes per test; `AsyncHTTPTestCase` is a value the test makes on it
//!   and drops at its end (`tearDown`).
//! - `gen_test`'s default timeout is 10 s (Tornado: 5 s), since CI machines are shared;
//!   `ASYNC_TEST_TIMEOUT` works as in Tornado.
//! - [`ExpectLog`] matches a target prefix and a substring (Tornado: a logger and a
//!   regular expression), and can also forbid a line. [`ExpectLog::level`] is Tornado's
//!   `level=`; without it every level counts (Tornado 6 counts every level too, with a
//!   deprecation warning below WARNING). Tornado's `logged_stack` has no counterpart:
//!   `log` records carry no exception.
//! - [`AsyncHttpTestCase::fetch_request`] always returns a non-2xx answer as a response
//!   (Tornado's `fetch(raise_error=True)` raises); its client's own `fetch` raises.
#![warn(unreachable_pub)]

#[cfg(unix)]
mod fds;
mod http;
mod logging;
mod port;
#[cfg(unix)]
mod rlimit;
mod run;
mod streams;
#[cfg(feature = "tls")]
mod tls;
mod tools;

#[cfg(unix)]
pub use fds::open_fds;
pub use http::AsyncHttpTestCase;
pub use logging::{
    install_logger, install_logger_at, logs_containing, logs_here, records, records_of,
    wait_for_record, wait_until, Captured, ExpectLog,
};
pub use port::{bind_unused_port, free_port};
#[cfg(unix)]
pub use rlimit::{fill_fd_table, set_nofile};
pub use run::{
    default_timeout, for_each_backend, new_loop, run_on, run_test, run_test_on_every_backend,
    start_guarded, TestOutput, BACKENDS, PATIENCE,
};
/// For [`backend_tests!`]'s expansion: the platform `cfg` lists live in squall-poller.
#[doc(hidden)]
pub use squall_poller as __squall_poller;
pub use squall_testing_macros::gen_test;
pub use streams::{tcp_pair, tcp_with_std_peer};
#[cfg(feature = "tls")]
pub use tls::{test_tls_server_config, TEST_CERT_PEM, TEST_KEY_PEM};
pub use tools::{have_tool, nginx_path, run_nginx, under_ci, wait_listening, KillOnDrop, TempDir};
