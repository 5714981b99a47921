//! Audio quality figures, measured on the decoded audio at its own rate over all
//! channels: level, peak, clipping, silence, an SNR estimate and one 0–1 score.
//!
//! Method: the signal is cut into 20 ms frames and each frame's RMS level taken
//! in dBFS. Frames below a silence threshold are non-speech: the threshold is 10 dB
//! above the 10th-percentile frame level (the noise floor), kept between −60 and
//! −35 dBFS, so quiet and noisy lines are judged alike. SNR is the mean power of
//! the loud frames over the mean power of the quiet ones (the noise floor when the
//! recording has no pause). The score weighs SNR (50 %: 0 dB → 0, 30 dB → 1),
//! speech level (20 %: full between −30 and −12 dBFS, falling to 0 at −50 and 0 dBFS),
//! clipping (20 %: 1 − 100 × clipped fraction, floored at 0) and how much of the
//! call carries speech (10 %: 1 while under 80 % silence, down to 0 at 100 %).

use serde::{Deserialize, Serialize};

/// What the quality pass measured; written to `ai_call_analysis`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioQuality {
    pub duration_seconds: f64,
    /// The file's own sample rate, before resampling.
    pub sample_rate: u32,
    pub channels: u32,
    pub rms_dbfs: f64,
    pub peak_dbfs: f64,
    /// Fraction of samples at or beyond full scale (≥ 0.999).
    pub clipping_ratio: f64,
    /// Fraction of 20 ms frames below the silence threshold.
    pub silence_ratio: f64,
    pub snr_db: f64,
    /// 0 (unusable) – 1 (clean), see the module docs.
    pub quality_score: f64,
    /// Damaged packets the decoder skipped (their audio is missing from the call).
    #[serde(default)]
    pub skipped_packets: u64,
}

impl AudioQuality {
    /// Placeholder figures for results that carry none (queue tests).
    pub fn unknown() -> Self {
        AudioQuality {
            duration_seconds: 0.0,
            sample_rate: 0,
            channels: 0,
            rms_dbfs: FLOOR_DB,
            peak_dbfs: FLOOR_DB,
            clipping_ratio: 0.0,
            silence_ratio: 1.0,
            snr_db: 0.0,
            quality_score: 0.0,
            skipped_packets: 0,
        }
    }
}

/// Levels below this are reported as this (digital silence has no finite dB).
pub const FLOOR_DB: f64 = -120.0;

fn db(power: f64) -> f64 {
    if power <= 0.0 {
        FLOOR_DB
    } else {
        (10.0 * power.log10()).max(FLOOR_DB)
    }
}

/// Measure `channels` (planar, equal length) sampled at `rate`.
pub fn measure(channels: &[Vec<f32>], rate: u32) -> AudioQuality {
    let mut m = Meter::new(rate, channels.len());
    let planes: Vec<&[f32]> = channels.iter().map(|c| c.as_slice()).collect();
    m.push(&planes);
    m.finish()
}

/// The quality figures, measured as the audio streams past: sums, peak and
/// clipping per sample, and one power figure per 20 ms frame (50 a second:
/// 5.8 MB for 4 hours), so no copy of the audio is kept.
#[derive(Debug, Clone)]
pub struct Meter {
    rate: u32,
    nch: usize,
    frames: usize,
    sum_sq: f64,
    peak: f32,
    clipped: u64,
    frame_len: usize,
    /// The 20 ms frame being filled: its power sum and its length so far.
    acc: f64,
    fill: usize,
    frame_pow: Vec<f64>,
}

impl Meter {
    pub fn new(rate: u32, channels: usize) -> Meter {
        Meter {
            rate,
            nch: channels.max(1),
            frames: 0,
            sum_sq: 0.0,
            peak: 0.0,
            clipped: 0,
            frame_len: ((rate as usize) / 50).max(1),
            acc: 0.0,
            fill: 0,
            frame_pow: Vec::new(),
        }
    }

    /// The next stretch of audio: planar channels of equal length.
    pub fn push(&mut self, planes: &[&[f32]]) {
        let n = planes.first().map_or(0, |c| c.len());
        for c in planes {
            for &s in c.iter() {
                let a = s.abs();
                self.sum_sq += (s as f64) * (s as f64);
                self.peak = self.peak.max(a);
                if a >= 0.999 {
                    self.clipped += 1;
                }
            }
        }
        let mut i = 0;
        while i < n {
            let take = (self.frame_len - self.fill).min(n - i);
            for c in planes {
                self.acc += c[i..i + take].iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>();
            }
            self.fill += take;
            i += take;
            if self.fill == self.frame_len {
                self.frame_pow.push(self.acc / (self.fill * self.nch) as f64);
                self.acc = 0.0;
                self.fill = 0;
            }
        }
        self.frames += n;
    }

    pub fn finish(mut self) -> AudioQuality {
        if self.fill > 0 {
            self.frame_pow.push(self.acc / (self.fill * self.nch) as f64);
        }
        let (rate, frames, nch) = (self.rate, self.frames, self.nch);
        let total = (frames * nch).max(1) as f64;
        let (sum_sq, peak, clipped) = (self.sum_sq, self.peak, self.clipped);
        let frame_pow = self.frame_pow;
        let frame_db: Vec<f64> = frame_pow.iter().map(|&p| db(p)).collect();
        let mut sorted = frame_db.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let p10 = sorted.get(sorted.len() / 10).copied().unwrap_or(FLOOR_DB);
        let threshold = (p10 + 10.0).clamp(-60.0, -35.0);
        let (mut loud_p, mut loud_n, mut quiet_p, mut quiet_n) = (0.0, 0usize, 0.0, 0usize);
        for (&p, &d) in frame_pow.iter().zip(&frame_db) {
            if d < threshold {
                quiet_p += p;
                quiet_n += 1;
            } else {
                loud_p += p;
                loud_n += 1;
            }
        }
        let n_frames = frame_db.len().max(1);
        let silence_ratio = quiet_n as f64 / n_frames as f64;
        let speech_db = if loud_n > 0 { db(loud_p / loud_n as f64) } else { FLOOR_DB };
        let noise_db = if quiet_n > 0 { db(quiet_p / quiet_n as f64) } else { p10 };
        let snr_db = if loud_n == 0 { 0.0 } else { (speech_db - noise_db).clamp(0.0, 100.0) };
        let clipping_ratio = clipped as f64 / total;

        let snr_part = (snr_db / 30.0).clamp(0.0, 1.0);
        let level_part = if loud_n == 0 {
            0.0
        } else if speech_db < -30.0 {
            ((speech_db + 50.0) / 20.0).clamp(0.0, 1.0)
        } else if speech_db > -12.0 {
            ((0.0 - speech_db) / 12.0).clamp(0.0, 1.0)
        } else {
            1.0
        };
        let clip_part = (1.0 - 100.0 * clipping_ratio).clamp(0.0, 1.0);
        let speech_part = if silence_ratio <= 0.8 { 1.0 } else { ((1.0 - silence_ratio) / 0.2).clamp(0.0, 1.0) };
        let score = 0.5 * snr_part + 0.2 * level_part + 0.2 * clip_part + 0.1 * speech_part;

        AudioQuality {
            duration_seconds: frames as f64 / rate.max(1) as f64,
            sample_rate: rate,
            channels: nch as u32,
            rms_dbfs: db(sum_sq / total),
            peak_dbfs: if peak > 0.0 { (20.0 * (peak as f64).log10()).max(FLOOR_DB) } else { FLOOR_DB },
            clipping_ratio,
            silence_ratio,
            snr_db,
            quality_score: (score * 1000.0).round() / 1000.0,
            skipped_packets: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "call": bursts of tone (speech stand-in) with pauses, plus white noise.
    fn call(noise: f32, amp: f32, rate: u32) -> Vec<f32> {
        let mut seed = 12345u32;
        (0..rate * 10)
            .map(|i| {
                seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                let n = (seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0;
                let t = i as f32 / rate as f32;
                let on = (t as u32).is_multiple_of(2);
                let s = if on { (2.0 * std::f32::consts::PI * 300.0 * t).sin() * amp } else { 0.0 };
                s + n * noise
            })
            .collect()
    }

    #[test]
    fn clean_call_scores_high_and_noisy_call_low() {
        let clean = measure(&[call(0.001, 0.3, 8000)], 8000);
        let noisy = measure(&[call(0.2, 0.3, 8000)], 8000);
        assert!((clean.duration_seconds - 10.0).abs() < 1e-9);
        assert!(clean.snr_db > 35.0, "{clean:?}");
        assert!((clean.silence_ratio - 0.5).abs() < 0.05, "{clean:?}");
        assert!(noisy.snr_db < 10.0, "{noisy:?}");
        assert!(clean.quality_score > 0.9 && noisy.quality_score < clean.quality_score - 0.3, "{clean:?} {noisy:?}");
    }

    #[test]
    fn measuring_in_pieces_equals_measuring_whole() {
        let a = call(0.05, 0.3, 8000);
        let b: Vec<f32> = a.iter().rev().map(|s| s * 0.5).collect();
        let whole = measure(&[a.clone(), b.clone()], 8000);
        let mut m = Meter::new(8000, 2);
        // Uneven pieces that straddle the 20 ms frames.
        let mut i = 0;
        for step in [1usize, 77, 160, 1000, 3].iter().cycle() {
            if i >= a.len() {
                break;
            }
            let j = (i + step).min(a.len());
            m.push(&[&a[i..j], &b[i..j]]);
            i = j;
        }
        let pieces = m.finish();
        let close = |x: f64, y: f64| (x - y).abs() < 1e-9 * x.abs().max(1.0);
        assert!(close(whole.rms_dbfs, pieces.rms_dbfs) && close(whole.snr_db, pieces.snr_db), "{whole:?} {pieces:?}");
        assert_eq!((whole.silence_ratio, whole.duration_seconds), (pieces.silence_ratio, pieces.duration_seconds));
    }

    #[test]
    fn clipping_is_counted_and_silence_is_finite() {
        let clipped = measure(&[call(0.0, 1.5, 8000).into_iter().map(|s| s.clamp(-1.0, 1.0)).collect()], 8000);
        assert!(clipped.clipping_ratio > 0.05, "{clipped:?}");
        assert!(clipped.peak_dbfs > -0.01);
        let silent = measure(&[vec![0.0; 16000]], 16000);
        assert_eq!(silent.rms_dbfs, FLOOR_DB);
        assert_eq!(silent.silence_ratio, 1.0);
        assert!(silent.quality_score < 0.3, "{silent:?}");
    }
}
