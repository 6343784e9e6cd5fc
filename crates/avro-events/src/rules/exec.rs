//! Running CEL domain rules on one record.

use std::{collections::BTreeSet, sync::Arc};

use apache_avro::{
    Schema,
    schema::{NamesRef, ResolvedSchema},
};
use cel::{
    Context,
    objects::{Key, Value},
};
use tracing::debug;

use super::{
    Action, Applied, CEL_FIELD, DeadLetter, Direction, Metadata, Programs, Rule, RuleKind, Scope,
    action,
    cel::{self as conv, branch_for},
    headers,
};
use crate::{Error, Result};

/// Runs `rules` on `body` (see [`super::apply`]).
pub(super) fn apply(
    rules: &[&Rule],
    programs: &Programs,
    metadata: Option<&Metadata>,
    schema: &Schema,
    body: &[u8],
    scope: Scope<'_>,
) -> Result<Applied> {
    if rules.is_empty() {
        return Ok(Applied::Unchanged);
    }
    let failed = |rule: &Rule, reason: String| Error::RuleFailed {
        subject: scope.subject.to_owned(),
        rule: rule.name.clone(),
        mode: scope.direction.as_str(),
        reason,
        dlq: false,
        dead_letter: None,
    };
    let resolved = ResolvedSchema::try_from(schema).map_err(|e| failed(rules[0], e.to_string()))?;
    let names = resolved.get_names();
    let original = crate::value::read_value(body, schema)
        .map(|v| conv::to_cel(&v))
        .map_err(|e| failed(rules[0], format!("the record does not decode: {e}")))?;
    let mut message = original.clone();
    let mut changed = false;
    for rule in rules {
        let outcome = match rule.rule_type.to_ascii_uppercase().as_str() {
            CEL_FIELD => run_fields(rule, programs, &message, schema, names, metadata),
            _ => run_message(rule, programs, &message),
        };
        let (configured, default, reason) = match outcome {
            Ok(result) => {
                if rule.kind == RuleKind::Transform {
                    changed = true;
                    message = result;
                }
                (rule.on_success.as_deref(), Action::None, None)
            }
            Err(reason) => (rule.on_failure.as_deref(), Action::Error, Some(reason)),
        };
        let chosen =
            action(rule, configured, scope.direction, default).map_err(|e| failed(rule, e))?;
        debug!(rule = %rule.name, mode = scope.direction.as_str(), ?chosen, failed = reason.is_some(), "ran rule");
        let reason = reason.unwrap_or_else(|| "the rule's onSuccess action is not NONE".into());
        match chosen {
            Action::None => {}
            Action::Error => return Err(failed(rule, reason)),
            Action::Dlq => {
                let mut error = failed(rule, reason.clone());
                if let Error::RuleFailed {
                    dlq, dead_letter, ..
                } = &mut error
                {
                    *dlq = true;
                    if scope.direction == Direction::Write {
                        *dead_letter =
                            Some(Box::new(dead_letter_of(rule, &original, scope, &reason)?));
                    }
                }
                return Err(error);
            }
        }
    }
    if !changed {
        return Ok(Applied::Unchanged);
    }
    let mut out = Vec::with_capacity(body.len() + 16);
    conv::write(&mut out, &message, schema, names, 0).map_err(|reason| {
        failed(
            rules[rules.len() - 1],
            format!("the transformed record does not fit the schema: {reason}"),
        )
    })?;
    Ok(if out == body {
        Applied::Unchanged
    } else {
        Applied::Changed(out)
    })
}

/// The record a `DLQ` action sends: the original value as JSON, with the `__rule.*` headers.
fn dead_letter_of(
    rule: &Rule,
    original: &Value,
    scope: Scope<'_>,
    reason: &str,
) -> Result<DeadLetter> {
    let topic = rule
        .params
        .get("dlq.topic")
        .cloned()
        .ok_or_else(|| Error::RuleFailed {
            subject: scope.subject.to_owned(),
            rule: rule.name.clone(),
            mode: scope.direction.as_str(),
            reason: format!(
                "{reason}; and the DLQ action has no topic (the rule's dlq.topic parameter)"
            ),
            dlq: false,
            dead_letter: None,
        })?;
    let value = serde_json::to_vec(&to_json(original)).unwrap_or_default();
    let headers = vec![
        (headers::RULE_NAME.to_owned(), rule.name.clone()),
        (
            headers::RULE_MODE.to_owned(),
            scope.direction.as_str().to_owned(),
        ),
        (headers::RULE_SUBJECT.to_owned(), scope.subject.to_owned()),
        (headers::RULE_TOPIC.to_owned(), scope.topic.to_owned()),
        (headers::RULE_EXCEPTION.to_owned(), reason.to_owned()),
    ];
    Ok(DeadLetter {
        topic,
        value,
        headers,
    })
}

/// A CEL value as JSON (bytes as ISO-8859-1 text, as Confluent's Python client writes them).
fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::UInt(u) => J::from(*u),
        Value::Float(f) => J::from(*f),
        Value::String(s) => J::String(s.to_string()),
        Value::Bytes(b) => J::String(b.iter().map(|c| char::from(*c)).collect()),
        Value::List(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(m) => J::Object(
            m.map
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Key::String(s) => s.to_string(),
                        Key::Int(i) => i.to_string(),
                        Key::Uint(u) => u.to_string(),
                        Key::Bool(b) => b.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        other => J::String(format!("{other:?}")),
    }
}

/// Evaluates `expr` (`guard; expr` form included) with `vars`. `Ok(None)`: the guard does not
/// hold.
fn evaluate(
    rule: &Rule,
    programs: &Programs,
    vars: Vec<(&str, Value)>,
) -> std::result::Result<Option<Value>, String> {
    let expr = rule
        .expr
        .as_deref()
        .ok_or_else(|| format!("rule {} has no expression", rule.name))?;
    let run = |source: &str| -> std::result::Result<Value, String> {
        let program = programs.get(source)?;
        let mut context = Context::default();
        for (name, value) in &vars {
            context.add_variable_from_value(*name, value.clone());
        }
        program
            .execute(&context)
            .map_err(|e| format!("the expression '{source}' failed: {e}"))
    };
    let expr = match expr.split_once(';') {
        Some((guard, rest)) => {
            if !guard.trim().is_empty() && !truthy(&run(guard)?) {
                return Ok(None);
            }
            rest
        }
        None => expr,
    };
    run(expr).map(Some)
}

/// A CEL result's truth as Python's `not` sees it.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Null => false,
        Value::Int(i) => *i != 0,
        Value::UInt(u) => *u != 0,
        Value::Float(f) => *f != 0.0,
        Value::String(s) => !s.is_empty(),
        Value::Bytes(b) => !b.is_empty(),
        Value::List(l) => !l.is_empty(),
        Value::Map(m) => !m.map.is_empty(),
        _ => true,
    }
}

/// Why a condition failed, as Confluent's clients word it.
fn condition_failed(rule: &Rule) -> String {
    match (&rule.doc, &rule.expr) {
        (Some(doc), _) => doc.clone(),
        (None, Some(expr)) => format!("Rule expr failed: {expr}"),
        (None, None) => format!("Rule failed: {}", rule.name),
    }
}

/// A `CEL` rule on the whole record: the new record for a transform.
fn run_message(
    rule: &Rule,
    programs: &Programs,
    message: &Value,
) -> std::result::Result<Value, String> {
    let result = evaluate(rule, programs, vec![("message", message.clone())])?;
    match (rule.kind, result) {
        (RuleKind::Condition, None) => Ok(message.clone()),
        (RuleKind::Condition, Some(result)) if truthy(&result) => Ok(message.clone()),
        (RuleKind::Condition, Some(_)) => Err(condition_failed(rule)),
        (_, None) => Ok(message.clone()),
        (_, Some(Value::Null)) => Err(format!("rule {} transformed the record to null", rule.name)),
        (_, Some(result)) => Ok(result),
    }
}

/// A `CEL_FIELD` rule on every primitive field (with the rule's tags, when it names any).
fn run_fields(
    rule: &Rule,
    programs: &Programs,
    message: &Value,
    schema: &Schema,
    names: &NamesRef<'_>,
    metadata: Option<&Metadata>,
) -> std::result::Result<Value, String> {
    let walk = Walk {
        rule,
        programs,
        names,
        metadata,
    };
    walk.value(schema, message, None, 0)
}

/// One field being walked: its name, full name, tags and the record holding it.
struct Field<'a> {
    name: &'a str,
    full_name: String,
    tags: BTreeSet<String>,
    containing: &'a Value,
}

struct Walk<'a> {
    rule: &'a Rule,
    programs: &'a Programs,
    names: &'a NamesRef<'a>,
    metadata: Option<&'a Metadata>,
}

impl Walk<'_> {
    fn value(
        &self,
        schema: &Schema,
        value: &Value,
        field: Option<&Field<'_>>,
        depth: usize,
    ) -> std::result::Result<Value, String> {
        if depth > 128 {
            return Err("values nested deeper than 128 levels".into());
        }
        match (schema, value) {
            (Schema::Ref { name }, _) => match self.names.get(name) {
                Some(target) => self.value(target, value, field, depth + 1),
                None => Ok(value.clone()),
            },
            (Schema::Union(union), _) => match branch_for(union, value, self.names) {
                Some((_, branch)) => self.value(branch, value, field, depth + 1),
                None => Ok(value.clone()),
            },
            (Schema::Array(array), Value::List(items)) => Ok(Value::List(Arc::new(
                items
                    .iter()
                    .map(|item| self.value(&array.items, item, field, depth + 1))
                    .collect::<std::result::Result<_, _>>()?,
            ))),
            (Schema::Map(map), Value::Map(entries)) => {
                let mut out = entries.map.as_ref().clone();
                for item in out.values_mut() {
                    *item = self.value(&map.types, item, field, depth + 1)?;
                }
                Ok(Value::Map(cel::objects::Map { map: Arc::new(out) }))
            }
            (Schema::Record(record), Value::Map(entries)) => {
                let mut out = entries.map.as_ref().clone();
                for f in &record.fields {
                    let key = Key::String(Arc::new(f.name.clone()));
                    let Some(current) = entries.map.get(&key) else {
                        continue;
                    };
                    let full_name = format!("{}.{}", record.name.fullname(None), f.name);
                    let tags = self
                        .metadata
                        .map(|m| m.tags_of(&full_name))
                        .unwrap_or_default();
                    let inner = Field {
                        name: &f.name,
                        full_name,
                        tags,
                        containing: value,
                    };
                    let new = self.value(&f.schema, current, Some(&inner), depth + 1)?;
                    if self.rule.kind == RuleKind::Condition {
                        if matches!(new, Value::Bool(false)) {
                            return Err(condition_failed(self.rule));
                        }
                    } else {
                        out.insert(key, new);
                    }
                }
                Ok(Value::Map(cel::objects::Map { map: Arc::new(out) }))
            }
            _ => match (field, primitive_name(schema)) {
                (Some(field), Some(type_name))
                    if self.rule.tags.is_empty() || !self.rule.tags.is_disjoint(&field.tags) =>
                {
                    self.primitive(field, type_name, value)
                }
                _ => Ok(value.clone()),
            },
        }
    }

    fn primitive(
        &self,
        field: &Field<'_>,
        type_name: &str,
        value: &Value,
    ) -> std::result::Result<Value, String> {
        let tags: Vec<Value> = field
            .tags
            .iter()
            .map(|t| Value::String(Arc::new(t.clone())))
            .collect();
        let vars = vec![
            ("value", value.clone()),
            ("fullName", Value::String(Arc::new(field.full_name.clone()))),
            ("name", Value::String(Arc::new(field.name.to_owned()))),
            ("typeName", Value::String(Arc::new(type_name.to_owned()))),
            ("tags", Value::List(Arc::new(tags))),
            ("message", field.containing.clone()),
        ];
        match (self.rule.kind, evaluate(self.rule, self.programs, vars)?) {
            (RuleKind::Condition, None) => Ok(Value::Bool(true)),
            (_, None) => Ok(value.clone()),
            (_, Some(result)) => Ok(result),
        }
    }
}

/// Confluent's field type name of a primitive schema (`None`: not primitive, not visited).
fn primitive_name(schema: &Schema) -> Option<&'static str> {
    Some(match schema {
        Schema::Null => "NULL",
        Schema::Boolean => "BOOLEAN",
        Schema::Int | Schema::Date | Schema::TimeMillis => "INT",
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => "LONG",
        Schema::Float => "FLOAT",
        Schema::Double => "DOUBLE",
        Schema::String | Schema::Uuid(apache_avro::schema::UuidSchema::String) => "STRING",
        Schema::Bytes => "BYTES",
        _ => return None,
    })
}
