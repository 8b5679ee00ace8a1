//! A busy connection's own steps: the loop that parses requests and waits for input
//! between them, driving a delegate future while sending what it writes, flushing, and
//! closing (with the lingering read).

use std::any::Any;
use std::future::{poll_fn, Future};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use squall_httputil::h1::Event;
use squall_httputil::{write_error_response, OutputError};
use squall_ioloop::instant_after;

use super::logs::{log_access_error, log_io_error, Peer};
use super::timer::Stall;
use super::{Busy, End, Flow, ReadOutcome, LINGER_BYTES, LINGER_TIME};
use crate::delegate::HttpServerConnectionDelegate;
use crate::transport::Transport;
use crate::writer::{release_output, Resp};

impl<T: Transport, D: HttpServerConnectionDelegate> Busy<'_, T, D> {
    /// Parse and serve requests until the connection is idle or must close.
    pub(super) async fn run(&mut self) -> End {
        let shared = self.shared;
        let idle = self.conn.params.config.idle_connection_timeout;
        let header_timeout = self.conn.params.config.header_timeout;
        let mut head_started: Option<Instant> = None;
        loop {
            let event = shared.borrow_mut().h1.poll(self.inbuf);
            match event {
                Some(Event::Head(head)) => {
                    head_started = None;
                    let flow = self.request(head).await;
                    if shared.borrow().detach.is_some() {
                        // Whatever follows the request is the new protocol's.
                        return End::Detach;
                    }
                    if let Flow::Close(end) = flow {
                        return end;
                    }
                }
                Some(Event::Error(e)) => {
                    log::info!("bad HTTP request from {}: {e}", Peer(&self.conn.info));
                    let s = &mut *shared.borrow_mut();
                    if !s.h1.is_responding() {
                        write_error_response(e, &mut s.out);
                        log_access_error(&self.conn.info, e);
                    }
                    return End::Linger;
                }
                Some(_) => {
                    log::error!("HTTP/1 connection state machine out of step; closing");
                    return End::Done;
                }
                None => {
                    if shared.borrow().h1.should_close() {
                        return if self.inbuf.is_empty() {
                            End::Done
                        } else {
                            End::Linger
                        };
                    }
                    // The input is exhausted: send the batch.
                    if !shared.borrow().out.is_empty() {
                        if let Err(end) = self.flush().await {
                            return end;
                        }
                    }
                    if self.inbuf.is_empty() {
                        // Between requests: the caller lets this state go and waits.
                        return End::Idle;
                    }
                    // Part of a head, or empty lines before one: wait for the rest
                    // within the header timeout, which the first byte started (empty
                    // lines do not make the connection idle again).
                    let now = Instant::now();
                    let deadline = instant_after(now, idle).min(instant_after(
                        *head_started.get_or_insert(now),
                        header_timeout,
                    ));
                    let out_cap = release_output(shared);
                    match self.conn.read(self.inbuf, out_cap, deadline).await {
                        ReadOutcome::Data => {
                            if self.conn.control.draining() {
                                // Answered, with `Connection: close`, then closed.
                                shared.borrow_mut().h1.set_no_keep_alive(true);
                            }
                        }
                        ReadOutcome::Eof => {
                            if shared.borrow_mut().h1.read_eof(self.inbuf).is_err() {
                                log::debug!(
                                    "connection from {} closed in the middle of a request head",
                                    Peer(&self.conn.info)
                                );
                                return End::Dead;
                            }
                            return End::Done;
                        }
                        ReadOutcome::Timeout => {
                            log::debug!(
                                "closing connection from {}: header timeout",
                                Peer(&self.conn.info)
                            );
                            return End::Dead;
                        }
                        ReadOutcome::Shutdown => {
                            return if self.conn.control.forced() {
                                End::Dead
                            } else {
                                End::Done
                            };
                        }
                        ReadOutcome::Error(e) => {
                            log_io_error("error reading from HTTP connection", &e);
                            return End::Dead;
                        }
                    }
                }
            }
        }
    }

    /// Poll a delegate future (pinned where the caller made it, so it is never moved),
    /// turning a panic into `Ok(Err(payload))`; while it is pending, send what has been
    /// written, and watch for a forced close and for `body_deadline` (the body
    /// timeout's, for a `data_received` step: a delegate that holds up the body counts
    /// against it, as in Tornado, even if it never returns).
    pub(super) async fn drive<F: Future>(
        &mut self,
        mut fut: Pin<&mut F>,
        body_deadline: Option<Instant>,
    ) -> Result<Result<F::Output, Box<dyn Any + Send>>, End> {
        let shared = self.shared;
        let idle = self.conn.params.config.idle_connection_timeout;
        let mut stall = Stall::default();
        poll_fn(|cx| loop {
            if self.conn.control.forced() {
                return Poll::Ready(Err(End::Dead));
            }
            {
                // The transport's backlog, for the write-buffer cap: asked only while
                // it had one (0 after a write that sent everything).
                let s = &mut *shared.borrow_mut();
                if s.queued != 0 {
                    s.queued = self.conn.transport.write_queued();
                }
            }
            if self.conn.control.draining() {
                // Before the poll: the response head may be written in it, and a
                // drain that began while the body was still coming must reach it.
                shared.borrow_mut().h1.set_no_keep_alive(true);
            }
            let polled = catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx)));
            let s = &mut *shared.borrow_mut();
            if s.overflowed {
                // A write was refused for the cap: the peer is not reading.
                log::info!(
                    "closing connection from {}: {} ({} bytes held, max_write_buffer_size {})",
                    Peer(&self.conn.info),
                    OutputError::WriteBufferFull,
                    s.out.len() + s.queued,
                    s.write_cap
                );
                return Poll::Ready(Err(End::Dead));
            }
            match polled {
                Ok(Poll::Ready(v)) => return Poll::Ready(Ok(Ok(v))),
                Ok(Poll::Pending) => {}
                Err(p) => return Poll::Ready(Ok(Err(p))),
            }
            self.conn.control.register(cx.waker());
            if let Some(deadline) = body_deadline {
                if self.conn.timer.poll(cx, deadline).is_ready() {
                    log::debug!(
                        "closing connection from {}: body timeout",
                        Peer(&self.conn.info)
                    );
                    return Poll::Ready(Err(End::Dead));
                }
            }
            // The request is read to its end and nothing follows it yet: the client's
            // going away (end-of-file, a reset) is noticed now, not when the response
            // is written (Tornado keeps a close callback on the idle stream; hyper
            // drops the service future). The delegate's future is dropped, cancelling
            // the handler, and the caller tells a streaming delegate. A peer that
            // shuts down its write side after its request is gone too, as in both.
            // Bytes that come instead (a pipelined request) stay in `inbuf`, which
            // ends the watch until this response is done: one read at most, however
            // long the delegate takes. Armed only once the future is pending: a
            // handler ready at its first poll costs nothing more. A response already
            // finished is left to finish its future undisturbed.
            if s.body_done
                && s.resp != Resp::Finished
                && s.detach.is_none()
                && self.inbuf.is_empty()
            {
                match self.conn.poll_read(cx, self.inbuf) {
                    Poll::Pending => {}
                    Poll::Ready(ReadOutcome::Data) => {
                        self.conn
                            .note_memory(self.inbuf.capacity() + s.out.capacity());
                    }
                    Poll::Ready(ReadOutcome::Error(e)) => {
                        // A reset at debug level, as every read's.
                        log_io_error("error reading from HTTP connection", &e);
                        return Poll::Ready(Err(End::Dead));
                    }
                    Poll::Ready(_) => {
                        log::debug!(
                            "connection from {} closed while its request was handled",
                            Peer(&self.conn.info)
                        );
                        return Poll::Ready(Err(End::Dead));
                    }
                }
            }
            // Nothing to send, unless a flush waits for what the transport still holds
            // (an empty write then waits for that to go, and wakes this task when it has).
            let flushing = s.flush_requested && s.queued != 0;
            if (s.out.is_empty() && !flushing) || s.write_failed.is_some() {
                return Poll::Pending;
            }
            match self.conn.transport.poll_write(cx, &mut s.out) {
                Poll::Ready(Ok(())) => {
                    s.queued = 0;
                    stall.clear();
                    if std::mem::take(&mut s.flush_requested) {
                        continue;
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => {
                    log_io_error("error writing an HTTP response", &e);
                    s.write_failed = Some(e.kind());
                    return Poll::Ready(Err(End::Dead));
                }
                Poll::Pending => {
                    s.queued = self.conn.transport.write_queued();
                    // A peer that stops reading cannot hold the connection forever;
                    // one that reads, however slowly, is not cut off.
                    let deadline = stall.deadline(s.out.len() + s.queued, idle);
                    if self.conn.timer.poll(cx, deadline).is_ready() {
                        log::debug!(
                            "closing connection from {}: write timeout",
                            Peer(&self.conn.info)
                        );
                        return Poll::Ready(Err(End::Dead));
                    }
                    return Poll::Pending;
                }
            }
        })
        .await
    }

    /// Send everything queued, bounded by the idle timeout.
    pub(super) async fn flush(&mut self) -> Result<(), End> {
        let shared = self.shared;
        let idle = self.conn.params.config.idle_connection_timeout;
        // The clock is read only if the write has to wait.
        let mut stall = Stall::default();
        {
            let held = self.inbuf.capacity() + shared.borrow().out.capacity();
            self.conn.note_memory(held);
        }
        poll_fn(|cx| {
            if self.conn.control.forced() {
                return Poll::Ready(Err(End::Dead));
            }
            let s = &mut *shared.borrow_mut();
            match self.conn.transport.poll_write(cx, &mut s.out) {
                Poll::Ready(Ok(())) => {
                    s.queued = 0;
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Err(e)) => {
                    log_io_error("error writing an HTTP response", &e);
                    s.write_failed = Some(e.kind());
                    Poll::Ready(Err(End::Dead))
                }
                Poll::Pending => {
                    s.queued = self.conn.transport.write_queued();
                    self.conn.control.register(cx.waker());
                    let deadline = stall.deadline(s.out.len() + s.queued, idle);
                    if self.conn.timer.poll(cx, deadline).is_ready() {
                        log::debug!(
                            "closing connection from {}: write timeout",
                            Peer(&self.conn.info)
                        );
                        return Poll::Ready(Err(End::Dead));
                    }
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Send the 101 response, then hand the stream and the input not yet parsed to the
    /// delegate's callback. The connection stops counting for the server here.
    pub(super) async fn detach(&mut self) {
        let Some(on_upgrade) = self.shared.borrow_mut().detach.take() else {
            return;
        };
        if self.flush().await.is_err() {
            self.conn.transport.close();
            return;
        }
        match self.conn.transport.take_stream() {
            Some(stream) => {
                let read_ahead = self.inbuf.split().freeze();
                on_upgrade.call(crate::Detached { stream, read_ahead });
            }
            None => {
                log::error!("this transport cannot be detached; closing the connection");
                self.conn.transport.close();
            }
        }
    }

    /// End the connection as nginx does. `Dead`: close at once. Otherwise send what
    /// is queued, shut down the write side (the peer reads end-of-file right after the
    /// last byte), then read and discard what the peer still sends, so that unread
    /// input never turns the close into a reset that destroys the response: until the
    /// peer's end-of-file or [`LINGER_TIME`]. Past [`LINGER_BYTES`] it stops reading but
    /// waits out the time: the peer still gets its chance to read the response before
    /// the close resets. `Linger` (a request left partly unread) always lingers; `Done`
    /// only if more input is already there. Then close.
    pub(super) async fn close(&mut self, end: End) {
        debug_assert!(end != End::Idle, "an idle connection is not closed here");
        if end == End::Dead
            || (!self.shared.borrow().out.is_empty() && self.flush().await.is_err())
            || self.shutdown_write().await.is_err()
        {
            self.conn.transport.close();
            return;
        }
        // `Done`: a first read that finds nothing waiting ends it.
        let mut lingering = end == End::Linger;
        let mut deadline = Instant::now()
            + if lingering {
                LINGER_TIME
            } else {
                Duration::ZERO
            };
        let mut discarded = 0;
        let mut last = ReadOutcome::Data;
        while discarded < LINGER_BYTES {
            self.inbuf.clear();
            last = self.conn.read(self.inbuf, 0, deadline).await;
            if !matches!(last, ReadOutcome::Data) {
                break;
            }
            discarded += self.inbuf.len();
            if !lingering {
                lingering = true;
                deadline = Instant::now() + LINGER_TIME;
            }
        }
        self.inbuf.clear();
        if matches!(last, ReadOutcome::Data) {
            // Read enough: the rest stays unread until the deadline.
            self.wait_until(deadline).await;
        }
        self.conn.transport.close();
    }

    /// Wait until `deadline`, or until the server forces its connections closed.
    async fn wait_until(&mut self, deadline: Instant) {
        let conn = &mut *self.conn;
        poll_fn(|cx| {
            if conn.control.forced() || conn.timer.poll(cx, deadline).is_ready() {
                return Poll::Ready(());
            }
            conn.control.register(cx.waker());
            Poll::Pending
        })
        .await;
    }

    /// Half-close (`shutdown(SHUT_WR)`) once the output is sent, bounded by the idle
    /// timeout. `Err` (logged) when it failed and the connection can only be closed; a
    /// transport without a half-close is `Ok`: it lingers fully open.
    async fn shutdown_write(&mut self) -> Result<(), ()> {
        let idle = self.conn.params.config.idle_connection_timeout;
        let mut stall = Stall::default();
        poll_fn(|cx| {
            if self.conn.control.forced() {
                return Poll::Ready(Err(()));
            }
            match self.conn.transport.poll_shutdown_write(cx) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Unsupported => {
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Err(e)) => {
                    log_io_error("error shutting down an HTTP connection", &e);
                    Poll::Ready(Err(()))
                }
                Poll::Pending => {
                    self.conn.control.register(cx.waker());
                    let backlog = self.conn.transport.write_queued();
                    let deadline = stall.deadline(backlog, idle);
                    if self.conn.timer.poll(cx, deadline).is_ready() {
                        log::debug!(
                            "closing connection from {}: write timeout",
                            Peer(&self.conn.info)
                        );
                        return Poll::Ready(Err(()));
                    }
                    Poll::Pending
                }
            }
        })
        .await
    }
}
