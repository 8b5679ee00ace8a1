//! Faults in user code: where it was added (for logs), and panic payloads to text.

use std::any::Any;
use std::panic::Location;

/// Where a callback, handler, timer or task was added (`#[track_caller]`), named in
/// the logs of its panics and slow runs.
pub(crate) type Origin = &'static Location<'static>;

/// The message of a panic's payload: the text of `panic!("...")` or a failed
/// `assert!` (a `&str` or a `String`), `None` for any other payload. For the logs of
/// panics caught from user code, and for test harnesses that name what failed.
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
/// assert_eq!(squall_ioloop::panic_text(&*payload), Some("boom 1"));
/// ```
pub fn panic_text(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// The message of a panic payload ([`panic_text`]), or `<non-string panic payload>`:
/// what a log line of a caught panic says.
///
/// ```
/// let payload = std::panic::catch_unwind(|| std::panic::panic_any(7)).unwrap_err();
/// assert_eq!(squall_ioloop::panic_message(&*payload), "<non-string panic payload>");
/// ```
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    panic_text(payload).unwrap_or("<non-string panic payload>")
}

/// The log line of a panic the loop caught, in Tornado's words ("Exception in
/// callback", which tests look for): what panicked if it was not a plain callback,
/// where it was made, the message.
pub(crate) fn log_exception(what: Option<&str>, origin: Origin, payload: &(dyn Any + Send)) {
    let message = panic_message(payload);
    match what {
        None => log::error!("Exception in callback added at {origin}: {message}"),
        Some(what) => log::error!("Exception in callback ({what}) added at {origin}: {message}"),
    }
}

/// [`log_exception`], then drops the payload, whose own drop may panic too (caught, so
/// whatever called the user code goes on).
#[cold]
pub(crate) fn log_panic(what: Option<&str>, origin: Origin, payload: Box<dyn Any + Send>) {
    log_exception(what, origin, &*payload);
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload)));
}
