#!/usr/bin/env python3
"""Redaction recall and precision: callscribe beside Microsoft Presidio's recognizers,
on the written-form part of the generated labelled set (not run in CI).

    python3 -m venv /tmp/pvenv && /tmp/pvenv/bin/pip install presidio-analyzer
    cargo build --release
    /tmp/pvenv/bin/python benches/pii_presidio.py [--bin target/release/callscribe] [--per-form 20]

The set comes from `callscribe pii-corpus` (the same generator the tests score,
src/redact/corpus.rs), with callscribe's own findings on each sentence. Presidio's
pattern recognizers run directly on the same sentences (no spaCy model: none can be
fetched here, and the recognizers compared are pattern-and-checksum ones; context
words are what spaCy would add). Every result Presidio returns counts, whatever its
score. Scoring is the tests' rule: a label is found when a finding of its type covers
all of its characters; a finding is wrong when it overlaps no label of its type.
Only the forms Presidio is meant for are used: written digits and codes (`written`,
`hinglish`) and the near-misses; spoken digits are callscribe's own ground.
"""
import argparse
import json
import os
import subprocess
from collections import defaultdict

from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer, EmailRecognizer, InAadhaarRecognizer, InGstinRecognizer, InPanRecognizer,
    InPassportRecognizer, InVehicleRegistrationRecognizer, InVoterRecognizer, NhsRecognizer, PhoneRecognizer,
    UkNinoRecognizer, UkPassportRecognizer, UkPostcodeRecognizer,
)

# Presidio's entity → callscribe's type.
TYPES = {
    "IN_AADHAAR": "AADHAAR", "IN_PAN": "IN_PAN", "IN_GSTIN": "IN_GSTIN", "IN_PASSPORT": "PASSPORT",
    "IN_VEHICLE_REGISTRATION": "IN_VEHICLE", "IN_VOTER": "IN_VOTER_ID", "UK_NHS": "UK_NHS", "UK_NINO": "UK_NINO",
    "UK_PASSPORT": "PASSPORT", "UK_POSTCODE": "UK_POSTCODE", "PHONE_NUMBER": "PHONE", "CREDIT_CARD": "CARD",
    "EMAIL_ADDRESS": "EMAIL",
}


def recognizers():
    out = []
    for cls in (CreditCardRecognizer, EmailRecognizer, InAadhaarRecognizer, InGstinRecognizer, InPanRecognizer,
                InPassportRecognizer, InVehicleRegistrationRecognizer, InVoterRecognizer, NhsRecognizer,
                UkNinoRecognizer, UkPassportRecognizer, UkPostcodeRecognizer):
        try:
            out.append(cls())
        except Exception as e:  # a recognizer this version lacks or cannot build
            print(f"skipping {cls.__name__}: {e}")
    out.append(PhoneRecognizer(supported_regions=("IN", "GB")))
    return out


def presidio(recs, text):
    found = []
    for r in recs:
        for res in r.analyze(text, r.supported_entities, None) or []:
            t = TYPES.get(res.entity_type)
            if t:
                found.append({"type": t, "start": res.start, "end": res.end})
    return found


def score(examples, key, types):
    c = defaultdict(lambda: [0, 0, 0])  # found, missed, wrong
    for e in examples:
        pred = [p for p in e[key] if p["type"] in types]
        for l in e["entities"]:
            if l["type"] not in types:
                continue
            hit = any(p["type"] == l["type"] and p["start"] <= l["start"] and p["end"] >= l["end"] for p in pred)
            c[l["type"]][0 if hit else 1] += 1
        for p in pred:
            if not any(l["type"] == p["type"] and p["start"] < l["end"] and l["start"] < p["end"] for l in e["entities"]):
                c[p["type"]][2] += 1
    return c


def ratio(a, b):
    return a / b if b else 1.0


def main():
    ap = argparse.ArgumentParser()
    default_bin = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "callscribe")
    ap.add_argument("--bin", default=default_bin)
    ap.add_argument("--per-form", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    lines = subprocess.run([a.bin, "pii-corpus", "--seed", str(a.seed), "--per-form", str(a.per_form)],
                           check=True, capture_output=True, text=True).stdout.splitlines()
    examples = [json.loads(l) for l in lines]
    examples = [e for e in examples if e["form"] in ("written", "hinglish", "near_miss")]
    recs = recognizers()
    for e in examples:
        e["presidio"] = presidio(recs, e["text"])
    types = sorted(set(TYPES.values()))
    ours, theirs = score(examples, "callscribe", types), score(examples, "presidio", types)
    print(f"{len(examples)} written-form sentences ({sum(1 for e in examples if e['form'] == 'near_miss')} near-misses)")
    print(f"{'type':<13} {'labels':>6}  {'callscribe R':>12} {'P':>6}  {'presidio R':>10} {'P':>6}")
    tot = {"callscribe": [0, 0, 0], "presidio": [0, 0, 0]}
    for t in types:
        o, p = ours[t], theirs[t]
        n = o[0] + o[1]
        if n == 0 and o[2] == 0 and p[2] == 0:
            continue
        for name, v in (("callscribe", o), ("presidio", p)):
            tot[name] = [x + y for x, y in zip(tot[name], v)]
        print(f"{t:<13} {n:>6}  {ratio(o[0], n):>12.3f} {ratio(o[0], o[0] + o[2]):>6.3f}  "
              f"{ratio(p[0], n):>10.3f} {ratio(p[0], p[0] + p[2]):>6.3f}")
    o, p = tot["callscribe"], tot["presidio"]
    print(f"{'all':<13} {o[0] + o[1]:>6}  {ratio(o[0], o[0] + o[1]):>12.3f} {ratio(o[0], o[0] + o[2]):>6.3f}  "
          f"{ratio(p[0], p[0] + p[1]):>10.3f} {ratio(p[0], p[0] + p[2]):>6.3f}")


if __name__ == "__main__":
    main()
