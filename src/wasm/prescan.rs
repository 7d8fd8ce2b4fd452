//! A cheap look at an untrusted `.wasm` before compiling it.
//!
//! wasmtime does not bound compilation ("denial of service while compiling
//! is not a security vulnerability"): a 1.2 MB component with 300,000 empty
//! functions took 46 s and 1.7 GB to compile. So before compiling, plughost
//! walks the binary once with `wasmparser` (no validation, no code
//! generation: milliseconds) and refuses what it cannot use or would cost
//! too much:
//!
//! * more than [`MAX_FUNCTIONS`] functions, or more than
//!   [`MAX_CORE_MODULES`] core modules (compile time and memory grow with
//!   both);
//! * no export of plughost's interfaces, or an import plughost does not
//!   provide (WASI 0.2 and plughost's `log`).
//!
//! It also counts what one instance takes from the pooling allocator (core
//! instances, memories, tables), for the capacity check at load time.

use wasmparser::{Encoding, Instance, Parser, Payload};

use super::{PACKAGE, VERSION, export_name};
use crate::kinds::ComponentKind;

/// Most functions (summed over every core module) a component may define.
/// The Python state component (CPython via componentize-py) has about
/// 29,000.
pub const MAX_FUNCTIONS: usize = 100_000;

/// Most core modules a component may contain.
pub const MAX_CORE_MODULES: usize = 64;

/// Interfaces plughost links, by prefix of the import name.
const PROVIDED: &[&str] = &[
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:io/",
    "wasi:random/",
    "wasi:sockets/",
    "plughost:components/log@0.1.0",
    "plughost:components/types@0.1.0",
];

/// What the scan learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    /// Functions defined, over every core module.
    pub functions: usize,
    /// Core modules contained.
    pub core_modules: usize,
    /// Core instances one instantiation creates (pool slots).
    pub core_instances: usize,
    /// Linear memories defined (pool slots per instance).
    pub memories: usize,
    /// Tables defined (pool slots per instance).
    pub tables: usize,
    /// The kinds it exports.
    pub kinds: Vec<ComponentKind>,
}

/// Scans `bytes` (a component) and refuses it with the reason, or describes it.
pub fn scan(bytes: &[u8]) -> anyhow::Result<Shape> {
    let mut shape = Shape::default();
    let (mut depth, mut exports, mut imports) = (0usize, Vec::new(), Vec::new());
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| anyhow::anyhow!("not a valid component: {e}"))?;
        match payload {
            Payload::Version { encoding, .. } => {
                depth += 1;
                if encoding == Encoding::Module {
                    shape.core_modules += 1;
                    if shape.core_modules > MAX_CORE_MODULES {
                        anyhow::bail!(
                            "rejected before compiling: more than {MAX_CORE_MODULES} core modules (plughost's limit)"
                        );
                    }
                }
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::CodeSectionStart { count, .. } => {
                shape.functions += count as usize;
                if shape.functions > MAX_FUNCTIONS {
                    anyhow::bail!(
                        "rejected before compiling: it defines more than {MAX_FUNCTIONS} functions (plughost's \
                         limit; compile time and memory grow with the function count)"
                    );
                }
            }
            Payload::MemorySection(reader) => shape.memories += reader.count() as usize,
            Payload::TableSection(reader) => shape.tables += reader.count() as usize,
            Payload::InstanceSection(reader) => {
                for instance in reader {
                    let instance = instance.map_err(|e| anyhow::anyhow!("not a valid component: {e}"))?;
                    if matches!(instance, Instance::Instantiate { .. }) {
                        shape.core_instances += 1;
                    }
                }
            }
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(|e| anyhow::anyhow!("not a valid component: {e}"))?;
                    imports.push(import.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export = export.map_err(|e| anyhow::anyhow!("not a valid component: {e}"))?;
                    exports.push(export.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    if let Some(missing) = imports.iter().find(|name| !PROVIDED.iter().any(|p| name.starts_with(p))) {
        anyhow::bail!(
            "cannot link: component imports instance `{missing}`, which plughost does not provide (it provides \
             WASI 0.2 cli, clocks, filesystem, io, random and sockets, and {PACKAGE}/log@{VERSION})"
        );
    }
    shape.kinds = kinds_from_exports(&exports)?;
    Ok(shape)
}

/// The kinds among a component's export names. It must export `lifecycle`
/// and at least one kind interface of plughost's package.
pub fn kinds_from_exports(exports: &[String]) -> anyhow::Result<Vec<ComponentKind>> {
    let kinds: Vec<ComponentKind> =
        ComponentKind::ALL.into_iter().filter(|kind| exports.contains(&export_name(*kind))).collect();
    if kinds.is_empty() {
        let other_version = exports.iter().find(|e| e.starts_with(PACKAGE));
        anyhow::bail!(
            "exports none of plughost's interfaces ({PACKAGE}/<kind>@{VERSION}){}; it exports: [{}]",
            other_version.map(|e| format!(" (found `{e}`: a different WIT version?)")).unwrap_or_default(),
            exports.join(", ")
        );
    }
    let lifecycle = format!("{PACKAGE}/lifecycle@{VERSION}");
    if !exports.contains(&lifecycle) {
        anyhow::bail!("exports no `{lifecycle}` (every plughost world exports it)");
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component with one core module of `functions` empty functions and
    /// the given top-level imports and exports (as empty instances).
    fn component(functions: usize, imports: &[&str], exports: &[&str]) -> Vec<u8> {
        let funcs = "(func)".repeat(functions);
        let mut text = format!("(component (core module {funcs})");
        for (i, name) in imports.iter().enumerate() {
            text.push_str(&format!(" (import \"{name}\" (instance $i{i}))"));
        }
        for (i, name) in exports.iter().enumerate() {
            text.push_str(&format!(" (instance $e{i}) (export \"{name}\" (instance $e{i}))"));
        }
        text.push(')');
        wat::parse_str(&text).unwrap()
    }

    const STATE: &str = "plughost:components/state@0.1.0";
    const LIFECYCLE: &str = "plughost:components/lifecycle@0.1.0";

    #[test]
    fn too_many_functions_are_refused_before_compiling() {
        let reason = scan(&component(MAX_FUNCTIONS + 1, &[], &[STATE, LIFECYCLE])).unwrap_err().to_string();
        assert!(reason.contains("more than 100000 functions"), "{reason}");
        let shape = scan(&component(10, &["wasi:io/streams@0.2.0"], &[STATE, LIFECYCLE])).unwrap();
        assert_eq!((shape.functions, shape.core_modules, shape.kinds.as_slice()), (10, 1, &[ComponentKind::State][..]));
    }

    #[test]
    fn imports_and_exports_are_checked_before_compiling() {
        let reason = scan(&component(1, &["example:missing/clock@1.0.0"], &[STATE, LIFECYCLE])).unwrap_err();
        assert!(reason.to_string().contains("cannot link") && reason.to_string().contains("example:missing"));
        let reason = scan(&component(1, &[], &["example:other/thing"])).unwrap_err().to_string();
        assert!(reason.contains("exports none of plughost's interfaces"), "{reason}");
        let reason = scan(&component(1, &[], &[STATE])).unwrap_err().to_string();
        assert!(reason.contains("lifecycle"), "{reason}");
    }
}
