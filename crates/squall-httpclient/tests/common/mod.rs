//! What the client's test binaries share.

use std::time::Duration;

use http::Method;
use squall_httpclient::{HttpClient, HttpRequest};

/// POST 64 MiB (more than the socket buffers of both sides hold) with `request`, to a
/// server that answers `413` with the body `too much` before reading the upload and
/// then reads no more, and check that the answer comes back, not a timeout.
pub(crate) async fn upload_answered_early(client: &HttpClient, request: HttpRequest) {
    let e = client
        .fetch(
            request
                .method(Method::POST)
                .body(vec![b'x'; 64 << 20])
                .request_timeout(Duration::from_secs(20)),
        )
        .await
        .unwrap_err();
    let response = e.response().unwrap_or_else(|| panic!("{e:?}"));
    assert_eq!(response.code, 413);
    assert_eq!(response.text(), "too much");
}

/// A door a test opens once: every waiter, before or after, goes through.
#[derive(Clone, Default)]
pub(crate) struct Gate(std::rc::Rc<std::cell::RefCell<(bool, Vec<std::task::Waker>)>>);

impl Gate {
    pub(crate) fn open(&self) {
        let mut gate = self.0.borrow_mut();
        gate.0 = true;
        gate.1.drain(..).for_each(std::task::Waker::wake);
    }

    pub(crate) async fn wait(&self) {
        std::future::poll_fn(|cx| {
            let mut gate = self.0.borrow_mut();
            if gate.0 {
                std::task::Poll::Ready(())
            } else {
                gate.1.push(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
        .await
    }
}
