//! Band-limited resampling to 16 kHz, the rate whisper expects, with rubato's
//! FFT resampler (anti-aliased for downsampling 44.1/48 kHz, clean for
//! upsampling 8 kHz telephone audio). The resampler's delay is trimmed so the
//! output lines up with the input sample for sample.

use rubato::{FftFixedIn, Resampler};

use super::AudioError;

/// The sample rate every stage after decoding works at.
pub const TARGET_RATE: u32 = 16_000;

/// Resample planar `channels` from `rate` to `to`.
pub fn resample(channels: &[Vec<f32>], rate: u32, to: u32) -> Result<Vec<Vec<f32>>, AudioError> {
    if channels.is_empty() {
        return Ok(Vec::new());
    }
    let mut s = Stream::new(rate, to, channels.len())?;
    let planes: Vec<&[f32]> = channels.iter().map(|c| c.as_slice()).collect();
    s.push(&planes)?;
    s.finish()
}

/// A resampler fed in pieces as the decoder yields them: it holds less than
/// one FFT block of input and the output so far, never the input at its own
/// rate. At the target rate already, the samples are appended as they come.
pub struct Stream {
    /// `None` when the rates match.
    fft: Option<FftFixedIn<f32>>,
    rate: u32,
    to: u32,
    /// Input not yet processed (less than one block).
    pending: Vec<Vec<f32>>,
    out: Vec<Vec<f32>>,
    /// Output samples still to drop: the resampler's delay.
    skip: usize,
    frames_in: u64,
}

fn failed(e: rubato::ResampleError) -> AudioError {
    AudioError::Corrupt(format!("resampling failed: {e}"))
}

impl Stream {
    pub fn new(rate: u32, to: u32, channels: usize) -> Result<Stream, AudioError> {
        let fft = if rate == to {
            None
        } else {
            Some(
                FftFixedIn::<f32>::new(rate as usize, to as usize, 1024, 2, channels)
                    .map_err(|e| AudioError::Corrupt(format!("cannot resample from {rate} Hz: {e}")))?,
            )
        };
        let skip = fft.as_ref().map_or(0, |r| r.output_delay());
        Ok(Stream {
            fft,
            rate,
            to,
            pending: vec![Vec::new(); channels],
            out: vec![Vec::new(); channels],
            skip,
            frames_in: 0,
        })
    }

    /// Output frames so far.
    pub fn frames_out(&self) -> usize {
        self.out.first().map_or(0, |c| c.len())
    }

    fn emit(&mut self, o: Vec<Vec<f32>>) {
        let drop = self.skip.min(o.first().map_or(0, |c| c.len()));
        self.skip -= drop;
        for (dst, src) in self.out.iter_mut().zip(o) {
            dst.extend_from_slice(&src[drop..]);
        }
    }

    /// The next stretch of input: planar channels of equal length.
    pub fn push(&mut self, planes: &[&[f32]]) -> Result<(), AudioError> {
        let n = planes.first().map_or(0, |c| c.len());
        self.frames_in += n as u64;
        let Some(fft) = self.fft.as_mut() else {
            for (dst, src) in self.out.iter_mut().zip(planes) {
                dst.extend_from_slice(src);
            }
            return Ok(());
        };
        let block = fft.input_frames_next();
        let mut pos = 0;
        if !self.pending[0].is_empty() {
            let take = (block - self.pending[0].len()).min(n);
            for (p, src) in self.pending.iter_mut().zip(planes) {
                p.extend_from_slice(&src[..take]);
            }
            pos = take;
            if self.pending[0].len() < block {
                return Ok(());
            }
            let o = fft.process(&self.pending, None).map_err(failed)?;
            self.pending.iter_mut().for_each(Vec::clear);
            self.emit(o);
        }
        let fft = self.fft.as_mut().expect("resampling");
        let mut outs = Vec::new();
        while n - pos >= block {
            let input: Vec<&[f32]> = planes.iter().map(|c| &c[pos..pos + block]).collect();
            outs.push(fft.process(&input, None).map_err(failed)?);
            pos += block;
        }
        for o in outs {
            self.emit(o);
        }
        for (p, src) in self.pending.iter_mut().zip(planes) {
            p.extend_from_slice(&src[pos..]);
        }
        Ok(())
    }

    /// The output, exactly `ceil(frames_in · to / rate)` frames, aligned with the input.
    pub fn finish(mut self) -> Result<Vec<Vec<f32>>, AudioError> {
        let expected = (self.frames_in * self.to as u64).div_ceil(self.rate as u64) as usize;
        if let Some(fft) = self.fft.as_mut() {
            if !self.pending[0].is_empty() {
                let o = fft.process_partial(Some(&self.pending), None).map_err(failed)?;
                self.emit(o);
            }
            while self.frames_out() < expected {
                let fft = self.fft.as_mut().expect("resampling");
                let o = fft.process_partial::<&[f32]>(None, None).map_err(failed)?;
                if o[0].is_empty() {
                    break;
                }
                self.emit(o);
            }
        }
        for c in &mut self.out {
            c.resize(expected, 0.0);
        }
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f32, secs: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 0.5)
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn upsampling_keeps_length_phase_and_level() {
        let x = sine(8000, 440.0, 1.0);
        let y = resample(&[x], 8000, 16000).unwrap();
        assert_eq!(y[0].len(), 16000);
        let expect = sine(16000, 440.0, 1.0);
        // Aligned: the difference to an ideal 16 kHz sine is small away from the edges.
        let err: f32 =
            y[0][2000..14000].iter().zip(&expect[2000..14000]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(err < 0.02, "max error {err}");
    }

    #[test]
    fn streaming_in_odd_pieces_equals_resampling_whole() {
        let x = sine(44100, 440.0, 2.3);
        let y = sine(44100, 1000.0, 2.3);
        let whole = resample(&[x.clone(), y.clone()], 44100, 16000).unwrap();
        let mut s = Stream::new(44100, 16000, 2).unwrap();
        let mut i = 0;
        for step in [1usize, 1023, 1024, 5000, 7].iter().cycle() {
            if i >= x.len() {
                break;
            }
            let j = (i + step).min(x.len());
            s.push(&[&x[i..j], &y[i..j]]).unwrap();
            i = j;
        }
        let pieces = s.finish().unwrap();
        assert_eq!(pieces[0].len(), whole[0].len());
        assert_eq!(pieces, whole, "the same blocks, the same output");
        // At the target rate, samples pass untouched.
        let mut same = Stream::new(16000, 16000, 1).unwrap();
        same.push(&[&x[..100]]).unwrap();
        same.push(&[&x[100..250]]).unwrap();
        assert_eq!(same.finish().unwrap(), vec![x[..250].to_vec()]);
    }

    #[test]
    fn downsampling_removes_what_16k_cannot_carry() {
        // 11 kHz is above the 8 kHz Nyquist limit of 16 kHz audio: it must be filtered out,
        // not folded back as an alias, while 1 kHz passes.
        let high = resample(&[sine(48000, 11000.0, 1.0)], 48000, 16000).unwrap();
        let low = resample(&[sine(48000, 1000.0, 1.0)], 48000, 16000).unwrap();
        assert_eq!(high[0].len(), 16000);
        assert!(rms(&high[0][1000..15000]) < 0.01, "alias {}", rms(&high[0][1000..15000]));
        assert!((rms(&low[0][1000..15000]) - 0.3535).abs() < 0.02);
    }
}
