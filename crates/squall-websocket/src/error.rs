//! Why a peer's bytes were refused ([`ProtocolError`]), why an outgoing frame could not be
//! written ([`EncodeError`]), and the close codes of RFC 6455 §7.4 ([`CloseCode`]).

use std::fmt;

/// A close status code (RFC 6455 §7.4).
///
/// Tornado passes close codes around as plain `int`s; squall wraps the number so the
/// registered codes have names and [`CloseCode::is_sendable`] can say which ones may
/// appear on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutting down, page closed).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a kind of message the endpoint cannot accept (binary for a text-only app).
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no code was present in the close frame. Never sent on the wire.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection closed without a close frame. Never sent on the wire.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: message data inconsistent with its type (invalid UTF-8 in a text message).
    pub const INVALID_DATA: CloseCode = CloseCode(1007);
    /// 1008: a message that violates the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message too big to process (over `max_message_size`).
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);

    /// Whether this code may be sent in a close frame: 1000-1003, 1007-1014 (the codes
    /// registered with IANA), and 3000-4999 (libraries, frameworks and applications).
    /// 1004-1006, 1015, the unassigned 1016-2999 and everything outside 1000-4999 may not.
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why the bytes a peer sent were refused. After any of these the connection must be
/// failed: send a close frame with [`ProtocolError::close_code`] and drop the connection.
///
/// Small and `Copy`, like squall's HTTP parse error. Tornado logs and closes with the
/// same codes (`_abort`, 1002 for protocol errors, 1007 for bad UTF-8, 1009 for
/// oversized messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RSV2 or RSV3 set, or RSV1 set without permessage-deflate or on a frame where
    /// compression cannot apply (a continuation or control frame). 1002.
    ReservedBits,
    /// An opcode RFC 6455 does not define (3-7, 11-15). 1002.
    UnknownOpcode(u8),
    /// A client frame without a mask (a server must refuse it), or a server frame with
    /// one (a client must refuse it), RFC 6455 §5.1. 1002.
    Masking,
    /// A payload length in 64 bits with the top bit set, or not encoded in the fewest
    /// bytes (RFC 6455 §5.2). 1002.
    BadLength,
    /// A control frame with more than 125 bytes of payload or without FIN. 1002.
    BadControlFrame,
    /// A continuation frame with no fragmented message open. 1002.
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is still open. 1002.
    ExpectedContinuation,
    /// A close frame whose payload is one byte long (a code takes two). 1002.
    BadClosePayload,
    /// A close frame with a code that may not be sent (see [`CloseCode::is_sendable`]).
    /// 1002.
    InvalidCloseCode(u16),
    /// A text message or close reason that is not valid UTF-8, found as early as the
    /// first invalid byte arrives. 1007.
    InvalidUtf8,
    /// A compressed message that does not inflate. 1007.
    BadCompressedData,
    /// A message larger than `max_message_size` (after inflating, if compressed). 1009.
    MessageTooBig,
    /// A message of more than 4,096 fragments that added nothing to it (empty
    /// payloads, or compressed bytes that inflate to nothing): framing without data,
    /// which `max_message_size` never bounds. 1008.
    IdleFragments,
}

impl ProtocolError {
    /// The close code to fail the connection with.
    pub fn close_code(self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::BadCompressedData => {
                CloseCode::INVALID_DATA
            }
            ProtocolError::MessageTooBig => CloseCode::MESSAGE_TOO_BIG,
            ProtocolError::IdleFragments => CloseCode::POLICY_VIOLATION,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedBits => f.write_str("reserved bits set"),
            ProtocolError::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            ProtocolError::Masking => f.write_str("frame masked against the rules of its role"),
            ProtocolError::BadLength => f.write_str("malformed payload length"),
            ProtocolError::BadControlFrame => {
                f.write_str("control frame fragmented or over 125 bytes")
            }
            ProtocolError::UnexpectedContinuation => {
                f.write_str("continuation frame without a message")
            }
            ProtocolError::ExpectedContinuation => {
                f.write_str("new message while a fragmented one is open")
            }
            ProtocolError::BadClosePayload => f.write_str("close frame with a one-byte payload"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            ProtocolError::InvalidUtf8 => {
                f.write_str("invalid UTF-8 in a text message or close reason")
            }
            ProtocolError::BadCompressedData => f.write_str("compressed message does not inflate"),
            ProtocolError::MessageTooBig => f.write_str("message over max_message_size"),
            ProtocolError::IdleFragments => {
                f.write_str("too many fragments that add nothing to their message")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Why an outgoing frame could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncodeError {
    /// A close frame was already sent: nothing may follow it (Tornado's
    /// `WebSocketClosedError`).
    Closed,
    /// A ping, pong or close payload over 125 bytes.
    ControlTooLong,
    /// A close code that may not be sent (see [`CloseCode::is_sendable`]).
    InvalidCloseCode(u16),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Closed => f.write_str("the WebSocket is closed"),
            EncodeError::ControlTooLong => f.write_str("control frame payload over 125 bytes"),
            EncodeError::InvalidCloseCode(code) => write!(f, "close code {code} may not be sent"),
        }
    }
}

impl std::error::Error for EncodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_close_codes_follow_rfc_6455_section_7_4() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
        ] {
            assert!(CloseCode(code).is_sendable(), "{code}");
        }
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode(code).is_sendable(), "{code}");
        }
    }

    #[test]
    fn errors_map_to_their_close_codes() {
        assert_eq!(
            ProtocolError::InvalidUtf8.close_code(),
            CloseCode::INVALID_DATA
        );
        assert_eq!(
            ProtocolError::MessageTooBig.close_code(),
            CloseCode::MESSAGE_TOO_BIG
        );
        assert_eq!(
            ProtocolError::InvalidCloseCode(5).close_code(),
            CloseCode::PROTOCOL_ERROR
        );
    }
}
