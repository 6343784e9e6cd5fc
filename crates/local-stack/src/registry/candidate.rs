//! A schema as the registry identifies it: its canonical text (or normalized form), parsed
//! with its references written out, and its contract (references, metadata, rule set).

use apache_avro::Schema;
use serde_json::Value;

use super::canonical::{self, Json};
use super::contract::Contract;
use super::error::ApiError;
use super::references::{self, Referenced};

/// A registered schema, parsed, with the forms used to recognise it again.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    /// Self-contained: referenced types written out.
    pub(crate) parsed: Schema,
    /// The schema's text identity: its canonical text ([`canonical`](super::canonical)), as
    /// Confluent's registry compares it.
    pub(crate) key: String,
    /// Key of the normalized form (`normalize=true`).
    pub(crate) normalized_key: String,
    /// The canonical text with every referenced type written out: what a request sending the
    /// schema without references, all its types in it, is matched by.
    pub(crate) whole_key: String,
    pub(crate) contract: Contract,
    pub(crate) guid: uuid::Uuid,
}

/// A schema parsed from a request (or from the store, when it is loaded).
pub(crate) struct Candidate {
    pub(crate) text: String,
    parsed: Schema,
    key: String,
    normalized_key: String,
    whole_key: String,
    pub(crate) contract: Contract,
}

impl Candidate {
    /// Parses an Avro schema that may use the named types the `referenced` schemas define.
    /// What gets stored (and served) is its canonical text, as with Confluent's registry
    /// (referenced top-level types by name, types nested in them written out where first
    /// used); with `normalize`, the normalized form (for a schema without references).
    pub(crate) fn parse(
        text: &str,
        normalize: bool,
        contract: Contract,
        referenced: &Referenced,
    ) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ApiError::invalid_schema(format!("not JSON: {e}")))?;
        let json: Json = serde_json::from_str(text)
            .map_err(|e| ApiError::invalid_schema(format!("not JSON: {e}")))?;
        let whole = references::inline(&json, referenced, &[])?;
        let parsed = Schema::parse(&whole.to_value()).map_err(ApiError::invalid_schema)?;
        let normalized = serde_json::to_value(&parsed).map_err(ApiError::invalid_schema)?;
        let normalized_key = sorted_json(&normalized);
        let (text, key) = if normalize && referenced.is_empty() {
            (normalized.to_string(), normalized_key.clone())
        } else {
            let written = references::inline(&json, referenced, &referenced.top_level)?;
            let canonical = canonical::canonical_of(&written, referenced.top_level.clone())
                .unwrap_or_else(|reason| {
                    // A schema apache-avro takes but the canonical writer cannot follow:
                    // identified by its JSON, as before.
                    tracing::debug!(%reason, "no canonical form; the schema is identified by its JSON");
                    sorted_json(&value)
                });
            (canonical.clone(), canonical)
        };
        let whole_key = if referenced.is_empty() {
            key.clone()
        } else {
            canonical::canonical_of(&whole, std::iter::empty())
                .unwrap_or_else(|_| sorted_json(&whole.to_value()))
        };
        Ok(Self {
            text,
            parsed,
            key,
            normalized_key,
            whole_key,
            contract,
        })
    }

    /// The same schema, contract and all (as Confluent compares them: by GUID, or by the
    /// normalized form with `normalize`), or, for a request without references, a stored
    /// schema with references that is this one once they are written out, with the same
    /// metadata and rule set (Confluent's `canLookup`: "a schema sent with all references
    /// resolved").
    pub(crate) fn matches(&self, stored: &Stored, normalize: bool) -> bool {
        let same = self.contract == stored.contract
            && (self.key == stored.key
                || (normalize && self.normalized_key == stored.normalized_key));
        let resolved = self.contract.references.is_empty()
            && !stored.contract.references.is_empty()
            && self.contract.metadata == stored.contract.metadata
            && self.contract.rule_set == stored.contract.rule_set
            && self.key == stored.whole_key;
        same || resolved
    }

    /// Whether `stored` is this schema with this contract (the one id they share).
    pub(crate) fn same_schema(&self, stored: &Stored) -> bool {
        self.key == stored.key && self.contract == stored.contract
    }

    pub(crate) fn schema(&self) -> &Schema {
        &self.parsed
    }

    pub(crate) fn into_stored(self) -> Stored {
        Stored {
            guid: self.contract.guid(&self.text),
            parsed: self.parsed,
            key: self.key,
            normalized_key: self.normalized_key,
            whole_key: self.whole_key,
            contract: self.contract,
        }
    }
}

/// JSON text with object keys sorted at every level: equal for equal JSON values.
pub(crate) fn sorted_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), sorted_json(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(sorted_json).collect();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
    }
}
