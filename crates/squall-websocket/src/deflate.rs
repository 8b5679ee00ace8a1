//! permessage-deflate (RFC 7692): the negotiation of its four parameters, and the
//! compressor and decompressor of one connection.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::ProtocolError;
use crate::extensions::{parse_extensions, Extension};

/// The extension's token in `Sec-WebSocket-Extensions`.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The four bytes a sync flush ends with, which RFC 7692 §7.2.1 strips from each message
/// and §7.2.2 appends again before inflating.
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// What this endpoint wants from permessage-deflate (Tornado's `compression_options`,
/// with RFC 7692's four parameters spelled out).
///
/// The server takes the client's first offer it can accept and answers with these
/// settings folded in; the client offers them and checks the server's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// zlib compression level, 0-9 (Tornado's `compression_level`; zlib's default is 6).
    pub compression_level: u32,
    /// Ask that the server start each message with an empty window.
    pub server_no_context_takeover: bool,
    /// Ask that the client start each message with an empty window.
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window, as a power of two (8-15), the server may compress with.
    pub server_max_window_bits: u8,
    /// The largest window, 8-15, the client may compress with.
    pub client_max_window_bits: u8,
}

impl Default for DeflateConfig {
    fn default() -> DeflateConfig {
        DeflateConfig {
            compression_level: 6,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

/// The parameters both ends agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// The server's window, 8-15.
    pub server_max_window_bits: u8,
    /// The client's window, 8-15.
    pub client_max_window_bits: u8,
}

/// A window-bits value: 8-15, decimal digits with no leading zero.
fn window_bits(value: Option<&str>) -> Option<u8> {
    let value = value?;
    if value.starts_with('0') {
        return None;
    }
    match value.parse::<u8>() {
        Ok(bits @ 8..=15) => Some(bits),
        _ => None,
    }
}

/// Whether the client's offer for `config` carries `server_max_window_bits` (a window
/// under the default 15): the server must then answer with it (RFC 7692 §7.1.2.1).
fn offers_server_max_window_bits(config: &DeflateConfig) -> bool {
    config.server_max_window_bits < 15
}

impl DeflateParams {
    /// The server's side: the first permessage-deflate offer in a `Sec-WebSocket-Extensions`
    /// request header that `config` can accept, with the response header's value.
    ///
    /// An offer is declined (and the next one tried) when it names a parameter twice, an
    /// unknown parameter, or a value RFC 7692 does not allow. `None` when no offer fits:
    /// the connection then goes on uncompressed.
    pub fn accept_offers(header: &str, config: &DeflateConfig) -> Option<(DeflateParams, String)> {
        parse_extensions(header)
            .into_iter()
            .filter(|ext| ext.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE))
            .find_map(|offer| DeflateParams::accept_offer(&offer, config))
    }

    fn accept_offer(offer: &Extension, config: &DeflateConfig) -> Option<(DeflateParams, String)> {
        let mut server_nct = false;
        let mut client_nct = false;
        let mut server_bits: Option<u8> = None;
        let mut client_bits: Option<Option<u8>> = None;
        for (name, value) in &offer.params {
            match name.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" if !server_nct && value.is_none() => server_nct = true,
                "client_no_context_takeover" if !client_nct && value.is_none() => client_nct = true,
                "server_max_window_bits" if server_bits.is_none() => {
                    server_bits = Some(window_bits(value.as_deref())?)
                }
                "client_max_window_bits" if client_bits.is_none() => {
                    client_bits = Some(match value {
                        None => None,
                        Some(v) => Some(window_bits(Some(v))?),
                    })
                }
                _ => return None,
            }
        }
        let params = DeflateParams {
            server_no_context_takeover: server_nct || config.server_no_context_takeover,
            client_no_context_takeover: client_nct || config.client_no_context_takeover,
            server_max_window_bits: server_bits.unwrap_or(15).min(config.server_max_window_bits),
            client_max_window_bits: match client_bits {
                // The client did not say it can limit its window: it compresses with 15.
                None => 15,
                Some(offered) => offered.unwrap_or(15).min(config.client_max_window_bits),
            },
        };
        let mut response = String::from(PERMESSAGE_DEFLATE);
        if params.server_no_context_takeover {
            response.push_str("; server_no_context_takeover");
        }
        if params.client_no_context_takeover {
            response.push_str("; client_no_context_takeover");
        }
        if server_bits.is_some() || params.server_max_window_bits < 15 {
            response.push_str(&format!(
                "; server_max_window_bits={}",
                params.server_max_window_bits
            ));
        }
        if client_bits.is_some()
            && (client_bits != Some(None) || params.client_max_window_bits < 15)
        {
            response.push_str(&format!(
                "; client_max_window_bits={}",
                params.client_max_window_bits
            ));
        }
        Some((params, response))
    }

    /// The client's side: the offer for `config`, as a `Sec-WebSocket-Extensions` value.
    pub fn offer(config: &DeflateConfig) -> String {
        let mut offer = String::from(PERMESSAGE_DEFLATE);
        if config.server_no_context_takeover {
            offer.push_str("; server_no_context_takeover");
        }
        if config.client_no_context_takeover {
            offer.push_str("; client_no_context_takeover");
        }
        if offers_server_max_window_bits(config) {
            offer.push_str(&format!(
                "; server_max_window_bits={}",
                config.server_max_window_bits
            ));
        }
        if config.client_max_window_bits < 15 {
            offer.push_str(&format!(
                "; client_max_window_bits={}",
                config.client_max_window_bits
            ));
        } else {
            offer.push_str("; client_max_window_bits");
        }
        offer
    }

    /// The client's side: checks the server's answer to [`DeflateParams::offer`].
    ///
    /// # Errors
    ///
    /// `Err` with a short reason when the answer is not one the offer allows: an unknown
    /// or repeated parameter, a bad value, a window larger than the one offered, a
    /// `client_max_window_bits` the client did not offer (RFC 7692 §7.1.2.2), or no
    /// `server_max_window_bits` (or `server_no_context_takeover`) in answer to an offer
    /// that has it (§7.1.2.1, §7.1.1.1).
    pub fn from_response(
        ext: &Extension,
        config: &DeflateConfig,
    ) -> Result<DeflateParams, &'static str> {
        let mut params = DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: config.client_no_context_takeover,
            server_max_window_bits: 15,
            client_max_window_bits: config.client_max_window_bits,
        };
        let mut seen = [false; 4];
        for (name, value) in &ext.params {
            let (slot, name) = match name.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" => (0, "server_no_context_takeover"),
                "client_no_context_takeover" => (1, "client_no_context_takeover"),
                "server_max_window_bits" => (2, "server_max_window_bits"),
                "client_max_window_bits" => (3, "client_max_window_bits"),
                _ => return Err("unknown permessage-deflate parameter"),
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err("repeated permessage-deflate parameter");
            }
            match name {
                "server_no_context_takeover" | "client_no_context_takeover" if value.is_some() => {
                    return Err("no_context_takeover with a value");
                }
                "server_no_context_takeover" => params.server_no_context_takeover = true,
                "client_no_context_takeover" => params.client_no_context_takeover = true,
                "server_max_window_bits" => {
                    let bits = window_bits(value.as_deref()).ok_or("bad server_max_window_bits")?;
                    if bits > config.server_max_window_bits {
                        return Err("server_max_window_bits larger than offered");
                    }
                    params.server_max_window_bits = bits;
                }
                _ => {
                    let bits = window_bits(value.as_deref()).ok_or("bad client_max_window_bits")?;
                    if bits > config.client_max_window_bits {
                        return Err("client_max_window_bits larger than offered");
                    }
                    params.client_max_window_bits = bits;
                }
            }
        }
        if config.server_no_context_takeover && !params.server_no_context_takeover {
            return Err("server_no_context_takeover offered but not accepted");
        }
        // RFC 7692 §7.1.2.1: an offer with server_max_window_bits must be answered
        // with it (same or smaller, checked above); silence is not 15.
        if offers_server_max_window_bits(config) && !seen[2] {
            return Err("server_max_window_bits offered but not accepted");
        }
        Ok(params)
    }
}

/// Compresses outgoing messages (RFC 7692 §7.2.1).
pub(crate) struct Deflater {
    compress: Compress,
    /// Start each message with an empty window.
    no_context_takeover: bool,
    /// zlib cannot write raw deflate with a 256-byte window: with 8 window bits, messages
    /// go out uncompressed (RSV1 clear), which RFC 7692 allows for any message.
    enabled: bool,
}

impl Deflater {
    pub(crate) fn new(level: u32, window_bits: u8, no_context_takeover: bool) -> Deflater {
        let enabled = window_bits > 8;
        Deflater {
            compress: Compress::new_with_window_bits(
                Compression::new(level.min(9)),
                false,
                window_bits.max(9),
            ),
            no_context_takeover,
            enabled,
        }
    }

    /// Whether messages are compressed at all.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Appends the compressed form of `data` to `out`, without the trailing
    /// `00 00 FF FF`.
    pub(crate) fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        let mut input = data;
        loop {
            out.reserve(input.len() / 2 + 64);
            let before = self.compress.total_in();
            // A sync flush into memory we own cannot fail: only misuse of the stream
            // (never done here) makes zlib report an error.
            if self
                .compress
                .compress_vec(input, out, FlushCompress::Sync)
                .is_err()
            {
                break;
            }
            input = &input[(self.compress.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.len() == start {
            // An empty message compresses to an empty stored block's first byte.
            out.push(0);
        }
        if self.no_context_takeover {
            self.compress.reset();
        }
    }
}

/// Inflates incoming messages (RFC 7692 §7.2.2), with a cap on their inflated size.
pub(crate) struct Inflater {
    decompress: Decompress,
    no_context_takeover: bool,
}

impl Inflater {
    pub(crate) fn new(window_bits: u8, no_context_takeover: bool) -> Inflater {
        // A larger window than the peer's is always safe to inflate with; zlib's raw
        // inflate accepts 8 and up.
        Inflater {
            decompress: Decompress::new_with_window_bits(false, window_bits),
            no_context_takeover,
        }
    }

    /// Inflates one piece of a compressed message onto `out`.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::BadCompressedData`] when the stream is corrupt,
    /// [`ProtocolError::MessageTooBig`] as soon as `out` would grow past `max`.
    pub(crate) fn inflate(
        &mut self,
        data: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), ProtocolError> {
        let mut input = data;
        loop {
            if out.len() == out.capacity() {
                let room = (out.len().max(256)).min(max.saturating_add(1) - out.len().min(max));
                if room == 0 {
                    return Err(ProtocolError::MessageTooBig);
                }
                out.reserve_exact(room);
            }
            let before_in = self.decompress.total_in();
            let before_out = out.len();
            let status = self
                .decompress
                .decompress_vec(input, out, FlushDecompress::Sync)
                .map_err(|_| ProtocolError::BadCompressedData)?;
            input = &input[(self.decompress.total_in() - before_in) as usize..];
            if out.len() > max {
                return Err(ProtocolError::MessageTooBig);
            }
            if status == Status::StreamEnd {
                // A block with BFINAL set ends this deflate stream; what follows starts a
                // new one.
                self.decompress.reset(false);
                if input.is_empty() {
                    return Ok(());
                }
                continue;
            }
            let full = out.len() == out.capacity();
            if input.is_empty() && !full {
                return Ok(());
            }
            if !full && out.len() == before_out && self.decompress.total_in() == before_in {
                // No progress with room to spare: zlib wants input it will never get.
                return Err(ProtocolError::BadCompressedData);
            }
        }
    }

    /// Ends a message: inflates the stripped `00 00 FF FF` tail.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), ProtocolError> {
        self.inflate(&TAIL, out, max)?;
        if self.no_context_takeover {
            // inflateReset2 with the full window, which inflates any smaller one too.
            self.decompress.reset(false);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(header: &str) -> Option<(DeflateParams, String)> {
        DeflateParams::accept_offers(header, &DeflateConfig::default())
    }

    #[test]
    fn server_accepts_the_first_acceptable_offer() {
        let (p, r) = accept("permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!(r, "permessage-deflate");
        assert_eq!(
            (p.server_max_window_bits, p.client_max_window_bits),
            (15, 15)
        );
        let (p, r) =
            accept("permessage-deflate; server_max_window_bits=10; client_no_context_takeover")
                .unwrap();
        assert_eq!(
            r,
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=10"
        );
        assert!(p.client_no_context_takeover && !p.server_no_context_takeover);
        assert_eq!(p.server_max_window_bits, 10);
        let (p, r) =
            accept("permessage-deflate; server_no_context_takeover; client_max_window_bits=9")
                .unwrap();
        assert_eq!(
            r,
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=9"
        );
        assert_eq!(p.client_max_window_bits, 9);
        // Bad offers are skipped in favour of the next one.
        let (_, r) = accept("permessage-deflate; server_max_window_bits=16, permessage-deflate; server_max_window_bits=\"9\"").unwrap();
        assert_eq!(r, "permessage-deflate; server_max_window_bits=9");
        for bad in [
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "x-webkit-deflate-frame",
        ] {
            assert!(accept(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn server_settings_fold_into_the_answer() {
        let config = DeflateConfig {
            server_no_context_takeover: true,
            client_max_window_bits: 12,
            ..DeflateConfig::default()
        };
        let (p, r) =
            DeflateParams::accept_offers("permessage-deflate; client_max_window_bits", &config)
                .unwrap();
        assert_eq!(
            r,
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=12"
        );
        assert!(p.server_no_context_takeover);
        // Without client_max_window_bits in the offer, the server cannot limit the client.
        let (p, r) = DeflateParams::accept_offers("permessage-deflate", &config).unwrap();
        assert_eq!(r, "permessage-deflate; server_no_context_takeover");
        assert_eq!(p.client_max_window_bits, 15);
    }

    #[test]
    fn client_checks_the_answer() {
        let config = DeflateConfig::default();
        let parse = |s: &str| DeflateParams::from_response(&parse_extensions(s)[0], &config);
        let p = parse("permessage-deflate; client_max_window_bits=9; server_no_context_takeover")
            .unwrap();
        assert_eq!(p.client_max_window_bits, 9);
        assert!(p.server_no_context_takeover);
        assert!(parse("permessage-deflate; bogus").is_err());
        assert!(parse("permessage-deflate; client_max_window_bits").is_err());
        assert!(
            parse("permessage-deflate; server_max_window_bits=8; server_max_window_bits=8")
                .is_err()
        );
        let narrow = DeflateConfig {
            client_max_window_bits: 10,
            ..config
        };
        let ext = &parse_extensions("permessage-deflate; client_max_window_bits=12")[0];
        assert!(DeflateParams::from_response(ext, &narrow).is_err());
        assert_eq!(
            DeflateParams::offer(&narrow),
            "permessage-deflate; client_max_window_bits=10"
        );
    }

    // RFC 7692 §7.1.2.1: an offer of server_max_window_bits=10 answered without the
    // parameter fails (it was taken as 15, a window the client never agreed to
    // inflate); answered with the same or a smaller window it is accepted.
    #[test]
    fn an_offered_server_window_must_be_answered() {
        let config = DeflateConfig {
            server_max_window_bits: 10,
            ..DeflateConfig::default()
        };
        assert_eq!(
            DeflateParams::offer(&config),
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits"
        );
        let parse = |s: &str| DeflateParams::from_response(&parse_extensions(s)[0], &config);
        assert_eq!(
            parse("permessage-deflate"),
            Err("server_max_window_bits offered but not accepted")
        );
        assert_eq!(
            parse("permessage-deflate; client_max_window_bits=12"),
            Err("server_max_window_bits offered but not accepted")
        );
        assert!(parse("permessage-deflate; server_max_window_bits=11").is_err());
        for bits in [10, 9] {
            let p = parse(&format!(
                "permessage-deflate; server_max_window_bits={bits}"
            ))
            .unwrap();
            assert_eq!(p.server_max_window_bits, bits);
        }
        // Not offered: no answer needed, and the server's window is 15.
        let p = DeflateParams::from_response(
            &parse_extensions("permessage-deflate")[0],
            &DeflateConfig::default(),
        )
        .unwrap();
        assert_eq!(p.server_max_window_bits, 15);
        // The server's own answer to such an offer passes the client's check.
        let (params, answer) =
            DeflateParams::accept_offers(&DeflateParams::offer(&config), &DeflateConfig::default())
                .unwrap();
        assert_eq!(parse(&answer), Ok(params));
    }

    #[test]
    fn compressed_messages_inflate_with_and_without_context() {
        for nct in [false, true] {
            for bits in [8, 9, 12, 15] {
                let mut deflater = Deflater::new(6, bits, nct);
                let mut inflater = Inflater::new(bits.max(9), nct);
                for msg in [
                    &b"Hello, Hello, Hello!"[..],
                    b"",
                    b"Hello again",
                    &[7u8; 5000],
                ] {
                    let mut wire = Vec::new();
                    if deflater.enabled() {
                        deflater.compress(msg, &mut wire);
                        let mut out = Vec::new();
                        inflater.inflate(&wire, &mut out, 1 << 20).unwrap();
                        inflater.finish(&mut out, 1 << 20).unwrap();
                        assert_eq!(out, msg);
                    }
                }
            }
        }
    }

    #[test]
    fn inflated_size_is_capped() {
        let mut deflater = Deflater::new(9, 15, false);
        let mut wire = Vec::new();
        deflater.compress(&[0u8; 1 << 20], &mut wire);
        assert!(wire.len() < 2000);
        let mut inflater = Inflater::new(15, false);
        let mut out = Vec::new();
        assert_eq!(
            inflater.inflate(&wire, &mut out, 1000),
            Err(ProtocolError::MessageTooBig)
        );
        assert!(out.capacity() <= 1001 + 256, "{}", out.capacity());
        let mut inflater = Inflater::new(15, false);
        assert_eq!(
            inflater.inflate(&[0xFF; 10], &mut Vec::new(), 1000),
            Err(ProtocolError::BadCompressedData)
        );
    }
}
