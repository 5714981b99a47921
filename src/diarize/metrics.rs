//! Per-speaker call metrics, the figures call-analytics products show: talk
//! time, share of talk, words per minute, turns, interruptions, longest
//! monologue; and for the call: silence (non-talk) time, longest silence and the
//! first-response latency. Written as JSON to `ai_call_analysis.speaker_metrics`.
//!
//! Definitions. Talk time is the union of a speaker's segments. A turn is a run
//! of consecutive segments by one speaker (segments in start order). An
//! interruption is a segment that starts while another speaker's segment is
//! still going and more than 0.3 s before it ends (overlap, not a back-channel
//! at the very end); it is counted for the speaker who starts. The longest
//! monologue is the longest turn, from its first start to its last end. Silence
//! is the call's duration minus the union of all speech. First-response latency
//! is the time from the end of the first speaker's first turn to the start of
//! the next speaker's first segment.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::asr::Segment;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpeakerMetrics {
    pub talk_seconds: f64,
    pub talk_share: f64,
    pub words: usize,
    pub words_per_minute: f64,
    pub turns: usize,
    pub interruptions: usize,
    pub longest_monologue_seconds: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallMetrics {
    pub speakers: BTreeMap<String, SpeakerMetrics>,
    pub duration_seconds: f64,
    pub talk_seconds: f64,
    pub silence_seconds: f64,
    pub longest_silence_seconds: f64,
    pub overlap_seconds: f64,
    pub first_response_latency_seconds: Option<f64>,
}

/// Union length of intervals.
fn union(mut iv: Vec<(f64, f64)>) -> (f64, Vec<(f64, f64)>) {
    iv.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, f64)> = Vec::new();
    for (s, e) in iv {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    (merged.iter().map(|(s, e)| e - s).sum(), merged)
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Metrics of labelled `segments` in a call of `duration` seconds.
pub fn compute(segments: &[Segment], duration: f64) -> CallMetrics {
    let mut segs: Vec<&Segment> = segments.iter().filter(|s| s.end > s.start).collect();
    segs.sort_by(|a, b| a.start.total_cmp(&b.start));
    let who = |s: &Segment| s.speaker.clone().unwrap_or_else(|| "unknown".into());
    let mut m = CallMetrics { duration_seconds: round(duration), ..Default::default() };

    let mut by_speaker: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for s in &segs {
        by_speaker.entry(who(s)).or_default().push((s.start, s.end));
    }
    let (talk, merged) = union(segs.iter().map(|s| (s.start, s.end)).collect());
    m.talk_seconds = round(talk);
    m.silence_seconds = round((duration - talk).max(0.0));
    let mut longest_silence: f64 = merged.first().map_or(duration, |f| f.0);
    for pair in merged.windows(2) {
        longest_silence = longest_silence.max(pair[1].0 - pair[0].1);
    }
    if let Some(last) = merged.last() {
        longest_silence = longest_silence.max(duration - last.1);
    }
    m.longest_silence_seconds = round(longest_silence.max(0.0));
    let sum_individual: f64 = by_speaker.values().map(|iv| union(iv.clone()).0).sum();
    m.overlap_seconds = round((sum_individual - talk).max(0.0));

    for (name, iv) in &by_speaker {
        let t = union(iv.clone()).0;
        let words: usize = segs
            .iter()
            .filter(|s| &who(s) == name)
            .map(|s| if s.words.is_empty() { s.text.split_whitespace().count() } else { s.words.len() })
            .sum();
        m.speakers.insert(
            name.clone(),
            SpeakerMetrics {
                talk_seconds: round(t),
                talk_share: if sum_individual > 0.0 { round(t / sum_individual) } else { 0.0 },
                words,
                words_per_minute: if t > 0.0 { round(words as f64 / (t / 60.0)) } else { 0.0 },
                ..Default::default()
            },
        );
    }

    // Turns and monologues: runs of one speaker in start order.
    let mut i = 0;
    while i < segs.len() {
        let name = who(segs[i]);
        let start = segs[i].start;
        let mut end = segs[i].end;
        let mut j = i + 1;
        while j < segs.len() && who(segs[j]) == name {
            end = end.max(segs[j].end);
            j += 1;
        }
        let sm = m.speakers.get_mut(&name).unwrap();
        sm.turns += 1;
        sm.longest_monologue_seconds = round(sm.longest_monologue_seconds.max(end - start));
        i = j;
    }

    // Interruptions: starting while someone else is still talking.
    for (k, s) in segs.iter().enumerate() {
        let name = who(s);
        let interrupts = segs[..k].iter().any(|o| who(o) != name && o.start < s.start && o.end > s.start + 0.3);
        if interrupts {
            m.speakers.get_mut(&name).unwrap().interruptions += 1;
        }
    }

    if let Some(first) = segs.first() {
        let first_name = who(first);
        let run_end = segs.iter().take_while(|s| who(s) == first_name).map(|s| s.end).fold(first.end, f64::max);
        if let Some(reply) = segs.iter().find(|s| who(s) != first_name) {
            m.first_response_latency_seconds = Some(round((reply.start - run_end).max(0.0)));
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::Word;

    fn seg(start: f64, end: f64, who: &str, words: usize) -> Segment {
        Segment {
            start,
            end,
            text: vec!["w"; words].join(" "),
            words: (0..words)
                .map(|i| Word {
                    word: " w".into(),
                    start: start + i as f64 * 0.1,
                    end: start + i as f64 * 0.1 + 0.1,
                    probability: 1.0,
                })
                .collect(),
            confidence: 1.0,
            no_speech_probability: 0.0,
            speaker: Some(who.into()),
            channel: 0,
        }
    }

    #[test]
    fn a_small_call_adds_up() {
        // agent 0-4 and 4.5-6 (one turn), customer 7-10, agent 9-12 (starts while the customer talks).
        let s = vec![
            seg(0.0, 4.0, "agent", 10),
            seg(4.5, 6.0, "agent", 5),
            seg(7.0, 10.0, "customer", 9),
            seg(9.0, 12.0, "agent", 6),
        ];
        let m = compute(&s, 15.0);
        let a = &m.speakers["agent"];
        let c = &m.speakers["customer"];
        assert_eq!((a.turns, c.turns), (2, 1));
        assert_eq!((a.interruptions, c.interruptions), (1, 0));
        assert!((a.talk_seconds - 8.5).abs() < 1e-9 && (c.talk_seconds - 3.0).abs() < 1e-9);
        assert!((a.longest_monologue_seconds - 6.0).abs() < 1e-9);
        assert!((c.words_per_minute - 180.0).abs() < 1e-9);
        assert!((m.talk_seconds - 10.5).abs() < 1e-9);
        assert!((m.silence_seconds - 4.5).abs() < 1e-9);
        assert!((m.longest_silence_seconds - 3.0).abs() < 1e-9);
        assert!((m.overlap_seconds - 1.0).abs() < 1e-9);
        assert_eq!(m.first_response_latency_seconds, Some(1.0));
        assert!((a.talk_share + c.talk_share - 1.0).abs() < 1e-3);
    }

    #[test]
    fn empty_call_is_all_silence() {
        let m = compute(&[], 30.0);
        assert_eq!(m.silence_seconds, 30.0);
        assert_eq!(m.longest_silence_seconds, 30.0);
        assert!(m.speakers.is_empty() && m.first_response_latency_seconds.is_none());
    }
}
