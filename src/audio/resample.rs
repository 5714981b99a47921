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
    if rate == to || channels.is_empty() {
        return Ok(channels.to_vec());
    }
    let len = channels[0].len();
    let expected = (len as u64 * to as u64).div_ceil(rate as u64) as usize;
    let nch = channels.len();
    let mut r = FftFixedIn::<f32>::new(rate as usize, to as usize, 1024, 2, nch)
        .map_err(|e| AudioError::Corrupt(format!("cannot resample from {rate} Hz: {e}")))?;
    let delay = r.output_delay();
    let mut out: Vec<Vec<f32>> = vec![Vec::with_capacity(expected + delay + 2048); nch];
    let push = |out: &mut Vec<Vec<f32>>, o: Vec<Vec<f32>>| {
        for (dst, src) in out.iter_mut().zip(o) {
            dst.extend_from_slice(&src);
        }
    };
    let err = |e: rubato::ResampleError| AudioError::Corrupt(format!("resampling failed: {e}"));
    let mut pos = 0;
    loop {
        let chunk = r.input_frames_next();
        if pos + chunk > len {
            break;
        }
        let input: Vec<&[f32]> = channels.iter().map(|c| &c[pos..pos + chunk]).collect();
        push(&mut out, r.process(&input, None).map_err(err)?);
        pos += chunk;
    }
    if pos < len {
        let input: Vec<&[f32]> = channels.iter().map(|c| &c[pos..]).collect();
        push(&mut out, r.process_partial(Some(&input), None).map_err(err)?);
    }
    while out[0].len() < expected + delay {
        let o = r.process_partial::<&[f32]>(None, None).map_err(err)?;
        if o[0].is_empty() {
            break;
        }
        push(&mut out, o);
    }
    for c in &mut out {
        c.drain(..delay.min(c.len()));
        c.resize(expected, 0.0);
    }
    Ok(out)
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
