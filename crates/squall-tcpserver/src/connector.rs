//! Happy eyeballs as a state machine without I/O: Tornado's `_Connector`, driven by
//! [`TcpClient`](crate::TcpClient) with real connects and timers, and by the tests
//! below with scripted ones.
//!
//! The addresses are split by family, the family of the first address first
//! ([`split`]). Attempts within a family run one after another. The second family
//! starts when the happy-eyeballs delay passes ([`Connector::on_timeout`]) or as soon as
//! any attempt fails, whichever comes first, and only once. The first attempt to
//! succeed wins and every other pending attempt is closed; one that succeeds later is
//! closed too. The connection fails with the last error once every address has failed,
//! or with a timeout when the overall deadline passes
//! ([`Connector::on_connect_timeout`]).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;

/// What the driver must do after an event: attempts are named by their index in the
/// address list given to [`Connector::new`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Start connecting to address `i`.
    Connect(usize),
    /// Close attempt `i` (a loser, or a late winner), whether it is still pending or
    /// has just connected.
    Close(usize),
}

/// How the connection attempt ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Attempt `i` connected first.
    Connected(usize),
    /// Every address failed; the last error.
    Failed(io::Error),
    /// The overall deadline passed first.
    TimedOut,
}

/// Tornado's `_Connector`, over indices into an address list.
#[derive(Debug)]
pub(crate) struct Connector {
    primary: VecDeque<usize>,
    secondary: VecDeque<usize>,
    /// The second family was started (by the delay or by a failure); at most once.
    secondary_started: bool,
    /// Attempts started and not yet finished.
    pending: Vec<usize>,
    /// Addresses not yet finished (started or not): the connection fails only when it
    /// reaches zero (Tornado's `remaining`).
    remaining: usize,
    last_error: Option<io::Error>,
    /// Set once the connection is decided (won, failed or timed out), for good.
    decided: bool,
    /// The outcome, until [`Connector::take_outcome`] takes it.
    outcome: Option<Outcome>,
}

/// Splits addresses by family, keeping the resolver's order in each: the family of
/// the first address, then the other (Tornado's `_Connector.split`).
pub(crate) fn split(addrs: &[SocketAddr]) -> (VecDeque<usize>, VecDeque<usize>) {
    let Some(first) = addrs.first() else {
        return (VecDeque::new(), VecDeque::new());
    };
    let first_v4 = first.is_ipv4();
    (0..addrs.len()).partition(|&i| addrs[i].is_ipv4() == first_v4)
}

impl Connector {
    /// A connector over `addrs` (at least one).
    pub(crate) fn new(addrs: &[SocketAddr]) -> Connector {
        let (primary, secondary) = split(addrs);
        Connector {
            primary,
            secondary,
            secondary_started: false,
            pending: Vec::new(),
            remaining: addrs.len(),
            last_error: None,
            decided: false,
            outcome: None,
        }
    }

    /// Starts the first attempt of the first family.
    pub(crate) fn start(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.try_next(true, &mut out);
        out
    }

    /// Whether the second family has addresses still to try: the driver arms the
    /// happy-eyeballs timer only then.
    pub(crate) fn has_secondary(&self) -> bool {
        !self.secondary_started && !self.secondary.is_empty()
    }

    /// The attempt at address `i` failed with `e`: the next address of its family
    /// starts, and the second family starts at once if it was still waiting for the
    /// delay.
    pub(crate) fn on_failure(&mut self, i: usize, primary: bool, e: io::Error) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.finish_attempt(i) || self.decided {
            return out;
        }
        self.last_error = Some(e);
        self.try_next(primary, &mut out);
        // The first failure does not wait for the delay to try the other family.
        if !self.secondary_started {
            self.start_secondary(&mut out);
        }
        out
    }

    /// The attempt at address `i` connected: it wins and every other pending attempt is
    /// closed, unless the connection already has an outcome (then it is closed).
    pub(crate) fn on_success(&mut self, i: usize) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.finish_attempt(i) {
            return out;
        }
        if self.decided {
            // A late arrival.
            out.push(Action::Close(i));
            return out;
        }
        self.decide(Outcome::Connected(i));
        out.extend(self.pending.drain(..).map(Action::Close));
        out
    }

    /// The happy-eyeballs delay passed: the second family starts (once, and only while
    /// the connection has no outcome).
    pub(crate) fn on_timeout(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.decided && !self.secondary_started {
            self.start_secondary(&mut out);
        }
        out
    }

    /// The overall deadline passed: the connection times out (unless it already has an
    /// outcome) and every pending attempt is closed.
    pub(crate) fn on_connect_timeout(&mut self) -> Vec<Action> {
        if !self.decided {
            self.decide(Outcome::TimedOut);
        }
        self.pending.drain(..).map(Action::Close).collect()
    }

    /// Whether attempt `i` belongs to the first family.
    pub(crate) fn is_primary(&self, addrs: &[SocketAddr], i: usize) -> bool {
        addrs
            .first()
            .is_some_and(|a| a.is_ipv4() == addrs[i].is_ipv4())
    }

    /// Whether an outcome is waiting to be taken.
    pub(crate) fn has_outcome(&self) -> bool {
        self.outcome.is_some()
    }

    /// The outcome, once there is one (taken once).
    pub(crate) fn take_outcome(&mut self) -> Option<Outcome> {
        self.outcome.take()
    }

    fn decide(&mut self, outcome: Outcome) {
        self.decided = true;
        self.outcome = Some(outcome);
    }

    /// The attempts started and not yet finished.
    #[cfg(test)]
    fn pending(&self) -> Vec<usize> {
        let mut p = self.pending.clone();
        p.sort_unstable();
        p
    }

    /// Removes `i` from the pending attempts; `false` if it was not pending.
    fn finish_attempt(&mut self, i: usize) -> bool {
        let Some(pos) = self.pending.iter().position(|&p| p == i) else {
            return false;
        };
        self.pending.swap_remove(pos);
        self.remaining -= 1;
        true
    }

    fn start_secondary(&mut self, out: &mut Vec<Action>) {
        self.secondary_started = true;
        self.try_next(false, out);
    }

    /// Starts the next address of one family; when that family is done and nothing
    /// else can still succeed, the connection fails with the last error (Tornado's
    /// `try_connect`).
    fn try_next(&mut self, primary: bool, out: &mut Vec<Action>) {
        let queue = if primary {
            &mut self.primary
        } else {
            &mut self.secondary
        };
        match queue.pop_front() {
            Some(i) => {
                self.pending.push(i);
                out.push(Action::Connect(i));
            }
            None => {
                if self.remaining == 0 && !self.decided {
                    let e = self.last_error.take().unwrap_or_else(|| {
                        io::Error::new(io::ErrorKind::NotConnected, "connection failed")
                    });
                    self.decide(Outcome::Failed(e));
                }
            }
        }
    }
}

/// Tornado's `ConnectorTest` and `TestConnectorSplit`, on the state machine: `a` and `b`
/// are the first family (AF1), `c` and `d` the second (AF2); the tests play the
/// connects' outcomes and the timers by hand.
#[cfg(test)]
mod tests {
    use super::*;

    const A: usize = 0;
    const B: usize = 1;
    const C: usize = 2;
    const D: usize = 3;

    fn addrinfo() -> Vec<SocketAddr> {
        ["10.0.0.1:80", "10.0.0.2:80", "[fe80::1]:80", "[fe80::2]:80"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect()
    }

    /// The connector with its address list and a log of the streams it closed.
    struct Harness {
        addrs: Vec<SocketAddr>,
        conn: Connector,
        closed: Vec<usize>,
    }

    impl Harness {
        fn start(addrs: Vec<SocketAddr>) -> Harness {
            let mut conn = Connector::new(&addrs);
            let actions = conn.start();
            let mut h = Harness {
                addrs,
                conn,
                closed: Vec::new(),
            };
            h.apply(actions);
            h
        }

        fn apply(&mut self, actions: Vec<Action>) {
            for a in actions {
                if let Action::Close(i) = a {
                    self.closed.push(i);
                }
            }
        }

        fn assert_pending(&self, want: &[usize]) {
            let mut want = want.to_vec();
            want.sort_unstable();
            assert_eq!(self.conn.pending(), want);
        }

        fn resolve_connect(&mut self, i: usize, success: bool) {
            let actions = if success {
                self.conn.on_success(i)
            } else {
                let primary = self.conn.is_primary(&self.addrs, i);
                self.conn
                    .on_failure(i, primary, io::Error::other(format!("attempt {i}")))
            };
            self.apply(actions);
        }

        fn on_timeout(&mut self) {
            let a = self.conn.on_timeout();
            self.apply(a);
        }

        fn on_connect_timeout(&mut self) {
            let a = self.conn.on_connect_timeout();
            self.apply(a);
        }

        fn connected(&mut self) -> Option<usize> {
            match self.conn.take_outcome() {
                Some(Outcome::Connected(i)) => Some(i),
                other => panic!("expected a connection, got {other:?}"),
            }
        }

        fn failed(&mut self) -> io::Error {
            match self.conn.take_outcome() {
                Some(Outcome::Failed(e)) => e,
                other => panic!("expected a failure, got {other:?}"),
            }
        }

        fn timed_out(&mut self) {
            assert!(matches!(self.conn.take_outcome(), Some(Outcome::TimedOut)));
        }

        fn undecided(&self) -> bool {
            !self.conn.decided
        }
    }

    #[test]
    fn test_one_family() {
        let a = addrinfo();
        let (p, s) = split(&[a[A], a[B]]);
        assert_eq!((Vec::from(p), Vec::from(s)), (vec![0, 1], vec![]));
    }

    #[test]
    fn test_mixed() {
        let a = addrinfo();
        let (p, s) = split(&[a[A], a[C], a[B], a[D]]);
        assert_eq!((Vec::from(p), Vec::from(s)), (vec![0, 2], vec![1, 3]));
        // The first address decides which family goes first.
        let (p, s) = split(&[a[C], a[A]]);
        assert_eq!((Vec::from(p), Vec::from(s)), (vec![0], vec![1]));
    }

    #[test]
    fn test_immediate_success() {
        let mut h = Harness::start(addrinfo());
        h.assert_pending(&[A]);
        h.resolve_connect(A, true);
        assert_eq!(h.connected(), Some(A));
        assert!(h.closed.is_empty());
    }

    #[test]
    fn test_immediate_failure() {
        let mut h = Harness::start(vec![addrinfo()[A]]);
        h.assert_pending(&[A]);
        h.resolve_connect(A, false);
        assert_eq!(h.failed().to_string(), "attempt 0");
    }

    #[test]
    fn test_one_family_second_try() {
        let mut h = Harness::start(addrinfo()[..2].to_vec());
        h.assert_pending(&[A]);
        h.resolve_connect(A, false);
        h.assert_pending(&[B]);
        h.resolve_connect(B, true);
        assert_eq!(h.connected(), Some(B));
    }

    #[test]
    fn test_one_family_second_try_failure() {
        let mut h = Harness::start(addrinfo()[..2].to_vec());
        h.assert_pending(&[A]);
        h.resolve_connect(A, false);
        h.assert_pending(&[B]);
        h.resolve_connect(B, false);
        assert_eq!(h.failed().to_string(), "attempt 1");
    }

    #[test]
    fn test_one_family_second_try_timeout() {
        let mut h = Harness::start(addrinfo()[..2].to_vec());
        h.assert_pending(&[A]);
        // The delay passes while the first attempt is pending: nothing to start.
        h.on_timeout();
        h.assert_pending(&[A]);
        h.resolve_connect(A, false);
        h.assert_pending(&[B]);
        h.resolve_connect(B, true);
        assert_eq!(h.connected(), Some(B));
    }

    #[test]
    fn test_two_families_immediate_failure() {
        let mut h = Harness::start(addrinfo());
        h.assert_pending(&[A]);
        h.resolve_connect(A, false);
        h.assert_pending(&[B, C]);
        h.resolve_connect(B, false);
        h.resolve_connect(C, true);
        assert_eq!(h.connected(), Some(C));
        assert!(h.closed.is_empty());
    }

    #[test]
    fn test_two_families_timeout() {
        let mut h = Harness::start(addrinfo());
        h.assert_pending(&[A]);
        h.on_timeout();
        h.assert_pending(&[A, C]);
        h.resolve_connect(C, true);
        assert_eq!(h.connected(), Some(C));
        // The loser is closed; its failure afterwards starts nothing.
        assert_eq!(h.closed, vec![A]);
        h.resolve_connect(A, false);
        h.assert_pending(&[]);
    }

    #[test]
    fn test_success_after_timeout() {
        let mut h = Harness::start(addrinfo());
        h.assert_pending(&[A]);
        h.on_timeout();
        h.assert_pending(&[A, C]);
        h.resolve_connect(A, true);
        assert_eq!(h.connected(), Some(A));
        assert_eq!(h.closed, vec![C]);
    }

    #[test]
    fn late_winner_is_closed() {
        // A driver that reports a connect the connector already closed (it finished
        // in the same turn) gets told to close it again: nothing wins twice.
        let mut h = Harness::start(addrinfo());
        h.on_timeout();
        h.resolve_connect(A, true);
        assert_eq!(h.connected(), Some(A));
        let late = h.conn.on_success(C);
        assert!(late.is_empty(), "C was closed already: {late:?}");
        assert!(h.conn.take_outcome().is_none());
    }

    #[test]
    fn test_all_fail() {
        let mut h = Harness::start(addrinfo());
        h.assert_pending(&[A]);
        h.on_timeout();
        h.assert_pending(&[A, C]);
        h.resolve_connect(C, false);
        h.assert_pending(&[A, D]);
        h.resolve_connect(D, false);
        // One queue is now empty.
        h.assert_pending(&[A]);
        h.resolve_connect(A, false);
        h.assert_pending(&[B]);
        assert!(h.undecided());
        h.resolve_connect(B, false);
        assert_eq!(h.failed().to_string(), "attempt 1");
    }

    #[test]
    fn test_one_family_timeout_after_connect_timeout() {
        let mut h = Harness::start(addrinfo()[..2].to_vec());
        h.assert_pending(&[A]);
        h.on_connect_timeout();
        assert_eq!(h.closed, vec![A]);
        // After the deadline, the delay starts nothing.
        h.on_timeout();
        h.assert_pending(&[]);
        h.timed_out();
    }

    #[test]
    fn test_one_family_success_before_connect_timeout() {
        let mut h = Harness::start(addrinfo()[..2].to_vec());
        h.assert_pending(&[A]);
        h.resolve_connect(A, true);
        h.on_connect_timeout();
        h.assert_pending(&[]);
        assert!(h.closed.is_empty(), "the winner is not closed");
        assert_eq!(h.connected(), Some(A));
    }

    #[test]
    fn test_one_family_second_try_after_connect_timeout() {
        let mut h = Harness::start(addrinfo()[..2].to_vec());
        h.assert_pending(&[A]);
        h.resolve_connect(A, false);
        h.assert_pending(&[B]);
        h.on_connect_timeout();
        assert_eq!(h.closed, vec![B]);
        h.assert_pending(&[]);
        h.timed_out();
    }

    #[test]
    fn test_one_family_second_try_failure_before_connect_timeout() {
        let mut h = Harness::start(addrinfo()[..2].to_vec());
        h.assert_pending(&[A]);
        h.resolve_connect(A, false);
        h.assert_pending(&[B]);
        h.resolve_connect(B, false);
        h.on_connect_timeout();
        h.assert_pending(&[]);
        assert_eq!(h.failed().to_string(), "attempt 1");
    }

    #[test]
    fn test_two_family_timeout_before_connect_timeout() {
        let mut h = Harness::start(addrinfo());
        h.assert_pending(&[A]);
        h.on_timeout();
        h.assert_pending(&[A, C]);
        h.on_connect_timeout();
        h.closed.sort_unstable();
        assert_eq!(h.closed, vec![A, C]);
        h.assert_pending(&[]);
        h.timed_out();
    }

    #[test]
    fn test_two_family_success_after_timeout() {
        let mut h = Harness::start(addrinfo());
        h.assert_pending(&[A]);
        h.on_timeout();
        h.assert_pending(&[A, C]);
        h.resolve_connect(A, true);
        // The other pending stream is closed at once.
        assert_eq!(h.closed, vec![C]);
        h.assert_pending(&[]);
        assert_eq!(h.connected(), Some(A));
    }

    #[test]
    fn test_two_family_timeout_after_connect_timeout() {
        let mut h = Harness::start(addrinfo());
        h.assert_pending(&[A]);
        h.on_connect_timeout();
        assert_eq!(h.closed, vec![A]);
        h.on_timeout();
        // The second family is not started after the deadline.
        h.assert_pending(&[]);
        h.timed_out();
    }

    #[test]
    fn secondary_starts_once() {
        // A failure starts the second family; the delay passing later adds nothing.
        let mut h = Harness::start(addrinfo());
        h.resolve_connect(A, false);
        h.assert_pending(&[B, C]);
        h.on_timeout();
        h.assert_pending(&[B, C]);
        assert!(!h.conn.has_secondary());
    }
}
