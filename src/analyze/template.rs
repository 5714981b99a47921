//! Prompt templates: what kind of call this is, the outcome labels, what the
//! outcome details are, and the instructions. Built in: `loan_collection`,
//! `delivery`, `support`; a config file can define its own (`[analysis.templates.NAME]`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::RUBRIC;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}

impl Template {
    pub fn builtin(name: &str) -> Option<Template> {
        let t = |context: &str, outcomes: &[&str], details: &[&str], instructions: &str| Template {
            name: name.to_string(),
            context: context.into(),
            outcomes: outcomes.iter().map(|s| s.to_string()).collect(),
            outcome_details: details.iter().map(|s| s.to_string()).collect(),
            instructions: instructions.into(),
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

    /// The JSON schema the engine's answer must satisfy. Every string and list is
    /// bounded: the longest possible answer is about 1,400 characters, so with
    /// compact whitespace it closes within `analysis.max_tokens` (1,024 by
    /// default; typical answers take 150–400 tokens).
    pub fn schema(&self, speakers: &[String]) -> Value {
        let rubric: serde_json::Map<String, Value> = RUBRIC
            .iter()
            .map(|(k, _)| (k.to_string(), json!({"type": "integer", "minimum": 0, "maximum": 5})))
            .collect();
        let details: serde_json::Map<String, Value> =
            self.outcome_details.iter().map(|k| (k.clone(), json!({"type": "string", "maxLength": 40}))).collect();
        let per_speaker: serde_json::Map<String, Value> =
            speakers.iter().map(|s| (s.clone(), json!({"type": "integer", "minimum": -100, "maximum": 100}))).collect();
        json!({
            "type": "object",
            "properties": {
                "summary": {"type": "string", "minLength": 1, "maxLength": 300},
                "sentiment": {"type": "integer", "minimum": -100, "maximum": 100},
                "speaker_sentiment": {"type": "object", "properties": per_speaker,
                    "required": speakers, "additionalProperties": false},
                "quality": {"type": "object", "properties": rubric,
                    "required": RUBRIC.iter().map(|(k, _)| *k).collect::<Vec<_>>(), "additionalProperties": false},
                "topics": {"type": "array", "items": {"type": "string", "maxLength": 32}, "maxItems": 3},
                "outcome": {"type": "string", "enum": self.outcomes},
                "outcome_details": {"type": "object", "properties": details,
                    "required": self.outcome_details, "additionalProperties": false},
                "action_items": {"type": "array", "items": {"type": "string", "maxLength": 80}, "maxItems": 3},
                "compliance_flags": {"type": "array", "items": {"type": "string", "maxLength": 80}, "maxItems": 3}
            },
            "required": ["summary", "sentiment", "speaker_sentiment", "quality", "topics", "outcome",
                         "outcome_details", "action_items", "compliance_flags"],
            "additionalProperties": false
        })
    }

    /// System and user prompts for one call (or one merged set of chunk notes).
    pub fn prompts(&self, transcript: &str, summary_language: &str) -> (String, String) {
        let rubric: String = RUBRIC.iter().map(|(k, d)| format!("- {k} (0-5): the agent {d}\n")).collect();
        let system = format!(
            "You analyse transcripts of {}. Speakers are labelled. The transcript may be in English, Hindi, \
             Hinglish, Marathi or another Indian language; write the summary in {summary_language}. Answer with \
             one JSON object only.",
            self.context
        );
        let user = format!(
            "Transcript:\n{transcript}\n\nWrite a 1-3 sentence summary. Rate overall sentiment and each speaker's \
             sentiment from -100 (very negative) to 100 (very positive). Score the agent on each item:\n{rubric}\
             Choose the outcome from: {}. {}\nList up to 3 topics and up to 3 action items.",
            self.outcomes.join(", "),
            self.instructions
        );
        (system, user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_have_outcomes_and_a_closed_schema() {
        for name in ["loan_collection", "delivery", "support"] {
            let t = Template::builtin(name).unwrap();
            assert!(t.outcomes.contains(&"other".to_string()));
            let s = t.schema(&["agent".into(), "customer".into()]);
            assert_eq!(s["properties"]["outcome"]["enum"].as_array().unwrap().len(), t.outcomes.len());
            assert_eq!(s["additionalProperties"], false);
        }
        assert!(Template::builtin("astrology").is_none());
    }
}
