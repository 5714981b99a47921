//! Acoustic descriptions of speech pieces for clustering: spectral shape (mean
//! log-mel bands with the loudness removed) and pitch (autocorrelation), and a
//! deterministic two-means clustering.

use std::sync::Arc;

use rustfft::{num_complex::Complex, Fft, FftPlanner};

use crate::audio::vad::Region;
use crate::models::mel;

const N_FFT: usize = 400; // 25 ms at 16 kHz
const HOP: usize = 160; // 10 ms
const N_BANDS: usize = 24;
/// Cepstral coefficients kept (c1…c12: spectral envelope, loudness c0 dropped).
const N_CEPS: usize = 12;
/// Pitch carries more speaker identity per dimension than one mel band.
const PITCH_WEIGHT: f64 = 4.0;

struct Analyzer {
    fft: Arc<dyn Fft<f32>>,
    window: Vec<f32>,
    filters: Vec<f32>,
}

impl Analyzer {
    fn new() -> Self {
        let fft = FftPlanner::new().plan_fft_forward(N_FFT);
        let window =
            (0..N_FFT).map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / N_FFT as f32).cos()).collect();
        Analyzer { fft, window, filters: mel::filters(16000, N_FFT, N_BANDS) }
    }
}

/// Autocorrelation pitch of one frame in Hz, if clearly voiced (60–400 Hz).
fn pitch(frame: &[f32], rate: u32) -> Option<f64> {
    let energy: f64 = frame.iter().map(|&x| (x as f64).powi(2)).sum();
    if energy <= 1e-9 {
        return None;
    }
    let (lo, hi) = ((rate / 400) as usize, (rate / 60) as usize);
    let mut best = (0.0, 0usize);
    for lag in lo..hi.min(frame.len() - 1) {
        let r: f64 = frame[..frame.len() - lag].iter().zip(&frame[lag..]).map(|(&a, &b)| a as f64 * b as f64).sum();
        let r = r / energy;
        if r > best.0 {
            best = (r, lag);
        }
    }
    (best.0 > 0.4).then(|| rate as f64 / best.1 as f64)
}

/// Features of the speech in `region` of 16 kHz `samples`.
pub fn describe(samples: &[f32], rate: u32, region: &Region) -> Vec<f64> {
    thread_local! {
        static ANALYZER: Analyzer = Analyzer::new();
    }
    let a = ((region.start * rate as f64) as usize).min(samples.len());
    let b = ((region.end * rate as f64) as usize).min(samples.len());
    let x = &samples[a..b];
    ANALYZER.with(|an| {
        let n_freqs = N_FFT / 2 + 1;
        let mut frames: Vec<(f64, Vec<f64>)> = Vec::new();
        let mut pitches = Vec::new();
        let mut buf = vec![Complex::new(0.0f32, 0.0); N_FFT];
        let mut i = 0;
        while i + N_FFT <= x.len() {
            let f = &x[i..i + N_FFT];
            for (k, c) in buf.iter_mut().enumerate() {
                *c = Complex::new(f[k] * an.window[k], 0.0);
            }
            an.fft.process(&mut buf);
            let power: Vec<f32> = buf[..n_freqs].iter().map(|c| c.norm_sqr()).collect();
            let bands: Vec<f64> = (0..N_BANDS)
                .map(|m| {
                    let e: f32 =
                        an.filters[m * n_freqs..(m + 1) * n_freqs].iter().zip(&power).map(|(w, p)| w * p).sum();
                    ((e as f64) + 1e-10).ln()
                })
                .collect();
            let energy = bands.iter().map(|b| b.exp()).sum::<f64>();
            frames.push((energy, bands));
            if let Some(p) = pitch(f, rate) {
                pitches.push(p);
            }
            i += HOP;
        }
        let mut out = vec![0.0; N_CEPS + 1];
        if frames.is_empty() {
            out[N_CEPS] = f64::NAN;
            return out;
        }
        // The louder half of the frames carries the voice.
        let mut energies: Vec<f64> = frames.iter().map(|f| f.0).collect();
        energies.sort_by(|a, b| a.total_cmp(b));
        let median = energies[energies.len() / 2];
        let voiced: Vec<&Vec<f64>> = frames.iter().filter(|f| f.0 >= median).map(|f| &f.1).collect();
        // Mean cepstrum (DCT-II of the log-mel bands) of the voiced frames.
        for bands in &voiced {
            for (k, o) in out.iter_mut().take(N_CEPS).enumerate() {
                let c: f64 = bands
                    .iter()
                    .enumerate()
                    .map(|(m, b)| b * (std::f64::consts::PI * (k + 1) as f64 * (m as f64 + 0.5) / N_BANDS as f64).cos())
                    .sum();
                *o += c / voiced.len() as f64;
            }
        }
        pitches.sort_by(|a, b| a.total_cmp(b));
        out[N_CEPS] = pitches.get(pitches.len() / 2).map(|p| p.ln()).unwrap_or(f64::NAN);
        out
    })
}

/// Seeds tried by [`two_means`].
pub const MAX_SEEDS: usize = 32;

/// Dimensions standardised over the call; pitch (the last) weighted up; a
/// piece without pitch takes the mean.
pub fn standardise(points: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let Some(d) = points.first().map(Vec::len) else { return Vec::new() };
    let mut x: Vec<Vec<f64>> = points.to_vec();
    for j in 0..d {
        let vals: Vec<f64> = x.iter().map(|p| p[j]).filter(|v| v.is_finite()).collect();
        let mean = if vals.is_empty() { 0.0 } else { vals.iter().sum::<f64>() / vals.len() as f64 };
        let var = if vals.is_empty() {
            1.0
        } else {
            vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64
        };
        let sd = var.sqrt().max(1e-9);
        let w = if j == d - 1 { PITCH_WEIGHT } else { 1.0 };
        for p in x.iter_mut() {
            p[j] = if p[j].is_finite() { (p[j] - mean) / sd * w } else { 0.0 };
        }
    }
    x
}

fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>()
}

/// Split `points` into two clusters (labels 0/1), each point weighted (e.g. by
/// its duration): [`k_means`] with k = 2 on the standardised points.
pub fn two_means(points: &[Vec<f64>], weights: &[f64]) -> Vec<usize> {
    k_means(&standardise(points), weights, 2)
}

/// Split standardised points into `k` clusters (labels 0..k). Each seed point
/// starts one cluster and the farthest-point rule seeds the others; the split
/// with the smallest weighted within-cluster spread that uses every label
/// wins: deterministic, and not fooled by one odd piece.
///
/// Bounded work: at most [`MAX_SEEDS`] seeds, spread evenly over the call, so
/// the cost is `MAX_SEEDS · 50 · n · k · d`, linear in the number of pieces
/// (every point as a seed was quadratic: a 4-hour call's ~4,800 pieces took
/// minutes).
pub fn k_means(x: &[Vec<f64>], weights: &[f64], k: usize) -> Vec<usize> {
    let n = x.len();
    if n < k || k < 2 {
        return vec![0; n];
    }
    let d = x[0].len();
    let mut best: (f64, Vec<usize>) = (f64::MAX, vec![0; n]);
    let seeds = n.min(MAX_SEEDS);
    for a in (0..seeds).map(|s| s * n / seeds) {
        let mut c: Vec<Vec<f64>> = vec![x[a].clone()];
        while c.len() < k {
            let far = (0..n)
                .max_by(|&i, &j| {
                    let di = c.iter().map(|cc| dist(&x[i], cc)).fold(f64::MAX, f64::min);
                    let dj = c.iter().map(|cc| dist(&x[j], cc)).fold(f64::MAX, f64::min);
                    di.total_cmp(&dj)
                })
                .unwrap_or(0);
            c.push(x[far].clone());
        }
        let mut labels = vec![usize::MAX; n];
        for _ in 0..50 {
            let mut changed = false;
            for (i, p) in x.iter().enumerate() {
                let l = (0..k).min_by(|&u, &v| dist(p, &c[u]).total_cmp(&dist(p, &c[v]))).unwrap_or(0);
                if l != labels[i] {
                    labels[i] = l;
                    changed = true;
                }
            }
            for (l, cl) in c.iter_mut().enumerate() {
                let total: f64 = (0..n).filter(|&i| labels[i] == l).map(|i| weights[i]).sum();
                if total > 0.0 {
                    *cl = (0..d)
                        .map(|j| (0..n).filter(|&i| labels[i] == l).map(|i| x[i][j] * weights[i]).sum::<f64>() / total)
                        .collect();
                }
            }
            if !changed {
                break;
            }
        }
        let sse: f64 = (0..n).map(|i| weights[i] * dist(&x[i], &c[labels[i]])).sum();
        if sse < best.0 && (0..k).all(|l| labels.contains(&l)) {
            best = (sse, labels);
        }
    }
    best.1
}

/// How far apart two clusters of voice embeddings are: one minus the cosine of
/// their duration-weighted centroids (0: the same direction; pieces of one voice
/// average to nearly the same centroid however they are split).
pub fn cosine_distance(x: &[Vec<f64>], weights: &[f64], labels: &[usize], a: usize, b: usize) -> f64 {
    let Some(d) = x.first().map(Vec::len) else { return 0.0 };
    let centroid = |c: usize| -> Vec<f64> {
        let mut m = vec![0.0; d];
        for (i, p) in x.iter().enumerate().filter(|(i, _)| labels[*i] == c) {
            m.iter_mut().zip(p).for_each(|(m, v)| *m += v * weights[i]);
        }
        m
    };
    let (ca, cb) = (centroid(a), centroid(b));
    let dot: f64 = ca.iter().zip(&cb).map(|(u, v)| u * v).sum();
    let norm = |v: &[f64]| v.iter().map(|u| u * u).sum::<f64>().sqrt();
    let denominator = norm(&ca) * norm(&cb);
    if denominator > 0.0 {
        1.0 - dot / denominator
    } else {
        0.0
    }
}

/// How far apart two clusters are, in units of their own spread: the distance
/// between their weighted centroids over the pooled within-cluster standard
/// deviation, per dimension, combined as a root sum of squares. Splitting one
/// voice in two gives about 1.6 along the split and little elsewhere; two
/// voices differ along many dimensions at once.
pub fn separation(x: &[Vec<f64>], weights: &[f64], labels: &[usize], a: usize, b: usize) -> f64 {
    let Some(d) = x.first().map(Vec::len) else { return 0.0 };
    let members = |l: usize| (0..x.len()).filter(move |&i| labels[i] == l);
    let stats = |l: usize, j: usize| {
        let w: f64 = members(l).map(|i| weights[i]).sum::<f64>().max(1e-12);
        let mean = members(l).map(|i| x[i][j] * weights[i]).sum::<f64>() / w;
        let var = members(l).map(|i| weights[i] * (x[i][j] - mean).powi(2)).sum::<f64>() / w;
        (w, mean, var)
    };
    (0..d)
        .map(|j| {
            let ((wa, ma, va), (wb, mb, vb)) = (stats(a, j), stats(b, j));
            let pooled = ((wa * va + wb * vb) / (wa + wb)).max(1e-6);
            (ma - mb).powi(2) / pooled
        })
        .sum::<f64>()
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voice(f0: f32, secs: f32) -> Vec<f32> {
        // A buzzy voice: harmonics of f0 with falling amplitude.
        (0..(16000.0 * secs) as usize)
            .map(|i| {
                let t = i as f32 / 16000.0;
                (1..12).map(|h| (2.0 * std::f32::consts::PI * f0 * h as f32 * t).sin() / h as f32).sum::<f32>() * 0.1
            })
            .collect()
    }

    #[test]
    fn pitch_is_found() {
        let v = voice(120.0, 0.1);
        let p = pitch(&v[..400], 16000).unwrap();
        assert!((p - 120.0).abs() < 6.0, "{p}");
    }

    #[test]
    fn two_voices_split_apart() {
        let mut x = Vec::new();
        let mut truth = Vec::new();
        let mut regions = Vec::new();
        for (k, f0) in [110.0, 220.0, 110.0, 220.0, 220.0, 110.0].iter().enumerate() {
            x.extend(voice(*f0, 1.5));
            regions.push(Region { start: k as f64 * 1.5, end: (k + 1) as f64 * 1.5 });
            truth.push(if *f0 < 150.0 { 0 } else { 1 });
        }
        let feats: Vec<Vec<f64>> = regions.iter().map(|r| describe(&x, 16000, r)).collect();
        let labels = two_means(&feats, &vec![1.0; feats.len()]);
        let same = labels.iter().zip(&truth).filter(|(a, b)| a == b).count();
        assert!(same == 6 || same == 0, "{labels:?} vs {truth:?}");
    }
}
