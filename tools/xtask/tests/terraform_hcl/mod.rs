//! The `.tf` files of a directory parsed with `hcl-rs`, and attribute values evaluated just far
//! enough to compare names and settings: string literals, numbers, lists, objects, `${...}`
//! interpolation, `local.x` (also `local.x.y` into an object), `path.module`, and attributes of
//! other resources that are written in the configuration. Whatever only Terraform can know
//! (`local.kafka.id`, `confluent_identity_pool.x.id`, function calls) is rendered as a
//! placeholder `<...>` naming the reference. Shared by `terraform_consistency.rs` and
//! `terraform_deploy_kafka.rs`; each uses part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use hcl::template::Element;
use hcl::{Body, Expression, Template, TraversalOperator, Value};

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .parent()
        .expect("xtask lives in tools/ of the workspace")
        .to_path_buf()
}

/// The parsed Terraform configuration of one directory.
pub(crate) struct Config {
    pub(crate) dir: PathBuf,
    pub(crate) locals: BTreeMap<String, Expression>,
    /// `(resource type, name)` to body, for `resource` blocks; data sources are keyed with the
    /// type prefixed by `data.`.
    pub(crate) resources: BTreeMap<(String, String), Body>,
}

impl Config {
    pub(crate) fn load(dir: &Path) -> Config {
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "tf"))
            .collect();
        entries.sort();
        assert!(!entries.is_empty(), "no .tf files in {}", dir.display());

        let mut locals = BTreeMap::new();
        let mut resources = BTreeMap::new();
        for path in entries {
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let body: Body = hcl::parse(&text)
                .unwrap_or_else(|e| panic!("{} is not valid HCL: {e}", path.display()));
            for block in body.blocks() {
                let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
                match (block.identifier.as_str(), labels.as_slice()) {
                    ("locals", []) => {
                        for attr in block.body.attributes() {
                            let old = locals.insert(attr.key.to_string(), attr.expr.clone());
                            assert!(
                                old.is_none(),
                                "local.{} is defined twice",
                                attr.key.as_str()
                            );
                        }
                    }
                    ("resource", [kind, name]) => {
                        resources.insert((kind.to_string(), name.to_string()), block.body.clone());
                    }
                    ("data", [kind, name]) => {
                        resources.insert(
                            (format!("data.{kind}"), name.to_string()),
                            block.body.clone(),
                        );
                    }
                    _ => {}
                }
            }
        }
        Config {
            dir: dir.to_path_buf(),
            locals,
            resources,
        }
    }

    /// Bodies of every resource of `kind`, by resource name.
    pub(crate) fn resources_of(&self, kind: &str) -> BTreeMap<&str, &Body> {
        self.resources
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|((_, name), body)| (name.as_str(), body))
            .collect()
    }

    pub(crate) fn attr<'b>(body: &'b Body, key: &str) -> Option<&'b Expression> {
        body.attributes()
            .find(|a| a.key.as_str() == key)
            .map(|a| &a.expr)
    }

    /// Evaluates attribute `key` of `body` to a string (numbers are rendered in decimal).
    pub(crate) fn string_attr(&self, what: &str, body: &Body, key: &str) -> Result<String, String> {
        let expr = Self::attr(body, key).ok_or_else(|| format!("{what} has no `{key}`"))?;
        match self.eval(expr, 0)? {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(format!("{what}.{key} is not a string: {other:?}")),
        }
    }

    pub(crate) fn eval(&self, expr: &Expression, depth: usize) -> Result<Value, String> {
        if depth > 32 {
            return Err("references nest too deep (a cycle between locals?)".into());
        }
        Ok(match expr {
            Expression::Null => Value::Null,
            Expression::Bool(b) => Value::Bool(*b),
            Expression::Number(n) => Value::Number(*n),
            Expression::String(s) => Value::String(s.clone()),
            Expression::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|e| self.eval(e, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Expression::Object(object) => {
                let mut out = hcl::Map::new();
                for (key, value) in object {
                    let key = match key {
                        hcl::ObjectKey::Identifier(id) => id.to_string(),
                        hcl::ObjectKey::Expression(e) => match self.eval(e, depth + 1)? {
                            Value::String(s) => s,
                            other => return Err(format!("object key {other:?} is not a string")),
                        },
                        other => return Err(format!("unsupported object key {other:?}")),
                    };
                    out.insert(key, self.eval(value, depth + 1)?);
                }
                Value::Object(out)
            }
            Expression::TemplateExpr(template) => {
                let template = Template::from_expr(template)
                    .map_err(|e| format!("cannot parse template: {e}"))?;
                let mut out = String::new();
                for element in template.elements() {
                    match element {
                        Element::Literal(s) => out.push_str(s),
                        Element::Interpolation(i) => match self.eval(&i.expr, depth + 1)? {
                            Value::String(s) => out.push_str(&s),
                            Value::Number(n) => {
                                write!(out, "{n}").expect("writing to a String");
                            }
                            other => return Err(format!("cannot interpolate {other:?}")),
                        },
                        Element::Directive(_) => {
                            return Err("template directives are not supported here".into());
                        }
                    }
                }
                Value::String(out)
            }
            Expression::Parenthesis(inner) => self.eval(inner, depth + 1)?,
            Expression::Traversal(traversal) => self.eval_traversal(traversal, depth)?,
            Expression::FuncCall(call) => {
                Value::String(format!("<{}(...)>", call.name.name.as_str()))
            }
            Expression::Variable(v) => return Err(format!("bare variable `{}`", v.as_str())),
            _ => Value::String("<expression>".into()),
        })
    }

    fn eval_traversal(&self, traversal: &hcl::Traversal, depth: usize) -> Result<Value, String> {
        let Expression::Variable(root) = &traversal.expr else {
            return Ok(Value::String("<expression>".into()));
        };
        let mut path = vec![root.as_str().to_string()];
        for op in &traversal.operators {
            match op {
                TraversalOperator::GetAttr(id) => path.push(id.to_string()),
                _ => return Ok(Value::String(format!("<{}[...]>", path.join(".")))),
            }
        }
        let placeholder = || Value::String(format!("<{}>", path.join(".")));
        let names: Vec<&str> = path.iter().map(String::as_str).collect();
        match names.as_slice() {
            ["path", "module"] => Ok(Value::String(self.dir.display().to_string())),
            ["local", name, rest @ ..] => {
                let expr = self
                    .locals
                    .get(*name)
                    .ok_or_else(|| format!("local.{name} is not defined"))?;
                let mut value = self.eval(expr, depth + 1)?;
                for key in rest {
                    value = match value {
                        Value::Object(mut o) => match o.swap_remove(*key) {
                            Some(v) => v,
                            None => return Err(format!("{} is not defined", path.join("."))),
                        },
                        // An unknown object (a function call): its attributes are unknown too.
                        Value::String(s) if s.starts_with('<') => return Ok(placeholder()),
                        other => return Err(format!("{} indexes {other:?}", path.join("."))),
                    };
                }
                // A value made of unknown parts is named by the reference that reached it.
                match value {
                    Value::String(s) if s.starts_with('<') && s.ends_with("(...)>") => {
                        Ok(placeholder())
                    }
                    v => Ok(v),
                }
            }
            ["var", ..] | ["each", ..] | ["count", ..] => Ok(placeholder()),
            ["data", kind, name, attr, ..] => {
                self.resource_attr(&format!("data.{kind}"), name, attr, depth, placeholder)
            }
            [kind, name, attr, ..] => self.resource_attr(kind, name, attr, depth, placeholder),
            _ => Ok(placeholder()),
        }
    }

    fn resource_attr(
        &self,
        kind: &str,
        name: &str,
        attr: &str,
        depth: usize,
        placeholder: impl Fn() -> Value,
    ) -> Result<Value, String> {
        let body = self
            .resources
            .get(&(kind.to_string(), name.to_string()))
            .ok_or_else(|| format!("{kind}.{name} is referenced but not defined"))?;
        match Self::attr(body, attr) {
            // An argument written in the configuration: its value is known.
            Some(expr) => self.eval(expr, depth + 1),
            // An attribute computed by the provider (id, rbac_crn, resource_name, ...).
            None => Ok(placeholder()),
        }
    }
}
