//! The Laravel app's shapes and scales (shared/LARAVEL-CONTRACT.md): what a
//! finished job looks like in the columns the app reads. Pure functions from our
//! types to the app's JSON and numbers, so every backend writes the same bytes.
//!
//! | column | shape |
//! |---|---|
//! | `ai_call_transcriptions.segments` | `[{segment_id, text, start, end, speaker, speaker_id, confidence, words: [{word, start, end, confidence}]}]` |
//! | `ai_call_transcriptions.confidence_score` | mean word probability, 0–1, 4 decimals |
//! | `ai_call_analysis.sentiment_score` | −10…+10, 2 decimals ([`sentiment_score`]) |
//! | `ai_call_analysis.quality_score` | 0–100, 2 decimals; `quality_zone` from it ([`quality_zone`]) |
//! | `key_topics` | `[{name, key, confidence, segment_ids, quote, timestamp_start, timestamp_end}]` |
//! | `action_items` | `[{description, priority, segment_ids, quote, …}]` |
//! | `compliance_flags` | `[{type, severity, issue, quote, segment_ids, …}]` |
//! | `score_impacts` | `[{impact (−5…+5), category, reason, segment_ids, quote, …}]` |
//! | `agent_actions` | `[{action, segment_ids, quote, …}]` |
//! | `speaker_metrics` | `{agent: {talk_time_seconds, talk_time_percentage, word_count, average_pace_wpm, interruptions, silence_percentage, …}, supporter: {…}}` |
//!
//! Evidence: every finding carries the `segment_ids` it cites, a `quote` that
//! [`crate::analyze::evidence::check`] found in those segments, and
//! `timestamp_start`/`timestamp_end` taken from the segments (a finding whose
//! quote is not there was dropped before it got here).

use serde_json::{json, Value};

use crate::analyze::Analysis;
use crate::asr::Transcript;
use crate::diarize::metrics::CallMetrics;

/// Round to `d` decimals.
pub fn round(x: f64, d: i32) -> f64 {
    let f = 10f64.powi(d);
    (x * f).round() / f
}

/// Our −1…1 sentiment on the app's −10…+10 `decimal(4,2)` scale.
pub fn sentiment_score(score: f64) -> f64 {
    round((score * 10.0).clamp(-10.0, 10.0), 2)
}

/// 0–100 with 2 decimals (`decimal(5,2)`).
pub fn quality_score(score: f64) -> f64 {
    round(score.clamp(0.0, 100.0), 2)
}

/// 0–1 with 4 decimals (`decimal(5,4)`).
pub fn unit_score(x: f64) -> f64 {
    if x.is_finite() {
        round(x.clamp(0.0, 1.0), 4)
    } else {
        0.0
    }
}

/// Whole seconds for the app's `integer` columns.
pub fn whole_seconds(s: f64) -> i32 {
    if s.is_finite() {
        s.round().clamp(0.0, i32::MAX as f64) as i32
    } else {
        0
    }
}

/// The zone of the app's other worker: Excellent ≥ 90, Good ≥ 75, Satisfactory ≥
/// 65, Below Average ≥ 50, else Poor.
pub fn quality_zone(score: f64) -> &'static str {
    match score {
        s if s >= 90.0 => "Excellent",
        s if s >= 75.0 => "Good",
        s if s >= 65.0 => "Satisfactory",
        s if s >= 50.0 => "Below Average",
        _ => "Poor",
    }
}

/// Cut `s` to at most `max` characters (on a character boundary), so that a
/// non-strict MySQL never truncates it silently.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// The `segments` JSON column.
pub fn segments(t: &Transcript) -> Value {
    let speakers = speaker_ids(t);
    Value::Array(
        t.segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let speaker = s.speaker.clone().unwrap_or_else(|| "unknown".into());
                json!({
                    "segment_id": i,
                    "text": s.text.trim(),
                    "start": round(s.start, 3),
                    "end": round(s.end, 3),
                    "speaker": speaker,
                    "speaker_id": speakers.iter().position(|x| *x == speaker).unwrap_or(0),
                    "channel": s.channel,
                    "confidence": unit_score(s.confidence),
                    "words": s.words.iter().map(|w| json!({
                        "word": w.word.trim(),
                        "start": round(w.start, 3),
                        "end": round(w.end, 3),
                        "confidence": unit_score(w.probability),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// Speakers in order of first appearance.
fn speaker_ids(t: &Transcript) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in &t.segments {
        let who = s.speaker.clone().unwrap_or_else(|| "unknown".into());
        if !out.contains(&who) {
            out.push(who);
        }
    }
    out
}

/// The `speaker_metrics` JSON column: the app's keys per speaker, then ours.
/// `silence_percentage` is the share of the call in which nobody speaks (the same
/// for every speaker: silence belongs to the call, not to one party).
pub fn speaker_metrics(m: &CallMetrics) -> Value {
    let silence = if m.duration_seconds > 0.0 { m.silence_seconds / m.duration_seconds * 100.0 } else { 0.0 };
    let mut out = serde_json::Map::new();
    for (who, s) in &m.speakers {
        out.insert(
            who.clone(),
            json!({
                "talk_time_seconds": round(s.talk_seconds, 2),
                "talk_time_percentage": round(s.talk_share * 100.0, 1),
                "word_count": s.words,
                "average_pace_wpm": round(s.words_per_minute, 1),
                "interruptions": s.interruptions,
                "silence_percentage": round(silence, 1),
                "turns": s.turns,
                "longest_monologue_seconds": round(s.longest_monologue_seconds, 2),
            }),
        );
    }
    Value::Object(out)
}

/// `{speaker: {score, label}}` with our −1…1 scores on the app's −10…+10 scale.
pub fn speaker_sentiment(v: &Value) -> Value {
    let Some(per) = v.as_object() else { return Value::Null };
    Value::Object(
        per.iter()
            .map(|(who, s)| {
                let score = s["score"].as_f64().unwrap_or(0.0);
                (who.clone(), json!({"score": sentiment_score(score), "label": crate::analyze::sentiment_label(score)}))
            })
            .collect(),
    )
}

/// Call-level figures that are not per speaker (kept in `transcription_details`).
pub fn call_figures(m: &CallMetrics) -> Value {
    json!({
        "duration_seconds": round(m.duration_seconds, 2),
        "talk_seconds": round(m.talk_seconds, 2),
        "silence_seconds": round(m.silence_seconds, 2),
        "longest_silence_seconds": round(m.longest_silence_seconds, 2),
        "overlap_seconds": round(m.overlap_seconds, 2),
        "first_response_latency_seconds": m.first_response_latency_seconds.map(|x| round(x, 2)),
    })
}

/// Lower-case content words (3+ letters, not a stop word) of `s`.
fn content_words(s: &str) -> Vec<String> {
    const STOP: &[&str] = &[
        "the", "and", "for", "with", "that", "this", "you", "your", "are", "was", "were", "will", "have", "has", "had",
        "not", "but", "from", "they", "them", "their", "our", "can", "about", "into", "call", "customer", "agent",
    ];
    s.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 3 && !STOP.contains(&w.as_str()))
        .collect()
}

/// How many segments of `t` mention `name` (share a content word with it).
fn mentions(t: Option<&Transcript>, name: &str) -> usize {
    let Some(t) = t else { return 0 };
    let want = content_words(name);
    t.segments
        .iter()
        .filter(|s| {
            let have = content_words(&s.text);
            want.iter().any(|w| have.iter().any(|h| h == w || (h.len() > 4 && h.starts_with(w.as_str()))))
        })
        .count()
}

/// A machine key for a label: lower case, words joined by `_`.
pub fn key(label: &str) -> String {
    let mut out = String::new();
    for w in label.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(&w.to_lowercase());
    }
    out
}

/// The evidence keys every finding carries.
fn with_evidence(mut v: Value, e: &crate::analyze::Evidence) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("segment_ids".into(), json!(e.segment_ids));
        o.insert("quote".into(), json!(e.quote));
        o.insert("timestamp_start".into(), json!(round(e.timestamp_start, 3)));
        o.insert("timestamp_end".into(), json!(round(e.timestamp_end, 3)));
    }
    v
}

/// The `key_topics` JSON column. `confidence` is the share of the call's
/// segments that mention the topic, scaled so one mention is at least 0.5 (an
/// engine's topic carries no confidence of its own; its quote is checked).
pub fn key_topics(a: &Analysis, t: Option<&Transcript>) -> Value {
    let n = t.map(|t| t.segments.len()).unwrap_or(0).max(1) as f64;
    Value::Array(
        a.topics
            .iter()
            .map(|topic| {
                let m = mentions(t, &topic.name).max(1);
                let confidence = unit_score(0.5 + 0.5 * (m as f64 / n));
                with_evidence(
                    json!({"name": topic.name, "key": key(&topic.name), "confidence": confidence}),
                    &topic.evidence,
                )
            })
            .collect(),
    )
}

/// The `action_items` JSON column.
pub fn action_items(a: &Analysis) -> Value {
    Value::Array(
        a.action_items
            .iter()
            .map(|x| with_evidence(json!({"description": x.description, "priority": x.priority}), &x.evidence))
            .collect(),
    )
}

/// The `compliance_flags` JSON column.
pub fn compliance_flags(a: &Analysis) -> Value {
    Value::Array(
        a.compliance_flags
            .iter()
            .map(|f| with_evidence(json!({"type": f.kind, "severity": f.severity, "issue": f.issue}), &f.evidence))
            .collect(),
    )
}

/// The `score_impacts` JSON column (the other worker's evidence list).
pub fn score_impacts(a: &Analysis) -> Value {
    Value::Array(
        a.score_impacts
            .iter()
            .map(|i| {
                with_evidence(json!({"impact": i.impact, "category": i.category, "reason": i.reason}), &i.evidence)
            })
            .collect(),
    )
}

/// The `agent_actions` JSON column (the other worker's evidence list).
pub fn agent_actions(a: &Analysis) -> Value {
    Value::Array(a.agent_actions.iter().map(|x| with_evidence(json!({"action": x.action}), &x.evidence)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::{Segment, Word};

    fn seg(speaker: &str, start: f64, text: &str) -> Segment {
        Segment {
            start,
            end: start + 2.0,
            text: text.into(),
            words: text
                .split_whitespace()
                .enumerate()
                .map(|(i, w)| Word {
                    word: w.into(),
                    start: start + i as f64 * 0.3,
                    end: start + i as f64 * 0.3 + 0.25,
                    probability: 0.9,
                })
                .collect(),
            confidence: 0.9,
            speaker: Some(speaker.into()),
            ..Default::default()
        }
    }

    fn call() -> Transcript {
        Transcript {
            segments: vec![
                seg("agent", 0.0, "Good morning, this is Asha from City Finance about your loan."),
                seg("supporter", 2.5, "I lost my job, I can pay five thousand on Friday."),
                seg("agent", 5.0, "Thank you, I will send a payment link for Friday."),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn scales_fit_the_app_columns() {
        assert_eq!(sentiment_score(0.456), 4.56);
        assert_eq!(sentiment_score(-3.0), -10.0);
        assert_eq!(quality_score(100.004), 100.0);
        assert_eq!(unit_score(1.2), 1.0);
        assert_eq!(unit_score(f64::NAN), 0.0);
        assert_eq!(whole_seconds(12.6), 13);
        assert_eq!(quality_zone(90.0), "Excellent");
        assert_eq!(quality_zone(74.99), "Satisfactory");
        assert_eq!(quality_zone(49.0), "Poor");
        assert_eq!(clip("héllo", 2), "hé");
    }

    #[test]
    fn segments_carry_the_app_keys() {
        let v = segments(&call());
        let s = &v[1];
        for k in ["segment_id", "text", "start", "end", "speaker", "speaker_id", "confidence", "words"] {
            assert!(s.get(k).is_some(), "{k}");
        }
        assert_eq!(s["speaker"], "supporter");
        assert_eq!(s["speaker_id"], 1);
        assert_eq!(v[2]["speaker_id"], 0);
        assert_eq!(s["words"][0]["word"], "I");
        assert!(s["words"][0].get("confidence").is_some());
    }

    #[test]
    fn findings_carry_their_evidence_in_the_apps_keys() {
        use crate::analyze::{ComplianceFlag, Evidence, Topic};
        let e = |ids: Vec<usize>, quote: &str| Evidence {
            segment_ids: ids,
            quote: quote.into(),
            timestamp_start: 2.5,
            timestamp_end: 4.5,
        };
        let a = Analysis {
            topics: vec![Topic { name: "Payment link".into(), evidence: e(vec![2], "a payment link") }],
            compliance_flags: vec![ComplianceFlag {
                kind: "threat".into(),
                severity: "critical".into(),
                issue: "police".into(),
                evidence: e(vec![1], "I lost my job"),
            }],
            ..Default::default()
        };
        let t = call();
        let topics = key_topics(&a, Some(&t));
        assert_eq!(topics[0]["key"], "payment_link");
        assert_eq!(topics[0]["segment_ids"], json!([2]));
        assert_eq!(topics[0]["quote"], "a payment link");
        assert_eq!(topics[0]["timestamp_start"], 2.5);
        assert_eq!(topics[0]["confidence"], 0.6667, "1 mention in 3 segments");
        let flags = compliance_flags(&a);
        for k in ["type", "severity", "issue", "quote", "segment_ids"] {
            assert!(flags[0].get(k).is_some(), "{k}");
        }
        assert_eq!(flags[0]["severity"], "critical");
        assert_eq!(score_impacts(&a), json!([]));
    }
}
