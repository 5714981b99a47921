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
    let mut sorted = levels.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let floor = sorted[sorted.len() / 10];
    let threshold = (floor + 8.0).clamp(-70.0, -40.0);
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
    let mut out: Vec<Region> = Vec::new();
    for (s, e) in raw {
        if e - s < 3 {
            continue; // < 60 ms: a click, not speech
        }
        let r = Region { start: (s as f64 * FRAME_S - 0.15).max(0.0), end: (e as f64 * FRAME_S + 0.15).min(total) };
        match out.last_mut() {
            Some(last) if r.start - last.end < min_gap => last.end = r.end,
            _ => out.push(r),
        }
    }
    out
}

/// Group regions into windows for the recogniser: at most `max_len` seconds
/// each, a new window after any pause longer than `max_pause`, long regions cut
/// into `max_len` pieces at their quietest frame in the last quarter.
pub fn windows(x: &[f32], rate: u32, regions: &[Region], max_len: f64, max_pause: f64) -> Vec<Region> {
    let levels = frame_levels(x, rate);
    let mut out: Vec<Region> = Vec::new();
    for r in regions {
        let mut piece = *r;
        // Cut regions longer than a window at their quietest point.
        while piece.duration() > max_len {
            let lo = ((piece.start + max_len * 0.75) / FRAME_S) as usize;
            let hi = (((piece.start + max_len) / FRAME_S) as usize).min(levels.len());
            let cut = (lo..hi.max(lo + 1))
                .filter(|&i| i < levels.len())
                .min_by(|&a, &b| levels[a].total_cmp(&levels[b]))
                .map(|i| i as f64 * FRAME_S)
                .unwrap_or(piece.start + max_len);
            push_window(&mut out, Region { start: piece.start, end: cut }, max_len, max_pause);
            piece.start = cut;
        }
        push_window(&mut out, piece, max_len, max_pause);
    }
    out
}

fn push_window(out: &mut Vec<Region>, r: Region, max_len: f64, max_pause: f64) {
    match out.last_mut() {
        Some(w) if r.start - w.end <= max_pause && r.end - w.start <= max_len => w.end = r.end,
        _ => out.push(r),
    }
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
    fn windows_respect_length_and_pauses() {
        let x = signal(&[(70.0, true)], 16000);
        let r = speech_regions(&x, 16000, 0.3);
        let w = windows(&x, 16000, &r, 28.0, 2.0);
        assert!(w.len() >= 3, "{w:?}");
        assert!(w.iter().all(|w| w.duration() <= 28.0 + 1e-9), "{w:?}");
        // Contiguous: nothing lost or doubled at the seams.
        for pair in w.windows(2) {
            assert!((pair[0].end - pair[1].start).abs() < 1e-9, "{w:?}");
        }
        let x = signal(&[(2.0, true), (5.0, false), (2.0, true)], 16000);
        let r = speech_regions(&x, 16000, 0.3);
        assert_eq!(windows(&x, 16000, &r, 28.0, 2.0).len(), 2, "a long pause starts a new window");
    }
}
