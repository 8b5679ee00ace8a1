//! [`WriteQueue`]: the queued output of a stream, in order, with room for one chunk
//! inline.
//!
//! A server answers each request (or each pipelined batch) with one chunk, so the
//! common queue holds one chunk at a time and needs no allocation at all; a `VecDeque`
//! would allocate room for four on the first write and keep it for the life of the
//! connection (144 bytes per idle keep-alive connection).

use bytes::{Buf, Bytes};
use smallvec::SmallVec;

/// A spilled queue with at most this many slots is kept when it empties (a server that
/// writes a head and a body as two chunks reuses it); a bigger one is let go.
const KEEP_SPILLED: usize = 4;

#[derive(Default)]
pub(crate) struct WriteQueue {
    /// The chunks; those before `head` are already written (left empty).
    chunks: SmallVec<[Bytes; 1]>,
    head: usize,
}

impl WriteQueue {
    pub(crate) fn push_back(&mut self, data: Bytes) {
        if self.head > 0 && self.head * 2 >= self.chunks.len() {
            // Most of the slots are written: move the rest to the front (amortized O(1)).
            self.chunks.drain(..self.head);
            self.head = 0;
        }
        self.chunks.push(data);
    }

    /// The unwritten chunks, in order.
    pub(crate) fn as_slice(&self) -> &[Bytes] {
        &self.chunks[self.head..]
    }

    /// Drops `n` written bytes from the front.
    pub(crate) fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.chunks.get_mut(self.head) else {
                break;
            };
            if front.len() <= n {
                n -= front.len();
                *front = Bytes::new();
                self.head += 1;
            } else {
                front.advance(n);
                n = 0;
            }
        }
        if self.head == self.chunks.len() {
            self.reset();
        }
    }

    /// Empties the queue (written or dropped), keeping only a small allocation.
    fn reset(&mut self) {
        self.head = 0;
        if self.chunks.spilled() && self.chunks.capacity() > KEEP_SPILLED {
            self.chunks = SmallVec::new();
        } else {
            self.chunks.clear();
        }
    }
}

/// The chunks of a stream's write queue, which is `None` while it is empty.
pub(crate) fn queued(queue: &Option<Box<WriteQueue>>) -> &[Bytes] {
    queue.as_deref().map_or(&[], WriteQueue::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(q: &WriteQueue) -> Vec<u8> {
        q.as_slice()
            .iter()
            .flat_map(|b| b.iter().copied())
            .collect()
    }

    #[test]
    fn keeps_order_across_partial_writes() {
        let mut q = WriteQueue::default();
        q.push_back(Bytes::from_static(b"hello "));
        assert!(!q.chunks.spilled());
        q.push_back(Bytes::from_static(b"world"));
        q.consume(3);
        assert_eq!(contents(&q), b"lo world");
        q.push_back(Bytes::from_static(b"!"));
        q.consume(3);
        assert_eq!(contents(&q), b"world!");
        q.consume(6);
        assert_eq!(contents(&q), b"");
        assert_eq!(q.head, 0);
        // A small spilled queue is kept for the next batch.
        assert!(q.chunks.spilled());
    }

    #[test]
    fn long_queues_compact_and_let_go() {
        let mut q = WriteQueue::default();
        let mut expect = Vec::new();
        for i in 0..100u8 {
            q.push_back(Bytes::from(vec![i; 3]));
            expect.extend_from_slice(&[i; 3]);
            if i % 2 == 1 {
                q.consume(4);
                expect.drain(..4);
            }
            assert_eq!(contents(&q), expect);
            assert!(q.chunks.len() <= 2 * (q.chunks.len() - q.head) + 2);
        }
        let n = expect.len();
        q.consume(n);
        assert!(!q.chunks.spilled(), "a big queue is let go once empty");
        let taken = {
            q.push_back(Bytes::from_static(b"x"));
            std::mem::take(&mut q)
        };
        assert_eq!(contents(&taken), b"x");
        assert_eq!(contents(&q), b"");
    }
}
