#!/usr/bin/env python3
"""Compares benches/gpu/whisper_check runs (check.sh's OUT_DIR/*.jsonl).

    python3 benches/gpu/compare.py OUT_DIR [REFERENCE.txt] [--base cpu-dtw]

For each run: its time, its GPU memory, how many of its words differ from the
base run's (as a word error rate against it), how far its tokens' DTW stamps are
from the base run's, and (with a reference text) its word error rate."""
import argparse
import difflib
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from asr_vs_faster_whisper import wer  # noqa: E402


def load(path):
    windows, summary = [], None
    for line in open(path, encoding="utf-8"):
        row = json.loads(line)
        if row.get("summary"):
            summary = row
        else:
            windows.append(row)
    windows.sort(key=lambda w: w["window"])
    return windows, summary


def text(windows):
    return " ".join(s["text"].strip() for w in windows for s in w["segments"])


def stamps(windows):
    """(window, token text, DTW stamp in ms) of every text token."""
    return [(w["window"], t[0], t[3] * 10) for w in windows for s in w["segments"] for t in s["tokens"]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("reference", nargs="?")
    ap.add_argument("--base", default="cpu-dtw")
    a = ap.parse_args()
    runs = {f[:-6]: load(os.path.join(a.out, f)) for f in sorted(os.listdir(a.out)) if f.endswith(".jsonl")}
    runs = {k: v for k, v in runs.items() if v[1] is not None}
    base_w, _ = runs[a.base]
    base_text, base_stamps = text(base_w), stamps(base_w)
    ref = open(a.reference, encoding="utf-8").read() if a.reference else None
    print(f"| run | windows | run s | first window s | model MB (GPU) | state MB (GPU) | words changed from {a.base} "
          "| DTW stamps of the tokens both have: median / 90th pct / max difference ms |" + (" WER |" if ref else ""))
    print("|---|---:|---:|---:|---:|---|---:|---|" + ("---:|" if ref else ""))
    for name, (windows, s) in runs.items():
        st = stamps(windows)
        if s["dtw"]:
            # Tokens matched in order within each window (the texts may differ a little).
            d = []
            for w in sorted({t[0] for t in base_stamps}):
                x = [t for t in st if t[0] == w]
                y = [t for t in base_stamps if t[0] == w]
                sm = difflib.SequenceMatcher(a=[t[1] for t in x], b=[t[1] for t in y], autojunk=False)
                for blk in sm.get_matching_blocks():
                    d += [abs(x[blk.a + k][2] - y[blk.b + k][2]) for k in range(blk.size)]
            d.sort()
            dtw = f"{statistics.median(d):.0f} / {d[int(0.9 * (len(d) - 1))]:.0f} / {d[-1]:.0f} ({len(d)} tokens)"
        else:
            dtw = "no DTW"
        row = (f"| {name} | {s['windows']} | {s['run_s']:.2f} | {s['first_window_s']:.2f} | {s['model_gpu_mb']:.0f} | "
               f"{', '.join(f'{m:.0f}' for m in s['state_gpu_mb'])} | {wer(base_text, text(windows), 'asterisk'):.3f} | "
               f"{dtw} |")
        if ref:
            row += f" {wer(ref, text(windows), 'asterisk'):.3f} |"
        print(row)


if __name__ == "__main__":
    main()
