//! Arrows run one way (STYLE.md §2, §11): which top-level module of `src/` may name which,
//! and no cycle between the files of the crate.
//!
//! The graph is read off the source text: every `crate::a::b…` and `super::…` path outside a
//! `#[cfg(test)]` module, resolved to the file that defines the longest prefix of it. A `mod x;`
//! declaration alone is not an edge; a `pub use x::Y` re-export is (so a parent that
//! re-exports its child and a child that imports through its parent form a cycle, as they do
//! for the compiler's readers).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level module → the top-level modules it may name. Anything not listed may not be named.
const ALLOWED: &[(&str, &[&str])] = &[
    ("sync", &[]),
    ("layout", &[]),
    ("liveness", &[]),
    ("store", &[]),
    ("barrier", &["sync"]),
    ("error", &["layout"]),
    ("frame", &["layout", "error"]),
    ("wait", &["sync", "barrier", "layout"]),
    (
        "ring",
        &["sync", "barrier", "layout", "frame", "error", "wait"],
    ),
    ("region", &["sync", "barrier", "layout", "ring", "liveness"]),
    ("ops", &["layout", "error", "store"]),
    ("inspect", &["layout", "region", "liveness"]),
    ("pipe", &["layout", "error", "ops", "worker"]),
    (
        "worker",
        &[
            "layout", "error", "frame", "wait", "ring", "region", "liveness", "ops",
        ],
    ),
];

/// Module path (`crate::ops::request`) → the file that defines it.
fn module_files(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into()).collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
                parts.pop();
            }
            if matches!(parts.first().map(String::as_str), Some("main" | "cli")) {
                continue; // the binary (main.rs, cli/) is a client of the library, not in its graph
            }
            out.insert(
                std::iter::once("crate".to_string())
                    .chain(parts)
                    .collect::<Vec<_>>()
                    .join("::"),
                path,
            );
        }
    }
    out
}

/// The source of `path` up to its first `#[cfg(test)]` item, without comments, with every
/// non-ASCII character (only ever in strings) replaced so that byte offsets are char offsets.
fn code_without_tests(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    let code = text.split("\n#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
        .chars()
        .map(|c| if c.is_ascii() { c } else { ' ' })
        .collect()
}

/// Every `crate::…`/`super::…`/`self::…` path in `code`, with `{a, b::c}` groups expanded.
fn paths_in(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let starts = ["crate::", "super::", "self::"]
            .iter()
            .any(|p| rest.starts_with(p))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if !starts {
            i += 1;
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path = rest[..end].trim_end_matches(':').to_string();
        if rest[end..].starts_with('{') {
            let close = rest[end..].find('}').map_or(rest.len(), |c| end + c);
            for item in rest[end + 1..close].split(',') {
                let item = item.split_whitespace().next().unwrap_or("");
                if !item.is_empty() && item != "self" && item != "*" {
                    out.push(format!("{path}::{item}"));
                }
            }
            i += close.max(end);
        } else {
            out.push(path);
            i += end.max(1);
        }
    }
    out
}

/// Whether `code` names `name::…` as a path of its own (not `x::name::…`).
fn names_relative(code: &str, name: &str) -> bool {
    let needle = format!("{name}::");
    code.match_indices(&needle).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    })
}

/// The module file `path` (named inside `module`) points at: its longest existing prefix.
fn resolve(path: &str, module: &str, modules: &BTreeMap<String, PathBuf>) -> Option<String> {
    let absolute = if let Some(rest) = path.strip_prefix("super") {
        format!("{}{rest}", module.rsplit_once("::")?.0)
    } else if let Some(rest) = path.strip_prefix("self") {
        format!("{module}{rest}")
    } else {
        path.to_string()
    };
    let parts: Vec<&str> = absolute.split("::").collect();
    (2..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|p| modules.contains_key(p))
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = module_files(&src);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &modules {
        let code = code_without_tests(file);
        // Paths relative to the module itself (`use child::X`, `child::f()`), the 2018 way.
        for (child, _) in modules.range(format!("{module}::")..) {
            let Some(name) = child.strip_prefix(&format!("{module}::")) else {
                break;
            };
            if !name.contains("::") && names_relative(&code, name) {
                edges
                    .entry(module.clone())
                    .or_default()
                    .insert(child.clone());
            }
        }
        for path in paths_in(&code) {
            // A path into one's own ancestors (`crate::ops` from `crate::ops::echo`) is an
            // edge too: it is how a child reaches what its parent re-exports.
            if let Some(target) = resolve(&path, module, &modules) {
                if target != *module {
                    edges.entry(module.clone()).or_default().insert(target);
                }
            }
        }
    }
    edges
}

fn top(module: &str) -> &str {
    module.split("::").nth(1).unwrap_or("")
}

#[test]
fn top_level_modules_only_name_what_they_build_on() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut broken = Vec::new();
    for (from, targets) in graph() {
        if from == "crate" {
            continue; // lib.rs: the front door re-exports from every module
        }
        let Some(ok) = allowed.get(top(&from)) else {
            broken.push(format!("{from}: top-level module missing from ALLOWED"));
            continue;
        };
        for to in targets {
            if top(&to) != top(&from) && !ok.contains(&top(&to)) {
                broken.push(format!("{from} names {to}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "arrows that run the wrong way:\n{}",
        broken.join("\n")
    );
}

#[test]
fn no_cycle_between_files() {
    let g = graph();
    let mut state: BTreeMap<&str, u8> = BTreeMap::new(); // 1 = on the stack, 2 = done
    let mut cycles = Vec::new();
    fn visit<'g>(
        n: &'g str,
        g: &'g BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'g str, u8>,
        stack: &mut Vec<&'g str>,
        cycles: &mut Vec<String>,
    ) {
        state.insert(n, 1);
        stack.push(n);
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|s| *s == m).unwrap();
                    cycles.push(format!("{} -> {m}", stack[at..].join(" -> ")));
                }
                Some(_) => {}
                None => visit(m, g, state, stack, cycles),
            }
        }
        stack.pop();
        state.insert(n, 2);
    }
    for n in g.keys() {
        if !state.contains_key(n.as_str()) {
            visit(n, &g, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    assert!(
        cycles.is_empty(),
        "cycles between files:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_graph_sees_known_edges() {
    // The check above is only as good as the parser: pin edges that must be seen.
    let g = graph();
    let has = |from: &str, to: &str| g.get(from).is_some_and(|t| t.contains(to));
    assert!(has("crate::ops::registry", "crate::ops::echo"), "{g:#?}");
    assert!(
        has("crate::ring::producer", "crate::ring::geometry"),
        "{g:#?}"
    );
    assert!(has("crate::ring::memory", "crate::wait"), "{g:#?}");
    assert!(has("crate::worker", "crate::ops"), "{g:#?}");
}
