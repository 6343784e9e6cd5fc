//! What a registration carries besides the schema text: references to schemas of other
//! subjects, metadata (properties, tags, sensitive fields) and a rule set (domain, migration and
//! encoding rules), in the normalized form Confluent's registry stores and serves them (maps
//! and sets sorted; a rule's kind and mode defaulted to TRANSFORM and WRITEREAD), and the schema
//! GUID: the MD5 of the canonical text and all three, as Confluent's `Schema.updateHash` hashes
//! them, written as a UUID. Two registrations are one schema (one id, one GUID) exactly when
//! their GUIDs are equal.

use std::collections::{BTreeMap, BTreeSet};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;

/// A reference to a schema registered under another subject: `name` is what the referring
/// schema calls it (for Avro, the full name of the type it defines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Reference {
    pub(crate) name: String,
    pub(crate) subject: String,
    /// A version number; `-1` in a request means the subject's latest, stored as the number.
    pub(crate) version: i32,
}

/// Schema metadata: free-form properties, tags per path, and the names of sensitive fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Metadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) tags: BTreeMap<String, BTreeSet<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) properties: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub(crate) sensitive: BTreeSet<String>,
}

const KINDS: [&str; 2] = ["CONDITION", "TRANSFORM"];
const MIGRATION_MODES: [&str; 3] = ["UPGRADE", "DOWNGRADE", "UPDOWN"];
const DOMAIN_MODES: [&str; 3] = ["WRITE", "READ", "WRITEREAD"];

fn transform() -> String {
    "TRANSFORM".into()
}

fn write_read() -> String {
    "WRITEREAD".into()
}

/// One data-contract rule, stored and served; the registry does not run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) doc: Option<String>,
    #[serde(default = "transform")]
    pub(crate) kind: String,
    #[serde(default = "write_read")]
    pub(crate) mode: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub(crate) rule_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub(crate) tags: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) params: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) on_success: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) on_failure: Option<String>,
    #[serde(default)]
    pub(crate) disabled: bool,
}

/// A rule set: migration rules (UPGRADE/DOWNGRADE between major versions), domain rules and
/// encoding rules (WRITE/READ).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RuleSet {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) migration_rules: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) domain_rules: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) encoding_rules: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) enable_at: Option<String>,
}

impl Rule {
    /// Confluent's `Rule.validate`: a name (a letter or `_`, then letters, digits, `_`, `-`;
    /// at most 256), a type, a known kind and mode, and a single action unless the mode is
    /// WRITEREAD or UPDOWN.
    fn validate(&self, modes: &[&str], phase: &str) -> Result<(), String> {
        let name = self.name.as_deref().ok_or("Missing rule name")?;
        let mut chars = name.chars();
        match chars.next() {
            None => return Err("Empty rule name".into()),
            Some(c) if !(c.is_alphabetic() || c == '_') => {
                return Err(format!("Illegal initial character in rule name: {name}"));
            }
            Some(_) => {}
        }
        if name.chars().count() > 256 {
            return Err("Rule name too long".into());
        }
        if !chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("Illegal character in rule name: {name}"));
        }
        if self.rule_type.is_none() {
            return Err(format!("Missing rule type in rule {name}"));
        }
        if !KINDS.contains(&self.kind.as_str()) {
            return Err(format!("Unknown rule kind '{}' in rule {name}", self.kind));
        }
        if !modes.contains(&self.mode.as_str()) {
            return Err(format!(
                "{phase} rules can only be {}; rule {name} is {}",
                modes.join(", "),
                self.mode
            ));
        }
        let pair_allowed = self.mode == "WRITEREAD" || self.mode == "UPDOWN";
        for action in [&self.on_success, &self.on_failure].into_iter().flatten() {
            if !pair_allowed && action.contains(',') {
                return Err(format!(
                    "Multiple actions only valid with WRITEREAD and UPDOWN: rule {name}"
                ));
            }
        }
        Ok(())
    }

    fn hash(&self, md: &mut Md5) {
        for s in [&self.name, &self.doc].into_iter().flatten() {
            md.update(s.as_bytes());
        }
        md.update(self.kind.as_bytes());
        md.update(self.mode.as_bytes());
        if let Some(t) = &self.rule_type {
            md.update(t.as_bytes());
        }
        for tag in &self.tags {
            md.update(tag.as_bytes());
        }
        for (k, v) in &self.params {
            md.update(k.as_bytes());
            md.update(v.as_bytes());
        }
        for s in [&self.expr, &self.on_success, &self.on_failure]
            .into_iter()
            .flatten()
        {
            md.update(s.as_bytes());
        }
        if self.disabled {
            md.update([1u8]);
        }
    }
}

impl RuleSet {
    /// Confluent's `RuleSet.validate`: rule names unique across the set, each rule valid for
    /// its phase. Refused with 42210.
    pub(crate) fn validate(&self) -> Result<(), ApiError> {
        let mut names = BTreeSet::new();
        let phases: [(&[Rule], &[&str], &str); 3] = [
            (&self.migration_rules, &MIGRATION_MODES, "Migration"),
            (&self.domain_rules, &DOMAIN_MODES, "Domain"),
            (&self.encoding_rules, &DOMAIN_MODES, "Encoding"),
        ];
        for (rules, modes, phase) in phases {
            for rule in rules {
                if let Some(name) = &rule.name
                    && !names.insert(name.clone())
                {
                    return Err(ApiError::invalid_rule_set(format!(
                        "Found rule with duplicate name '{name}'"
                    )));
                }
                rule.validate(modes, phase)
                    .map_err(ApiError::invalid_rule_set)?;
            }
        }
        Ok(())
    }

    fn hash(&self, md: &mut Md5) {
        for rule in self
            .migration_rules
            .iter()
            .chain(&self.domain_rules)
            .chain(&self.encoding_rules)
        {
            rule.hash(md);
        }
        if let Some(at) = &self.enable_at {
            md.update(at.as_bytes());
        }
    }
}

impl Metadata {
    fn hash(&self, md: &mut Md5) {
        for (k, values) in &self.tags {
            md.update(k.as_bytes());
            for v in values {
                md.update(v.as_bytes());
            }
        }
        for (k, v) in &self.properties {
            md.update(k.as_bytes());
            md.update(v.as_bytes());
        }
        for s in &self.sensitive {
            md.update(s.as_bytes());
        }
    }

    /// Whether every `(key, value)` is among the properties (`GET /subjects/{s}/metadata`).
    pub(crate) fn has_properties(&self, wanted: &[(String, String)]) -> bool {
        wanted
            .iter()
            .all(|(k, v)| self.properties.get(k).is_some_and(|have| have == v))
    }
}

/// References, metadata and rule set of one schema.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Contract {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) references: Vec<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rule_set: Option<RuleSet>,
}

impl Contract {
    /// Reads the request's `references`, `metadata` and `ruleSet` (JSON `null` is absent).
    pub(crate) fn from_request(
        references: Option<Value>,
        metadata: Option<Value>,
        rule_set: Option<Value>,
    ) -> Result<Self, ApiError> {
        let references: Vec<Reference> = match references {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => serde_json::from_value(value)
                .map_err(|e| ApiError::invalid_schema(format!("Invalid reference: {e}")))?,
        };
        let metadata: Option<Metadata> = match metadata {
            None | Some(Value::Null) => None,
            Some(value) => Some(serde_json::from_value(value).map_err(ApiError::bad_request)?),
        };
        let rule_set: Option<RuleSet> = match rule_set {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                serde_json::from_value(value)
                    .map_err(|e| ApiError::invalid_rule_set(e.to_string()))?,
            ),
        };
        Ok(Self {
            references,
            metadata,
            rule_set,
        })
    }

    /// Confluent's checks of a rule set to register (42210); lookups and compatibility checks
    /// take any.
    pub(crate) fn validate(&self) -> Result<(), ApiError> {
        match &self.rule_set {
            Some(rules) => rules.validate(),
            None => Ok(()),
        }
    }

    /// Whether the contract has neither metadata nor a rule set (a registration without them
    /// takes those of the subject's latest version, as Confluent's registry does).
    pub(crate) fn inherits(&self) -> bool {
        self.metadata.is_none() && self.rule_set.is_none()
    }

    /// The schema GUID of `canonical` with this contract: Confluent's MD5 over the text, each
    /// reference (name, subject, version as a big-endian int), then a 1 byte and the metadata,
    /// then a 1 byte and the rule set, each when present.
    pub(crate) fn guid(&self, canonical: &str) -> uuid::Uuid {
        let mut md = Md5::new();
        md.update(canonical.as_bytes());
        for r in &self.references {
            md.update(r.name.as_bytes());
            md.update(r.subject.as_bytes());
            md.update(r.version.to_be_bytes());
        }
        if let Some(metadata) = &self.metadata {
            md.update([1u8]);
            metadata.hash(&mut md);
        }
        if let Some(rules) = &self.rule_set {
            md.update([1u8]);
            rules.hash(&mut md);
        }
        uuid::Uuid::from_bytes(md.finalize().into())
    }

    /// The members a response adds for this contract: `references`, `metadata`, `ruleSet`,
    /// each only when present (Confluent omits empty ones).
    pub(crate) fn add_to(&self, body: &mut serde_json::Map<String, Value>) {
        if let Ok(Value::Object(members)) = serde_json::to_value(self) {
            body.extend(members);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guid_is_the_md5_of_the_text_as_a_uuid() {
        // MD5("\"string\"") = 095d71cf12556b9d5e330ad575b3df5d (coreutils md5sum).
        let guid = Contract::default().guid("\"string\"");
        assert_eq!(guid.to_string(), "095d71cf-1255-6b9d-5e33-0ad575b3df5d");
    }

    #[test]
    fn rules_are_normalized_and_validated() {
        let set = Contract::from_request(
            None,
            None,
            Some(serde_json::json!({"domainRules": [{"name": "r", "type": "CEL"}]})),
        )
        .unwrap();
        let rule = &set.rule_set.unwrap().domain_rules[0];
        assert_eq!(
            (rule.kind.as_str(), rule.mode.as_str()),
            ("TRANSFORM", "WRITEREAD")
        );
        let refused = Contract::from_request(
            None,
            None,
            Some(serde_json::json!({"domainRules": [{"name": "r", "type": "CEL", "mode": "UPGRADE"}]})),
        )
        .unwrap()
        .validate()
        .unwrap_err();
        assert_eq!(refused.code, 42210, "{refused}");
    }
}
