//! `plughost new`: writes a ready-to-build component project from the
//! templates in `templates/` (embedded at compile time; the convention is in
//! `templates/README.md`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use include_dir::{Dir, include_dir};

static TEMPLATES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// The kinds `--kind` accepts, with their YAML type prefix and WIT world.
const KINDS: &[(&str, &str, &str)] = &[
    ("state", "state", "state-component"),
    ("pubsub", "pubsub", "pubsub-component"),
    ("input-binding", "bindings", "input-binding-component"),
    ("output-binding", "bindings", "output-binding-component"),
    ("secret-store", "secretstores", "secret-store-component"),
];

/// The languages `--lang` accepts.
pub const LANGS: &[&str] = &["rust", "python"];

/// What `plughost new` was asked for.
pub struct Request<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub lang: &'a str,
    /// Where to write; default `./<name>`.
    pub dir: Option<PathBuf>,
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 48
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !ok {
        bail!(
            "`{name}` is not a usable component name: use lowercase letters, digits and `-`, starting with a \
             letter, at most 48 characters (it names the crate or module, the socket and the .wasm file)"
        );
    }
    Ok(())
}

fn camel(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The placeholders of `templates/README.md`, for this request.
fn placeholders(request: &Request<'_>, type_prefix: &str, world: &str) -> Vec<(&'static str, String)> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    vec![
        ("name", request.name.to_owned()),
        ("snake_name", request.name.replace('-', "_")),
        ("camel_name", camel(request.name)),
        ("kind", request.kind.to_owned()),
        ("type_prefix", type_prefix.to_owned()),
        ("world", world.to_owned()),
        ("repo", repo.display().to_string()),
        ("wit_dir", repo.join("wit").display().to_string()),
        ("sdk_dir", repo.join("components/sdk").join(request.lang).display().to_string()),
    ]
}

/// Replaces every `{{placeholder}}` in `text`; an unknown one is an error
/// naming it and `file`.
fn render(text: &str, values: &[(&str, String)], file: &str) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").with_context(|| format!("template {file}: `{{{{` without `}}}}`"))?;
        let key = after[..end].trim();
        let value = values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .with_context(|| format!("template {file}: unknown placeholder `{{{{{key}}}}}`"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Every file of `dir`, recursively, with its path relative to `base`.
fn files<'a>(dir: &'a Dir<'a>, base: &Path, out: &mut Vec<(PathBuf, &'a [u8])>) {
    for file in dir.files() {
        out.push((file.path().strip_prefix(base).unwrap_or(file.path()).to_owned(), file.contents()));
    }
    for sub in dir.dirs() {
        files(sub, base, out);
    }
}

/// The rendered project: relative path → contents.
pub fn project(request: &Request<'_>) -> anyhow::Result<Vec<(PathBuf, String)>> {
    check_name(request.name)?;
    let Some(&(_, type_prefix, world)) = KINDS.iter().find(|(k, _, _)| *k == request.kind) else {
        let known: Vec<&str> = KINDS.iter().map(|(k, _, _)| *k).collect();
        bail!("unknown kind `{}` (known: {})", request.kind, known.join(", "));
    };
    if !LANGS.contains(&request.lang) {
        bail!("unknown language `{}` (known: {})", request.lang, LANGS.join(", "));
    }
    let kind_dir = Path::new(request.lang).join(request.kind);
    let Some(kind_templates) = TEMPLATES.get_dir(&kind_dir) else {
        let available: Vec<String> = TEMPLATES
            .get_dir(request.lang)
            .map(|lang| {
                lang.dirs()
                    .filter_map(|d| d.path().file_name()?.to_str().map(str::to_owned))
                    .filter(|d| d != "_common")
                    .collect()
            })
            .unwrap_or_default();
        bail!(
            "no {} template for kind {} (templates exist for: {})",
            request.lang,
            request.kind,
            if available.is_empty() { "none".to_owned() } else { available.join(", ") }
        );
    };
    let mut sources = Vec::new();
    let common_dir = Path::new(request.lang).join("_common");
    if let Some(common) = TEMPLATES.get_dir(&common_dir) {
        files(common, &common_dir, &mut sources);
    }
    files(kind_templates, &kind_dir, &mut sources);
    let values = placeholders(request, type_prefix, world);
    let mut rendered: Vec<(PathBuf, String)> = Vec::new();
    for (relative, contents) in sources {
        let template_name = Path::new("templates").join(request.lang).join(&relative).display().to_string();
        let text = std::str::from_utf8(contents).with_context(|| format!("template {template_name}: not UTF-8"))?;
        let mut path = PathBuf::from(render(&relative.to_string_lossy(), &values, &template_name)?);
        if path.extension().is_some_and(|e| e == "tmpl") {
            path.set_extension("");
        }
        let text = render(text, &values, &template_name)?;
        // A kind's file replaces the common file of the same path.
        rendered.retain(|(p, _)| *p != path);
        rendered.push((path, text));
    }
    Ok(rendered)
}

/// Writes the project; refuses a target folder that exists and is not empty.
pub fn write(request: &Request<'_>) -> anyhow::Result<PathBuf> {
    let files = project(request)?;
    let dir = request.dir.clone().unwrap_or_else(|| PathBuf::from(request.name));
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!("{}: exists and is not empty; choose another --dir", dir.display());
    }
    for (relative, text) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every template of every language and kind renders: no unknown
    /// placeholder, no unclosed `{{`.
    #[test]
    fn every_template_renders() {
        for lang in LANGS {
            for (kind, _, _) in KINDS {
                let request = Request { name: "my-thing", kind, lang, dir: None };
                match project(&request) {
                    Ok(files) => assert!(files.iter().any(|(p, _)| p == Path::new("README.md")), "{lang}/{kind}"),
                    Err(e) => assert!(e.to_string().starts_with("no "), "{lang}/{kind}: {e:#}"),
                }
            }
        }
    }

    #[test]
    fn placeholders_and_bad_input() {
        let values = vec![("name", "a-b".to_owned())];
        assert_eq!(render("x {{name}} {{ name }}", &values, "t").unwrap(), "x a-b a-b");
        assert!(render("{{nope}}", &values, "t").unwrap_err().to_string().contains("unknown placeholder `{{nope}}`"));
        assert_eq!(camel("order-cache"), "OrderCache");
        let bad = Request { name: "Bad_Name", kind: "state", lang: "rust", dir: None };
        assert!(project(&bad).unwrap_err().to_string().contains("not a usable component name"));
        let kind = Request { name: "ok", kind: "queue", lang: "rust", dir: None };
        assert!(project(&kind).unwrap_err().to_string().contains("unknown kind `queue`"));
    }
}
