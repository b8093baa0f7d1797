//! gzip codec for stored payloads (flate2).
//!
//! Contract: [`compress`] always produces a gzip member; [`decompress`] accepts gzip and, for rows written
//! before compression was introduced, plain bytes (recognised by the absence of the gzip magic `1f 8b`).
//! A payload that starts with the gzip magic but does not inflate is an error, never silently passed on.
//! Inflation is capped ([`MAX_INFLATED`]) so a hostile or corrupt row cannot exhaust memory.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

/// Largest payload [`decompress`] will produce (the upstream's bodies are capped at 8 MiB as well).
pub const MAX_INFLATED: u64 = 16 << 20;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Level for bodies served many times (expectations, basic info): they are small, so the best ratio is cheap.
pub const LEVEL_SERVED: u32 = 6;
/// Level for raw upstream payloads (~350 KB, compressed once per fetch on the cold path, read rarely). On the
/// real 357 KB sample (`cargo bench --bench expectation -- gzip`): level 6 → 18.0× in 1.38 ms, level 2 →
/// 10.5× in 0.43 ms, level 1 → 8.8× in 0.24 ms. Level 2 keeps a raw payload near 34 KB in Redis and the
/// database and takes a millisecond off every cold character.
pub const LEVEL_RAW: u32 = 2;

/// gzip-compresses a body that is served many times ([`LEVEL_SERVED`]).
pub fn compress(data: &[u8]) -> Vec<u8> {
    compress_level(data, LEVEL_SERVED)
}

/// gzip-compresses a raw upstream payload ([`LEVEL_RAW`]).
pub fn compress_raw(data: &[u8]) -> Vec<u8> {
    compress_level(data, LEVEL_RAW)
}

fn compress_level(data: &[u8], level: u32) -> Vec<u8> {
    let mut enc = GzEncoder::new(
        Vec::with_capacity(data.len() / 8 + 64),
        Compression::new(level),
    );
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
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
    fn legacy_plain_rows_pass_through_and_corrupt_gzip_fails() {
        assert_eq!(decompress(b"{\"a\":1}").unwrap(), b"{\"a\":1}");
        let mut gz = compress(b"hello world hello world");
        let n = gz.len();
        gz.truncate(n - 6);
        assert!(decompress(&gz).is_err());
        assert!(decompress(&[0x1f, 0x8b, 0, 0]).is_err());
    }
}
