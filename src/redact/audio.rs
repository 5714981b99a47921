//! The cleaned copy of a recording: every PII interval silenced or toned out on
//! every channel, written as 16-bit PCM WAV at the recording's own rate. The
//! file is decoded and written packet by packet, so memory stays flat.

use std::path::Path;
use std::time::Duration;

use super::Cover;
use crate::audio::{decode, AudioError};

/// The tone's frequency and level (−14 dBFS).
pub const TONE_HZ: f64 = 1000.0;
pub const TONE_LEVEL: f64 = 0.2;

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Written {
    pub sample_rate: u32,
    pub channels: usize,
    pub frames: u64,
    /// Frames covered (silenced or toned).
    pub covered_frames: u64,
}

/// Decode `src` and write it to `dest` with `intervals` (seconds, sorted,
/// merged) covered on every channel.
pub fn redact_file(
    src: &Path,
    ext: Option<&str>,
    max_duration: Duration,
    intervals: &[(f64, f64)],
    cover: Cover,
    dest: &Path,
) -> Result<Written, AudioError> {
    let io = |e: hound::Error| AudioError::Io(format!("writing the cleaned copy {}: {e}", dest.display()));
    let mut writer: Option<hound::WavWriter<std::io::BufWriter<std::fs::File>>> = None;
    let mut frame: u64 = 0;
    let mut covered: u64 = 0;
    let mut next = 0usize; // first interval not yet behind us
    let mut rate_seen = 0u32;
    let decoded = decode::decode_stream(src, ext, max_duration, &mut |rate, planes| {
        if writer.is_none() {
            let spec = hound::WavSpec {
                channels: planes.len() as u16,
                sample_rate: rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            writer = Some(hound::WavWriter::create(dest, spec).map_err(io)?);
            rate_seen = rate;
        }
        let w = writer.as_mut().expect("created above");
        let frames = planes.first().map_or(0, |p| p.len());
        for i in 0..frames {
            let t = frame as f64 / rate as f64;
            while next < intervals.len() && intervals[next].1 <= t {
                next += 1;
            }
            let inside = intervals.get(next).is_some_and(|&(lo, hi)| lo <= t && t < hi);
            if inside {
                covered += 1;
            }
            for p in planes {
                let x = if inside {
                    match cover {
                        Cover::Silence => 0.0,
                        Cover::Tone => TONE_LEVEL * (2.0 * std::f64::consts::PI * TONE_HZ * t).sin(),
                    }
                } else {
                    p[i] as f64
                };
                let x = if x.is_finite() { x.clamp(-1.0, 1.0) } else { 0.0 };
                w.write_sample((x * 32767.0).round() as i16).map_err(io)?;
            }
            frame += 1;
        }
        Ok(())
    })?;
    match writer {
        Some(w) => w.finalize().map_err(io)?,
        None => return Err(AudioError::NoSamples),
    }
    Ok(Written {
        sample_rate: rate_seen.max(decoded.sample_rate),
        channels: decoded.channels,
        frames: frame,
        covered_frames: covered,
    })
}
