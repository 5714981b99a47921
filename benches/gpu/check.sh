#!/usr/bin/env bash
# Builds the vendored whisper.cpp with CUDA and runs benches/gpu/whisper_check on
# one recording: GPU and CPU, one state and two, DTW, no DTW and flash attention.
#
#   benches/gpu/check.sh MODEL.bin AUDIO.s16 OUT_DIR [PRESET]
#
# AUDIO.s16 is 16 kHz mono signed 16-bit little-endian. Each run's JSON lines go to
# OUT_DIR/<name>.jsonl; compare them with benches/gpu/compare.py. Needs nvcc, CMake
# and ninja (an NVIDIA machine with the CUDA toolkit); CUDA_ARCH defaults to the
# first GPU's compute capability (90 on an H100, 87 on a Jetson Orin).
set -euo pipefail
model=$1 audio=$2 out=$3 preset=${4:-base}
here=$(cd "$(dirname "$0")" && pwd)
build=${GPU_BUILD_DIR:-/tmp/whisper-gpu-build}
arch=${CUDA_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d .)}
mkdir -p "$out"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nvcc --version | tail -n2; nproc; } | tee "$out/machine.txt"
if [ ! -x "$build/whisper_check" ]; then
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$arch" > "$out/cmake.log" 2>&1
  start=$(date +%s)
  cmake --build "$build" -j"$(nproc)" > "$out/build.log" 2>&1 || { tail -n 40 "$out/build.log"; exit 1; }
  echo "build: $(( $(date +%s) - start )) s" | tee -a "$out/machine.txt"
fi
run() { # name args…
  local name=$1; shift
  "$build/whisper_check" "$model" "$audio" --preset "$preset" "$@" > "$out/$name.jsonl" 2> "$out/$name.log" \
    || { echo "$name failed"; tail -n 20 "$out/$name.log"; return 0; }
  tail -n1 "$out/$name.jsonl"
}
run warmup                                          # CUDA and cuBLAS set-up, not timed below
run gpu-dtw
run gpu-dtw-2states --states 2
run gpu-nodtw --no-dtw
run gpu-flash --flash
run gpu-flash-2states --flash --states 2
run gpu-dtw-again
run cpu-dtw --cpu --threads "$(nproc)"
