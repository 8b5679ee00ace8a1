//! A streaming gzip inflater with a cap on the inflated size, for
//! `Content-Encoding: gzip` request bodies (Tornado's `decompress_request`).

use flate2::{Crc, Decompress, FlushDecompress, Status};

use crate::error::ParseError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the 10-byte fixed header.
    Header,
    /// Reading the 2-byte FEXTRA length.
    ExtraLen,
    /// Skipping FEXTRA bytes.
    Extra(u16),
    /// Skipping the zero-terminated FNAME.
    Name,
    /// Skipping the zero-terminated FCOMMENT.
    Comment,
    /// Skipping the 2-byte FHCRC.
    HeaderCrc,
    /// Inflating the deflate stream.
    Deflate,
    /// Reading the 8-byte trailer (CRC-32, size mod 2^32).
    Trailer,
    /// Between members: the input may end here, or another member may start.
    Done,
}

const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;

/// Inflate a gzip stream fed in pieces of any size, holding the total inflated size to
/// a cap so that a small body cannot become a large one (a decompression bomb).
///
/// Each call produces at most `max_out` bytes, so the caller bounds its memory per step
/// as Tornado's `chunk_size` does; concatenated gzip members are read one after another;
/// the CRC-32 and length of each member are checked.
///
/// ```
/// use std::io::Write;
/// use squall_httputil::{GzipInflater, ParseError};
///
/// let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
/// enc.write_all(&[b'a'; 10_000]).unwrap();
/// let gz = enc.finish().unwrap();
///
/// let mut inflater = GzipInflater::new(1 << 20);
/// let mut out = Vec::new();
/// inflater.inflate_all(&gz, &mut out)?;
/// inflater.finish()?;
/// assert_eq!(out.len(), 10_000);
///
/// // The same stream under a 1000-byte cap is refused as soon as it passes the cap.
/// let mut small = GzipInflater::new(1000);
/// assert_eq!(small.inflate_all(&gz, &mut Vec::new()), Err(ParseError::BodyTooLarge));
/// # Ok::<(), ParseError>(())
/// ```
#[derive(Debug)]
pub struct GzipInflater {
    state: State,
    header: [u8; 10],
    have: usize,
    flags: u8,
    inflate: Decompress,
    crc: Crc,
    trailer: [u8; 8],
    total_out: u64,
    max_output: u64,
    /// The last inflate call filled its output: more may be pending without input.
    maybe_more: bool,
}

impl GzipInflater {
    /// An inflater that refuses to produce more than `max_output` bytes in all.
    pub fn new(max_output: u64) -> Self {
        GzipInflater {
            state: State::Header,
            header: [0; 10],
            have: 0,
            flags: 0,
            inflate: Decompress::new(false),
            crc: Crc::new(),
            trailer: [0; 8],
            total_out: 0,
            max_output,
            maybe_more: false,
        }
    }

    /// Bytes produced so far.
    pub fn total_out(&self) -> u64 {
        self.total_out
    }

    /// Whether any input was fed: a body that turned out empty (a HEAD, a 204 or 304
    /// answer, `Content-Length: 0`, each with `Content-Encoding: gzip`) has nothing to
    /// check with [`finish`](Self::finish).
    pub fn started(&self) -> bool {
        !(self.state == State::Header && self.have == 0 && self.total_out == 0)
    }

    /// Inflate from `input`, appending at most `max_out` bytes to `out`, and return how
    /// many input bytes were used. When `max_out` bytes were produced, call again with
    /// the rest of the input (possibly empty): more output may be pending.
    ///
    /// # Errors
    /// [`ParseError::InvalidGzip`] for a bad header, deflate data, CRC or length, or
    /// bytes after a member that do not start another; [`ParseError::BodyTooLarge`]
    /// once the total would pass the cap.
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_out: usize,
    ) -> Result<usize, ParseError> {
        let mut pos = 0;
        let mut produced = 0;
        while pos < input.len() || (self.state == State::Deflate && self.maybe_more) {
            match self.state {
                State::Done => {
                    // Another member may follow; anything else is garbage.
                    self.state = State::Header;
                    self.have = 0;
                }
                State::Header => {
                    let n = (10 - self.have).min(input.len() - pos);
                    self.header[self.have..self.have + n].copy_from_slice(&input[pos..pos + n]);
                    self.have += n;
                    pos += n;
                    if self.have == 10 {
                        let h = self.header;
                        if h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 || h[3] & 0xe0 != 0 {
                            return Err(ParseError::InvalidGzip);
                        }
                        self.flags = h[3];
                        self.have = 0;
                        self.state = self.after(0);
                    }
                }
                State::ExtraLen => {
                    let n = (2 - self.have).min(input.len() - pos);
                    self.header[self.have..self.have + n].copy_from_slice(&input[pos..pos + n]);
                    self.have += n;
                    pos += n;
                    if self.have == 2 {
                        self.have = 0;
                        let len = u16::from_le_bytes([self.header[0], self.header[1]]);
                        self.state = if len == 0 {
                            self.after(FEXTRA)
                        } else {
                            State::Extra(len)
                        };
                    }
                }
                State::Extra(left) => {
                    let n = usize::from(left).min(input.len() - pos);
                    pos += n;
                    let left = left - n as u16;
                    self.state = if left == 0 {
                        self.after(FEXTRA)
                    } else {
                        State::Extra(left)
                    };
                }
                State::Name | State::Comment => {
                    let flag = if self.state == State::Name {
                        FNAME
                    } else {
                        FCOMMENT
                    };
                    match memchr::memchr(0, &input[pos..]) {
                        Some(i) => {
                            pos += i + 1;
                            self.state = self.after(flag);
                        }
                        None => pos = input.len(),
                    }
                }
                State::HeaderCrc => {
                    let n = (2 - self.have).min(input.len() - pos);
                    self.have += n;
                    pos += n;
                    if self.have == 2 {
                        self.have = 0;
                        self.state = State::Deflate;
                    }
                }
                State::Deflate => {
                    if produced >= max_out {
                        break;
                    }
                    let mut scratch = [0u8; 8192];
                    let cap_left = self
                        .max_output
                        .saturating_sub(self.total_out)
                        .saturating_add(1);
                    let room = scratch
                        .len()
                        .min(max_out - produced)
                        .min(usize::try_from(cap_left).unwrap_or(usize::MAX));
                    let (in_before, out_before) =
                        (self.inflate.total_in(), self.inflate.total_out());
                    let status = self
                        .inflate
                        .decompress(&input[pos..], &mut scratch[..room], FlushDecompress::None)
                        .map_err(|_| ParseError::InvalidGzip)?;
                    let used = (self.inflate.total_in() - in_before) as usize;
                    let made = (self.inflate.total_out() - out_before) as usize;
                    pos += used;
                    produced += made;
                    self.total_out += made as u64;
                    if self.total_out > self.max_output {
                        return Err(ParseError::BodyTooLarge);
                    }
                    self.crc.update(&scratch[..made]);
                    out.extend_from_slice(&scratch[..made]);
                    self.maybe_more = made == room && status != Status::StreamEnd;
                    if status == Status::StreamEnd {
                        self.state = State::Trailer;
                        self.have = 0;
                    } else if used == 0 && made == 0 {
                        if pos < input.len() {
                            // No progress with input left and room to write: corrupt data.
                            return Err(ParseError::InvalidGzip);
                        }
                        break;
                    }
                }
                State::Trailer => {
                    let n = (8 - self.have).min(input.len() - pos);
                    self.trailer[self.have..self.have + n].copy_from_slice(&input[pos..pos + n]);
                    self.have += n;
                    pos += n;
                    if self.have == 8 {
                        let t = self.trailer;
                        let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
                        let size = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
                        if crc != self.crc.sum() || size != self.crc.amount() {
                            return Err(ParseError::InvalidGzip);
                        }
                        self.crc.reset();
                        self.inflate.reset(false);
                        self.have = 0;
                        self.state = State::Done;
                    }
                }
            }
        }
        crate::count_work!(pos);
        Ok(pos)
    }

    /// The state after the header field `done` (0 for the fixed header).
    fn after(&self, done: u8) -> State {
        let order = [
            (FEXTRA, State::ExtraLen),
            (FNAME, State::Name),
            (FCOMMENT, State::Comment),
            (FHCRC, State::HeaderCrc),
        ];
        let mut past = done == 0;
        for (flag, state) in order {
            if past && self.flags & flag != 0 {
                return state;
            }
            if flag == done {
                past = true;
            }
        }
        State::Deflate
    }

    /// Inflate all of `input` into `out` (bounded only by the total cap).
    ///
    /// # Errors
    /// As [`inflate`](GzipInflater::inflate).
    pub fn inflate_all(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), ParseError> {
        const STEP: usize = 64 * 1024;
        loop {
            let before = out.len();
            let used = self.inflate(input, out, STEP)?;
            input = &input[used..];
            if input.is_empty() && out.len() - before < STEP {
                return Ok(());
            }
        }
    }

    /// Check that the stream ended at the end of a gzip member.
    ///
    /// # Errors
    /// [`ParseError::InvalidGzip`] for a stream cut short (or empty).
    pub fn finish(&self) -> Result<(), ParseError> {
        if self.state == State::Done {
            Ok(())
        } else {
            Err(ParseError::InvalidGzip)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::GzBuilder::new()
            .filename("name.txt")
            .comment("a comment")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn any_split_and_multiple_members() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let mut gz = gzip(&data);
        gz.extend_from_slice(&gzip(b"second"));
        for step in [1, 7, 4096, gz.len()] {
            let mut inf = GzipInflater::new(1 << 20);
            let mut out = Vec::new();
            for piece in gz.chunks(step) {
                inf.inflate_all(piece, &mut out).unwrap();
            }
            inf.finish().unwrap();
            assert_eq!(&out[..data.len()], &data[..]);
            assert_eq!(&out[data.len()..], b"second");
        }
    }

    #[test]
    fn bounded_output_per_call() {
        let gz = gzip(&vec![0u8; 1 << 20]);
        let mut inf = GzipInflater::new(u64::MAX);
        let mut rest = &gz[..];
        let mut total = 0;
        loop {
            let mut out = Vec::new();
            let used = inf.inflate(rest, &mut out, 1000).unwrap();
            assert!(out.len() <= 1000);
            total += out.len();
            rest = &rest[used..];
            if rest.is_empty() && out.len() < 1000 {
                break;
            }
        }
        inf.finish().unwrap();
        assert_eq!(total, 1 << 20);
    }

    #[test]
    fn bad_streams() {
        let mut gz = gzip(b"hello");
        let n = gz.len();
        gz[n - 8] ^= 1; // CRC
        assert_eq!(
            GzipInflater::new(100).inflate_all(&gz, &mut Vec::new()),
            Err(ParseError::InvalidGzip)
        );
        assert_eq!(
            GzipInflater::new(100).inflate_all(b"not gzip at all", &mut Vec::new()),
            Err(ParseError::InvalidGzip)
        );
        let gz = gzip(b"hello");
        let mut inf = GzipInflater::new(100);
        inf.inflate_all(&gz[..gz.len() - 3], &mut Vec::new())
            .unwrap();
        assert_eq!(inf.finish(), Err(ParseError::InvalidGzip));
        let mut trailing = gzip(b"hello");
        trailing.extend_from_slice(b"junk-after");
        assert_eq!(
            GzipInflater::new(100).inflate_all(&trailing, &mut Vec::new()),
            Err(ParseError::InvalidGzip)
        );
    }

    #[test]
    fn bomb_is_stopped_at_the_cap() {
        let gz = gzip(&vec![0u8; 10 << 20]);
        let mut inf = GzipInflater::new(64 * 1024);
        let mut out = Vec::new();
        assert_eq!(
            inf.inflate_all(&gz, &mut out),
            Err(ParseError::BodyTooLarge)
        );
        assert!(out.len() <= 64 * 1024 + 8192);
    }
}
