"""Real recorded telephone speech for the benches: Debian's asterisk-core-sounds-en
(Allison Smith's PBX prompts, 8 kHz 16-bit, CC BY-SA 3.0), which
scripts/fetch-models.sh unpacks to models/real-speech/asterisk/ with the
transcript of every prompt (core-sounds-en.txt).

Only prompts whose transcript is plain words are used: no digits, no bracketed
tone descriptions, no symbols, so that a reference never depends on how a number
is written. Whisper may still write "press 1" for "press one": `words` spells
numbers out on both sides before scoring.
"""
import os
import re
import wave

import numpy as np

DEFAULT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "real-speech",
                           "asterisk")


def prompts(root=DEFAULT_DIR):
    """(name, transcript, path) of every prompt with a plain-word transcript, in
    the transcript file's order."""
    listing = os.path.join(root, "core-sounds-en.txt")
    if not os.path.exists(listing):
        raise SystemExit(f"{listing}: not found (run scripts/fetch-models.sh)")
    out = []
    with open(listing, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(";") or ":" not in line:
                continue
            name, text = (p.strip() for p in line.split(":", 1))
            path = os.path.join(root, "sounds", name + ".wav")
            if text and os.path.exists(path) and not re.search(r"[\d\[\]<>#*%$@&=+/]", text):
                out.append((name, text, path))
    return out


def single_words(root=DEFAULT_DIR):
    """Prompts that are one word (digits, letters spelt out, "activated", …)."""
    return [p for p in prompts(root) if len(words(p[1])) == 1]


def read(path):
    """A prompt's samples (float32, −1…1) and rate."""
    with wave.open(path) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768
    return x, rate


ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
       "seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spell(n):
    """An integer under a million in words."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        return ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + spell(n % 100))
    return spell(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + spell(n % 1000))


def words(text):
    """Lower-case words for scoring: hyphens split words, punctuation goes,
    numbers are spelt out."""
    out = []
    for w in re.sub(r"[-/]", " ", text.lower()).split():
        w = re.sub(r"[^\w]", "", w)
        if re.fullmatch(r"\d{1,6}", w):
            out.extend(spell(int(w)).split())
        elif w:
            out.append(w)
    return out
