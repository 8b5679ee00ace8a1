//! The timer queue: a binary heap of deadlines over a slab of actions, with lazy
//! cancellation (Tornado's `_timeouts` list with `_cancellations`).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// A handle to a scheduled timeout, returned by
/// [`IoLoop::add_timeout`](crate::IoLoop::add_timeout),
/// [`call_later`](crate::IoLoop::call_later) and [`call_at`](crate::IoLoop::call_at),
/// and taken by [`remove_timeout`](crate::IoLoop::remove_timeout).
///
/// Tornado's `_Timeout` object. It is a plain `Copy` value (the loop, a slot and a
/// generation): a handle whose timeout already ran or was removed is simply stale, and
/// removing it again does nothing, as does removing it from another loop.
#[doc(alias = "_Timeout")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timeout {
    slot: u32,
    gen: u32,
    /// The loop whose queue made it (the low bits of its id).
    owner: u32,
}

impl Timeout {
    /// A handle that refers to nothing (what a closed loop hands out).
    pub(crate) fn dead() -> Timeout {
        Timeout {
            slot: NONE,
            gen: 0,
            owner: 0,
        }
    }
}

/// When a timeout is due: an [`Instant`], or a [`Duration`] from now (converted when the
/// `Deadline` is made). Tornado's `add_timeout` takes the loop time or a `timedelta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(pub Instant);

impl Deadline {
    /// The deadline `delay` from now.
    pub fn after(delay: Duration) -> Deadline {
        Deadline(crate::clock::after(delay))
    }

    /// The deadline at loop time `secs` (as returned by
    /// [`IoLoop::time`](crate::IoLoop::time)); Tornado's `add_timeout(io_loop.time() + 5, ..)`.
    /// Negative times and NaN are clamped to the clock's epoch (due at once); times
    /// past about a century from the epoch, `f64::INFINITY` included, are clamped to
    /// that century (never due in practice, as in Tornado).
    pub fn at_time(secs: f64) -> Deadline {
        Deadline(crate::clock::instant_at(secs))
    }

    /// The instant this deadline stands for.
    pub fn instant(self) -> Instant {
        self.0
    }
}

impl From<Instant> for Deadline {
    fn from(i: Instant) -> Deadline {
        Deadline(i)
    }
}

impl From<Duration> for Deadline {
    fn from(d: Duration) -> Deadline {
        Deadline::after(d)
    }
}

const NONE: u32 = u32::MAX;

/// Tornado compacts the heap once more than this many cancelled entries are in it, and
/// they are more than half of it.
const COMPACT_MIN: usize = 512;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    deadline: Instant,
    seq: u64,
    slot: u32,
    gen: u32,
}

impl Ord for Entry {
    /// Reversed, so the std max-heap pops the earliest deadline first, and among equal
    /// deadlines the one scheduled first.
    fn cmp(&self, other: &Entry) -> Ordering {
        other
            .deadline
            .cmp(&self.deadline)
            .then(other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

struct Slot<A> {
    gen: u32,
    action: Option<A>,
    /// Whether the heap holds this slot's live entry (false once popped as due).
    in_heap: bool,
    next_free: u32,
}

/// Deadlines in a min-heap, actions in a slab. A heap entry is stale when its slot's
/// generation moved on (the timer was cancelled or ran); stale entries are skipped when
/// they reach the top, and swept out in one pass when they pile up.
pub(crate) struct TimerQueue<A> {
    heap: BinaryHeap<Entry>,
    slots: Vec<Slot<A>>,
    free: u32,
    seq: u64,
    /// Stale entries still in the heap.
    cancelled: usize,
    live: usize,
    /// Stamped on this queue's handles, so that a handle of another loop's queue (whose
    /// slot and generation may well be equal) is never taken for one of ours.
    owner: u32,
}

impl<A> Default for TimerQueue<A> {
    fn default() -> Self {
        TimerQueue::with_owner(0)
    }
}

impl<A> TimerQueue<A> {
    /// An empty queue whose handles carry `owner`.
    pub(crate) fn with_owner(owner: u32) -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: NONE,
            seq: 0,
            cancelled: 0,
            live: 0,
            owner,
        }
    }

    /// The handle of `slot` at `gen` in this queue.
    fn handle(&self, slot: u32, gen: u32) -> Timeout {
        Timeout {
            slot,
            gen,
            owner: self.owner,
        }
    }

    /// The slot of `t`, if `t` is a handle of this queue.
    fn slot_mut(&mut self, t: Timeout) -> Option<&mut Slot<A>> {
        if t.owner != self.owner {
            return None;
        }
        self.slots.get_mut(t.slot as usize)
    }

    /// Schedules `action` at `deadline`.
    pub(crate) fn schedule(&mut self, deadline: Instant, action: A) -> Timeout {
        let slot = if self.free != NONE {
            let slot = self.free;
            let s = &mut self.slots[slot as usize];
            self.free = s.next_free;
            s.action = Some(action);
            s.in_heap = true;
            slot
        } else {
            let slot = u32::try_from(self.slots.len())
                .ok()
                .filter(|&s| s != NONE)
                .expect("more than 4 billion live timers");
            self.slots.push(Slot {
                gen: 0,
                action: Some(action),
                in_heap: true,
                next_free: NONE,
            });
            slot
        };
        let gen = self.slots[slot as usize].gen;
        self.heap.push(Entry {
            deadline,
            seq: self.seq,
            slot,
            gen,
        });
        self.seq += 1;
        self.live += 1;
        self.handle(slot, gen)
    }

    /// Cancels a timer; returns its action if it was still pending (to be dropped by the
    /// caller outside any borrow). A stale handle is a no-op.
    pub(crate) fn cancel(&mut self, t: Timeout) -> Option<A> {
        let in_heap = self.slot_mut(t)?.in_heap;
        let action = self.take(t)?;
        if in_heap {
            self.cancelled += 1;
            if self.cancelled > COMPACT_MIN && self.cancelled > self.heap.len() / 2 {
                self.compact();
            }
        }
        Some(action)
    }

    /// Takes the action of a pending timer (due or not) and frees its slot.
    pub(crate) fn take(&mut self, t: Timeout) -> Option<A> {
        if t.owner != self.owner {
            return None;
        }
        let s = self.slots.get_mut(t.slot as usize)?;
        if s.gen != t.gen {
            return None;
        }
        let action = s.action.take()?;
        s.gen = s.gen.wrapping_add(1);
        s.in_heap = false;
        s.next_free = self.free;
        self.free = t.slot;
        self.live -= 1;
        Some(action)
    }

    /// Whether `t` is still waiting to run.
    #[cfg(test)]
    pub(crate) fn is_pending(&self, t: Timeout) -> bool {
        t.owner == self.owner
            && self
                .slots
                .get(t.slot as usize)
                .is_some_and(|s| s.gen == t.gen && s.action.is_some())
    }

    /// Replaces the action of a pending timer in place; returns `false` if it is stale.
    pub(crate) fn with_action(&mut self, t: Timeout, f: impl FnOnce(&mut A)) -> bool {
        match self.slot_mut(t) {
            Some(s) if s.gen == t.gen => match s.action.as_mut() {
                Some(a) => {
                    f(a);
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    /// Moves the handles of every timer due at `now` into `due`, earliest first (ties in
    /// scheduling order). Their actions stay in the slab until [`take`](Self::take), so a
    /// callback that runs first can still cancel one of them.
    pub(crate) fn collect_due(&mut self, now: Instant, due: &mut Vec<Timeout>) {
        while let Some(top) = self.heap.peek() {
            let (slot, gen, deadline) = (top.slot, top.gen, top.deadline);
            let s = &mut self.slots[slot as usize];
            if s.gen != gen {
                self.heap.pop();
                self.cancelled = self.cancelled.saturating_sub(1);
                continue;
            }
            if deadline > now {
                break;
            }
            self.heap.pop();
            s.in_heap = false;
            due.push(Timeout {
                slot,
                gen,
                owner: self.owner,
            });
        }
    }

    /// The earliest pending deadline (stale entries at the top are dropped on the way).
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(top) = self.heap.peek() {
            if self.slots[top.slot as usize].gen == top.gen {
                return Some(top.deadline);
            }
            self.heap.pop();
            self.cancelled = self.cancelled.saturating_sub(1);
        }
        None
    }

    /// How many timers are pending.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// How many entries the heap holds, stale ones included (for tests).
    #[cfg(test)]
    pub(crate) fn heap_len(&self) -> usize {
        self.heap.len()
    }

    /// Removes every pending action (for close); the caller drops them outside borrows.
    pub(crate) fn drain(&mut self) -> Vec<A> {
        let out = self
            .slots
            .iter_mut()
            .filter_map(|s| s.action.take())
            .collect();
        *self = TimerQueue::with_owner(self.owner);
        out
    }

    fn compact(&mut self) {
        let slots = &self.slots;
        self.heap.retain(|e| slots[e.slot as usize].gen == e.gen);
        self.cancelled = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run_all(q: &mut TimerQueue<u32>, now: Instant) -> Vec<u32> {
        let mut due = Vec::new();
        q.collect_due(now, &mut due);
        due.into_iter().filter_map(|t| q.take(t)).collect()
    }

    #[test]
    fn order_and_ties() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        q.schedule(t0 + Duration::from_millis(5), 1);
        q.schedule(t0 + Duration::from_millis(1), 2);
        q.schedule(t0 + Duration::from_millis(5), 3);
        q.schedule(t0 + Duration::from_millis(1), 4);
        assert_eq!(run_all(&mut q, t0), Vec::<u32>::new());
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_millis(1)));
        assert_eq!(
            run_all(&mut q, t0 + Duration::from_secs(1)),
            vec![2, 4, 1, 3]
        );
        assert_eq!(q.len(), 0);
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn cancel_is_idempotent_and_stale_handles_are_noops() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        let a = q.schedule(t0, 1);
        assert!(q.is_pending(a));
        assert_eq!(q.cancel(a), Some(1));
        assert_eq!(q.cancel(a), None);
        // The slot is reused with a new generation: the old handle must not touch it.
        let b = q.schedule(t0, 2);
        assert_ne!(a, b);
        assert_eq!(q.cancel(a), None);
        assert!(q.is_pending(b));
        assert_eq!(run_all(&mut q, t0), vec![2]);
        assert_eq!(q.cancel(b), None, "cancel after it ran is a no-op");
    }

    #[test]
    fn heap_is_compacted_when_cancellations_pile_up() {
        // Tornado's test_remove_timeout_cleanup, checked on the heap itself.
        let far = Instant::now() + Duration::from_secs(3600);
        let mut q = TimerQueue::default();
        let keep = q.schedule(far, 0u32);
        for i in 0..2000 {
            let t = q.schedule(far, i);
            q.cancel(t);
        }
        assert_eq!(q.len(), 1);
        assert!(q.heap_len() <= 2 * COMPACT_MIN + 2, "{}", q.heap_len());
        assert!(q.is_pending(keep));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Schedule(u8),
        Cancel(usize),
        Advance(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => any::<u8>().prop_map(Op::Schedule),
            2 => any::<usize>().prop_map(Op::Cancel),
            1 => any::<u8>().prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// Any interleaving of schedule, cancel and running what is due runs exactly the
        /// timers never cancelled, in deadline order, ties in scheduling order.
        #[test]
        fn runs_exactly_the_uncancelled_in_order(ops in proptest::collection::vec(op(), 0..400)) {
            let t0 = Instant::now();
            let mut q = TimerQueue::default();
            let mut model: Vec<(u64, usize, bool)> = Vec::new(); // (deadline ms, id, live)
            let mut handles = Vec::new();
            let mut now_ms = 0u64;
            let mut ran = Vec::new();
            let mut expected = Vec::new();
            for op in ops {
                match op {
                    Op::Schedule(d) => {
                        let id = handles.len();
                        let at = now_ms + u64::from(d % 50);
                        handles.push(q.schedule(t0 + Duration::from_millis(at), id));
                        model.push((at, id, true));
                    }
                    Op::Cancel(k) if !handles.is_empty() => {
                        let id = k % handles.len();
                        let was_live = model[id].2;
                        prop_assert_eq!(q.cancel(handles[id]).is_some(), was_live);
                        model[id].2 = false;
                    }
                    Op::Cancel(_) => {}
                    Op::Advance(d) => {
                        now_ms += u64::from(d % 30);
                        let mut due: Vec<_> = model.iter().filter(|m| m.2 && m.0 <= now_ms).cloned().collect();
                        due.sort_by_key(|m| (m.0, m.1));
                        for m in &due {
                            model[m.1].2 = false;
                            expected.push(m.1);
                        }
                        let mut got = Vec::new();
                        q.collect_due(t0 + Duration::from_millis(now_ms), &mut got);
                        ran.extend(got.into_iter().filter_map(|t| q.take(t)));
                    }
                }
                prop_assert_eq!(q.len(), model.iter().filter(|m| m.2).count());
            }
            let mut rest: Vec<_> = model.iter().filter(|m| m.2).cloned().collect();
            rest.sort_by_key(|m| (m.0, m.1));
            expected.extend(rest.iter().map(|m| m.1));
            let mut got = Vec::new();
            q.collect_due(t0 + Duration::from_secs(3600), &mut got);
            ran.extend(got.into_iter().filter_map(|t| q.take(t)));
            prop_assert_eq!(ran, expected);
            prop_assert_eq!(q.len(), 0);
        }
    }
}
