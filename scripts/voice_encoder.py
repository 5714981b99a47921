#!/usr/bin/env python3
"""Convert Resemblyzer's speaker encoder (PyPI Resemblyzer 0.1.4,
resemblyzer/pretrained.pt: a 3-layer LSTM d-vector network, 40 mel bands in,
256 dimensions out) to a safetensors file callscribe reads
(`speakers.model`). No torch needed: the file is PyTorch's legacy
serialisation (pickles, then each storage's raw little-endian data), read with
the standard library.

    scripts/voice_encoder.py pretrained.pt voice-encoder.safetensors
"""
import collections
import json
import os
import pickle
import struct
import sys

WANTED = [
    "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0",
    "lstm.weight_ih_l1", "lstm.weight_hh_l1", "lstm.bias_ih_l1", "lstm.bias_hh_l1",
    "lstm.weight_ih_l2", "lstm.weight_hh_l2", "lstm.bias_ih_l2", "lstm.bias_hh_l2",
    "linear.weight", "linear.bias",
]


class Storage:
    def __init__(self, key, dtype):
        self.key, self.dtype, self.data = key, dtype, None


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def floats(self):
        n = 1
        for d in self.size:
            n *= d
        contiguous = []
        acc = 1
        for d in reversed(self.size):
            contiguous.insert(0, acc)
            acc *= d
        if tuple(contiguous) != self.stride and n > 1:
            raise SystemExit(f"non-contiguous tensor {self.size} {self.stride}")
        return self.storage.data[self.offset * 4:(self.offset + n) * 4]


def rebuild_tensor(storage, offset, size, stride, *rest):
    return Tensor(storage, offset, size, stride)


class Unpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return rebuild_tensor
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch" and name == "FloatStorage":
            return "float32"
        if module.startswith("torch") or module.startswith("numpy"):
            # Anything else (optimizer state, step counters) is kept as an opaque stub.
            return lambda *a, **k: None
        return super().find_class(module, name)

    def persistent_load(self, pid):
        kind, dtype, key, _location, _size = pid[:5]
        assert kind == "storage", pid
        if key not in self.storages:
            self.storages[key] = Storage(key, dtype)
        return self.storages[key]


def main(src, dst):
    with open(src, "rb") as f:
        pickle.load(f)  # magic number
        pickle.load(f)  # protocol version
        pickle.load(f)  # system info
        storages = {}
        obj = Unpickler(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            (count,) = struct.unpack("<q", f.read(8))
            st = storages[key]
            if st.dtype != "float32":
                raise SystemExit(f"storage {key}: {st.dtype}, expected float32")
            st.data = f.read(count * 4)
    state = obj["model_state"]
    write_safetensors(dst, [(name, state[name]) for name in WANTED],
                      {"source": "PyPI Resemblyzer 0.1.4 resemblyzer/pretrained.pt", "format": "pt"})


def write_safetensors(dst, tensors, metadata):
    """Write `(name, Tensor)` pairs (float32) to `dst` in the safetensors format."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors:
        raw = t.floats()
        header[name] = {"dtype": "F32", "shape": list(t.size), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = metadata
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(dst + ".part", "wb") as out:
        out.write(struct.pack("<Q", len(head)))
        out.write(head)
        for b in blobs:
            out.write(b)
    os.replace(dst + ".part", dst)
    print(f"{dst}: {len(blobs)} tensors, {offset} bytes")

if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
