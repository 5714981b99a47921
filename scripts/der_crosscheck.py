#!/usr/bin/env python3
"""Cross-check callscribe's DER scorer (src/diarize/der.rs) with pyannote.metrics.

    pip install pyannote.metrics
    cargo bench --bench diarization          # writes target/diarization-rttm/
    python3 scripts/der_crosscheck.py [target/diarization-rttm]

Prints pyannote's DER for every hypothesis file, with no collar and with a
0.25 s collar on each side (pyannote's `collar` is the total width: 0.5).
"""
import glob
import os
import sys

from pyannote.core import Annotation, Segment
from pyannote.metrics.diarization import DiarizationErrorRate


def load(path):
    ann = Annotation()
    for line in open(path):
        f = line.split()
        if not f or f[0] != "SPEAKER":
            continue
        start, dur, who = float(f[3]), float(f[4]), f[7]
        ann[Segment(start, start + dur)] = who
    return ann


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "target/diarization-rttm"
    print("| file | DER | DER (0.25 s collar) |")
    print("|---|---:|---:|")
    for ref_path in sorted(glob.glob(os.path.join(folder, "*.ref.rttm"))):
        ref = load(ref_path)
        base = ref_path[: -len(".ref.rttm")]
        for hyp_path in sorted(glob.glob(base + ".*.rttm")):
            if hyp_path == ref_path:
                continue
            hyp = load(hyp_path)
            plain = DiarizationErrorRate(collar=0.0, skip_overlap=False)(ref, hyp)
            collar = DiarizationErrorRate(collar=0.5, skip_overlap=False)(ref, hyp)
            print(f"| {os.path.basename(hyp_path)} | {plain * 100:.1f} % | {collar * 100:.1f} % |")


if __name__ == "__main__":
    main()
