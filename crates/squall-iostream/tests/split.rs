//! proptest: however the input bytes are split into writes, the same reads return the
//! same bytes (Tornado's read functions are chunking-independent; ours too, including
//! the resumable `read_until` search and the zero-copy `read_parse`).

use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use squall_ioloop::{sleep, IoLoop};
use squall_iostream::IoStream;

#[derive(Debug, Clone, Copy)]
enum Op {
    Until,
    Bytes(usize),
    Parse,
}

/// What each op returns on the whole input, read in order.
fn model(input: &[u8], ops: &[Op]) -> Vec<(Op, Vec<u8>)> {
    let mut pos = 0;
    let mut out = Vec::new();
    let mut i = 0;
    while pos < input.len() {
        let op = ops[i % ops.len()];
        i += 1;
        let op = match op {
            Op::Bytes(k) if pos + k > input.len() => Op::Until,
            o => o,
        };
        let end = match op {
            Op::Until | Op::Parse => {
                pos + input[pos..].iter().position(|&b| b == b'\n').unwrap() + 1
            }
            Op::Bytes(k) => pos + k,
        };
        out.push((op, input[pos..end].to_vec()));
        pos = end;
    }
    out
}

fn run_case(backend: &str, input: Vec<u8>, cuts: Vec<usize>, ops: Vec<Op>) -> Vec<Vec<u8>> {
    let expected = model(&input, &ops);
    let plan: Vec<Op> = expected.iter().map(|(op, _)| *op).collect();
    let io_loop = squall_testing::new_loop(backend);
    let got = io_loop
        .run_sync(
            async move {
                let (r, w) = IoStream::pipe().unwrap();
                r.set_read_chunk_size(7);
                let io_loop = IoLoop::current().unwrap();
                let writer = io_loop.spawn(async move {
                    let mut rest = Bytes::from(input);
                    for c in cuts {
                        if rest.is_empty() {
                            break;
                        }
                        let piece = rest.split_to(c.min(rest.len()));
                        w.write(piece).await.unwrap();
                        sleep(Duration::ZERO).await;
                    }
                    if !rest.is_empty() {
                        w.write(rest).await.unwrap();
                    }
                    w.close();
                });
                let mut got = Vec::new();
                for op in plan {
                    let b = match op {
                        Op::Until => r.read_until(b"\n", None).await.unwrap().to_vec(),
                        Op::Bytes(k) => r.read_bytes(k, false).await.unwrap().to_vec(),
                        Op::Parse => r
                            .read_parse(1 << 20, |buf: &[u8]| {
                                Ok::<_, ()>(
                                    buf.iter()
                                        .position(|&b| b == b'\n')
                                        .map(|i| (buf[..=i].to_vec(), i + 1)),
                                )
                            })
                            .await
                            .unwrap(),
                    };
                    got.push(b);
                }
                assert!(r.read_until_close().await.unwrap().is_empty());
                writer.await.unwrap();
                got
            },
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    io_loop.close(true).unwrap();
    let want: Vec<Vec<u8>> = expected.into_iter().map(|(_, b)| b).collect();
    assert_eq!(got, want);
    got
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Until),
        (1usize..20).prop_map(Op::Bytes),
        Just(Op::Parse)
    ]
}

fn lines() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::collection::vec(0u8..255, 0..40), 1..12).prop_map(|ls| {
        let mut v = Vec::new();
        for l in ls {
            v.extend(l.into_iter().filter(|&b| b != b'\n'));
            v.push(b'\n');
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_split_gives_the_same_reads(
        input in lines(),
        cuts in prop::collection::vec(1usize..30, 0..40),
        ops in prop::collection::vec(op(), 1..6),
    ) {
        run_case(squall_testing::BACKENDS[0], input, cuts, ops);
    }
}

#[test]
fn any_split_on_poll_and_select() {
    // A few fixed cases on the other backends (proptest's cases run on the native one).
    let input: Vec<u8> = b"alpha\nbe\n\ngamma delta\nx\n".repeat(5);
    for backend in ["poll", "select"] {
        for step in [1, 2, 3, 5, 8, 13] {
            let cuts = vec![step; input.len() / step + 1];
            run_case(
                backend,
                input.clone(),
                cuts,
                vec![Op::Until, Op::Bytes(4), Op::Parse],
            );
        }
    }
}
