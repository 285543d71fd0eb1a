//! The permessage-deflate extension (RFC 7692): negotiating it in the
//! opening handshake, and compressing and inflating message payloads.
//!
//! [`negotiate`] reads the client's `Sec-WebSocket-Extensions` offers and
//! answers the first one this server can accept under its [`DeflateConfig`]
//! (RFC 7692 section 5); [`Agreed`] is what both sides then hold to.
//! [`Deflater`] compresses one message at a time; [`Inflater`] inflates
//! one message as its frames arrive and stops at the message size limit
//! before it allocates more.
//!
//! ```
//! use axum_channel_protocol::websocket::permessage_deflate::{negotiate, DeflateConfig};
//!
//! let offer = "permessage-deflate; client_max_window_bits";
//! let agreed = negotiate([offer], &DeflateConfig::default()).unwrap();
//! assert!(agreed.server_no_context_takeover);
//! assert_eq!(agreed.client_max_window_bits, 15);
//! assert_eq!(agreed.response(), "permessage-deflate; server_no_context_takeover; client_max_window_bits=15");
//! ```

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::cell::RefCell;

/// The extension's registered name (RFC 7692 section 7).
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// The four bytes a sync flush ends with, which the sender removes and the
/// receiver appends back (RFC 7692 sections 7.2.1 and 7.2.2).
pub const SYNC_FLUSH_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The smallest LZ77 window an offer may name (RFC 7692 section 7.1.2).
pub const MIN_WINDOW_BITS: u8 = 8;

/// The largest LZ77 window, and the default (RFC 7692 section 7.1.2).
pub const MAX_WINDOW_BITS: u8 = 15;

/// What a server accepts and asks for when it negotiates permessage-deflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// zlib compression level, 0 (none) to 9 (best); default 6.
    pub level: u32,
    /// Messages shorter than this many bytes are sent uncompressed; default
    /// 128, at most 65,535 (a larger value counts as 65,535).
    pub min_size: usize,
    /// Always answer `server_no_context_takeover`: every message is
    /// compressed on its own, so one compressed frame serves every member
    /// of a broadcast and an idle session holds no compressor; default true.
    pub server_no_context_takeover: bool,
    /// Always ask the client for `client_no_context_takeover`, so an idle
    /// session holds no inflater either (at some cost in the client's
    /// ratio); default false.
    pub client_no_context_takeover: bool,
    /// The largest window the server compresses with (8 to 15); default 15.
    pub server_max_window_bits: u8,
    /// The largest window the client may compress with, when the client
    /// offers `client_max_window_bits` (8 to 15); default 15.
    pub client_max_window_bits: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            level: 6,
            min_size: 128,
            server_no_context_takeover: true,
            client_no_context_takeover: false,
            server_max_window_bits: MAX_WINDOW_BITS,
            client_max_window_bits: MAX_WINDOW_BITS,
        }
    }
}

/// The parameters both sides agreed on, and this server's own settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The server resets its compressor after every message (RFC 7692 section 7.1.1.1).
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message (RFC 7692 section 7.1.1.2).
    pub client_no_context_takeover: bool,
    /// The server's LZ77 window, as log2 (RFC 7692 section 7.1.2.1).
    pub server_max_window_bits: u8,
    /// The client's LZ77 window, as log2 (RFC 7692 section 7.1.2.2).
    pub client_max_window_bits: u8,
    /// Whether the response names `server_max_window_bits`.
    answer_server_bits: bool,
    /// Whether the response names `client_max_window_bits` (only when offered).
    answer_client_bits: bool,
    /// zlib level of this server's compressor.
    pub level: u32,
    /// Messages shorter than this are sent uncompressed.
    pub min_size: usize,
}

impl Agreed {
    /// The `Sec-WebSocket-Extensions` value of the 101 response.
    pub fn response(&self) -> String {
        let mut out = String::from(EXTENSION_NAME);
        if self.server_no_context_takeover {
            out.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            out.push_str("; client_no_context_takeover");
        }
        if self.answer_server_bits {
            out.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        if self.answer_client_bits {
            out.push_str(&format!(
                "; client_max_window_bits={}",
                self.client_max_window_bits
            ));
        }
        out
    }

    /// The deflate parameters of the server's outgoing messages.
    pub fn outgoing(&self) -> DeflateParams {
        DeflateParams {
            level: self.level.min(9) as u8,
            window_bits: self.server_max_window_bits,
            no_context_takeover: self.server_no_context_takeover,
        }
    }

    /// True when a message of `len` bytes goes out compressed.
    pub fn compresses(&self, len: usize) -> bool {
        len >= self.min_size.min(usize::from(u16::MAX))
    }
}

/// How one side compresses: what a compressed frame shared between
/// sessions must have in common.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeflateParams {
    /// zlib level, 0 to 9.
    pub level: u8,
    /// LZ77 window, as log2.
    pub window_bits: u8,
    /// Every message is compressed on its own.
    pub no_context_takeover: bool,
}

/// One parameter of one offer, as `name` and optional `value`.
struct Param<'a> {
    name: &'a str,
    value: Option<&'a str>,
}

/// Splits one extension element (`name; a; b=1; c="2"`) into its name and
/// parameters; `None` when it is not well formed.
fn parse_element(element: &str) -> Option<(&str, Vec<Param<'_>>)> {
    let mut parts = element.split(';').map(str::trim);
    let name = parts.next().filter(|name| is_token(name))?;
    let mut params = Vec::new();
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((name, value)) => {
                let value = value.trim();
                // RFC 7692 section 7.1: a quoted value must still be a token.
                let value = match value.strip_prefix('"') {
                    Some(quoted) => quoted.strip_suffix('"')?,
                    None => value,
                };
                (name.trim(), Some(value))
            }
            None => (part, None),
        };
        if !is_token(name) || value.is_some_and(|value| !is_token(value)) {
            return None;
        }
        params.push(Param { name, value });
    }
    Some((name, params))
}

/// An HTTP token (RFC 7230 section 3.2.6).
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// A window size value: 1*DIGIT from 8 to 15, no leading zero (RFC 7692 section 7.1.2).
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || value.len() > 2 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value
        .parse::<u8>()
        .ok()
        .filter(|bits| (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(bits))
}

/// What one permessage-deflate offer asks for.
#[derive(Debug, Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: offered without a value.
    client_max_window_bits: Option<Option<u8>>,
}

/// Reads one offer's parameters; `None` when the offer must be declined:
/// an unknown parameter, one named twice, or an invalid value
/// (RFC 7692 section 7.1).
fn parse_offer(params: &[Param<'_>]) -> Option<Offer> {
    let mut offer = Offer::default();
    let mut seen = [false; 4];
    for param in params {
        let index = match param.name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if param.value.is_none() => {
                offer.server_no_context_takeover = true;
                0
            }
            "client_no_context_takeover" if param.value.is_none() => {
                offer.client_no_context_takeover = true;
                1
            }
            "server_max_window_bits" => {
                offer.server_max_window_bits = Some(window_bits(param.value?)?);
                2
            }
            "client_max_window_bits" => {
                offer.client_max_window_bits = Some(match param.value {
                    Some(value) => Some(window_bits(value)?),
                    None => None,
                });
                3
            }
            _ => return None,
        };
        if std::mem::replace(&mut seen[index], true) {
            return None;
        }
    }
    Some(offer)
}

/// Accepts the first permessage-deflate offer of the request's
/// `Sec-WebSocket-Extensions` values that this server can honour
/// (RFC 7692 section 5: the server picks among the client's offers, in
/// the client's order of preference); `None` declines them all.
pub fn negotiate<'a, I>(headers: I, config: &DeflateConfig) -> Option<Agreed>
where
    I: IntoIterator<Item = &'a str>,
{
    let server_bits = config
        .server_max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    let client_bits = config
        .client_max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    headers
        .into_iter()
        .flat_map(|value| value.split(','))
        .filter_map(parse_element)
        .filter(|(name, _)| name.eq_ignore_ascii_case(EXTENSION_NAME))
        .filter_map(|(_, params)| parse_offer(&params))
        .map(|offer| {
            // RFC 7692 section 7.1.2.1: the answer may not exceed what the
            // client asked for; the server may always ask for less.
            let server_max_window_bits = offer
                .server_max_window_bits
                .map_or(server_bits, |asked| asked.min(server_bits));
            // Section 7.1.2.2: the server names the client's window only
            // when the client offered the parameter.
            let (client_max_window_bits, answer_client_bits) = match offer.client_max_window_bits {
                Some(asked) => (asked.unwrap_or(MAX_WINDOW_BITS).min(client_bits), true),
                None => (MAX_WINDOW_BITS, false),
            };
            Agreed {
                server_no_context_takeover: offer.server_no_context_takeover
                    || config.server_no_context_takeover,
                client_no_context_takeover: offer.client_no_context_takeover
                    || config.client_no_context_takeover,
                server_max_window_bits,
                client_max_window_bits,
                answer_server_bits: offer.server_max_window_bits.is_some()
                    || server_max_window_bits < MAX_WINDOW_BITS,
                answer_client_bits,
                level: config.level.min(9),
                min_size: config.min_size,
            }
        })
        .next()
}

/// zlib cannot make a raw deflate stream with an 8-bit window; a 9-bit one
/// never reaches back more than 250 bytes (its window less the lookahead),
/// so it is what an 8-bit agreement compresses with.
fn zlib_bits(bits: u8) -> u8 {
    bits.clamp(9, MAX_WINDOW_BITS)
}

/// Compressors kept per thread between messages compressed without
/// context takeover, so that neither an idle session nor a shared
/// broadcast holds one of its own (a 15-bit compressor is about 256 KiB).
const POOLED: usize = 4;

thread_local! {
    static POOL: RefCell<Vec<(DeflateParams, Compress)>> = const { RefCell::new(Vec::new()) };
}

/// Compresses one message without context takeover, with a pooled compressor.
pub fn deflate_message(params: DeflateParams, payload: &[u8]) -> Bytes {
    let pooled = POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let index = pool.iter().position(|(p, _)| *p == params)?;
        Some(pool.swap_remove(index).1)
    });
    let mut compress = pooled.unwrap_or_else(|| new_compress(params));
    let out = compress_into(&mut compress, payload);
    compress.reset();
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOLED {
            pool.push((params, compress));
        }
    });
    out
}

fn new_compress(params: DeflateParams) -> Compress {
    Compress::new_with_window_bits(
        Compression::new(u32::from(params.level.min(9))),
        false,
        zlib_bits(params.window_bits),
    )
}

/// Deflates `payload` with a sync flush and drops the flush's four-byte
/// tail (RFC 7692 section 7.2.1).
fn compress_into(compress: &mut Compress, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() / 2 + 64);
    let start_in = compress.total_in();
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(64));
        }
        let consumed = (compress.total_in() - start_in) as usize;
        let status = compress.compress_vec(&payload[consumed..], &mut out, FlushCompress::Sync);
        let consumed = (compress.total_in() - start_in) as usize;
        // Done once every byte went in and the flush left room to spare.
        if status.is_err() || (consumed == payload.len() && out.len() < out.capacity()) {
            break;
        }
    }
    if out.ends_with(&SYNC_FLUSH_TAIL) {
        out.truncate(out.len() - SYNC_FLUSH_TAIL.len());
    } else {
        // An empty sync-flushed block: RFC 7692 section 7.2.3.6 allows a
        // single 0x00 byte for an empty message.
        out.push(0);
    }
    // A queue counts a message by its length: the bytes must not hold
    // the (much larger) room they were compressed into.
    out.shrink_to_fit();
    Bytes::from(out)
}

/// The server's compressor of one session with context takeover: it keeps
/// its window for the session's life.
pub struct Deflater {
    compress: Compress,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater").finish_non_exhaustive()
    }
}

impl Deflater {
    /// A compressor with these parameters.
    pub fn new(params: DeflateParams) -> Self {
        Self {
            compress: new_compress(params),
        }
    }

    /// Compresses the next message (RFC 7692 section 7.2.1).
    pub fn deflate(&mut self, payload: &[u8]) -> Bytes {
        compress_into(&mut self.compress, payload)
    }
}

/// The message being inflated grew past the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// Inflated, the message would exceed this many bytes.
    TooBig(usize),
    /// The compressed data is not a valid deflate stream.
    Corrupt,
}

/// The server's inflater of one session. With client context takeover it
/// keeps its window for the session's life (32 KiB plus about 7 KiB of
/// state for a 15-bit window); without, it exists only while a message
/// is arriving.
pub struct Inflater {
    window_bits: u8,
    no_context_takeover: bool,
    decompress: Option<Decompress>,
    /// The message's data ended with a final block: the stream starts anew.
    ended: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("window_bits", &self.window_bits)
            .field("no_context_takeover", &self.no_context_takeover)
            .field("active", &self.decompress.is_some())
            .finish()
    }
}

/// Inflated bytes go through a buffer of this size, so a message is never
/// allocated past its limit.
const INFLATE_CHUNK: usize = 8 * 1024;

impl Inflater {
    /// The inflater for what the client agreed to.
    pub fn new(agreed: &Agreed) -> Self {
        Self::with_params(DeflateParams {
            level: agreed.level.min(9) as u8,
            window_bits: agreed.client_max_window_bits,
            no_context_takeover: agreed.client_no_context_takeover,
        })
    }

    /// The inflater of what a peer compresses with `params` (a client
    /// reading a server's messages, say).
    pub fn with_params(params: DeflateParams) -> Self {
        Self {
            window_bits: zlib_bits(params.window_bits),
            no_context_takeover: params.no_context_takeover,
            decompress: None,
            ended: false,
        }
    }

    /// Inflates `input` (compressed bytes of the message) onto `out`,
    /// never past `max` bytes. On a fault (corrupt data, or more than `max`
    /// bytes), `out` holds what was inflated before it, up to `max`, so the
    /// caller can check that first.
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), InflateError> {
        if self.ended {
            return if input.is_empty() {
                Ok(())
            } else {
                Err(InflateError::Corrupt)
            };
        }
        let bits = self.window_bits;
        let decompress = self
            .decompress
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, bits));
        let mut chunk = [0u8; INFLATE_CHUNK];
        let mut input = input;
        loop {
            let (in_before, out_before) = (decompress.total_in(), decompress.total_out());
            let status = decompress.decompress(input, &mut chunk, FlushDecompress::Sync);
            let used = (decompress.total_in() - in_before) as usize;
            let made = (decompress.total_out() - out_before) as usize;
            input = &input[used..];
            // What came out before a fault, up to the limit, is the
            // message's: the caller checks it before it learns of the fault,
            // so the first fault in the stream shows whatever the read sizes.
            let kept = made.min(max.saturating_sub(out.len()));
            if out.capacity() < out.len() + kept {
                // Grow by doubling, but never past the limit.
                let target = (out.capacity() * 2).max(out.len() + kept).min(max);
                out.reserve_exact(target - out.len());
            }
            out.extend_from_slice(&chunk[..kept]);
            if kept < made {
                return Err(InflateError::TooBig(out.len() - kept + made));
            }
            let status = status.map_err(|_| InflateError::Corrupt)?;
            if status == Status::StreamEnd {
                // A final block ended the stream; nothing may follow it
                // in this message (RFC 7692 section 7.2.3.3).
                self.ended = true;
                if !input.is_empty() {
                    return Err(InflateError::Corrupt);
                }
                return Ok(());
            }
            if made < chunk.len() && (input.is_empty() || (used == 0 && made == 0)) {
                if !input.is_empty() {
                    return Err(InflateError::Corrupt);
                }
                return Ok(());
            }
        }
    }

    /// Ends the message: inflates the sync flush's tail the sender removed
    /// (RFC 7692 section 7.2.2), then forgets the window when the client
    /// does not take it over.
    pub fn finish(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), InflateError> {
        let result = if self.ended {
            Ok(())
        } else {
            self.inflate(&SYNC_FLUSH_TAIL, out, max)
        };
        if self.no_context_takeover || self.ended || result.is_err() {
            self.decompress = None;
            self.ended = false;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreed(offer: &str) -> Option<Agreed> {
        negotiate([offer], &DeflateConfig::default())
    }

    #[test]
    fn a_bare_offer_is_accepted_with_the_servers_policy() {
        let agreed = agreed("permessage-deflate").unwrap();
        assert_eq!(
            agreed.response(),
            "permessage-deflate; server_no_context_takeover"
        );
        assert_eq!(agreed.client_max_window_bits, 15);
        let config = DeflateConfig {
            server_no_context_takeover: false,
            ..DeflateConfig::default()
        };
        let agreed = negotiate(["permessage-deflate"], &config).unwrap();
        assert_eq!(agreed.response(), "permessage-deflate");
    }

    #[test]
    fn window_bits_are_answered_within_what_the_client_offered() {
        let agreed =
            agreed("permessage-deflate; server_max_window_bits=10; client_max_window_bits")
                .unwrap();
        assert_eq!(agreed.server_max_window_bits, 10);
        assert_eq!(
            agreed.response(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=15"
        );
        let config = DeflateConfig {
            client_max_window_bits: 9,
            server_max_window_bits: 12,
            ..DeflateConfig::default()
        };
        let agreed = negotiate(["permessage-deflate; client_max_window_bits=11"], &config).unwrap();
        assert_eq!(agreed.client_max_window_bits, 9);
        assert_eq!(agreed.server_max_window_bits, 12);
        assert_eq!(
            agreed.response(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits=9"
        );
        // Without the client's parameter, its window is not named.
        let agreed = negotiate(["permessage-deflate"], &config).unwrap();
        assert!(!agreed.response().contains("client_max_window_bits"));
    }

    #[test]
    fn context_takeover_parameters_are_honoured() {
        let config = DeflateConfig {
            server_no_context_takeover: false,
            ..DeflateConfig::default()
        };
        let agreed = negotiate(
            ["permessage-deflate; server_no_context_takeover; client_no_context_takeover"],
            &config,
        )
        .unwrap();
        assert!(agreed.server_no_context_takeover && agreed.client_no_context_takeover);
        assert_eq!(
            agreed.response(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }

    #[test]
    fn bad_offers_are_declined_and_the_next_one_taken() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=0",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; unknown",
            "permessage-deflate; client_max_window_bits=\"1 0\"",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(agreed(bad), None, "{bad}");
        }
        let agreed = negotiate(
            [
                "foo, permessage-deflate; server_max_window_bits=99",
                "permessage-deflate; client_max_window_bits=\"10\"",
            ],
            &DeflateConfig::default(),
        )
        .unwrap();
        assert_eq!(agreed.client_max_window_bits, 10);
    }

    #[test]
    fn messages_round_trip_with_and_without_context_takeover() {
        for (server, client) in [(true, true), (false, false), (true, false)] {
            let config = DeflateConfig {
                server_no_context_takeover: server,
                client_no_context_takeover: client,
                ..DeflateConfig::default()
            };
            let agreed =
                negotiate(["permessage-deflate; client_max_window_bits"], &config).unwrap();
            let mut deflater = Deflater::new(agreed.outgoing());
            // The server's output, read back by an inflater of the same
            // parameters as the client would.
            let mirror = Agreed {
                client_max_window_bits: agreed.server_max_window_bits,
                client_no_context_takeover: agreed.server_no_context_takeover,
                ..agreed
            };
            let mut inflater = Inflater::new(&mirror);
            for message in [
                &b"hello hello hello"[..],
                b"",
                b"hello again",
                &[7u8; 100_000],
            ] {
                let compressed = if server {
                    deflate_message(agreed.outgoing(), message)
                } else {
                    deflater.deflate(message)
                };
                let mut out = Vec::new();
                inflater.inflate(&compressed, &mut out, 1 << 20).unwrap();
                inflater.finish(&mut out, 1 << 20).unwrap();
                assert_eq!(out, message);
            }
        }
    }

    #[test]
    fn the_rfc_example_inflates() {
        // RFC 7692 section 7.2.3.1: "Hello" compressed.
        let agreed = agreed("permessage-deflate").unwrap();
        let mut inflater = Inflater::new(&agreed);
        let mut out = Vec::new();
        inflater
            .inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut out, 100)
            .unwrap();
        inflater.finish(&mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn inflation_stops_at_the_limit() {
        let agreed = agreed("permessage-deflate").unwrap();
        let bomb = deflate_message(agreed.outgoing(), &vec![0u8; 1 << 20]);
        assert!(bomb.len() < 2_000);
        let mut inflater = Inflater::new(&agreed);
        let mut out = Vec::new();
        let error = inflater.inflate(&bomb, &mut out, 10_000).unwrap_err();
        assert!(matches!(error, InflateError::TooBig(_)));
        assert!(out.capacity() <= 10_000);
        let mut inflater = Inflater::new(&agreed);
        assert_eq!(
            inflater.inflate(&[0xff, 0xff, 0xff], &mut Vec::new(), 100),
            Err(InflateError::Corrupt)
        );
    }
}
