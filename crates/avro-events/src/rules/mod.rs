//! Data contracts: schema metadata and rule sets, as Confluent's Schema Registry stores them
//! with a schema, and the CEL domain rules the codec runs on them.
//!
//! A schema may be registered with [`Metadata`] (free-form properties, tags per field path,
//! sensitive field names) and a [`RuleSet`] ([`RegistryClient::register_contract`](crate::registry::RegistryClient::register_contract)); the registry serves both back with
//! the schema. `use.latest.with.metadata` ([`Codec::with_latest_metadata`](crate::Codec::with_latest_metadata))
//! writes with the latest version whose properties include given pairs.
//!
//! **Domain rules** run as Confluent's serializers run them (its Python client's
//! `_execute_rules` is the oracle):
//! - on **encoding** (mode `WRITE`, or `WRITEREAD`), only when the codec writes with a schema
//!   it got from the registry (`use.latest.version`, `use.latest.with.metadata`,
//!   `use.schema.id`): that schema's rules, in order. Writing with the type's own schema
//!   (`auto.register.schemas`, lookup) runs none, as in Confluent's clients;
//! - on **decoding** (mode `READ`, or `WRITEREAD`), the writer schema's rules, in reverse
//!   order (the Rust reader type carries no rule set of its own).
//!
//! Two rule types: `CEL` sees the whole record as `message`; `CEL_FIELD` runs once per
//! primitive field (int, long, float, double, boolean, null, string, bytes; in nested records,
//! arrays, maps and unions too) with `value`, `name`, `fullName` (`<record full name>.<field>`),
//! `typeName` (`STRING`, `INT`, …), `tags` (the field's tags from the metadata, matched by
//! wildcard) and `message` (the record holding the field). Only fields whose tags meet the
//! rule's `tags` are visited when the rule names tags. An expression `guard; expr` runs `expr`
//! only when `guard` holds (a CONDITION whose guard fails passes).
//!
//! A `CONDITION` fails when its result is not `true` (for `CEL_FIELD`: when it is `false`); a
//! `TRANSFORM` replaces the record (`CEL`) or the field (`CEL_FIELD`) with its result. After
//! each rule its action runs: `onSuccess` (default `NONE`) or, when the rule failed or raised
//! an error, `onFailure` (default `ERROR`). For a `WRITEREAD` rule an action `"A,B"` means A on
//! write and B on read. Actions:
//! - `NONE`: nothing (a failed condition is ignored);
//! - `ERROR`: encoding or decoding fails with [`Error::RuleFailed`];
//! - `DLQ`: as `ERROR`, and the record goes to the topic the rule's `dlq.topic` parameter
//!   names: on the producer side the value as JSON (before any transform), with Confluent's
//!   `__rule.name`, `__rule.mode`, `__rule.subject`, `__rule.topic` and `__rule.exception`
//!   headers ([`DeadLetter`]); when that write fails (refused, too large, timed out), the
//!   send fails with [`Error::DeadLetterFailed`] naming both the rule's failure and the
//!   write's, since the record is then on neither topic. On the consumer side the record is
//!   poison ([`Error::is_poison`]) and goes with its original bytes to the consumer's
//!   dead-letter topic; when that write fails the receive returns its error and the record is
//!   neither acknowledged nor passed over (the next receive writes it again).
//!
//! In CEL, Avro values are: records and maps as maps with string keys, arrays as lists, `int`
//! and `long` (and the logical types over them: dates, times, timestamps) as `int`, `float` and
//! `double` as `double`, strings, enum symbols and UUIDs as `string`, `bytes` and `fixed` as
//! `bytes`, a union as its branch's value. Confluent's Python client gives timestamps as CEL
//! timestamps; here they stay integers (the `cel` crate is built without `chrono`).
//!
//! **Not supported, refused with [`Error::UnsupportedRule`]**
//! whenever a schema with them is written or read (never ignored): migration rules
//! (`UPGRADE`, `DOWNGRADE`, `UPDOWN`; Confluent runs them with JSONata, and the one JSONata
//! crate for Rust, `jsonata-rs` 0.3, describes itself as incomplete), encoding rules, rule
//! types other than `CEL` and `CEL_FIELD` (`ENCRYPT`, `JSONATA`, …), actions other than
//! `NONE`, `ERROR` and `DLQ`, and, in a build without the `rules` feature, every domain rule.
//! Disabled rules (`disabled: true`) are skipped. Keys are always written with their own
//! schema, so no rule runs on keys.

#[cfg(feature = "rules")]
mod cel;
#[cfg(feature = "rules")]
mod exec;
mod model;

use std::collections::BTreeMap;

pub use crate::error::DeadLetter;
pub use model::{Metadata, Rule, RuleKind, RuleMode, RuleSet};

use crate::{Error, Result};

/// A schema's data contract as a file holds it (`{"metadata": …, "ruleSet": …}`, the members
/// of a registration request): what [`RegistryClient::register_contract`](crate::registry::RegistryClient::register_contract) sends with a schema.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Contract {
    /// Metadata registered with the schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Rules registered with the schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_set: Option<RuleSet>,
}

impl Contract {
    /// Parses a contract file's JSON.
    ///
    /// # Errors
    /// [`Error::InvalidSchema`] naming `origin` when `text` is not a contract.
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::InvalidSchema {
            origin: origin.to_owned(),
            reason: format!("not a data contract (metadata, ruleSet): {e}"),
        })
    }
}

/// The rule types the codec runs.
pub const CEL: &str = "CEL";
/// The field rule type the codec runs.
pub const CEL_FIELD: &str = "CEL_FIELD";

/// Headers of a record a `DLQ` action sends, as Confluent's clients name them.
pub mod headers {
    /// The failed rule's name.
    pub const RULE_NAME: &str = "__rule.name";
    /// `WRITE` or `READ`.
    pub const RULE_MODE: &str = "__rule.mode";
    /// The subject whose rule failed.
    pub const RULE_SUBJECT: &str = "__rule.subject";
    /// The topic the record was for.
    pub const RULE_TOPIC: &str = "__rule.topic";
    /// Why it failed.
    pub const RULE_EXCEPTION: &str = "__rule.exception";
}

/// Whether a rule runs on encoding or on decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Encoding: `WRITE` and `WRITEREAD` rules, in order.
    Write,
    /// Decoding: `READ` and `WRITEREAD` rules, in reverse order.
    Read,
}

impl Direction {
    #[cfg_attr(not(feature = "rules"), allow(dead_code))]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Write => "WRITE",
            Self::Read => "READ",
        }
    }

    /// Whether a rule of `mode` runs in this direction.
    pub(crate) fn runs(self, mode: RuleMode) -> bool {
        matches!(
            (self, mode),
            (Self::Write, RuleMode::Write | RuleMode::WriteRead)
                | (Self::Read, RuleMode::Read | RuleMode::WriteRead)
        )
    }
}

/// What a rule's action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    None,
    Error,
    Dlq,
}

/// The action `configured` names for `direction` (`"A,B"` on a `WRITEREAD` rule: A on write,
/// B on read), or `default` when it names none.
pub(crate) fn action(
    rule: &Rule,
    configured: Option<&str>,
    direction: Direction,
    default: Action,
) -> std::result::Result<Action, String> {
    let Some(name) = configured.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(default);
    };
    let name = match (rule.mode, name.split_once(',')) {
        (RuleMode::WriteRead, Some((write, read))) => match direction {
            Direction::Write => write.trim(),
            Direction::Read => read.trim(),
        },
        _ => name,
    };
    match name.to_ascii_uppercase().as_str() {
        "NONE" => Ok(Action::None),
        "ERROR" => Ok(Action::Error),
        "DLQ" => Ok(Action::Dlq),
        other => Err(format!(
            "action '{other}' is not supported (only NONE, ERROR and DLQ)"
        )),
    }
}

/// The domain rules of `set` that run in `direction`, in the order they run, after refusing
/// what this codec cannot run (see the module docs): `Ok(vec![])` when nothing runs.
///
/// # Errors
/// [`Error::UnsupportedRule`] naming the first rule (or part of the set) that cannot run.
pub(crate) fn runnable<'s>(
    set: &'s RuleSet,
    subject: &str,
    direction: Direction,
) -> Result<Vec<&'s Rule>> {
    let refuse = |rule: &str, reason: String| Error::UnsupportedRule {
        subject: subject.to_owned(),
        rule: rule.to_owned(),
        reason,
    };
    if let Some(rule) = set.migration_rules.iter().find(|r| !r.disabled) {
        return Err(refuse(
            &rule.name,
            "migration rules (UPGRADE/DOWNGRADE, JSONata in Confluent's clients) are not \
             supported: there is no complete JSONata implementation for Rust"
                .into(),
        ));
    }
    if let Some(rule) = set.encoding_rules.iter().find(|r| !r.disabled) {
        return Err(refuse(
            &rule.name,
            format!("encoding rules (type {}) are not supported", rule.rule_type),
        ));
    }
    let mut rules: Vec<&Rule> = set
        .domain_rules
        .iter()
        .filter(|r| !r.disabled && direction.runs(r.mode))
        .collect();
    if direction == Direction::Read {
        rules.reverse();
    }
    for rule in &rules {
        let kind = rule.rule_type.to_ascii_uppercase();
        if kind != CEL && kind != CEL_FIELD {
            return Err(refuse(
                &rule.name,
                format!(
                    "rule type '{}' is not supported (only CEL and CEL_FIELD)",
                    rule.rule_type
                ),
            ));
        }
        if matches!(
            rule.mode,
            RuleMode::Upgrade | RuleMode::Downgrade | RuleMode::UpDown
        ) {
            return Err(refuse(&rule.name, "a migration mode in domainRules".into()));
        }
        for configured in [rule.on_success.as_deref(), rule.on_failure.as_deref()] {
            action(rule, configured, direction, Action::None).map_err(|e| refuse(&rule.name, e))?;
        }
        if !cfg!(feature = "rules") {
            return Err(refuse(
                &rule.name,
                "CEL rules need avro-events' `rules` feature, which this build lacks".into(),
            ));
        }
    }
    Ok(rules)
}

/// The outcome of the rules on one record.
#[derive(Debug)]
#[cfg_attr(not(feature = "rules"), allow(dead_code))]
pub(crate) enum Applied {
    /// No rule changed the record: write or read the original bytes.
    Unchanged,
    /// A transform changed it: these are the new body bytes (same schema).
    Changed(Vec<u8>),
}

/// Where a record is being written or read, for errors and dead-letter headers.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "rules"), allow(dead_code))]
pub(crate) struct Scope<'a> {
    pub(crate) subject: &'a str,
    pub(crate) topic: &'a str,
    pub(crate) direction: Direction,
}

/// The compiled CEL programs of one rule set, by expression text: compiled once, bounded by
/// the rule set's expressions.
#[derive(Default)]
pub(crate) struct Programs {
    #[cfg(feature = "rules")]
    by_source: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<::cel::Program>>>,
}

impl std::fmt::Debug for Programs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Programs").finish_non_exhaustive()
    }
}

#[cfg(feature = "rules")]
impl Programs {
    /// The program of `source`, compiled on first use.
    pub(crate) fn get(
        &self,
        source: &str,
    ) -> std::result::Result<std::sync::Arc<::cel::Program>, String> {
        let mut by_source = self
            .by_source
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = by_source.get(source) {
            return Ok(found.clone());
        }
        let program = ::cel::Program::compile(source)
            .map_err(|e| format!("the expression '{source}' does not parse: {e}"))?;
        let program = std::sync::Arc::new(program);
        by_source.insert(source.to_owned(), program.clone());
        Ok(program)
    }
}

/// Runs `rules` (from [`runnable`]) on `body`, an Avro body in `schema`.
///
/// # Errors
/// [`Error::RuleFailed`] for a failed rule whose action is `ERROR` or `DLQ`.
#[cfg(feature = "rules")]
pub(crate) fn apply(
    rules: &[&Rule],
    programs: &Programs,
    metadata: Option<&Metadata>,
    schema: &apache_avro::Schema,
    body: &[u8],
    scope: Scope<'_>,
) -> Result<Applied> {
    exec::apply(rules, programs, metadata, schema, body, scope)
}

/// Without the `rules` feature [`runnable`] refuses every domain rule, so this never runs a
/// rule.
#[cfg(not(feature = "rules"))]
pub(crate) fn apply(
    rules: &[&Rule],
    _programs: &Programs,
    _metadata: Option<&Metadata>,
    _schema: &apache_avro::Schema,
    _body: &[u8],
    scope: Scope<'_>,
) -> Result<Applied> {
    match rules.first() {
        None => Ok(Applied::Unchanged),
        Some(rule) => Err(Error::UnsupportedRule {
            subject: scope.subject.to_owned(),
            rule: rule.name.clone(),
            reason: "CEL rules need avro-events' `rules` feature, which this build lacks".into(),
        }),
    }
}

/// Parses `use.latest.with.metadata` as Confluent's Java client writes it: `key=value` pairs
/// separated by commas.
///
/// # Errors
/// [`Error::Config`] for a pair without `=` or with an empty key.
pub fn parse_latest_metadata(text: &str) -> Result<BTreeMap<String, String>> {
    let mut pairs = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                pairs.insert(key.trim().to_owned(), value.trim().to_owned());
            }
            _ => {
                return Err(Error::Config {
                    key: "use.latest.with.metadata".into(),
                    reason: format!("'{pair}' is not key=value"),
                });
            }
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests;
