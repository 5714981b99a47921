//! Reader for CTranslate2's `model.bin` (format version 6, as written by
//! ctranslate2's `specs/model_spec.py`): a header, then named variables with
//! their shape, data type and bytes, then aliases.
//!
//! ```text
//! u32 version (6) · str spec name · u32 spec revision · u32 n_variables
//! n × { str name · u8 rank · rank × u32 dim · u8 dtype · u32 n_bytes · bytes }
//! u32 n_aliases · n × { str alias · str target }
//! str = u16 length (including a trailing NUL) · bytes · NUL
//! ```

use std::collections::BTreeMap;
use std::io::Read;

#[derive(Debug, thiserror::Error)]
pub enum Ct2Error {
    #[error("reading the model: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a CTranslate2 model: {0}")]
    Format(String),
}

/// CTranslate2's data types (its `DataType` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    fn from_id(id: u8) -> Result<DType, Ct2Error> {
        Ok(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            other => return Err(Ct2Error::Format(format!("unknown data type id {other}"))),
        })
    }

    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Variable {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: Vec<u8>,
}

impl Variable {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f32 (float types converted exactly; integers as numbers).
    pub fn to_f32(&self) -> Vec<f32> {
        let d = &self.data;
        match self.dtype {
            DType::F32 => d.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            DType::F16 => d.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
            DType::BF16 => {
                d.chunks_exact(2).map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)).collect()
            }
            DType::I8 => d.iter().map(|&b| b as i8 as f32).collect(),
            DType::I16 => d.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f32).collect(),
            DType::I32 => d.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32).collect(),
        }
    }

    /// A scalar integer (e.g. `encoder/num_heads`).
    pub fn scalar_i64(&self) -> Option<i64> {
        if self.len() != 1 {
            return None;
        }
        Some(self.to_f32()[0] as i64)
    }
}

/// IEEE half to single precision.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((f & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// Single to half precision, rounding to nearest even.
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let mut frac = bits & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if frac != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        frac |= 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rem = frac & ((1 << shift) - 1);
        let mut m = frac >> shift;
        if rem > half || (rem == half && m & 1 == 1) {
            m += 1;
        }
        return sign | m as u16;
    }
    let rem = frac & 0x1fff;
    let mut out = ((e as u32) << 10) | (frac >> 13);
    if rem > 0x1000 || (rem == 0x1000 && out & 1 == 1) {
        out += 1;
    }
    sign | out as u16
}

/// A parsed model: its spec name and every variable by name (aliases resolved).
#[derive(Debug)]
pub struct Ct2Model {
    pub spec: String,
    pub revision: u32,
    pub variables: BTreeMap<String, Variable>,
}

fn read_u8(r: &mut impl Read) -> Result<u8, Ct2Error> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}
fn read_u16(r: &mut impl Read) -> Result<u16, Ct2Error> {
    let mut b = [0u8; 2];
    r.read_exact(&mut b)?;
    Ok(u16::from_le_bytes(b))
}
fn read_u32(r: &mut impl Read) -> Result<u32, Ct2Error> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}
fn read_str(r: &mut impl Read) -> Result<String, Ct2Error> {
    let n = read_u16(r)? as usize;
    let mut b = vec![0u8; n];
    r.read_exact(&mut b)?;
    if b.last() == Some(&0) {
        b.pop();
    }
    String::from_utf8(b).map_err(|_| Ct2Error::Format("a name is not UTF-8".into()))
}

impl Ct2Model {
    pub fn read(r: &mut impl Read) -> Result<Ct2Model, Ct2Error> {
        let version = read_u32(r)?;
        if version != 6 {
            return Err(Ct2Error::Format(format!("format version {version}, this reader knows version 6")));
        }
        let spec = read_str(r)?;
        let revision = read_u32(r)?;
        let n = read_u32(r)?;
        let mut variables = BTreeMap::new();
        for _ in 0..n {
            let name = read_str(r)?;
            let rank = read_u8(r)? as usize;
            let shape = (0..rank).map(|_| read_u32(r).map(|d| d as usize)).collect::<Result<Vec<_>, _>>()?;
            let dtype = DType::from_id(read_u8(r)?)?;
            let n_bytes = read_u32(r)? as usize;
            let expect = shape.iter().product::<usize>() * dtype.size();
            if n_bytes != expect {
                return Err(Ct2Error::Format(format!("{name}: {n_bytes} bytes for shape {shape:?} of {dtype:?}")));
            }
            let mut data = vec![0u8; n_bytes];
            r.read_exact(&mut data)?;
            variables.insert(name, Variable { shape, dtype, data });
        }
        // Aliases (e.g. the output projection tied to the embeddings); absent in old files.
        if let Ok(n_alias) = read_u32(r) {
            for _ in 0..n_alias {
                let alias = read_str(r)?;
                let target = read_str(r)?;
                if let Some(v) = variables.get(&target).cloned() {
                    variables.insert(alias, v);
                }
            }
        }
        Ok(Ct2Model { spec, revision, variables })
    }

    pub fn get(&self, name: &str) -> Result<&Variable, Ct2Error> {
        self.variables.get(name).ok_or_else(|| Ct2Error::Format(format!("missing variable {name}")))
    }

    /// A weight as f32, dequantised when stored as int8 with a `…_scale` beside it.
    pub fn weight_f32(&self, name: &str) -> Result<Vec<f32>, Ct2Error> {
        let v = self.get(name)?;
        let mut values = v.to_f32();
        if v.dtype == DType::I8 || v.dtype == DType::I16 {
            let scale = self.get(&format!("{name}_scale"))?.to_f32();
            let rows = v.shape[0];
            let cols = v.len() / rows.max(1);
            if scale.len() == rows {
                for (r, s) in scale.iter().enumerate() {
                    for x in &mut values[r * cols..(r + 1) * cols] {
                        *x /= s;
                    }
                }
            } else if scale.len() == 1 {
                values.iter_mut().for_each(|x| *x /= scale[0]);
            } else {
                return Err(Ct2Error::Format(format!("{name}_scale has {} values for {rows} rows", scale.len())));
            }
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_round_trips() {
        for x in [0.0f32, -0.0, 1.0, -2.5, 65504.0, 6.1035156e-5, 5.9604645e-8, 0.1, 3.25] {
            let h = f32_to_f16(x);
            let back = f16_to_f32(h);
            assert!((back - x).abs() <= x.abs() * 1e-3 + 6e-8, "{x} -> {h:#x} -> {back}");
            assert_eq!(f32_to_f16(back), h);
        }
        assert!(f16_to_f32(f32_to_f16(1e6)).is_infinite());
    }

    #[test]
    fn reads_a_hand_made_model() {
        let mut b = Vec::new();
        let s = |b: &mut Vec<u8>, t: &str| {
            b.extend_from_slice(&((t.len() + 1) as u16).to_le_bytes());
            b.extend_from_slice(t.as_bytes());
            b.push(0);
        };
        b.extend_from_slice(&6u32.to_le_bytes());
        s(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        s(&mut b, "w");
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        b.push(1); // int8
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&[10u8, 20, 246, 40]);
        s(&mut b, "w_scale");
        b.push(1);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.push(0); // f32
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&10f32.to_le_bytes());
        b.extend_from_slice(&20f32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        s(&mut b, "alias");
        s(&mut b, "w");
        let m = Ct2Model::read(&mut b.as_slice()).unwrap();
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.weight_f32("w").unwrap(), vec![1.0, 2.0, -0.5, 2.0]);
        assert_eq!(m.get("alias").unwrap().shape, vec![2, 2]);
    }
}
