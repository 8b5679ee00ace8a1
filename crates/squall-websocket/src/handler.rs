//! The callback form: [`WebSocketHandler`], Tornado's `WebSocketHandler` methods, and
//! [`run_handler`], the driver that calls them in order.

use std::any::Any;
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::task::Poll;

use crate::protocol::Message;
use crate::socket::{Incoming, WebSocket};

/// A WebSocket endpoint in Tornado's shape: `open`, `on_message`, `on_ping`, `on_pong`,
/// `on_close`. Write with the [`WebSocket`] handle each method gets
/// ([`write_message`](WebSocket::write_message), [`close`](WebSocket::close)).
///
/// `open` and `on_message` are `async fn`s: **the next message is not read until the
/// previous `on_message` has finished**, so messages are handled one at a time and in
/// order even when handling one awaits (Tornado's rule for coroutine `on_message`). A
/// handler with nothing to await simply never awaits. Pings are answered before
/// `on_ping` is called.
///
/// `check_origin` and `select_subprotocol` are asked during the handshake, before the
/// connection exists ([`websocket_response`](crate::websocket_response)).
///
/// ```
/// use squall_websocket::{Message, WebSocket, WebSocketHandler};
///
/// struct Echo;
///
/// impl WebSocketHandler for Echo {
///     async fn on_message(&mut self, ws: &WebSocket, message: Message) {
///         let _ = ws.write_message(message);
///     }
/// }
/// ```
#[allow(async_fn_in_trait)] // single-threaded: the futures need not be Send
pub trait WebSocketHandler: 'static {
    /// Whether to accept a handshake from a browser page at `origin` (the `Origin`
    /// header) sent to `host`. Default: only the same origin, as Tornado (refused with
    /// 403). Not called without an `Origin` header (not a browser).
    fn check_origin(&self, origin: &str, host: &str) -> bool {
        crate::upgrade::same_origin(origin, host)
    }

    /// Chooses one of the subprotocols the client offered, or `None` (Tornado's
    /// `select_subprotocol`). Default: none.
    fn select_subprotocol(&mut self, offered: &[String]) -> Option<String> {
        let _ = offered;
        None
    }

    /// The connection is open. Default: nothing.
    async fn open(&mut self, ws: &WebSocket) {
        let _ = ws;
    }

    /// A whole message arrived.
    async fn on_message(&mut self, ws: &WebSocket, message: Message);

    /// A ping arrived (the pong has been sent). Default: nothing.
    fn on_ping(&mut self, ws: &WebSocket, data: &[u8]) {
        let _ = (ws, data);
    }

    /// A pong arrived. Default: nothing.
    fn on_pong(&mut self, ws: &WebSocket, data: &[u8]) {
        let _ = (ws, data);
    }

    /// The connection is over; [`WebSocket::close_code`] and
    /// [`WebSocket::close_reason`] hold the peer's close frame if it sent one. Called
    /// exactly once. Default: nothing.
    fn on_close(&mut self, ws: &WebSocket) {
        let _ = ws;
    }
}

/// Drives `handler` over `ws` until the connection is over: `open`, then each message,
/// ping and pong in order, then `on_close`.
///
/// A handler that panics in `open`, `on_message`, `on_ping` or `on_pong` has the panic
/// logged (at error level) and the connection aborted, without a close frame (the peer
/// sees it end, as Tornado aborts the stream on a handler's exception), and its
/// `on_close` is still called, once, as Tornado calls it: what `open` set up (a
/// registry of connections, a subscription) is undone there whatever happened. A panic
/// in `on_close` itself ends the task, and the loop logs it.
pub async fn run_handler<H: WebSocketHandler>(ws: WebSocket, mut handler: H) {
    // Pinned in place, so the task holds one copy of the serving future (an idle
    // connection's size, see `an_idle_websocket_stays_small`).
    let served = {
        let serving = pin!(async {
            handler.open(&ws).await;
            while let Some(incoming) = ws.next_incoming().await {
                match incoming {
                    Incoming::Message(message) => handler.on_message(&ws, message).await,
                    Incoming::Ping(data) => handler.on_ping(&ws, &data),
                    Incoming::Pong(data) => handler.on_pong(&ws, &data),
                }
            }
        });
        caught(serving).await
    };
    ws.abort();
    if let Err(payload) = served {
        log::error!(
            "WebSocket handler panicked: {}; connection aborted",
            squall_ioloop::panic_message(&*payload)
        );
    }
    handler.on_close(&ws);
}

/// Polls `fut` to its end, a panic in any of its polls ending it as `Err` with the
/// panic's payload.
fn caught<F: Future>(
    mut fut: Pin<&mut F>,
) -> impl Future<Output = Result<F::Output, Box<dyn Any + Send>>> + '_ {
    poll_fn(
        move |cx| match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(payload)),
        },
    )
}
