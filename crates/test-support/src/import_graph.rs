//! The import graph of a crate's modules, read from its `src/` files, and the circles in it
//! (strongly connected components of more than one module). Every crate of the workspace that
//! keeps its modules free of circles checks it with one test (`tests/import_graph.rs`):
//!
//! ```no_run
//! let graph = test_support::ImportGraph::of_src(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))?;
//! graph.assert_no_circle();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! A module is a top-level file or directory of `src/` (`staff.rs`, `control/`); the crate root
//! (`lib.rs`, `main.rs`) is no module of the graph. An edge is any `crate::` path in a module's
//! files (comments left out; names the root re-exports with `pub use m::…` count for the module
//! that defines them). A module's unit tests (`#[cfg(test)] mod tests`, at the end of its file)
//! are left out: a test may build what it checks from elsewhere in the crate without the module
//! depending on it.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs, io,
    path::{Path, PathBuf},
};

/// The crate roots: files of `src/` that are not modules of the graph.
const ROOTS: [&str; 2] = ["lib", "main"];

/// Which module imports which, in one crate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportGraph {
    /// Each module and the modules it imports (only modules that import something).
    pub edges: BTreeMap<String, BTreeSet<String>>,
    /// Every module found.
    pub modules: BTreeSet<String>,
}

impl ImportGraph {
    /// Reads the modules under `src`.
    ///
    /// # Errors
    /// When `src` or a file under it cannot be read.
    pub fn of_src(src: impl AsRef<Path>) -> io::Result<Self> {
        let src = src.as_ref();
        let mut files = Vec::new();
        rust_files(src, &mut files)?;
        let module_of = |path: &Path| -> String {
            let relative = path.strip_prefix(src).unwrap_or(path);
            let first = relative.components().next().map(|c| c.as_os_str());
            let first = first.and_then(|s| s.to_str()).unwrap_or_default();
            first.trim_end_matches(".rs").to_owned()
        };
        let mut reexports = BTreeMap::new();
        for root in ROOTS {
            let path = src.join(format!("{root}.rs"));
            if path.exists() {
                reexports.extend(root_reexports(&code_of(&path)?));
            }
        }
        let mut graph = Self {
            modules: files
                .iter()
                .map(|f| module_of(f))
                .filter(|m| !ROOTS.contains(&m.as_str()))
                .collect(),
            ..Self::default()
        };
        for file in &files {
            let module = module_of(file);
            if ROOTS.contains(&module.as_str()) {
                continue;
            }
            for path in crate_paths(&code_of(file)?) {
                let target = reexports.get(&path).cloned().unwrap_or(path);
                if target != module && graph.modules.contains(&target) {
                    graph
                        .edges
                        .entry(module.clone())
                        .or_default()
                        .insert(target);
                }
            }
        }
        Ok(graph)
    }

    /// The circles: each a sorted list of the modules that reach each other.
    pub fn circles(&self) -> Vec<Vec<String>> {
        circles(&self.edges)
    }

    /// Prints the edges (seen with `--nocapture`) and panics naming every circle.
    ///
    /// # Panics
    /// When the modules import each other in a circle, or no module was found.
    pub fn assert_no_circle(&self) {
        for (module, targets) in &self.edges {
            let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
            println!("{module} -> {}", targets.join(", "));
        }
        assert!(!self.modules.is_empty(), "no module found");
        let circles = self.circles();
        assert!(
            circles.is_empty(),
            "modules importing each other in a circle: {circles:?}"
        );
    }
}

/// The text of `path` without `//` line comments (doc comments included), `/* */` blocks and
/// its unit tests (from `#[cfg(test)]` followed by `mod tests` to the end of the file).
fn code_of(path: &Path) -> io::Result<String> {
    let mut text = fs::read_to_string(path)?;
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
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else {
            code.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Ok(code)
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    Ok(())
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
fn root_reexports(root: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for (at, _) in root.match_indices("pub use ") {
        let statement = &root[at + "pub use ".len()..];
        let statement = &statement[..statement.find(';').unwrap_or(statement.len())];
        let Some((module, items)) = statement.split_once("::") else {
            continue;
        };
        for item in items.split(['{', '}', ',']) {
            let name = item.rsplit(" as ").next().unwrap_or_default().trim();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        fs::write(dir.join(name), text).unwrap();
    }

    /// A circle through three modules is found, through a `crate::{…}` group and a root
    /// re-export; comments and unit tests are no edges.
    #[test]
    fn finds_a_circle_and_ignores_comments_and_unit_tests() {
        let dir = std::env::temp_dir().join(format!("import-graph-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        write(&dir, "main.rs", "mod a; mod b; mod c;\npub use c::Thing;\n");
        write(&dir, "a.rs", "use crate::{b::X, c};\n// crate::d::Y\n");
        write(&dir, "b.rs", "use crate::Thing;\n");
        write(
            &dir,
            "c.rs",
            "/* crate::a */\n#[cfg(test)]\nmod tests { use crate::a; }\n",
        );
        let graph = ImportGraph::of_src(&dir).unwrap();
        assert_eq!(graph.circles(), Vec::<Vec<String>>::new(), "{graph:?}");
        write(&dir, "c.rs", "pub struct Thing; use crate::a::X;\n");
        let graph = ImportGraph::of_src(&dir).unwrap();
        assert_eq!(graph.circles(), [["a", "b", "c"]], "{graph:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
