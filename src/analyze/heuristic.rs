//! The no-model engine, recorded as `engine = heuristic`. It reports only what
//! it can point at and leaves NULL what it cannot judge:
//!
//! - sentiment from a small English/Hinglish lexicon, NULL for a call (or a
//!   speaker) with no word of the lexicon;
//! - the outcome from the template's keywords, NULL when none is said;
//! - findings with evidence: a greeting in the agent's first turns (agent action,
//!   `greeting` 5 and a +1 impact), threats and abuse (compliance flags,
//!   `compliance` 0 and −5/−3 impacts), configured topics said in the call;
//! - NULL for every other rubric item and for the quality score: keywords cannot
//!   judge clarity, empathy or a whole call.

use serde_json::{json, Value};

use super::evidence::{self, normalise};
use super::{sentiment_label, ActionItem, AgentAction, Analysis, ComplianceFlag, ScoreImpact, Template, Topic};
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

/// Greetings that open a call.
const GREETINGS: &[&str] =
    &["good morning", "good afternoon", "good evening", "hello", "namaste", "namaskar", "calling from", "this is"];

/// Threats: the rule `threat` (critical).
const THREATS: &[&str] = &[
    "police",
    "arrest",
    "jail",
    "break your",
    "we will come to your house",
    "tell your family",
    "tell your neighbours",
    "tell your employer",
    "ghar aa jayenge",
    "jail bhej",
];
/// Abuse: the rule `abusive_language` (high).
const ABUSE: &[&str] = &["idiot", "stupid", "shut up", "bloody", "useless", "bewakoof", "chup kar", "pagal"];

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

/// Lexicon score in −1…1; `None` when the text has no word of the lexicon.
pub fn sentiment(text: &str) -> Option<f64> {
    let w = words(text);
    let pos = w.iter().filter(|x| POSITIVE.contains(&x.as_str())).count() as f64;
    let neg = w.iter().filter(|x| NEGATIVE.contains(&x.as_str())).count() as f64;
    if pos + neg == 0.0 {
        None
    } else {
        Some(((pos - neg) / (pos + neg + 2.0)).clamp(-1.0, 1.0))
    }
}

/// The first segment saying one of `phrases` (whole words), and a quote of the
/// words around it (at most 12), as checked evidence.
fn find(t: &Transcript, ids: impl Iterator<Item = usize>, phrases: &[&str]) -> Option<(usize, evidence::Evidence)> {
    for i in ids {
        let text = &t.segments[i].text;
        let norm = format!(" {} ", normalise(text));
        let Some(p) = phrases.iter().find(|p| norm.contains(&format!(" {} ", normalise(p)))) else { continue };
        // A window of the segment's own words around the phrase's first word.
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let first = normalise(p).split(' ').next().unwrap_or_default().to_string();
        let at = tokens.iter().position(|w| normalise(w).split(' ').any(|x| x == first)).unwrap_or(0);
        let from = at.saturating_sub(5);
        let quote = tokens[from..(from + 12).min(tokens.len())].join(" ");
        if let Ok(e) = evidence::check(t, &[i], &quote) {
            return Some((i, e));
        }
    }
    None
}

/// Outcome keywords of the built-in templates' labels.
fn outcome(tpl: &Template, t: &Transcript) -> Option<String> {
    let rules: &[(&str, &[&str])] = &[
        ("paid_already", &["already paid", "paid last", "payment is done", "paid it yesterday"]),
        ("refusal", &["won't pay", "will not pay", "refuse to pay", "not going to pay"]),
        ("dispute", &["dispute", "not my loan", "never took"]),
        ("promise_to_pay", &["will pay", "i'll pay", "pay on", "pay by", "kar dunga", "de dunga", "kar doongi"]),
        ("wrong_number", &["wrong number"]),
        ("callback_requested", &["call back", "call me later", "callback"]),
        ("cancellation", &["cancel"]),
        ("reschedule", &["reschedule", "tomorrow instead", "another day"]),
        ("address_issue", &["address"]),
        ("escalated", &["escalate", "supervisor", "manager"]),
        ("resolved", &["resolved", "fixed", "working now"]),
        ("order_confirmed", &["confirm the order", "order is confirmed"]),
    ];
    for (label, keys) in rules {
        if tpl.outcomes.iter().any(|o| o == label) && find(t, 0..t.segments.len(), keys).is_some() {
            return Some(label.to_string());
        }
    }
    None
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
        let v = match sentiment(&said.join(" ")) {
            Some(s) => json!({"score": s, "label": sentiment_label(s)}),
            None => json!({"score": null, "label": null}),
        };
        per.insert(who.clone(), v);
    }
    let mut items: serde_json::Map<String, Value> = tpl.rubric.iter().map(|r| (r.key.clone(), Value::Null)).collect();
    let mut impacts = Vec::new();
    let mut flags = Vec::new();
    let mut agent_actions = Vec::new();

    // The agent's first three turns (all turns' first three when nobody is "agent").
    let agent_turns: Vec<usize> =
        (0..t.segments.len()).filter(|i| t.segments[*i].speaker.as_deref() == Some("agent")).take(3).collect();
    let opening = if agent_turns.is_empty() { (0..t.segments.len().min(3)).collect() } else { agent_turns };
    if let Some((_, e)) = find(t, opening.into_iter(), GREETINGS) {
        if items.contains_key("greeting") {
            items.insert("greeting".into(), json!(5));
            impacts.push(ScoreImpact {
                impact: 1,
                category: "greeting".into(),
                reason: "the agent opened with a greeting".into(),
                evidence: e.clone(),
            });
        }
        agent_actions.push(AgentAction { action: "greeting".into(), evidence: e });
    }
    let rule = |kind: &str| tpl.compliance.iter().find(|r| r.kind == kind);
    for (kind, phrases, impact, category, issue) in [
        ("threat", THREATS, -5, "compliance", "the agent threatened the customer"),
        ("abusive_language", ABUSE, -3, "empathy", "abusive language"),
    ] {
        let Some(r) = rule(kind) else { continue };
        // Said by the agent (anyone, when nobody is labelled agent).
        let by_agent =
            |i: &usize| speakers.iter().all(|s| s != "agent") || t.segments[*i].speaker.as_deref() == Some("agent");
        if let Some((_, e)) = find(t, (0..t.segments.len()).filter(by_agent), phrases) {
            flags.push(ComplianceFlag {
                kind: kind.into(),
                severity: r.severity.clone(),
                issue: issue.into(),
                evidence: e.clone(),
            });
            if items.contains_key("compliance") {
                items.insert("compliance".into(), json!(0));
            }
            // `items` holds exactly the rubric's keys.
            let category = if items.contains_key(category) { category } else { "compliance" };
            if items.contains_key(category) {
                impacts.push(ScoreImpact { impact, category: category.into(), reason: issue.into(), evidence: e });
            }
        }
    }
    let topics: Vec<Topic> = tpl
        .topics
        .iter()
        .filter_map(|name| find(t, 0..t.segments.len(), &[name.as_str()]).map(|(_, e)| (name, e)))
        .map(|(name, e)| Topic { name: name.clone(), evidence: e })
        .collect();
    let out = outcome(tpl, t);
    let secs = t.segments.last().map_or(0.0, |s| s.end);
    let summary = if t.segments.is_empty() {
        "No speech was recognised.".to_string()
    } else {
        format!(
            "{} of {} segments and {:.0} seconds; {} (keyword heuristic, no language model).",
            capitalise(&tpl.context),
            t.segments.len(),
            secs,
            match &out {
                Some(o) => format!("the words said suggest the outcome {o}"),
                None => "no outcome keyword was said".to_string(),
            }
        )
    };
    Analysis {
        summary,
        sentiment_score: score,
        speaker_sentiment: Value::Object(per),
        quality_items: Value::Object(items),
        quality_score: None,
        topics,
        outcome: out,
        outcome_details: Value::Null,
        action_items: Vec::<ActionItem>::new(),
        agent_actions,
        compliance_flags: flags,
        score_impacts: impacts,
        dropped_findings: 0,
        engine: "heuristic".into(),
        model: "lexicon-v2".into(),
        ..Default::default()
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::Segment;

    fn call(lines: &[(&str, &str)]) -> Transcript {
        Transcript {
            segments: lines
                .iter()
                .enumerate()
                .map(|(i, (who, text))| Segment {
                    start: i as f64 * 3.0,
                    end: i as f64 * 3.0 + 2.5,
                    text: text.to_string(),
                    speaker: Some(who.to_string()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn lexicon_and_keywords() {
        assert!(sentiment("Thank you, that is great, okay").unwrap() > 0.25);
        assert!(sentiment("No, I will not pay, stop calling, this is wrong").unwrap() < -0.25);
        assert_eq!(sentiment("The account number is twelve"), None, "no lexicon word: not judged");
        let tpl = Template::builtin("loan_collection").unwrap();
        assert_eq!(
            outcome(&tpl, &call(&[("customer", "Okay, I will pay on Friday")])).as_deref(),
            Some("promise_to_pay")
        );
        assert_eq!(outcome(&tpl, &call(&[("customer", "Sorry, wrong number")])).as_deref(), Some("wrong_number"));
        assert_eq!(outcome(&tpl, &call(&[("customer", "I will not pay this")])).as_deref(), Some("refusal"));
        assert_eq!(outcome(&tpl, &call(&[("customer", "hmm")])), None);
    }

    #[test]
    fn what_it_cannot_judge_is_null_never_a_constant() {
        let tpl = Template::builtin("loan_collection").unwrap();
        let a = analyze(&call(&[("agent", "Your instalment is due."), ("customer", "Hmm.")]), &tpl);
        assert_eq!(a.quality_score, None);
        assert_eq!(a.sentiment_score, None);
        assert_eq!(a.outcome, None);
        for key in ["greeting", "clarity", "empathy", "resolution", "compliance"] {
            assert_eq!(a.quality_items[key], Value::Null, "{key}");
        }
        assert!(a.compliance_flags.is_empty() && a.score_impacts.is_empty());
        assert!(a.summary.contains("no outcome keyword"), "{}", a.summary);
    }

    #[test]
    fn threats_are_flagged_with_their_quote_and_compliance_is_not_five() {
        let mut tpl = Template::builtin("loan_collection").unwrap();
        tpl.topics = vec!["salary".into(), "insurance".into()];
        let t = call(&[
            ("agent", "Good morning, this is Ravi from Apex Finance."),
            ("customer", "My salary has not come this month."),
            ("agent", "If you do not pay today the police will come and arrest you, idiot."),
        ]);
        let a = analyze(&t, &tpl);
        assert_eq!(a.quality_items["compliance"], 0);
        assert_eq!(a.quality_items["greeting"], 5);
        let kinds: Vec<&str> = a.compliance_flags.iter().map(|f| f.kind.as_str()).collect();
        assert_eq!(kinds, ["threat", "abusive_language"]);
        let threat = &a.compliance_flags[0];
        assert_eq!((threat.severity.as_str(), threat.evidence.segment_ids.as_slice()), ("critical", &[2][..]));
        assert!(threat.evidence.quote.contains("police"), "{}", threat.evidence.quote);
        assert!(evidence::check(&t, &threat.evidence.segment_ids, &threat.evidence.quote).is_ok());
        assert_eq!(threat.evidence.timestamp_start, 6.0);
        assert_eq!(a.topics.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(), ["salary"]);
        assert_eq!(a.agent_actions[0].action, "greeting");
        assert_eq!(a.score_impacts.iter().map(|i| i.impact).collect::<Vec<_>>(), [1, -5, -3]);
        // A customer who says "police" is no agent's compliance problem.
        let a = analyze(&call(&[("agent", "Hello sir."), ("customer", "I will call the police on you")]), &tpl);
        assert!(a.compliance_flags.is_empty());
    }
}
