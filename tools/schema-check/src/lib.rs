//! `schema-check check` (also `cargo xtask schemas check`): are the schemas in `schemas/`
//! compatible with what came before?
//!
//! It depends on the `avro-events` core and `avro-events-compat` only, never on the types
//! generated from the schemas, so a schema-only change is checkable even when the code that
//! uses the types does not compile yet.
//!
//! Every `schemas/<topic>.avsc` is the value schema of subject `<topic>-value`
//! (TopicNameStrategy).
//!
//! - **Offline** (default): the previous versions of each file are read from git history — every
//!   distinct version of the file reachable from the base revision, oldest first, following
//!   renames — and the working-tree file is checked against them with
//!   [`avro_events_compat::check_versions`] at the subject's level. The level is `--level`
//!   when given, else the subject's entry in `schemas/compatibility.toml`, else that file's
//!   `default`, else `BACKWARD` (Confluent's default; Terraform sets `BACKWARD` on every subject).
//! - **Online** (`--registry-config client.properties`): the registry itself is asked through
//!   the core's [`RegistryClient`], with
//!   `POST /compatibility/subjects/{subject}/versions?verbose=true`, at the subject's level as
//!   configured there. That endpoint checks against every version a transitive level asks for
//!   (`…/versions/latest` would check the latest version only).
//!
//! Exits non-zero when a subject is incompatible, a schema file is not valid Avro, or (online)
//! the registry cannot be asked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use apache_avro::Schema;
use avro_events::Error;
use avro_events::registry::{RegistryClient, TestAgainst};
use avro_events_compat::{self as compat, CompatibilityLevel, Previous};

/// Where per-subject levels are kept, relative to the repository root.
const LEVELS_FILE: &str = "schemas/compatibility.toml";

/// Arguments of `schema-check` (and of `cargo xtask schemas`).
#[derive(clap::Args, Debug)]
pub struct SchemasArgs {
    #[command(subcommand)]
    command: SchemasCommand,
}

#[derive(clap::Subcommand, Debug)]
enum SchemasCommand {
    /// Check schemas/*.avsc against their previous versions (git history, or a registry).
    Check(CheckArgs),
}

/// Arguments of `schema-check check`.
#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// The git repository whose schemas/ is checked [default: the repository of the current
    /// directory].
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// Previous versions are those reachable from this revision [default: merge-base of HEAD
    /// and origin/main, else of HEAD and main, else HEAD~].
    #[arg(long, value_name = "REV")]
    base: Option<String>,
    /// Check every subject at this level instead of the levels in schemas/compatibility.toml.
    #[arg(long, value_name = "LEVEL")]
    level: Option<CompatibilityLevel>,
    /// Ask the Schema Registry described by this client.properties instead of reading git
    /// history (the registry applies each subject's own level).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["base", "level"])]
    registry_config: Option<PathBuf>,
}

/// Runs the command.
///
/// # Errors
/// When a subject is incompatible, a schema file is not valid Avro, git fails, or (online)
/// the registry cannot be asked; the message names what failed.
pub async fn run(args: SchemasArgs) -> anyhow::Result<()> {
    match args.command {
        SchemasCommand::Check(args) => check(args).await,
    }
}

/// One schema file of the working tree.
struct SchemaFile {
    /// Path relative to the repository root, with `/` separators (`schemas/x.avsc`).
    rel: String,
    subject: String,
    text: String,
}

async fn check(args: CheckArgs) -> anyhow::Result<()> {
    let repo = repo_root(args.repo.as_deref())?;
    let files = schema_files(&repo)?;
    let subjects: Vec<String> = files.iter().map(|f| f.subject.clone()).collect();
    let mut failed = Vec::new();
    // Only valid schemas are checked further; an invalid one fails the run.
    let mut valid = Vec::new();
    for file in files {
        match Schema::parse_str(&file.text) {
            Ok(schema) => valid.push((file, schema)),
            Err(e) => {
                println!(
                    "{}: {} is not a valid Avro schema: {e}",
                    file.subject, file.rel
                );
                failed.push(file.subject);
            }
        }
    }
    match &args.registry_config {
        Some(config) => check_online(config, &valid, &mut failed).await?,
        None => check_offline(&repo, &args, &subjects, &valid, &mut failed)?,
    }
    if failed.is_empty() {
        Ok(())
    } else {
        bail!(
            "schemas check failed for {} subject(s): {}",
            failed.len(),
            failed.join(", ")
        )
    }
}

/// The repository root: `--repo` as given, else the git top level of the current directory.
fn repo_root(repo: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(repo) = repo {
        return repo
            .canonicalize()
            .with_context(|| format!("--repo {}", repo.display()));
    }
    let cwd = std::env::current_dir().context("current directory")?;
    Ok(git(&cwd, &["rev-parse", "--show-toplevel"])
        .map(|top| PathBuf::from(top.trim()))
        .unwrap_or(cwd))
}

/// The working tree's `schemas/*.avsc`, sorted by subject.
fn schema_files(repo: &Path) -> anyhow::Result<Vec<SchemaFile>> {
    let dir = repo.join("schemas");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.extension().is_none_or(|ext| ext != "avsc") {
            continue;
        }
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        files.push(SchemaFile {
            rel: format!("schemas/{stem}.avsc"),
            subject: format!("{stem}-value"),
            text,
        });
    }
    files.sort_by(|a, b| a.subject.cmp(&b.subject));
    if files.is_empty() {
        bail!("no schemas/*.avsc in {}", repo.display());
    }
    Ok(files)
}

// ---------------------------------------------------------------------------------------------
// Offline: git history.

fn check_offline(
    repo: &Path,
    args: &CheckArgs,
    subjects: &[String],
    files: &[(SchemaFile, Schema)],
    failed: &mut Vec<String>,
) -> anyhow::Result<()> {
    let levels = Levels::load(repo, args.level, subjects)?;
    let base = resolve_base(repo, args.base.as_deref())?;
    match &base {
        Some((commit, how)) => println!(
            "schemas check: base {how} ({}), {}",
            &commit[..commit.len().min(12)],
            levels.source
        ),
        None => println!(
            "schemas check: no base revision (the repository has no commit): every schema is new"
        ),
    }
    for (file, schema) in files {
        let level = levels.of(&file.subject);
        let history = match &base {
            Some((commit, _)) => history(repo, commit, &file.rel)?,
            None => Vec::new(),
        };
        let mut previous = Vec::new();
        for version in &history {
            match Schema::parse_str(&version.text) {
                Ok(parsed) => previous.push((version, parsed)),
                Err(e) => println!(
                    "{}: note: ignoring {} at {}, which is not valid Avro: {e}",
                    file.subject,
                    version.path,
                    short(&version.commit)
                ),
            }
        }
        if previous.is_empty() {
            println!(
                "{}: new subject (no previous version of {}), compatible",
                file.subject, file.rel
            );
            continue;
        }
        let numbered: Vec<Previous<'_>> = previous
            .iter()
            .enumerate()
            .map(|(i, (_, schema))| Previous {
                version: u32::try_from(i + 1).unwrap_or(u32::MAX),
                schema,
            })
            .collect();
        let report = compat::check_versions(level, schema, &numbered);
        if report.is_compatible() {
            let how = if level == CompatibilityLevel::None {
                "not checked"
            } else {
                "compatible"
            };
            println!(
                "{}: {how} with {} previous version(s) ({level})",
                file.subject,
                previous.len()
            );
            continue;
        }
        failed.push(file.subject.clone());
        println!(
            "{}: INCOMPATIBLE at level {level} with previous versions of {}:",
            file.subject, file.rel
        );
        for problem in &report.incompatibilities {
            let origin = usize::try_from(problem.version)
                .ok()
                .and_then(|v| previous.get(v.wrapping_sub(1)))
                .map(|(version, _)| format!(", {} at {}", version.path, short(&version.commit)))
                .unwrap_or_default();
            println!("{}: {problem}{origin}", file.subject);
        }
    }
    Ok(())
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// The compatibility level of each subject.
struct Levels {
    default: CompatibilityLevel,
    subjects: BTreeMap<String, CompatibilityLevel>,
    /// Where the levels came from, for the first line of output.
    source: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelsFile {
    default: Option<CompatibilityLevel>,
    #[serde(default)]
    subjects: BTreeMap<String, CompatibilityLevel>,
}

impl Levels {
    fn load(
        repo: &Path,
        flag: Option<CompatibilityLevel>,
        subjects: &[String],
    ) -> anyhow::Result<Self> {
        if let Some(level) = flag {
            return Ok(Self {
                default: level,
                subjects: BTreeMap::new(),
                source: format!("level {level} for every subject (--level)"),
            });
        }
        let path = repo.join(LEVELS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    default: CompatibilityLevel::Backward,
                    subjects: BTreeMap::new(),
                    source: format!("level BACKWARD for every subject (no {LEVELS_FILE})"),
                });
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let parsed: LevelsFile =
            toml::from_str(&text).with_context(|| format!("{LEVELS_FILE} is not valid"))?;
        for subject in parsed.subjects.keys() {
            if !subjects.contains(subject) {
                bail!(
                    "{LEVELS_FILE} sets a level for subject '{subject}', which has no schema file \
                     (expected schemas/{}.avsc)",
                    subject.strip_suffix("-value").unwrap_or(subject)
                );
            }
        }
        Ok(Self {
            default: parsed.default.unwrap_or_default(),
            subjects: parsed.subjects,
            source: format!("levels from {LEVELS_FILE}"),
        })
    }

    fn of(&self, subject: &str) -> CompatibilityLevel {
        self.subjects.get(subject).copied().unwrap_or(self.default)
    }
}

/// The base revision as a commit id, with how it was chosen; `None` in a repository without
/// commits.
fn resolve_base(repo: &Path, base: Option<&str>) -> anyhow::Result<Option<(String, String)>> {
    if let Some(rev) = base {
        let commit = git(
            repo,
            &["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
        )
        .with_context(|| format!("--base {rev} is not a commit in {}", repo.display()))?;
        return Ok(Some((commit.trim().to_owned(), rev.to_owned())));
    }
    for branch in ["origin/main", "main"] {
        if let Ok(commit) = git(repo, &["merge-base", "HEAD", branch]) {
            return Ok(Some((
                commit.trim().to_owned(),
                format!("merge-base of HEAD and {branch}"),
            )));
        }
    }
    if let Ok(commit) = git(repo, &["rev-parse", "--verify", "HEAD~^{commit}"]) {
        return Ok(Some((
            commit.trim().to_owned(),
            "HEAD~ (neither origin/main nor main exists)".to_owned(),
        )));
    }
    if let Ok(commit) = git(repo, &["rev-parse", "--verify", "HEAD^{commit}"]) {
        return Ok(Some((
            commit.trim().to_owned(),
            "HEAD (neither origin/main, main nor HEAD~ exists)".to_owned(),
        )));
    }
    Ok(None)
}

/// One previous version of a schema file.
struct Version {
    commit: String,
    /// The file's path in that commit (it may have been renamed since).
    path: String,
    text: String,
}

/// The distinct versions of `rel` reachable from `base`, oldest first. A content that comes back
/// later (a revert) counts at its latest place, so the last element is the base's version.
fn history(repo: &Path, base: &str, rel: &str) -> anyhow::Result<Vec<Version>> {
    let log = git(
        repo,
        &[
            "log",
            "--format=%H",
            "--name-only",
            "--follow",
            base,
            "--",
            rel,
        ],
    )
    .with_context(|| format!("reading the history of {rel}"))?;
    // `%H`, a blank line, then the file's name in that commit.
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in log.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.len() == 40 && line.bytes().all(|b| b.is_ascii_hexdigit()) {
            entries.push((line.to_owned(), rel.to_owned()));
        } else if let Some(last) = entries.last_mut() {
            line.clone_into(&mut last.1);
        }
    }
    let mut versions: Vec<Version> = Vec::new();
    for (commit, path) in entries.into_iter().rev() {
        // A commit that deleted the file has nothing to show.
        let Ok(text) = git(repo, &["show", &format!("{commit}:{path}")]) else {
            continue;
        };
        versions.retain(|v| v.text != text);
        versions.push(Version { commit, path, text });
    }
    Ok(versions)
}

/// Runs git in `repo` and returns its standard output.
fn git(repo: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .context("running git (is it installed?)")?;
    if !output.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout).context("git printed non-UTF-8 output")
}

// ---------------------------------------------------------------------------------------------
// Online: the registry.

async fn check_online(
    config_path: &Path,
    files: &[(SchemaFile, Schema)],
    failed: &mut Vec<String>,
) -> anyhow::Result<()> {
    let config = avro_events::Config::from_file(config_path)
        .and_then(|c| c.registry_config())
        .with_context(|| format!("reading the registry settings of {}", config_path.display()))?;
    let registry = RegistryClient::new(&config)?;
    let url = registry.url().to_owned();
    println!("schemas check: asking the Schema Registry at {url}");
    for (file, _) in files {
        let versions = match registry.versions(&file.subject).await {
            Ok(versions) => versions,
            Err(Error::SubjectNotFound { .. }) => {
                println!(
                    "{}: new subject (not registered at {url}), compatible",
                    file.subject
                );
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let level = registry.compatibility(Some(&file.subject)).await?;
        let answer = match registry
            .test_compatibility(&file.subject, &file.text, TestAgainst::Level)
            .await
        {
            Ok(answer) => answer,
            Err(Error::SubjectNotFound { .. } | Error::VersionNotFound { .. }) => {
                println!(
                    "{}: new subject (not registered at {url}), compatible",
                    file.subject
                );
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if answer.is_compatible {
            println!(
                "{}: compatible with {} registered version(s) ({level})",
                file.subject,
                versions.len()
            );
            continue;
        }
        failed.push(file.subject.clone());
        println!(
            "{}: INCOMPATIBLE at level {level} with the version(s) registered at {url}:",
            file.subject
        );
        for message in answer.messages {
            println!("{}: {}", file.subject, shorten(&message));
        }
    }
    Ok(())
}

/// Confluent's verbose answer includes the whole old schema; keep lines readable.
fn shorten(message: &str) -> String {
    const MAX: usize = 400;
    if message.chars().count() <= MAX {
        return message.to_owned();
    }
    let mut short: String = message.chars().take(MAX).collect();
    short.push('…');
    short
}

/// The start of a command-line tool here (`schema-check`, `cargo xtask`): tracing to stderr
/// (`RUST_LOG`, default `warn`) and a multi-thread runtime.
///
/// # Errors
/// When the runtime cannot be built.
pub fn cli_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
