#!/usr/bin/env python3
"""Times `callscribe transcribe` on a stereo call of real speech, one or more builds
in interleaved rounds (same machine, same minutes).

    python3 benches/stereo_call.py --bin BUILD [--bin OTHER_BUILD …] [--minutes 3] [--repeat 3]

The call is asr_vs_faster_whisper.py's real call (Debian's asterisk prompts, 0.4–1.3 s
pauses) with its prompts dealt to two channels in turn, silence on the other, as a
PBX records the two legs: 8 kHz µ-law, stereo. Prints each build's median wall time
and the WER of each channel against the prompts it holds."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import asr_vs_faster_whisper as b  # noqa: E402
import real_speech  # noqa: E402


def make_stereo_call(path, minutes, tmp):
    legs, texts, total = [[], []], [[], []], 0.0
    for i, (_, text, wav) in enumerate(b.shuffled_prompts() * 4):
        x, rate = real_speech.read(wav)
        pause = np.zeros(int(rate * (0.4 + 0.3 * (i % 4))), dtype=np.float32)
        talk, quiet = i % 2, 1 - i % 2
        legs[talk] += [x, pause]
        legs[quiet] += [np.zeros_like(x), pause]
        texts[talk].append(text)
        total += (len(x) + len(pause)) / rate
        if total >= minutes * 60:
            break
    pcm = np.stack([b.pcm16(np.concatenate(leg)) for leg in legs], axis=1)
    raw = os.path.join(tmp, "raw.wav")
    with wave.open(raw, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", raw, "-ar", "8000",
                    "-acodec", "pcm_mulaw", path], check=True)
    return total, [" ".join(t) for t in texts]


def run(binary, model, wav, threads):
    t = time.perf_counter()
    out = subprocess.run([binary, "--log-level", "warn", "transcribe", "--format", "json", "--model", model,
                          "--language", "en", wav], check=True, capture_output=True, text=True,
                         env={**os.environ, "CALLSCRIBE_ASR__THREADS": str(threads)})
    wall = time.perf_counter() - t
    j = json.loads(out.stdout)
    legs = ["", ""]
    for s in j["segments"]:
        leg = s["channel"] if "channel" in s else int(s.get("speaker") != "agent")
        legs[leg] += " " + s["text"]
    return {"wall": wall, "legs": legs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", required=True)
    ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", default="q8_0")
    ap.add_argument("--ct2", required=True, help="the faster-whisper (CTranslate2) base folder to convert")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "stereo.wav")
        seconds, refs = make_stereo_call(wav, a.minutes, tmp)
        model = os.path.join(tmp, "ggml-base.bin")
        subprocess.run([a.bin[0], "models", "import-ct2", "--weights", a.weights, a.ct2, model], check=True,
                       capture_output=True)
        rows = b.interleaved([(binary, lambda x=binary: run(x, model, wav, a.threads)) for binary in a.bin], a.repeat)
    print(f"\nStereo call of real speech: {seconds:.0f} s, prompts dealt to two channels in turn, 8 kHz µ-law, "
          f"base {a.weights}, {a.threads} threads, median of {a.repeat} interleaved rounds\n")
    print("| build | wall s | WER channel 1 | WER channel 2 |")
    print("|---|---:|---:|---:|")
    for name, r in rows:
        w = [b.wer(ref, hyp, "asterisk") for ref, hyp in zip(refs, r["legs"])]
        print(f"| {name} | {r['wall']:.1f} | {w[0]:.3f} | {w[1]:.3f} |")


if __name__ == "__main__":
    main()
