//! gzip codec for payloads kept compressed: cached bodies, stored snapshots, served responses (flate2).
//!
//! Contract: [`compress`] and [`compress_raw`] always produce one standard gzip member (RFC 1952: 10-byte
//! header, raw deflate, CRC-32, size) that any gzip reader accepts; [`decompress`] accepts gzip and, for
//! rows written before compression was introduced, plain bytes (recognised by the absence of the gzip
//! magic `1f 8b`). A payload that starts with the gzip magic but does not inflate is an error, never
//! silently passed on. Inflation is capped ([`MAX_INFLATED`]) so a hostile or corrupt payload cannot
//! exhaust memory.
//!
//! Compression reuses one deflate state per thread and level instead of allocating and zeroing zlib's
//! tables for every call, which for small bodies (an ocid, an expectation) would cost more than the
//! compression itself. Nothing here does I/O; it sits on the bottom floor so that the store, the read
//! path and the API share one codec.

use std::cell::RefCell;
use std::io::Read;

use flate2::read::GzDecoder;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Largest payload [`decompress`] will produce (the upstream's bodies are capped at 8 MiB as well).
pub const MAX_INFLATED: u64 = 16 << 20;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Level for bodies served many times (expectations, basic info): compressed once, sent often, so the
/// size matters more than the time.
pub const LEVEL_SERVED: u32 = 5;
/// Level for raw upstream payloads (compressed once per fetch on the cold path, read rarely): the fastest
/// level, since their deflate is a large share of the cold path's CPU.
pub const LEVEL_RAW: u32 = 1;

/// gzip-compresses a body that is served many times ([`LEVEL_SERVED`]).
pub fn compress(data: &[u8]) -> Vec<u8> {
    compress_level(data, LEVEL_SERVED)
}

/// gzip-compresses a raw upstream payload ([`LEVEL_RAW`]).
pub fn compress_raw(data: &[u8]) -> Vec<u8> {
    compress_level(data, LEVEL_RAW)
}

/// The gzip member header: magic, CM = deflate, no flags, no mtime, no extra flags, OS = unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

thread_local! {
    /// This thread's deflate states, one per level used ([`LEVEL_SERVED`], [`LEVEL_RAW`]).
    static DEFLATERS: RefCell<Vec<(u32, Compress)>> = const { RefCell::new(Vec::new()) };
}

fn compress_level(data: &[u8], level: u32) -> Vec<u8> {
    DEFLATERS.with_borrow_mut(|states| {
        let i = match states.iter().position(|(l, _)| *l == level) {
            Some(i) => i,
            None => {
                // Raw deflate (no zlib header): the gzip framing is written by `gzip_with`.
                states.push((level, Compress::new(Compression::new(level), false)));
                states.len() - 1
            }
        };
        let state = &mut states[i].1;
        state.reset();
        gzip_with(state, data)
    })
}

/// One gzip member of `data`, deflated by `state` (fresh or just reset).
fn gzip_with(state: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 8 + 64);
    out.extend_from_slice(&GZIP_HEADER);
    deflate_all(state, data, &mut out);
    let mut crc = Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE is the input length modulo 2^32 (RFC 1952).
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// Deflates all of `data` into the spare capacity of `out`, growing it as needed, and finishes the stream.
fn deflate_all(state: &mut Compress, data: &[u8], out: &mut Vec<u8>) {
    let start_in = state.total_in();
    loop {
        let consumed = (state.total_in() - start_in) as usize;
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(4096));
        }
        let status = state
            .compress_vec(&data[consumed..], out, FlushCompress::Finish)
            .expect("deflate of an in-memory buffer cannot fail");
        if status == Status::StreamEnd {
            return;
        }
    }
}

/// True when `data` is gzip-framed.
pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&GZIP_MAGIC)
}

/// Inflates a gzip payload, or returns a legacy uncompressed payload unchanged.
pub fn decompress(data: &[u8]) -> std::io::Result<Vec<u8>> {
    if !is_gzip(data) {
        return Ok(data.to_vec());
    }
    let mut out = Vec::with_capacity(data.len() * 8);
    GzDecoder::new(data)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > MAX_INFLATED {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("payload inflates beyond {MAX_INFLATED} bytes"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_compresses_the_real_sample_about_twentyfold() {
        let sample = std::fs::read("../shared/data/nexon/item-equipment-evan.json").unwrap();
        let gz = compress(&sample);
        assert!(is_gzip(&gz));
        assert_eq!(decompress(&gz).unwrap(), sample);
        let ratio = sample.len() as f64 / gz.len() as f64;
        assert!(ratio > 10.0, "ratio {ratio:.1}");
    }

    #[test]
    fn reused_states_give_the_same_bytes_as_fresh_ones_and_any_gzip_reader_inflates_them() {
        let sample = std::fs::read("../shared/data/nexon/item-equipment-evan.json").unwrap();
        // Interleave levels and sizes on one thread so every call after the first finds a used state.
        for data in [&sample[..], b"", b"x", &sample[..1000], &sample[..]] {
            for level in [1, LEVEL_RAW, LEVEL_SERVED, 9] {
                let ours = compress_level(data, level);
                let fresh = gzip_with(&mut Compress::new(Compression::new(level), false), data);
                assert_eq!(ours, fresh, "level {level}, {} bytes", data.len());
                // flate2's own reader (header, CRC and size checked), not only ours.
                let mut back = Vec::new();
                GzDecoder::new(&ours[..]).read_to_end(&mut back).unwrap();
                assert_eq!(back, data, "level {level}, {} bytes", data.len());
            }
        }
    }

    #[test]
    fn legacy_plain_rows_pass_through_and_corrupt_gzip_fails() {
        assert_eq!(decompress(b"{\"a\":1}").unwrap(), b"{\"a\":1}");
        let mut gz = compress(b"hello world hello world");
        let n = gz.len();
        gz.truncate(n - 6);
        assert!(decompress(&gz).is_err());
        assert!(decompress(&[0x1f, 0x8b, 0, 0]).is_err());
    }
}
