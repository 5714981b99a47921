//! The no-model engine: sentiment from a small English/Hinglish lexicon,
//! outcome from keywords of the template, quality from simple cues. Used when no
//! model is configured; recorded as `engine = heuristic`.

use serde_json::json;

use super::{sentiment_label, Analysis, Template};
use crate::asr::Transcript;

const POSITIVE: &[&str] = &[
    "thank",
    "thanks",
    "great",
    "good",
    "sure",
    "yes",
    "okay",
    "ok",
    "happy",
    "fine",
    "perfect",
    "appreciate",
    "shukriya",
    "dhanyavad",
    "theek",
    "accha",
    "haan",
    "welcome",
];
const NEGATIVE: &[&str] = &[
    "no",
    "not",
    "never",
    "angry",
    "problem",
    "complaint",
    "late",
    "wrong",
    "bad",
    "cannot",
    "can't",
    "won't",
    "refuse",
    "harass",
    "stop",
    "nahi",
    "nahin",
    "galat",
    "pareshan",
    "dispute",
];

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

/// Lexicon score in −1…1.
pub fn sentiment(text: &str) -> f64 {
    let w = words(text);
    let pos = w.iter().filter(|x| POSITIVE.contains(&x.as_str())).count() as f64;
    let neg = w.iter().filter(|x| NEGATIVE.contains(&x.as_str())).count() as f64;
    if pos + neg == 0.0 {
        0.0
    } else {
        ((pos - neg) / (pos + neg + 2.0)).clamp(-1.0, 1.0)
    }
}

fn outcome(tpl: &Template, text: &str) -> String {
    let t = text.to_lowercase();
    let rules: &[(&str, &[&str])] = &[
        ("promise_to_pay", &["will pay", "i'll pay", "pay on", "pay by", "kar dunga", "de dunga"]),
        ("paid_already", &["already paid", "paid last"]),
        ("dispute", &["dispute", "not my loan", "never took"]),
        ("refusal", &["won't pay", "will not pay", "refuse"]),
        ("wrong_number", &["wrong number"]),
        ("callback_requested", &["call back", "call me later", "callback"]),
        ("cancellation", &["cancel"]),
        ("reschedule", &["reschedule", "tomorrow instead", "another day"]),
        ("address_issue", &["address"]),
        ("order_confirmed", &["confirm the order", "order is confirmed", "confirmed"]),
        ("resolved", &["resolved", "fixed", "working now"]),
        ("escalated", &["escalate", "supervisor", "manager"]),
    ];
    for (label, keys) in rules {
        if tpl.outcomes.iter().any(|o| o == label) && keys.iter().any(|k| t.contains(k)) {
            return label.to_string();
        }
    }
    "other".into()
}

pub fn analyze(t: &Transcript, tpl: &Template) -> Analysis {
    let text = t.full_text();
    let score = sentiment(&text);
    let mut per = serde_json::Map::new();
    let mut speakers: Vec<String> = t.segments.iter().filter_map(|s| s.speaker.clone()).collect();
    speakers.sort();
    speakers.dedup();
    for who in &speakers {
        let said: Vec<&str> =
            t.segments.iter().filter(|s| s.speaker.as_deref() == Some(who)).map(|s| s.text.as_str()).collect();
        let s = sentiment(&said.join(" "));
        per.insert(who.clone(), json!({"score": s, "label": sentiment_label(s)}));
    }
    let first = t.segments.iter().take(3).map(|s| s.text.to_lowercase()).collect::<Vec<_>>().join(" ");
    let greeting = if ["good morning", "good afternoon", "good evening", "hello", "namaste", "calling from"]
        .iter()
        .any(|g| first.contains(g))
    {
        5.0
    } else {
        2.0
    };
    let out = outcome(tpl, &text);
    let resolution = if out == "other" { 2.0 } else { 4.0 };
    let items =
        json!({"greeting": greeting, "clarity": 3.0, "empathy": 3.0, "resolution": resolution, "compliance": 5.0});
    let quality = [greeting, 3.0, 3.0, resolution, 5.0].iter().map(|x| x / 5.0 * 20.0).sum::<f64>();
    let summary = match t.segments.first() {
        Some(_) => format!(
            "{} call of {} segments; outcome {out} (keyword heuristic, no language model).",
            tpl.name.replace('_', " "),
            t.segments.len()
        ),
        None => "No speech was recognised.".to_string(),
    };
    Analysis {
        summary,
        sentiment_score: score,
        sentiment_label: sentiment_label(score).into(),
        speaker_sentiment: serde_json::Value::Object(per),
        quality_items: items,
        quality_score: quality,
        topics: Vec::new(),
        outcome: out,
        outcome_details: serde_json::Value::Null,
        action_items: Vec::new(),
        compliance_flags: Vec::new(),
        engine: "heuristic".into(),
        model: "lexicon-v1".into(),
        seconds: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexicon_and_keywords() {
        assert!(sentiment("Thank you, that is great, okay") > 0.25);
        assert!(sentiment("No, I will not pay, stop calling, this is wrong") < -0.25);
        assert_eq!(sentiment("The account number is twelve"), 0.0);
        let tpl = Template::builtin("loan_collection").unwrap();
        assert_eq!(outcome(&tpl, "Okay, I will pay on Friday"), "promise_to_pay");
        assert_eq!(outcome(&tpl, "Sorry, wrong number"), "wrong_number");
        assert_eq!(outcome(&tpl, "hmm"), "other");
    }
}
