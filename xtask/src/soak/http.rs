//! The soak's client side of HTTP/1.1: request builders, a response reader that frames
//! by Content-Length, chunked or close (a server may answer an error either way), and a
//! small seeded random generator, so a failing run can be replayed with `--seed`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The body `GET /` must answer with.
pub(crate) const HELLO: &[u8] = b"Hello, world!";

/// One keep-alive `GET /`.
pub(crate) const GET: &[u8] =
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: squall-soak\r\n\r\n";

/// How long any single read, write or connect of the soak may block.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A response as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// The server said `Connection: close` (or framed the body by closing).
    pub(crate) close: bool,
}

/// What [`frame`] found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// More bytes are needed.
    Partial,
    /// A whole response, `len` bytes of the buffer.
    Done(Response, usize),
    /// A head without Content-Length or chunked: the body runs to the close, and starts
    /// at `body_at`.
    UntilClose { status: u16, body_at: usize },
}

/// The largest response head the soak accepts (a server's error pages are small).
const MAX_HEAD: usize = 64 * 1024;

/// Frames the first response in `buf`. Interim `1xx` responses are skipped (they are
/// consumed as part of the final one).
pub(crate) fn frame(buf: &[u8]) -> io::Result<Frame> {
    let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let mut at = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        let head_len = match resp.parse(&buf[at..]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() - at > MAX_HEAD => {
                return Err(bad(format!("response head over {MAX_HEAD} bytes")))
            }
            Ok(httparse::Status::Partial) => return Ok(Frame::Partial),
            Err(e) => {
                let start = &buf[at..buf.len().min(at + 40)];
                return Err(bad(format!(
                    "unparsable response ({e}): {:?}",
                    String::from_utf8_lossy(start)
                )));
            }
        };
        let status = resp.code.unwrap_or(0);
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        for h in resp.headers.iter() {
            let value = String::from_utf8_lossy(h.value);
            if h.name.eq_ignore_ascii_case("content-length") {
                let n = value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| bad(format!("bad Content-Length {value:?}")))?;
                length = Some(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().trim().ends_with("chunked");
            } else if h.name.eq_ignore_ascii_case("connection") {
                close |= value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("close"));
            }
        }
        let body_at = at + head_len;
        if (100..200).contains(&status) {
            at = body_at;
            continue;
        }
        if status == 204 || status == 304 {
            return Ok(Frame::Done(
                Response {
                    status,
                    body: Vec::new(),
                    close,
                },
                body_at,
            ));
        }
        if chunked {
            return Ok(match dechunk(&buf[body_at..])? {
                Some((body, used)) => Frame::Done(
                    Response {
                        status,
                        body,
                        close,
                    },
                    body_at + used,
                ),
                None => Frame::Partial,
            });
        }
        return Ok(match length {
            Some(n) if buf.len() >= body_at + n => Frame::Done(
                Response {
                    status,
                    body: buf[body_at..body_at + n].to_vec(),
                    close,
                },
                body_at + n,
            ),
            Some(_) => Frame::Partial,
            None => Frame::UntilClose { status, body_at },
        });
    }
}

/// Decodes a whole chunked body (trailers skipped): `None` if incomplete, else the body
/// and the bytes it took.
fn dechunk(buf: &[u8]) -> io::Result<Option<(Vec<u8>, usize)>> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(eol) = find_crlf(&buf[at..]) else {
            return Ok(None);
        };
        let line = &buf[at..at + eol];
        let digits = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(digits)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or_else(|| bad("bad chunk size in response"))?;
        at += eol + 2;
        if size == 0 {
            // Trailer fields, then the empty line.
            loop {
                let Some(eol) = find_crlf(&buf[at..]) else {
                    return Ok(None);
                };
                at += eol + 2;
                if eol == 0 {
                    return Ok(Some((body, at)));
                }
            }
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[at..at + size]);
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err(bad("chunk data not followed by CRLF in response"));
        }
        at += size + 2;
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// Reads the next response from `stream`; `leftover` keeps bytes past it (pipelining).
/// `Ok(None)` if the server closed cleanly before sending any byte of one.
///
/// # Errors
///
/// Read errors (a timeout is `WouldBlock` or `TimedOut`), an unparsable response, or
/// a close in the middle of one (`UnexpectedEof`).
pub(crate) fn read_response(
    stream: &mut TcpStream,
    leftover: &mut Vec<u8>,
) -> io::Result<Option<Response>> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if !leftover.is_empty() {
            if let Frame::Done(resp, used) = frame(leftover)? {
                leftover.drain(..used);
                return Ok(Some(resp));
            }
        }
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            if leftover.is_empty() {
                return Ok(None);
            }
            if let Frame::UntilClose { status, body_at } = frame(leftover)? {
                let body = leftover[body_at..].to_vec();
                leftover.clear();
                return Ok(Some(Response {
                    status,
                    body,
                    close: true,
                }));
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "closed in the middle of a response ({} bytes)",
                    leftover.len()
                ),
            ));
        }
        leftover.extend_from_slice(&chunk[..n]);
    }
}

/// Opens a connection with the soak's timeouts on every operation.
pub(crate) fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Writes `data` in up to `pieces` writes cut at random places (so the server sees a
/// request arrive in parts).
pub(crate) fn write_in_pieces(
    stream: &mut TcpStream,
    data: &[u8],
    pieces: usize,
    rng: &mut Rng,
) -> io::Result<()> {
    let mut at = 0;
    for _ in 1..pieces {
        let left = data.len() - at;
        if left <= 1 {
            break;
        }
        let n = 1 + rng.below(left as u64 - 1) as usize;
        stream.write_all(&data[at..at + n])?;
        at += n;
    }
    stream.write_all(&data[at..])
}

/// `POST /echo` with `body`, framed by Content-Length.
pub(crate) fn post_content_length(body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// `POST /echo` with `body` sent chunked, in chunks of random sizes (1 to `max_chunk`
/// bytes), some with a chunk extension, which RFC 9112 §7.1.1 lets a client send: at
/// most `max_ext` bytes of them in all, as a well-formed request within the server's
/// limit on extensions (`Limits::max_chunk_extensions`; a body of tiny chunks would
/// pass it otherwise, and the server rightly answers 400).
pub(crate) fn post_chunked(
    body: &[u8],
    max_chunk: usize,
    max_ext: usize,
    rng: &mut Rng,
) -> Vec<u8> {
    const EXT: &str = ";soak=1";
    let mut req = b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut at = 0;
    let mut ext_left = max_ext;
    while at < body.len() {
        let n = (1 + rng.below(max_chunk.max(1) as u64) as usize).min(body.len() - at);
        let ext = if rng.below(8) == 0 && ext_left >= EXT.len() {
            ext_left -= EXT.len();
            EXT
        } else {
            ""
        };
        req.extend_from_slice(format!("{n:x}{ext}\r\n").as_bytes());
        req.extend_from_slice(&body[at..at + n]);
        req.extend_from_slice(b"\r\n");
        at += n;
    }
    req.extend_from_slice(b"0\r\n\r\n");
    req
}

/// xorshift64*: small, fast, seeded; not for anything but test data.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        // Zero is xorshift's fixed point; splitmix the seed so nearby seeds differ.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(buf: &[u8]) -> (Response, usize) {
        match frame(buf).unwrap() {
            Frame::Done(r, n) => (r, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn content_length_responses_frame_and_pipeline() {
        let one = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nServer: squall\r\n\r\nHello, world!";
        let two = [&one[..], &one[..]].concat();
        let (r, n) = done(&two);
        assert_eq!((r.status, r.body.as_slice(), r.close), (200, HELLO, false));
        assert_eq!(n, one.len());
        for cut in 0..one.len() {
            assert_eq!(frame(&one[..cut]).unwrap(), Frame::Partial, "cut {cut}");
        }
    }

    #[test]
    fn chunked_responses_are_decoded_in_any_cut() {
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;x=y\r\nhello\r\n1\r\n!\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let (r, n) = done(wire);
        assert_eq!(
            (r.status, r.body.as_slice(), r.close),
            (200, &b"hello!"[..], true)
        );
        assert_eq!(&wire[n..], b"NEXT");
        for cut in 0..wire.len() - 4 {
            assert_eq!(frame(&wire[..cut]).unwrap(), Frame::Partial, "cut {cut}");
        }
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(frame(bad).is_err());
    }

    #[test]
    fn interim_and_bodiless_and_close_delimited() {
        let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        let (r, n) = done(wire);
        assert_eq!((r.status, n), (204, wire.len()));
        let wire = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nbad";
        assert_eq!(
            frame(wire).unwrap(),
            Frame::UntilClose {
                status: 400,
                body_at: wire.len() - 3
            }
        );
        assert!(frame(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_requests_carry_the_body() {
        let mut rng = Rng::new(7);
        let body = rng.bytes(5000);
        let req = post_chunked(&body, 700, 1024, &mut rng);
        let head_end = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let (decoded, used) = dechunk(&req[head_end..]).unwrap().unwrap();
        assert_eq!(decoded, body);
        assert_eq!(head_end + used, req.len());
        let empty = post_chunked(b"", 10, 1024, &mut rng);
        assert!(empty.ends_with(b"\r\n\r\n0\r\n\r\n"));
    }

    /// A body of one-byte chunks carries extensions up to the cap, and no more.
    #[test]
    fn chunk_extensions_stay_within_the_cap() {
        let mut rng = Rng::new(9);
        let body = rng.bytes(20_000);
        let req = post_chunked(&body, 1, 700, &mut rng);
        let exts = req.windows(7).filter(|w| w == b";soak=1").count();
        assert!(exts > 0 && exts * 7 <= 700, "{exts} extensions");
    }

    #[test]
    fn rng_is_seeded_and_bounded() {
        let (mut a, mut b) = (Rng::new(1), Rng::new(1));
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
        assert!((0..1000).all(|_| a.below(10) < 10));
        assert_eq!(a.below(0), 0);
    }
}
