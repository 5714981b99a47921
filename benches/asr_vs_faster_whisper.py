#!/usr/bin/env python3
"""Transcription bench (not a test): callscribe (whisper.cpp) against
faster-whisper (CTranslate2, int8) on the same audio, the same weights and the
same thread count, in one run. Prints wall time, real-time factor, peak memory
and word error rate per engine, and the ratios.

    python3 -m venv /tmp/fw && /tmp/fw/bin/pip install faster-whisper
    cargo build --release && scripts/fetch-models.sh
    /tmp/fw/bin/python benches/asr_vs_faster_whisper.py [--threads 2] [--minutes 3]

The audio is a two-speaker call spoken by espeak-ng (16 kHz mono, pauses
between turns, ~20 % silence), long enough to span many 30 s windows. Both
engines: language fixed to English, greedy decoding (beam 1), word timestamps
on. faster-whisper runs the CTranslate2 base model that scripts/fetch-models.sh
downloads ($CALLSCRIBE_MODEL_CACHE/base), as it comes and with its own Silero VAD
(`vad_filter=True`); callscribe (which always skips silence with its own voice
activity pass) runs the ggml file converted from those same weights (one row per
type in `--weights`, each converted here; and the first of them with
`asr.fit_audio_ctx` changed, unless `--no-fit-rows`). The ratio column is against faster-whisper's default (no VAD).
callscribe runs with `--speakers 1`: transcription only, as faster-whisper has no
diarization (the voice encoder's cost is in benches/diarization.rs).

`--speech asterisk` uses real recorded telephone speech instead of espeak-ng
(benches/real_speech.py: Debian's asterisk-core-sounds-en prompts, one woman's
voice, 8 kHz, with their transcripts; scripts/fetch-models.sh fetches them): the
long call is prompts in a fixed shuffled order joined with the same pauses, the
clips are single prompts of three words or more; both stored as 8 kHz µ-law.
Numbers are spelt out on both sides before the WER is taken.

`--clips N` measures short recordings instead: N clips of one or two lines
(3–10 s, both voices, 8 kHz µ-law as a PBX stores them), each engine
transcribing all of them in one process (faster-whisper: one model, a loop;
callscribe: one `transcribe` run over every file), the model load included.
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np

import real_speech

LINES = [
    (0, "Good morning, this is Priya from Apex Finance calling about your loan account."),
    (1, "Yes, speaking. What is this about?"),
    (0, "Your instalment of five thousand rupees was due last week and has not been received."),
    (1, "I know. My salary came late this month."),
    (0, "I understand. When can you make the payment?"),
    (1, "I can pay on Friday, the twenty third."),
    (0, "Thank you. I will note a promise to pay on Friday."),
    (1, "Will there be a late fee?"),
    (0, "A small fee of two hundred rupees applies. You can pay through the app or at the branch."),
    (1, "Alright, thank you. Please send me the details by message."),
    (0, "I will send the payment link to your registered mobile number today."),
    (1, "Okay, I will check it in the evening."),
]
VOICES = ["en-us+m1", "en-us+f2"]


def speak(voice, text, tmp):
    raw = os.path.join(tmp, "raw.wav")
    out = os.path.join(tmp, "16k.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "160", "-w", raw, text], check=True)
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", raw, "-ar", "16000", out], check=True)
    with wave.open(out) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def make_call(path, minutes, tmp):
    pieces, words = [], []
    total = 0
    i = 0
    while total < minutes * 60 * 16000:
        who, line = LINES[i % len(LINES)]
        s = speak(VOICES[who], line, tmp)
        pieces.append(s)
        words.append(line)
        pause = np.zeros(int(16000 * (0.4 + 0.3 * (i % 4))), dtype=np.int16)
        pieces.append(pause)
        total += len(s) + len(pause)
        i += 1
    audio = np.concatenate(pieces)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(audio.tobytes())
    return len(audio) / 16000, " ".join(words)


def make_clips(tmp, n):
    """n short clips of one or two lines, 8 kHz µ-law WAV; their reference texts and length."""
    paths, refs, seconds = [], [], 0.0
    for i in range(n):
        who, line = LINES[i % len(LINES)]
        parts = [speak(VOICES[who], line, tmp)]
        text = [line]
        if i % 3 == 2:
            who2, line2 = LINES[(i + 5) % len(LINES)]
            parts += [np.zeros(6400, dtype=np.int16), speak(VOICES[who2], line2, tmp)]
            text.append(line2)
        seconds += sum(len(p) for p in parts) / 16000
        out = os.path.join(tmp, f"clip{i:03d}.wav")
        to_mulaw(np.concatenate(parts), 16000, out, tmp)
        paths.append(out)
        refs.append(" ".join(text))
    return paths, refs, seconds


def pcm16(samples):
    return (np.clip(samples, -1, 1) * 32767).astype(np.int16)


def to_mulaw(samples, rate, out, tmp):
    """Stores 16-bit samples as an 8 kHz µ-law WAV, as a PBX does."""
    raw = os.path.join(tmp, "raw.wav")
    with wave.open(raw, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype(np.int16).tobytes())
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", raw, "-ar", "8000",
                    "-acodec", "pcm_mulaw", out], check=True)
    os.remove(raw)


def shuffled_prompts(min_words=1):
    import random
    ps = [p for p in real_speech.prompts() if len(real_speech.words(p[1])) >= min_words]
    random.Random(7).shuffle(ps)
    return ps


def make_real_call(path, minutes, tmp):
    """Real prompts joined with 0.4–1.3 s pauses up to `minutes`, 8 kHz µ-law."""
    pieces, texts, total = [], [], 0
    for i, (_, text, wav) in enumerate(shuffled_prompts() * 4):
        x, rate = real_speech.read(wav)
        pause = np.zeros(int(rate * (0.4 + 0.3 * (i % 4))), dtype=np.float32)
        pieces += [x, pause]
        texts.append(text)
        total += (len(x) + len(pause)) / rate
        if total >= minutes * 60:
            break
    to_mulaw(pcm16(np.concatenate(pieces)), rate, path, tmp)
    return total, " ".join(texts)


def make_real_clips(tmp, n):
    """n real prompts of three words or more, each its own 8 kHz µ-law clip."""
    paths, refs, seconds = [], [], 0.0
    for i, (_, text, wav) in enumerate(shuffled_prompts(3)[:n]):
        x, rate = real_speech.read(wav)
        out = os.path.join(tmp, f"clip{i:03d}.wav")
        to_mulaw(pcm16(x), rate, out, tmp)
        paths.append(out)
        refs.append(text)
        seconds += len(x) / rate
    return paths, refs, seconds


FW_CLIPS = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="int8", cpu_threads=int(sys.argv[2]), num_workers=1)
texts = []
for path in sys.argv[3:]:
    segments, info = model.transcribe(path, language="en", beam_size=1, word_timestamps=True)
    texts.append(" ".join(s.text.strip() for s in segments))
print(json.dumps({"texts": texts, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def clips_faster_whisper(ct2_dir, paths, threads):
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", FW_CLIPS, ct2_dir, str(threads)] + paths, check=True,
                         capture_output=True, text=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["wall"] = time.perf_counter() - t
    return r


def fit_env(fit):
    """`None`: callscribe's default (windows up to asr.fit_max_seconds fitted);
    True: every window fitted; False: every window at 30 s."""
    if fit is None:
        return {}
    return {"CALLSCRIBE_ASR__FIT_AUDIO_CTX": "true" if fit else "false", "CALLSCRIBE_ASR__FIT_MAX_SECONDS": "30"}


def clips_callscribe(binary, model, paths, threads, outdir, fit=None):
    os.makedirs(outdir, exist_ok=True)
    t = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%M", binary, "--log-level", "warn", "transcribe", "--format", "json",
                          "--out", outdir, "--model", model, "--language", "en", "--speakers", "1"] + paths,
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "CALLSCRIBE_ASR__THREADS": str(threads), **fit_env(fit)})
    wall = time.perf_counter() - t
    texts, retries = [], 0
    for p in paths:
        with open(os.path.join(outdir, os.path.splitext(os.path.basename(p))[0] + ".json")) as f:
            j = json.load(f)
            texts.append(j["text"])
            retries += j.get("full_context_retries", 0)
    return {"wall": wall, "texts": texts, "rss_mb": int(out.stderr.strip().splitlines()[-1]) / 1024,
            "retries": retries}


def convert(a, tmp):
    """The ggml files of the weight types asked for (`--weights`), converted from the
    same CTranslate2 folder faster-whisper reads."""
    models = {}
    for w in a.weights.split(","):
        models[w] = os.path.join(tmp, f"ggml-base-{w}.bin")
        subprocess.run([a.bin, "models", "import-ct2", "--weights", w, a.ct2, models[w]], check=True,
                       capture_output=True)
    return models


def interleaved(engines, repeat):
    """Interleaved rounds, the median wall time per engine: the machine is shared and
    its speed drifts between minutes, so every engine sees every period."""
    runs = {name: [] for name, _ in engines}
    for _ in range(repeat):
        for name, run in engines:
            runs[name].append(run())
    return [(name, sorted(rs, key=lambda r: r["wall"])[len(rs) // 2]) for name, rs in runs.items()]


def clips_main(a):
    with tempfile.TemporaryDirectory() as tmp:
        paths, refs, seconds = (make_real_clips if a.speech == "asterisk" else make_clips)(tmp, a.clips)
        models = convert(a, tmp)
        first = next(iter(models))
        engines = [("faster-whisper int8", lambda: clips_faster_whisper(a.ct2, paths, a.threads))] + [
            (f"callscribe {w} (default: windows up to 10 s fitted)",
             lambda p=path, w=w: clips_callscribe(a.bin, p, paths, a.threads, os.path.join(tmp, "o-" + w)))
            for w, path in models.items()]
        if a.fit_rows:
            engines.append((f"callscribe {first}, 30 s encoder window (fit_audio_ctx = false)",
                            lambda: clips_callscribe(a.bin, models[first], paths, a.threads, os.path.join(tmp, "o-30"),
                                                     fit=False)))
        if a.compare_bin:
            engines.append((f"callscribe {first}, other build",
                            lambda: clips_callscribe(a.compare_bin, models[first], paths, a.threads,
                                                     os.path.join(tmp, "o-other"))))
        rows = interleaved(engines, a.repeat)
    fw = rows[0][1]
    print(f"\nASR bench, short clips ({a.speech}): {len(paths)} clips, {seconds:.0f} s in all "
          f"({seconds / len(paths):.1f} s each), 8 kHz µ-law, base model, {a.threads} threads, greedy, English, word timestamps, one process per engine "
          f"(model load included), median of {a.repeat} interleaved rounds\n")
    print("| engine | wall s | ratio to faster-whisper | peak RSS MB | WER | windows redone at 30 s |")
    print("|---|---:|---:|---:|---:|---:|")
    reference = " ".join(refs)
    for name, r in rows:
        print(f"| {name} | {r['wall']:.1f} | {r['wall'] / fw['wall']:.2f} | {r['rss_mb']:.0f} | "
              f"{wer(reference, ' '.join(r['texts']), a.speech):.3f} | {r.get('retries', '—')} |")


def tokens(text):
    return [t for t in (re.sub(r"[^\w]", "", w.lower()) for w in text.split()) if t]


def wer(ref, hyp, speech="espeak"):
    split = real_speech.words if speech == "asterisk" else tokens
    r, h = split(ref), split(hyp)
    prev = list(range(len(h) + 1))
    for i, rw in enumerate(r):
        cur = [i + 1] + [0] * len(h)
        for j, hw in enumerate(h):
            cur[j + 1] = min(prev[j] + (rw != hw), prev[j + 1] + 1, cur[j] + 1)
        prev = cur
    return prev[len(h)] / max(len(r), 1)


FW_CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="int8", cpu_threads=int(sys.argv[3]), num_workers=1)
t1 = time.perf_counter()
segments, info = model.transcribe(sys.argv[2], language="en", beam_size=1, word_timestamps=True,
                                  vad_filter=sys.argv[4] == "vad", condition_on_previous_text=True)
text = " ".join(s.text.strip() for s in segments)
t2 = time.perf_counter()
print(json.dumps({"load": t1 - t0, "transcribe": t2 - t1, "text": text,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_faster_whisper(ct2_dir, wav, threads, vad=False):
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", FW_CHILD, ct2_dir, wav, str(threads), "vad" if vad else "-"], check=True,
                         capture_output=True, text=True)
    wall = time.perf_counter() - t
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["wall"] = wall
    return r


def run_callscribe(binary, model, wav, threads, fit=None):
    t = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%M", binary, "--log-level", "warn", "transcribe", "--format", "json",
                          "--model", model, "--language", "en", "--speakers", "1", wav],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "CALLSCRIBE_ASR__THREADS": str(threads), **fit_env(fit)})
    wall = time.perf_counter() - t
    j = json.loads(out.stdout)
    rss_kb = int(out.stderr.strip().splitlines()[-1])
    return {"wall": wall, "transcribe": j["processing_seconds"], "text": j["text"], "rss_mb": rss_kb / 1024}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds; the median is shown")
    ap.add_argument("--speech", choices=["espeak", "asterisk"], default="espeak",
                    help="synthetic espeak-ng speech, or real recorded prompts (benches/real_speech.py)")
    ap.add_argument("--clips", type=int, default=0, help="measure N short clips instead of one long call")
    ap.add_argument("--weights", default="q4_0,iq4_nl,q8_0,bf16",
                    help="comma-separated weight types to convert and time (the first also gets the fit rows)")
    ap.add_argument("--no-fit-rows", dest="fit_rows", action="store_false",
                    help="skip the rows that change asr.fit_audio_ctx")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target")),
                                                  "release", "callscribe"))
    ap.add_argument("--compare-bin", help="another callscribe build (say, before a change) timed in the same "
                                           "rounds: one more row per weight type, marked \"other build\"")
    cache = os.environ.get("CALLSCRIBE_MODEL_CACHE", os.path.expanduser("~/.cache/callscribe-models"))
    ap.add_argument("--ct2", default=os.path.join(cache, "base"))
    a = ap.parse_args()
    if a.clips:
        return clips_main(a)

    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "call.wav")
        seconds, reference = (make_real_call if a.speech == "asterisk" else make_call)(wav, a.minutes, tmp)
        models = convert(a, tmp)
        first = next(iter(models))
        engines = [
            ("faster-whisper int8", lambda: run_faster_whisper(a.ct2, wav, a.threads)),
            ("faster-whisper int8, vad_filter", lambda: run_faster_whisper(a.ct2, wav, a.threads, vad=True)),
        ] + [(f"callscribe {w}", lambda p=path: run_callscribe(a.bin, p, wav, a.threads)) for w, path in models.items()]
        if a.compare_bin:
            engines += [(f"callscribe {w}, other build", lambda p=path: run_callscribe(a.compare_bin, p, wav, a.threads))
                        for w, path in models.items()]
        if a.fit_rows:
            engines.append((f"callscribe {first}, every window fitted (fit_max_seconds = 30)",
                            lambda: run_callscribe(a.bin, models[first], wav, a.threads, fit=True)))
            engines.append((f"callscribe {first}, every window at 30 s (fit_audio_ctx = false)",
                            lambda: run_callscribe(a.bin, models[first], wav, a.threads, fit=False)))
        rows = interleaved(engines, a.repeat)
        fw = rows[0][1]

    what = "two-speaker call (espeak-ng)" if a.speech == "espeak" else "call of real recorded prompts (8 kHz µ-law)"
    print(f"\nASR bench: base model, {seconds:.0f} s {what}, {a.threads} threads, "
          f"greedy, English, word timestamps, median of {a.repeat} interleaved rounds\n")
    print("| engine | wall s | transcribe s | RTF | ratio to faster-whisper (wall) | peak RSS MB | WER |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r['wall']:.1f} | {r['transcribe']:.1f} | {r['transcribe'] / seconds:.3f} | "
              f"{r['wall'] / fw['wall']:.2f} | {r['rss_mb']:.0f} | {wer(reference, r['text'], a.speech):.3f} |")


if __name__ == "__main__":
    main()
