//! Word edges you can cut audio at.
//!
//! whisper.cpp's DTW stamps each text token with the time its alignment path
//! *leaves* it: the decoder row of token k attends to the audio of token k+1,
//! so the jump into row k+1 happens where token k+1 starts, i.e. where token k
//! ends. A word therefore spans from the previous token's stamp to its own last
//! token's stamp ([`token_span`]); reading the stamp as the word's start (as
//! callscribe did before) puts every start near the word's own end.
//!
//! Those spans come in 20 ms steps and put a pause on one side of a boundary or
//! the other. [`refine`] then moves each edge onto the signal, in the recording's
//! time: between two words it takes the silence nearest the aligned boundary
//! (within [`REACH`]); without a silence there it takes the quietest frame within
//! 60 ms; an outer edge (the first word after a pause, the last before one) is
//! moved to the onset or offset of the voiced run it is in, or the nearest one.
//! Words never overlap, and each segment is set to span its words.

use super::Segment;

/// Frame hop of the energy track, seconds.
const HOP: f64 = 0.005;
/// How far an edge may move from where the alignment put it, seconds.
pub const REACH: f64 = 0.35;
/// The shortest silence taken for a pause between words.
const MIN_GAP: f64 = 0.03;
/// The shortest word refinement leaves.
const MIN_WORD: f64 = 0.04;
/// Without a pause, a boundary moves to the quietest frame this close.
const DIP_REACH: f64 = 0.06;

/// A word's span from DTW stamps: from the previous text token's stamp (or
/// `first_start` for a window's first token) to its own.
pub fn token_span(previous_stamp: Option<f64>, first_start: f64, stamp: f64) -> (f64, f64) {
    let start = previous_stamp.unwrap_or(first_start).min(stamp);
    (start, stamp)
}

/// Frame energies of one channel and the level that counts as voiced.
pub struct Energy {
    db: Vec<f32>,
    threshold: f32,
}

impl Energy {
    /// Mean-square energy in 5 ms frames (10 ms windows), in dB. Voiced means
    /// above `max(floor + 9 dB, loud − 35 dB)`, at most `loud − 15 dB`, where
    /// floor is the 10th and loud the 95th percentile of the channel's frames:
    /// digital silence, line hiss and a quiet room all leave speech above it.
    pub fn new(samples: &[f32], rate: u32) -> Energy {
        let hop = ((rate as f64 * HOP).round() as usize).max(1);
        let n = samples.len().div_ceil(hop);
        let db: Vec<f32> = (0..n)
            .map(|i| {
                let a = i * hop;
                let b = (a + 2 * hop).min(samples.len());
                let x = &samples[a..b];
                let ms = x.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>() / x.len().max(1) as f64;
                (10.0 * (ms + 1e-10).log10()) as f32
            })
            .collect();
        let mut sorted: Vec<f32> = db.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f32::total_cmp);
        let pct = |p: f64| sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(-100.0);
        let (floor, loud) = (pct(0.10), pct(0.95));
        let threshold = (floor + 9.0).max(loud - 35.0).min(loud - 15.0);
        Energy { db, threshold }
    }

    fn len(&self) -> usize {
        self.db.len()
    }

    fn frame(&self, t: f64) -> usize {
        ((t.max(0.0) / HOP).floor() as usize).min(self.len().saturating_sub(1))
    }

    fn voiced(&self, i: usize) -> bool {
        self.db.get(i).is_some_and(|d| *d > self.threshold)
    }

    /// Silent runs of at least [`MIN_GAP`] that touch `[lo, hi]`, as times
    /// (their full extent, which may reach outside the interval).
    fn pauses(&self, lo: f64, hi: f64) -> Vec<(f64, f64)> {
        if self.len() == 0 || hi <= lo {
            return Vec::new();
        }
        let (a, b) = (self.frame(lo), self.frame(hi));
        let mut out = Vec::new();
        let mut i = a;
        while i <= b {
            if self.voiced(i) {
                i += 1;
                continue;
            }
            let mut s = i;
            while s > 0 && !self.voiced(s - 1) {
                s -= 1;
            }
            let mut e = i;
            while e < self.len() && !self.voiced(e) {
                e += 1;
            }
            if (e - s) as f64 * HOP >= MIN_GAP {
                out.push((s as f64 * HOP, e as f64 * HOP));
            }
            i = e + 1;
        }
        out
    }

    /// The quietest frame boundary in `[lo, hi]`.
    fn dip(&self, lo: f64, hi: f64) -> Option<f64> {
        if self.len() == 0 || hi < lo {
            return None;
        }
        (self.frame(lo)..=self.frame(hi)).min_by(|&x, &y| self.db[x].total_cmp(&self.db[y])).map(|i| i as f64 * HOP)
    }

    /// Where speech starts for a word aligned at `t`: the onset of the voiced
    /// run around `t`, else the next onset, looking no further than `[lo, hi]`.
    fn onset(&self, t: f64, lo: f64, hi: f64) -> f64 {
        if self.len() == 0 || hi <= lo {
            return t;
        }
        let (lo_f, hi_f) = (self.frame(lo), self.frame(hi));
        let mut i = self.frame(t.clamp(lo, hi));
        if self.voiced(i) {
            while i > lo_f && self.voiced(i - 1) {
                i -= 1;
            }
            return i as f64 * HOP;
        }
        while i < hi_f && !self.voiced(i) {
            i += 1;
        }
        if self.voiced(i) {
            i as f64 * HOP
        } else {
            t
        }
    }

    /// Where speech ends for a word aligned to end at `t`: the offset of the
    /// voiced run around `t`, else the previous offset, within `[lo, hi]`.
    fn offset(&self, t: f64, lo: f64, hi: f64) -> f64 {
        if self.len() == 0 || hi <= lo {
            return t;
        }
        let (lo_f, hi_f) = (self.frame(lo), self.frame(hi));
        // The frame that ends at t.
        let mut i = self.frame((t - HOP / 2.0).clamp(lo, hi));
        if self.voiced(i) {
            while i < hi_f && self.voiced(i + 1) {
                i += 1;
            }
            return (i + 1) as f64 * HOP;
        }
        while i > lo_f && !self.voiced(i) {
            i -= 1;
        }
        if self.voiced(i) {
            (i + 1) as f64 * HOP
        } else {
            t
        }
    }
}

/// Move every word edge of one channel's segments onto the signal (see the
/// module text). Segments must be in time order; each ends up spanning its words.
pub fn refine(segments: &mut Vec<Segment>, samples: &[f32], rate: u32) {
    let mut spans: Vec<(f64, f64)> = segments.iter().flat_map(|s| s.words.iter().map(|w| (w.start, w.end))).collect();
    if spans.is_empty() {
        return;
    }
    let weights: Vec<f64> = segments.iter().flat_map(|s| s.words.iter().map(|w| spoken_weight(&w.word))).collect();
    let energy = Energy::new(samples, rate);
    refine_spans(&mut spans, &weights, &energy);
    let mut k = 0;
    for s in segments.iter_mut() {
        if s.words.is_empty() {
            continue;
        }
        for w in s.words.iter_mut() {
            (w.start, w.end) = spans[k];
            k += 1;
        }
        s.start = s.words[0].start;
        s.end = s.words[s.words.len() - 1].end;
    }
    split_at_pauses(segments);
}

/// A segment never spans a pause of [`SPLIT_PAUSE`] or more between two of its
/// words (on a stereo leg, the other party's whole turn): it is split there.
pub const SPLIT_PAUSE: f64 = 1.0;

fn split_at_pauses(segments: &mut Vec<Segment>) {
    let mut out = Vec::with_capacity(segments.len());
    for s in segments.drain(..) {
        let cut: Vec<usize> =
            (1..s.words.len()).filter(|&i| s.words[i].start - s.words[i - 1].end >= SPLIT_PAUSE).collect();
        if cut.is_empty() {
            out.push(s);
            continue;
        }
        let mut from = 0;
        for &c in cut.iter().chain(std::iter::once(&s.words.len())) {
            let words = s.words[from..c].to_vec();
            let confidence = words.iter().map(|w| w.probability).sum::<f64>() / words.len().max(1) as f64;
            out.push(Segment {
                start: words[0].start,
                end: words[words.len() - 1].end,
                text: super::join_words(&words),
                words,
                confidence,
                ..s.clone()
            });
            from = c;
        }
    }
    *segments = out;
}

/// How long a word is to say, in letters: letters and apostrophes count one, a
/// digit three and a half (whisper writes "14" for "fourteen"), plus one for
/// the word itself.
fn spoken_weight(word: &str) -> f64 {
    1.0 + word
        .chars()
        .map(|c| {
            if c.is_numeric() {
                3.5
            } else if c.is_alphabetic() || c == '\'' {
                1.0
            } else {
                0.0
            }
        })
        .sum::<f64>()
}

/// Cost of a boundary with no pause at it (seconds of misplacement it is worth).
const NO_PAUSE: f64 = 0.15;
/// A word may last this many times longer or shorter than its letters at the
/// channel's own pace before [`DURATION`] is charged.
const DURATION_TOLERANCE: f64 = 2.5;
/// Cost per unit of log-ratio beyond the tolerance: "Thursday" (0.9 s at a
/// pace of 0.1 s a letter) squeezed into 80 ms costs 1.5, as much as moving an
/// edge 1.5 s from where the alignment put it.
const DURATION: f64 = 1.0;
/// Pauses further than this from where the alignment put a boundary are not
/// considered for it.
const SEARCH: f64 = 1.5;
/// Cost per second of a pause left inside a word, beyond its first 0.1 s (a
/// stop's closure is shorter; a quarter-second pause inside a word is not one).
const PAUSE_INSIDE: f64 = 8.0;
/// Cost per second of voice left between two words (in no word).
const VOICE_OUTSIDE: f64 = 1.0;
/// States kept per boundary.
const BEAM: usize = 64;

/// How a boundary between words (or before the first, after the last) is placed:
/// the word before ends where pause `p` starts, the word after starts where
/// pause `q` ends (`p == q` for one pause; `p < q` leaves what lies between in
/// no word), or no pause marks it.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Mark {
    Pauses(usize, usize),
    None,
}

/// The edges: each boundary between consecutive words is given a pause of the
/// signal (or none) by dynamic programming over the whole channel, so that the
/// pauses keep their order, few long pauses fall inside words, little voice
/// falls between words, and boundaries move little from the alignment. Matching
/// the sequence of boundaries to the sequence of pauses (rather than each
/// boundary to its nearest pause) keeps a stretch where the alignment runs a
/// word late from shifting every edge onto the wrong pause.
///
/// Whisper's alignment sometimes runs a word late for a whole stretch of single
/// words (measured on real recorded PBX prompts), and the pause after each word
/// is then as near its aligned boundary as the right one. The words' lengths
/// tell them apart: a first pass finds the channel's pace (seconds per letter,
/// the median over its words), and a second charges words that last far longer
/// or shorter than their letters say ([`DURATION_TOLERANCE`]).
fn refine_spans(spans: &mut [(f64, f64)], weights: &[f64], e: &Energy) {
    let orig = spans.to_vec();
    place(spans, &orig, e, None);
    let mut pace: Vec<f64> =
        spans.iter().zip(weights).filter(|(s, _)| s.1 > s.0).map(|(s, w)| (s.1 - s.0) / w.max(1.0)).collect();
    if pace.len() < 3 {
        return;
    }
    pace.sort_by(f64::total_cmp);
    let pace = pace[pace.len() / 2];
    let expected: Vec<f64> = weights.iter().map(|w| (w * pace).max(0.02)).collect();
    spans.copy_from_slice(&orig);
    place(spans, &orig, e, Some(&expected));
}

/// The mean of the values present (0 for none).
fn mean(a: Option<f64>, b: Option<f64>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) => (a + b) / 2.0,
        (a, b) => a.or(b).unwrap_or(0.0),
    }
}

/// The dynamic programme of [`refine_spans`]: `orig` are the aligned spans,
/// `expected` each word's expected length (none: lengths are not charged).
fn place(spans: &mut [(f64, f64)], orig: &[(f64, f64)], e: &Energy, expected: Option<&[f64]>) {
    let n = spans.len();
    if n == 0 {
        return;
    }
    let total = e.len() as f64 * HOP;
    // The signal's pauses, and the recording's edges as pauses where speech
    // runs up to them.
    let mut pauses = e.pauses(0.0, total);
    if pauses.first().is_none_or(|p| p.0 > 0.0) {
        pauses.insert(0, (-1.0, 0.0));
    }
    if pauses.last().is_none_or(|p| p.1 < total) {
        pauses.push((total, total + 1.0));
    }
    let m = pauses.len();
    // Prefix sums: the cost of pauses inside words, and pause seconds.
    let mut inside = vec![0.0; m + 1];
    let mut silent = vec![0.0; m + 1];
    for (i, p) in pauses.iter().enumerate() {
        let len = (p.1.min(total) - p.0.max(0.0)).max(0.0);
        inside[i + 1] = inside[i] + PAUSE_INSIDE * (len - 0.1).max(0.0);
        silent[i + 1] = silent[i] + len;
    }
    // Voice seconds between the end of pause a and the start of pause b (a < b).
    let voice_between = |a: usize, b: usize| (pauses[b].0 - pauses[a].1 - (silent[b] - silent[a + 1])).max(0.0);
    let distance = |t: f64, p: (f64, f64)| {
        if t < p.0 {
            p.0 - t
        } else if t > p.1 {
            t - p.1
        } else {
            0.0
        }
    };
    // The first pause that can fall inside a word: the first to end after the
    // alignment's start of the first word.
    let base = pauses.partition_point(|x| x.1 <= orig[0].0);
    // Boundary k (0..=n): where the alignment ends word k-1 and starts word k.
    let ends = |k: usize| (if k > 0 { Some(orig[k - 1].1) } else { None }, if k < n { Some(orig[k].0) } else { None });
    let near = |t: f64| -> Vec<usize> {
        let a = pauses.partition_point(|p| p.1 < t - SEARCH);
        (a..m).take_while(|&i| pauses[i].0 <= t + SEARCH).collect()
    };

    // Where the alignment puts boundary k when no pause marks it.
    let aligned = |k: usize| {
        let (end, start) = ends(k);
        mean(end, start)
    };
    // The cost of word k-1 lasting from `from` to `to`.
    let length = |k: usize, from: f64, to: f64| {
        expected.map_or(0.0, |x| {
            let ratio = ((to - from).max(0.02) / x[k - 1]).ln().abs();
            DURATION * (ratio - DURATION_TOLERANCE.ln()).max(0.0)
        })
    };

    // layers[k]: states after boundary k: (last pause a word starts after, cost,
    // the state it came from in layers[k-1], the mark). States with the same last
    // pause are one, unless one of them marked boundary k with no pause (its word
    // k then starts at the aligned time, not at that pause's end).
    type State = (Option<usize>, f64, usize, Mark);
    let mut layers: Vec<Vec<State>> = Vec::with_capacity(n + 1);
    let mut previous: Vec<State> = vec![(None, 0.0, 0, Mark::None)];
    for k in 0..=n {
        let (end, start) = ends(k);
        let ps: Vec<usize> = end.map(near).unwrap_or_default();
        let qs: Vec<usize> = start.map(near).unwrap_or_default();
        let mut next: Vec<State> = Vec::new();
        let mut relax = |last: Option<usize>, cost: f64, from: usize, mark: Mark| {
            let same = |s: &&mut State| s.0 == last && (s.3 == Mark::None) == (mark == Mark::None);
            match next.iter_mut().find(same) {
                Some(s) if s.1 <= cost => {}
                Some(s) => *s = (last, cost, from, mark),
                None => next.push((last, cost, from, mark)),
            }
        };
        for (from, &(last, cost, _, mark)) in previous.iter().enumerate() {
            // Where word k-1 starts in this state.
            let word_start = match mark {
                Mark::Pauses(_, q) => pauses[q].1,
                Mark::None => aligned(k.saturating_sub(1)),
            };
            let ended = |at: f64| if k > 0 { length(k, word_start, at) } else { 0.0 };
            relax(last, cost + NO_PAUSE + ended(aligned(k)), from, Mark::None);
            // Pause p ends word k-1, pause q starts word k (p alone after the
            // last word, q alone before the first).
            let pairs: Vec<(usize, usize)> = match (end, start) {
                (Some(_), Some(_)) => {
                    ps.iter().flat_map(|&p| qs.iter().filter(move |&&q| q >= p).map(move |&q| (p, q))).collect()
                }
                (Some(_), None) => ps.iter().map(|&p| (p, p)).collect(),
                (None, Some(_)) => qs.iter().map(|&q| (q, q)).collect(),
                (None, None) => Vec::new(),
            };
            for (p, q) in pairs {
                if last.is_some_and(|l| p <= l) {
                    continue;
                }
                let d_end = end.map(|t| distance(t, pauses[p]));
                let d_start = start.map(|t| distance(t, pauses[q]));
                let moved = mean(d_end, d_start);
                let mut c = cost + moved + ended(pauses[p].0);
                let from_pause = last.map_or(base, |l| l + 1);
                if end.is_some() && p > from_pause {
                    c += inside[p] - inside[from_pause];
                }
                if q > p {
                    c += VOICE_OUTSIDE * voice_between(p, q);
                }
                relax(Some(q), c, from, Mark::Pauses(p, q));
            }
        }
        // States are compared with the pauses they have left inside words so
        // far charged (a state that has not placed a boundary for a while has
        // not paid for them yet, and would otherwise look cheapest).
        let here = start.or(end).unwrap_or(0.0);
        let upto = pauses.partition_point(|x| x.0 < here);
        let owed = |s: &State| {
            let from_pause = s.0.map_or(base, |l| l + 1);
            s.1 + if upto > from_pause { inside[upto] - inside[from_pause] } else { 0.0 }
        };
        next.sort_by(|a, b| owed(a).total_cmp(&owed(b)));
        next.truncate(BEAM);
        layers.push(std::mem::replace(&mut previous, next.clone()));
        previous = next;
    }
    // Pauses inside the last words (after the last one used, before where the
    // alignment ends the last word).
    let upto = pauses.partition_point(|x| x.0 < orig[n - 1].1);
    for state in previous.iter_mut() {
        let from_pause = state.0.map_or(base, |l| l + 1);
        if upto > from_pause {
            state.1 += inside[upto] - inside[from_pause];
        }
    }
    // Backtrack.
    let mut marks = vec![Mark::None; n + 1];
    let mut at = (0..previous.len()).min_by(|&a, &b| previous[a].1.total_cmp(&previous[b].1)).unwrap_or(0);
    for k in (0..=n).rev() {
        let state = if k == n { previous[at] } else { layers[k + 1][at] };
        marks[k] = state.3;
        at = state.2;
    }

    // Place the edges: pauses first, then the boundaries without one between them.
    for k in 0..=n {
        if let Mark::Pauses(p, q) = marks[k] {
            if k > 0 {
                spans[k - 1].1 = pauses[p].0.max(0.0);
            }
            if k < n {
                spans[k].0 = pauses[q].1.min(total);
            }
        }
    }
    for k in 0..=n {
        if marks[k] != Mark::None {
            continue;
        }
        let (end, start) = ends(k);
        match (end, start) {
            (None, Some(t)) => spans[0].0 = e.onset(t, t - REACH, t + REACH),
            (Some(t), None) => spans[n - 1].1 = e.offset(t, (t - REACH).max(spans[n - 1].0 + MIN_WORD), t + REACH),
            (Some(a), Some(b)) if b - a > MIN_GAP => {
                spans[k - 1].1 = e.offset(a, (a - REACH).max(spans[k - 1].0 + MIN_WORD), b);
                spans[k].0 = e.onset(b, spans[k - 1].1, b + REACH);
            }
            (Some(a), Some(b)) => {
                let b0 = (a + b) / 2.0;
                let lo = spans[k - 1].0 + MIN_WORD;
                let hi = (spans[k].1 - MIN_WORD).max(lo);
                let t = e.dip((b0 - DIP_REACH).max(lo), (b0 + DIP_REACH).min(hi)).unwrap_or(b0).clamp(lo, hi);
                spans[k - 1].1 = t;
                spans[k].0 = t;
            }
            (None, None) => {}
        }
    }
    // No overlaps, no negative lengths.
    let mut last = 0.0f64;
    for s in spans.iter_mut() {
        s.0 = s.0.max(last);
        s.1 = s.1.max(s.0);
        last = s.1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tone bursts at known places in silence (or in noise).
    fn signal(words: &[(f64, f64)], len: f64, noise: f32) -> Vec<f32> {
        let rate = 16_000.0;
        let mut seed = 7u32;
        (0..(len * rate) as usize)
            .map(|i| {
                let t = i as f64 / rate;
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let n = ((seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * noise;
                let on = words.iter().any(|(a, b)| t >= *a && t < *b);
                n + if on { 0.3 * (t * 2.0 * std::f64::consts::PI * 300.0).sin() as f32 } else { 0.0 }
            })
            .collect()
    }

    fn check(truth: &[(f64, f64)], aligned: &[(f64, f64)], noise: f32) -> Vec<(f64, f64)> {
        let x = signal(truth, truth.iter().map(|t| t.1).fold(0.0, f64::max) + 1.0, noise);
        let e = Energy::new(&x, 16_000);
        let mut spans = aligned.to_vec();
        refine_spans(&mut spans, &vec![5.0; aligned.len()], &e);
        for (got, want) in spans.iter().zip(truth) {
            assert!((got.0 - want.0).abs() <= 0.011, "start {got:?} vs {want:?} (all: {spans:?})");
            assert!((got.1 - want.1).abs() <= 0.011, "end {got:?} vs {want:?} (all: {spans:?})");
        }
        spans
    }

    #[test]
    fn edges_move_onto_the_pauses_the_alignment_put_on_either_side() {
        let truth = [(0.50, 0.90), (1.20, 1.55), (1.80, 2.40), (3.50, 3.80)];
        // The path stays on a word through the pause after it (end late), or
        // jumps early (start early), 20 ms steps; the last word is far away.
        let aligned = [(0.40, 1.18), (1.18, 1.62), (1.62, 2.30), (3.60, 4.00)];
        check(&truth, &aligned, 0.0);
        check(&truth, &aligned, 0.01);
    }

    #[test]
    fn a_word_aligned_in_silence_finds_its_speech() {
        // The alignment put the first word's start in the silence before it and
        // the boundary inside it.
        let truth = [(1.00, 1.40), (1.70, 2.00)];
        let aligned = [(0.80, 1.15), (1.15, 2.10)];
        check(&truth, &aligned, 0.005);
    }

    #[test]
    fn words_without_a_pause_meet_at_the_quietest_frame_and_never_overlap() {
        // One voiced run: no pause to find.
        let x = signal(&[(0.5, 2.0)], 3.0, 0.0);
        let e = Energy::new(&x, 16_000);
        let mut spans = vec![(0.5, 1.1), (1.0, 1.5), (1.5, 2.0)];
        refine_spans(&mut spans, &[5.0; 3], &e);
        for w in spans.windows(2) {
            assert!(w[0].1 <= w[1].0 + 1e-9, "{spans:?}");
            assert!(w[0].0 <= w[0].1, "{spans:?}");
        }
        assert!((spans[0].0 - 0.5).abs() < 0.011 && (spans[2].1 - 2.0).abs() < 0.011, "{spans:?}");
    }

    #[test]
    fn a_stretch_aligned_a_word_late_is_put_back_on_its_pauses() {
        // Measured on espeak words (tests/word_edges.rs): whisper heard
        // "schedule" as "casual" and its alignment ran about a word late from
        // "monthly" on; the nearest pause to each boundary is then the wrong one.
        let truth = [
            (0.99, 1.55),
            (1.905, 2.456),
            (3.033, 3.698),
            (4.10, 4.40),
            (4.581, 5.156),
            (5.713, 6.241),
            (6.734, 7.235),
        ];
        let aligned =
            [(0.74, 2.26), (2.26, 3.30), (3.30, 4.46), (4.46, 4.46), (4.46, 6.08), (6.08, 6.92), (6.92, 7.64)];
        check(&truth, &aligned, 0.0);
    }

    #[test]
    fn a_word_squeezed_by_a_late_stretch_is_given_its_length_back() {
        // Measured on real recorded PBX prompts (benches/word_edges.py --speech
        // asterisk, base): from "Juliet" on, the alignment runs a word late for
        // five words, and the pause after each word is as near its aligned
        // boundary as the right one. Times from 43 s in that recording, less 43.
        let words = ["Z.", "Juliet.", "17.", "comma.", "Press", "urgent.", "80.", "90.", "seconds.", "D."];
        let truth = [
            (1.413, 2.015),
            (2.536, 3.334),
            (3.847, 4.792),
            (5.047, 5.590),
            (6.133, 6.587),
            (6.834, 7.513),
            (8.024, 8.651),
            (9.051, 9.899),
            (10.132, 10.886),
            (11.300, 11.832),
        ];
        let aligned = [
            (0.56, 2.92),
            (2.92, 5.02),
            (5.02, 5.50),
            (5.50, 5.90),
            (5.90, 6.58),
            (6.58, 7.92),
            (7.92, 9.68),
            (9.68, 10.84),
            (10.84, 11.22),
            (11.22, 12.86),
        ];
        let x = signal(&truth, 13.5, 0.0);
        let e = Energy::new(&x, 16_000);
        let weights: Vec<f64> = words.iter().map(|w| spoken_weight(w)).collect();
        // Without the lengths (the first pass alone) "Juliet" takes "17"'s voice.
        let mut first = aligned.to_vec();
        place(&mut first, &aligned, &e, None);
        assert!((first[1].0 - truth[1].0).abs() > 0.2, "{first:?}");
        let mut spans = aligned.to_vec();
        refine_spans(&mut spans, &weights, &e);
        for (got, want) in spans.iter().zip(&truth) {
            assert!((got.0 - want.0).abs() <= 0.011, "start {got:?} vs {want:?} (all: {spans:?})");
            assert!((got.1 - want.1).abs() <= 0.011, "end {got:?} vs {want:?} (all: {spans:?})");
        }
    }

    #[test]
    fn spoken_weight_counts_letters_and_digits() {
        assert_eq!(spoken_weight("Thursday,"), 9.0);
        assert_eq!(spoken_weight("14."), 8.0);
        assert_eq!(spoken_weight("o'clock"), 8.0);
    }

    #[test]
    fn token_spans_run_from_the_previous_stamp() {
        assert_eq!(token_span(None, 0.2, 0.5), (0.2, 0.5));
        assert_eq!(token_span(Some(0.5), 0.2, 0.9), (0.5, 0.9));
        // A stamp before the first start never makes a negative span.
        assert_eq!(token_span(None, 0.6, 0.5), (0.5, 0.5));
    }
}
