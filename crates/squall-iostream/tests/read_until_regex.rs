//! `read_until_regex`: Tornado's `iostream_test.py` regex tests, on every backend.
#![cfg(feature = "regex")]

use std::io::Write;

use bytes::Bytes;
use squall_ioloop::IoLoop;
use squall_iostream::regex::bytes::Regex;
use squall_iostream::{CloseCause, StreamError};
use squall_testing::{tcp_pair, tcp_with_std_peer};

fn re(p: &str) -> Regex {
    Regex::new(p).unwrap()
}

// A match that arrives in pieces, and the bytes after it left for the next read.
async fn read_until_regex_across_writes() {
    let (server, client) = tcp_pair().await;
    let pattern = re(r"\r?\n\r?\n");
    let reader = IoLoop::current().unwrap().spawn(async move {
        let head = server.read_until_regex(&pattern, None).await.unwrap();
        let rest = server.read_bytes(4, false).await.unwrap();
        (head, rest)
    });
    for piece in [
        &b"GET / HTTP/1.0\r"[..],
        b"\n",
        b"Host: x\r\n",
        b"\r",
        b"\nbody",
    ] {
        client.write(Bytes::copy_from_slice(piece)).await.unwrap();
        squall_ioloop::sleep(std::time::Duration::ZERO).await;
    }
    let (head, rest) = reader.await.unwrap();
    assert_eq!(&head[..], b"GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    assert_eq!(&rest[..], b"body");
}

// Tornado: test_read_until_regex_max_bytes.
async fn test_read_until_regex_max_bytes() {
    let (rs, ws) = tcp_pair().await;
    let def = re("def");
    // Extra room under the limit.
    ws.write(&b"abcdef"[..]).await.unwrap();
    assert_eq!(
        &rs.read_until_regex(&def, Some(50)).await.unwrap()[..],
        b"abcdef"
    );
    // Just enough room.
    ws.write(&b"abcdef"[..]).await.unwrap();
    assert_eq!(
        &rs.read_until_regex(&def, Some(6)).await.unwrap()[..],
        b"abcdef"
    );
    // Not enough: known only once more than the limit is there; the stream closes.
    let read = rs.read_until_regex(&def, Some(5));
    ws.write(&b"123456"[..]).await.unwrap();
    let err = read.await.unwrap_err();
    assert!(
        matches!(err, StreamError::Unsatisfiable { max_bytes: 5 }),
        "{err:?}"
    );
    assert!(rs.closed());
    assert!(matches!(rs.error(), Some(CloseCause::Unsatisfiable)));
}

// Tornado: test_read_until_regex_max_bytes_inline (the data is there before the read).
async fn test_read_until_regex_max_bytes_inline() {
    let (rs, mut ws) = tcp_with_std_peer().await;
    // On loopback the bytes are in the socket once write_all returns: the read's
    // first syscall gets them all, without waiting for the loop.
    ws.write_all(b"123456").unwrap();
    let err = rs.read_until_regex(&re("def"), Some(5)).await.unwrap_err();
    assert!(
        matches!(err, StreamError::Unsatisfiable { max_bytes: 5 }),
        "{err:?}"
    );
    assert!(rs.closed());
}

// Tornado: test_read_until_regex_max_bytes_ignores_extra: a match that ends past the
// limit fails, even when it arrives with the bytes that cross it.
async fn test_read_until_regex_max_bytes_ignores_extra() {
    let (rs, ws) = tcp_pair().await;
    ws.write(&b"abcdef"[..]).await.unwrap();
    let err = rs.read_until_regex(&re("def"), Some(5)).await.unwrap_err();
    assert!(
        matches!(err, StreamError::Unsatisfiable { max_bytes: 5 }),
        "{err:?}"
    );
    assert!(rs.closed());
}

// End-of-file before a match is a close, not an unsatisfiable read (Tornado's
// test_read_until_unsatisfied_after_close, for regexes); the bytes stay buffered.
async fn read_until_regex_eof_before_match() {
    let (rs, mut ws) = tcp_with_std_peer().await;
    ws.write_all(b"no match here").unwrap();
    drop(ws);
    let err = rs
        .read_until_regex(&re(r"\d+"), Some(100))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StreamError::Closed(CloseCause::Eof)),
        "{err:?}"
    );
    assert_eq!(rs.buffered_len(), 13);
}

// A pattern that matches the empty string resolves with nothing once a byte is there,
// and consumes nothing.
async fn read_until_regex_empty_match() {
    let (rs, ws) = tcp_pair().await;
    ws.write(&b"xyz"[..]).await.unwrap();
    let got = rs.read_until_regex(&re("a*"), None).await.unwrap();
    assert!(got.is_empty());
    assert_eq!(&rs.read_bytes(3, false).await.unwrap()[..], b"xyz");
}

squall_testing::backend_tests!(
    read_until_regex_across_writes,
    test_read_until_regex_max_bytes,
    test_read_until_regex_max_bytes_inline,
    test_read_until_regex_max_bytes_ignores_extra,
    read_until_regex_eof_before_match,
    read_until_regex_empty_match,
);
