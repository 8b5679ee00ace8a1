//! Unpredictable bytes for masking keys and handshake nonces, without a dependency.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// SipHash, keyed from the OS's randomness by std's `RandomState`, over a counter: a
/// keyed pseudo-random function, so its output cannot be predicted without the key.
/// RFC 6455 §5.3 and §4.1 ask for masking keys and `Sec-WebSocket-Key` nonces a script
/// cannot guess; this gives them with no syscall per frame.
pub(crate) struct Rng {
    keys: RandomState,
    counter: u64,
}

impl Rng {
    pub(crate) fn new() -> Rng {
        Rng {
            keys: RandomState::new(),
            counter: 0,
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.counter = self.counter.wrapping_add(1);
        self.keys.hash_one(self.counter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_differ_between_calls_and_generators() {
        let mut a = Rng::new();
        let mut b = Rng::new();
        let (a1, a2, b1) = (a.next_u64(), a.next_u64(), b.next_u64());
        assert_ne!(a1, a2);
        assert_ne!(a1, b1);
    }
}
