//! The mel filter bank whisper was trained with: librosa's
//! `filters.mel(sr=16000, n_fft=400, n_mels=N)` — Slaney mel scale (linear below
//! 1 kHz, logarithmic above) and Slaney area normalisation. whisper.cpp reads it
//! from the model file, so a converted model must carry exactly this.

/// Hz to mel, Slaney scale (librosa `hz_to_mel(htk=False)`).
pub fn hz_to_mel(f: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = (6.4f64).ln() / 27.0;
    if f >= min_log_hz {
        min_log_mel + (f / min_log_hz).ln() / logstep
    } else {
        f / f_sp
    }
}

/// Mel to Hz, Slaney scale.
pub fn mel_to_hz(m: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = (6.4f64).ln() / 27.0;
    if m >= min_log_mel {
        min_log_hz * (logstep * (m - min_log_mel)).exp()
    } else {
        f_sp * m
    }
}

/// `n_mels × (n_fft/2 + 1)` weights, row-major.
pub fn filters(sample_rate: u32, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let n_freqs = n_fft / 2 + 1;
    let sr = sample_rate as f64;
    let fft_freqs: Vec<f64> = (0..n_freqs).map(|i| i as f64 * (sr / 2.0) / (n_freqs - 1) as f64).collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(sr / 2.0));
    let mel_f: Vec<f64> = (0..n_mels + 2).map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64)).collect();
    let mut out = vec![0f32; n_mels * n_freqs];
    for m in 0..n_mels {
        let (f0, f1, f2) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
        let enorm = 2.0 / (f2 - f0);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - f0) / (f1 - f0);
            let upper = (f2 - f) / (f2 - f1);
            out[m * n_freqs + k] = (lower.min(upper).max(0.0) * enorm) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_scale_round_trips_and_matches_librosa_points() {
        for f in [0.0, 200.0, 999.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(f)) - f).abs() < 1e-9);
        }
        // librosa.hz_to_mel(1000) == 15, hz_to_mel(8000) == 45.245640471924965
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(8000.0) - 45.245640471924965).abs() < 1e-9);
    }

    #[test]
    fn filter_bank_shape_and_known_values() {
        let f = filters(16000, 400, 80);
        assert_eq!(f.len(), 80 * 201);
        // librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)[0][1] == 0.02486259
        // and the last filter ends below Nyquist: [79][200] == 0.0
        assert!((f[1] - 0.024_862_59).abs() < 1e-6, "{}", f[1]);
        assert_eq!(f[79 * 201 + 200], 0.0);
        // Every filter is non-empty and non-negative.
        for m in 0..80 {
            let row = &f[m * 201..(m + 1) * 201];
            assert!(row.iter().all(|&x| x >= 0.0));
            assert!(row.iter().any(|&x| x > 0.0), "filter {m} empty");
        }
    }
}
