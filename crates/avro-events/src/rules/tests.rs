//! The rule engine on bodies, without a registry: what runs, what is refused, and (with the
//! `rules` feature) conditions, transforms and actions. Confluent's Python client checks the
//! same behaviour from the outside (`local-stack/tests/rules_python_interop.rs`).

use super::*;

#[cfg(feature = "rules")]
const ORDER: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"string"},
  {"name":"note","type":["null","string"],"default":null},
  {"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","fields":[
     {"name":"sku","type":"string"},{"name":"quantity","type":"int"}]}}}]}"#;

fn rule(name: &str, kind: RuleKind, mode: RuleMode, rule_type: &str, expr: &str) -> Rule {
    Rule::new(name, kind, mode, rule_type, expr)
}

#[test]
fn migration_and_encoding_rules_and_unknown_types_are_refused_not_ignored() {
    let mut set = RuleSet::default();
    set.migration_rules.push(rule(
        "up",
        RuleKind::Transform,
        RuleMode::Upgrade,
        "JSONATA",
        "$",
    ));
    let err = runnable(&set, "orders-value", Direction::Read).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedRule { ref rule, .. } if rule == "up"),
        "{err}"
    );
    assert!(err.to_string().contains("JSONata"), "{err}");

    let set = RuleSet::domain([rule(
        "enc",
        RuleKind::Transform,
        RuleMode::Write,
        "ENCRYPT",
        "",
    )]);
    let err = runnable(&set, "s", Direction::Write).unwrap_err();
    assert!(
        err.to_string()
            .contains("rule type 'ENCRYPT' is not supported"),
        "{err}"
    );
    // A READ-only rule of an unknown type does not stop writing (it never runs there).
    let set = RuleSet::domain([rule(
        "r",
        RuleKind::Condition,
        RuleMode::Read,
        "ENCRYPT",
        "",
    )]);
    assert!(runnable(&set, "s", Direction::Write).unwrap().is_empty());

    let set = RuleSet::domain([
        rule("a", RuleKind::Condition, RuleMode::Write, "CEL", "true").on_failure("RETRY"),
    ]);
    let err = runnable(&set, "s", Direction::Write).unwrap_err();
    assert!(err.to_string().contains("action 'RETRY'"), "{err}");

    let mut disabled = rule(
        "off",
        RuleKind::Transform,
        RuleMode::Upgrade,
        "JSONATA",
        "$",
    );
    disabled.disabled = true;
    let mut set = RuleSet::default();
    set.migration_rules.push(disabled);
    assert!(runnable(&set, "s", Direction::Read).unwrap().is_empty());
}

#[test]
fn read_rules_run_in_reverse_and_writeread_runs_both_ways() {
    let set = RuleSet::domain([
        rule("w", RuleKind::Condition, RuleMode::Write, "CEL", "true"),
        rule(
            "wr",
            RuleKind::Condition,
            RuleMode::WriteRead,
            "CEL",
            "true",
        ),
        rule("r", RuleKind::Condition, RuleMode::Read, "CEL", "true"),
    ]);
    let names = |d| {
        runnable(&set, "s", d).map(|rules| rules.iter().map(|r| r.name.clone()).collect::<Vec<_>>())
    };
    if cfg!(feature = "rules") {
        assert_eq!(names(Direction::Write).unwrap(), ["w", "wr"]);
        assert_eq!(names(Direction::Read).unwrap(), ["r", "wr"]);
    } else {
        let err = names(Direction::Write).unwrap_err();
        assert!(err.to_string().contains("`rules` feature"), "{err}");
    }
}

#[test]
fn latest_metadata_setting_is_parsed_as_confluent_writes_it() {
    let pairs = parse_latest_metadata("major_version=2, owner=grocery").unwrap();
    assert_eq!(pairs.get("major_version").map(String::as_str), Some("2"));
    assert_eq!(pairs.get("owner").map(String::as_str), Some("grocery"));
    assert!(parse_latest_metadata("novalue").is_err());
}

#[test]
fn tags_match_paths_with_confluent_wildcards() {
    let m = Metadata::default()
        .tag("shop.Order.id", &["PII"])
        .tag("shop.*.sku", &["CODE"])
        .tag("**.quantity", &["NUM"]);
    assert!(m.tags_of("shop.Order.id").contains("PII"));
    assert!(m.tags_of("shop.Line.sku").contains("CODE"));
    assert!(m.tags_of("shop.Line.quantity").contains("NUM"));
    assert!(m.tags_of("shop.Order.note").is_empty());
}

#[cfg(feature = "rules")]
mod cel_rules {
    use super::*;
    use apache_avro::{Schema, types::Value};

    fn schema() -> Schema {
        Schema::parse_str(ORDER).unwrap()
    }

    fn body(lines: &[(&str, i32)]) -> Vec<u8> {
        let line = |(sku, q): &(&str, i32)| {
            Value::Record(vec![
                ("sku".into(), Value::String((*sku).into())),
                ("quantity".into(), Value::Int(*q)),
            ])
        };
        let order = Value::Record(vec![
            ("id".into(), Value::String("o-1".into())),
            ("note".into(), Value::Union(0, Box::new(Value::Null))),
            (
                "lines".into(),
                Value::Array(lines.iter().map(line).collect()),
            ),
        ]);
        #[allow(deprecated)]
        apache_avro::to_avro_datum(&schema(), order).unwrap()
    }

    fn run(set: &RuleSet, direction: Direction, body: &[u8]) -> Result<Applied> {
        let rules = runnable(set, "orders-value", direction)?;
        let scope = Scope {
            subject: "orders-value",
            topic: "orders",
            direction,
        };
        apply(&rules, &Programs::default(), None, &schema(), body, scope)
    }

    const NON_EMPTY: &str = "size(message.lines) > 0 && message.lines.all(l, l.quantity > 0)";

    #[test]
    fn a_condition_passes_or_fails_with_its_action() {
        let set = RuleSet::domain([rule(
            "lines",
            RuleKind::Condition,
            RuleMode::Write,
            "CEL",
            NON_EMPTY,
        )]);
        assert!(matches!(
            run(&set, Direction::Write, &body(&[("apple", 2)])).unwrap(),
            Applied::Unchanged
        ));
        let err = run(&set, Direction::Write, &body(&[])).unwrap_err();
        assert!(
            matches!(err, Error::RuleFailed { ref rule, dlq: false, .. } if rule == "lines"),
            "{err}"
        );
        assert!(err.to_string().contains("Rule expr failed"), "{err}");
        // NONE ignores the failure.
        let set = RuleSet::domain([rule(
            "lines",
            RuleKind::Condition,
            RuleMode::Write,
            "CEL",
            NON_EMPTY,
        )
        .on_failure("NONE")]);
        assert!(run(&set, Direction::Write, &body(&[("apple", 0)])).is_ok());
        // A READ rule does not run on write.
        let set = RuleSet::domain([rule(
            "r",
            RuleKind::Condition,
            RuleMode::Read,
            "CEL",
            "false",
        )]);
        assert!(run(&set, Direction::Write, &body(&[])).is_ok());
        assert!(run(&set, Direction::Read, &body(&[])).is_err());
    }

    #[test]
    fn a_dlq_failure_carries_the_record_as_json_with_rule_headers() {
        let set = RuleSet::domain([rule(
            "lines",
            RuleKind::Condition,
            RuleMode::WriteRead,
            "CEL",
            NON_EMPTY,
        )
        .on_failure("DLQ,ERROR")
        .param("dlq.topic", "orders.dlq")]);
        let err = run(&set, Direction::Write, &body(&[("apple", -1)])).unwrap_err();
        let Error::RuleFailed {
            dlq: true,
            dead_letter: Some(letter),
            ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(letter.topic, "orders.dlq");
        let json: serde_json::Value = serde_json::from_slice(&letter.value).unwrap();
        assert_eq!(json["lines"][0]["quantity"], -1);
        assert!(
            letter
                .headers
                .contains(&("__rule.name".into(), "lines".into()))
        );
        assert!(
            letter
                .headers
                .contains(&("__rule.mode".into(), "WRITE".into()))
        );
        assert!(!err.is_poison());
        // On read the second action (ERROR) applies.
        let err = run(&set, Direction::Read, &body(&[])).unwrap_err();
        assert!(
            matches!(err, Error::RuleFailed { dlq: false, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn transforms_rewrite_the_record_and_fields() {
        let set = RuleSet::domain([
            rule(
                "note",
                RuleKind::Transform,
                RuleMode::Write,
                "CEL",
                "{'id': message.id, 'note': 'checked', 'lines': message.lines}",
            ),
            rule(
                "upper",
                RuleKind::Transform,
                RuleMode::Write,
                "CEL_FIELD",
                "name == 'sku' ; value + '!'",
            ),
        ]);
        let Applied::Changed(new) = run(&set, Direction::Write, &body(&[("apple", 2)])).unwrap()
        else {
            panic!("unchanged");
        };
        let value = crate::value::read_value(&new, &schema()).unwrap();
        let Value::Record(fields) = value else {
            panic!()
        };
        assert_eq!(
            fields[1].1,
            Value::Union(1, Box::new(Value::String("checked".into())))
        );
        let Value::Array(lines) = &fields[2].1 else {
            panic!()
        };
        assert_eq!(
            lines[0],
            Value::Record(vec![
                ("sku".into(), Value::String("apple!".into())),
                ("quantity".into(), Value::Int(2)),
            ])
        );
    }

    #[test]
    fn a_field_condition_fails_on_false_and_an_expression_error_is_a_failure() {
        let set = RuleSet::domain([rule(
            "positive",
            RuleKind::Condition,
            RuleMode::Write,
            "CEL_FIELD",
            "name == 'quantity' ; value > 0",
        )]);
        assert!(run(&set, Direction::Write, &body(&[("a", 1), ("b", 3)])).is_ok());
        assert!(run(&set, Direction::Write, &body(&[("a", 1), ("b", 0)])).is_err());
        let set = RuleSet::domain([rule(
            "broken",
            RuleKind::Condition,
            RuleMode::Write,
            "CEL",
            "message.missing > 1",
        )]);
        let err = run(&set, Direction::Write, &body(&[("a", 1)])).unwrap_err();
        assert!(err.to_string().contains("failed"), "{err}");
        // A transform whose result does not fit the schema fails the rule.
        let set = RuleSet::domain([rule(
            "bad",
            RuleKind::Transform,
            RuleMode::Write,
            "CEL",
            "{'id': 5}",
        )]);
        let err = run(&set, Direction::Write, &body(&[("a", 1)])).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
    }
}
