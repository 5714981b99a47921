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
//! | `key_topics` | `[{name, key, confidence, segment_ids, quote}]` |
//! | `action_items` | `[{description, priority, segment_ids, quote}]` |
//! | `compliance_flags` | `[{type, severity, issue, quote, segment_ids}]` |
//! | `speaker_metrics` | `{agent: {talk_time_seconds, talk_time_percentage, word_count, average_pace_wpm, interruptions, silence_percentage, …}, supporter: {…}}` |
//!
//! Evidence: a finding's `segment_ids` are the segments that share the most
//! content words with it (at least one), and its `quote` is the best such
//! segment's text; a finding no segment supports gets `[]` and a NULL quote,
//! never an invented place.

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

/// The segments that support `finding`: those sharing the most content words with
/// it (ties kept, at most 3), and the best one's text as the quote.
pub fn evidence(t: Option<&Transcript>, finding: &str) -> (Vec<usize>, Option<String>) {
    let Some(t) = t else { return (Vec::new(), None) };
    let want = content_words(finding);
    if want.is_empty() {
        return (Vec::new(), None);
    }
    let scores: Vec<usize> = t
        .segments
        .iter()
        .map(|s| {
            let have = content_words(&s.text);
            want.iter().filter(|w| have.iter().any(|h| h == *w || (h.len() > 4 && h.starts_with(w.as_str())))).count()
        })
        .collect();
    let best = scores.iter().copied().max().unwrap_or(0);
    if best == 0 {
        return (Vec::new(), None);
    }
    let ids: Vec<usize> = scores.iter().enumerate().filter(|(_, s)| **s == best).map(|(i, _)| i).take(3).collect();
    let quote = t.segments[ids[0]].text.trim().to_string();
    (ids, Some(quote))
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

/// The `key_topics` JSON column. `confidence` is the share of the call's
/// segments that mention the topic, scaled so one mention is at least 0.5: an
/// engine's bare list carries no confidence of its own.
pub fn key_topics(a: &Analysis, t: Option<&Transcript>) -> Value {
    let n = t.map(|t| t.segments.len()).unwrap_or(0).max(1) as f64;
    Value::Array(
        a.topics
            .iter()
            .map(|name| {
                let (ids, quote) = evidence(t, name);
                let confidence = if ids.is_empty() { 0.0 } else { unit_score(0.5 + 0.5 * (ids.len() as f64 / n)) };
                json!({"name": name, "key": key(name), "confidence": confidence, "segment_ids": ids, "quote": quote})
            })
            .collect(),
    )
}

/// Words that make an action item urgent or unimportant.
fn priority_of(item: &str) -> &'static str {
    let l = item.to_lowercase();
    if ["urgent", "immediately", "today", "escalat", "legal", "complaint"].iter().any(|w| l.contains(w)) {
        "high"
    } else if ["consider", "optional", "if possible", "later"].iter().any(|w| l.contains(w)) {
        "low"
    } else {
        "medium"
    }
}

/// The `action_items` JSON column.
pub fn action_items(a: &Analysis, t: Option<&Transcript>) -> Value {
    Value::Array(
        a.action_items
            .iter()
            .map(|d| {
                let (ids, quote) = evidence(t, d);
                json!({"description": d, "priority": priority_of(d), "segment_ids": ids, "quote": quote})
            })
            .collect(),
    )
}

/// Severity of a compliance finding from its words (threats and disclosure to
/// third parties are the regulator's first concern in collections).
fn severity_of(flag: &str) -> &'static str {
    let l = flag.to_lowercase();
    if ["threat", "violence", "police", "arrest", "harass"].iter().any(|w| l.contains(w)) {
        "critical"
    } else if ["disclos", "third part", "abus", "false", "mislead"].iter().any(|w| l.contains(w)) {
        "high"
    } else if ["pressure", "rude", "identity", "verif"].iter().any(|w| l.contains(w)) {
        "medium"
    } else {
        "low"
    }
}

/// The `compliance_flags` JSON column.
pub fn compliance_flags(a: &Analysis, t: Option<&Transcript>) -> Value {
    Value::Array(
        a.compliance_flags
            .iter()
            .map(|issue| {
                let (ids, quote) = evidence(t, issue);
                json!({
                    "type": key(issue).split('_').take(3).collect::<Vec<_>>().join("_"),
                    "severity": severity_of(issue),
                    "issue": issue,
                    "quote": quote,
                    "segment_ids": ids,
                })
            })
            .collect(),
    )
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
    fn findings_point_at_the_segments_they_rest_on() {
        let a = Analysis {
            topics: vec!["payment link".into(), "job loss".into(), "weather".into()],
            action_items: vec!["Send the payment link today".into()],
            compliance_flags: vec!["Threatened the customer with police".into()],
            ..Default::default()
        };
        let t = call();
        let topics = key_topics(&a, Some(&t));
        assert_eq!(topics[0]["segment_ids"], json!([2]));
        assert_eq!(topics[0]["key"], "payment_link");
        assert_eq!(topics[1]["segment_ids"], json!([1]));
        assert_eq!(topics[2]["segment_ids"], json!([]));
        assert_eq!(topics[2]["quote"], Value::Null);
        let actions = action_items(&a, Some(&t));
        assert_eq!(actions[0]["priority"], "high");
        assert!(actions[0]["quote"].as_str().unwrap().contains("payment link"));
        let flags = compliance_flags(&a, Some(&t));
        assert_eq!(flags[0]["severity"], "critical");
        assert_eq!(flags[0]["segment_ids"], json!([]), "no segment mentions police: no invented evidence");
    }
}
