//! GSM 06.10 full-rate decoding (ETSI EN 300 961), the codec PBXs record calls
//! in. Two containers:
//!
//! - raw `.gsm`: 33-byte frames, each a 4-bit signature `0xD` and 260 bits of
//!   parameters packed most-significant bit first;
//! - WAV with format tag `0x0031` (Microsoft GSM 6.10, "WAV49"): 65-byte blocks of
//!   two 260-bit frames packed least-significant bit first, 320 samples a block.
//!
//! Each frame is 20 ms: 8 log-area ratios, then four 5 ms sub-frames of long-term
//! prediction lag and gain, RPE grid position, block maximum and 13 pulses. The
//! decoder follows the standard's fixed-point arithmetic step by step (RPE
//! decoding, long-term synthesis, short-term lattice synthesis with LAR
//! interpolation, de-emphasis), so its 16-bit output matches other conforming
//! decoders bit for bit. Symphonia has no GSM decoder; this module is the one.

use super::{Audio, AudioError};

/// Samples per frame (20 ms at 8 kHz).
pub const FRAME_SAMPLES: usize = 160;
/// Bytes per raw frame.
pub const RAW_FRAME_BYTES: usize = 33;
/// Bytes per WAV49 block (two frames).
pub const WAV49_BLOCK_BYTES: usize = 65;
/// The WAVE format tag of Microsoft GSM 6.10.
pub const WAVE_FORMAT_GSM610: u16 = 0x0031;

/// The parameters of one frame.
#[derive(Debug, Clone, Default, PartialEq)]
struct Frame {
    larc: [i16; 8],
    nc: [i16; 4],
    bc: [i16; 4],
    mc: [i16; 4],
    xmaxc: [i16; 4],
    xmc: [[i16; 13]; 4],
}

const LAR_BITS: [u32; 8] = [6, 6, 5, 5, 4, 4, 3, 3];

impl Frame {
    /// Read the 260 parameter bits in standard order with `bits(n)`.
    fn read(mut bits: impl FnMut(u32) -> i16) -> Frame {
        let mut f = Frame::default();
        for (i, n) in LAR_BITS.iter().enumerate() {
            f.larc[i] = bits(*n);
        }
        for j in 0..4 {
            f.nc[j] = bits(7);
            f.bc[j] = bits(2);
            f.mc[j] = bits(2);
            f.xmaxc[j] = bits(6);
            for k in 0..13 {
                f.xmc[j][k] = bits(3);
            }
        }
        f
    }
}

/// Most-significant-bit-first reader (raw `.gsm`).
struct MsbBits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl MsbBits<'_> {
    fn take(&mut self, n: u32) -> i16 {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self.data[self.pos / 8];
            v = (v << 1) | ((byte >> (7 - self.pos % 8)) & 1) as u32;
            self.pos += 1;
        }
        v as i16
    }
}

/// Least-significant-bit-first reader (WAV49).
struct LsbBits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl LsbBits<'_> {
    fn take(&mut self, n: u32) -> i16 {
        let mut v = 0u32;
        for i in 0..n {
            let byte = self.data[self.pos / 8];
            v |= (((byte >> (self.pos % 8)) & 1) as u32) << i;
            self.pos += 1;
        }
        v as i16
    }
}

// The standard's 16-bit arithmetic.
const MIN_WORD: i16 = i16::MIN;
const MAX_WORD: i16 = i16::MAX;

fn sat(x: i32) -> i16 {
    x.clamp(MIN_WORD as i32, MAX_WORD as i32) as i16
}
fn add(a: i16, b: i16) -> i16 {
    sat(a as i32 + b as i32)
}
fn sub(a: i16, b: i16) -> i16 {
    sat(a as i32 - b as i32)
}
fn mult_r(a: i16, b: i16) -> i16 {
    if a == MIN_WORD && b == MIN_WORD {
        MAX_WORD
    } else {
        ((a as i32 * b as i32 + 16384) >> 15) as i16
    }
}
fn asr(a: i16, n: i16) -> i16 {
    if n >= 16 {
        -((a < 0) as i16)
    } else if n <= -16 {
        0
    } else if n < 0 {
        ((a as i32) << -n) as i16
    } else {
        a >> n
    }
}
fn asl(a: i16, n: i16) -> i16 {
    if n >= 16 {
        0
    } else if n <= -16 {
        -((a < 0) as i16)
    } else if n < 0 {
        asr(a, -n)
    } else {
        ((a as i32) << n) as i16
    }
}

/// Decoder state carried from frame to frame.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Reconstructed short-term residual: 120 past samples, then the current 40.
    dp0: [i16; 280],
    /// Long-term lag of the previous sub-frame.
    nrp: i16,
    /// Decoded LARs of this frame and the previous one.
    larpp: [[i16; 8]; 2],
    j: usize,
    /// Lattice filter state.
    v: [i16; 9],
    /// De-emphasis memory.
    msr: i16,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder { dp0: [0; 280], nrp: 40, larpp: [[0; 8]; 2], j: 0, v: [0; 9], msr: 0 }
    }
}

const FAC: [i16; 8] = [18431, 20479, 22527, 24575, 26623, 28671, 30719, 32767];
const QLB: [i16; 4] = [3277, 11469, 21299, 32767];

impl Decoder {
    /// Decode one frame into 160 samples.
    fn frame(&mut self, f: &Frame, out: &mut [i16; FRAME_SAMPLES]) {
        let mut wt = [0i16; FRAME_SAMPLES];
        for j in 0..4 {
            let erp = rpe_decode(f.xmaxc[j], f.mc[j], &f.xmc[j]);
            self.long_term(f.nc[j], f.bc[j], &erp);
            wt[j * 40..j * 40 + 40].copy_from_slice(&self.dp0[120..160]);
        }
        self.short_term(&f.larc, &wt, out);
        // De-emphasis, truncation and upscaling.
        let mut msr = self.msr;
        for s in out.iter_mut() {
            let tmp = mult_r(msr, 28180);
            msr = add(*s, tmp);
            *s = add(msr, msr) & !7;
        }
        self.msr = msr;
    }

    fn long_term(&mut self, ncr: i16, bcr: i16, erp: &[i16; 40]) {
        let nr = if !(40..=120).contains(&ncr) { self.nrp } else { ncr };
        self.nrp = nr;
        let brp = QLB[(bcr & 3) as usize];
        for (k, &e) in erp.iter().enumerate() {
            let drpp = mult_r(brp, self.dp0[120 + k - nr as usize]);
            self.dp0[120 + k] = add(e, drpp);
        }
        self.dp0.copy_within(40..160, 0);
    }

    fn short_term(&mut self, larc: &[i16; 8], wt: &[i16; FRAME_SAMPLES], s: &mut [i16; FRAME_SAMPLES]) {
        let prev = self.larpp[self.j];
        self.j ^= 1;
        let cur = decode_lars(larc);
        self.larpp[self.j] = cur;
        let mut larp = [0i16; 8];
        // Interpolation across the frame boundary (0-12, 13-26, 27-39), then the frame's own.
        for i in 0..8 {
            larp[i] = add(asr(prev[i], 2), asr(cur[i], 2));
            larp[i] = add(larp[i], asr(prev[i], 1));
        }
        self.lattice(&lar_to_rp(larp), &wt[0..13], &mut s[0..13]);
        for i in 0..8 {
            larp[i] = add(asr(prev[i], 1), asr(cur[i], 1));
        }
        self.lattice(&lar_to_rp(larp), &wt[13..27], &mut s[13..27]);
        for i in 0..8 {
            larp[i] = add(asr(prev[i], 2), asr(cur[i], 2));
            larp[i] = add(larp[i], asr(cur[i], 1));
        }
        self.lattice(&lar_to_rp(larp), &wt[27..40], &mut s[27..40]);
        self.lattice(&lar_to_rp(cur), &wt[40..160], &mut s[40..160]);
    }

    fn lattice(&mut self, rrp: &[i16; 8], wt: &[i16], sr: &mut [i16]) {
        let v = &mut self.v;
        for (w, out) in wt.iter().zip(sr.iter_mut()) {
            let mut sri = *w;
            for i in (0..8).rev() {
                let tmp2 = mult_r(rrp[i], v[i]);
                sri = sub(sri, tmp2);
                let tmp1 = mult_r(rrp[i], sri);
                v[i + 1] = add(v[i], tmp1);
            }
            v[0] = sri;
            *out = sri;
        }
    }
}

/// RPE decoding: block maximum and pulses to the 40-sample excitation.
fn rpe_decode(xmaxc: i16, mc: i16, xmc: &[i16; 13]) -> [i16; 40] {
    // xmaxc to exponent and mantissa.
    let mut exp: i16 = 0;
    if xmaxc > 15 {
        exp = (xmaxc >> 3) - 1;
    }
    let mut mant = xmaxc - (exp << 3);
    if mant == 0 {
        exp = -4;
        mant = 7;
    } else {
        while mant <= 7 {
            mant = (mant << 1) | 1;
            exp -= 1;
        }
        mant -= 8;
    }
    // Inverse APCM quantisation.
    let temp1 = FAC[mant as usize];
    let temp2 = sub(6, exp);
    let temp3 = asl(1, sub(temp2, 1));
    let mut ep = [0i16; 40];
    for (i, &x) in xmc.iter().enumerate() {
        let mut temp = (x << 1) - 7;
        temp <<= 12;
        temp = mult_r(temp1, temp);
        temp = add(temp, temp3);
        ep[(mc & 3) as usize + 3 * i] = asr(temp, temp2);
    }
    ep
}

/// Coded log-area ratios to LARs.
fn decode_lars(larc: &[i16; 8]) -> [i16; 8] {
    const STEP: [(i16, i16, i16); 8] = [
        (0, -32, 13107),
        (0, -32, 13107),
        (2048, -16, 13107),
        (-2560, -16, 13107),
        (94, -8, 19223),
        (-1792, -8, 17476),
        (-341, -4, 31454),
        (-1144, -4, 29708),
    ];
    let mut out = [0i16; 8];
    for (i, (b, mic, inva)) in STEP.iter().enumerate() {
        let mut temp1 = ((add(larc[i], *mic) as i32) << 10) as i16;
        temp1 = sub(temp1, b << 1);
        temp1 = mult_r(*inva, temp1);
        out[i] = add(temp1, temp1);
    }
    out
}

/// LARs to reflection coefficients.
fn lar_to_rp(mut larp: [i16; 8]) -> [i16; 8] {
    for x in larp.iter_mut() {
        let f = |t: i16| -> i16 {
            if t < 11059 {
                t << 1
            } else if t < 20070 {
                t + 11059
            } else {
                add(t >> 2, 26112)
            }
        };
        *x = if *x < 0 {
            let t = if *x == MIN_WORD { MAX_WORD } else { -*x };
            -f(t)
        } else {
            f(*x)
        };
    }
    larp
}

/// Whether `data` looks like raw GSM: whole 33-byte frames, each with the `0xD`
/// signature (checked on up to the first 50 frames).
pub fn is_raw_gsm(data: &[u8]) -> bool {
    data.len() >= RAW_FRAME_BYTES
        && data.len().is_multiple_of(RAW_FRAME_BYTES)
        && data.chunks(RAW_FRAME_BYTES).take(50).all(|f| f[0] >> 4 == 0xD)
}

/// Decode raw `.gsm` bytes (8 kHz mono). A trailing partial frame is dropped;
/// a frame without the signature is a corrupt file.
pub fn decode_raw(data: &[u8], max_seconds: f64) -> Result<Audio, AudioError> {
    if data.is_empty() {
        return Err(AudioError::Empty);
    }
    let frames = data.len() / RAW_FRAME_BYTES;
    if frames == 0 {
        return Err(AudioError::NoSamples);
    }
    check_length(frames, max_seconds)?;
    let mut dec = Decoder::default();
    let mut out = Vec::with_capacity(frames * FRAME_SAMPLES);
    let mut buf = [0i16; FRAME_SAMPLES];
    for (i, chunk) in data.chunks_exact(RAW_FRAME_BYTES).enumerate() {
        if chunk[0] >> 4 != 0xD {
            return Err(AudioError::Corrupt(format!(
                "GSM frame {i} (byte {}) lacks the 0xD signature: not a raw GSM 06.10 file",
                i * RAW_FRAME_BYTES
            )));
        }
        let mut r = MsbBits { data: chunk, pos: 4 };
        let f = Frame::read(|n| r.take(n));
        dec.frame(&f, &mut buf);
        out.extend(buf.iter().map(|&s| s as f32 / 32768.0));
    }
    Ok(Audio { sample_rate: 8000, channels: vec![out] })
}

/// Decode the `data` chunk of a WAV49 file: 65-byte blocks of two frames.
pub fn decode_wav49(data: &[u8], sample_rate: u32, max_seconds: f64) -> Result<Audio, AudioError> {
    let blocks = data.len() / WAV49_BLOCK_BYTES;
    if blocks == 0 {
        return Err(AudioError::NoSamples);
    }
    check_length(blocks * 2, max_seconds * sample_rate as f64 / 8000.0)?;
    let mut dec = Decoder::default();
    let mut out = Vec::with_capacity(blocks * 2 * FRAME_SAMPLES);
    let mut buf = [0i16; FRAME_SAMPLES];
    for block in data.chunks_exact(WAV49_BLOCK_BYTES) {
        let mut r = LsbBits { data: block, pos: 0 };
        for _ in 0..2 {
            let f = Frame::read(|n| r.take(n));
            dec.frame(&f, &mut buf);
            out.extend(buf.iter().map(|&s| s as f32 / 32768.0));
        }
    }
    Ok(Audio { sample_rate, channels: vec![out] })
}

fn check_length(frames: usize, max_seconds: f64) -> Result<(), AudioError> {
    let seconds = frames as f64 * FRAME_SAMPLES as f64 / 8000.0;
    if seconds > max_seconds {
        return Err(AudioError::TooLong { seconds, max: max_seconds });
    }
    Ok(())
}

/// A WAV file's format tag, channels, sample rate and `data` chunk, when it is
/// a RIFF/WAVE file whose `fmt ` chunk is readable.
pub fn wav_format(data: &[u8]) -> Option<(u16, u16, u32, &[u8])> {
    if data.len() < 12 || &data[0..4] != b"RIFF" || &data[8..12] != b"WAVE" {
        return None;
    }
    let mut pos = 12;
    let mut fmt = None;
    while pos + 8 <= data.len() {
        let id = &data[pos..pos + 4];
        let size = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().ok()?) as usize;
        let body = pos + 8;
        let end = body.saturating_add(size).min(data.len());
        if id == b"fmt " && end - body >= 16 {
            let tag = u16::from_le_bytes([data[body], data[body + 1]]);
            let channels = u16::from_le_bytes([data[body + 2], data[body + 3]]);
            let rate = u32::from_le_bytes(data[body + 4..body + 8].try_into().ok()?);
            fmt = Some((tag, channels, rate));
        }
        if id == b"data" {
            let (tag, channels, rate) = fmt?;
            return Some((tag, channels, rate, &data[body..end]));
        }
        pos = body.saturating_add(size + (size & 1));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pack a frame MSB first behind the 0xD signature, as raw `.gsm` does.
    fn pack_raw(f: &Frame) -> Vec<u8> {
        let mut bits: Vec<(u32, i16)> = vec![(4, 0xD)];
        bits.extend(LAR_BITS.iter().zip(f.larc).map(|(n, v)| (*n, v)));
        for j in 0..4 {
            bits.extend([(7, f.nc[j]), (2, f.bc[j]), (2, f.mc[j]), (6, f.xmaxc[j])]);
            bits.extend(f.xmc[j].iter().map(|v| (3, *v)));
        }
        let mut out = vec![0u8; RAW_FRAME_BYTES];
        let mut pos = 0;
        for (n, v) in bits {
            for i in (0..n).rev() {
                if (v >> i) & 1 == 1 {
                    out[pos / 8] |= 1 << (7 - pos % 8);
                }
                pos += 1;
            }
        }
        assert_eq!(pos, 264);
        out
    }

    fn sample_frame(seed: i16) -> Frame {
        let mut f = Frame { larc: [40, 30, 20, 10, 8, 6, 4, 2], ..Default::default() };
        for j in 0..4 {
            f.nc[j] = 40 + seed + j as i16 * 10;
            f.bc[j] = (j as i16 + seed) & 3;
            f.mc[j] = j as i16 & 3;
            f.xmaxc[j] = 20 + j as i16 * 5;
            for k in 0..13 {
                f.xmc[j][k] = ((k as i16 + j as i16 + seed) * 5) & 7;
            }
        }
        f
    }

    #[test]
    fn raw_bit_order_round_trips() {
        let f = sample_frame(3);
        let bytes = pack_raw(&f);
        assert_eq!(bytes[0] >> 4, 0xD);
        let mut r = MsbBits { data: &bytes, pos: 4 };
        assert_eq!(Frame::read(|n| r.take(n)), f);
    }

    #[test]
    fn lsb_reader_reads_fields_from_the_low_bits() {
        // LSB first: the low 6 bits of byte 0, then its top 2 bits and byte 1's lowest.
        let data = [0b1110_1010u8, 0b0000_0001];
        let mut r = LsbBits { data: &data, pos: 0 };
        assert_eq!(r.take(6), 0b101010);
        assert_eq!(r.take(3), 0b111);
    }

    #[test]
    fn louder_pulses_decode_louder_and_frames_carry_state() {
        let with_max = |xmaxc: i16| {
            let mut f = sample_frame(1);
            f.xmaxc = [xmaxc; 4];
            f
        };
        let decode = |f: &Frame, n: usize| {
            let bytes: Vec<u8> = (0..n).flat_map(|_| pack_raw(f)).collect();
            decode_raw(&bytes, 60.0).unwrap().channels.remove(0)
        };
        let rms = |v: &[f32]| (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt();
        let quiet = decode(&with_max(4), 10);
        let loud = decode(&with_max(40), 10);
        assert_eq!(loud.len(), 1600);
        assert!(loud.iter().chain(&quiet).all(|x| x.is_finite() && x.abs() <= 1.0));
        assert!(rms(&loud) > 4.0 * rms(&quiet), "{} vs {}", rms(&loud), rms(&quiet));
        // The second of two identical frames decodes differently from the first:
        // the filters carry their state across frames.
        assert_ne!(loud[..160], loud[160..320]);
    }

    #[test]
    fn raw_detection_and_limits() {
        let mut bytes = pack_raw(&sample_frame(1));
        assert!(is_raw_gsm(&bytes));
        assert!(!is_raw_gsm(b"RIFF....WAVEfmt "));
        bytes[0] = 0x12;
        assert!(decode_raw(&bytes, 60.0).unwrap_err().to_string().contains("0xD"));
        let many: Vec<u8> = (0..100).flat_map(|_| pack_raw(&Frame::default())).collect();
        assert!(matches!(decode_raw(&many, 1.0), Err(AudioError::TooLong { .. })));
    }

    #[test]
    fn wav_chunks_are_found() {
        let mut w = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        w.extend(20u32.to_le_bytes());
        w.extend(0x31u16.to_le_bytes());
        w.extend(1u16.to_le_bytes());
        w.extend(8000u32.to_le_bytes());
        w.extend([0u8; 12]);
        w.extend(b"fact");
        w.extend(4u32.to_le_bytes());
        w.extend(320u32.to_le_bytes());
        w.extend(b"data");
        w.extend(65u32.to_le_bytes());
        w.extend([0u8; 65]);
        let (tag, ch, rate, data) = wav_format(&w).unwrap();
        assert_eq!((tag, ch, rate, data.len()), (0x31, 1, 8000, 65));
        assert_eq!(decode_wav49(data, rate, 60.0).unwrap().channels[0].len(), 320);
    }
}
