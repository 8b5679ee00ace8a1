//! Handing a connection over to another protocol after `101 Switching Protocols`
//! (Tornado's `HTTP1Connection.detach()`, hyper's `upgrade::on`): [`Detached`], what the
//! new owner gets, and [`OnUpgrade`], the callback that receives it.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;

use bytes::Bytes;
use squall_iostream::IoStream;

/// A connection handed over after a `101 Switching Protocols` response: the stream and
/// the bytes the server had already read past the request head (the start of the new
/// protocol's data, pipelined behind the upgrade request; never parsed as HTTP).
///
/// From here on the connection belongs to its new owner: the HTTP server neither
/// times it out nor counts it, and a graceful [`shutdown`](crate::HttpServer::shutdown)
/// neither waits for it nor closes it. The new owner closes it (or drops the last handle).
#[derive(Debug)]
#[non_exhaustive]
pub struct Detached {
    /// The connection's stream, with the 101 response already sent.
    pub stream: IoStream,
    /// Bytes received after the request head, to be read before the stream's.
    pub read_ahead: Bytes,
}

type Callback = Box<dyn FnOnce(Detached)>;

/// The callback that takes a connection over once its `101` response is out.
///
/// Cloning shares the callback: it runs once, for whichever clone the server uses.
#[derive(Clone)]
pub struct OnUpgrade(Rc<Cell<Option<Callback>>>);

impl OnUpgrade {
    /// A callback to run with the detached connection (on the connection's thread,
    /// after the 101 response has been flushed).
    pub fn new(f: impl FnOnce(Detached) + 'static) -> OnUpgrade {
        OnUpgrade(Rc::new(Cell::new(Some(Box::new(f)))))
    }

    /// Runs the callback, if it has not run yet.
    pub(crate) fn call(&self, detached: Detached) {
        if let Some(f) = self.0.take() {
            f(detached);
        }
    }
}

impl fmt::Debug for OnUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnUpgrade")
    }
}

/// Why [`ResponseWriter::detach`](crate::ResponseWriter::detach) refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DetachError {
    /// No `101 Switching Protocols` response was written for this request: only that
    /// response hands the connection over.
    NotSwitchingProtocols,
}

impl fmt::Display for DetachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DetachError::NotSwitchingProtocols => {
                f.write_str("detach needs a 101 Switching Protocols response first")
            }
        }
    }
}

impl std::error::Error for DetachError {}
