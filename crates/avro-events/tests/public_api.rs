//! The crate's public surface stays what the crate documentation says: modules are public only
//! where they group a namespace whose items are not at the crate root, and nothing public is
//! there for tests (a test uses the public API, or lives with what it tests).

use std::{collections::BTreeSet, fs, path::Path};

/// The `pub mod` declarations of `src/lib.rs` (`pub mod name;`), whatever their `cfg`.
fn public_modules() -> BTreeSet<String> {
    let lib = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    lib.lines()
        .filter_map(|line| line.trim().strip_prefix("pub mod "))
        .filter_map(|rest| rest.strip_suffix(';'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn only_namespaces_are_public_modules() {
    let expected: BTreeSet<String> = [
        "auth", "binary", "config", "dlq", "dynamic", "registry", "rules", "wire",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(
        public_modules(),
        expected,
        "a type belongs at the crate root, published once; a public module groups a namespace \
         (say so in lib.rs's Modules section before adding one)"
    );
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_public_item_is_documented_as_being_for_tests() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut offenders = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let line = line.trim_start();
            if !(line.starts_with("pub fn ") || line.starts_with("pub async fn ")) {
                continue;
            }
            // The doc comment right above the item.
            let doc: String = lines[..i]
                .iter()
                .rev()
                .map(|l| l.trim_start())
                .take_while(|l| l.starts_with("///") || l.starts_with("#["))
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase();
            if doc.contains("for tests") || doc.contains("and tests") || doc.contains("tests only")
            {
                offenders.push(format!("{}:{}: {line}", file.display(), i + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "public items for tests: {offenders:#?}"
    );
}
