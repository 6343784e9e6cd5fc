//! The documentation's commands, run as a reader would run them: every fenced block marked
//! ```` ```sh runnable ```` in `README.md`, `docs/*.md` and `examples/README.md` is executed
//! against the local (mock) stack, and the output it shows is compared with the output it
//! gives. The conventions, also described in `docs/layout.md#runnable-documentation`:
//!
//! - In a block, a line starting with `$ ` is a command (a line ending in `\` continues on the
//!   next); the lines after it, up to the next command, are its output as shown. Lines before
//!   the first command are comments. A command runs in `bash` with `pipefail` and must exit 0.
//! - In shown output, `…` stands for any text within a line (ids, offsets, times), and a line
//!   that is only `…` for any number of lines (none included).
//! - `sh runnable`: each command runs to its end; its stdout must match the shown output.
//! - `sh runnable background`: each command starts a process that runs until the end of the
//!   file (the stack, the services); every shown line (`…` lines aside) must appear on its stdout
//!   or stderr before the next block runs.
//! - `sh runnable retry`: the block is run again (every command) until its output matches, for
//!   up to two minutes: a step that waits on the services (a pick list reaching the staff page),
//!   which a reader would also repeat.
//! - ```` ```rust file=PATH ```` (any language): not run, but it must be an excerpt of the file
//!   at PATH (from the repository's root), which is compiled and tested where it is.
//!
//! What is substituted, so that the commands run as written: every file runs in a fresh
//! temporary directory (so `target/local-stack/client.properties` is that run's own);
//! `cargo xtask` is the xtask binary cargo built for this test and `cargo run -q -p NAME --`
//! the binary of package NAME (built once, as the process tests build the services); the
//! default ports of the services (8080, 8090, 8091, 9464) become free ports, in the commands and
//! the shown output, and the services are told so through their `*_LISTEN` variables. Each
//! file's processes are stopped with SIGTERM at its end, and each must then exit 0.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use test_support::{Output, Process};

/// The documents whose runnable blocks are run, in this order.
const FILES: &[&str] = &["README.md", "docs", "examples/README.md"];

/// The default ports of the documentation: control room, Order API, staff page, fulfillment.
const PORTS: [u16; 4] = [8080, 8090, 8091, 9464];

/// How long a background process may take to show its lines, and a retried block to match.
const WAIT: Duration = Duration::from_secs(180);
const RETRY: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Run,
    Background,
    Retry,
    /// ```` ```rust file=PATH ````: the block is an excerpt of the file at PATH (from the
    /// workspace's root), which is compiled and tested where it is.
    Excerpt(String),
}

#[derive(Debug)]
struct Step {
    command: String,
    shown: Vec<String>,
}

#[derive(Debug)]
struct Block {
    line: usize,
    mode: Mode,
    steps: Vec<Step>,
}

/// The runnable blocks of a Markdown text.
fn blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        // A block in a list item is indented: its lines are read without that indentation.
        let indent = line.len() - line.trim_start().len();
        let words: Vec<&str> = info.split_whitespace().collect();
        let body: Vec<&str> = lines
            .by_ref()
            .map(|(_, l)| {
                let strip = l.len() - l.trim_start().len();
                &l[strip.min(indent)..]
            })
            .take_while(|l| !l.trim_start().starts_with("```"))
            .collect();
        if let Some(file) = words.iter().find_map(|w| w.strip_prefix("file=")) {
            blocks.push(Block {
                line: number + 1,
                mode: Mode::Excerpt(file.to_owned()),
                steps: vec![Step {
                    command: String::new(),
                    shown: body.iter().map(|l| (*l).to_owned()).collect(),
                }],
            });
            continue;
        }
        if !words.contains(&"runnable") {
            continue;
        }
        let mode = if words.contains(&"background") {
            Mode::Background
        } else if words.contains(&"retry") {
            Mode::Retry
        } else {
            Mode::Run
        };
        let mut steps: Vec<Step> = Vec::new();
        let mut continued = false;
        for line in body {
            if continued {
                let step = steps.last_mut().expect("a command continues");
                step.command.push('\n');
                step.command.push_str(line);
                continued = line.ends_with('\\');
            } else if let Some(command) = line.strip_prefix("$ ") {
                steps.push(Step {
                    command: command.to_owned(),
                    shown: Vec::new(),
                });
                continued = command.ends_with('\\');
            } else if let Some(step) = steps.last_mut() {
                step.shown.push(line.trim_end().to_owned());
            }
        }
        blocks.push(Block {
            line: number + 1,
            mode,
            steps,
        });
    }
    blocks
}

/// Whether `line` matches `pattern`, `…` standing for any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let line = line.trim_end();
    let parts: Vec<&str> = pattern.split('…').collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || line.len() < first.len() + last.len() || !line.ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether `lines` match the shown lines `pattern` (a `…` line: any number of lines).
fn output_matches(pattern: &[String], lines: &[&str]) -> bool {
    match pattern.split_first() {
        None => lines.iter().all(|l| l.trim().is_empty()),
        Some((first, rest)) if first == "…" => {
            (0..=lines.len()).any(|skip| output_matches(rest, &lines[skip..]))
        }
        Some((first, rest)) => {
            !lines.is_empty() && line_matches(first, lines[0]) && output_matches(rest, &lines[1..])
        }
    }
}

/// What a file's commands run with.
struct Run {
    dir: tempfile::TempDir,
    xtask: PathBuf,
    target: PathBuf,
    ports: Vec<(u16, u16)>,
    background: Vec<Process>,
}

impl Run {
    fn new(target: &Path) -> Self {
        // Every port from one picker, so that no two are the same; released before the
        // commands bind them.
        let mut free = test_support::FreePorts::default();
        let ports = PORTS
            .iter()
            .map(|&port| (port, free.pick().unwrap()))
            .collect();
        drop(free);
        Self {
            dir: tempfile::tempdir().unwrap(),
            xtask: PathBuf::from(env!("CARGO_BIN_EXE_xtask")),
            target: target.to_owned(),
            ports,
            background: Vec::new(),
        }
    }

    /// `text` with the documentation's ports replaced by this run's.
    fn ports(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (from, to) in &self.ports {
            text = text.replace(&format!(":{from}"), &format!(":{to}"));
        }
        text
    }

    /// The command line as it runs here (see the module documentation).
    fn command(&self, command: &str) -> String {
        let mut command = self.ports(command);
        command = command.replace("cargo xtask ", &format!("{} ", self.xtask.display()));
        while let Some(at) = command.find("cargo run -q -p ") {
            let rest = &command[at + "cargo run -q -p ".len()..];
            let name: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
            let after = rest[name.len()..]
                .trim_start()
                .strip_prefix("--")
                .unwrap_or(&rest[name.len()..]);
            let binary = self.target.join(&name);
            command = format!("{}{}{}", &command[..at], binary.display(), after.to_owned());
        }
        command
    }

    fn bash(&self, command: &str) -> Command {
        let port = |from: u16| {
            let to = self.ports.iter().find(|(f, _)| *f == from).unwrap().1;
            format!("127.0.0.1:{to}")
        };
        let mut bash = Command::new("bash");
        bash.arg("-c")
            .arg(format!("set -o pipefail\n{command}"))
            .current_dir(self.dir.path())
            .env("ORDER_API_LISTEN", port(8090))
            .env("PICKLIST_CONSUMER_LISTEN", port(8091))
            .env("FULFILLMENT_LISTEN", port(9464))
            .env_remove("GROCERY_CONFIG")
            .env_remove("RUST_LOG");
        bash
    }

    /// Runs `step` to its end: its stdout, or why it failed.
    fn run(&self, step: &Step) -> Result<String, String> {
        let command = self.command(&step.command);
        let out = self.bash(&command).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "`{command}` exited with {}\nstdout:\n{stdout}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let shown: Vec<String> = step.shown.iter().map(|l| self.ports(l)).collect();
        let lines: Vec<&str> = stdout.lines().collect();
        if output_matches(&shown, &lines) {
            Ok(stdout)
        } else {
            Err(format!(
                "`{command}` printed\n{stdout}\nwhere the documentation shows\n{}",
                shown.join("\n")
            ))
        }
    }

    /// Starts `step` as a process kept until the end, and waits for its shown lines.
    fn start(&mut self, step: &Step, name: String) {
        let command = self.command(&step.command);
        let mut bash = self.bash(&format!("exec {command}"));
        // Not echoed (a failure prints the process's output); kept in the run's directory.
        let log = self
            .dir
            .path()
            .join(format!("{}.log", self.background.len()));
        let process = Process::start(&name, &mut bash, Output::log_to(log)).unwrap();
        let deadline = Instant::now() + WAIT;
        for shown in step.shown.iter().filter(|l| *l != "…") {
            let shown = self.ports(shown);
            loop {
                let seen = |lines: Vec<String>| lines.iter().any(|l| line_matches(&shown, l));
                if seen(process.stdout().all()) || seen(process.stderr().all()) {
                    break;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(
                    !left.is_zero(),
                    "{name}: `{command}` did not show {shown:?} in {WAIT:?}\nstdout:\n{}\nstderr:\n{}",
                    process.stdout().all().join("\n"),
                    process.stderr().all().join("\n")
                );
                // Wakes at the next line on either stream (or the deadline).
                let _ = process
                    .stderr()
                    .wait_for(left.min(Duration::from_millis(500)), |l| {
                        line_matches(&shown, l)
                    });
            }
        }
        self.background.push(process);
    }

    /// Stops the background processes, last started first; each must exit 0.
    fn stop(&mut self) {
        while let Some(mut process) = self.background.pop() {
            let name = process.name().to_owned();
            let status = process.terminate(Duration::from_secs(30)).unwrap();
            assert!(
                status.success(),
                "{name} exited with {status:?} after SIGTERM\nstderr:\n{}",
                process.stderr().all().join("\n")
            );
        }
    }
}

/// The Markdown files of [`FILES`], directories expanded (sorted).
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in FILES {
        let path = root.join(entry);
        if path.is_dir() {
            let mut pages: BTreeSet<PathBuf> = BTreeSet::new();
            for page in std::fs::read_dir(&path).unwrap() {
                let page = page.unwrap().path();
                if page.extension().is_some_and(|e| e == "md") {
                    pages.insert(page);
                }
            }
            files.extend(pages);
        } else {
            files.push(path);
        }
    }
    files
}

/// The packages the documents run with `cargo run -q -p NAME`.
fn packages(documents: &[(PathBuf, Vec<Block>)]) -> BTreeSet<String> {
    documents
        .iter()
        .flat_map(|(_, blocks)| blocks)
        .flat_map(|block| &block.steps)
        .flat_map(|step| {
            step.command
                .match_indices("cargo run -q -p ")
                .map(|(at, _)| {
                    step.command[at + "cargo run -q -p ".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                })
        })
        .collect()
}

/// The documents of [`FILES`] under `root` and their runnable blocks.
fn read_documents(root: &Path) -> Vec<(PathBuf, Vec<Block>)> {
    documents(root)
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let blocks = blocks(&text);
            (path, blocks)
        })
        .collect()
}

/// Builds `names` (the packages of the documents, so that every test here shares one build)
/// and returns the directory of their binaries.
fn build(names: &BTreeSet<String>) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(xtask::services::workspace_dir())
        .args(["build", "--quiet"]);
    for name in names {
        command.args(["-p", name]);
    }
    let status = command.status().unwrap();
    assert!(status.success(), "cargo build of {names:?} failed");
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| xtask::services::workspace_dir().join("target"))
        .join("debug")
}

#[test]
fn the_documentation_runs_as_written() {
    let started = Instant::now();
    let root = xtask::services::workspace_dir();
    let documents = read_documents(&root);
    let target = build(&packages(&documents));
    let (mut ran, mut commands) = (0, 0);
    for (path, blocks) in &documents {
        let name = path.strip_prefix(&root).unwrap().display().to_string();
        let mut run = Run::new(&target);
        for block in blocks {
            let at = format!("{name}:{}", block.line);
            match &block.mode {
                Mode::Excerpt(file) => {
                    let text = std::fs::read_to_string(root.join(file))
                        .unwrap_or_else(|e| panic!("{at}: {file}: {e}"));
                    let excerpt = block.steps[0].shown.join("\n");
                    assert!(
                        text.contains(&excerpt),
                        "{at}: the block is not an excerpt of {file}:\n{excerpt}"
                    );
                }
                Mode::Background => {
                    for (i, step) in block.steps.iter().enumerate() {
                        run.start(step, format!("{at}#{i}"));
                    }
                }
                Mode::Run => {
                    for step in &block.steps {
                        if let Err(why) = run.run(step) {
                            panic!("{at}: {why}");
                        }
                    }
                }
                Mode::Retry => {
                    let deadline = Instant::now() + RETRY;
                    loop {
                        match block
                            .steps
                            .iter()
                            .try_for_each(|step| run.run(step).map(drop))
                        {
                            Ok(()) => break,
                            Err(why) if Instant::now() > deadline => panic!("{at}: {why}"),
                            // Waits on the services: a reader runs the block again.
                            Err(_) => std::thread::sleep(Duration::from_millis(250)),
                        }
                    }
                }
            }
            if !matches!(block.mode, Mode::Excerpt(_)) {
                ran += 1;
                commands += block.steps.len();
            }
            eprintln!("{at}: done ({:?} so far)", started.elapsed());
        }
        run.stop();
    }
    eprintln!(
        "{ran} runnable blocks ({commands} commands) of {} documents ran as written in {:.1} s",
        documents.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(ran > 0, "no runnable block found");
}

#[test]
fn shown_output_patterns() {
    let p = |lines: &[&str]| lines.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>();
    assert!(line_matches("a…c", "abbbc"));
    assert!(line_matches("{\"id\":…}", "{\"id\":42}"));
    assert!(!line_matches("a…c", "abd"));
    assert!(!line_matches("ab", "abc"));
    assert!(line_matches("…", ""));
    assert!(output_matches(&p(&["x", "…", "z"]), &["x", "z"]));
    assert!(output_matches(&p(&["x", "…", "z"]), &["x", "y", "y", "z"]));
    assert!(!output_matches(&p(&["x", "z"]), &["x", "y", "z"]));
    assert!(!output_matches(&p(&["x"]), &["x", "y"]));
    let parsed = blocks(
        "text\n```sh runnable retry\n# a comment\n$ echo a \\\n  b\nA B\n$ true\n```\n```sh\n$ no\n```\n",
    );
    assert_eq!(parsed.len(), 1);
    let indented = blocks("1. x\n   ```sh runnable\n   $ true\n   ```\n");
    assert_eq!(indented[0].steps[0].command, "true");
    assert_eq!(parsed[0].mode, Mode::Retry);
    assert_eq!(parsed[0].steps[0].command, "echo a \\\n  b");
    assert_eq!(parsed[0].steps[0].shown, ["A B"]);
    assert!(parsed[0].steps[1].shown.is_empty());
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The text of `markdown` outside fenced blocks.
fn prose(markdown: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Every relative link of the documents (the README's contents list leads to every page of
/// `docs/`, and each page's to its sections) names a file that exists and, for a Markdown
/// file, a heading it has.
#[test]
fn the_documentation_links_resolve() {
    let root = xtask::services::workspace_dir();
    let mut broken = Vec::new();
    for path in documents(&root) {
        let text = prose(&std::fs::read_to_string(&path).unwrap());
        for (at, _) in text.match_indices("](") {
            let link: String = text[at + 2..].chars().take_while(|c| *c != ')').collect();
            if link.contains("://") || link.starts_with("mailto:") || link.contains(' ') {
                continue;
            }
            let (file, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                path.clone()
            } else {
                path.parent().unwrap().join(file)
            };
            if !target.exists() {
                broken.push(format!("{}: {link}: no such file", path.display()));
            } else if !fragment.is_empty() && target.extension().is_some_and(|e| e == "md") {
                let headings = prose(&std::fs::read_to_string(&target).unwrap());
                let found = headings
                    .lines()
                    .filter_map(|l| l.strip_prefix('#'))
                    .map(|l| anchor(l.trim_start_matches('#')))
                    .any(|a| a == fragment);
                if !found {
                    broken.push(format!("{}: {link}: no such heading", path.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    // Every page of docs/ is reachable from the README.
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for page in std::fs::read_dir(root.join("docs")).unwrap() {
        let name = page.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            readme.contains(&format!("](docs/{name})")),
            "README.md does not link docs/{name}"
        );
    }
}

/// The ports the documentation uses are the defaults, and no two defaults are the same: the
/// control room, the Order API, the staff page and fulfillment-service's metrics run side by
/// side as they are (the Order API's 8080 was the control room's).
#[test]
fn the_documented_ports_are_the_defaults_and_do_not_collide() {
    let root = xtask::services::workspace_dir();
    let target = build(&packages(&read_documents(&root)));
    let xtask = PathBuf::from(env!("CARGO_BIN_EXE_xtask"));
    let cases: [(PathBuf, &[&str], u16); 4] = [
        (xtask, &["control", "--help"], 8080),
        (target.join("order-producer"), &["serve", "--help"], 8090),
        (target.join("picklist-consumer"), &["--help"], 8091),
        (target.join("fulfillment-service"), &["--help"], 9464),
    ];
    let mut defaults = BTreeSet::new();
    for (program, args, port) in cases {
        let out = Command::new(&program).args(args).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        let shown = format!("[default: 127.0.0.1:{port}]");
        assert!(
            help.contains(&shown),
            "{} {args:?} does not say {shown}:\n{help}",
            program.display()
        );
        defaults.insert(port);
    }
    assert_eq!(defaults, PORTS.into_iter().collect::<BTreeSet<_>>());
}
