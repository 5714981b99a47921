//! Neural voice embeddings: Resemblyzer's speaker encoder (a GE2E d-vector
//! network: 40 mel bands in, three LSTM layers of 256, a linear layer to 256
//! dimensions, ReLU and unit length), run here by hand. The weights come from
//! the PyPI package `Resemblyzer` 0.1.4, converted to safetensors by
//! `scripts/voice_encoder.py` (`scripts/fetch-models.sh` does both).
//!
//! As in Resemblyzer, a stretch of speech is raised to −30 dBFS when quieter,
//! cut into partial utterances of 1.6 s (160 frames of 10 ms), each embedded;
//! their mean, made unit length again, describes the voice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rustfft::{num_complex::Complex, FftPlanner};

use crate::models::mel;

const RATE: usize = 16_000;
const N_FFT: usize = 400;
const HOP: usize = 160;
const N_MELS: usize = 40;
const HIDDEN: usize = 256;
const LAYERS: usize = 3;
pub const DIMENSIONS: usize = 256;
/// Frames in one partial utterance (1.6 s).
const PARTIAL: usize = 160;
/// Partials per second of speech (Resemblyzer's default is 1.3).
const PARTIAL_RATE: f64 = 1.3;
/// A last partial reaching past the speech is kept when this much of it is speech.
const MIN_COVERAGE: f64 = 0.75;
/// Partials run through the network together.
const BATCH: usize = 32;
/// Quieter speech is raised to this level before the mel spectrogram.
const TARGET_DBFS: f64 = -30.0;

struct Layer {
    input: usize,
    /// `4·HIDDEN × input`, gates in PyTorch's order: input, forget, cell, output.
    w_ih: Vec<f32>,
    /// `4·HIDDEN × HIDDEN`.
    w_hh: Vec<f32>,
    /// `b_ih + b_hh`.
    bias: Vec<f32>,
}

/// The loaded network and its mel front end.
pub struct VoiceEncoder {
    layers: Vec<Layer>,
    /// `DIMENSIONS × HIDDEN`.
    linear_w: Vec<f32>,
    linear_b: Vec<f32>,
    filters: Vec<f32>,
    window: Vec<f32>,
}

/// A tensor's shape and values.
type Tensor = (Vec<usize>, Vec<f32>);

/// One batch's embeddings and the piece each belongs to.
type Embedded<'a> = (Vec<Vec<f32>>, &'a [usize]);

/// Read the tensors of a safetensors file (F32 only).
fn read_safetensors(path: &Path) -> Result<HashMap<String, Tensor>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = |why: &str| format!("{}: not a safetensors weights file ({why})", path.display());
    let n = u64::from_le_bytes(bytes.get(..8).ok_or_else(|| bad("too short"))?.try_into().unwrap_or([0; 8])) as usize;
    let head = bytes.get(8..8 + n).ok_or_else(|| bad("truncated header"))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(head).map_err(|e| bad(&e.to_string()))?;
    let data = &bytes[8 + n..];
    let mut out = HashMap::new();
    for (name, v) in header {
        if name == "__metadata__" {
            continue;
        }
        if v["dtype"] != "F32" {
            return Err(bad(&format!("{name} is not F32")));
        }
        let shape: Vec<usize> = v["shape"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d.as_u64()).map(|d| d as usize).collect())
            .unwrap_or_default();
        let (a, b) =
            (v["data_offsets"][0].as_u64().unwrap_or(0) as usize, v["data_offsets"][1].as_u64().unwrap_or(0) as usize);
        let raw = data.get(a..b).ok_or_else(|| bad(&format!("{name} lies outside the file")))?;
        if raw.len() != shape.iter().product::<usize>() * 4 {
            return Err(bad(&format!("{name} has the wrong size")));
        }
        let values = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        out.insert(name, (shape, values));
    }
    Ok(out)
}

/// The tensors of a model file, taken out one by one with their shapes checked.
pub(crate) struct Tensors {
    map: HashMap<String, Tensor>,
    path: PathBuf,
    what: &'static str,
}

impl Tensors {
    /// Read `path`, a safetensors file holding `what` (named in errors).
    pub(crate) fn read(path: &Path, what: &'static str) -> Result<Self, String> {
        Ok(Tensors { map: read_safetensors(path)?, path: path.to_path_buf(), what })
    }

    /// The values of tensor `name`, which must have `shape`.
    pub(crate) fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        match self.map.remove(name) {
            Some((s, v)) if s == shape => Ok(v),
            Some((s, _)) => Err(format!("{}: {name} has shape {s:?}, expected {shape:?}", self.path.display())),
            None => Err(format!("{}: not {} file (no {name})", self.path.display(), self.what)),
        }
    }
}

impl VoiceEncoder {
    /// Load `path` (see the module docs).
    pub fn load(path: &Path) -> Result<Self, String> {
        let mut t = Tensors::read(path, "a voice encoder")?;
        let mut take = |name: &str, shape: &[usize]| t.take(name, shape);
        let mut layers = Vec::new();
        for l in 0..LAYERS {
            let input = if l == 0 { N_MELS } else { HIDDEN };
            let w_ih = take(&format!("lstm.weight_ih_l{l}"), &[4 * HIDDEN, input])?;
            let w_hh = take(&format!("lstm.weight_hh_l{l}"), &[4 * HIDDEN, HIDDEN])?;
            let b_ih = take(&format!("lstm.bias_ih_l{l}"), &[4 * HIDDEN])?;
            let b_hh = take(&format!("lstm.bias_hh_l{l}"), &[4 * HIDDEN])?;
            let bias = b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect();
            layers.push(Layer { input, w_ih, w_hh, bias });
        }
        let linear_w = take("linear.weight", &[DIMENSIONS, HIDDEN])?;
        let linear_b = take("linear.bias", &[DIMENSIONS])?;
        let window =
            (0..N_FFT).map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / N_FFT as f32).cos()).collect();
        Ok(VoiceEncoder { layers, linear_w, linear_b, filters: mel::filters(RATE as u32, N_FFT, N_MELS), window })
    }

    /// The mel power spectrogram Resemblyzer feeds the network (librosa's
    /// `melspectrogram`: centred frames, reflected at the edges, Hann window,
    /// power 2, Slaney mel bands; not logarithmic). `frames × N_MELS`.
    pub fn mel(&self, x: &[f32]) -> Vec<f32> {
        let pad = N_FFT / 2;
        let n = x.len();
        let at = |i: isize| x.get(reflect(i, n)).copied().unwrap_or(0.0);
        let frames = 1 + n / HOP;
        let fft = FftPlanner::new().plan_fft_forward(N_FFT);
        let bins = N_FFT / 2 + 1;
        let mut buf = vec![Complex::new(0.0f32, 0.0); N_FFT];
        let mut power = vec![0f32; bins];
        let mut out = vec![0f32; frames * N_MELS];
        for f in 0..frames {
            let start = (f * HOP) as isize - pad as isize;
            for (i, b) in buf.iter_mut().enumerate() {
                *b = Complex::new(at(start + i as isize) * self.window[i], 0.0);
            }
            fft.process(&mut buf);
            for (p, c) in power.iter_mut().zip(&buf) {
                *p = c.norm_sqr();
            }
            for m in 0..N_MELS {
                let row = &self.filters[m * bins..(m + 1) * bins];
                out[f * N_MELS + m] = row.iter().zip(&power).map(|(w, p)| w * p).sum();
            }
        }
        out
    }

    /// Embed a batch of partials (`batch × PARTIAL × N_MELS`, concatenated):
    /// one unit vector of `DIMENSIONS` each.
    fn forward(&self, mels: &[f32], batch: usize) -> Vec<Vec<f32>> {
        let g = 4 * HIDDEN;
        // The sequence entering the current layer, `batch × PARTIAL × input`.
        let mut seq = mels.to_vec();
        let mut h = vec![0f32; batch * HIDDEN];
        for layer in &self.layers {
            // Input projections for every step at once: (batch·PARTIAL × input)·W_ihᵀ.
            let rows = batch * PARTIAL;
            let mut pre = vec![0f32; rows * g];
            gemm_bt(&seq, rows, layer.input, &layer.w_ih, g, &mut pre);
            let mut c = vec![0f32; batch * HIDDEN];
            h.iter_mut().for_each(|v| *v = 0.0);
            let mut next = vec![0f32; rows * HIDDEN];
            let mut rec = vec![0f32; batch * g];
            for t in 0..PARTIAL {
                gemm_bt(&h, batch, HIDDEN, &layer.w_hh, g, &mut rec);
                for b in 0..batch {
                    let p = &pre[(b * PARTIAL + t) * g..(b * PARTIAL + t + 1) * g];
                    let r = &rec[b * g..(b + 1) * g];
                    for k in 0..HIDDEN {
                        let gate = |q: usize| p[q * HIDDEN + k] + r[q * HIDDEN + k] + layer.bias[q * HIDDEN + k];
                        let i = sigmoid(gate(0));
                        let f = sigmoid(gate(1));
                        let cell = gate(2).tanh();
                        let o = sigmoid(gate(3));
                        let cv = f * c[b * HIDDEN + k] + i * cell;
                        c[b * HIDDEN + k] = cv;
                        let hv = o * cv.tanh();
                        h[b * HIDDEN + k] = hv;
                        next[(b * PARTIAL + t) * HIDDEN + k] = hv;
                    }
                }
            }
            seq = next;
        }
        // The last layer's final state through the linear layer, ReLU, unit length.
        let mut e = vec![0f32; batch * DIMENSIONS];
        gemm_bt(&h, batch, HIDDEN, &self.linear_w, DIMENSIONS, &mut e);
        e.chunks_exact(DIMENSIONS)
            .map(|row| {
                let v: Vec<f32> = row.iter().zip(&self.linear_b).map(|(x, b)| (x + b).max(0.0)).collect();
                unit(v)
            })
            .collect()
    }

    /// The voice of a stretch of 16 kHz speech: the unit-length mean of its
    /// partial embeddings (Resemblyzer's `embed_utterance`).
    pub fn embed(&self, speech: &[f32]) -> Vec<f32> {
        self.embed_many(&[speech]).pop().unwrap_or_else(|| vec![0.0; DIMENSIONS])
    }

    /// [`VoiceEncoder::embed`] for several stretches, their partials run as one batch.
    pub fn embed_many(&self, pieces: &[&[f32]]) -> Vec<Vec<f32>> {
        let mut mels = Vec::new();
        let mut owner = Vec::new();
        for (k, piece) in pieces.iter().enumerate() {
            let mut x = normalised(piece);
            let slices = partials(x.len());
            let need = slices.last().map_or(0, |&s| (s + PARTIAL) * HOP);
            if x.len() < need {
                x.resize(need, 0.0);
            }
            let m = self.mel(&x);
            for s in slices {
                mels.extend_from_slice(&m[s * N_MELS..(s + PARTIAL) * N_MELS]);
                owner.push(k);
            }
        }
        // Batches of BATCH partials keep the working set small; the batches are
        // shared among the cores (whisper is done by now: they are free).
        let batches: Vec<(&[f32], &[usize])> = mels.chunks(BATCH * PARTIAL * N_MELS).zip(owner.chunks(BATCH)).collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(batches.len()).max(1);
        let per_thread: Vec<Vec<Embedded>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let mine: Vec<(&[f32], &[usize])> = batches.iter().skip(t).step_by(threads).copied().collect();
                    scope.spawn(move || mine.into_iter().map(|(m, who)| (self.forward(m, who.len()), who)).collect())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
        });
        let mut sums = vec![vec![0f32; DIMENSIONS]; pieces.len()];
        for (embeddings, who) in per_thread.into_iter().flatten() {
            for (e, &k) in embeddings.iter().zip(who) {
                sums[k].iter_mut().zip(e).for_each(|(s, v)| *s += v);
            }
        }
        sums.into_iter().map(unit).collect()
    }
}

/// A network that describes voices for [`super::by_segmentation`]: one unit
/// vector per stretch of 16 kHz speech, close together for one person.
pub trait Embedder: Sync {
    /// One embedding per stretch, in order.
    fn embed_many(&self, pieces: &[&[f32]]) -> Vec<Vec<f32>>;
    /// The average-linkage threshold (cosine distance) that links one person's
    /// window speakers and keeps two people apart with this network.
    fn link_threshold(&self) -> f64;
    /// The network's name, for the logs.
    fn name(&self) -> &'static str;
}

impl Embedder for VoiceEncoder {
    fn embed_many(&self, pieces: &[&[f32]]) -> Vec<Vec<f32>> {
        VoiceEncoder::embed_many(self, pieces)
    }
    fn link_threshold(&self) -> f64 {
        super::LINK_THRESHOLD
    }
    fn name(&self) -> &'static str {
        "Resemblyzer"
    }
}

/// Index `i` of a signal of `n` samples reflected at both ends without repeating
/// the edge sample (numpy's `pad(mode="reflect")`, librosa's centring).
fn reflect(i: isize, n: usize) -> usize {
    if n < 2 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let j = i.rem_euclid(period);
    (if j >= n as isize { period - j } else { j }) as usize
}

/// `c = a · bᵀ`: `a` is `m × k`, `b` is `n × k`, both row-major; `c` is `m × n`.
pub(crate) fn gemm_bt(a: &[f32], m: usize, k: usize, b: &[f32], n: usize, c: &mut [f32]) {
    sgemm(a, m, k, b, (1, k), n, c);
}

/// `c = a · b`: `a` is `m × k`, `b` is `k × n`, both row-major; `c` is `m × n`.
pub(crate) fn gemm(a: &[f32], m: usize, k: usize, b: &[f32], n: usize, c: &mut [f32]) {
    sgemm(a, m, k, b, (n, 1), n, c);
}

/// `c = a · B` where `B` (`k × n`) is read from `b` with `(row, column)`
/// strides `(n, 1)` (row-major) or `(1, k)` (the transpose of a row-major `n × k`).
fn sgemm(a: &[f32], m: usize, k: usize, b: &[f32], strides: (usize, usize), n: usize, c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    assert!(strides == (n, 1) || strides == (1, k));
    // SAFETY: the asserts bound every index sgemm touches: a is m×k with row
    // stride k; B's last element lies at (k−1)·rs + (n−1)·cs = k·n − 1 for either
    // pair of strides; c is m×n with row stride n.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            strides.0 as isize,
            strides.1 as isize,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

pub(crate) fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Speech raised to −30 dBFS when quieter (Resemblyzer's `normalize_volume`,
/// increase only).
fn normalised(x: &[f32]) -> Vec<f32> {
    let rms = (x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt();
    let dbfs = 20.0 * rms.max(1e-9).log10();
    let gain = if dbfs < TARGET_DBFS { 10f64.powf((TARGET_DBFS - dbfs) / 20.0) as f32 } else { 1.0 };
    x.iter().map(|v| v * gain).collect()
}

/// The first frame of each partial for `n` samples (Resemblyzer's
/// `compute_partial_slices`): one every 1/PARTIAL_RATE s, the last dropped when
/// less than MIN_COVERAGE of it is speech, at least one.
fn partials(n: usize) -> Vec<usize> {
    let frames = (n + 1).div_ceil(HOP);
    let step = ((RATE as f64 / PARTIAL_RATE) / HOP as f64).round() as usize;
    let steps = (frames + step + 1).saturating_sub(PARTIAL).max(1);
    let mut out: Vec<usize> = (0..steps).step_by(step).collect();
    if out.len() > 1 {
        let last = *out.last().unwrap_or(&0) * HOP;
        let coverage = (n as f64 - last as f64) / (PARTIAL * HOP) as f64;
        if coverage < MIN_COVERAGE {
            out.pop();
        }
    }
    out
}

/// The encoder at `path`, loaded once per process.
pub fn shared(path: &Path) -> Result<Arc<VoiceEncoder>, String> {
    load_once(path, VoiceEncoder::load)
}

/// A model file loaded once per process and shared: later calls for the same
/// path (and type) get the same copy.
pub(crate) fn load_once<T: Send + Sync + 'static>(
    path: &Path,
    load: impl FnOnce(&Path) -> Result<T, String>,
) -> Result<Arc<T>, String> {
    type Loaded = HashMap<PathBuf, Arc<dyn std::any::Any + Send + Sync>>;
    static LOADED: OnceLock<Mutex<Loaded>> = OnceLock::new();
    let mut map = LOADED.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = map.get(path).and_then(|m| m.clone().downcast::<T>().ok()) {
        return Ok(m);
    }
    let m = Arc::new(load(path)?);
    map.insert(path.to_path_buf(), m.clone());
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partials_follow_resemblyzer() {
        // 1 s of speech: one partial (padded); 3 s: frames 0, 77, 154 (the last
        // covers (48000 − 24640) / 25600 = 0.91 of its span).
        assert_eq!(partials(16_000), vec![0]);
        assert_eq!(partials(48_000), vec![0, 77, 154]);
        // 2.4 s: the partial at 154 would cover (38400 − 24640) / 25600 = 0.54: dropped.
        assert_eq!(partials(38_400), vec![0, 77]);
    }

    #[test]
    fn gemm_multiplies_by_the_matrix_or_its_transpose() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2 × 3
        let b = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]; // 2 × 3
        let mut c = [0.0; 4];
        gemm_bt(&a, 2, 3, &b, 2, &mut c);
        assert_eq!(c, [4.0, 2.0, 10.0, 5.0]);
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0]; // 3 × 2
        gemm(&a, 2, 3, &b, 2, &mut c);
        assert_eq!(c, [4.0, 2.0, 10.0, 5.0]);
    }

    #[test]
    fn reflection_matches_numpy() {
        // numpy.pad([0, 1, 2, 3], 3, mode="reflect") == [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]
        let padded: Vec<usize> = (-3..7).map(|i| reflect(i, 4)).collect();
        assert_eq!(padded, [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
    }
}
