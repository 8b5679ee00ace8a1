//! Gzip request bodies (the `gzip` feature): each piece of a `Content-Encoding: gzip`
//! body is inflated before the delegate sees it, the inflated size held to the body
//! limit.

use std::time::Instant;

use bytes::Bytes;
use squall_httputil::GzipInflater;

use super::{Busy, Flow};
use crate::delegate::HttpServerConnectionDelegate;
use crate::transport::Transport;
use crate::writer::ResponseWriter;

impl<T: Transport, D: HttpServerConnectionDelegate> Busy<'_, T, D> {
    /// Inflate `data` (the next piece of the body as received) and hand it to the
    /// delegate in pieces of at most `chunk_size` (each step bound by `body_deadline`); `Some(flow)` if the request is over
    /// (the delegate ended it, or the gzip stream is bad or too large: answered as a
    /// body error). The inflater is made on the first piece.
    pub(super) async fn deliver_inflated(
        &mut self,
        msg: &mut D::Message<'_>,
        w: &mut ResponseWriter<'_>,
        data: &[u8],
        inflater: &mut Option<GzipInflater>,
        chunk_size: usize,
        body_deadline: Option<Instant>,
    ) -> Option<Flow> {
        let limit = self.shared.borrow().body_limit;
        let inf = inflater.get_or_insert_with(|| GzipInflater::new(limit));
        let mut pos = 0;
        loop {
            let mut piece = Vec::new();
            match inf.inflate(&data[pos..], &mut piece, chunk_size) {
                Ok(used) => pos += used,
                Err(e) => return Some(self.body_error(msg, e)),
            }
            let full = piece.len() >= chunk_size;
            if !piece.is_empty() {
                if let Some(flow) = self
                    .deliver(msg, w, Bytes::from(piece), body_deadline)
                    .await
                {
                    return Some(flow);
                }
            }
            if pos >= data.len() && !full {
                return None;
            }
        }
    }
}
