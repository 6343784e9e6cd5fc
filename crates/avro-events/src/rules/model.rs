//! Metadata and rule sets in the Schema Registry's JSON form (`metadata`, `ruleSet`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Schema metadata (`metadata`): free-form properties, tags per field path (`Record.field`,
/// wildcards `*` and `**` allowed) and the names of sensitive fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Metadata {
    /// Tags by field path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, BTreeSet<String>>,
    /// Free-form properties, e.g. `owner`, `major_version` (what `use.latest.with.metadata`
    /// selects on).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    /// Names of sensitive fields.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub sensitive: BTreeSet<String>,
}

impl Metadata {
    /// Metadata with these properties.
    pub fn with_properties<K: Into<String>, V: Into<String>>(
        properties: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            properties: properties
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            ..Self::default()
        }
    }

    /// Adds `tags` to the fields matching `path`.
    pub fn tag(mut self, path: impl Into<String>, tags: &[&str]) -> Self {
        self.tags
            .entry(path.into())
            .or_default()
            .extend(tags.iter().map(|t| (*t).to_owned()));
        self
    }

    /// The tags of the field `full_name` (`<record full name>.<field>`): those of every path
    /// that matches it, as Confluent's wildcard matcher does (`*`: any run of characters but
    /// `.`; `**`: any run; `?`: one character but `.`).
    pub fn tags_of(&self, full_name: &str) -> BTreeSet<String> {
        self.tags
            .iter()
            .filter(|(path, _)| wildcard_match(full_name, path))
            .flat_map(|(_, tags)| tags.iter().cloned())
            .collect()
    }
}

/// Whether `text` matches the wildcard pattern `pattern`.
fn wildcard_match(text: &str, pattern: &str) -> bool {
    fn go(t: &[u8], p: &[u8]) -> bool {
        match p {
            [] => t.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=t.len()).any(|i| go(&t[i..], rest)),
            [b'*', rest @ ..] => {
                let run = t.iter().take_while(|c| **c != b'.').count();
                (0..=run).any(|i| go(&t[i..], rest))
            }
            [b'?', rest @ ..] => matches!(t, [c, ..] if *c != b'.') && go(&t[1..], rest),
            [c, rest @ ..] => t.first() == Some(c) && go(&t[1..], rest),
        }
    }
    let pattern = pattern.replace("**.*", "**");
    go(text.as_bytes(), pattern.as_bytes())
}

/// A rule set (`ruleSet`): domain rules (run on every record), migration rules (between major
/// versions) and encoding rules (on the encoded bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RuleSet {
    /// Migration rules (`UPGRADE`, `DOWNGRADE`, `UPDOWN`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub migration_rules: Vec<Rule>,
    /// Domain rules (`WRITE`, `READ`, `WRITEREAD`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domain_rules: Vec<Rule>,
    /// Encoding rules (on the serialized bytes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encoding_rules: Vec<Rule>,
}

impl RuleSet {
    /// A rule set of these domain rules.
    pub fn domain(rules: impl IntoIterator<Item = Rule>) -> Self {
        Self {
            domain_rules: rules.into_iter().collect(),
            ..Self::default()
        }
    }
}

/// `CONDITION` (checks the record) or `TRANSFORM` (rewrites it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum RuleKind {
    /// The rule checks the record.
    Condition,
    /// The rule rewrites the record.
    Transform,
}

/// When a rule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum RuleMode {
    /// Migration to a newer major version.
    Upgrade,
    /// Migration to an older major version.
    Downgrade,
    /// Both migrations.
    #[serde(rename = "UPDOWN")]
    UpDown,
    /// On decoding.
    Read,
    /// On encoding.
    Write,
    /// On encoding and on decoding.
    #[serde(rename = "WRITEREAD")]
    WriteRead,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Rule {
    /// Unique in its rule set.
    pub name: String,
    /// What it is for (a failed condition's message when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// Condition or transform.
    pub kind: RuleKind,
    /// When it runs.
    pub mode: RuleMode,
    /// The executor: `CEL`, `CEL_FIELD` (run here), `JSONATA`, `ENCRYPT`, … (refused).
    #[serde(rename = "type")]
    pub rule_type: String,
    /// For field rules: the field tags it applies to (all fields when empty).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub tags: BTreeSet<String>,
    /// Parameters, e.g. `dlq.topic`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// The expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
    /// Action after success (`NONE` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<String>,
    /// Action after failure (`ERROR` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<String>,
    /// A disabled rule never runs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

impl Rule {
    /// A rule of `kind` and `mode`, type `rule_type`, evaluating `expr`.
    pub fn new(
        name: impl Into<String>,
        kind: RuleKind,
        mode: RuleMode,
        rule_type: impl Into<String>,
        expr: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            doc: None,
            kind,
            mode,
            rule_type: rule_type.into(),
            tags: BTreeSet::new(),
            params: BTreeMap::new(),
            expr: Some(expr.into()),
            on_success: None,
            on_failure: None,
            disabled: false,
        }
    }

    /// Sets [`Rule::on_failure`].
    pub fn on_failure(mut self, action: impl Into<String>) -> Self {
        self.on_failure = Some(action.into());
        self
    }

    /// Sets [`Rule::on_success`].
    pub fn on_success(mut self, action: impl Into<String>) -> Self {
        self.on_success = Some(action.into());
        self
    }

    /// Adds a parameter (e.g. `dlq.topic`).
    pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }

    /// Sets [`Rule::tags`].
    pub fn tags(mut self, tags: &[&str]) -> Self {
        self.tags = tags.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    /// Sets [`Rule::doc`].
    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = Some(doc.into());
        self
    }
}
