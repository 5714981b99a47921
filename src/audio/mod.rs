//! Audio intake: decode any common format ([`decode`]), keep the channels,
//! resample band-limited to 16 kHz ([`resample`]) and measure quality figures
//! ([`quality`]). Pure functions of bytes and samples; nothing here knows the
//! queue.

pub mod decode;
pub mod gsm;
pub mod quality;
pub mod resample;
pub mod vad;

use std::path::Path;
use std::time::Duration;

pub use quality::AudioQuality;
pub use resample::TARGET_RATE;

/// Decoded audio: planar channels at `sample_rate`.
#[derive(Debug, Clone)]
pub struct Audio {
    pub sample_rate: u32,
    pub channels: Vec<Vec<f32>>,
}

impl Audio {
    pub fn frames(&self) -> usize {
        self.channels.first().map_or(0, |c| c.len())
    }
    pub fn duration_seconds(&self) -> f64 {
        self.frames() as f64 / self.sample_rate as f64
    }
}

/// Why audio could not be used. All but `Io` are properties of the file and will
/// not change on retry.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("the audio file is empty (0 bytes)")]
    Empty,
    #[error("the audio holds no samples (zero-length recording)")]
    NoSamples,
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    #[error("corrupt audio: {0}")]
    Corrupt(String),
    #[error("audio too long: {seconds:.0} s declared or decoded, limit is {max:.0} s (audio.max_duration)")]
    TooLong { seconds: f64, max: f64 },
    #[error("truncated audio: the header declares {declared:.1} s but the file holds {found:.1} s")]
    Truncated { declared: f64, found: f64 },
    #[error("reading the downloaded audio: {0}")]
    Io(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poison_samples_are_made_safe() {
        let mut ch = vec![vec![0.5, f32::NAN, 1e30, -1e30, f32::INFINITY, -0.25, 1.0]];
        assert_eq!(sanitize(&mut ch), 4);
        assert_eq!(ch[0], vec![0.5, 0.0, 1.0, -1.0, 0.0, -0.25, 1.0]);
        assert_eq!(sanitize(&mut ch), 0, "clean samples are left alone");
    }
}

impl AudioError {
    pub fn is_transient(&self) -> bool {
        matches!(self, AudioError::Io(_))
    }
}

/// What the pipeline gets from intake: 16 kHz channels and the quality figures.
#[derive(Debug, Clone)]
pub struct Intake {
    pub audio16k: Audio,
    pub quality: AudioQuality,
}

/// Channels kept from a recording with more than two: the first two. A call
/// has two parties; PBXs that record more channels put the agent and the caller
/// on the first two (extra ones hold conference legs, music on hold or copies),
/// and whisper's time grows with every channel kept.
pub const MAX_CHANNELS: usize = 2;

/// Make samples safe for whisper: a NaN or infinite sample becomes 0 and every
/// sample is clamped to −1…1 (whisper.cpp's DTW crashed the worker on a single
/// NaN, and on float WAVs holding values like 1e30). Returns how many samples
/// were changed.
pub fn sanitize(channels: &mut [Vec<f32>]) -> usize {
    let mut changed = 0;
    for x in channels.iter_mut().flat_map(|c| c.iter_mut()) {
        let y = if x.is_finite() { x.clamp(-1.0, 1.0) } else { 0.0 };
        if y.to_bits() != x.to_bits() {
            *x = y;
            changed += 1;
        }
    }
    changed
}

/// Decode, measure and resample the file at `path` (blocking; run it off the
/// async runtime), in one pass as the decoder yields each packet: the first two
/// channels are kept, poison samples made safe, the quality figures measured at
/// the file's own rate and the audio resampled to 16 kHz. What is kept is the
/// 16 kHz audio alone (64 KB a second per channel), never a copy at the file's
/// rate; at 16 kHz already, the samples are taken as they are.
pub fn intake(path: &Path, ext: Option<&str>, max_duration: Duration) -> Result<Intake, AudioError> {
    struct Sink {
        meter: quality::Meter,
        stream: resample::Stream,
        kept: Vec<Vec<f32>>,
        changed: usize,
    }
    let mut sink: Option<Sink> = None;
    let mut extra_channels = 0usize;
    // The rate and channels are known with the first packet: the sink is built then.
    let decoded = decode::decode_stream(path, ext, max_duration, &mut |r, planes| {
        let s = match &mut sink {
            Some(s) => s,
            None => {
                let keep = planes.len().min(MAX_CHANNELS);
                extra_channels = planes.len() - keep;
                sink.insert(Sink {
                    meter: quality::Meter::new(r, keep),
                    stream: resample::Stream::new(r, TARGET_RATE, keep)?,
                    kept: vec![Vec::new(); keep],
                    changed: 0,
                })
            }
        };
        for (dst, src) in s.kept.iter_mut().zip(planes) {
            dst.clear();
            dst.extend_from_slice(src);
        }
        s.changed += sanitize(&mut s.kept);
        let planes: Vec<&[f32]> = s.kept.iter().map(|k| k.as_slice()).collect();
        s.meter.push(&planes);
        s.stream.push(&planes)
    })?;
    let Some(s) = sink else { return Err(AudioError::NoSamples) };
    if extra_channels > 0 {
        tracing::warn!(
            channels = decoded.channels,
            kept = MAX_CHANNELS,
            "more channels than a call has; keeping the first two"
        );
    }
    if s.changed > 0 {
        tracing::warn!(samples = s.changed, "non-finite or out-of-range samples replaced");
    }
    let quality = AudioQuality { skipped_packets: decoded.skipped_packets, ..s.meter.finish() };
    let channels = s.stream.finish()?;
    Ok(Intake { audio16k: Audio { sample_rate: TARGET_RATE, channels }, quality })
}
