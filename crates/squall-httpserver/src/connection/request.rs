//! One request through its delegate: the head, the body piece by piece (inflated when
//! gzip-encoded), the end, and what a panic or a malformed body means for the
//! connection.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use squall_httputil::h1::Event;
use squall_httputil::{write_error_response, ParseError, RequestHead};
use squall_ioloop::{instant_after, panic_message};

use super::logs::{log_io_error, notify, Peer};
use super::{Busy, End, Flow, ReadOutcome};
use crate::delegate::{HttpMessageDelegate, HttpServerConnectionDelegate, RequestStart};
use crate::transport::Transport;
use crate::writer::{release_output, Resp, ResponseWriter};
use crate::xheaders;

impl<'c, T: Transport, D: HttpServerConnectionDelegate> Busy<'c, T, D> {
    /// One request, from its head to the end of its response.
    ///
    /// This and [`request_inner`](Self::request_inner) are plain functions returning
    /// `async move` blocks: an `async fn` would keep its arguments twice, and copy the
    /// request head (about 230 bytes) and `RequestStart` (about 330) once more per
    /// request.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn stores its arguments twice"
    )]
    pub(super) fn request<'a>(
        &'a mut self,
        mut head: RequestHead,
    ) -> impl Future<Output = Flow> + use<'a, 'c, T, D> {
        async move {
            let shared = self.shared;
            // The loop's turn time: one clock reading shared by the requests parsed in
            // one turn (the turn began when the poll that found their bytes returned).
            let start_time = squall_ioloop::turn_time();
            let params = self.conn.params.clone();
            let config = &params.config;
            // With `xheaders` off the address and scheme are the connection's, read
            // where they are kept when the request's start is built: an `Option<IpAddr>`
            // (17 bytes aligned to one) returned in a tuple and taken apart again was
            // read back in pieces just written, a store-forwarding stall per request.
            let proxied = if config.xheaders {
                Some(xheaders::resolve(config, &head, self.conn.remote_ip))
            } else {
                None
            };
            macro_rules! remote_ip {
                () => {
                    match &proxied {
                        Some((ip, _)) => *ip,
                        None => self.conn.remote_ip,
                    }
                };
            }
            let access = {
                let mut s = shared.borrow_mut();
                let on = s.access_log();
                if on {
                    s.access
                        .begin(&head.method, head.target_raw(), remote_ip!());
                }
                on
            };
            let gzip = xheaders::decompress(config, &mut head);
            shared.borrow_mut().begin_request(config);
            let delegate = self.conn.delegate.clone();
            // A panic in the server delegate's `start_request` is a panicking handler
            // too: 500, and the connection closes (the body, if any, is left unread).
            let made = catch_unwind(AssertUnwindSafe(|| delegate.start_request(&self.conn.info)));
            let flow = match made {
                Err(p) => self.after_panic(&*p, false),
                Ok(mut msg) => {
                    let mut w = ResponseWriter::new(shared);
                    // Built where it is passed: a `RequestStart` (about 250 bytes) made in a
                    // local first is one more copy of it per request.
                    macro_rules! start {
                        () => {
                            RequestStart {
                                head,
                                remote_ip: by_parts(remote_ip!()),
                                protocol: match &proxied {
                                    Some((_, scheme)) => scheme.clone(),
                                    None => params.scheme.clone(),
                                },
                                connection: (*self.conn.info).clone(),
                                start_time,
                            }
                        };
                    }
                    if shared.borrow_mut().h1.skip_empty_body() {
                        // The head is the whole request: one delegate step.
                        shared.borrow_mut().body_done = true;
                        let done = self
                            .drive(pin!(msg.request_received(start!(), &mut w)), None)
                            .await;
                        match self.step_ended(&mut msg, done, true) {
                            Some(flow) => flow,
                            None => self.request_end(&mut w),
                        }
                    } else {
                        self.request_inner(&mut msg, &mut w, start!(), gzip).await
                    }
                }
            };
            if access {
                let s = &mut *shared.borrow_mut();
                if s.resp != Resp::NotStarted {
                    s.access.log(s.status, start_time.elapsed());
                }
            }
            flow
        }
    }

    /// The delegate's steps for a request with a body: its head, its body piece by
    /// piece, its end; then the response's end.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn stores its arguments twice"
    )]
    fn request_inner<'a, 'm, 'w>(
        &'a mut self,
        msg: &'a mut D::Message<'m>,
        w: &'a mut ResponseWriter<'w>,
        start: RequestStart,
        gzip: bool,
    ) -> impl Future<Output = Flow> + use<'a, 'c, 'm, 'w, T, D> {
        async move {
            let shared = self.shared;
            let expect_continue = start.head.expect_continue;
            let chunk_size = self.conn.params.config.chunk_size.max(1);
            let started = self.drive(pin!(msg.headers_received(start, w)), None).await;
            if let Some(flow) = self.step_ended(msg, started, false) {
                return flow;
            }
            // Counted from here, once the delegate has taken the head, as Tornado counts
            // it (its `with_timeout` wraps the body's read, after `headers_received`): a
            // delegate that takes its time over the head does not spend the client's.
            let body_deadline = shared
                .borrow()
                .body_timeout
                .map(|t| instant_after(Instant::now(), t));
            let idle = self.conn.params.config.idle_connection_timeout;
            #[cfg(feature = "gzip")]
            let mut inflater: Option<squall_httputil::GzipInflater> = None;
            let mut continue_sent = false;
            loop {
                if shared.borrow().detach.is_some() {
                    // Handed over: the rest of the input is the new protocol's.
                    return Flow::Close(End::Detach);
                }
                if shared.borrow().resp == Resp::Finished {
                    // Answered before the body was read: the rest of the body cannot be
                    // skipped safely, so the connection closes after the response.
                    self.tell_closed(msg);
                    return Flow::Close(End::Linger);
                }
                let event = shared.borrow_mut().h1.poll(self.inbuf);
                match event {
                    Some(Event::Data(mut data)) => {
                        #[cfg(feature = "gzip")]
                        if gzip {
                            let inflated = self
                                .deliver_inflated(
                                    msg,
                                    w,
                                    &data,
                                    &mut inflater,
                                    chunk_size,
                                    body_deadline,
                                )
                                .await;
                            if let Some(flow) = inflated {
                                return flow;
                            }
                            continue;
                        }
                        #[cfg(not(feature = "gzip"))]
                        let _: bool = gzip; // never set without the feature
                        while !data.is_empty() {
                            let piece = data.split_to(chunk_size.min(data.len()));
                            if let Some(flow) = self.deliver(msg, w, piece, body_deadline).await {
                                return flow;
                            }
                        }
                    }
                    Some(Event::End) => {
                        #[cfg(feature = "gzip")]
                        if let Some(inf) = &inflater {
                            if let Err(e) = inf.finish() {
                                return self.body_error(msg, e);
                            }
                        }
                        shared.borrow_mut().body_done = true;
                        break;
                    }
                    Some(Event::Error(e)) => return self.body_error(msg, e),
                    Some(_) => {
                        log::error!("HTTP/1 connection state machine out of step; closing");
                        self.tell_closed(msg);
                        return Flow::Close(End::Done);
                    }
                    None => {
                        if expect_continue
                            && !continue_sent
                            && shared.borrow().resp == Resp::NotStarted
                        {
                            // The delegate did not answer from the head: it wants the body.
                            let s = &mut *shared.borrow_mut();
                            s.h1.write_continue(&mut s.out);
                            continue_sent = true;
                        }
                        if !shared.borrow().out.is_empty() {
                            if let Err(end) = self.flush().await {
                                self.tell_closed(msg);
                                return Flow::Close(end);
                            }
                        }
                        let mut deadline = instant_after(Instant::now(), idle);
                        if let Some(b) = body_deadline {
                            deadline = deadline.min(b);
                        }
                        let out_cap = release_output(shared);
                        let outcome = self.conn.read(self.inbuf, out_cap, deadline).await;
                        match outcome {
                            ReadOutcome::Data => continue,
                            ReadOutcome::Eof => {
                                let _ = shared.borrow_mut().h1.read_eof(self.inbuf);
                                log::debug!(
                                    "connection from {} closed in the middle of a request body",
                                    Peer(&self.conn.info)
                                );
                            }
                            ReadOutcome::Timeout => {
                                log::debug!(
                                    "closing connection from {}: body timeout",
                                    Peer(&self.conn.info)
                                );
                            }
                            ReadOutcome::Shutdown => {}
                            ReadOutcome::Error(e) => {
                                log_io_error("error reading a request body", &e)
                            }
                        }
                        self.tell_closed(msg);
                        return Flow::Close(End::Dead);
                    }
                }
            }
            let finished = self.drive(pin!(msg.finish(w)), None).await;
            if let Some(flow) = self.step_ended(msg, finished, true) {
                return flow;
            }
            self.request_end(w)
        }
    }

    /// After the delegate's last step: finish a response it left open, answer `500`
    /// for one it never started, and go on unless the output broke.
    fn request_end(&mut self, w: &mut ResponseWriter<'_>) -> Flow {
        let shared = self.shared;
        {
            let resp = shared.borrow().resp;
            match resp {
                Resp::NotStarted => {
                    log::error!(
                        "HTTP delegate finished a request without a response; answering 500"
                    );
                    let _ = w.respond(StatusCode::INTERNAL_SERVER_ERROR, HeaderMap::new(), b"");
                }
                Resp::Started => {
                    if w.finish().is_err() {
                        return Flow::Close(End::Done);
                    }
                }
                Resp::Finished => {}
            }
        }
        if shared.borrow().broken {
            return Flow::Close(End::Done);
        }
        Flow::Next
    }

    /// Hand one piece of the body to the delegate, within `body_deadline`; `Some(flow)`
    /// if the request is over.
    pub(super) async fn deliver(
        &mut self,
        msg: &mut D::Message<'_>,
        w: &mut ResponseWriter<'_>,
        piece: Bytes,
        body_deadline: Option<Instant>,
    ) -> Option<Flow> {
        let received = self
            .drive(pin!(msg.data_received(piece, w)), body_deadline)
            .await;
        self.step_ended(msg, received, false)
    }

    /// What a delegate step's outcome (from [`drive`](Self::drive)) means for the
    /// request: `None` to go on; the request's end after a panic (answered by
    /// [`after_panic`](Self::after_panic); `body_done` once the body was read to its
    /// end) or when the connection must close (the delegate is told). A panic before
    /// the body's end (in `headers_received` or `data_received`) closes the connection
    /// before `finish`, so the delegate is told of that too, as Tornado does.
    #[inline]
    fn step_ended(
        &mut self,
        msg: &mut D::Message<'_>,
        outcome: Result<Result<(), Box<dyn Any + Send>>, End>,
        body_done: bool,
    ) -> Option<Flow> {
        match outcome {
            Ok(Ok(())) => None,
            Ok(Err(p)) => {
                let flow = self.after_panic(&*p, body_done);
                if !body_done {
                    self.tell_closed(msg);
                }
                Some(flow)
            }
            Err(end) => {
                self.tell_closed(msg);
                Some(Flow::Close(end))
            }
        }
    }

    /// Tell the delegate its connection is going away before `finish`
    /// (`on_connection_close`), a panic in it caught and logged.
    pub(super) fn tell_closed(&self, msg: &mut D::Message<'_>) {
        notify("on_connection_close", &self.conn.info, || {
            msg.on_connection_close()
        });
    }

    /// A malformed or oversized body: answer its status if no response started, close.
    pub(super) fn body_error(&mut self, msg: &mut D::Message<'_>, e: ParseError) -> Flow {
        log::info!("bad HTTP request body from {}: {e}", Peer(&self.conn.info));
        self.tell_closed(msg);
        let s = &mut *self.shared.borrow_mut();
        if s.resp == Resp::NotStarted {
            write_error_response(e, &mut s.out);
            s.resp = Resp::Finished;
            s.status = e.status();
        }
        Flow::Close(End::Linger)
    }

    /// A delegate panicked: answer 500 if no response started; go on when the
    /// connection is still in step.
    fn after_panic(&mut self, payload: &(dyn Any + Send), body_done: bool) -> Flow {
        log::error!(
            "HTTP delegate panicked on a request from {}: {}",
            Peer(&self.conn.info),
            panic_message(payload)
        );
        let s = &mut *self.shared.borrow_mut();
        match s.resp {
            Resp::NotStarted => {
                let mut headers = HeaderMap::new();
                ResponseWriter::add_headers(s, &mut headers);
                match s
                    .h1
                    .respond(StatusCode::INTERNAL_SERVER_ERROR, &headers, b"", &mut s.out)
                {
                    Ok(done) => {
                        s.resp = Resp::Finished;
                        s.status = StatusCode::INTERNAL_SERVER_ERROR;
                        if done.keep_alive && body_done {
                            Flow::Next
                        } else {
                            Flow::Close(if body_done { End::Done } else { End::Linger })
                        }
                    }
                    Err(_) => Flow::Close(End::Done),
                }
            }
            Resp::Started => Flow::Close(End::Done),
            Resp::Finished if body_done => Flow::Next,
            Resp::Finished => Flow::Close(End::Linger),
        }
    }
}

/// `ip`, written a part at a time: its tag, then the address as a word of its own
/// width. Copied whole (17 bytes aligned to one) it is stored as a vector and a byte,
/// and the request built from it at once reads the address back as a word from the
/// middle of that vector, a load the CPU cannot take from its store buffer (a stall
/// per request under `perf`).
#[inline]
fn by_parts(ip: Option<std::net::IpAddr>) -> Option<std::net::IpAddr> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    match ip {
        Some(IpAddr::V4(a)) => Some(IpAddr::V4(Ipv4Addr::from_bits(a.to_bits()))),
        Some(IpAddr::V6(a)) => Some(IpAddr::V6(Ipv6Addr::from_bits(a.to_bits()))),
        None => None,
    }
}
