//! A per-thread stash of spare buffers: a connection gives its input and output buffers
//! back here when it goes idle, and takes one when bytes arrive or a response is
//! written. An idle connection so holds no buffer, and a busy thread reuses the same
//! few allocations instead of allocating per request: an idle connection owns no
//! buffer, and nothing on the hot path allocates per request what can be reused.

use std::cell::RefCell;

use bytes::BytesMut;

/// Buffers kept per thread.
const KEEP: usize = 32;
/// A buffer larger than this is freed rather than kept.
const MAX_KEPT: usize = 16 * 1024;
/// What a buffer taken for reading or writing has room for at least.
pub(crate) const MIN_ROOM: usize = 4 * 1024;

thread_local! {
    static SPARE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// A buffer with room for at least half of [`MIN_ROOM`] bytes: a kept one if there is
/// one, else a new one with room for [`MIN_ROOM`].
pub(crate) fn take() -> BytesMut {
    let mut buf = SPARE
        .try_with(|s| s.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default();
    // Reclaims the whole allocation when nothing else refers to it; a kept buffer that
    // still has half of that room is used as it is (reclaiming it on every take cost
    // about 70 instructions, and a small response leaves most of the room free).
    if buf.capacity() < MIN_ROOM / 2 {
        buf.reserve(MIN_ROOM);
    }
    buf
}

/// Let `buf`'s allocation go if it grew past what the stash would keep: for a buffer
/// its holder (a worker, between busy periods) keeps instead of giving back.
pub(crate) fn trim(buf: &mut BytesMut) {
    if buf.capacity() > MAX_KEPT {
        *buf = BytesMut::new();
    }
}

/// Give `buf`'s allocation back if it holds nothing, leaving `buf` empty with no
/// allocation; a buffer with bytes in it is left alone.
pub(crate) fn give(buf: &mut BytesMut) {
    if !buf.is_empty() || buf.capacity() == 0 {
        if buf.is_empty() {
            // An empty view at the end of an allocation: let the allocation go.
            *buf = BytesMut::new();
        }
        return;
    }
    let b = std::mem::take(buf);
    if b.capacity() > MAX_KEPT {
        return;
    }
    let _ = SPARE.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < KEEP {
            s.push(b);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn give_and_take() {
        let mut a = take();
        assert!(a.capacity() >= MIN_ROOM);
        a.extend_from_slice(b"abc");
        give(&mut a);
        assert_eq!(&a[..], b"abc", "a buffer with bytes is kept by its owner");
        a.clear();
        give(&mut a);
        assert_eq!(a.capacity(), 0, "an empty buffer is given away");
        let b = take();
        assert!(b.capacity() >= MIN_ROOM);
        let mut big = BytesMut::with_capacity(MAX_KEPT * 2);
        give(&mut big);
        assert_eq!(big.capacity(), 0);
    }
}
