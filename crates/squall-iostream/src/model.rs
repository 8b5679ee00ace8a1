//! A reference model of `IoStream` reads, and a driver that checks the stream against
//! it: the fuzz target `iostream` and this crate's `model_agrees_with_the_stream`
//! proptest both call [`run`]. Built for tests and with the `model` feature only.
//!
//! `IoStream` reads over a Unix socket pair while a writer task feeds the peer end in
//! arbitrary chunks (with arbitrary loop turns between them) and then closes it.
//!
//! The input decodes into the stream's limits (`max_buffer_size`, `read_chunk_size`),
//! a list of read operations (`read_until` with a delimiter and `max_bytes`,
//! `read_bytes` partial or not, `read_into`, `read_parse` and `poll_read_parse` with a
//! length-prefixed frame parser, `poll_read_buf`, `take_buffered`, a read polled once
//! and dropped, a second read while one is pending), the writer's chunk sizes, and the
//! bytes to send.
//!
//! Invariants: no panic and no hang; every read returns exactly what a reference model
//! over the concatenated bytes predicts, or the error the model predicts (end of file,
//! `Unsatisfiable`, `BufferFull`, the parser's error, `TooLarge`, `ReadInProgress`);
//! bytes that arrived before the peer closed stay readable after end-of-file; a dropped
//! pending read consumes nothing; after a limit error the stream is closed with that
//! cause and what stays buffered is a prefix of the unread bytes.
//!
//! Where the outcome depends on how the kernel and the loop split the bytes (a partial
//! read's length; `TooLarge` against a frame that completes in the same read) the model
//! accepts each possible outcome and nothing else.

use std::future::{poll_fn, Future};
use std::os::unix::net::UnixStream;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use crate::{CloseCause, IoStream, ReadParseError, StreamError, DEFAULT_MAX_BUFFER_SIZE};
use bytes::{Bytes, BytesMut};
use squall_ioloop::{sleep, IoLoop};

const DELIMS: [&[u8]; 8] = [
    b"\n",
    b"\r\n",
    b"\r\n\r\n",
    b"ab",
    b"",
    b"\0",
    b"aaa",
    b"--x",
];

thread_local! {
    static LOOP: IoLoop = IoLoop::new().expect("an IoLoop");
}

/// The input, read a byte at a time (0 once it runs out).
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Until {
        delim: &'static [u8],
        max: Option<usize>,
    },
    Bytes {
        n: usize,
        partial: bool,
    },
    Into {
        n: usize,
        partial: bool,
    },
    Parse {
        max: usize,
    },
    PollParse {
        max: usize,
    },
    /// `poll_read_buf` into a buffer with this much spare capacity (and a few bytes
    /// already in it when `prefilled`): none and little go through the thread's
    /// buffer, a KiB or more is read into directly.
    ReadBuf {
        room: usize,
        prefilled: bool,
    },
    TakeBuffered {
        max: usize,
    },
    /// Holds the read slot with one read and checks that every other read is refused.
    Busy,
    /// Polls the read once and drops it if it is still pending.
    Dropped(Dropped),
}

#[derive(Debug, Clone, Copy)]
enum Dropped {
    Until(&'static [u8]),
    Bytes(usize),
    Parse,
}

fn decode_op(k: u8, a: u8, b: u8) -> Op {
    match k % 9 {
        0 => Op::Until {
            delim: DELIMS[usize::from(a % 8)],
            max: (b & 1 == 1).then_some(usize::from(b >> 1)),
        },
        1 => Op::Bytes {
            n: usize::from(a),
            partial: b & 1 == 1,
        },
        2 => Op::Into {
            n: usize::from(a),
            partial: b & 1 == 1,
        },
        3 => Op::Parse {
            max: usize::from(b),
        },
        4 => Op::PollParse {
            max: usize::from(b),
        },
        5 => Op::ReadBuf {
            room: [0, 16, 1023, 1024, 1025, 4096][usize::from(a % 6)],
            prefilled: b & 1 == 1,
        },
        6 => Op::TakeBuffered {
            max: usize::from(a),
        },
        7 => Op::Busy,
        _ => Op::Dropped(match a % 3 {
            0 => Dropped::Until(DELIMS[usize::from(b % 8)]),
            1 => Dropped::Bytes(usize::from(b)),
            _ => Dropped::Parse,
        }),
    }
}

/// What a read did, as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// Succeeded and consumed this many bytes (checked against the model's bytes).
    Take(usize),
    /// Succeeded with between 1 and this many bytes (a partial read).
    TakeUpTo(usize),
    /// Succeeded with between 0 and this many bytes (`take_buffered`).
    TakeAtMost(usize),
    Eof,
    Unsatisfiable,
    BufferFull,
    BadFrame,
    TooLarge,
}

fn accepts(expected: &[Outcome], got: Outcome) -> bool {
    expected.iter().any(|&e| match (e, got) {
        (Outcome::TakeUpTo(m), Outcome::Take(n)) => (1..=m).contains(&n),
        (Outcome::TakeAtMost(m), Outcome::Take(n)) => n <= m,
        (e, g) => e == g,
    })
}

/// The frame parser given to `read_parse`: one header byte `h`, then `h & 15` payload
/// bytes; `0xFF` is a malformed header.
#[derive(Debug)]
struct BadFrame;

fn frame(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, BadFrame> {
    let Some(&h) = buf.first() else {
        return Ok(None);
    };
    if h == 0xFF {
        return Err(BadFrame);
    }
    let need = 1 + usize::from(h & 0x0F);
    Ok((buf.len() >= need).then(|| (buf[1..need].to_vec(), need)))
}

/// The reference model: the bytes the writer sends, how many the reads consumed, and
/// the stream's `max_buffer_size`.
struct Model {
    data: Vec<u8>,
    pos: usize,
    limit: usize,
}

impl Model {
    fn rest(&self) -> &[u8] {
        &self.data[self.pos..]
    }

    /// A read whose condition holds once `at` bytes are buffered (`None`: never, given
    /// the bytes that will come), with `reached` as its result then. The stream buffers
    /// at most `limit` bytes and only sees end-of-file once it has read every byte.
    fn settle(&self, at: Option<usize>, reached: Outcome) -> Vec<Outcome> {
        let (r, l) = (self.rest().len(), self.limit);
        match at {
            Some(t) if t <= r => vec![if t <= l { reached } else { Outcome::BufferFull }],
            // Exactly full is not past the limit: a full buffer looks for one more byte
            // and finds end-of-file.
            _ if r <= l => vec![Outcome::Eof],
            _ => vec![Outcome::BufferFull],
        }
    }

    fn until(&self, delim: &[u8], max: Option<usize>) -> Vec<Outcome> {
        if delim.is_empty() {
            return vec![Outcome::Take(0)];
        }
        let rest = self.rest();
        let m = rest
            .windows(delim.len())
            .position(|w| w == delim)
            .map(|i| i + delim.len());
        match (m, max) {
            (Some(m), None) => self.settle(Some(m), Outcome::Take(m)),
            (Some(m), Some(x)) if m <= x => self.settle(Some(m), Outcome::Take(m)),
            // Known unsatisfiable once more than `x` bytes are buffered.
            (_, Some(x)) => self.settle(Some(x + 1), Outcome::Unsatisfiable),
            (None, None) => self.settle(None, Outcome::Eof),
        }
    }

    fn bytes(&self, n: usize, partial: bool) -> Vec<Outcome> {
        let r = self.rest().len();
        match (n, partial) {
            (0, _) => vec![Outcome::Take(0)],
            (_, true) if r == 0 => vec![Outcome::Eof],
            (_, true) => vec![Outcome::TakeUpTo(n.min(r))],
            (_, false) => self.settle(Some(n), Outcome::Take(n)),
        }
    }

    fn read_into(&self, n: usize, partial: bool) -> Vec<Outcome> {
        let r = self.rest().len();
        match (n, partial) {
            (0, _) => vec![Outcome::Take(0)],
            _ if r == 0 => vec![Outcome::Eof],
            (_, true) => vec![Outcome::TakeUpTo(n.min(r))],
            // Not bound by max_buffer_size: the bytes go straight into the caller's buffer.
            (_, false) if n <= r => vec![Outcome::Take(n)],
            (_, false) => vec![Outcome::Eof],
        }
    }

    fn parse(&self, max: usize) -> Vec<Outcome> {
        let max = max.max(1);
        let rest = self.rest();
        let Some(&h) = rest.first() else {
            return self.settle(None, Outcome::Eof);
        };
        let (t, reached) = if h == 0xFF {
            (1, Outcome::BadFrame)
        } else {
            let need = 1 + usize::from(h & 0x0F);
            (need, Outcome::Take(need))
        };
        if t <= max {
            return self.settle(Some(t), reached);
        }
        // `max` bytes without a frame: TooLarge, unless the read that took the buffer
        // past `max` also completed the frame.
        let (r, l) = (rest.len(), self.limit);
        if max > r {
            return self.settle(None, Outcome::Eof);
        }
        if max > l {
            return vec![Outcome::BufferFull];
        }
        if t <= r && t <= l {
            vec![Outcome::TooLarge, reached]
        } else {
            vec![Outcome::TooLarge]
        }
    }
}

fn stream_outcome(e: &StreamError, m: &Model, max_bytes: Option<usize>) -> Outcome {
    match e {
        StreamError::Closed(CloseCause::Eof) => Outcome::Eof,
        StreamError::Unsatisfiable { max_bytes: x } => {
            assert_eq!(Some(*x), max_bytes, "Unsatisfiable with another max_bytes");
            Outcome::Unsatisfiable
        }
        StreamError::BufferFull { limit } => {
            assert_eq!(*limit, m.limit, "BufferFull with another limit");
            Outcome::BufferFull
        }
        e => panic!("unexpected stream error {e:?}"),
    }
}

fn parse_outcome(
    r: Result<Vec<u8>, ReadParseError<BadFrame>>,
    m: &Model,
    max: usize,
) -> (Outcome, Option<Vec<u8>>) {
    match r {
        Ok(v) => {
            let n = v.len() + 1;
            (Outcome::Take(n), Some(v))
        }
        Err(ReadParseError::Parse(BadFrame)) => (Outcome::BadFrame, None),
        Err(ReadParseError::TooLarge { max_bytes }) => {
            assert_eq!(max_bytes, max.max(1));
            (Outcome::TooLarge, None)
        }
        Err(ReadParseError::Stream(e)) => (stream_outcome(&e, m, None), None),
    }
}

/// Polls `fut` once: `Some(output)` if it completed, `None` if it was pending.
async fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        Poll::Ready(match fut.as_mut().poll(cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        })
    })
    .await
}

/// Checks one read's result against the model and advances it. Returns `true` once a
/// limit closed the stream.
fn judge(
    m: &mut Model,
    op: &Op,
    r: &IoStream,
    expected: &[Outcome],
    got: Outcome,
    bytes: Option<&[u8]>,
) -> bool {
    assert!(
        accepts(expected, got),
        "{op:?} at {} of {} (limit {}): expected one of {expected:?}, got {got:?}",
        m.pos,
        m.data.len(),
        m.limit
    );
    match got {
        Outcome::Take(n) => {
            if let Some(b) = bytes {
                assert_eq!(b, &m.rest()[..n], "{op:?} returned other bytes");
            }
            m.pos += n;
            false
        }
        Outcome::Unsatisfiable | Outcome::BufferFull => {
            assert!(r.closed(), "a limit error leaves the stream open");
            let cause = r.error();
            match got {
                // A stream that had already seen end-of-file keeps that cause.
                Outcome::Unsatisfiable => assert!(
                    matches!(cause, Some(CloseCause::Unsatisfiable | CloseCause::Eof)),
                    "{cause:?}"
                ),
                _ => assert!(matches!(cause, Some(CloseCause::BufferFull)), "{cause:?}"),
            }
            true
        }
        Outcome::Eof => {
            assert!(r.closed(), "end-of-file without a closed stream");
            if let Op::Into { .. } = op {
                // read_into had moved everything into the caller's buffer.
                m.pos = m.data.len();
            }
            false
        }
        Outcome::BadFrame | Outcome::TooLarge => {
            assert!(
                matches!(r.error(), None | Some(CloseCause::Eof)),
                "a parse error closed the stream: {:?}",
                r.error()
            );
            false
        }
        Outcome::TakeUpTo(_) | Outcome::TakeAtMost(_) => unreachable!(),
    }
}

/// Runs one read of `op`; returns `true` once a limit closed the stream.
async fn run_op(m: &mut Model, r: &IoStream, op: Op) -> bool {
    match op {
        Op::Until { delim, max } => {
            let exp = m.until(delim, max);
            let res = r.read_until(delim, max).await;
            let (got, b) = match &res {
                Ok(b) => (Outcome::Take(b.len()), Some(&b[..])),
                Err(e) => (stream_outcome(e, m, max), None),
            };
            judge(m, &op, r, &exp, got, b)
        }
        Op::Bytes { n, partial } => {
            let exp = m.bytes(n, partial);
            let res = r.read_bytes(n, partial).await;
            let (got, b) = match &res {
                Ok(b) => (Outcome::Take(b.len()), Some(&b[..])),
                Err(e) => (stream_outcome(e, m, None), None),
            };
            judge(m, &op, r, &exp, got, b)
        }
        Op::Into { n, partial } => {
            let exp = m.read_into(n, partial);
            let mut buf = vec![0u8; n];
            let res = r.read_into(&mut buf, partial).await;
            let (got, b) = match &res {
                Ok(k) => (Outcome::Take(*k), Some(&buf[..*k])),
                Err(e) => (stream_outcome(e, m, None), None),
            };
            judge(m, &op, r, &exp, got, b)
        }
        Op::Parse { max } | Op::PollParse { max } => {
            let exp = m.parse(max);
            let rest = m.rest().to_vec();
            let mut parser = |buf: &[u8]| {
                assert_eq!(buf, &rest[..buf.len()], "read_parse saw bytes out of order");
                frame(buf)
            };
            let res = if let Op::Parse { .. } = op {
                r.read_parse(max, parser).await
            } else {
                poll_fn(|cx| r.poll_read_parse(cx, max, &mut parser)).await
            };
            let (got, v) = parse_outcome(res, m, max);
            if let Some(v) = v {
                assert_eq!(
                    v,
                    &rest[1..1 + v.len()],
                    "read_parse returned another frame"
                );
            }
            judge(m, &op, r, &exp, got, None)
        }
        Op::ReadBuf { room, prefilled } => {
            let rest = m.rest().len();
            let exp = if rest == 0 {
                vec![Outcome::Eof]
            } else {
                vec![Outcome::TakeUpTo(rest)]
            };
            const PREFIX: &[u8] = b"kept";
            let prefix = if prefilled { PREFIX } else { b"" };
            let mut dst = BytesMut::with_capacity(prefix.len() + room);
            dst.extend_from_slice(prefix);
            let res = poll_fn(|cx| r.poll_read_buf(cx, &mut dst)).await;
            assert_eq!(&dst[..prefix.len()], prefix, "bytes already in dst kept");
            let got = match &res {
                Ok(0) => Outcome::Eof,
                Ok(k) => {
                    assert_eq!(*k, dst.len() - prefix.len());
                    Outcome::Take(*k)
                }
                Err(e) => stream_outcome(e, m, None),
            };
            judge(m, &op, r, &exp, got, Some(&dst[prefix.len()..]))
        }
        Op::TakeBuffered { max } => {
            let exp = vec![Outcome::TakeAtMost(max.min(m.rest().len()))];
            let b = r.take_buffered(max);
            judge(m, &op, r, &exp, Outcome::Take(b.len()), Some(&b))
        }
        Op::Busy => {
            let held = r.read_bytes(1, false);
            assert!(r.reading());
            assert!(matches!(
                r.read_until(b"\n", None).await,
                Err(StreamError::ReadInProgress)
            ));
            assert!(matches!(
                r.read_until(b"", None).await,
                Err(StreamError::ReadInProgress)
            ));
            assert!(matches!(
                r.read_bytes(0, false).await,
                Err(StreamError::ReadInProgress)
            ));
            assert!(matches!(
                r.read_into(&mut [0u8; 4], true).await,
                Err(StreamError::ReadInProgress)
            ));
            assert!(matches!(
                r.read_parse(8, frame).await,
                Err(ReadParseError::Stream(StreamError::ReadInProgress))
            ));
            let mut dst = BytesMut::new();
            assert!(matches!(
                poll_fn(|cx| r.poll_read_buf(cx, &mut dst)).await,
                Err(StreamError::ReadInProgress)
            ));
            drop(held);
            assert!(!r.reading());
            false
        }
        Op::Dropped(d) => match d {
            Dropped::Until(delim) => {
                let exp = m.until(delim, None);
                match poll_once(r.read_until(delim, None)).await {
                    None => false,
                    Some(Ok(b)) => judge(m, &op, r, &exp, Outcome::Take(b.len()), Some(&b)),
                    Some(Err(e)) => {
                        let got = stream_outcome(&e, m, None);
                        judge(m, &op, r, &exp, got, None)
                    }
                }
            }
            Dropped::Bytes(n) => {
                let exp = m.bytes(n, false);
                match poll_once(r.read_bytes(n, false)).await {
                    None => false,
                    Some(Ok(b)) => judge(m, &op, r, &exp, Outcome::Take(b.len()), Some(&b)),
                    Some(Err(e)) => {
                        let got = stream_outcome(&e, m, None);
                        judge(m, &op, r, &exp, got, None)
                    }
                }
            }
            Dropped::Parse => {
                let exp = m.parse(64);
                let rest = m.rest().to_vec();
                match poll_once(r.read_parse(64, frame)).await {
                    None => false,
                    Some(res) => {
                        let (got, v) = parse_outcome(res, m, 64);
                        if let Some(v) = v {
                            assert_eq!(v, &rest[1..1 + v.len()]);
                        }
                        judge(m, &op, r, &exp, got, None)
                    }
                }
            }
        },
    }
}

/// Decodes `input` into stream limits, reads, writer cuts and bytes, runs it all on
/// this thread's loop over a Unix socket pair, and panics at the first read whose
/// result the reference model does not predict. Any input is valid.
///
/// # Panics
///
/// When the stream disagrees with the model (that is the point), or the run does not
/// finish within 20 seconds.
pub fn run(input: &[u8]) {
    let mut c = Cursor(input);
    let (mode, lp) = (c.byte(), c.byte());
    let limit = match mode % 4 {
        0 | 1 => DEFAULT_MAX_BUFFER_SIZE,
        2 => 1 + usize::from(lp % 32),
        _ => 1 + usize::from(lp) * 4,
    };
    let chunk = match c.byte() {
        0 => None,
        n => Some(usize::from(n)),
    };
    let ops: Vec<Op> = (0..c.byte() % 12)
        .map(|_| decode_op(c.byte(), c.byte(), c.byte()))
        .collect();
    // Writer pieces: (length, loop turns to yield after it).
    let cuts: Vec<(usize, u8)> = (0..c.byte() % 16)
        .map(|_| {
            let b = c.byte();
            (1 + usize::from(b & 0x3F), b >> 6)
        })
        .collect();
    let data = c.0.to_vec();

    LOOP.with(|io_loop| {
        let run = io_loop.run_sync(
            async move {
                let (a, b) = UnixStream::pair().expect("socketpair");
                let r = IoStream::new(a).expect("reader");
                let w = IoStream::new(b).expect("writer");
                r.set_max_buffer_size(limit);
                if let Some(n) = chunk {
                    r.set_read_chunk_size(n);
                }
                let sent = Bytes::from(data.clone());
                let writer = IoLoop::current().expect("current loop").spawn(async move {
                    let mut rest = sent;
                    for (len, turns) in cuts {
                        if rest.is_empty() {
                            break;
                        }
                        let piece = rest.split_to(len.min(rest.len()));
                        w.write(piece).await?;
                        for _ in 0..turns {
                            sleep(Duration::ZERO).await;
                        }
                    }
                    if !rest.is_empty() {
                        w.write(rest).await?;
                    }
                    w.close();
                    Ok::<(), StreamError>(())
                });

                let mut m = Model {
                    data,
                    pos: 0,
                    limit,
                };
                let mut dead = false;
                for op in ops {
                    if run_op(&mut m, &r, op).await {
                        dead = true;
                        break;
                    }
                }
                if dead {
                    // Closed by a limit: what stays buffered is a prefix of the unread
                    // bytes, and every later read fails with the same cause.
                    let cause = r.error();
                    let left = r
                        .read_until_close()
                        .await
                        .expect("read_until_close on a closed stream");
                    assert_eq!(&left[..], &m.rest()[..left.len()]);
                    match r.read_bytes(1, false).await {
                        Err(StreamError::Closed(c)) => {
                            assert_eq!(format!("{:?}", Some(c)), format!("{cause:?}"));
                        }
                        other => panic!("read after a limit close: {other:?}"),
                    }
                    // The writer may or may not have run into the closed socket.
                    let _ = writer.await.expect("writer task");
                } else {
                    let exp = m.settle(None, Outcome::Eof);
                    match r.read_until_close().await {
                        Ok(b) => {
                            assert!(
                                exp.contains(&Outcome::Eof),
                                "read_until_close: expected {exp:?}"
                            );
                            assert_eq!(&b[..], m.rest(), "read_until_close returned other bytes");
                            assert!(r.closed());
                            assert!(
                                matches!(r.error(), Some(CloseCause::Eof)),
                                "{:?}",
                                r.error()
                            );
                            assert_eq!(r.buffered_len(), 0);
                            writer
                                .await
                                .expect("writer task")
                                .expect("the writer's writes");
                        }
                        Err(StreamError::BufferFull { limit: l }) => {
                            assert_eq!(l, limit);
                            assert!(
                                exp.contains(&Outcome::BufferFull),
                                "read_until_close: expected {exp:?}"
                            );
                            let _ = writer.await.expect("writer task");
                        }
                        Err(e) => panic!("read_until_close: {e:?}"),
                    }
                }
            },
            Some(Duration::from_secs(20)),
        );
        if let Err(e) = run {
            panic!("the run did not finish: {e}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn model(data: &[u8], limit: usize) -> Model {
        Model {
            data: data.to_vec(),
            pos: 0,
            limit,
        }
    }

    #[test]
    fn the_model_predicts_reads() {
        let m = model(b"ab\ncd\r\n", 100);
        assert_eq!(m.until(b"\n", None), [Outcome::Take(3)]);
        assert_eq!(m.until(b"\r\n", Some(4)), [Outcome::Unsatisfiable]);
        assert_eq!(m.until(b"zz", None), [Outcome::Eof]);
        assert_eq!(m.until(b"", None), [Outcome::Take(0)]);
        assert_eq!(m.bytes(4, false), [Outcome::Take(4)]);
        assert_eq!(m.bytes(40, false), [Outcome::Eof]);
        assert_eq!(m.bytes(40, true), [Outcome::TakeUpTo(7)]);
        // Past the buffer limit before the delimiter: BufferFull.
        let m = model(b"abcdefgh\n", 4);
        assert_eq!(m.until(b"\n", None), [Outcome::BufferFull]);
        // Exactly full at end-of-file is not past the limit.
        let m = model(b"abcd", 4);
        assert_eq!(m.until(b"\n", None), [Outcome::Eof]);
    }

    #[test]
    fn the_model_predicts_frames() {
        // Header 0x02: two payload bytes.
        let m = model(&[0x02, 7, 8, 0x01], 100);
        assert_eq!(m.parse(8), [Outcome::Take(3)]);
        assert_eq!(frame(&[0x02, 7, 8]).unwrap(), Some((vec![7, 8], 3)));
        assert_eq!(frame(&[0x02, 7]).unwrap(), None);
        assert!(frame(&[0xFF]).is_err());
        let m = model(&[0xFF], 100);
        assert_eq!(m.parse(8), [Outcome::BadFrame]);
        // The frame needs 3 bytes, max is 2: TooLarge, or the frame if one read
        // brought it all.
        let m = model(&[0x02, 7, 8], 100);
        assert_eq!(m.parse(2), [Outcome::TooLarge, Outcome::Take(3)]);
    }

    #[test]
    fn outcomes_accept_only_what_they_say() {
        assert!(accepts(&[Outcome::TakeUpTo(3)], Outcome::Take(3)));
        assert!(!accepts(&[Outcome::TakeUpTo(3)], Outcome::Take(0)));
        assert!(!accepts(&[Outcome::TakeUpTo(3)], Outcome::Take(4)));
        assert!(accepts(&[Outcome::TakeAtMost(3)], Outcome::Take(0)));
        assert!(!accepts(&[Outcome::Eof], Outcome::BufferFull));
    }

    /// The fuzz target's seeds, as regression inputs (when the repository's `fuzz/`
    /// folder is there: a packaged crate has none).
    #[test]
    fn fuzz_seeds_agree_with_the_model() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/iostream");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            eprintln!("SKIP: no fuzz corpus at {}", dir.display());
            return;
        };
        let mut n = 0;
        for e in entries {
            let path = e.unwrap().path();
            if path
                .file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with("seed-"))
            {
                run(&std::fs::read(&path).unwrap());
                n += 1;
            }
        }
        assert!(n > 0, "no seed in {}", dir.display());
    }

    proptest! {
        // Each case opens a socket pair and runs up to 11 reads on the loop: a few
        // hundred cases take about a second.
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The fuzz target's property, on stable, on every `cargo test`: whatever the
        /// input, every read returns what the model predicts.
        #[test]
        fn model_agrees_with_the_stream(input in proptest::collection::vec(any::<u8>(), 0..600)) {
            run(&input);
        }

        /// The same, with inputs shaped like the interesting ones: small buffer
        /// limits, many reads, many writer cuts, and bytes from a small alphabet so that
        /// delimiters and frames occur.
        #[test]
        fn model_agrees_on_shaped_inputs(
            mode in 2u8..4,
            lp in any::<u8>(),
            chunk in any::<u8>(),
            ops in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 0..11),
            cuts in proptest::collection::vec(any::<u8>(), 0..15),
            data in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a'), Just(b'b'), Just(0u8), Just(0x02u8), Just(b'-'), Just(b'x')], 0..300),
        ) {
            let mut input = vec![mode, lp, chunk, ops.len() as u8];
            for (k, a, b) in &ops {
                input.extend([*k, *a, *b]);
            }
            input.push(cuts.len() as u8);
            input.extend(&cuts);
            input.extend(&data);
            run(&input);
        }
    }
}
