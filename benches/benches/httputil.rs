//! The sans-IO HTTP/1.1 hot path: request-head parsing (a minimal GET and a typical
//! browser GET), `ServerConn` parsing and answering 16 pipelined requests, and response
//! head encoding.
//!
//! Run with `cargo bench -p squall-benches --bench httputil`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode, Version};
use squall_httputil::h1::{Event, ServerConn};
use squall_httputil::{parse_request_head, HeadParser, Limits, RequestInfo, ResponseEncoder};

const MINIMAL: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

const BROWSER: &[u8] = b"GET /static/app.js?v=3 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/index.html\r\n\
Connection: keep-alive\r\n\
Cookie: session=6f1e0c2a9b; theme=dark; _ga=GA1.2.123456789.1700000000\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
If-None-Match: \"5e8a-17c3\"\r\n\r\n";

fn head_parsing(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("httputil/parse_head");
    for (name, raw) in [("minimal", MINIMAL), ("browser", BROWSER)] {
        g.throughput(Throughput::Bytes(raw.len() as u64));
        // One call on a slice: copies the head once, then parses.
        g.bench_function(format!("{name}/slice"), |b| {
            b.iter(|| {
                parse_request_head(black_box(raw), &limits)
                    .unwrap()
                    .unwrap()
            })
        });
        // The server's way: split the head off the read buffer, values shared with it.
        g.bench_function(format!("{name}/bytesmut"), |b| {
            let mut parser = HeadParser::new();
            b.iter_batched_ref(
                || BytesMut::from(raw),
                |buf| parser.parse_bytes(buf, &limits).unwrap().unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn pipelined(c: &mut Criterion) {
    let mut input = Vec::new();
    for _ in 0..16 {
        input.extend_from_slice(MINIMAL);
    }
    let mut g = c.benchmark_group("httputil/server_conn");
    g.throughput(Throughput::Elements(16));
    g.bench_function("16_pipelined_hello", |b| {
        let mut out = BytesMut::with_capacity(16 * 128);
        let headers = HeaderMap::new();
        b.iter_batched_ref(
            || {
                (
                    ServerConn::new(Limits::default()),
                    BytesMut::from(&input[..]),
                )
            },
            |(conn, buf)| {
                out.clear();
                while let Some(event) = conn.poll(buf) {
                    match event {
                        Event::Head(head) => drop(head),
                        Event::End => {
                            conn.respond(StatusCode::OK, &headers, b"Hello, world!", &mut out)
                                .unwrap();
                        }
                        _ => unreachable!(),
                    }
                }
                black_box(out.len())
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn response_head(c: &mut Criterion) {
    let req = RequestInfo {
        version: Version::HTTP_11,
        is_head: false,
        keep_alive: true,
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("13"));
    headers.insert(header::SERVER, HeaderValue::from_static("squall"));
    let mut g = c.benchmark_group("httputil/response_head");
    let mut out = BytesMut::with_capacity(512);
    g.bench_function("200_three_headers", |b| {
        b.iter(|| {
            out.clear();
            let enc = ResponseEncoder::start(&req, StatusCode::OK, black_box(&headers), &mut out)
                .unwrap();
            black_box(enc.remaining())
        })
    });
    let empty = HeaderMap::new();
    g.bench_function("404_chunked", |b| {
        b.iter(|| {
            out.clear();
            let enc =
                ResponseEncoder::start(&req, StatusCode::NOT_FOUND, black_box(&empty), &mut out)
                    .unwrap();
            black_box(enc.framing())
        })
    });
    g.finish();
}

criterion_group!(benches, head_parsing, pipelined, response_head);
criterion_main!(benches);
