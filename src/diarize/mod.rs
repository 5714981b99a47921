//! Who spoke when. Stereo calls (Exotel and Twilio can record each leg on its
//! own channel) are labelled by channel. Mono calls get one of two methods:
//!
//! - [`Method::Gaps`]: what the Python worker did — the speaker changes at every
//!   pause longer than a threshold;
//! - [`Method::Cluster`] (default): with both networks configured,
//!   [`by_segmentation`]: the speaker segmentation network ([`segment`]) says who
//!   speaks when inside overlapping 10 s windows, the voice encoder ([`voice`])
//!   describes each window's speakers, and average-linkage clustering links them
//!   across the call. Without the segmentation network, [`by_clustering`]: voiced
//!   regions, cut into pieces of at most 3 s, are described by the voice encoder
//!   or by their spectral envelope and median pitch ([`features`]), and clustered
//!   by duration-weighted k-means into as many voices as stand apart
//!   ([`Thresholds`]). Either way each word takes a speaker, and segments are
//!   split where the speaker changes.
//!
//! [`der`] scores either against a reference; `benches/diarization.rs` shows
//! which is better on two-voice calls. [`metrics`] turns labelled segments into
//! the per-speaker figures of `ai_call_analysis.speaker_metrics`.

pub mod campplus;
pub mod der;
pub mod features;
pub mod metrics;
pub mod segment;
pub mod voice;

use crate::asr::{join_words, Segment, Transcript};
use crate::audio::vad::{self, Region};

/// How mono calls are diarized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Gaps,
    Cluster,
}

/// Merge per-channel transcripts into one, speakers named by `labels[channel]`.
pub fn label_channels(mut per_channel: Vec<Transcript>, labels: &[String]) -> Transcript {
    let mut out = per_channel.first().cloned().unwrap_or_default();
    out.segments.clear();
    out.processing_seconds = 0.0;
    out.vad_seconds = 0.0;
    out.dropped_no_speech = 0;
    out.repetitions_cut = 0;
    out.full_context_retries = 0;
    // The language of the leg that spoke most, with its probability.
    per_channel.sort_by_key(|t| std::cmp::Reverse(t.segments.iter().map(|s| s.words.len()).sum::<usize>()));
    if let Some(main) = per_channel.first() {
        out.language = main.language.clone();
        out.language_probability = main.language_probability;
    }
    for t in per_channel {
        out.processing_seconds += t.processing_seconds;
        out.vad_seconds += t.vad_seconds;
        out.dropped_no_speech += t.dropped_no_speech;
        out.repetitions_cut += t.repetitions_cut;
        out.full_context_retries += t.full_context_retries;
        for mut s in t.segments {
            s.speaker = Some(labels.get(s.channel).cloned().unwrap_or_else(|| format!("channel_{}", s.channel + 1)));
            out.segments.push(s);
        }
    }
    out.segments.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.channel.cmp(&b.channel)));
    out
}

/// Name the voices of a mono call: whoever speaks first is the agent
/// (`labels[0]`), the other voice the supporter (`labels[1]`). In these calls
/// the recording starts when the agent's line is connected, and the agent opens
/// with the greeting on outbound and inbound calls alike (the first segment of
/// every test call here is the agent's). A third voice keeps its own name.
pub fn name_by_opening(segments: &mut [Segment], labels: &[String]) {
    let mut order: Vec<String> = Vec::new();
    for s in segments.iter() {
        if let Some(who) = &s.speaker {
            if !order.contains(who) {
                order.push(who.clone());
            }
        }
    }
    for s in segments.iter_mut() {
        if let Some(who) = &s.speaker {
            let i = order.iter().position(|x| x == who).unwrap_or(0);
            if let Some(name) = labels.get(i) {
                s.speaker = Some(name.clone());
            }
        }
    }
}

/// Gap-based: a new speaker turn after every pause of at least `gap` seconds,
/// alternating between two speakers.
pub fn by_gaps(segments: &mut [Segment], gap: f64) {
    let mut speaker = 0usize;
    let mut last_end: Option<f64> = None;
    for s in segments.iter_mut() {
        if let Some(end) = last_end {
            if s.start - end >= gap {
                speaker = 1 - speaker;
            }
        }
        s.speaker = Some(format!("speaker_{}", speaker + 1));
        last_end = Some(s.end);
    }
}

/// The most voices a mono recording is split into (`speakers.max`).
pub const MAX_SPEAKERS: usize = 6;

/// Two clusters at least this far apart ([`features::separation`]) are taken
/// for two voices; closer ones are one voice split by what was said. Chosen on
/// the bench's one- and two-voice calls (`benches/diarization.rs`; README:
/// Diarization): one voice split in two measured 3.29–4.40, two voices 3.68–19.57
/// (the two below 4.5 are espeak variants 0–1 semitone apart).
pub const DISTINCT_VOICES: f64 = 4.5;

/// The same for a third and further cluster (only with `speakers.max` ≥ 3): a
/// two-voice call split in three measured 4.1–18.1, three voices 4.9–13.6, so
/// this finds a third voice only where it stands well apart.
pub const MORE_VOICES: f64 = 9.0;

/// What the clustering decided: the number of voices and, for each number of
/// clusters tried from 2 up, the separation of its two closest clusters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Clustering {
    pub speakers: usize,
    pub separations: Vec<f64>,
    /// Who speaks when by the diarization's own reckoning, words aside
    /// (segmentation-led clustering only): `(start s, end s, voice)`, one run
    /// per voice, overlapping where two people talk at once. This is what
    /// pyannote scores; the words take their speakers from the same frames.
    pub turns: Vec<(f64, f64, usize)>,
}

/// How far apart clusters must be to count as voices: the second voice, and
/// each further one, by one measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub measure: Measure,
    pub second: f64,
    pub more: f64,
}

/// How the distance between two clusters is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// [`features::separation`]: centroid distance over the pooled spread.
    Separation,
    /// [`features::cosine_distance`] of the centroids (voice embeddings).
    Cosine,
}

/// For the hand-made features ([`DISTINCT_VOICES`], [`MORE_VOICES`]).
pub const FEATURE_THRESHOLDS: Thresholds =
    Thresholds { measure: Measure::Separation, second: DISTINCT_VOICES, more: MORE_VOICES };

/// For the voice encoder's embeddings (see [`voice`]): the cosine distance of
/// the two closest cluster centroids.
pub const ENCODER_THRESHOLDS: Thresholds =
    Thresholds { measure: Measure::Cosine, second: ENCODER_DISTINCT_VOICES, more: ENCODER_MORE_VOICES };

/// Chosen on the bench's MBROLA calls (real speakers' diphones, 8 kHz µ-law;
/// README: Diarization): one voice split in two measured 0.04–0.06, two voices
/// 0.13–0.35.
pub const ENCODER_DISTINCT_VOICES: f64 = 0.1;

/// The same for a third voice: a two-voice call split in three measured
/// 0.06–0.12, three voices 0.18–0.26.
pub const ENCODER_MORE_VOICES: f64 = 0.15;

/// Labels for pieces: at least `min` and at most `max` clusters, one more only
/// while every pair of clusters is `thresholds` apart.
pub fn choose_speakers(
    x: &[Vec<f64>],
    weights: &[f64],
    min: usize,
    max: usize,
    thresholds: Thresholds,
) -> (Vec<usize>, Clustering) {
    let n = x.len();
    let mut labels = vec![0usize; n];
    let mut info = Clustering { speakers: 1, ..Default::default() };
    for k in 2..=max.min(MAX_SPEAKERS).min(n) {
        let l = features::k_means(x, weights, k);
        if !(0..k).all(|c| l.contains(&c)) {
            break;
        }
        let closest = (0..k)
            .flat_map(|a| (a + 1..k).map(move |b| (a, b)))
            .map(|(a, b)| match thresholds.measure {
                Measure::Separation => features::separation(x, weights, &l, a, b),
                Measure::Cosine => features::cosine_distance(x, weights, &l, a, b),
            })
            .fold(f64::MAX, f64::min);
        info.separations.push(closest);
        let threshold = if k == 2 { thresholds.second } else { thresholds.more };
        if k <= min || closest >= threshold {
            labels = l;
            info.speakers = k;
        } else {
            break;
        }
    }
    (labels, info)
}

/// Clustering: label each piece of speech, then every word by its midpoint.
/// Speaker 1 is whoever speaks first; between `min` and `max` speakers. Pieces
/// are described by the voice `encoder` when given, else by hand-made features.
pub fn by_clustering(
    samples: &[f32],
    rate: u32,
    segments: &mut Vec<Segment>,
    min: usize,
    max: usize,
    encoder: Option<&voice::VoiceEncoder>,
) -> Clustering {
    if max <= 1 {
        // One voice by configuration: nothing to describe (this took 0.55 s of a
        // 4.5 s clip's 1.1 s in the debug build).
        segments.iter_mut().for_each(|s| s.speaker = Some("speaker_1".into()));
        return Clustering { speakers: 1, ..Default::default() };
    }
    let regions = vad::speech_regions(samples, rate, 0.1);
    let pieces = split_pieces(&regions, 3.0);
    if pieces.is_empty() {
        segments.iter_mut().for_each(|s| s.speaker = Some("speaker_1".into()));
        return Clustering { speakers: 1, ..Default::default() };
    }
    let weights: Vec<f64> = pieces.iter().map(|p| p.duration()).collect();
    let (points, thresholds) = match encoder.filter(|_| max > 1) {
        Some(enc) => {
            let slice = |p: &Region| {
                let a = ((p.start * rate as f64) as usize).min(samples.len());
                let b = ((p.end * rate as f64) as usize).clamp(a, samples.len());
                &samples[a..b]
            };
            let speech: Vec<&[f32]> = pieces.iter().map(slice).collect();
            let e = enc.embed_many(&speech);
            (e.into_iter().map(|v| v.into_iter().map(f64::from).collect()).collect(), ENCODER_THRESHOLDS)
        }
        None => {
            let feats: Vec<Vec<f64>> = pieces.iter().map(|p| features::describe(samples, rate, p)).collect();
            (features::standardise(&feats), FEATURE_THRESHOLDS)
        }
    };
    let (raw, info) = choose_speakers(&points, &weights, min.max(1), max.max(1), thresholds);
    tracing::debug!(speakers = info.speakers, separations = ?info.separations, "mono speakers");
    // The piece containing t, else the nearest one (pieces are in time order and
    // do not overlap: a binary search, not a scan per word).
    let speaker_at = |t: f64| -> usize {
        let i = pieces.partition_point(|p| p.end < t);
        let gap = |p: &Region| if t < p.start { p.start - t } else { (t - p.end).max(0.0) };
        let candidates = [i.checked_sub(1), Some(i).filter(|&i| i < pieces.len())];
        candidates
            .into_iter()
            .flatten()
            .min_by(|&a, &b| gap(&pieces[a]).total_cmp(&gap(&pieces[b])))
            .map_or(0, |k| raw[k])
    };
    label_words(segments, |a, b| speaker_at((a + b) / 2.0));
    info
}

/// Seconds between the starts of successive segmentation windows (each 10 s
/// long): every moment is seen by `10 / SEGMENTATION_STEP` windows. pyannote
/// uses 1 s; on the bench's real recordings (README: Diarization) 5 s cost
/// little accuracy and a fifth of the time.
pub const SEGMENTATION_STEP: f64 = 5.0;

/// A window's speaker with less speech than this (seconds) is not described
/// by its voice for the clustering, only matched to a voice found elsewhere.
pub const MIN_VOICE_SECONDS: f64 = 0.5;

/// Window speakers are merged into one voice while the average cosine distance
/// between their voice embeddings (average linkage) stays below this. On the
/// bench's AMI training excerpts (trn00–09) DER hardly moved between 0.10 and
/// 0.25; pyannote's tutorial pair stands 0.15 apart at its own 16 kHz, and every
/// MBROLA monologue stays one voice at 0.15 (README: Diarization).
pub const LINK_THRESHOLD: f64 = 0.15;

/// Segmentation-led clustering, pyannote.audio 3's recipe with our voice
/// encoder: the segmentation network says who speaks when inside overlapping
/// 10 s windows (up to three speakers each, overlap included); each window's
/// speakers are described by the voice encoder on their own speech and
/// clustered across the call by average-linkage agglomeration (merging below
/// `threshold`, the worker's [`LINK_THRESHOLD`], between `min` and `max` voices); each window's speakers are then matched to
/// the voices one to one, the windows' activity is summed per voice, and every
/// word takes the voice most active over its span. 16 kHz audio.
pub fn by_segmentation(
    samples: &[f32],
    segments: &mut Vec<Segment>,
    min: usize,
    max: usize,
    segmenter: &segment::Segmenter,
    encoder: &dyn voice::Embedder,
    threshold: f64,
) -> Clustering {
    use segment::{speaks, FRAMES, FRAME_CENTRE, FRAME_HOP, LOCAL};
    let one = |segments: &mut Vec<Segment>| {
        segments.iter_mut().for_each(|s| s.speaker = Some("speaker_1".into()));
        Clustering { speakers: 1, ..Default::default() }
    };
    if max <= 1 || samples.is_empty() {
        return one(segments);
    }
    let n = samples.len();
    let (starts, classes) = segment_windows(samples, segmenter);
    // Each window's speakers and the samples where they speak.
    let frame_span = |s: usize, f: usize| {
        let c = s + f * FRAME_HOP + FRAME_CENTRE;
        (c.saturating_sub(FRAME_HOP / 2)).min(n)..(c + FRAME_HOP / 2).min(n)
    };
    // Described a few windows at a time, so that an hour-long call never holds
    // every window's speech at once (at most EMBED_WINDOWS × 3 × 10 s here).
    const EMBED_WINDOWS: usize = 16;
    let mut units: Vec<(usize, usize)> = Vec::new();
    let mut seconds: Vec<f64> = Vec::new();
    let mut embeddings: Vec<Vec<f64>> = Vec::new();
    for first in (0..starts.len()).step_by(EMBED_WINDOWS) {
        let mut speech: Vec<Vec<f32>> = Vec::new();
        for c in first..(first + EMBED_WINDOWS).min(starts.len()) {
            for k in 0..LOCAL {
                let mut audio = Vec::new();
                for (f, &class) in classes[c].iter().enumerate() {
                    if speaks(class, k) {
                        audio.extend_from_slice(&samples[frame_span(starts[c], f)]);
                    }
                }
                if audio.len() >= 1_600 {
                    units.push((c, k));
                    seconds.push(audio.len() as f64 / 16_000.0);
                    speech.push(audio);
                }
            }
        }
        let refs: Vec<&[f32]> = speech.iter().map(Vec::as_slice).collect();
        embeddings.extend(encoder.embed_many(&refs).into_iter().map(|v| v.into_iter().map(f64::from).collect()));
    }
    if units.is_empty() {
        return one(segments);
    }
    let strong: Vec<usize> = (0..units.len()).filter(|&i| seconds[i] >= MIN_VOICE_SECONDS).collect();
    let strong = if strong.is_empty() { (0..units.len()).collect() } else { strong };
    let points: Vec<Vec<f64>> = strong.iter().map(|&i| embeddings[i].clone()).collect();
    let (labels, mut info) = agglomerate(&points, min.max(1), max.min(MAX_SPEAKERS), threshold);
    let k = info.speakers;
    let centroids: Vec<Vec<f64>> = (0..k)
        .map(|j| {
            let mut m = vec![0.0; points[0].len()];
            for (p, _) in points.iter().zip(&labels).filter(|(_, &l)| l == j) {
                m.iter_mut().zip(p).for_each(|(m, v)| *m += v);
            }
            m
        })
        .collect();
    // Match each window's speakers to voices, one to one, and add up activity
    // per voice on a common frame grid.
    let grid = n / FRAME_HOP + FRAMES + 1;
    let mut score = vec![0f32; grid * k];
    let mut seen = vec![0f32; grid];
    let weight = frame_weights();
    for (c, (&s, cls)) in starts.iter().zip(&classes).enumerate() {
        let g0 = (s + FRAME_HOP / 2) / FRAME_HOP;
        seen[g0..g0 + FRAMES].iter_mut().zip(&weight).for_each(|(v, w)| *v += w);
        let locals: Vec<(usize, usize)> =
            units.iter().enumerate().filter(|(_, u)| u.0 == c).map(|(i, u)| (u.1, i)).collect();
        for (local, voice) in match_voices(&locals, &embeddings, &centroids) {
            for (f, &class) in cls.iter().enumerate() {
                if speaks(class, local) {
                    score[(g0 + f) * k + voice] += weight[f];
                }
            }
        }
    }
    for (g, &v) in seen.iter().enumerate() {
        if v > 0.0 {
            score[g * k..(g + 1) * k].iter_mut().for_each(|x| *x /= v);
        }
    }
    tracing::debug!(
        speakers = k,
        windows = starts.len(),
        units = units.len(),
        embedding = encoder.name(),
        "mono speakers by segmentation"
    );
    info.turns = turns(&score, k, n);
    // A word's voice: the most active over its frames, else the voice of the
    // nearest frame where anyone speaks (found for every frame in two passes, so
    // words in long stretches the network heard as silence cost no search).
    let frame = |t: f64| (((t * 16_000.0) as usize).saturating_sub(FRAME_CENTRE) / FRAME_HOP).min(grid - 1);
    let best = |a: usize, b: usize| -> Option<usize> {
        let mut total = vec![0f32; k];
        for g in a..=b {
            total.iter_mut().zip(&score[g * k..(g + 1) * k]).for_each(|(t, s)| *t += s);
        }
        (0..k).filter(|&j| total[j] > 0.0).max_by(|&x, &y| total[x].total_cmp(&total[y]))
    };
    let own: Vec<Option<usize>> = (0..grid).map(|g| best(g, g)).collect();
    let mut before: Vec<Option<(usize, usize)>> = vec![None; grid];
    let mut last = None;
    for (g, v) in own.iter().enumerate() {
        last = v.map(|v| (g, v)).or(last);
        before[g] = last;
    }
    let mut nearest = vec![0usize; grid];
    let mut next: Option<(usize, usize)> = None;
    for g in (0..grid).rev() {
        next = own[g].map(|v| (g, v)).or(next);
        nearest[g] = match (before[g], next) {
            (Some((b, vb)), Some((a, va))) => {
                if g - b <= a - g {
                    vb
                } else {
                    va
                }
            }
            (Some((_, v)), None) | (None, Some((_, v))) => v,
            (None, None) => 0,
        };
    }
    label_words(segments, |a, b| {
        let (fa, fb) = (frame(a), frame(b).max(frame(a)));
        best(fa, fb).unwrap_or(nearest[(fa + fb) / 2])
    });
    info
}

/// How much each frame of a window counts when overlapping windows are added
/// up: a Hamming window over the frames, so a frame near a window's edge (less
/// context on one side) weighs less than the same moment in the middle of
/// another window. Against equal weights on the bench's real recordings
/// (README: Benchmarks): two-speaker DER 31.0 % against 31.7 %, the tutorial
/// conversation 12.7 % against 15.7 %.
fn frame_weights() -> Vec<f32> {
    let n = segment::FRAMES;
    (0..n).map(|f| (0.54 - 0.46 * (std::f64::consts::TAU * f as f64 / (n - 1) as f64).cos()) as f32).collect()
}

/// The segmentation network over `samples` (16 kHz): 10 s windows every
/// [`SEGMENTATION_STEP`] s, the last ending with the audio; each window's first
/// sample and its frames' powerset classes.
fn segment_windows(samples: &[f32], segmenter: &segment::Segmenter) -> (Vec<usize>, Vec<[u8; segment::FRAMES]>) {
    use segment::{FRAME_HOP, WINDOW};
    let n = samples.len();
    let step = ((SEGMENTATION_STEP * 16_000.0) as usize).max(FRAME_HOP);
    let mut starts: Vec<usize> = (0..).map(|i| i * step).take_while(|&s| s + WINDOW < n).collect();
    starts.push(n.saturating_sub(WINDOW));
    starts.dedup();
    let windows: Vec<&[f32]> = starts.iter().map(|&s| &samples[s..(s + WINDOW).min(n)]).collect();
    let classes = segmenter.classify(&windows);
    (starts, classes)
}

/// Neural voice activity (pyannote's segmentation network as a VAD, as
/// pyannote's own voice-activity pipeline uses it): a frame is speech when the
/// network hears anyone in at least half the windows that cover it. The runs
/// are kept, padded and merged as [`vad::speech_regions`] keeps its own (at
/// least 60 ms, 150 ms each side, gaps under `min_gap` seconds closed), so the
/// two compare like for like. 16 kHz audio.
pub fn speech_by_segmentation(samples: &[f32], segmenter: &segment::Segmenter, min_gap: f64) -> Vec<Region> {
    use segment::{FRAMES, FRAME_HOP};
    let n = samples.len();
    if n == 0 {
        return Vec::new();
    }
    let (starts, classes) = segment_windows(samples, segmenter);
    let grid = n / FRAME_HOP + FRAMES + 1;
    let mut score = vec![0f32; grid];
    // Every window's frames count alike here: the Hamming weights of the speaker
    // votes missed more speech as a VAD (9.3 % against 7.9 % on the bench's
    // real recordings).
    let mut seen = vec![0u16; grid];
    for (&s, cls) in starts.iter().zip(&classes) {
        let g0 = (s + FRAME_HOP / 2) / FRAME_HOP;
        for (f, &class) in cls.iter().enumerate() {
            seen[g0 + f] += 1;
            score[g0 + f] += f32::from(class != 0);
        }
    }
    score.iter_mut().zip(&seen).filter(|(_, &v)| v > 1).for_each(|(x, &v)| *x /= v as f32);
    let runs = turns(&score, 1, n).into_iter().filter(|(a, b, _)| b - a >= 0.06).map(|(a, b, _)| (a, b));
    vad::pad_and_merge(runs, n as f64 / 16_000.0, min_gap)
}

/// Runs of frames where a voice is active in at least half the windows that
/// saw them (`score`: `frames × k` averaged activity), as `(start s, end s,
/// voice)` within `n` samples, ordered by start.
fn turns(score: &[f32], k: usize, n: usize) -> Vec<(f64, f64, usize)> {
    use segment::{FRAME_CENTRE, FRAME_HOP};
    let seconds = |g: usize| ((g * FRAME_HOP + FRAME_CENTRE).saturating_sub(FRAME_HOP / 2)).min(n) as f64 / 16_000.0;
    let frames = score.len() / k.max(1);
    let mut out = Vec::new();
    for voice in 0..k {
        let mut start = None;
        for g in 0..=frames {
            let on = g < frames && score[g * k + voice] >= 0.5;
            match (on, start) {
                (true, None) => start = Some(g),
                (false, Some(a)) => {
                    if seconds(g) > seconds(a) {
                        out.push((seconds(a), seconds(g), voice));
                    }
                    start = None;
                }
                _ => {}
            }
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// Average-linkage agglomerative clustering of unit vectors by cosine distance:
/// merge the closest pair while more than `max` clusters remain or the pair is
/// closer than `threshold`, never below `min` clusters. Labels are 0-based.
fn agglomerate(x: &[Vec<f64>], min: usize, max: usize, threshold: f64) -> (Vec<usize>, Clustering) {
    let n = x.len();
    let cos = |a: &[f64], b: &[f64]| {
        let dot: f64 = a.iter().zip(b).map(|(u, v)| u * v).sum();
        let norm = |v: &[f64]| v.iter().map(|u| u * u).sum::<f64>().sqrt().max(1e-12);
        1.0 - dot / (norm(a) * norm(b))
    };
    // Distances between live clusters, and each cluster's members.
    let mut d: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|j| cos(&x[i], &x[j])).collect()).collect();
    let mut members: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    let mut alive: Vec<usize> = (0..n).collect();
    let mut stopped_at = f64::NAN;
    while alive.len() > min.max(1) {
        let mut closest = (f64::MAX, 0, 0);
        for (ai, &a) in alive.iter().enumerate() {
            for &b in &alive[ai + 1..] {
                if d[a][b] < closest.0 {
                    closest = (d[a][b], a, b);
                }
            }
        }
        let (dist, a, b) = closest;
        if dist >= threshold && alive.len() <= max {
            stopped_at = dist;
            break;
        }
        // Lance–Williams update for average linkage.
        let (na, nb) = (members[a].len() as f64, members[b].len() as f64);
        for &c in &alive {
            if c != a && c != b {
                let v = (na * d[a][c] + nb * d[b][c]) / (na + nb);
                d[a][c] = v;
                d[c][a] = v;
            }
        }
        let moved = std::mem::take(&mut members[b]);
        members[a].extend(moved);
        alive.retain(|&c| c != b);
    }
    let mut labels = vec![0usize; n];
    for (j, &c) in alive.iter().enumerate() {
        for &i in &members[c] {
            labels[i] = j;
        }
    }
    let separations = if stopped_at.is_nan() { Vec::new() } else { vec![stopped_at] };
    (labels, Clustering { speakers: alive.len(), separations, ..Default::default() })
}

/// One window's speakers (`(local speaker, unit index)`) matched to voices:
/// the one-to-one assignment with the greatest total cosine similarity (a
/// window has at most three speakers; with fewer voices than speakers, the
/// extra speakers take their nearest voice).
fn match_voices(locals: &[(usize, usize)], embeddings: &[Vec<f64>], centroids: &[Vec<f64>]) -> Vec<(usize, usize)> {
    let k = centroids.len();
    let sim = |u: usize, j: usize| {
        let (a, b) = (&embeddings[u], &centroids[j]);
        let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        dot / (b.iter().map(|y| y * y).sum::<f64>().sqrt().max(1e-12))
    };
    let nearest = |u: usize| (0..k).max_by(|&a, &b| sim(u, a).total_cmp(&sim(u, b))).unwrap_or(0);
    if locals.len() > k {
        return locals.iter().map(|&(l, u)| (l, nearest(u))).collect();
    }
    // All injective maps of at most three speakers into k voices.
    fn go(
        i: usize,
        k: usize,
        cur: &mut Vec<usize>,
        best: &mut (f64, Vec<usize>),
        score: &dyn Fn(&[usize]) -> f64,
        len: usize,
    ) {
        if i == len {
            let s = score(cur);
            if s > best.0 {
                *best = (s, cur.clone());
            }
            return;
        }
        for j in 0..k {
            if !cur.contains(&j) {
                cur.push(j);
                go(i + 1, k, cur, best, score, len);
                cur.pop();
            }
        }
    }
    let score = |m: &[usize]| m.iter().zip(locals).map(|(&j, &(_, u))| sim(u, j)).sum::<f64>();
    let mut best = (f64::MIN, Vec::new());
    go(0, k, &mut Vec::new(), &mut best, &score, locals.len());
    locals.iter().zip(best.1).map(|(&(l, _), j)| (l, j)).collect()
}

/// Give every word the speaker `speaker_of(start, end)` names (0-based), split
/// segments where the speaker changes, and number the speakers by first word.
fn label_words(segments: &mut Vec<Segment>, speaker_of: impl Fn(f64, f64) -> usize) {
    let mut order: Vec<usize> = Vec::new();
    let mut name = |l: usize| {
        let i = order.iter().position(|&o| o == l).unwrap_or_else(|| {
            order.push(l);
            order.len() - 1
        });
        format!("speaker_{}", i + 1)
    };
    let mut out = Vec::with_capacity(segments.len());
    for s in segments.drain(..) {
        if s.words.is_empty() {
            let mut s = s;
            s.speaker = Some(name(speaker_of(s.start, s.end)));
            out.push(s);
            continue;
        }
        // Split the segment where its words change speaker.
        let mut run: Vec<crate::asr::Word> = Vec::new();
        let mut run_speaker: Option<String> = None;
        let flush = |run: &mut Vec<crate::asr::Word>, spk: &Option<String>, out: &mut Vec<Segment>, tmpl: &Segment| {
            if run.is_empty() {
                return;
            }
            let words = std::mem::take(run);
            let confidence = words.iter().map(|w| w.probability).sum::<f64>() / words.len() as f64;
            out.push(Segment {
                start: words[0].start,
                end: words[words.len() - 1].end,
                text: join_words(&words),
                words,
                confidence,
                no_speech_probability: tmpl.no_speech_probability,
                speaker: spk.clone(),
                channel: tmpl.channel,
            });
        };
        for w in s.words.iter() {
            let spk = Some(name(speaker_of(w.start, w.end)));
            if run_speaker.is_some() && run_speaker != spk {
                flush(&mut run, &run_speaker, &mut out, &s);
            }
            run_speaker = spk;
            run.push(w.clone());
        }
        flush(&mut run, &run_speaker, &mut out, &s);
    }
    *segments = out;
}

/// Cut regions into pieces of at most `max` seconds.
fn split_pieces(regions: &[Region], max: f64) -> Vec<Region> {
    let mut out = Vec::new();
    for r in regions {
        let n = (r.duration() / max).ceil().max(1.0) as usize;
        let len = r.duration() / n as f64;
        for i in 0..n {
            out.push(Region { start: r.start + i as f64 * len, end: r.start + (i + 1) as f64 * len });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::Word;

    /// A buzzy voice: harmonics of f0 with a spectral tilt, plus a little noise.
    fn voice(f0: f32, tilt: f32, secs: f32, seed: u32) -> Vec<f32> {
        let mut r = seed.wrapping_mul(2_654_435_761).max(1);
        (0..(16000.0 * secs) as usize)
            .map(|i| {
                let t = i as f32 / 16000.0;
                r ^= r << 13;
                r ^= r >> 17;
                r ^= r << 5;
                let noise = (r as f32 / u32::MAX as f32 - 0.5) * 0.02;
                (1..14)
                    .map(|h| (2.0 * std::f32::consts::PI * f0 * h as f32 * t).sin() / (h as f32).powf(tilt))
                    .sum::<f32>()
                    * 0.05
                    + noise
            })
            .collect()
    }

    /// Turns of one or two voices: each turn varies its pitch (±6 %) and tilt
    /// (what is said changes the spectrum) around the voice's own.
    fn call(voices: &[(f32, f32)], turns: usize) -> Vec<f32> {
        let mut x = Vec::new();
        for k in 0..turns {
            let (f0, tilt) = voices[k % voices.len()];
            let vary = (k as f32 * 2.399).sin();
            x.extend(voice(f0 * (1.0 + 0.06 * vary), tilt + 0.35 * (k as f32 * 1.7).cos(), 2.5, k as u32 + 1));
            x.extend(std::iter::repeat_n(0.0, 8000));
        }
        x
    }

    #[test]
    fn two_voices_are_found_and_the_hints_are_obeyed() {
        // Whether one voice stays one is measured on speech, not on these tones
        // (benches/diarization.rs: a handful of identical synthetic pieces makes
        // any split look tight).
        let one = call(&[(120.0, 1.0)], 10);
        let two = call(&[(105.0, 0.9), (230.0, 1.8)], 10);
        let info = by_clustering(&two, 16000, &mut Vec::new(), 1, 2, None);
        assert_eq!(info.speakers, 2, "{info:?}");
        assert!(info.separations[0] >= DISTINCT_VOICES, "{info:?}");
        // max 1 never splits; min 2 always does; min = max = 3 gives three.
        assert_eq!(by_clustering(&two, 16000, &mut Vec::new(), 1, 1, None).speakers, 1);
        assert_eq!(by_clustering(&one, 16000, &mut Vec::new(), 2, 2, None).speakers, 2);
        assert_eq!(by_clustering(&two, 16000, &mut Vec::new(), 3, 3, None).speakers, 3);
    }

    #[test]
    fn agglomeration_stops_at_the_threshold_within_the_hints() {
        // Two tight groups of directions, 0.5 apart in cosine distance.
        let at = |deg: f64| vec![deg.to_radians().cos(), deg.to_radians().sin()];
        let x: Vec<Vec<f64>> = [0.0, 3.0, 6.0, 60.0, 63.0].iter().map(|&d| at(d)).collect();
        let (labels, info) = agglomerate(&x, 1, 4, 0.2);
        assert_eq!(info.speakers, 2, "{info:?}");
        assert_eq!(labels[0], labels[2]);
        assert_ne!(labels[0], labels[3]);
        assert_eq!(labels[3], labels[4]);
        // The closest remaining pair is the two groups, about 1 − cos 58.5°.
        assert!((info.separations[0] - 0.48).abs() < 0.02, "{info:?}");
        // max 1 merges everything; min 3 splits a group.
        assert_eq!(agglomerate(&x, 1, 1, 0.2).1.speakers, 1);
        assert_eq!(agglomerate(&x, 3, 4, 0.2).1.speakers, 3);
        // A threshold above the groups' distance merges them.
        assert_eq!(agglomerate(&x, 1, 4, 0.6).1.speakers, 1);
    }

    #[test]
    fn window_speakers_are_matched_to_voices_one_to_one() {
        let e = vec![vec![1.0, 0.0], vec![0.9, 0.1], vec![0.0, 1.0]];
        let centroids = vec![vec![0.0, 2.0], vec![2.0, 0.0]];
        // Both window speakers lean to voice 1; the second is nearer, so the first
        // takes voice 0 rather than sharing.
        let m = match_voices(&[(0, 1), (1, 0)], &e, &centroids);
        assert_eq!(m, vec![(0, 0), (1, 1)]);
        assert_eq!(match_voices(&[(2, 2)], &e, &centroids), vec![(2, 0)]);
        // More speakers than voices: each takes its nearest.
        assert_eq!(match_voices(&[(0, 0), (1, 2)], &e, &centroids[..1]), vec![(0, 0), (1, 0)]);
    }

    fn seg(start: f64, end: f64, channel: usize) -> Segment {
        Segment {
            start,
            end,
            text: "x".into(),
            words: vec![Word { word: " x".into(), start, end, probability: 0.9 }],
            confidence: 0.9,
            no_speech_probability: 0.0,
            speaker: None,
            channel,
        }
    }

    #[test]
    fn channels_name_speakers() {
        let a = Transcript {
            segments: vec![seg(0.0, 1.0, 0), seg(4.0, 5.0, 0)],
            language: "en".into(),
            ..Default::default()
        };
        let b = Transcript { segments: vec![seg(1.5, 3.0, 1)], language: "en".into(), ..Default::default() };
        let t = label_channels(vec![a, b], &["agent".to_string(), "customer".to_string()]);
        let who: Vec<_> = t.segments.iter().map(|s| s.speaker.clone().unwrap()).collect();
        assert_eq!(who, ["agent", "customer", "agent"]);
    }

    #[test]
    fn the_voice_that_opens_the_call_is_the_agent() {
        let mut s: Vec<Segment> = ["speaker_2", "speaker_1", "speaker_2", "speaker_3"]
            .iter()
            .map(|w| Segment { speaker: Some(w.to_string()), ..Default::default() })
            .collect();
        name_by_opening(&mut s, &["agent".to_string(), "supporter".to_string()]);
        let who: Vec<_> = s.iter().map(|s| s.speaker.clone().unwrap()).collect();
        assert_eq!(who, ["agent", "supporter", "agent", "speaker_3"]);
    }

    #[test]
    fn window_frames_weigh_less_at_the_edges() {
        let w = frame_weights();
        assert_eq!(w.len(), segment::FRAMES);
        assert!((w[0] - 0.08).abs() < 1e-6 && (w[w.len() - 1] - 0.08).abs() < 1e-6, "{} {}", w[0], w[w.len() - 1]);
        assert!((w[segment::FRAMES / 2] - 1.0).abs() < 1e-4);
        assert!(w.iter().zip(w.iter().rev()).all(|(a, b)| (a - b).abs() < 1e-6), "symmetric");
    }

    #[test]
    fn turns_are_runs_where_a_voice_is_half_active() {
        // Frames × [voice 0, voice 1]; 0.5 is active, 0.4 is not; both speak in frame 2.
        let score = [1.0, 0.0, 0.6, 0.0, 0.5, 1.0, 0.0, 1.0, 0.0, 0.5, 0.4, 0.0];
        let at = |g: usize| (g * segment::FRAME_HOP + segment::FRAME_CENTRE - segment::FRAME_HOP / 2) as f64 / 16_000.0;
        assert_eq!(turns(&score, 2, 1_000_000), vec![(at(0), at(3), 0), (at(2), at(5), 1)]);
        // Nothing past the end of the audio.
        assert_eq!(turns(&score, 2, 0), vec![]);
    }

    #[test]
    fn gaps_alternate_speakers() {
        let mut s = vec![seg(0.0, 1.0, 0), seg(1.2, 2.0, 0), seg(3.5, 4.0, 0), seg(4.1, 5.0, 0), seg(6.5, 7.0, 0)];
        by_gaps(&mut s, 1.0);
        let who: Vec<_> = s.iter().map(|s| s.speaker.clone().unwrap()).collect();
        assert_eq!(who, ["speaker_1", "speaker_1", "speaker_2", "speaker_2", "speaker_1"]);
    }
}
