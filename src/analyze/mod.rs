//! Call analysis: summary, sentiment (overall and per speaker), a quality score
//! from a documented rubric, topics, an outcome from the template's labels, and
//! action items. Three engines behind one type:
//!
//! - [`llm::LlmProcess`]: llama.cpp in the `callscribe-llm` process (started once,
//!   model loaded once, JSON lines, a deadline per request, restarted when it dies);
//! - [`http::OpenAiHttp`]: an OpenAI-compatible endpoint (llama-server, Ollama, vLLM);
//! - [`heuristic`]: no model at all (lexicon sentiment, keyword outcomes), recorded
//!   as `engine = heuristic` so nobody mistakes it for a model's work.
//!
//! Whatever the engine says is validated here ([`validate`]) against the schema
//! built from the template ([`template::Template::schema`]); the quality total and
//! the sentiment labels are computed in code from the parts, never trusted.

pub mod heuristic;
pub mod http;
pub mod llm;
pub mod template;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::asr::Transcript;
pub use template::Template;

/// The quality rubric: five items, each scored 0–5 by the engine, each worth 20
/// points. `quality_score = Σ item / 5 × 20` (0–100), computed here.
pub const RUBRIC: &[(&str, &str)] = &[
    ("greeting", "greeted the customer and identified themself and the company"),
    ("clarity", "spoke clearly, explained the purpose and the next steps"),
    ("empathy", "listened, acknowledged the customer's situation, stayed polite"),
    ("resolution", "reached a concrete outcome or next step"),
    ("compliance", "no threats, no abusive language, no disclosure to third parties, no false claims"),
];

/// Sentiment scores run from −1 (very negative) to +1 (very positive) inside
/// callscribe and are stored ×10, on the app's −10…+10 scale. The five labels of
/// the app's enum: `very_negative` at or below −0.6 (−6 stored), `negative` at or
/// below −0.2 (−2), `neutral` below +0.2, `positive` below +0.6, else
/// `very_positive`.
pub fn sentiment_label(score: f64) -> &'static str {
    if score <= -0.6 {
        "very_negative"
    } else if score <= -0.2 {
        "negative"
    } else if score < 0.2 {
        "neutral"
    } else if score < 0.6 {
        "positive"
    } else {
        "very_positive"
    }
}

/// A finished analysis, as written to `ai_call_analysis`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub summary: String,
    pub sentiment_score: f64,
    pub sentiment_label: String,
    /// Per speaker: score and label.
    pub speaker_sentiment: Value,
    /// Per rubric item 0–5.
    pub quality_items: Value,
    /// 0–100, from `quality_items`.
    pub quality_score: f64,
    pub topics: Vec<String>,
    pub outcome: String,
    /// Outcome details the template asks for (e.g. promise amount and date).
    pub outcome_details: Value,
    pub action_items: Vec<String>,
    /// Compliance problems the engine found (threats, abuse, disclosure).
    pub compliance_flags: Vec<String>,
    pub engine: String,
    pub model: String,
    /// Seconds spent by the engine.
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// The engine could not be reached or died; a retry may succeed.
    #[error("analysis engine unavailable: {0}")]
    Unavailable(String),
    /// The engine answered, but not with what the schema demands.
    #[error("analysis output invalid: {0}")]
    Invalid(String),
    #[error("analysis aborted")]
    Aborted,
}

impl AnalyzeError {
    pub fn is_transient(&self) -> bool {
        matches!(self, AnalyzeError::Unavailable(_) | AnalyzeError::Aborted)
    }
}

/// Which engine analyses calls (one per process: its size does not matter).
#[allow(clippy::large_enum_variant)]
pub enum Engine {
    Llm(llm::LlmProcess),
    Http(http::OpenAiHttp),
    Heuristic,
}

/// The analysis stage: an engine, a template, and how to fit long calls.
pub struct Analyzer {
    pub engine: Engine,
    pub template: Template,
    pub summary_language: String,
    /// Transcript characters per request; longer calls are summarised in parts
    /// and the parts' notes analysed together (never truncated silently).
    pub max_prompt_chars: usize,
}

impl Analyzer {
    pub fn engine_name(&self) -> &'static str {
        match self.engine {
            Engine::Llm(_) => "llama.cpp",
            Engine::Http(_) => "openai-http",
            Engine::Heuristic => "heuristic",
        }
    }

    fn model_name(&self) -> String {
        match &self.engine {
            Engine::Llm(p) => p.model_name().to_string(),
            Engine::Http(h) => h.model_name().to_string(),
            Engine::Heuristic => "lexicon-v1".into(),
        }
    }

    /// The transcript bytes one request may carry. `max_prompt_chars` assumes
    /// about 3.5 bytes a token, true of English; a byte-level tokenizer spends
    /// about a token per byte of Devanagari. With llama.cpp the model's own
    /// tokenizer counts this transcript, and the budget follows its real bytes per
    /// token (with a 10 % margin); other engines keep the estimate.
    async fn prompt_budget(&self, text: &str) -> usize {
        let Engine::Llm(p) = &self.engine else { return self.max_prompt_chars };
        if text.is_empty() {
            return self.max_prompt_chars;
        }
        match p.count_tokens(text).await {
            Ok(tokens) if tokens > 0 => {
                let budget_tokens = self.max_prompt_chars as f64 / 3.5;
                let bytes_per_token = text.len() as f64 / tokens as f64;
                let budget = (budget_tokens * bytes_per_token * 0.9) as usize;
                tracing::debug!(tokens, bytes = text.len(), budget, "prompt budget from the model's tokenizer");
                budget.max(200)
            }
            Ok(_) => self.max_prompt_chars,
            Err(e) => {
                tracing::warn!(error = %e, "could not count tokens; using the estimate");
                self.max_prompt_chars
            }
        }
    }

    async fn ask(&self, system: &str, user: &str, schema: &Value) -> Result<Value, AnalyzeError> {
        match &self.engine {
            Engine::Llm(p) => Ok(p.request(system, user, schema).await?.json),
            Engine::Http(h) => h.request(system, user, schema).await,
            Engine::Heuristic => Err(AnalyzeError::Invalid("the heuristic engine takes no prompts".into())),
        }
    }

    /// Analyse one transcript.
    pub async fn analyze(&self, t: &Transcript) -> Result<Analysis, AnalyzeError> {
        let started = std::time::Instant::now();
        if matches!(self.engine, Engine::Heuristic) {
            return Ok(heuristic::analyze(t, &self.template));
        }
        let mut speakers: Vec<String> = t.segments.iter().filter_map(|s| s.speaker.clone()).collect();
        speakers.sort();
        speakers.dedup();
        let mut lines = transcript_lines(t);
        if lines.is_empty() {
            lines.push("(no speech was recognised)".into());
        }
        // Longer than one request allows: take notes part by part, and again on the
        // notes if they are still too long (never truncated silently).
        let max_chars = self.prompt_budget(&lines.join("\n")).await;
        let mut rounds = 0;
        while lines.join("\n").len() > max_chars {
            if rounds == 4 {
                return Err(AnalyzeError::Invalid("the call is too long to analyse in this context window".into()));
            }
            let parts = chunk_lines(&lines, max_chars);
            let n = parts.len();
            let note_len = (max_chars / (n + 1)).clamp(120, 800);
            let schema = serde_json::json!({
                "type": "object",
                "properties": {"notes": {"type": "string", "minLength": 1, "maxLength": note_len}},
                "required": ["notes"], "additionalProperties": false
            });
            let system = format!("You take notes on part of {}. Answer with one JSON object.", self.template.context);
            let mut notes = Vec::with_capacity(n);
            for (i, part) in parts.into_iter().enumerate() {
                let user = format!(
                    "Part {} of {n}:\n{part}\n\nWrite short notes: who said what that matters (promises, amounts, \
                     dates, disputes, complaints, the agent's conduct), with speaker labels.",
                    i + 1
                );
                let v = self.ask(&system, &user, &schema).await?;
                let note = v["notes"].as_str().ok_or_else(|| AnalyzeError::Invalid("part notes missing".into()))?;
                notes.push(format!("Part {} of {n}: {}", i + 1, note.trim()));
            }
            tracing::info!(parts = n, round = rounds + 1, "long transcript taken in parts");
            lines = notes;
            rounds += 1;
        }
        let material = if rounds == 0 {
            lines.join("\n")
        } else {
            format!("(notes on a long call, in order)\n{}", lines.join("\n"))
        };
        let (system, user) = self.template.prompts(&material, &self.summary_language);
        let schema = self.template.schema(&speakers);
        let v = self.ask(&system, &user, &schema).await?;
        let mut a = validate(&v, &self.template, &speakers)?;
        a.engine = self.engine_name().into();
        a.model = self.model_name();
        a.seconds = started.elapsed().as_secs_f64();
        Ok(a)
    }
}

/// Split transcript lines into parts of at most `max` characters (a single
/// longer line is split at a character boundary).
pub fn chunk_lines(lines: &[String], max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    for line in lines {
        let mut line = line.as_str();
        while line.len() > max {
            let mut cut = max;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            if !cur.is_empty() {
                parts.push(std::mem::take(&mut cur));
            }
            parts.push(line[..cut].to_string());
            line = &line[cut..];
        }
        if !cur.is_empty() && cur.len() + 1 + line.len() > max {
            parts.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push('\n');
        }
        cur.push_str(line);
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
}

/// The transcript as the model reads it: `[mm:ss] speaker: text` lines.
pub fn transcript_lines(t: &Transcript) -> Vec<String> {
    t.segments
        .iter()
        .map(|s| {
            let secs = s.start.max(0.0) as u64;
            format!(
                "[{:02}:{:02}] {}: {}",
                secs / 60,
                secs % 60,
                s.speaker.as_deref().unwrap_or("speaker"),
                s.text.trim()
            )
        })
        .collect()
}

/// Check `v` against the template's schema and build the [`Analysis`]; the
/// quality total and sentiment labels are computed here.
pub fn validate(v: &Value, tpl: &Template, speakers: &[String]) -> Result<Analysis, AnalyzeError> {
    let bad = |m: String| AnalyzeError::Invalid(m);
    let obj = v.as_object().ok_or_else(|| bad(format!("expected a JSON object, got {}", kind(v))))?;
    let text = |k: &str| -> Result<String, AnalyzeError> {
        obj.get(k)
            .and_then(Value::as_str)
            .map(|s| s.trim().to_string())
            .ok_or_else(|| bad(format!("`{k}` must be a string")))
    };
    let list = |k: &str| -> Result<Vec<String>, AnalyzeError> {
        let a = obj.get(k).and_then(Value::as_array).ok_or_else(|| bad(format!("`{k}` must be a list of strings")))?;
        a.iter()
            .map(|x| x.as_str().map(|s| s.trim().to_string()).ok_or_else(|| bad(format!("`{k}` must hold strings"))))
            .filter(|r| r.as_ref().map_or(true, |s| !s.is_empty()))
            .collect()
    };
    // Engines rate sentiment as integers −100…100 (grammars enforce integer
    // ranges, not real ones); stored as −1…1.
    let score = |x: Option<&Value>, what: &str| -> Result<f64, AnalyzeError> {
        let s = x.and_then(Value::as_f64).ok_or_else(|| bad(format!("`{what}` must be a number")))?;
        if !(-100.0..=100.0).contains(&s) {
            return Err(bad(format!("`{what}` = {s} is outside −100…100")));
        }
        Ok(s / 100.0)
    };
    let summary = text("summary")?;
    if summary.is_empty() {
        return Err(bad("`summary` is empty".into()));
    }
    let outcome = text("outcome")?;
    if !tpl.outcomes.iter().any(|o| o == &outcome) {
        return Err(bad(format!("`outcome` {outcome:?} is not one of {:?}", tpl.outcomes)));
    }
    let sentiment_score = score(obj.get("sentiment"), "sentiment")?;
    let mut speaker_sentiment = serde_json::Map::new();
    if let Some(per) = obj.get("speaker_sentiment").and_then(Value::as_object) {
        for (who, s) in per {
            let s = score(Some(s), &format!("speaker_sentiment.{who}"))?;
            speaker_sentiment.insert(who.clone(), serde_json::json!({"score": s, "label": sentiment_label(s)}));
        }
    } else if !speakers.is_empty() {
        return Err(bad("`speaker_sentiment` must be an object of scores".into()));
    }
    let q = obj.get("quality").and_then(Value::as_object).ok_or_else(|| bad("`quality` must be an object".into()))?;
    let mut items = serde_json::Map::new();
    let mut total = 0.0;
    for (item, _) in RUBRIC {
        let x =
            q.get(*item).and_then(Value::as_f64).ok_or_else(|| bad(format!("`quality.{item}` must be a number")))?;
        if !(0.0..=5.0).contains(&x) {
            return Err(bad(format!("`quality.{item}` = {x} is outside 0…5")));
        }
        items.insert(item.to_string(), serde_json::json!(x));
        total += x / 5.0 * 20.0;
    }
    Ok(Analysis {
        summary,
        sentiment_score,
        sentiment_label: sentiment_label(sentiment_score).to_string(),
        speaker_sentiment: Value::Object(speaker_sentiment),
        quality_items: Value::Object(items),
        quality_score: (total * 10.0).round() / 10.0,
        topics: list("topics")?,
        outcome,
        outcome_details: obj.get("outcome_details").cloned().unwrap_or(Value::Null),
        action_items: list("action_items")?,
        compliance_flags: list("compliance_flags")?,
        ..Default::default()
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer() -> Value {
        serde_json::json!({
            "summary": "The customer promised to pay on Friday.",
            "sentiment": 40,
            "speaker_sentiment": {"agent": 50, "customer": -30},
            "quality": {"greeting": 5, "clarity": 4, "empathy": 3, "resolution": 5, "compliance": 5},
            "topics": ["payment", "late fee"],
            "outcome": "promise_to_pay",
            "outcome_details": {"amount": "5000", "date": "Friday"},
            "action_items": ["send payment link"],
            "compliance_flags": []
        })
    }

    #[test]
    fn valid_answers_are_scored_in_code() {
        let tpl = Template::builtin("loan_collection").unwrap();
        let a = validate(&answer(), &tpl, &["agent".into(), "customer".into()]).unwrap();
        assert_eq!(a.quality_score, 88.0);
        assert_eq!(a.sentiment_label, "positive");
        assert_eq!(a.speaker_sentiment["customer"]["label"], "negative");
        assert_eq!(sentiment_label(0.0), "neutral");
        assert_eq!(sentiment_label(-0.25), "negative");
        assert_eq!(sentiment_label(-0.6), "very_negative");
        assert_eq!(sentiment_label(0.6), "very_positive");
        assert_eq!(sentiment_label(0.19), "neutral");
    }

    #[test]
    fn long_transcripts_are_cut_into_parts_not_truncated() {
        let lines: Vec<String> = (0..50).map(|i| format!("[00:{i:02}] agent: line number {i}")).collect();
        let parts = chunk_lines(&lines, 200);
        assert!(parts.len() > 5);
        assert!(parts.iter().all(|p| p.len() <= 200));
        assert_eq!(parts.join("\n"), lines.join("\n"), "nothing lost or doubled");
    }

    #[test]
    fn invalid_answers_say_what_is_wrong() {
        let tpl = Template::builtin("loan_collection").unwrap();
        let sp = ["agent".to_string()];
        let mut v = answer();
        v["outcome"] = "won_lottery".into();
        assert!(validate(&v, &tpl, &sp).unwrap_err().to_string().contains("won_lottery"));
        let mut v = answer();
        v["quality"]["empathy"] = 9.into();
        assert!(validate(&v, &tpl, &sp).unwrap_err().to_string().contains("quality.empathy"));
        let mut v = answer();
        v["sentiment"] = "great".into();
        assert!(validate(&v, &tpl, &sp).unwrap_err().to_string().contains("sentiment"));
        assert!(validate(&serde_json::json!([1, 2]), &tpl, &sp).unwrap_err().to_string().contains("a list"));
    }
}
