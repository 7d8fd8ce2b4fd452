//! Dapr Component YAML: reading `kind: Component` documents from a directory.
//!
//! ```yaml
//! apiVersion: dapr.io/v1alpha1
//! kind: Component
//! metadata:
//!   name: statestore
//! spec:
//!   type: state.sqlite
//!   version: v1
//!   initTimeout: 10s       # Go duration, default 5s
//!   ignoreErrors: false    # true: a failed init is logged and skipped
//!   metadata:
//!     - name: connectionString
//!       value: state.db
//!     - name: password
//!       secretKeyRef: { name: db-password, key: db-password }
//! auth:
//!   secretStore: localsecrets
//! ```
//!
//! A file may hold several documents separated by `---`. `kind: Resiliency`
//! documents are read by [`crate::resiliency`]; documents of other kinds
//! (`Subscription`, `Configuration`, ...) are skipped. Any error refuses
//! the whole load, naming file, line and reason: nothing is half-applied.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::resiliency::Resiliency;

/// Default `spec.initTimeout`, as in Dapr.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(5);

/// One configured component.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentSpec {
    /// `metadata.name`: how apps refer to it.
    pub name: String,
    /// `spec.type`, lower-cased: `state.sqlite`, `pubsub.<socket stem>`, ...
    pub type_name: String,
    /// `spec.version`; empty if not given.
    pub version: String,
    /// `spec.metadata`, in file order.
    pub metadata: Vec<MetadataItem>,
    /// `spec.initTimeout`.
    pub init_timeout: Duration,
    /// `spec.ignoreErrors`.
    pub ignore_errors: bool,
    /// `auth.secretStore`: where `secretKeyRef`s are resolved.
    pub secret_store: Option<String>,
    /// `metadata.annotations`: daprd ignores them; plughost reads its own
    /// (`plughost.io/...`, see [`crate::supervisor`]).
    pub annotations: BTreeMap<String, String>,
    /// Where the definition came from, for error messages.
    pub origin: Origin,
}

impl ComponentSpec {
    /// A component defined in code, with plain metadata values.
    pub fn new(name: impl Into<String>, type_name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            type_name: type_name.into().to_lowercase(),
            version: String::new(),
            metadata: Vec::new(),
            init_timeout: DEFAULT_INIT_TIMEOUT,
            ignore_errors: false,
            secret_store: None,
            annotations: BTreeMap::new(),
            origin: Origin::Code,
        }
    }

    /// Adds an annotation (`metadata.annotations`).
    pub fn annotate(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// Adds a plain metadata value.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push(MetadataItem { name: name.into(), value: MetadataValue::Plain(value.into()) });
        self
    }
}

/// One `spec.metadata` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataItem {
    /// Entry name.
    pub name: String,
    /// Its value, or where to find it.
    pub value: MetadataValue,
}

/// A metadata value as written in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataValue {
    /// `value:`; numbers and booleans are kept in their YAML spelling.
    Plain(String),
    /// `secretKeyRef: {name, key}`: value `key` of secret `name` in the
    /// component's `auth.secretStore`.
    SecretRef {
        /// Secret name.
        secret: String,
        /// Value within the secret; defaults to the secret name.
        key: String,
    },
}

/// Where a component definition came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A YAML file, at the line of `metadata.name` (or of the document).
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
    /// Built in code through the embedding API.
    Code,
    /// One of the embedded defaults `plughost run` starts with.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Code => f.write_str("code"),
            Origin::Default => f.write_str("embedded default"),
        }
    }
}

/// A problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {reason}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, where one applies.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

/// Every problem found in a components directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// Everything a components directory configures.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The `kind: Component` documents, in file order.
    pub components: Vec<ComponentSpec>,
    /// Every `kind: Resiliency` document, merged.
    pub resiliency: Resiliency,
}

/// One document plughost reads, by its `kind`.
#[derive(Debug, Clone)]
pub enum Document {
    /// `kind: Component`.
    Component(ComponentSpec),
    /// `kind: Resiliency`.
    Resiliency(Resiliency),
}

/// Reads every `*.yaml` / `*.yml` file in `dir` (not recursive, sorted by
/// name). Other files are ignored. Every bad file is reported; if there is
/// one, nothing is returned.
pub fn load_dir(dir: &Path) -> Result<Vec<ComponentSpec>, ConfigErrors> {
    load_config(dir).map(|config| config.components)
}

/// Like [`load_dir`], with every document kind plughost reads.
pub fn load_config(dir: &Path) -> Result<Config, ConfigErrors> {
    let fail = |reason: String| ConfigErrors(vec![ConfigError { path: dir.to_owned(), line: None, reason }]);
    let entries = std::fs::read_dir(dir).map_err(|e| fail(format!("cannot read components directory: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    let mut config = Config::default();
    let mut errors = Vec::new();
    for path in files {
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| vec![ConfigError { path: path.clone(), line: None, reason: format!("cannot read: {e}") }])
            .and_then(|text| parse_documents(&path, &text));
        match parsed {
            Ok(found) => {
                for document in found {
                    match document {
                        Document::Component(spec) => config.components.push(spec),
                        Document::Resiliency(resiliency) => config.resiliency.merge(resiliency),
                    }
                }
            }
            Err(found) => errors.extend(found),
        }
    }
    // Targets may name policies of other documents: checked once all are read.
    errors.extend(config.resiliency.check_references());
    if errors.is_empty() { Ok(config) } else { Err(ConfigErrors(errors)) }
}

/// Parses the text of one file (named `path` in errors): its components.
pub fn parse_file(path: &Path, text: &str) -> Result<Vec<ComponentSpec>, Vec<ConfigError>> {
    let documents = parse_documents(path, text)?;
    Ok(documents
        .into_iter()
        .filter_map(|d| match d {
            Document::Component(spec) => Some(spec),
            _ => None,
        })
        .collect())
}

/// Parses the text of one file (named `path` in errors): every document of a
/// kind plughost reads.
pub fn parse_documents(path: &Path, text: &str) -> Result<Vec<Document>, Vec<ConfigError>> {
    let mut documents = Vec::new();
    let mut errors = Vec::new();
    for (first_line, doc) in split_documents(text) {
        let error = |line: Option<usize>, reason: String| ConfigError { path: path.to_owned(), line, reason };
        if doc.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
            continue;
        }
        let head: RawHead = match serde_yaml::from_str(&doc) {
            Ok(head) => head,
            Err(e) => {
                let (line, reason) = yaml_error(&e, first_line);
                errors.push(error(Some(line), reason));
                continue;
            }
        };
        match parse_document(path, &doc, first_line, head.kind.as_deref()) {
            Ok(Some(document)) => documents.push(document),
            Ok(None) => {}
            Err((line, reason)) => errors.push(error(Some(line), reason)),
        }
    }
    if errors.is_empty() { Ok(documents) } else { Err(errors) }
}

/// The one place a document's `kind` picks its reader. Kinds plughost does
/// not read (`Configuration`, ...) are skipped.
fn parse_document(path: &Path, doc: &str, first_line: usize, kind: Option<&str>) -> DocResult<Option<Document>> {
    match kind {
        Some("Component") => {
            let raw: RawDocument = serde_yaml::from_str(doc).map_err(|e| yaml_error(&e, first_line))?;
            let Some(mut spec) = to_spec(raw, doc, first_line)? else { return Ok(None) };
            if let Origin::File { path: p, .. } = &mut spec.origin {
                *p = path.to_owned();
            }
            Ok(Some(Document::Component(spec)))
        }
        Some("Resiliency") => {
            crate::resiliency::parse_document(path, doc, first_line).map(|r| Some(Document::Resiliency(r)))
        }
        Some(_) => Ok(None),
        None => Err((first_line, "missing `kind` (expected `kind: Component`)".into())),
    }
}

/// A YAML error's file line (documents start at `first_line`) and text.
fn yaml_error(e: &serde_yaml::Error, first_line: usize) -> (usize, String) {
    (e.location().map_or(first_line, |l| first_line + l.line() - 1), e.to_string())
}

/// Splits a multi-document YAML text at `---` lines, keeping each document's
/// first line number so errors point into the file, not into the document.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = vec![(1, String::new())];
    for (index, line) in text.lines().enumerate() {
        let is_separator = line.starts_with("---") && line[3..].trim_start().chars().next().is_none_or(|c| c == '#');
        if is_separator {
            docs.push((index + 2, String::new()));
        } else {
            let doc = &mut docs.last_mut().expect("never empty").1;
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs
}

/// The 1-based file line of the first line in `doc` that sets `key`
/// (optionally to `value`), else the document's first line.
fn line_of(doc: &str, first_line: usize, key: &str, value: Option<&str>) -> usize {
    doc.lines()
        .position(|line| {
            let line = line.trim_start().trim_start_matches("- ");
            line.strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(':'))
                .is_some_and(|rest| value.is_none_or(|v| rest.contains(v)))
        })
        .map_or(first_line, |i| first_line + i)
}

/// Just enough of a document to pick its reader.
#[derive(Deserialize)]
struct RawHead {
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDocument {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    metadata: RawMeta,
    spec: Option<RawSpec>,
    auth: Option<RawAuth>,
}

#[derive(Deserialize, Default)]
struct RawMeta {
    name: Option<String>,
    #[serde(default)]
    annotations: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuth {
    secret_store: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSpec {
    #[serde(rename = "type")]
    type_name: Option<String>,
    version: Option<String>,
    #[serde(default)]
    metadata: Vec<RawItem>,
    init_timeout: Option<String>,
    #[serde(default)]
    ignore_errors: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawItem {
    name: String,
    value: Option<serde_yaml::Value>,
    secret_key_ref: Option<RawSecretRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecretRef {
    name: String,
    key: Option<String>,
}

type DocResult<T> = Result<T, (usize, String)>;

fn to_spec(raw: RawDocument, doc: &str, first_line: usize) -> DocResult<Option<ComponentSpec>> {
    let at = |key: &str, value: Option<&str>| line_of(doc, first_line, key, value);
    match raw.kind.as_deref() {
        Some("Component") => {}
        Some(_) => return Ok(None), // Subscription, Configuration, ...: not ours to read
        None => return Err((first_line, "missing `kind` (expected `kind: Component`)".into())),
    }
    match raw.api_version.as_deref() {
        Some("dapr.io/v1alpha1") => {}
        Some(other) => {
            return Err((
                at("apiVersion", None),
                format!("apiVersion `{other}` is not supported; use dapr.io/v1alpha1"),
            ));
        }
        None => return Err((first_line, "missing `apiVersion: dapr.io/v1alpha1`".into())),
    }
    let name = raw.metadata.name.filter(|n| !n.is_empty()).ok_or((first_line, "missing `metadata.name`".to_owned()))?;
    let name_line = at("name", Some(&name));
    validate_name(&name).map_err(|reason| (name_line, reason))?;
    let spec = raw.spec.ok_or((first_line, format!("component `{name}` has no `spec`")))?;
    let type_name = spec
        .type_name
        .filter(|t| !t.is_empty())
        .ok_or((name_line, format!("component `{name}` has no `spec.type`")))?;
    let init_timeout = match spec.init_timeout.as_deref().filter(|t| !t.is_empty()) {
        None => DEFAULT_INIT_TIMEOUT,
        Some(text) => crate::units::parse_duration(text)
            .map_err(|e| (at("initTimeout", None), format!("component `{name}`: initTimeout {e}")))?,
    };
    let mut annotations = BTreeMap::new();
    for (key, value) in raw.metadata.annotations {
        let value =
            yaml_scalar(Some(value)).map_err(|reason| (at(&key, None), format!("annotation `{key}`: {reason}")))?;
        annotations.insert(key, value);
    }
    let mut metadata = Vec::with_capacity(spec.metadata.len());
    for item in spec.metadata {
        let line = at("name", Some(&item.name));
        let value = match (item.value, item.secret_key_ref) {
            (Some(_), Some(_)) => {
                return Err((line, format!("metadata `{}` has both `value` and `secretKeyRef`", item.name)));
            }
            (_, Some(r)) => MetadataValue::SecretRef { key: r.key.unwrap_or_else(|| r.name.clone()), secret: r.name },
            (value, None) => MetadataValue::Plain(
                yaml_scalar(value).map_err(|reason| (line, format!("metadata `{}`: {reason}", item.name)))?,
            ),
        };
        metadata.push(MetadataItem { name: item.name, value });
    }
    Ok(Some(ComponentSpec {
        name,
        type_name: type_name.to_lowercase(),
        version: spec.version.unwrap_or_default(),
        metadata,
        init_timeout,
        ignore_errors: spec.ignore_errors,
        secret_store: raw.auth.and_then(|a| a.secret_store),
        annotations,
        origin: Origin::File { path: PathBuf::new(), line: name_line },
    }))
}

/// Component names end up in URLs, gRPC headers and file names.
fn validate_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 253
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "component name `{name}` is invalid: use letters, digits, `-`, `_` and `.`, starting with a letter or digit"
        ))
    }
}

fn yaml_scalar(value: Option<serde_yaml::Value>) -> Result<String, String> {
    use serde_yaml::Value;
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err("value must be a string, number or boolean".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<ComponentSpec>, Vec<ConfigError>> {
        parse_file(Path::new("c.yaml"), text)
    }

    const TWO: &str = "apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: one
spec:
  type: State.In-Memory
  version: v1
---
# second
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: two
spec:
  type: secretstores.local.file
  initTimeout: 1m30s
  ignoreErrors: true
  metadata:
    - name: secretsFile
      value: s.json
    - name: retries
      value: 3
    - name: password
      secretKeyRef:
        name: db
auth:
  secretStore: vault
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata:
  name: ignored
";

    #[test]
    fn parses_several_documents() {
        let specs = parse(TWO).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].type_name, "state.in-memory");
        assert_eq!(specs[0].origin, Origin::File { path: "c.yaml".into(), line: 4 });
        assert_eq!(specs[1].origin, Origin::File { path: "c.yaml".into(), line: 13 });
        assert_eq!(specs[1].init_timeout, Duration::from_secs(90));
        assert!(specs[1].ignore_errors);
        assert_eq!(specs[1].secret_store.as_deref(), Some("vault"));
        assert_eq!(specs[1].metadata[1].value, MetadataValue::Plain("3".into()));
        assert_eq!(specs[1].metadata[2].value, MetadataValue::SecretRef { secret: "db".into(), key: "db".into() });
    }

    #[test]
    fn syntax_error_has_file_line() {
        let text = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: x\nspec:\n  type: [oops\n";
        let errors = parse(text).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, Path::new("c.yaml"));
        assert!(errors[0].line.is_some_and(|l| l >= 6), "{:?}", errors[0]);
    }

    #[test]
    fn error_lines_are_file_lines_in_later_documents() {
        let text = format!(
            "{TWO}---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: bad name\nspec:\n  type: state.x\n"
        );
        let errors = parse(&text).unwrap_err();
        assert_eq!(errors[0].line, Some(37), "{}", errors[0]);
        assert!(errors[0].reason.contains("bad name"));
    }

    #[test]
    fn rejects_bad_values() {
        let base = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: x\nspec:\n  type: state.x\n";
        let bad_timeout = format!("{base}  initTimeout: soon\n");
        assert!(parse(&bad_timeout).unwrap_err()[0].reason.contains("soon"));
        let both = format!("{base}  metadata:\n    - name: a\n      value: b\n      secretKeyRef: {{name: c}}\n");
        assert_eq!(parse(&both).unwrap_err()[0].line, Some(8));
        assert!(parse("kind: Component\nmetadata: {name: x}\n").unwrap_err()[0].reason.contains("apiVersion"));
    }
}
