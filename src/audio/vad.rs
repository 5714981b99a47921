//! Voice-activity detection by frame energy, adaptive to the line's noise floor.
//! Used to keep silence and hold pauses away from whisper (whose hallucinations
//! start in silence), to cut long recordings at pauses, and as the speech
//! regions the diarizer clusters.
//!
//! 20 ms frames; a frame is voiced when its level is 8 dB above the noise floor
//! (the 10th-percentile frame level, kept between −70 and −40 dBFS for the
//! threshold); voiced runs shorter than 60 ms are dropped, regions closer than
//! `min_gap` are merged, and each region is padded by 150 ms.

/// One voiced region, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub start: f64,
    pub end: f64,
}

impl Region {
    pub fn duration(&self) -> f64 {
        self.end - self.start
    }
}

const FRAME_S: f64 = 0.02;

/// Per-frame levels in dBFS (20 ms frames).
pub fn frame_levels(x: &[f32], rate: u32) -> Vec<f64> {
    let n = ((rate as f64 * FRAME_S) as usize).max(1);
    x.chunks(n)
        .map(|c| {
            let p = c.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / c.len() as f64;
            if p <= 1e-12 {
                -120.0
            } else {
                10.0 * p.log10()
            }
        })
        .collect()
}

/// Voiced regions of `x`; regions closer than `min_gap` seconds are merged.
pub fn speech_regions(x: &[f32], rate: u32, min_gap: f64) -> Vec<Region> {
    let levels = frame_levels(x, rate);
    if levels.is_empty() {
        return Vec::new();
    }
    let threshold = voiced_threshold(&levels);
    let total = x.len() as f64 / rate as f64;
    let mut raw = Vec::new();
    let mut start: Option<usize> = None;
    for (i, &l) in levels.iter().enumerate() {
        match (l >= threshold, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                raw.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        raw.push((s, levels.len()));
    }
    // < 60 ms: a click, not speech.
    let runs = raw.into_iter().filter(|(s, e)| e - s >= 3).map(|(s, e)| (s as f64 * FRAME_S, e as f64 * FRAME_S));
    pad_and_merge(runs, total, min_gap)
}

/// The level above which a frame is voiced: 8 dB above the noise floor (the
/// 10th-percentile frame level), kept between −70 and −40 dBFS.
fn voiced_threshold(levels: &[f64]) -> f64 {
    let mut sorted = levels.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let floor = sorted.get(sorted.len() / 10).copied().unwrap_or(-120.0);
    (floor + 8.0).clamp(-70.0, -40.0)
}

/// Voiced runs `(start s, end s)`, in order, padded by 150 ms each side within
/// `0..total` seconds, runs closer than `min_gap` seconds merged.
pub fn pad_and_merge(runs: impl IntoIterator<Item = (f64, f64)>, total: f64, min_gap: f64) -> Vec<Region> {
    let mut out: Vec<Region> = Vec::new();
    for (start, end) in runs {
        let r = Region { start: (start - 0.15).max(0.0), end: (end + 0.15).min(total) };
        match out.last_mut() {
            Some(last) if r.start - last.end < min_gap => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// A run of the recording inside a recogniser window: `len` seconds of the
/// recording from `source` sit at `at` seconds into the window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Piece {
    pub at: f64,
    pub source: f64,
    pub len: f64,
}

/// Voiced regions packed end to end into one recogniser input, the pauses
/// between them taken out (each region keeps its 150 ms pads, so whisper still
/// hears a short pause at every seam). Times map back with [`Window::to_recording`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    pub pieces: Vec<Piece>,
}

impl Window {
    /// Seconds of audio in the window.
    pub fn duration(&self) -> f64 {
        self.pieces.last().map_or(0.0, |p| p.at + p.len)
    }

    /// The window's audio: its pieces of `x`, end to end.
    pub fn samples(&self, x: &[f32], rate: u32) -> Vec<f32> {
        let mut out = Vec::with_capacity((self.duration() * rate as f64) as usize + 1);
        for p in &self.pieces {
            let (a, b) = sample_range(p.source, p.len, rate, x.len());
            out.extend_from_slice(&x[a..b]);
        }
        out
    }

    /// What follows window time `from`, as a window of its own (the pieces
    /// after it, the first one cut), or `None` when nothing follows.
    pub fn tail(&self, from: f64) -> Option<Window> {
        let mut pieces = Vec::new();
        let mut at = 0.0;
        for p in &self.pieces {
            let skip = (from - p.at).clamp(0.0, p.len);
            let len = p.len - skip;
            if len > 1e-6 {
                pieces.push(Piece { at, source: p.source + skip, len });
                at += len;
            }
        }
        (!pieces.is_empty()).then_some(Window { pieces })
    }

    /// The piece that holds window time `t`. At a seam a start belongs to the
    /// later piece, an end (`is_end`) to the earlier.
    pub fn piece_index(&self, t: f64, is_end: bool) -> usize {
        self.pieces.iter().rposition(|p| if is_end { p.at < t } else { p.at <= t }).unwrap_or(0)
    }

    /// Recording time of window time `t` (see [`Window::piece_index`] for seams).
    pub fn to_recording(&self, t: f64, is_end: bool) -> f64 {
        match self.pieces.get(self.piece_index(t, is_end)) {
            Some(p) => p.to_recording(t),
            None => t,
        }
    }
}

impl Piece {
    /// Recording time of window time `t`, kept inside this piece.
    pub fn to_recording(&self, t: f64) -> f64 {
        self.source + (t - self.at).clamp(0.0, self.len)
    }
}

fn sample_range(start: f64, len: f64, rate: u32, n: usize) -> (usize, usize) {
    let a = ((start * rate as f64).round() as usize).min(n);
    let b = (((start + len) * rate as f64).round() as usize).clamp(a, n);
    (a, b)
}

/// A window with at least this much room left takes the first part of a region
/// that does not fit, cut at a pause (see [`pack`]).
const MIN_ROOM_S: f64 = 2.0;

/// Pack voiced regions into recogniser windows of at most `max_len` seconds of
/// audio: the pauses between regions are left out, so a window holds up to
/// `max_len` seconds of speech and a call needs as few encoder passes as its
/// speech allows. A region that does not fit in the room a window has left
/// (at least [`MIN_ROOM_S`]) is cut at a pause inside it, the quietest unvoiced
/// frame in the last 40 % of that room, and its first part fills the window
/// (measured on a real 184 s call: 7 windows became 6; see the README). A
/// region longer than a window without such a pause is cut at its quietest
/// frame in the last quarter of a window. The pieces of a region are
/// contiguous: nothing lost or doubled.
pub fn pack(x: &[f32], rate: u32, regions: &[Region], max_len: f64) -> Vec<Window> {
    let levels = frame_levels(x, rate);
    let threshold = voiced_threshold(&levels);
    let total = x.len() as f64 / rate as f64;
    let mut out: Vec<Window> = Vec::new();
    let add = |out: &mut Vec<Window>, start: f64, end: f64| {
        let (a, b) = sample_range(start, end - start, rate, x.len());
        if b <= a {
            return;
        }
        let (source, len) = (a as f64 / rate as f64, (b - a) as f64 / rate as f64);
        match out.last_mut() {
            Some(w) if w.duration() + len <= max_len + 1e-9 => {
                let at = w.duration();
                w.pieces.push(Piece { at, source, len });
            }
            _ => out.push(Window { pieces: vec![Piece { at: 0.0, source, len }] }),
        }
    };
    // The quietest frame between `from` and `to` seconds, if `pause` asks for an
    // unvoiced one and there is one.
    let quietest = |from: f64, to: f64, pause: bool| {
        let lo = (from / FRAME_S) as usize;
        let hi = ((to / FRAME_S) as usize).min(levels.len());
        (lo..hi.max(lo + 1))
            .filter(|&i| i < levels.len() && (!pause || levels[i] < threshold))
            .min_by(|&a, &b| levels[a].total_cmp(&levels[b]))
            .map(|i| i as f64 * FRAME_S)
    };
    for r in regions {
        let (mut start, end) = (r.start.max(0.0), r.end.min(total));
        loop {
            let room = out.last().map_or(0.0, |w| max_len - w.duration());
            if end - start <= room + 1e-9 || room < MIN_ROOM_S {
                break;
            }
            match quietest(start + 0.6 * room, start + room - FRAME_S, true) {
                Some(cut) if cut > start && cut < end => {
                    add(&mut out, start, cut);
                    start = cut;
                }
                _ => break,
            }
        }
        while end - start > max_len {
            let cut = quietest(start + max_len * 0.75, start + max_len, false).unwrap_or(start + max_len);
            add(&mut out, start, cut);
            start = cut;
        }
        add(&mut out, start, end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(parts: &[(f64, bool)], rate: u32) -> Vec<f32> {
        let mut x = Vec::new();
        let mut seed = 1u32;
        for &(secs, voiced) in parts {
            for i in 0..(secs * rate as f64) as usize {
                seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
                let noise = ((seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.002;
                let v = if voiced { (i as f32 * 0.07).sin() * 0.3 } else { 0.0 };
                x.push(v + noise);
            }
        }
        x
    }

    #[test]
    fn finds_speech_between_pauses() {
        let x = signal(
            &[(1.0, false), (2.0, true), (0.2, false), (1.0, true), (3.0, false), (1.5, true), (1.0, false)],
            16000,
        );
        let r = speech_regions(&x, 16000, 0.3);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!((r[0].start - 0.85).abs() < 0.05 && (r[0].end - 4.35).abs() < 0.05, "{r:?}");
        assert!((r[1].start - 7.05).abs() < 0.05 && (r[1].end - 8.85).abs() < 0.05, "{r:?}");
        let silent = signal(&[(3.0, false)], 16000);
        assert!(speech_regions(&silent, 16000, 0.3).len() <= 1);
    }

    #[test]
    fn long_speech_is_cut_into_contiguous_windows() {
        let x = signal(&[(70.0, true)], 16000);
        let r = speech_regions(&x, 16000, 0.3);
        let w = pack(&x, 16000, &r, 28.0);
        assert!(w.len() >= 3, "{w:?}");
        assert!(w.iter().all(|w| w.duration() <= 28.0 + 1e-9 && w.pieces.len() == 1), "{w:?}");
        // Contiguous: nothing lost or doubled at the seams.
        for pair in w.windows(2) {
            let (a, b) = (pair[0].pieces[0], pair[1].pieces[0]);
            assert!((a.source + a.len - b.source).abs() < 1e-9, "{w:?}");
        }
        let covered: f64 = w.iter().map(Window::duration).sum();
        assert!((covered - (r[0].end - r[0].start)).abs() < 1e-3, "{covered} vs {r:?}");
    }

    #[test]
    fn a_region_that_does_not_fit_fills_the_window_up_to_a_pause() {
        // 20 s, then 6 s + a 0.4 s pause + 6 s (one region: the pause is under
        // min_gap), then 20 s. Whole regions need 3 windows of 28 s; cut at the
        // pause, the middle region fills the first window and the rest goes with
        // the last: 2.
        let x = signal(
            &[(20.0, true), (3.0, false), (6.0, true), (0.4, false), (6.0, true), (3.0, false), (20.0, true)],
            16000,
        );
        let r = speech_regions(&x, 16000, 0.5);
        assert_eq!(r.len(), 3, "{r:?}");
        let w = pack(&x, 16000, &r, 28.0);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w.iter().all(|w| w.duration() <= 28.0 + 1e-9), "{w:?}");
        // The cut is inside the pause, and the two parts meet there.
        let (a, b) = (w[0].pieces[1], w[1].pieces[0]);
        let cut = a.source + a.len;
        assert!((29.0..=29.4).contains(&cut), "{w:?}");
        assert!((b.source - cut).abs() < 1e-9, "{w:?}");
        let covered: f64 = w.iter().map(Window::duration).sum();
        let speech: f64 = r.iter().map(Region::duration).sum();
        assert!((covered - speech).abs() < 1e-3, "{covered} vs {speech}");
        // Without a pause in reach nothing is cut: three windows.
        let x = signal(&[(20.0, true), (3.0, false), (12.4, true), (3.0, false), (20.0, true)], 16000);
        let r = speech_regions(&x, 16000, 0.5);
        assert_eq!(pack(&x, 16000, &r, 28.0).len(), 3);
    }

    #[test]
    fn pauses_are_left_out_and_times_map_back() {
        // 2 s speech, 5 s pause, 2 s speech, 20 s pause, 2 s speech: one window.
        let x = signal(&[(2.0, true), (5.0, false), (2.0, true), (20.0, false), (2.0, true)], 16000);
        let r = speech_regions(&x, 16000, 0.3);
        assert_eq!(r.len(), 3, "{r:?}");
        let w = pack(&x, 16000, &r, 28.0);
        assert_eq!(w.len(), 1, "{w:?}");
        let w = &w[0];
        let speech: f64 = r.iter().map(Region::duration).sum();
        assert!((w.duration() - speech).abs() < 1e-3, "{w:?}");
        assert_eq!(w.samples(&x, 16000).len(), (w.duration() * 16000.0).round() as usize);
        // Inside a piece, time shifts by the pauses taken out before it.
        let p = w.pieces[2];
        assert!((w.to_recording(p.at + 0.5, false) - (p.source + 0.5)).abs() < 1e-9);
        assert!((p.source - 28.85).abs() < 0.03, "{p:?}");
        // At a seam a start takes the later piece, an end the earlier.
        let seam = w.pieces[1].at;
        assert!((w.to_recording(seam, false) - w.pieces[1].source).abs() < 1e-9);
        let before = w.pieces[0];
        assert!((w.to_recording(seam, true) - (before.source + before.len)).abs() < 1e-9);
        // A window that is full starts the next one.
        assert_eq!(pack(&x, 16000, &r, 4.5).len(), 2);
    }
}
