//! What an analysis looks for: the kind of call, the outcome labels and their
//! details, the rubric, the topic and agent-action lists, the compliance rules,
//! and the instructions. Built in: `loan_collection`, `delivery`, `support`; a
//! config file can define its own (`[analysis.templates.NAME]`), and the tiers of
//! [`super::profile`] adjust one per client and campaign.
//!
//! The answer an engine gives is fixed by [`Template::schema`]: every finding
//! (topic, action item, agent action, compliance flag, score impact) cites the
//! transcript's segment numbers and a quote copied from them, which
//! [`super::validate`] checks against the call.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One rubric criterion, scored 0–5 by the engine (the breakdown), and the
/// category score impacts are filed under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RubricItem {
    pub key: String,
    /// What the agent is judged on, completing "the agent …".
    pub description: String,
}

/// A compliance rule: a flag's `type`, what breaks the rule, and the severity the
/// rule carries at least.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceRule {
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
    /// `low`, `medium`, `high` or `critical`.
    #[serde(default = "medium")]
    pub severity: String,
}

fn medium() -> String {
    "medium".into()
}

/// Severities of compliance flags, mildest first (the app's scale).
pub const SEVERITIES: &[&str] = &["low", "medium", "high", "critical"];

/// Priorities of action items.
pub const PRIORITIES: &[&str] = &["high", "medium", "low"];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Set from the key it is defined under.
    #[serde(default)]
    pub name: String,
    /// One sentence: what these calls are.
    pub context: String,
    /// The outcome labels the model must choose from.
    pub outcomes: Vec<String>,
    /// Fields of `outcome_details` (all strings, empty when not mentioned).
    #[serde(default)]
    pub outcome_details: Vec<String>,
    /// Extra instructions (what to look for).
    #[serde(default)]
    pub instructions: String,
    /// The rubric; empty: [`default_rubric`].
    #[serde(default)]
    pub rubric: Vec<RubricItem>,
    /// Topic names to choose from; empty: the engine names topics itself.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Agent actions to detect (greeting, verification, …); empty: free text.
    #[serde(default)]
    pub agent_actions: Vec<String>,
    /// Compliance rules; empty: [`default_compliance`].
    #[serde(default)]
    pub compliance: Vec<ComplianceRule>,
}

/// The rubric when none is configured: five criteria the app's pages show.
pub fn default_rubric() -> Vec<RubricItem> {
    [
        ("greeting", "greeted the customer and identified themself and the company"),
        ("clarity", "spoke clearly, explained the purpose and the next steps"),
        ("empathy", "listened, acknowledged the customer's situation, stayed polite"),
        ("resolution", "reached a concrete outcome or next step"),
        (
            "compliance",
            "made no threats, used no abusive language, disclosed nothing to third parties, made no false claims",
        ),
    ]
    .iter()
    .map(|(k, d)| RubricItem { key: k.to_string(), description: d.to_string() })
    .collect()
}

/// The compliance rules when none are configured: what regulators of
/// collections (RBI fair practices, FCA CONC 7) and of telephone fundraising and
/// support (Fundraising Regulator, UK GDPR) act on first.
pub fn default_compliance() -> Vec<ComplianceRule> {
    [
        (
            "threat",
            "threatened the customer (legal action not in process, police, violence, public shaming)",
            "critical",
        ),
        ("abusive_language", "insulted, shouted at or used abusive language with the customer", "high"),
        ("third_party_disclosure", "disclosed the debt or account to someone other than the customer", "high"),
        ("misleading_info", "made false or misleading claims about amounts, consequences or the product", "high"),
        ("data_protection", "asked for or read out card numbers, PINs or passwords against policy", "medium"),
        ("rudeness", "was rude, dismissive or pressured the customer", "medium"),
    ]
    .iter()
    .map(|(k, d, s)| ComplianceRule { kind: k.to_string(), description: d.to_string(), severity: s.to_string() })
    .collect()
}

impl Template {
    pub fn builtin(name: &str) -> Option<Template> {
        let t = |context: &str, outcomes: &[&str], details: &[&str], instructions: &str| Template {
            name: name.to_string(),
            context: context.into(),
            outcomes: outcomes.iter().map(|s| s.to_string()).collect(),
            outcome_details: details.iter().map(|s| s.to_string()).collect(),
            instructions: instructions.into(),
            rubric: default_rubric(),
            topics: Vec::new(),
            agent_actions: Vec::new(),
            compliance: default_compliance(),
        };
        Some(match name {
            "loan_collection" => t(
                "a loan collection call between a collection agent and a borrower",
                &[
                    "promise_to_pay",
                    "paid_already",
                    "dispute",
                    "refusal",
                    "wrong_number",
                    "callback_requested",
                    "no_contact",
                    "other",
                ],
                &["amount", "date", "reason"],
                "Record a promise to pay with its amount and date. Flag agent compliance problems: threats, abusive \
                 language, disclosure of the debt to anyone but the borrower, false claims.",
            ),
            "delivery" => t(
                "a delivery or logistics call between a delivery agent or dispatcher and a customer",
                &["order_confirmed", "address_issue", "reschedule", "cancellation", "delivered", "no_contact", "other"],
                &["new_date", "address_change", "reason"],
                "Note address corrections, new delivery dates and cancellation reasons.",
            ),
            "support" => t(
                "a customer support call between a support agent and a customer",
                &["resolved", "escalated", "follow_up_needed", "information_given", "complaint_logged", "other"],
                &["issue", "reference"],
                "Note the customer's issue and whether it was resolved.",
            ),
            _ => return None,
        })
    }

    /// Fill what a custom template left out (rubric, compliance rules, `other`).
    pub fn complete(mut self) -> Template {
        if self.rubric.is_empty() {
            self.rubric = default_rubric();
        }
        if self.compliance.is_empty() {
            self.compliance = default_compliance();
        }
        if !self.outcomes.iter().any(|o| o == "other") {
            self.outcomes.push("other".into());
        }
        self
    }

    /// What is wrong with this template, if anything (named for the config error).
    pub fn problem(&self) -> Option<String> {
        if self.outcomes.is_empty() {
            return Some("a template needs at least one outcome".into());
        }
        let keys: Vec<&str> = self.rubric.iter().map(|r| r.key.as_str()).collect();
        if let Some(k) = keys.iter().find(|k| !valid_key(k)) {
            return Some(format!("rubric key {k:?} must be lower-case letters, digits and _"));
        }
        if let Some(r) = self.compliance.iter().find(|r| !SEVERITIES.contains(&r.severity.as_str())) {
            return Some(format!("compliance rule {:?}: severity must be one of {SEVERITIES:?}", r.kind));
        }
        if let Some(r) = self.compliance.iter().find(|r| !valid_key(&r.kind)) {
            return Some(format!("compliance type {:?} must be lower-case letters, digits and _", r.kind));
        }
        None
    }

    pub fn rubric_keys(&self) -> Vec<String> {
        self.rubric.iter().map(|r| r.key.clone()).collect()
    }

    pub fn compliance_types(&self) -> Vec<String> {
        self.compliance.iter().map(|r| r.kind.clone()).collect()
    }

    /// The JSON schema the engine's answer must satisfy, for a call of `segments`
    /// segments. Every string and list is bounded: the longest possible answer
    /// is about 3,000 characters, so with compact whitespace it closes within
    /// `analysis.max_tokens` (1,280 by default; typical answers take 250–600
    /// tokens).
    pub fn schema(&self, speakers: &[String], segments: usize) -> Value {
        let rubric: serde_json::Map<String, Value> = self
            .rubric
            .iter()
            .map(|r| (r.key.clone(), json!({"type": "integer", "minimum": 0, "maximum": 5})))
            .collect();
        let details: serde_json::Map<String, Value> =
            self.outcome_details.iter().map(|k| (k.clone(), json!({"type": "string", "maxLength": 40}))).collect();
        let per_speaker: serde_json::Map<String, Value> =
            speakers.iter().map(|s| (s.clone(), json!({"type": "integer", "minimum": -100, "maximum": 100}))).collect();
        let last = segments.saturating_sub(1);
        let cite = |mut props: serde_json::Map<String, Value>| {
            props.insert(
                "segment_ids".into(),
                json!({"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": last},
                       "minItems": 1, "maxItems": 3}),
            );
            props.insert("quote".into(), json!({"type": "string", "minLength": 1, "maxLength": 80}));
            let required: Vec<&String> = props.keys().collect();
            json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
        };
        let name_or = |list: &[String], max: usize| {
            if list.is_empty() {
                json!({"type": "string", "minLength": 1, "maxLength": max})
            } else {
                json!({"type": "string", "enum": list})
            }
        };
        let obj = |pairs: Vec<(&str, Value)>| -> serde_json::Map<String, Value> {
            pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
        };
        let topic = cite(obj(vec![("name", name_or(&self.topics, 40))]));
        let action_item = cite(obj(vec![
            ("description", json!({"type": "string", "minLength": 1, "maxLength": 80})),
            ("priority", json!({"type": "string", "enum": PRIORITIES})),
        ]));
        let agent_action = cite(obj(vec![("action", name_or(&self.agent_actions, 40))]));
        let flag = cite(obj(vec![
            ("type", json!({"type": "string", "enum": self.compliance_types()})),
            ("severity", json!({"type": "string", "enum": SEVERITIES})),
            ("issue", json!({"type": "string", "minLength": 1, "maxLength": 80})),
        ]));
        let impact = cite(obj(vec![
            ("impact", json!({"type": "integer", "minimum": -5, "maximum": 5})),
            ("category", json!({"type": "string", "enum": self.rubric_keys()})),
            ("reason", json!({"type": "string", "minLength": 1, "maxLength": 80})),
        ]));
        json!({
            "type": "object",
            "properties": {
                "summary": {"type": "string", "minLength": 1, "maxLength": 300},
                "sentiment": {"type": "integer", "minimum": -100, "maximum": 100},
                "speaker_sentiment": {"type": "object", "properties": per_speaker,
                    "required": speakers, "additionalProperties": false},
                "quality": {"type": "object", "properties": rubric,
                    "required": self.rubric_keys(), "additionalProperties": false},
                "topics": {"type": "array", "items": topic, "maxItems": 3},
                "outcome": {"type": "string", "enum": self.outcomes},
                "outcome_details": {"type": "object", "properties": details,
                    "required": self.outcome_details, "additionalProperties": false},
                "action_items": {"type": "array", "items": action_item, "maxItems": 3},
                "agent_actions": {"type": "array", "items": agent_action, "maxItems": 3},
                "compliance_flags": {"type": "array", "items": flag, "maxItems": 3},
                "score_impacts": {"type": "array", "items": impact, "maxItems": 4}
            },
            "required": ["summary", "sentiment", "speaker_sentiment", "quality", "topics", "outcome",
                         "outcome_details", "action_items", "agent_actions", "compliance_flags", "score_impacts"],
            "additionalProperties": false
        })
    }

    /// System and user prompts for one call (or one merged set of chunk notes).
    /// `transcript` lines start with their segment number (`#3`).
    pub fn prompts(&self, transcript: &str, summary_language: &str) -> (String, String) {
        let rubric: String =
            self.rubric.iter().map(|r| format!("- {} (0-5): the agent {}\n", r.key, r.description)).collect();
        let rules: String = self
            .compliance
            .iter()
            .map(|r| format!("- {} ({} or worse): the agent {}\n", r.kind, r.severity, r.description))
            .collect();
        let list = |what: &str, items: &[String]| {
            if items.is_empty() {
                String::new()
            } else {
                format!("{what} must be chosen from: {}.\n", items.join(", "))
            }
        };
        let system = format!(
            "You analyse transcripts of {}. Each line starts with its segment number (#), a time and the \
             speaker. The transcript may be in English, Hindi, Hinglish, Marathi or another Indian language; write \
             the summary in {summary_language}. Answer with one JSON object only.",
            self.context
        );
        let user = format!(
            "Transcript:\n{transcript}\n\nWrite a 1-3 sentence summary. Rate overall sentiment and each speaker's \
             sentiment from -100 (very negative) to 100 (very positive). Score the agent on each item:\n{rubric}\
             Choose the outcome from: {}. {}\n\
             List up to 3 topics, up to 3 action items (follow-ups) and up to 3 agent actions. Flag compliance \
             problems only where one of these rules was broken:\n{rules}\
             List up to 4 score impacts: moments that raised (+1 to +5) or lowered (-1 to -5) the call's quality, \
             each filed under a rubric item.\n{}{}\
             Every topic, action, flag and impact cites the segment numbers it rests on and a quote copied exactly \
             from those segments.",
            self.outcomes.join(", "),
            self.instructions,
            list("Topics", &self.topics),
            list("Agent actions", &self.agent_actions),
        );
        (system, user)
    }
}

/// Lower-case letters, digits and `_`, starting with a letter.
fn valid_key(k: &str) -> bool {
    k.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_have_outcomes_and_a_closed_schema() {
        for name in ["loan_collection", "delivery", "support"] {
            let t = Template::builtin(name).unwrap();
            assert!(t.outcomes.contains(&"other".to_string()));
            assert_eq!(t.problem(), None);
            let s = t.schema(&["agent".into(), "customer".into()], 12);
            assert_eq!(s["properties"]["outcome"]["enum"].as_array().unwrap().len(), t.outcomes.len());
            assert_eq!(s["additionalProperties"], false);
            let cite = &s["properties"]["score_impacts"]["items"]["properties"]["segment_ids"]["items"];
            assert_eq!(cite["maximum"], 11, "citations stay inside the call");
            assert_eq!(s["properties"]["topics"]["items"]["properties"]["name"]["maxLength"], 40);
        }
        assert!(Template::builtin("astrology").is_none());
    }

    #[test]
    fn configured_lists_become_enums_and_bad_keys_are_named() {
        let mut t = Template::builtin("support").unwrap();
        t.topics = vec!["billing".into(), "login".into()];
        let s = t.schema(&[], 3);
        assert_eq!(s["properties"]["topics"]["items"]["properties"]["name"]["enum"], json!(["billing", "login"]));
        t.rubric.push(RubricItem { key: "Product Knowledge".into(), description: "knew the product".into() });
        assert!(t.problem().unwrap().contains("Product Knowledge"));
    }
}
