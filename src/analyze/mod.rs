//! Call analysis: summary, sentiment (overall and per speaker), topics, an
//! outcome from the template's labels, action items, agent actions, compliance
//! flags, score impacts and the rubric breakdown. Three engines behind one type:
//!
//! - [`llm::LlmProcess`]: llama.cpp in the `callscribe-llm` process (started once,
//!   model loaded once, JSON lines, a deadline per request, restarted when it dies);
//! - [`http::OpenAiHttp`]: an OpenAI-compatible endpoint (llama-server, Ollama, vLLM);
//! - [`heuristic`]: no model at all (lexicon sentiment, keyword outcomes and
//!   findings), recorded as `engine = heuristic`; it leaves NULL whatever it
//!   cannot judge.
//!
//! The settings for each call come from [`profile`] (global < campaign type <
//! direction < client). Whatever an engine says is validated here
//! ([`validate`]): the schema built from the settings, quotes checked against
//! the segments they cite ([`evidence`]), summaries that must be words of the
//! summary's language, topics that must not be dates or numbers, labels from the
//! configured lists. The quality score ([`quality_score`]) and the sentiment
//! labels are computed in code, never trusted.

pub mod evidence;
pub mod heuristic;
pub mod http;
pub mod llm;
pub mod profile;
pub mod template;

use std::sync::RwLock;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::asr::Transcript;
pub use evidence::Evidence;
pub use profile::{Applied, CallContext, TableLayer, Tiers};
pub use template::Template;

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

/// The quality score, 0–100, from the score impacts and compliance flags:
///
/// ```text
/// q = 75 + 2.5 × Σ positive impacts + 5 × Σ negative impacts
/// q = min(q, 49) with a critical compliance flag (Poor), min(q, 64) with a high one (Below Average)
/// quality = clamp(q, 0, 100)
/// ```
///
/// A call with nothing notable either way is Good (75). Two exemplary moments
/// (+5, +5) make it Excellent; one severe problem (−5) takes it to Below Average
/// (50), and a loss counts twice a gain of the same size. The zones are the
/// contract's (`quality_zone`: Excellent ≥ 90, Good ≥ 75, Satisfactory ≥ 65,
/// Below Average ≥ 50, else Poor).
pub fn quality_score(impacts: &[ScoreImpact], flags: &[ComplianceFlag]) -> f64 {
    let mut q = 75.0;
    for i in impacts {
        let x = i.impact.clamp(-5, 5) as f64;
        q += if x > 0.0 { 2.5 * x } else { 5.0 * x };
    }
    if flags.iter().any(|f| f.severity == "critical") {
        q = q.min(49.0);
    } else if flags.iter().any(|f| f.severity == "high") {
        q = q.min(64.0);
    }
    q.clamp(0.0, 100.0)
}

/// A topic of the call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Topic {
    pub name: String,
    #[serde(flatten)]
    pub evidence: Evidence,
}

/// A follow-up someone has to do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionItem {
    pub description: String,
    /// `high`, `medium` or `low`.
    pub priority: String,
    #[serde(flatten)]
    pub evidence: Evidence,
}

/// Something the agent did (greeting, verification, …), without judgement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentAction {
    pub action: String,
    #[serde(flatten)]
    pub evidence: Evidence,
}

/// A broken compliance rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComplianceFlag {
    #[serde(rename = "type")]
    pub kind: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    pub issue: String,
    #[serde(flatten)]
    pub evidence: Evidence,
}

/// A moment that raised or lowered the call's quality.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoreImpact {
    /// −5 … +5.
    pub impact: i32,
    /// A rubric key.
    pub category: String,
    pub reason: String,
    #[serde(flatten)]
    pub evidence: Evidence,
}

/// A finished analysis, as written to `ai_call_analysis`. `None` (NULL) where
/// the engine could not judge.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub summary: String,
    /// −1…1.
    pub sentiment_score: Option<f64>,
    /// Per speaker: score and label (NULL where not judged).
    pub speaker_sentiment: Value,
    /// Per rubric item 0–5 (NULL where not judged).
    pub quality_items: Value,
    /// 0–100, from the score impacts ([`quality_score`]).
    pub quality_score: Option<f64>,
    pub topics: Vec<Topic>,
    pub outcome: Option<String>,
    /// Outcome details the template asks for (e.g. promise amount and date).
    pub outcome_details: Value,
    pub action_items: Vec<ActionItem>,
    pub agent_actions: Vec<AgentAction>,
    pub compliance_flags: Vec<ComplianceFlag>,
    pub score_impacts: Vec<ScoreImpact>,
    /// Findings dropped because their quote is not in the segments they cite.
    pub dropped_findings: u32,
    /// The tiers that applied and the version of the settings.
    pub applied: Applied,
    pub engine: String,
    pub model: String,
    /// Seconds spent by the engine.
    pub seconds: f64,
}

impl Analysis {
    pub fn sentiment_label(&self) -> Option<&'static str> {
        self.sentiment_score.map(sentiment_label)
    }
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

/// Tokens of a request that are not the transcript: the instructions (rubric,
/// compliance rules, evidence rules, lists) and the chat template: 538 tokens
/// with the built-in template and SmolLM2's tokenizer (`tests/analysis.rs`
/// checks it stays 100 below this); the rest of the context, less the
/// answer's `max_tokens`, is the transcript's.
pub const PROMPT_RESERVE_TOKENS: usize = 1000;

/// How often the `ai_configs` rows are read again.
pub const TABLE_REFRESH: Duration = Duration::from_secs(60);

/// The analysis stage: an engine, the settings in tiers, and how to fit long calls.
pub struct Analyzer {
    pub engine: Engine,
    pub tiers: Tiers,
    /// BCP 47 locale of the summaries (`en-GB` for the app).
    pub locale: String,
    /// Transcript characters per request; longer calls are summarised in parts
    /// and the parts' notes analysed together (never truncated silently).
    pub max_prompt_chars: usize,
    /// Active rows of the shared `ai_configs` table, and when they were read.
    table: RwLock<(Option<Instant>, Vec<TableLayer>)>,
}

/// The language a locale names, for the prompt: `en-GB` → "British English".
pub fn summary_language(locale: &str) -> String {
    let l = locale.trim().replace('_', "-").to_lowercase();
    match l.as_str() {
        "en-gb" | "en-uk" => "British English".into(),
        "en-us" => "American English".into(),
        "en-in" => "Indian English".into(),
        "en" => "English".into(),
        _ => match l.split('-').next().unwrap_or("") {
            "hi" => "Hindi".into(),
            "mr" => "Marathi".into(),
            "ta" => "Tamil".into(),
            "te" => "Telugu".into(),
            "bn" => "Bengali".into(),
            "gu" => "Gujarati".into(),
            "kn" => "Kannada".into(),
            "ml" => "Malayalam".into(),
            "pa" => "Punjabi".into(),
            _ => "English".into(),
        },
    }
}

impl Analyzer {
    pub fn new(engine: Engine, template: Template, locale: &str, max_prompt_chars: usize) -> Analyzer {
        let tiers = Tiers { global: template.complete(), ..Default::default() };
        Analyzer::with_tiers(engine, tiers, locale, max_prompt_chars)
    }

    pub fn with_tiers(engine: Engine, tiers: Tiers, locale: &str, max_prompt_chars: usize) -> Analyzer {
        Analyzer { engine, tiers, locale: locale.to_string(), max_prompt_chars, table: RwLock::new((None, Vec::new())) }
    }

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
            Engine::Heuristic => "lexicon-v2".into(),
        }
    }

    /// Whether the `ai_configs` rows are due to be read again.
    pub fn table_stale(&self) -> bool {
        self.table.read().map(|t| t.0.is_none_or(|at| at.elapsed() >= TABLE_REFRESH)).unwrap_or(true)
    }

    /// Replace the `ai_configs` rows (read by the worker from the database).
    pub fn set_table(&self, rows: Vec<TableLayer>) {
        if let Ok(mut t) = self.table.write() {
            *t = (Some(Instant::now()), rows);
        }
    }

    /// Keep the rows held for another [`TABLE_REFRESH`] (the read failed: the
    /// table is not asked again at every claim).
    pub fn keep_table(&self) {
        if let Ok(mut t) = self.table.write() {
            t.0 = Some(Instant::now());
        }
    }

    /// The settings for a call with this context.
    pub fn settings(&self, ctx: &CallContext) -> (Template, Applied) {
        let table = self.table.read().map(|t| t.1.clone()).unwrap_or_default();
        self.tiers.select(ctx, &table)
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

    /// Analyse one transcript with the settings its context selects.
    pub async fn analyze(&self, t: &Transcript, ctx: &CallContext) -> Result<Analysis, AnalyzeError> {
        let started = std::time::Instant::now();
        let (tpl, applied) = self.settings(ctx);
        if matches!(self.engine, Engine::Heuristic) {
            let mut a = heuristic::analyze(t, &tpl);
            a.applied = applied;
            return Ok(a);
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
            let system = format!("You take notes on part of {}. Answer with one JSON object.", tpl.context);
            let mut notes = Vec::with_capacity(n);
            for (i, part) in parts.into_iter().enumerate() {
                let user = format!(
                    "Part {} of {n}:\n{part}\n\nWrite short notes: who said what that matters (promises, amounts, \
                     dates, disputes, complaints, the agent's conduct), with speaker labels, each with its segment \
                     number (#) and a few words quoted exactly.",
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
        let (system, user) = tpl.prompts(&material, &summary_language(&self.locale));
        let schema = tpl.schema(&speakers, t.segments.len().max(1));
        let v = self.ask(&system, &user, &schema).await?;
        let mut a = validate(&v, &tpl, &speakers, t, &self.locale)?;
        if a.dropped_findings > 0 {
            crate::metrics::global().findings_dropped(a.dropped_findings as u64);
        }
        a.applied = applied;
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

/// The transcript as the model reads it: `#n [mm:ss] speaker: text` lines, `n`
/// the segment's number (its `segment_id`), which findings cite.
pub fn transcript_lines(t: &Transcript) -> Vec<String> {
    t.segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let secs = s.start.max(0.0) as u64;
            format!(
                "#{i} [{:02}:{:02}] {}: {}",
                secs / 60,
                secs % 60,
                s.speaker.as_deref().unwrap_or("speaker"),
                s.text.trim()
            )
        })
        .collect()
}

/// Check `v` against the settings and the call, and build the [`Analysis`]: the
/// quality score and sentiment labels are computed here, and every finding's
/// quote is checked against the segments it cites. `locale` is the summary's.
pub fn validate(
    v: &Value,
    tpl: &Template,
    speakers: &[String],
    t: &Transcript,
    locale: &str,
) -> Result<Analysis, AnalyzeError> {
    let bad = |m: String| AnalyzeError::Invalid(m);
    let obj = v.as_object().ok_or_else(|| bad(format!("expected a JSON object, got {}", kind(v))))?;
    let text = |o: &serde_json::Map<String, Value>, k: &str, what: &str| -> Result<String, AnalyzeError> {
        o.get(k)
            .and_then(Value::as_str)
            .map(|s| s.trim().to_string())
            .ok_or_else(|| bad(format!("`{what}` must be a string")))
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
    let summary = text(obj, "summary", "summary")?;
    if let Some(p) = summary_problem(&summary, locale) {
        return Err(bad(format!("`summary` {p}")));
    }
    let outcome = text(obj, "outcome", "outcome")?;
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
    for key in tpl.rubric_keys() {
        let x = q.get(&key).and_then(Value::as_f64).ok_or_else(|| bad(format!("`quality.{key}` must be a number")))?;
        if !(0.0..=5.0).contains(&x) {
            return Err(bad(format!("`quality.{key}` = {x} is outside 0…5")));
        }
        items.insert(key, serde_json::json!(x));
    }

    // Findings: each list's items, their labels checked, their quotes found.
    let mut cited = 0u32;
    let mut dropped = 0u32;
    let mut invented: Vec<String> = Vec::new();
    let mut findings = |k: &str| -> Result<Vec<Cited>, AnalyzeError> {
        let list = match obj.get(k) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(other) => return Err(bad(format!("`{k}` must be a list, not {}", kind(other)))),
        };
        let mut out = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let o = item
                .as_object()
                .ok_or_else(|| bad(format!("`{k}[{i}]` must be an object with segment_ids and a quote")))?;
            let ids: Vec<usize> = o
                .get("segment_ids")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_u64).map(|x| x as usize).collect())
                .unwrap_or_default();
            let quote = o.get("quote").and_then(Value::as_str).unwrap_or_default();
            cited += 1;
            match evidence::check(t, &ids, quote) {
                Ok(e) => out.push((o.clone(), e)),
                Err(why) => {
                    // Misplaced (the quote is elsewhere in the call): dropped and
                    // counted. Invented (nowhere in the call): the answer is rejected.
                    let all: Vec<usize> = (0..t.segments.len()).collect();
                    if evidence::check(t, &all, quote).is_err() {
                        invented.push(format!("{k}[{i}]"));
                    }
                    dropped += 1;
                    tracing::debug!(list = k, item = i, reason = ?why, "finding dropped: its quote is not in the segments it cites");
                }
            }
        }
        Ok(out)
    };
    let topic_items = findings("topics")?;
    let action_list = findings("action_items")?;
    let agent_list = findings("agent_actions")?;
    let flag_list = findings("compliance_flags")?;
    let impact_list = findings("score_impacts")?;
    if !invented.is_empty() {
        return Err(bad(format!(
            "{} quote(s) are not in the call ({}): invented evidence",
            invented.len(),
            invented.join(", ")
        )));
    }
    if dropped >= 2 && dropped * 2 > cited {
        return Err(bad(format!(
            "{dropped} of {cited} findings quote words that are not in the segments they cite (misplaced evidence)"
        )));
    }

    let mut topics: Vec<Topic> = Vec::new();
    for (o, e) in topic_items {
        let name = text(&o, "name", "topics[].name")?;
        if let Some(p) = topic_problem(&name) {
            return Err(bad(format!("topic {name:?} {p}")));
        }
        if !tpl.topics.is_empty() && !tpl.topics.iter().any(|x| x.eq_ignore_ascii_case(&name)) {
            return Err(bad(format!("topic {name:?} is not one of the configured topics {:?}", tpl.topics)));
        }
        if topics.iter().any(|x| x.name.eq_ignore_ascii_case(&name)) {
            return Err(bad(format!("topic {name:?} is repeated")));
        }
        topics.push(Topic { name, evidence: e });
    }
    let mut action_items = Vec::new();
    for (o, e) in action_list {
        let description = text(&o, "description", "action_items[].description")?;
        let priority = text(&o, "priority", "action_items[].priority")?;
        if !template::PRIORITIES.contains(&priority.as_str()) {
            return Err(bad(format!("action item priority {priority:?} is not one of {:?}", template::PRIORITIES)));
        }
        if words(&description).len() < 2 {
            return Err(bad(format!("action item {description:?} is not a sentence")));
        }
        action_items.push(ActionItem { description, priority, evidence: e });
    }
    let mut agent_actions = Vec::new();
    for (o, e) in agent_list {
        let action = text(&o, "action", "agent_actions[].action")?;
        if !tpl.agent_actions.is_empty() && !tpl.agent_actions.iter().any(|x| x.eq_ignore_ascii_case(&action)) {
            return Err(bad(format!("agent action {action:?} is not one of {:?}", tpl.agent_actions)));
        }
        if let Some(p) = topic_problem(&action) {
            return Err(bad(format!("agent action {action:?} {p}")));
        }
        agent_actions.push(AgentAction { action, evidence: e });
    }
    let mut compliance_flags = Vec::new();
    for (o, e) in flag_list {
        let kind = text(&o, "type", "compliance_flags[].type")?;
        let Some(rule) = tpl.compliance.iter().find(|r| r.kind == kind) else {
            return Err(bad(format!(
                "compliance flag type {kind:?} is not one of the rules {:?}",
                tpl.compliance_types()
            )));
        };
        let severity = text(&o, "severity", "compliance_flags[].severity")?;
        let rank = |s: &str| template::SEVERITIES.iter().position(|x| *x == s);
        let (Some(got), Some(floor)) = (rank(&severity), rank(&rule.severity)) else {
            return Err(bad(format!("compliance flag severity {severity:?} is not one of {:?}", template::SEVERITIES)));
        };
        let issue = text(&o, "issue", "compliance_flags[].issue")?;
        compliance_flags.push(ComplianceFlag {
            kind,
            // A rule's severity is its floor: a threat is never "low".
            severity: template::SEVERITIES[got.max(floor)].to_string(),
            issue,
            evidence: e,
        });
    }
    let mut score_impacts = Vec::new();
    for (o, e) in impact_list {
        let impact = o
            .get("impact")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad("score impact `impact` must be an integer".into()))?;
        if !(-5..=5).contains(&impact) || impact == 0 {
            return Err(bad(format!("score impact {impact} is outside −5…−1, +1…+5")));
        }
        let category = text(&o, "category", "score_impacts[].category")?;
        if !tpl.rubric.iter().any(|r| r.key == category) {
            return Err(bad(format!(
                "score impact category {category:?} is not a rubric item {:?}",
                tpl.rubric_keys()
            )));
        }
        let reason = text(&o, "reason", "score_impacts[].reason")?;
        score_impacts.push(ScoreImpact { impact: impact as i32, category, reason, evidence: e });
    }
    Ok(Analysis {
        summary,
        sentiment_score: Some(sentiment_score),
        speaker_sentiment: Value::Object(speaker_sentiment),
        quality_items: Value::Object(items),
        quality_score: Some(quality_score(&score_impacts, &compliance_flags)),
        topics,
        outcome: Some(outcome),
        outcome_details: obj.get("outcome_details").cloned().unwrap_or(Value::Null),
        action_items,
        agent_actions,
        compliance_flags,
        score_impacts,
        dropped_findings: dropped,
        ..Default::default()
    })
}

/// One finding's fields and its checked evidence.
type Cited = (serde_json::Map<String, Value>, Evidence);

/// Words of 2 or more letters (any script).
fn words(s: &str) -> Vec<String> {
    evidence::normalise(s)
        .split(' ')
        .filter(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 2)
        .map(str::to_string)
        .collect()
}

/// Common words of a summary language: a summary holds at least one.
fn function_words(lang: &str) -> &'static [&'static str] {
    match lang {
        "hi" => &["है", "का", "की", "के", "ने", "को", "में", "और", "से", "hai", "ka", "ki", "ke", "ne", "ko", "mein", "aur"],
        "mr" => &["आहे", "आणि", "या", "की", "ने", "ला", "मध्ये", "च्या"],
        _ => &[
            "the", "a", "an", "to", "and", "of", "is", "was", "for", "on", "with", "in", "that", "about", "has", "had",
            "he", "she", "they", "their", "his", "her", "customer", "agent", "caller", "call", "by", "will", "not",
        ],
    }
}

/// What is wrong with a summary, if anything: no words at all, mostly symbols or
/// digits, another script than the locale's, no word of the locale's language,
/// or one phrase repeated.
pub fn summary_problem(s: &str, locale: &str) -> Option<String> {
    let w = words(s);
    if w.len() < 3 {
        return Some(format!("has {} word(s); a summary is a sentence", w.len()));
    }
    let visible = s.chars().filter(|c| !c.is_whitespace()).count().max(1);
    // Letters and the combining vowel signs of Indic scripts.
    let letters = s.chars().filter(|c| c.is_alphabetic() || evidence::is_mark(*c)).count();
    if (letters as f64) < 0.6 * visible as f64 {
        return Some("is mostly symbols or digits".into());
    }
    let lang = locale.trim().split(['-', '_']).next().unwrap_or("en").to_lowercase();
    let latin = s.chars().filter(|c| c.is_ascii_alphabetic()).count();
    if lang == "en" && (latin as f64) < 0.8 * letters as f64 {
        return Some(format!("is not in the summary language ({locale})"));
    }
    let fw = function_words(&lang);
    if !w.iter().any(|x| fw.contains(&x.as_str())) {
        return Some(format!("has no words of the summary language ({locale})"));
    }
    let mut distinct = w.clone();
    distinct.sort();
    distinct.dedup();
    if w.len() >= 8 && (distinct.len() as f64) < 0.35 * w.len() as f64 {
        return Some("repeats itself".into());
    }
    None
}

/// What is wrong with a topic name, if anything: a date, a time or a number in
/// place of a topic, or no word at all.
pub fn topic_problem(name: &str) -> Option<&'static str> {
    let letters = name.chars().filter(|c| c.is_alphabetic()).count();
    let digits = name.chars().filter(|c| c.is_ascii_digit()).count();
    if letters < 2 {
        return Some("is a date, a time or a number, not a topic");
    }
    let date_like = name.split(|c: char| c.is_whitespace()).any(|tok| {
        let d = tok.chars().filter(|c| c.is_ascii_digit()).count();
        d >= 3 && tok.chars().all(|c| c.is_ascii_digit() || "-/:.".contains(c))
    });
    if date_like || digits > letters {
        return Some("is a date, a time or a number, not a topic");
    }
    None
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
    use crate::asr::Segment;
    use serde_json::json;

    fn call() -> Transcript {
        let seg = |i: usize, who: &str, text: &str| Segment {
            start: i as f64 * 4.0,
            end: i as f64 * 4.0 + 3.5,
            text: text.into(),
            speaker: Some(who.into()),
            ..Default::default()
        };
        Transcript {
            segments: vec![
                seg(0, "agent", "Good morning, this is Asha from City Finance about your loan."),
                seg(1, "customer", "I lost my job, but I can pay five thousand on Friday."),
                seg(2, "agent", "Thank you, I will send you a payment link for Friday."),
            ],
            ..Default::default()
        }
    }

    fn answer() -> Value {
        json!({
            "summary": "The customer lost their job and promised to pay five thousand on Friday.",
            "sentiment": 40,
            "speaker_sentiment": {"agent": 50, "customer": -30},
            "quality": {"greeting": 5, "clarity": 4, "empathy": 3, "resolution": 5, "compliance": 5},
            "topics": [{"name": "job loss", "segment_ids": [1], "quote": "I lost my job"}],
            "outcome": "promise_to_pay",
            "outcome_details": {"amount": "5000", "date": "Friday", "reason": ""},
            "action_items": [{"description": "Send the payment link", "priority": "high", "segment_ids": [2],
                              "quote": "I will send you a payment link"}],
            "agent_actions": [{"action": "greeting", "segment_ids": [0], "quote": "Good morning"}],
            "compliance_flags": [],
            "score_impacts": [
                {"impact": 3, "category": "greeting", "reason": "named herself and the company",
                 "segment_ids": [0], "quote": "this is Asha from City Finance"},
                {"impact": 2, "category": "resolution", "reason": "agreed a date", "segment_ids": [1, 2],
                 "quote": "pay five thousand on Friday"}
            ]
        })
    }

    fn tpl() -> Template {
        Template::builtin("loan_collection").unwrap()
    }

    fn check(v: &Value) -> Result<Analysis, AnalyzeError> {
        validate(v, &tpl(), &["agent".into(), "customer".into()], &call(), "en-GB")
    }

    #[test]
    fn valid_answers_are_scored_in_code_with_times_from_the_segments() {
        let a = check(&answer()).unwrap();
        assert_eq!(a.quality_score, Some(87.5), "75 + 2.5 × (3 + 2)");
        assert_eq!(a.sentiment_label(), Some("positive"));
        assert_eq!(a.speaker_sentiment["customer"]["label"], "negative");
        assert_eq!(a.topics[0].evidence.segment_ids, [1]);
        assert_eq!((a.topics[0].evidence.timestamp_start, a.topics[0].evidence.timestamp_end), (4.0, 7.5));
        assert_eq!(a.score_impacts[1].evidence.timestamp_end, 11.5, "the last cited segment's end");
        assert_eq!(a.dropped_findings, 0);
        assert_eq!(sentiment_label(0.0), "neutral");
        assert_eq!(sentiment_label(-0.25), "negative");
        assert_eq!(sentiment_label(-0.6), "very_negative");
        assert_eq!(sentiment_label(0.6), "very_positive");
        assert_eq!(sentiment_label(0.19), "neutral");
    }

    #[test]
    fn the_quality_function_follows_the_impacts_and_the_worst_flag() {
        let imp = |x: i32| ScoreImpact { impact: x, ..Default::default() };
        let flag = |s: &str| ComplianceFlag { severity: s.into(), ..Default::default() };
        assert_eq!(quality_score(&[], &[]), 75.0);
        assert_eq!(quality_score(&[imp(5), imp(5)], &[]), 100.0);
        assert_eq!(quality_score(&[imp(5), imp(1)], &[]), 90.0);
        assert_eq!(quality_score(&[imp(-5)], &[]), 50.0);
        assert_eq!(quality_score(&[imp(-5), imp(-5), imp(-5), imp(-5)], &[]), 0.0);
        assert_eq!(quality_score(&[imp(5), imp(5)], &[flag("critical")]), 49.0);
        assert_eq!(quality_score(&[imp(2)], &[flag("high"), flag("low")]), 64.0);
        assert_eq!(quality_score(&[imp(2)], &[flag("medium")]), 80.0);
        for (q, zone) in [(75.0, "Good"), (49.0, "Poor"), (64.0, "Below Average"), (90.0, "Excellent")] {
            assert_eq!(crate::contract::quality_zone(q), zone);
        }
    }

    #[test]
    fn findings_whose_quotes_are_elsewhere_are_dropped_and_counted() {
        let mut v = answer();
        v["topics"][0]["segment_ids"] = json!([0]);
        let a = check(&v).unwrap();
        assert!(a.topics.is_empty());
        assert_eq!(a.dropped_findings, 1);
        assert_eq!(a.score_impacts.len(), 2);
    }

    /// The garbage-answer corpus: answers small models really gave (SmolLM2,
    /// gemma-3-270m) and their cousins. Each is rejected with a reason that names
    /// what is wrong.
    #[test]
    fn garbage_answers_are_rejected_with_a_clear_reason() {
        let with = |path: &[&str], value: Value| {
            let mut v = answer();
            let mut at = &mut v;
            for (i, k) in path.iter().enumerate() {
                if i + 1 == path.len() {
                    at[*k] = value.clone();
                } else {
                    at = &mut at[*k];
                }
            }
            v
        };
        let impact = |field: &str, value: Value| {
            let mut v = answer();
            v["score_impacts"][0][field] = value;
            v
        };
        let topic = |name: &str| json!([{"name": name, "segment_ids": [1], "quote": "I lost my job"}]);
        let corpus: Vec<(&str, Value, &str)> = vec![
            ("braces for a summary", with(&["summary"], json!("} } } } } } } }")), "summary"),
            ("empty summary", with(&["summary"], json!("")), "summary"),
            ("digits", with(&["summary"], json!("5000 5000 20/11/2026 10:30 ₹ 5000")), "summary"),
            ("no English", with(&["summary"], json!("ग्राहक ने शुक्रवार को भुगतान का वादा किया")), "summary language"),
            (
                "word salad",
                with(&["summary"], json!("payment payment payment payment payment payment payment the")),
                "repeats",
            ),
            (
                "Latin gibberish",
                with(&["summary"], json!("Lorem ipsum dolor sit amet consectetur")),
                "summary language",
            ),
            ("a timestamp topic", with(&["topics"], topic("2022-01-01 20:30:50")), "date"),
            ("a number topic", with(&["topics"], topic("5000")), "date"),
            (
                "the same topic three times",
                with(
                    &["topics"],
                    json!([{"name": "payment", "segment_ids": [1], "quote": "I can pay"},
                           {"name": "Payment", "segment_ids": [1], "quote": "I can pay"}]),
                ),
                "repeated",
            ),
            ("an outcome not in the template", with(&["outcome"], json!("won_lottery")), "won_lottery"),
            (
                "a flag outside the rules",
                with(
                    &["compliance_flags"],
                    json!([{"type": "bad_vibes", "severity": "low", "issue": "x", "segment_ids": [0], "quote": "Good morning"}]),
                ),
                "bad_vibes",
            ),
            (
                "a severity outside the scale",
                with(
                    &["compliance_flags"],
                    json!([{"type": "threat", "severity": "apocalyptic", "issue": "x", "segment_ids": [0], "quote": "Good morning"}]),
                ),
                "severity",
            ),
            ("an impact outside the scale", impact("impact", json!(9)), "outside"),
            ("a category outside the rubric", impact("category", json!("charisma")), "charisma"),
            (
                "invented quotes",
                with(
                    &["score_impacts"],
                    json!([{"impact": -5, "category": "compliance", "reason": "threat", "segment_ids": [0], "quote": "we will send the police"},
                           {"impact": -3, "category": "empathy", "reason": "rude", "segment_ids": [2], "quote": "shut up and pay"}]),
                ),
                "not in the call",
            ),
            (
                "misplaced quotes",
                with(
                    &["score_impacts"],
                    json!([{"impact": 1, "category": "greeting", "reason": "x", "segment_ids": [2], "quote": "Good morning"},
                           {"impact": 1, "category": "greeting", "reason": "y", "segment_ids": [1], "quote": "this is Asha"},
                           {"impact": 1, "category": "greeting", "reason": "z", "segment_ids": [1], "quote": "Good morning"},
                           {"impact": 1, "category": "greeting", "reason": "w", "segment_ids": [2], "quote": "from City Finance"}]),
                ),
                "misplaced",
            ),
            ("a rubric score of 9", with(&["quality", "empathy"], json!(9)), "quality.empathy"),
            ("sentiment in words", with(&["sentiment"], json!("great")), "sentiment"),
            ("a list for an object", json!([1, 2]), "a list"),
            ("findings as strings", with(&["topics"], json!(["payment"])), "topics[0]"),
        ];
        for (what, v, reason) in corpus {
            let e = check(&v).expect_err(what);
            assert!(matches!(e, AnalyzeError::Invalid(_)) && !e.is_transient(), "{what}: {e}");
            assert!(e.to_string().contains(reason), "{what}: {e}");
        }
    }

    #[test]
    fn summaries_in_other_locales() {
        assert_eq!(summary_problem("ग्राहक ने शुक्रवार को भुगतान का वादा किया है", "hi-IN"), None);
        assert!(summary_problem("The customer will pay on Friday.", "en-GB").is_none());
        assert!(summary_problem("Customer promised payment Friday; agent sent link.", "en-GB").is_none());
        assert_eq!(summary_language("en-GB"), "British English");
        assert_eq!(summary_language("hi_IN"), "Hindi");
        assert_eq!(topic_problem("EMI 2 of 12"), None);
        assert!(topic_problem("20:30").is_some());
    }

    #[test]
    fn long_transcripts_are_cut_into_parts_not_truncated() {
        let lines: Vec<String> = (0..50).map(|i| format!("#{i} [00:{i:02}] agent: line number {i}")).collect();
        let parts = chunk_lines(&lines, 200);
        assert!(parts.len() > 5);
        assert!(parts.iter().all(|p| p.len() <= 200));
        assert_eq!(parts.join("\n"), lines.join("\n"), "nothing lost or doubled");
        assert!(transcript_lines(&call())[1].starts_with("#1 [00:04] customer: I lost"));
    }
}
