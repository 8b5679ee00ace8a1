//! The sans-IO WebSocket connection: bytes in, [`Event`]s out; messages in, bytes out.
//!
//! [`Protocol`] keeps the rules of RFC 6455 §5 (framing, masking per role, fragmentation
//! with control frames between fragments, the close handshake) and RFC 7692
//! (permessage-deflate) for one connection. It owns no socket: the server and client
//! drivers feed it what they read and write what it encodes, and the fuzz target drives
//! the same functions.

use crate::deflate::{DeflateParams, Deflater, Inflater};
use crate::error::{CloseCode, EncodeError, ProtocolError};
use crate::frame::{
    apply_mask, header_len, parse_header, write_header, FrameHeader, OpCode, MAX_HEADER_LEN,
};
use crate::rng::Rng;

/// Which end of the connection this is. The client masks what it sends and the server
/// refuses unmasked frames; the server never masks and the client refuses masked frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that accepted the connection.
    Server,
    /// The end that opened it.
    Client,
}

/// A whole data message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// A text message, checked to be UTF-8.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl Message {
    /// The payload's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(data) => data,
        }
    }
}

impl From<String> for Message {
    fn from(text: String) -> Message {
        Message::Text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Message {
        Message::Text(text.to_owned())
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Message {
        Message::Binary(data)
    }
}

impl From<&[u8]> for Message {
    fn from(data: &[u8]) -> Message {
        Message::Binary(data.to_vec())
    }
}

/// The code and reason of a close frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, at most 123 bytes of UTF-8.
    pub reason: String,
}

/// What [`Protocol::decode`] found in the input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// A whole text or binary message, reassembled and inflated.
    Message(Message),
    /// A ping: answer it with [`Protocol::encode_pong`] and the same payload.
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// The peer's close frame, with its code and reason if it had one. Unless this end
    /// already sent its own, answer with [`Protocol::encode_close`] (echoing the code is
    /// customary), then close the TCP connection (the server) or wait for the server to
    /// (the client). Nothing more is decoded after it.
    Close(Option<CloseFrame>),
}

/// The largest message [`Protocol::new`] accepts by default: 10 MiB, as Tornado's
/// `websocket_max_message_size`.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 10 * 1024 * 1024;

/// The frame being read.
#[derive(Debug, Clone, Copy)]
struct Frame {
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    remaining: u64,
    /// Payload bytes already read, modulo 4: the mask's phase.
    phase: u8,
}

/// Fragments of one message that may add nothing to it (an empty payload, or
/// compressed bytes that inflate to nothing yet) before the message is refused: a
/// message of endless empty fragments costs the receiver work for every frame and is
/// never held to `max_message_size` (the HTTP side's `max_chunk_overhead` answers the
/// same shape in chunked bodies). Far above what any sender splitting a message does.
pub(crate) const MAX_IDLE_FRAGMENTS: u32 = 4096;

/// permessage-deflate's state: both directions' zlib streams, and a buffer for
/// unmasked or compressed payload on its way through them.
struct Compression {
    inflater: Inflater,
    deflater: Deflater,
    scratch: Vec<u8>,
}

/// A data message being reassembled.
struct Partial {
    text: bool,
    compressed: bool,
    data: Vec<u8>,
    /// Bytes of `data` known to be valid UTF-8 (text messages only).
    valid: usize,
    /// Fragments so far that added nothing to `data` ([`MAX_IDLE_FRAGMENTS`]).
    idle_fragments: u32,
    /// Whether the current fragment has added to `data` yet.
    fragment_added: bool,
}

impl Partial {
    /// The outcome of inflating into `data`. On failure, what inflated before it is
    /// checked for UTF-8 first, so that the verdict does not depend on how the input
    /// was split.
    fn judge(&mut self, inflated: Result<(), ProtocolError>) -> Result<(), ProtocolError> {
        if inflated.is_err() && self.text {
            check_utf8_prefix(&self.data, &mut self.valid)?;
        }
        inflated
    }
}

/// One WebSocket connection's protocol state, without I/O.
///
/// Feed it the bytes read from the peer with [`Protocol::decode`], in pieces of any size;
/// encode outgoing messages and control frames with the `encode_*` methods. The opening
/// handshake is done before (see [`crate::handshake`]).
///
/// ```
/// use squall_websocket::{Event, Message, Protocol, Role};
///
/// let mut client = Protocol::new(Role::Client, None, 1 << 20);
/// let mut server = Protocol::new(Role::Server, None, 1 << 20);
/// let mut wire = Vec::new();
/// client.encode_message(&Message::Text("hello".into()), &mut wire)?;
/// let mut input = &wire[..];
/// assert_eq!(server.decode(&mut input)?, Some(Event::Message("hello".into())));
/// assert_eq!(server.decode(&mut input)?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Protocol {
    role: Role,
    max_message_size: usize,
    head: [u8; MAX_HEADER_LEN],
    head_len: u8,
    frame: Option<Frame>,
    message: Option<Partial>,
    control: Vec<u8>,
    /// permessage-deflate, if negotiated: boxed, so that a connection without it
    /// carries one pointer.
    compression: Option<Box<Compression>>,
    /// The client's masking keys (RFC 6455 §5.3).
    masks: Option<Box<Rng>>,
    received_close: bool,
    sent_close: bool,
    failed: Option<ProtocolError>,
}

impl Protocol {
    /// A protocol for `role`, with permessage-deflate if it was negotiated
    /// (`deflate`, with the compression level to use), and a cap on the size of a
    /// message (after inflating).
    pub fn new(
        role: Role,
        deflate: Option<(DeflateParams, u32)>,
        max_message_size: usize,
    ) -> Protocol {
        let compression = match deflate {
            None => None,
            Some((p, level)) => {
                let (mine, theirs) = match role {
                    Role::Server => (
                        (p.server_max_window_bits, p.server_no_context_takeover),
                        (p.client_max_window_bits, p.client_no_context_takeover),
                    ),
                    Role::Client => (
                        (p.client_max_window_bits, p.client_no_context_takeover),
                        (p.server_max_window_bits, p.server_no_context_takeover),
                    ),
                };
                Some(Box::new(Compression {
                    inflater: Inflater::new(theirs.0.max(9), theirs.1),
                    deflater: Deflater::new(level, mine.0, mine.1),
                    scratch: Vec::new(),
                }))
            }
        };
        let masks = (role == Role::Client).then(|| Box::new(Rng::new()));
        Protocol {
            role,
            max_message_size,
            head: [0; MAX_HEADER_LEN],
            head_len: 0,
            frame: None,
            message: None,
            control: Vec::new(),
            compression,
            masks,
            received_close: false,
            sent_close: false,
            failed: None,
        }
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The largest message accepted, in bytes (after inflating).
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Whether permessage-deflate is on.
    pub fn compressed(&self) -> bool {
        self.compression.is_some()
    }

    /// Whether the peer's close frame has arrived.
    pub fn received_close(&self) -> bool {
        self.received_close
    }

    /// Whether this end has sent its close frame.
    pub fn sent_close(&self) -> bool {
        self.sent_close
    }

    /// Decodes from `input`, advancing it past what was used, until one event is whole.
    ///
    /// Returns `Ok(None)` once `input` is used up with no event complete: the state is
    /// kept, so the next call goes on where this one stopped, whatever the split.
    /// After the peer's close frame, the rest of the input is ignored.
    ///
    /// # Errors
    ///
    /// The first [`ProtocolError`] in the peer's bytes, as early as it can be seen (an
    /// invalid UTF-8 prefix fails before the message ends, an oversized message before
    /// its payload arrives). The protocol stays failed: fail the connection with
    /// [`ProtocolError::close_code`].
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Event>, ProtocolError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let result = self.decode_inner(input);
        if let Err(error) = result {
            self.failed = Some(error);
        }
        result
    }

    fn decode_inner(&mut self, input: &mut &[u8]) -> Result<Option<Event>, ProtocolError> {
        loop {
            if self.received_close {
                *input = &[];
                return Ok(None);
            }
            let Some(mut frame) = self.frame else {
                if !self.read_header(input)? {
                    return Ok(None);
                }
                continue;
            };
            let n = frame.remaining.min(input.len() as u64) as usize;
            let (chunk, rest) = input.split_at(n);
            *input = rest;
            frame.remaining -= n as u64;
            self.payload(&frame, chunk)?;
            frame.phase = ((usize::from(frame.phase) + n) % 4) as u8;
            if frame.remaining > 0 {
                self.frame = Some(frame);
                return Ok(None);
            }
            self.frame = None;
            if let Some(event) = self.finish_frame(&frame)? {
                return Ok(Some(event));
            }
        }
    }

    /// Reads a frame header, whole or in pieces. `true` once a frame has started.
    fn read_header(&mut self, input: &mut &[u8]) -> Result<bool, ProtocolError> {
        if self.head_len == 0 {
            if let Some((header, n)) = parse_header(input)? {
                *input = &input[n..];
                self.start_frame(header)?;
                return Ok(true);
            }
        }
        while !input.is_empty() {
            let have = usize::from(self.head_len);
            let need = if have < 2 {
                2
            } else {
                header_len([self.head[0], self.head[1]])
            };
            let take = (need - have).min(input.len());
            self.head[have..have + take].copy_from_slice(&input[..take]);
            self.head_len += take as u8;
            *input = &input[take..];
            if let Some((header, _)) = parse_header(&self.head[..usize::from(self.head_len)])? {
                self.head_len = 0;
                self.start_frame(header)?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn start_frame(&mut self, h: FrameHeader) -> Result<(), ProtocolError> {
        if h.mask.is_some() != (self.role == Role::Server) {
            return Err(ProtocolError::Masking);
        }
        if h.rsv1
            && (self.compression.is_none() || !matches!(h.opcode, OpCode::Text | OpCode::Binary))
        {
            return Err(ProtocolError::ReservedBits);
        }
        match h.opcode {
            OpCode::Continuation if self.message.is_none() => {
                return Err(ProtocolError::UnexpectedContinuation)
            }
            OpCode::Text | OpCode::Binary if self.message.is_some() => {
                return Err(ProtocolError::ExpectedContinuation)
            }
            OpCode::Text | OpCode::Binary => {
                let text = h.opcode == OpCode::Text;
                self.message = Some(Partial {
                    text,
                    compressed: h.rsv1,
                    data: Vec::new(),
                    valid: 0,
                    idle_fragments: 0,
                    fragment_added: false,
                });
            }
            _ if h.opcode.is_control() => self.control.clear(),
            _ => {}
        }
        if let Some(message) = &mut self.message {
            if !h.opcode.is_control() {
                message.fragment_added = false;
            }
            if !h.opcode.is_control() && !message.compressed {
                let total = (message.data.len() as u64).saturating_add(h.len);
                if total > self.max_message_size as u64 {
                    return Err(ProtocolError::MessageTooBig);
                }
                if h.fin {
                    message.data.reserve_exact(h.len as usize);
                }
            }
        }
        self.frame = Some(Frame {
            fin: h.fin,
            opcode: h.opcode,
            mask: h.mask,
            remaining: h.len,
            phase: 0,
        });
        Ok(())
    }

    /// Takes one piece of the current frame's payload.
    fn payload(&mut self, frame: &Frame, chunk: &[u8]) -> Result<(), ProtocolError> {
        if chunk.is_empty() {
            return Ok(());
        }
        if frame.opcode.is_control() {
            let start = self.control.len();
            self.control.extend_from_slice(chunk);
            if let Some(key) = frame.mask {
                apply_mask(&mut self.control[start..], key, usize::from(frame.phase));
            }
            return Ok(());
        }
        let Some(message) = &mut self.message else {
            return Ok(());
        };
        let before = message.data.len();
        if message.compressed {
            if let Some(c) = &mut self.compression {
                c.scratch.clear();
                c.scratch.extend_from_slice(chunk);
                if let Some(key) = frame.mask {
                    apply_mask(&mut c.scratch, key, usize::from(frame.phase));
                }
                let inflated =
                    c.inflater
                        .inflate(&c.scratch, &mut message.data, self.max_message_size);
                message.judge(inflated)?;
            }
        } else {
            let start = message.data.len();
            message.data.extend_from_slice(chunk);
            if let Some(key) = frame.mask {
                apply_mask(&mut message.data[start..], key, usize::from(frame.phase));
            }
        }
        message.fragment_added |= message.data.len() > before;
        // A message that ends with this piece is checked once, whole, by finish_frame;
        // anything else is checked as it comes, so that bad UTF-8 fails fast.
        let ends_here = frame.fin && frame.remaining == 0 && !message.compressed;
        if message.text && !ends_here {
            check_utf8_prefix(&message.data, &mut message.valid)?;
        }
        Ok(())
    }

    fn finish_frame(&mut self, frame: &Frame) -> Result<Option<Event>, ProtocolError> {
        match frame.opcode {
            OpCode::Ping => Ok(Some(Event::Ping(std::mem::take(&mut self.control)))),
            OpCode::Pong => Ok(Some(Event::Pong(std::mem::take(&mut self.control)))),
            OpCode::Close => {
                let close = parse_close(&self.control)?;
                self.received_close = true;
                Ok(Some(Event::Close(close)))
            }
            _ if !frame.fin => {
                if let Some(message) = &mut self.message {
                    if !message.fragment_added {
                        message.idle_fragments += 1;
                        if message.idle_fragments > MAX_IDLE_FRAGMENTS {
                            return Err(ProtocolError::IdleFragments);
                        }
                    }
                }
                Ok(None)
            }
            _ => {
                let Some(mut message) = self.message.take() else {
                    return Ok(None);
                };
                if message.compressed {
                    if let Some(c) = &mut self.compression {
                        let inflated = c.inflater.finish(&mut message.data, self.max_message_size);
                        message.judge(inflated)?;
                    }
                }
                Ok(Some(Event::Message(if message.text {
                    Message::Text(
                        String::from_utf8(message.data).map_err(|_| ProtocolError::InvalidUtf8)?,
                    )
                } else {
                    Message::Binary(message.data)
                })))
            }
        }
    }

    fn check_open(&self) -> Result<(), EncodeError> {
        if self.sent_close {
            Err(EncodeError::Closed)
        } else {
            Ok(())
        }
    }

    /// Appends one frame to `out`, masked if this is a client.
    fn frame_out(
        &mut self,
        fin: bool,
        rsv1: bool,
        opcode: OpCode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        let mask = self
            .masks
            .as_mut()
            .map(|rng| (rng.next_u64() as u32).to_ne_bytes());
        out.reserve(MAX_HEADER_LEN + payload.len());
        write_header(out, fin, rsv1, opcode, mask, payload.len());
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut out[start..], key, 0);
        }
    }

    /// Appends `message` to `out` as one frame, compressed if permessage-deflate is on.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Closed`] once this end has sent its close frame.
    pub fn encode_message(
        &mut self,
        message: &Message,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        match message {
            Message::Text(text) => self.encode_text(text, out),
            Message::Binary(data) => self.encode_binary(data, out),
        }
    }

    /// Appends a text message.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Closed`] once this end has sent its close frame.
    pub fn encode_text(&mut self, text: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.data_out(OpCode::Text, text.as_bytes(), out)
    }

    /// Appends a binary message.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Closed`] once this end has sent its close frame.
    pub fn encode_binary(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.data_out(OpCode::Binary, data, out)
    }

    fn data_out(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        self.check_open()?;
        match self.compression.as_deref_mut() {
            Some(c) if c.deflater.enabled() => {
                let mut compressed = std::mem::take(&mut c.scratch);
                compressed.clear();
                c.deflater.compress(payload, &mut compressed);
                self.frame_out(true, true, opcode, &compressed, out);
                if let Some(c) = &mut self.compression {
                    c.scratch = compressed;
                }
            }
            _ => self.frame_out(true, false, opcode, payload, out),
        }
        Ok(())
    }

    /// Appends a ping with `payload` (at most 125 bytes).
    ///
    /// # Errors
    ///
    /// [`EncodeError::Closed`] after a close frame was sent,
    /// [`EncodeError::ControlTooLong`] for a payload over 125 bytes.
    pub fn encode_ping(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.control_out(OpCode::Ping, payload, out)
    }

    /// Appends a pong with `payload` (at most 125 bytes).
    ///
    /// # Errors
    ///
    /// As [`Protocol::encode_ping`].
    pub fn encode_pong(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.control_out(OpCode::Pong, payload, out)
    }

    fn control_out(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        self.check_open()?;
        if payload.len() > 125 {
            return Err(EncodeError::ControlTooLong);
        }
        self.frame_out(true, false, opcode, payload, out);
        Ok(())
    }

    /// Appends this end's close frame: with `code` and `reason`, or empty for `None`
    /// with no reason (a reason without a code goes with 1000, as in Tornado).
    /// Nothing may be encoded after it.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Closed`] if a close frame was already sent,
    /// [`EncodeError::InvalidCloseCode`] for a code that may not be sent,
    /// [`EncodeError::ControlTooLong`] for a reason over 123 bytes.
    pub fn encode_close(
        &mut self,
        code: Option<CloseCode>,
        reason: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        self.check_open()?;
        let mut payload = [0; 125];
        // A reason needs a code to travel with: 1000 when none is given, as Tornado's
        // `close(None, reason)` sends.
        let code = match code {
            None if !reason.is_empty() => Some(CloseCode::NORMAL),
            code => code,
        };
        let len = match code {
            None => 0,
            Some(code) if !code.is_sendable() => return Err(EncodeError::InvalidCloseCode(code.0)),
            Some(_) if reason.len() > 123 => return Err(EncodeError::ControlTooLong),
            Some(code) => {
                payload[..2].copy_from_slice(&code.0.to_be_bytes());
                payload[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
                2 + reason.len()
            }
        };
        self.frame_out(true, false, OpCode::Close, &payload[..len], out);
        self.sent_close = true;
        Ok(())
    }
}

/// Advances `valid` over the UTF-8 in `data[*valid..]`; an incomplete sequence at the end
/// is fine (more may come), a byte that no continuation can make valid is not.
fn check_utf8_prefix(data: &[u8], valid: &mut usize) -> Result<(), ProtocolError> {
    match std::str::from_utf8(&data[*valid..]) {
        Ok(_) => *valid = data.len(),
        // `error_len() == None`: the input ends in the middle of a sequence whose bytes so
        // far are all allowed.
        Err(e) if e.error_len().is_none() => *valid += e.valid_up_to(),
        Err(_) => return Err(ProtocolError::InvalidUtf8),
    }
    Ok(())
}

fn parse_close(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::BadClosePayload),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_sendable() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
            Ok(Some(CloseFrame {
                code,
                reason: reason.to_owned(),
            }))
        }
    }
}
