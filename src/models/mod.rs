//! Model files: import faster-whisper (CTranslate2) models into whisper.cpp's
//! ggml format ([`convert`]), and list what is installed.

pub mod convert;
pub mod ct2;
pub mod mel;

use std::io::Read;
use std::path::{Path, PathBuf};

pub use convert::{import_ct2, HParams, WeightType};

/// One installed ggml whisper model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InstalledModel {
    pub path: PathBuf,
    pub bytes: u64,
    pub hparams: HParams,
}

impl InstalledModel {
    /// `tiny.en`, `base`, … as whisper names its sizes.
    pub fn kind(&self) -> String {
        let size = self.hparams.size_name();
        if self.hparams.multilingual() {
            size.to_string()
        } else {
            format!("{size}.en")
        }
    }
}

/// Read the header of a ggml whisper file; `None` when it is not one.
pub fn read_ggml_header(path: &Path) -> Option<HParams> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut b = [0u8; 48];
    f.read_exact(&mut b).ok()?;
    let v: Vec<usize> = b.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    if v[0] != 0x6767_6d6c {
        return None;
    }
    Some(HParams {
        n_vocab: v[1],
        n_audio_ctx: v[2],
        n_audio_state: v[3],
        n_audio_head: v[4],
        n_audio_layer: v[5],
        n_text_ctx: v[6],
        n_text_state: v[7],
        n_text_head: v[8],
        n_text_layer: v[9],
        n_mels: v[10],
    })
}

/// Every ggml whisper model in `dir`, by name.
pub fn list(dir: &Path) -> Vec<InstalledModel> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("bin") {
            continue;
        }
        if let Some(hparams) = read_ggml_header(&path) {
            let bytes = e.metadata().map(|m| m.len()).unwrap_or(0);
            out.push(InstalledModel { path, bytes, hparams });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}
