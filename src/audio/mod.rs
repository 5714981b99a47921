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

/// Decode, measure and resample the file at `path` (blocking; run it off the
/// async runtime).
pub fn intake(path: &Path, ext: Option<&str>, max_duration: Duration) -> Result<Intake, AudioError> {
    let audio = decode::decode_file(path, ext, max_duration)?;
    let quality = quality::measure(&audio.channels, audio.sample_rate);
    let channels = resample::resample(&audio.channels, audio.sample_rate, TARGET_RATE)?;
    Ok(Intake { audio16k: Audio { sample_rate: TARGET_RATE, channels }, quality })
}
