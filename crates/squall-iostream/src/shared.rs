//! The per-thread read buffer: every read syscall of every stream on a thread lands
//! here first, and a stream keeps only what its pending read did not consume. That is
//! why an idle stream owns no buffer (ARCHITECTURE.md, "Idle connections own no buffers").

use std::cell::RefCell;

/// Size of the per-thread buffer, and so the most one read syscall asks for.
pub(crate) const SHARED_LEN: usize = 64 * 1024;

thread_local! {
    static SHARED: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SHARED_LEN].into_boxed_slice());
}

/// Runs `f` with the thread's shared buffer. If the buffer is already in use further up
/// the stack (a parse callback that drives another stream by hand), `f` gets a
/// temporary buffer instead: correct, only slower.
#[inline(always)]
pub(crate) fn with_shared<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut f = Some(f);
    let res = SHARED.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut b) => Some((f.take().expect("called once"))(&mut b)),
        Err(_) => None,
    });
    match res {
        Ok(Some(r)) => r,
        // Re-entered, or the thread-local is being destroyed.
        _ => with_temporary(f.take().expect("called once")),
    }
}

/// [`with_shared`]'s way out, apart so that `f` is inlined on the common path only.
#[cold]
#[inline(never)]
fn with_temporary<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut tmp = vec![0u8; SHARED_LEN];
    f(&mut tmp)
}
