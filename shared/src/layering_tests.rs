//! The shape of the library, checked on its own source (lib.rs names the layers):
//! - each layer uses only the layers before it (domain → zoom → ports → app → {http,
//!   adapters} → wiring); the modules beside them (config, deadline, metrics, secret,
//!   telemetry) use none of the layers;
//! - the rules (`app`) and everything before them name no adapter, SDK, database or web
//!   framework;
//! - no two files import each other, directly or in a circle;
//! - no file holds more than ~600 lines of code before its tests.
//!
//! Test code (`tests.rs`, `*_tests.rs`, and everything after a file's `#[cfg(test)]`) is
//! left out: tests may wire what they like.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LAYERS: &[(&str, u8)] = &[
    ("domain", 0),
    ("zoom", 1),
    ("ports", 2),
    ("app", 3),
    ("http", 4),
    ("adapters", 4),
    ("wiring", 5),
];

/// Names the rules layer (and the layers before it) must not use.
const FRAMEWORKS: &[&str] = &[
    "aws_config",
    "aws_sdk_",
    "aws_lambda_events",
    "aws_smithy",
    "lambda_http",
    "lambda_runtime",
    "axum",
    "tower",
    "rusqlite",
    "reqwest",
    "hyper",
];

const MAX_CODE_LINES: usize = 650;

struct Source {
    /// Path below `src/`, e.g. `app/tokens/mod.rs`.
    rel: String,
    /// The module path, e.g. `["app", "tokens"]`.
    module: Vec<String>,
    /// The code before any `#[cfg(test)]`.
    code: String,
}

fn sources() -> Vec<Source> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    walk(&src, &mut paths);
    paths
        .into_iter()
        .filter_map(|path| {
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let name = rel.rsplit('/').next().unwrap();
            if name == "tests.rs" || name.ends_with("_tests.rs") {
                return None;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let before_tests = match text.find("\n#[cfg(test)]") {
                Some(i) => &text[..i],
                None => &text,
            };
            // Comments may name anything (`crate::...` in docs); only code counts.
            let code = before_tests
                .lines()
                .map(|l| l.split("//").next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n");
            let mut module: Vec<String> = rel
                .trim_end_matches(".rs")
                .split('/')
                .map(str::to_owned)
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            Some(Source { rel, module, code })
        })
        .collect()
}

/// `a::b::{c, d::e}` → `[a::b::c, a::b::d::e]` (one level of braces is enough here).
fn expand(path: &str) -> Vec<Vec<String>> {
    let split = |p: &str| -> Vec<String> {
        p.split("::")
            .map(|s| s.trim().split(" as ").next().unwrap().trim().to_owned())
            .filter(|s| !s.is_empty() && s != "self" && s != "*")
            .collect()
    };
    match path.find('{') {
        Some(open) => {
            let base = split(&path[..open]);
            let inner = path[open + 1..].trim_end_matches('}');
            inner
                .split(',')
                .map(|item| base.iter().cloned().chain(split(item)).collect())
                .collect()
        }
        None => vec![split(path)],
    }
}

/// Every path the code names that starts with `crate::`, `super::` or one of the file's own
/// child modules, made absolute.
fn named_paths(source: &Source, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let code = &source.code;
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !code.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let at_word_start = i == 0
            || !(bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'_'
                || bytes[i - 1] == b':');
        if !at_word_start {
            i += 1;
            continue;
        }
        // A path: identifiers joined by `::`, optionally ending in one `{...}` group.
        let mut end = i;
        while end < bytes.len()
            && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_' || bytes[end] == b':')
        {
            end += 1;
        }
        if end < bytes.len()
            && bytes[end] == b'{'
            && code[i..end].ends_with("::")
            && let Some(close) = code[end..].find('}')
        {
            end += close + 1;
        }
        let text = &code[i..end];
        let first = text.split("::").next().unwrap_or_default();
        if text.contains("::") && (first == "crate" || first == "super" || children.contains(first))
        {
            for mut path in expand(text) {
                let absolute = match path.first().map(String::as_str) {
                    Some("crate") => path.split_off(1),
                    Some("super") => {
                        let mut base = source.module.clone();
                        while path.first().map(String::as_str) == Some("super") {
                            path.remove(0);
                            base.pop();
                        }
                        base.into_iter().chain(path).collect()
                    }
                    _ => source.module.iter().cloned().chain(path).collect(),
                };
                found.push(absolute);
            }
        }
        i = end.max(i + 1);
    }
    found
}

/// File → the other files it names.
fn imports(sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let by_module: BTreeMap<&[String], &str> = sources
        .iter()
        .map(|s| (s.module.as_slice(), s.rel.as_str()))
        .collect();
    let resolve = |path: &[String]| -> Option<&str> {
        (1..=path.len())
            .rev()
            .find_map(|n| by_module.get(&path[..n]).copied())
    };
    sources
        .iter()
        .map(|source| {
            let children: BTreeSet<String> = sources
                .iter()
                .filter(|s| {
                    s.module.len() == source.module.len() + 1
                        && s.module.starts_with(&source.module)
                })
                .map(|s| s.module.last().unwrap().clone())
                .collect();
            let targets = named_paths(source, &children)
                .iter()
                .filter_map(|p| resolve(p))
                .filter(|t| *t != source.rel && *t != "lib.rs")
                .map(str::to_owned)
                .collect();
            (source.rel.clone(), targets)
        })
        .collect()
}

fn layer_of(rel: &str) -> Option<(&'static str, u8)> {
    let top = rel.split('/').next().unwrap().trim_end_matches(".rs");
    LAYERS.iter().find(|(name, _)| *name == top).copied()
}

#[test]
fn layers_use_only_the_layers_before_them() {
    let sources = sources();
    assert!(sources.len() > 40, "found the library's files");
    let mut wrong = Vec::new();
    for (file, targets) in imports(&sources) {
        for target in targets {
            let allowed = match (layer_of(&file), layer_of(&target)) {
                (_, None) => true,
                (None, Some(_)) => false,
                (Some((a, la)), Some((b, lb))) => lb < la || a == b,
            };
            if !allowed {
                wrong.push(format!("{file} -> {target}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layering: {wrong:#?}");
}

#[test]
fn the_rules_name_no_adapter_or_framework() {
    let mut wrong = Vec::new();
    for source in sources() {
        if layer_of(&source.rel).is_none_or(|(_, layer)| layer > 3) {
            continue;
        }
        for name in FRAMEWORKS {
            let named = source.code.match_indices(name).any(|(i, _)| {
                let before = source.code[..i].chars().next_back();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            if named {
                wrong.push(format!("{} names {name}", source.rel));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let graph = imports(&sources());
    // Depth-first search; a back edge is a circle.
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, bool>,
        path: &mut Vec<&'a str>,
        circles: &mut Vec<String>,
    ) {
        state.insert(node, false);
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                None => visit(next, graph, state, path, circles),
                Some(false) => {
                    let start = path.iter().position(|n| *n == next).unwrap();
                    circles.push(format!("{} -> {next}", path[start..].join(" -> ")));
                }
                Some(true) => {}
            }
        }
        path.pop();
        state.insert(node, true);
    }
    let mut state = BTreeMap::new();
    let mut circles = Vec::new();
    for node in graph.keys() {
        if !state.contains_key(node.as_str()) {
            visit(node, &graph, &mut state, &mut Vec::new(), &mut circles);
        }
    }
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

#[test]
fn files_stay_readable_in_one_sitting() {
    let long: Vec<String> = sources()
        .iter()
        .map(|s| (s.rel.clone(), s.code.lines().count()))
        .filter(|(_, n)| *n > MAX_CODE_LINES)
        .map(|(f, n)| format!("{f}: {n} lines"))
        .collect();
    assert!(long.is_empty(), "split these: {long:#?}");
}

/// The checker itself finds what it must (else the tests above could not fail).
#[test]
fn the_checker_sees_imports_and_circles() {
    let source = |rel: &str, module: &[&str], code: &str| Source {
        rel: rel.into(),
        module: module.iter().map(|s| (*s).to_owned()).collect(),
        code: code.into(),
    };
    let sources = vec![
        source(
            "app/a.rs",
            &["app", "a"],
            "use super::b::{X, c::Y};\nfn f() { crate::domain::Z; }",
        ),
        source(
            "app/b/mod.rs",
            &["app", "b"],
            "pub mod c;\nuse c::Y;\nuse crate::app::a::W;",
        ),
        source("app/b/c.rs", &["app", "b", "c"], "pub struct Y;"),
        source("domain/mod.rs", &["domain"], "pub struct Z;"),
    ];
    let graph = imports(&sources);
    let of = |f: &str| graph[f].iter().cloned().collect::<Vec<_>>();
    assert_eq!(
        of("app/a.rs"),
        ["app/b/c.rs", "app/b/mod.rs", "domain/mod.rs"]
    );
    assert_eq!(of("app/b/mod.rs"), ["app/a.rs", "app/b/c.rs"]);
}
