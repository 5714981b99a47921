//! CTranslate2 (faster-whisper) → whisper.cpp ggml. Many fine-tuned Hindi and
//! Indic whisper models exist only for faster-whisper; this makes them usable,
//! and it is how tests and the quick start get a model from the package registries.
//!
//! What it does: reads `model.bin` ([`super::ct2`]), splits the fused attention
//! projections (self-attention `[q;k;v]`, cross-attention `[k;v]`; whisper has no
//! key bias, so those zeros are dropped), renames to whisper.cpp's tensor names,
//! computes the Slaney mel filters ([`super::mel`]), maps `vocabulary.txt` from
//! GPT-2's byte-level alphabet back to bytes, and writes whisper.cpp's ggml file
//! (the layout of whisper.cpp's `convert-pt-to-ggml.py`): matrices float16,
//! vectors, conv biases and positional embeddings float32; int8 weights are
//! dequantised first.

use std::io::{BufWriter, Write};
use std::path::Path;

use super::ct2::{f32_to_f16, Ct2Error, Ct2Model};
use super::mel;

const GGML_MAGIC: u32 = 0x6767_6d6c;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(transparent)]
    Ct2(#[from] Ct2Error),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("not a whisper model: {0}")]
    NotWhisper(String),
}

/// The model's dimensions, as whisper.cpp's header carries them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HParams {
    pub n_vocab: usize,
    pub n_audio_ctx: usize,
    pub n_audio_state: usize,
    pub n_audio_head: usize,
    pub n_audio_layer: usize,
    pub n_text_ctx: usize,
    pub n_text_state: usize,
    pub n_text_head: usize,
    pub n_text_layer: usize,
    pub n_mels: usize,
}

impl HParams {
    /// whisper's size name, from the layer counts (`tiny`, `base`, `small`, …).
    pub fn size_name(&self) -> &'static str {
        match (self.n_audio_layer, self.n_audio_state) {
            (4, 384) => "tiny",
            (6, 512) => "base",
            (12, 768) => "small",
            (24, 1024) => "medium",
            (32, 1280) => "large",
            _ => "custom",
        }
    }

    pub fn multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }
}

/// One tensor ready to write.
struct Tensor {
    name: String,
    /// PyTorch order (outermost first); written reversed, as ggml's `ne`.
    shape: Vec<usize>,
    data: Vec<f32>,
    f16: bool,
}

fn count_layers(m: &Ct2Model, prefix: &str) -> usize {
    (0..).take_while(|i| m.variables.contains_key(&format!("{prefix}/layer_{i}/ffn/linear_0/bias"))).count()
}

fn scalar(m: &Ct2Model, name: &str) -> Result<usize, ConvertError> {
    m.get(name)?
        .scalar_i64()
        .map(|v| v as usize)
        .ok_or_else(|| ConvertError::NotWhisper(format!("{name} is not a scalar")))
}

pub fn hparams(m: &Ct2Model) -> Result<HParams, ConvertError> {
    if m.spec != "WhisperSpec" {
        return Err(ConvertError::NotWhisper(format!("spec is {:?}", m.spec)));
    }
    let emb = m.get("decoder/embeddings/weight")?;
    let enc_pos = m.get("encoder/position_encodings/encodings")?;
    let dec_pos = m.get("decoder/position_encodings/encodings")?;
    let conv1 = m.get("encoder/conv1/weight")?;
    Ok(HParams {
        n_vocab: emb.shape[0],
        n_audio_ctx: enc_pos.shape[0],
        n_audio_state: enc_pos.shape[1],
        n_audio_head: scalar(m, "encoder/num_heads")?,
        n_audio_layer: count_layers(m, "encoder"),
        n_text_ctx: dec_pos.shape[0],
        n_text_state: emb.shape[1],
        n_text_head: scalar(m, "decoder/num_heads")?,
        n_text_layer: count_layers(m, "decoder"),
        n_mels: conv1.shape[1],
    })
}

/// GPT-2's printable stand-ins for bytes (`bytes_to_unicode`), inverted.
fn byte_decoder() -> std::collections::HashMap<char, u8> {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.into_iter().zip(cs).map(|(b, c)| (char::from_u32(c).unwrap(), b as u8)).collect()
}

/// The regular tokens of `vocabulary.txt` as bytes, up to the first special
/// token (whisper.cpp names the special ones itself).
pub fn vocabulary(text: &str) -> Vec<Vec<u8>> {
    let dec = byte_decoder();
    text.lines()
        .take_while(|t| !t.starts_with("<|"))
        .map(|t| {
            let mut bytes = Vec::with_capacity(t.len());
            for c in t.chars() {
                match dec.get(&c) {
                    Some(&b) => bytes.push(b),
                    None => bytes.extend_from_slice(c.to_string().as_bytes()),
                }
            }
            bytes
        })
        .collect()
}

/// Split a fused projection into `parts` equal blocks of rows.
fn split_rows(data: &[f32], parts: usize) -> Vec<Vec<f32>> {
    let per = data.len() / parts;
    (0..parts).map(|i| data[i * per..(i + 1) * per].to_vec()).collect()
}

fn tensors(m: &Ct2Model, hp: &HParams) -> Result<Vec<Tensor>, ConvertError> {
    let mut out = Vec::new();
    let mut push = |name: String, shape: Vec<usize>, data: Vec<f32>| {
        let f16 = shape.len() >= 2
            && !name.ends_with("positional_embedding")
            && name != "encoder.conv1.bias"
            && name != "encoder.conv2.bias";
        out.push(Tensor { name, shape, data, f16 });
    };
    let w = |n: &str| m.weight_f32(n);
    let shape = |n: &str| -> Result<Vec<usize>, ConvertError> { Ok(m.get(n)?.shape.clone()) };

    for conv in ["conv1", "conv2"] {
        let base = format!("encoder/{conv}");
        push(format!("encoder.{conv}.weight"), shape(&format!("{base}/weight"))?, w(&format!("{base}/weight"))?);
        let b = w(&format!("{base}/bias"))?;
        push(format!("encoder.{conv}.bias"), vec![b.len(), 1], b);
    }
    push(
        "encoder.positional_embedding".into(),
        shape("encoder/position_encodings/encodings")?,
        w("encoder/position_encodings/encodings")?,
    );
    push(
        "decoder.positional_embedding".into(),
        shape("decoder/position_encodings/encodings")?,
        w("decoder/position_encodings/encodings")?,
    );
    push("decoder.token_embedding.weight".into(), shape("decoder/embeddings/weight")?, w("decoder/embeddings/weight")?);
    for (src, dst) in [("encoder/layer_norm", "encoder.ln_post"), ("decoder/layer_norm", "decoder.ln")] {
        let g = w(&format!("{src}/gamma"))?;
        push(format!("{dst}.weight"), vec![g.len()], g);
        let b = w(&format!("{src}/beta"))?;
        push(format!("{dst}.bias"), vec![b.len()], b);
    }

    let mut layer = |side: &str, i: usize, n: usize| -> Result<(), ConvertError> {
        let src = format!("{side}/layer_{i}");
        let dst = format!("{side}.blocks.{i}");
        let ln = |push: &mut dyn FnMut(String, Vec<usize>, Vec<f32>), s: &str, d: &str| -> Result<(), ConvertError> {
            let g = w(&format!("{src}/{s}/gamma"))?;
            push(format!("{dst}.{d}.weight"), vec![g.len()], g);
            let b = w(&format!("{src}/{s}/beta"))?;
            push(format!("{dst}.{d}.bias"), vec![b.len()], b);
            Ok(())
        };
        let linear =
            |push: &mut dyn FnMut(String, Vec<usize>, Vec<f32>), s: &str, d: &str| -> Result<(), ConvertError> {
                let wt = w(&format!("{src}/{s}/weight"))?;
                push(format!("{dst}.{d}.weight"), shape(&format!("{src}/{s}/weight"))?, wt);
                let b = w(&format!("{src}/{s}/bias"))?;
                push(format!("{dst}.{d}.bias"), vec![b.len()], b);
                Ok(())
            };
        // Self-attention: fused [q; k; v].
        ln(&mut push, "self_attention/layer_norm", "attn_ln")?;
        let qkv_w = split_rows(&w(&format!("{src}/self_attention/linear_0/weight"))?, 3);
        let qkv_b = split_rows(&w(&format!("{src}/self_attention/linear_0/bias"))?, 3);
        for (k, part) in ["query", "key", "value"].iter().enumerate() {
            push(format!("{dst}.attn.{part}.weight"), vec![n, n], qkv_w[k].clone());
            if *part != "key" {
                push(format!("{dst}.attn.{part}.bias"), vec![n], qkv_b[k].clone());
            }
        }
        linear(&mut push, "self_attention/linear_1", "attn.out")?;
        if side == "decoder" {
            // Cross-attention: query, fused [k; v], out.
            ln(&mut push, "attention/layer_norm", "cross_attn_ln")?;
            linear(&mut push, "attention/linear_0", "cross_attn.query")?;
            let kv_w = split_rows(&w(&format!("{src}/attention/linear_1/weight"))?, 2);
            let kv_b = split_rows(&w(&format!("{src}/attention/linear_1/bias"))?, 2);
            push(format!("{dst}.cross_attn.key.weight"), vec![n, n], kv_w[0].clone());
            push(format!("{dst}.cross_attn.value.weight"), vec![n, n], kv_w[1].clone());
            push(format!("{dst}.cross_attn.value.bias"), vec![n], kv_b[1].clone());
            linear(&mut push, "attention/linear_2", "cross_attn.out")?;
        }
        ln(&mut push, "ffn/layer_norm", "mlp_ln")?;
        linear(&mut push, "ffn/linear_0", "mlp.0")?;
        linear(&mut push, "ffn/linear_1", "mlp.2")?;
        Ok(())
    };
    for i in 0..hp.n_audio_layer {
        layer("encoder", i, hp.n_audio_state)?;
    }
    for i in 0..hp.n_text_layer {
        layer("decoder", i, hp.n_text_state)?;
    }
    Ok(out)
}

/// Weight type of the matrices in the written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum WeightType {
    /// The default for the CPU doing the conversion ([`WeightType::for_this_cpu`]).
    Auto,
    /// float16, as the source models ship (best on GPUs).
    F16,
    /// ggml's 8-bit blocks (32 weights + one f16 scale): half the memory and
    /// faster matrix products on CPUs, within rounding of f16 in accuracy.
    #[value(alias = "q8_0")]
    Q8_0,
    /// bfloat16: the source's range at f16's size; ggml uses AVX512-BF16 dot
    /// products where the CPU has them.
    Bf16,
    /// ggml's 4-bit blocks (32 weights + one f16 scale). On AVX2 and ARM with
    /// int8 matrix products ggml repacks them at load into interleaved 8×8
    /// tiles whose matrix products are the fastest it has on those CPUs.
    #[value(alias = "q4_0")]
    Q4_0,
    /// ggml's 4-bit non-linear blocks (a 16-value table fitted to weight
    /// distributions, one f16 scale per 32): q4_0's size and repacked speed,
    /// closer to the source.
    #[value(alias = "iq4_nl")]
    Iq4Nl,
    /// ggml's 5-bit blocks: between q4 and q8 in size and accuracy; not repacked.
    #[value(alias = "q5_0")]
    Q5_0,
}

impl WeightType {
    /// bf16 where the CPU has AVX512-BF16 dot products, else q8_0. Measured on
    /// such a CPU before llamafile's tiled products were built in: bf16
    /// transcribed the bench call ~13 % faster than q8_0. With them
    /// (`benches/asr_vs_faster_whisper.py`, base, 2 threads, release, an AMD
    /// EPYC with AVX512-BF16; median of 3 rounds) the two are within 8 %
    /// either way: the 183 s call 1.07× faster-whisper's time with bf16
    /// against 1.01× with q8_0, 20 short clips 0.79× against 0.83×, all at a
    /// WER no worse than faster-whisper's. bf16 stays there: on the synthetic
    /// Hindi call of `tests/languages.rs` q8_0 gave mixed scripts and bf16
    /// Devanagari. iq4_nl is the fastest on clips (0.64×) at a cost in words
    /// elsewhere, so it is a choice, not the default.
    pub fn for_this_cpu() -> WeightType {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512bf16") {
            return WeightType::Bf16;
        }
        WeightType::Q8_0
    }

    /// `Auto` made concrete; the others as they are.
    pub fn resolve(self) -> WeightType {
        match self {
            WeightType::Auto => WeightType::for_this_cpu(),
            w => w,
        }
    }

    /// whisper.cpp's `ftype` header value.
    fn ftype(self) -> i64 {
        match self {
            WeightType::Auto => WeightType::for_this_cpu().ftype(),
            WeightType::F16 => 1,
            WeightType::Q8_0 => 7,
            WeightType::Bf16 => 24,
            WeightType::Q4_0 => 2,
            WeightType::Iq4Nl => 19,
            WeightType::Q5_0 => 8,
        }
    }

    /// ggml's tensor type id for the matrices, when ggml's own quantiser writes them.
    fn ggml_quantized(self) -> Option<whisper_rs::whisper_rs_sys::ggml_type> {
        use whisper_rs::whisper_rs_sys as sys;
        match self {
            WeightType::Q4_0 => Some(sys::ggml_type_GGML_TYPE_Q4_0),
            WeightType::Iq4Nl => Some(sys::ggml_type_GGML_TYPE_IQ4_NL),
            WeightType::Q5_0 => Some(sys::ggml_type_GGML_TYPE_Q5_0),
            _ => None,
        }
    }
}

/// One tensor as stored: its ggml type id and its bytes. Matrices take the
/// chosen weight type; conv kernels stay f16 and vectors f32, as whisper.cpp
/// allocates them.
fn encode(t: &Tensor, weights: WeightType) -> (i64, Vec<u8>) {
    let matrix = t.f16 && t.shape.len() == 2;
    let halves = |f: fn(f32) -> u16| t.data.iter().flat_map(|x| f(*x).to_le_bytes()).collect();
    let blocks = matrix && t.shape[1].is_multiple_of(32);
    let weights = weights.resolve();
    if let (true, Some(ty)) = (blocks, weights.ggml_quantized()) {
        return (ty as i64, ggml_quantize(ty, &t.data, t.shape[1]));
    }
    match weights {
        WeightType::Q8_0 if blocks => (8, quantize_q8_0(&t.data)),
        WeightType::Bf16 if matrix => (30, halves(f32_to_bf16)),
        _ if t.f16 => (1, halves(f32_to_f16)),
        _ => (0, t.data.iter().flat_map(|x| x.to_le_bytes()).collect()),
    }
}

/// Round an f32 to bfloat16 bits (nearest, ties to even).
fn f32_to_bf16(x: f32) -> u16 {
    if x.is_nan() {
        return 0x7fc0;
    }
    let b = x.to_bits();
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

/// ggml's Q8_0 blocks of one row-major matrix (rows a multiple of 32 long).
fn quantize_q8_0(data: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 32 * 34);
    for block in data.chunks(32) {
        let amax = block.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
        for x in block {
            out.push((x * id).round().clamp(-127.0, 127.0) as i8 as u8);
        }
    }
    out
}

/// One row-major matrix (rows `n_per_row` long) in ggml's blocks of type `ty`,
/// by ggml's own reference quantiser (the one whisper.cpp's `quantize` uses),
/// so that the bytes are exactly what ggml's kernels expect.
fn ggml_quantize(ty: whisper_rs::whisper_rs_sys::ggml_type, data: &[f32], n_per_row: usize) -> Vec<u8> {
    use whisper_rs::whisper_rs_sys as sys;
    let rows = data.len() / n_per_row;
    // SAFETY: ggml_row_size and ggml_quantize_chunk read `rows * n_per_row`
    // floats from `data` and write at most `rows * row_size` bytes into `out`,
    // which is that long; the types named here need no importance matrix.
    unsafe {
        let row = sys::ggml_row_size(ty, n_per_row as i64);
        let mut out = vec![0u8; row * rows];
        sys::ggml_quantize_init(ty);
        let written = sys::ggml_quantize_chunk(
            ty,
            data.as_ptr(),
            out.as_mut_ptr().cast(),
            0,
            rows as i64,
            n_per_row as i64,
            std::ptr::null(),
        );
        out.truncate(written);
        out
    }
}

/// Summary of a conversion.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Converted {
    pub hparams: HParams,
    pub tensors: usize,
    pub vocabulary: usize,
    pub bytes: u64,
    pub weights: WeightType,
}

/// Convert the faster-whisper model folder `dir` (model.bin, vocabulary.txt) to
/// the ggml file `out`.
pub fn import_ct2(dir: &Path, out: &Path, weights: WeightType) -> Result<Converted, ConvertError> {
    let weights = weights.resolve();
    let bin = dir.join("model.bin");
    let file = std::fs::File::open(&bin).map_err(|e| ConvertError::Io(bin.display().to_string(), e))?;
    let model = Ct2Model::read(&mut std::io::BufReader::new(file))?;
    let hp = hparams(&model)?;
    let vocab_path = dir.join("vocabulary.txt");
    let vocab_text =
        std::fs::read_to_string(&vocab_path).map_err(|e| ConvertError::Io(vocab_path.display().to_string(), e))?;
    let vocab = vocabulary(&vocab_text);
    let tensors = tensors(&model, &hp)?;
    drop(model);

    let tmp = out.with_extension("bin.part");
    let io = |e| ConvertError::Io(tmp.display().to_string(), e);
    let f = std::fs::File::create(&tmp).map_err(io)?;
    let mut wr = BufWriter::with_capacity(1 << 20, f);
    let put_i32 = |wr: &mut BufWriter<std::fs::File>, v: i64| wr.write_all(&(v as i32).to_le_bytes());
    put_i32(&mut wr, GGML_MAGIC as i64).map_err(io)?;
    for v in [
        hp.n_vocab,
        hp.n_audio_ctx,
        hp.n_audio_state,
        hp.n_audio_head,
        hp.n_audio_layer,
        hp.n_text_ctx,
        hp.n_text_state,
        hp.n_text_head,
        hp.n_text_layer,
        hp.n_mels,
        weights.ftype() as usize,
    ] {
        put_i32(&mut wr, v as i64).map_err(io)?;
    }
    let filters = mel::filters(16000, 400, hp.n_mels);
    put_i32(&mut wr, hp.n_mels as i64).map_err(io)?;
    put_i32(&mut wr, 201).map_err(io)?;
    for x in &filters {
        wr.write_all(&x.to_le_bytes()).map_err(io)?;
    }
    put_i32(&mut wr, vocab.len() as i64).map_err(io)?;
    for t in &vocab {
        put_i32(&mut wr, t.len() as i64).map_err(io)?;
        wr.write_all(t).map_err(io)?;
    }
    for t in &tensors {
        let name = t.name.as_bytes();
        put_i32(&mut wr, t.shape.len() as i64).map_err(io)?;
        put_i32(&mut wr, name.len() as i64).map_err(io)?;
        let (ttype, bytes) = encode(t, weights);
        put_i32(&mut wr, ttype).map_err(io)?;
        for d in t.shape.iter().rev() {
            put_i32(&mut wr, *d as i64).map_err(io)?;
        }
        wr.write_all(name).map_err(io)?;
        wr.write_all(&bytes).map_err(io)?;
    }
    wr.flush().map_err(io)?;
    drop(wr);
    std::fs::rename(&tmp, out).map_err(|e| ConvertError::Io(out.display().to_string(), e))?;
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(Converted { hparams: hp, tensors: tensors.len(), vocabulary: vocab.len(), bytes, weights })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounds_to_nearest_even() {
        let back = |h: u16| f32::from_bits((h as u32) << 16);
        assert_eq!(f32_to_bf16(1.0), 0x3f80);
        assert_eq!(f32_to_bf16(-2.5), 0xc020);
        // 1 + 2^-8 lies halfway between 1 and the next bfloat16: ties go to even (1.0).
        assert_eq!(f32_to_bf16(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(f32_to_bf16(1.0 + 3.0 / 256.0), 0x3f82);
        for x in [0.1f32, -3.7, 1e-20, 6.5e4, 123.456] {
            assert!((back(f32_to_bf16(x)) - x).abs() <= x.abs() / 256.0, "{x}");
        }
        assert!(back(f32_to_bf16(f32::NAN)).is_nan());
    }

    #[test]
    fn q8_0_blocks_round_trip_within_a_step() {
        let x: Vec<f32> = (0..64).map(|i| ((i as f32) * 0.37).sin() * 3.0).collect();
        let q = quantize_q8_0(&x);
        assert_eq!(q.len(), 2 * 34);
        for (b, block) in x.chunks(32).enumerate() {
            let raw = &q[b * 34..(b + 1) * 34];
            let d = crate::models::ct2::f16_to_f32(u16::from_le_bytes([raw[0], raw[1]]));
            for (k, v) in block.iter().enumerate() {
                let back = raw[2 + k] as i8 as f32 * d;
                assert!((back - v).abs() <= d * 0.51 + 1e-3, "{v} vs {back}");
            }
        }
    }

    #[test]
    fn four_and_five_bit_blocks_come_back_through_ggml_within_their_step() {
        use whisper_rs::whisper_rs_sys as sys;
        let (rows, cols) = (8, 512);
        let x: Vec<f32> = (0..rows * cols).map(|i| ((i as f32) * 0.173).sin() * (1.0 + (i % 7) as f32)).collect();
        for (w, levels) in [(WeightType::Q4_0, 16.0f32), (WeightType::Iq4Nl, 16.0), (WeightType::Q5_0, 32.0)] {
            let ty = w.ggml_quantized().unwrap();
            let q = ggml_quantize(ty, &x, cols);
            // SAFETY: the traits are ggml's static table; to_float reads one
            // row of `q` and writes `cols` floats.
            let back: Vec<f32> = unsafe {
                let traits = &*sys::ggml_get_type_traits(ty);
                assert_eq!(q.len(), rows * cols / traits.blck_size as usize * traits.type_size, "{w:?}");
                let to_float = traits.to_float.unwrap();
                let mut out = vec![0f32; rows * cols];
                to_float(q.as_ptr().cast(), out.as_mut_ptr(), (rows * cols) as i64);
                out
            };
            for (block, (a, b)) in x.chunks(32).zip(back.chunks(32)).enumerate() {
                let amax = a.iter().fold(0f32, |m, v| m.max(v.abs()));
                // One quantisation step is at most 2·amax/(levels−1); allow
                // that (iq4_nl's table is uneven, so its widest gap is wider).
                let step = 2.0 * amax / (levels - 1.0) * if w == WeightType::Iq4Nl { 1.6 } else { 1.0 };
                for (u, v) in a.iter().zip(b) {
                    assert!((u - v).abs() <= step + 1e-3, "{w:?} block {block}: {u} vs {v}");
                }
            }
            assert_ne!(back, x, "{w:?} should round");
        }
    }

    #[test]
    fn byte_level_tokens_map_back_to_bytes() {
        let v = vocabulary("!\nĠthe\nĊ\nà¤ķ\n<|endoftext|>\n<|startoftranscript|>\n");
        assert_eq!(v, vec![b"!".to_vec(), b" the".to_vec(), b"\n".to_vec(), "क".as_bytes().to_vec()]);
    }
}
