//! Analysis settings in tiers: global < campaign type < direction < client.
//!
//! The global tier is `[analysis]` (its `template`); each later tier is a
//! [`Layer`] that replaces only what it sets. Layers come from the config file
//! (`[analysis.tiers.campaign_type.NAME]`, `[analysis.tiers.direction.NAME]`,
//! `[analysis.tiers.client.NAME]`) and, where it exists, from the shared
//! database's `ai_configs` table, the table the app's other worker reads
//! (`config_tier` = `global`, `campaign`, `direction` or `client`, matched on
//! `campaign_type`, `direction` or `client_ref`, `config_data` JSON, `is_active`).
//! Within a tier the database row is applied after the file's, so the app team's
//! edits win. A recording picks its layers by its context columns
//! (`campaign_type`, `direction`, `client_ref`); the analysis records which tiers
//! applied and a version: a hash of the settings used, which changes whenever
//! any of them does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::template::{ComplianceRule, RubricItem, Template};

/// A recording's context columns (the app fills them; any may be NULL).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CallContext {
    pub campaign_type: Option<String>,
    pub direction: Option<String>,
    pub client_ref: Option<String>,
}

/// One tier's settings: each field replaces the one below it when set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Layer {
    /// Start again from this template (built-in or `[analysis.templates]`).
    pub template: Option<String>,
    pub context: Option<String>,
    pub outcomes: Option<Vec<String>>,
    pub outcome_details: Option<Vec<String>>,
    pub instructions: Option<String>,
    pub rubric: Option<Vec<RubricItem>>,
    pub topics: Option<Vec<String>>,
    pub agent_actions: Option<Vec<String>>,
    pub compliance: Option<Vec<ComplianceRule>>,
}

/// The tiers of the config file, by name within each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileTiers {
    pub campaign_type: BTreeMap<String, Layer>,
    pub direction: BTreeMap<String, Layer>,
    pub client: BTreeMap<String, Layer>,
}

/// A tier, in the order they apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Global,
    CampaignType,
    Direction,
    Client,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Global => "global",
            Tier::CampaignType => "campaign_type",
            Tier::Direction => "direction",
            Tier::Client => "client",
        }
    }

    /// `config_tier` of the other worker's `ai_configs` table (old names too).
    pub fn from_table(s: &str) -> Option<Tier> {
        match s.trim() {
            "global" | "universal" => Some(Tier::Global),
            "campaign" | "campaign_type" => Some(Tier::CampaignType),
            "direction" => Some(Tier::Direction),
            "client" => Some(Tier::Client),
            _ => None,
        }
    }
}

/// One active row of `ai_configs`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableLayer {
    pub tier: Tier,
    /// The value matched: campaign type, direction or client ref (none for global).
    pub key: Option<String>,
    pub layer: Layer,
}

impl TableLayer {
    /// Read one row: `config_data` in the other worker's keys (`topics`,
    /// `agent_actions`, `performance_rubric` as names or `{name, description}`)
    /// or ours. Keys that are neither (goals, tone, organisation, …) become
    /// instructions lines, as the other worker puts them in its prompt.
    pub fn from_row(tier: &str, key: Option<String>, data: &Value) -> Result<TableLayer, String> {
        let tier = Tier::from_table(tier).ok_or_else(|| format!("unknown config_tier {tier:?}"))?;
        let obj = data.as_object().ok_or("config_data is not a JSON object")?;
        let strings = |v: &Value| -> Option<Vec<String>> {
            v.as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().or_else(|| x.get("name").and_then(Value::as_str)))
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
        };
        let mut layer = Layer::default();
        let mut notes = Vec::new();
        for (k, v) in obj {
            match k.as_str() {
                "template" => layer.template = v.as_str().map(str::to_string),
                "context" => layer.context = v.as_str().map(str::to_string),
                "instructions" => notes.insert(0, v.as_str().unwrap_or_default().to_string()),
                "outcomes" => layer.outcomes = strings(v),
                "outcome_details" => layer.outcome_details = strings(v),
                "topics" => layer.topics = strings(v),
                "agent_actions" => layer.agent_actions = strings(v),
                "rubric" | "performance_rubric" => {
                    layer.rubric = v.as_array().map(|a| {
                        a.iter()
                            .filter_map(|x| {
                                let name = x.as_str().or_else(|| x.get("name").and_then(Value::as_str))?;
                                let key = x.get("key").and_then(Value::as_str).map(str::to_string);
                                let desc = x.get("description").and_then(Value::as_str).unwrap_or(name);
                                Some(RubricItem {
                                    key: key.unwrap_or_else(|| crate::contract::key(name)),
                                    description: desc.to_string(),
                                })
                            })
                            .collect()
                    })
                }
                "compliance" => {
                    layer.compliance =
                        Some(serde_json::from_value(v.clone()).map_err(|e| format!("config_data.compliance: {e}"))?)
                }
                _ => {
                    notes.push(format!("{}: {}", k.replace('_', " "), v.as_str().map_or(v.to_string(), str::to_string)))
                }
            }
        }
        if !notes.is_empty() {
            layer.instructions = Some(notes.join("\n"));
        }
        Ok(TableLayer { tier, key, layer })
    }
}

/// Which tiers applied to one call, and the version of the settings used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// `global`, then e.g. `campaign_type:collections (file)`, `client:ACME (table)`.
    pub tiers: Vec<String>,
    /// 12 hex digits of a hash of the settings used.
    pub version: String,
}

/// Everything needed to choose the settings for a call.
#[derive(Debug, Clone, Default)]
pub struct Tiers {
    pub global: Template,
    pub file: FileTiers,
    /// Custom templates, for layers that name one.
    pub templates: BTreeMap<String, Template>,
}

impl Tiers {
    /// A template by name: custom ones first, then the built-ins.
    pub fn template(&self, name: &str) -> Option<Template> {
        let mut t = self.templates.get(name).cloned().or_else(|| Template::builtin(name))?;
        t.name = name.to_string();
        Some(t.complete())
    }

    /// Check every file layer against the templates (config validation).
    pub fn problem(&self) -> Option<String> {
        for (tier, map) in [
            (Tier::CampaignType, &self.file.campaign_type),
            (Tier::Direction, &self.file.direction),
            (Tier::Client, &self.file.client),
        ] {
            for (name, layer) in map {
                let mut t = self.global.clone();
                if let Err(e) = self.apply(&mut t, layer) {
                    return Some(format!("analysis.tiers.{}.{name}: {e}", tier.name()));
                }
            }
        }
        None
    }

    fn apply(&self, t: &mut Template, l: &Layer) -> Result<(), String> {
        if let Some(name) = &l.template {
            *t = self.template(name).ok_or_else(|| format!("no template named {name:?}"))?;
        }
        let set = |dst: &mut String, src: &Option<String>| {
            if let Some(s) = src {
                *dst = s.clone();
            }
        };
        set(&mut t.context, &l.context);
        set(&mut t.instructions, &l.instructions);
        let set_list = |dst: &mut Vec<String>, src: &Option<Vec<String>>| {
            if let Some(s) = src {
                *dst = s.clone();
            }
        };
        set_list(&mut t.outcomes, &l.outcomes);
        set_list(&mut t.outcome_details, &l.outcome_details);
        set_list(&mut t.topics, &l.topics);
        set_list(&mut t.agent_actions, &l.agent_actions);
        if let Some(r) = &l.rubric {
            t.rubric = r.clone();
        }
        if let Some(c) = &l.compliance {
            t.compliance = c.clone();
        }
        *t = std::mem::take(t).complete();
        match t.problem() {
            Some(p) => Err(p),
            None => Ok(()),
        }
    }

    /// The settings for a call with context `ctx`, given the active rows of the
    /// `ai_configs` table (empty where there is none). A table row that does not
    /// make a valid template is skipped with a warning, never fatal for the call.
    pub fn select(&self, ctx: &CallContext, table: &[TableLayer]) -> (Template, Applied) {
        let mut t = self.global.clone();
        let mut applied = vec![format!("global:{}", t.name)];
        let norm = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        for tier in [Tier::Global, Tier::CampaignType, Tier::Direction, Tier::Client] {
            let (file_map, want) = match tier {
                Tier::Global => (None, None),
                Tier::CampaignType => (Some(&self.file.campaign_type), norm(&ctx.campaign_type)),
                Tier::Direction => (Some(&self.file.direction), norm(&ctx.direction)),
                Tier::Client => (Some(&self.file.client), norm(&ctx.client_ref)),
            };
            if tier != Tier::Global && want.is_none() {
                continue;
            }
            if let (Some(map), Some(w)) = (file_map, &want) {
                if let Some(layer) = lookup(map, w) {
                    let before = t.clone();
                    match self.apply(&mut t, layer) {
                        Ok(()) => applied.push(format!("{}:{w} (file)", tier.name())),
                        Err(e) => {
                            tracing::warn!(tier = tier.name(), error = %e, "tier skipped");
                            t = before;
                        }
                    }
                }
            }
            let rows = table.iter().filter(|r| {
                r.tier == tier
                    && (tier == Tier::Global
                        || r.key.as_deref().map(str::trim).map(str::to_lowercase)
                            == want.as_deref().map(str::to_lowercase))
            });
            for row in rows {
                let before = t.clone();
                match self.apply(&mut t, &row.layer) {
                    Ok(()) => applied.push(match &want {
                        Some(w) => format!("{}:{w} (table)", tier.name()),
                        None => format!("{} (table)", tier.name()),
                    }),
                    Err(e) => {
                        tracing::warn!(tier = tier.name(), error = %e, "ai_configs row skipped");
                        t = before;
                    }
                }
            }
        }
        let version = version_of(&t);
        (t, Applied { tiers: applied, version })
    }
}

/// A layer by name, ignoring case (the app's columns are free text).
fn lookup<'a>(map: &'a BTreeMap<String, Layer>, want: &str) -> Option<&'a Layer> {
    map.get(want).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(want)).map(|(_, v)| v))
}

/// FNV-1a over the settings' JSON: stable across runs and builds.
fn version_of(t: &Template) -> String {
    let bytes = serde_json::to_vec(t).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:012x}", h & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers() -> Tiers {
        let file: FileTiers = toml::from_str(
            r#"
            [campaign_type.delivery]
            template = "delivery"
            topics = ["address", "delivery date"]
            [direction.inbound]
            instructions = "The customer called in."
            [client.ACME]
            topics = ["billing", "refund"]
            compliance = [{type = "gift_aid", description = "claimed Gift Aid without a declaration", severity = "high"}]
            "#,
        )
        .unwrap();
        Tiers { global: Template::builtin("loan_collection").unwrap(), file, templates: BTreeMap::new() }
    }

    fn ctx(c: Option<&str>, d: Option<&str>, r: Option<&str>) -> CallContext {
        CallContext {
            campaign_type: c.map(str::to_string),
            direction: d.map(str::to_string),
            client_ref: r.map(str::to_string),
        }
    }

    #[test]
    fn tiers_apply_in_order_and_only_what_they_set() {
        let t = tiers();
        assert_eq!(t.problem(), None);
        let (g, a) = t.select(&CallContext::default(), &[]);
        assert_eq!(g.name, "loan_collection");
        assert_eq!(a.tiers, ["global:loan_collection"]);

        let (d, a) = t.select(&ctx(Some("delivery"), Some("INBOUND"), None), &[]);
        assert_eq!(d.name, "delivery");
        assert!(d.outcomes.contains(&"reschedule".to_string()));
        assert_eq!(d.topics, ["address", "delivery date"]);
        assert_eq!(d.instructions, "The customer called in.");
        assert_eq!(a.tiers, ["global:loan_collection", "campaign_type:delivery (file)", "direction:INBOUND (file)"]);

        // The client tier replaces the topics and the rules, keeps the campaign's outcomes.
        let (c, a2) = t.select(&ctx(Some("delivery"), None, Some("ACME")), &[]);
        assert_eq!(c.topics, ["billing", "refund"]);
        assert_eq!(c.compliance_types(), ["gift_aid"]);
        assert!(c.outcomes.contains(&"reschedule".to_string()));
        assert_ne!(a.version, a2.version, "other settings, another version");
        // Unknown values fall through to the tiers below.
        let (u, _) = t.select(&ctx(Some("nothing"), Some("sideways"), Some("nobody")), &[]);
        assert_eq!(u, g);
    }

    #[test]
    fn table_rows_in_the_other_workers_shape_win_over_the_file() {
        let t = tiers();
        let row = TableLayer::from_row(
            "client",
            Some("acme".into()),
            &serde_json::json!({
                "topics": ["donation", {"name": "gift aid"}],
                "performance_rubric": ["Empathy", {"name": "Script adherence", "description": "followed the script"}],
                "organisation_name": "ACME Trust"
            }),
        )
        .unwrap();
        let global =
            TableLayer::from_row("universal", None, &serde_json::json!({"outcomes": ["sale", "no_sale"]})).unwrap();
        let (c, a) = t.select(&ctx(None, None, Some("ACME")), &[row, global]);
        assert_eq!(c.outcomes, ["sale", "no_sale", "other"]);
        assert_eq!(c.topics, ["donation", "gift aid"], "the table's row applies after the file's");
        assert_eq!(c.rubric_keys(), ["empathy", "script_adherence"]);
        assert!(c.instructions.contains("organisation name: ACME Trust"));
        assert_eq!(a.tiers, ["global:loan_collection", "global (table)", "client:ACME (file)", "client:ACME (table)"]);
        assert!(TableLayer::from_row("galaxy", None, &serde_json::json!({})).is_err());
    }

    #[test]
    fn a_bad_layer_is_named_in_the_config_and_skipped_from_the_table() {
        let mut t = tiers();
        t.file.client.insert("BAD".into(), Layer { template: Some("astrology".into()), ..Default::default() });
        assert!(t.problem().unwrap().contains("analysis.tiers.client.BAD"));
        t.file.client.remove("BAD");
        let bad = TableLayer::from_row(
            "client",
            Some("X".into()),
            &serde_json::json!({"compliance": [{"type": "x", "description": "y", "severity": "apocalyptic"}]}),
        )
        .unwrap();
        let (c, a) = t.select(&ctx(None, None, Some("X")), &[bad]);
        assert_eq!(c, t.global);
        assert_eq!(a.tiers.len(), 1);
    }
}
