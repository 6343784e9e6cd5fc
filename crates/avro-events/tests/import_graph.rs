//! The modules of `src/` import each other without a circle: children get the shared handle
//! (`shared.rs`), never the client, and lower modules (config, dlq, record, context, codec,
//! registry, auth) never reach back up to the clients built from them.
//!
//! An edge is any `crate::` path in a module's files (comments left out; names re-exported at
//! the crate root count for the module that defines them). A module's unit tests
//! (`#[cfg(test)] mod tests`, at the end of its file) are left out: a test may build what it
//! checks from the client root, as a user would, without the module depending on it.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// The text of `path` without `//` line comments (doc comments included), `/* */` blocks and
/// its unit tests (from `#[cfg(test)]` followed by `mod tests` to the end of the file).
fn code_of(path: &Path) -> String {
    let mut text = fs::read_to_string(path).unwrap();
    if let Some(at) = text
        .match_indices("#[cfg(test)]")
        .map(|(at, _)| at)
        .find(|&at| {
            text[at + "#[cfg(test)]".len()..]
                .trim_start()
                .starts_with("mod tests")
        })
    {
        text.truncate(at);
    }
    let mut code = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else {
            let c = rest.chars().next().unwrap();
            code.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    code
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

fn identifier(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The first segment of every `crate::` path in `code` (each item of a `crate::{…}` group).
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let after = &code[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let (mut depth, mut item) = (0, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(identifier(item.trim()).to_owned());
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.push(identifier(item.trim()).to_owned());
        } else {
            found.push(identifier(after).to_owned());
        }
    }
    found.retain(|s| !s.is_empty());
    found
}

/// Names the crate root re-exports, with the module each comes from (`pub use m::{A, B}`).
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for (at, _) in lib.match_indices("pub use ") {
        let statement = &lib[at + "pub use ".len()..];
        let statement = &statement[..statement.find(';').unwrap()];
        let Some((module, items)) = statement.split_once("::") else {
            continue;
        };
        for item in items.split(['{', '}', ',']) {
            let name = item.rsplit(" as ").next().unwrap().trim();
            if !name.is_empty() {
                names.insert(name.to_owned(), module.trim().to_owned());
            }
        }
    }
    names
}

/// The strongly connected components with more than one module (Tarjan).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        circles: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w.as_str()]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w.as_str()) {
                    let low = self.low[v].min(self.index[w.as_str()]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.circles.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        circles: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.circles
}

#[test]
fn the_modules_import_each_other_without_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let module_of = |path: &Path| {
        let relative = path.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        first.to_str().unwrap().trim_end_matches(".rs").to_owned()
    };
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).collect();
    let reexports = root_reexports(&code_of(&src.join("lib.rs")));
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(file);
        if module == "lib" {
            continue;
        }
        for path in crate_paths(&code_of(file)) {
            let target = reexports.get(&path).cloned().unwrap_or(path);
            if target != module && target != "lib" && modules.contains(&target) {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    for (module, targets) in &edges {
        println!(
            "{module} -> {}",
            Vec::from_iter(targets.iter().cloned()).join(", ")
        );
    }
    assert!(
        edges.get("codec").is_some_and(|t| t.contains("registry")),
        "the graph was read: {edges:?}"
    );
    let circles = circles(&edges);
    assert!(
        circles.is_empty(),
        "modules importing each other in a circle: {circles:?}"
    );
}
