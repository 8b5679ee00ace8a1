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
