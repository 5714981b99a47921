#!/usr/bin/env bash
# Peak memory of one job against the audio's length and format.
#
#   benches/memory.sh [MODEL]          (default models/ggml-tiny.en.bin)
#
# For 5 min, 1 h and 4 h of audio, as 8 kHz mono µ-law WAV (what PBXs record)
# and as 44.1 kHz stereo 16-bit WAV, it runs `callscribe transcribe` (the same
# decode → 16 kHz → whisper → speakers work the worker's inference process does
# for a job) under `/usr/bin/time -v` and prints the peak resident set size.
#
# The audio is 12 s of espeak-ng speech every 5 minutes with quiet noise
# (−66 dBFS) between: the voice-activity windows leave the quiet out, so
# whisper's own work stays small and a 4-hour input runs in minutes, while every
# buffer that grows with the length (the decoded audio, the 16 kHz copy, the
# quality frames, the speech regions) is as large as for a 4-hour conversation.
# Whisper's working memory does not grow with the length: it works on windows of
# at most 30 s.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/callscribe-target}"
bin="${CALLSCRIBE_BIN:-$CARGO_TARGET_DIR/release/callscribe}"
model="${1:-models/ggml-tiny.en.bin}"
[ -x "$bin" ] || { echo "build first: cargo build --release (or set CALLSCRIBE_BIN)" >&2; exit 2; }
[ -f "$model" ] || { echo "$model missing: scripts/fetch-models.sh" >&2; exit 2; }
for tool in sox espeak-ng /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 2; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# One 5-minute block: 12 s of speech, then quiet noise up to 300 s.
espeak-ng -v en-us -s 150 -w "$work/speech.wav" \
  "Good morning, this is Priya calling from Apex Finance about your loan account. I will pay the instalment on Friday."
sox "$work/speech.wav" -r 16000 -c 1 "$work/s16.wav" trim 0 12 pad 0 0
speech_len=$(soxi -D "$work/s16.wav")
sox -n -r 16000 -c 1 "$work/quiet.wav" synth "$(awk -v s="$speech_len" 'BEGIN {print 300 - s}')" whitenoise vol 0.0005
sox "$work/s16.wav" "$work/quiet.wav" "$work/block.wav"

make_input() { # minutes rate channels encoding out
  local minutes=$1 rate=$2 ch=$3 enc=$4 out=$5 n=$(( $1 / 5 ))
  local list=()
  for _ in $(seq 1 "$n"); do list+=("$work/block.wav"); done
  if [ "$ch" = 2 ]; then
    # Two legs: the speech on the left, the same shifted by 2.5 min on the right.
    sox "${list[@]}" -r "$rate" "$work/left.wav"
    sox "$work/left.wav" "$work/right.wav" trim 150 pad 0 150
    sox -M "$work/left.wav" "$work/right.wav" -r "$rate" -b 16 -e signed-integer "$out"
    rm -f "$work/left.wav" "$work/right.wav"
  else
    sox "${list[@]}" -r "$rate" -c 1 -e "$enc" "$out"
  fi
}

printf '| input | length | file | peak RSS | wall |\n|---|---|---|---|---|\n'
for minutes in 5 60 240; do
  for fmt in "8000 1 u-law mono 8 kHz µ-law" "44100 2 signed-integer stereo 44.1 kHz 16-bit"; do
    set -- $fmt
    rate=$1 ch=$2 enc=$3; shift 3; label="$*"
    in="$work/in-${minutes}m-${rate}.wav"
    make_input "$minutes" "$rate" "$ch" "$enc" "$in"
    size=$(du -h "$in" | cut -f1)
    /usr/bin/time -v -o "$work/time.txt" "$bin" transcribe --format json --model "$model" "$in" >/dev/null 2>"$work/err.txt" \
      || { echo "failed on $label $minutes min:" >&2; tail -5 "$work/err.txt" >&2; exit 1; }
    rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/time.txt")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
    printf '| %s | %s min | %s | %s MB | %s |\n' "$label" "$minutes" "$size" "$(awk -v k="$rss_kb" 'BEGIN {printf "%.0f", k / 1024}')" "$wall"
    rm -f "$in"
  done
done
