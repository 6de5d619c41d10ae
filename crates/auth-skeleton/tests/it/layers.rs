//! The library's dependency rule, checked on its source: a module imports only from its own
//! layer or the layers below, the top-level modules import each other without cycles, and the
//! two bottom layers use neither actix nor clap. `docs/architecture.md` draws the same table.
//!
//! Test modules (`#[cfg(test)] mod ...` at the end of a file) are not production code and may use
//! any layer to build their fixtures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top. A top-level module missing here fails the test: a new module takes a place.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundation",
        &[
            "changes",
            "clock",
            "db",
            "metrics",
            "private_files",
            "rate_limit",
            "secret_key",
            "store",
            "token",
            "web_origin",
        ],
    ),
    ("domain", &["accounts", "mail"]),
    ("config", &["config"]),
    ("http", &["http"]),
    ("service", &["service"]),
    ("testing", &["testing"]),
];

/// Layers whose modules must not depend on the web framework or the command-line parser.
const FRAMEWORK_FREE: &[&str] = &["foundation", "domain"];

/// `#[macro_export]` macros live at the crate root; this is the module that defines each.
const MACROS: &[(&str, &str)] = &[
    ("execute_db", "db"),
    ("execute_tx", "db"),
    ("read_db", "db"),
    ("with_tx", "db"),
    ("write_db", "db"),
];

/// Items `lib.rs` itself defines, which import nothing, so any layer may name them.
const ROOT_ITEMS: &[&str] = &["AUTH_SKELETON_VERSION"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The production part of a file: up to its unit-test module, without comment lines (doc links
/// to other layers are fine).
fn production_code(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// The top-level modules a piece of code names through `crate::` or `$crate::`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = &rest[..at];
        let after = &rest[at + "crate::".len()..];
        rest = after;
        // `auth_skeleton_crate::` or similar identifiers are not the keyword.
        if before
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            continue;
        }
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() || ROOT_ITEMS.contains(&name.as_str()) {
            continue;
        }
        let module = MACROS
            .iter()
            .find(|(m, _)| *m == name)
            .map_or(name.clone(), |(_, home)| (*home).to_owned());
        found.insert(module);
    }
    found
}

struct Graph {
    /// Top-level module -> the top-level modules its production code names.
    edges: BTreeMap<String, BTreeSet<String>>,
    /// Top-level module -> files that name actix or clap.
    frameworks: BTreeMap<String, Vec<String>>,
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut frameworks: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_str().unwrap().trim_end_matches(".rs").to_owned();
        if module == "lib" {
            continue;
        }
        let code = production_code(&std::fs::read_to_string(&file).unwrap());
        if code.contains("actix") || code.contains("clap") {
            frameworks
                .entry(module.clone())
                .or_default()
                .push(relative.display().to_string());
        }
        let deps = edges.entry(module.clone()).or_default();
        deps.extend(crate_paths(&code).into_iter().filter(|d| *d != module));
    }
    Graph { edges, frameworks }
}

#[test]
fn every_module_has_a_layer_and_imports_nothing_above_it() {
    let graph = graph();
    let mut violations = Vec::new();
    for (module, deps) in &graph.edges {
        let Some(own) = layer_of(module) else {
            violations.push(format!("{module} has no layer in LAYERS"));
            continue;
        };
        for dep in deps {
            match layer_of(dep) {
                None => violations.push(format!("{module} names crate::{dep}, which has no layer")),
                Some(theirs) if theirs > own => violations.push(format!(
                    "{module} ({}) imports {dep} ({})",
                    LAYERS[own].0, LAYERS[theirs].0
                )),
                Some(_) => {}
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_module_graph_has_no_cycles() {
    let graph = graph();
    // Depth-first search with colours; a grey node reached again closes a cycle.
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, bool>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(true) => return None,
            Some(false) => {
                let start = path.iter().position(|n| *n == node).unwrap();
                let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        state.insert(node, false);
        path.push(node);
        for dep in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(dep, graph, state, path) {
                return Some(cycle);
            }
        }
        path.pop();
        state.insert(node, true);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.edges.keys() {
        let cycle = visit(node, &graph.edges, &mut state, &mut Vec::new());
        assert!(
            cycle.is_none(),
            "import cycle: {}",
            cycle.unwrap().join(" -> ")
        );
    }
}

#[test]
fn the_bottom_layers_use_no_web_framework_and_no_cli_parser() {
    let graph = graph();
    let offenders: Vec<&String> = graph
        .frameworks
        .iter()
        .filter(|(module, _)| {
            layer_of(module).is_some_and(|l| FRAMEWORK_FREE.contains(&LAYERS[l].0))
        })
        .flat_map(|(_, files)| files)
        .collect();
    assert!(offenders.is_empty(), "actix or clap in {offenders:?}");
}

#[test]
fn the_checker_sees_an_upward_import_and_ignores_comments_and_tests() {
    let code = production_code(
        "use crate::http::Problem;\n// crate::service in a comment\nfn f() {}\n\
         #[cfg(test)]\nmod tests {\n    use crate::testing::TestServer;\n}\n",
    );
    assert_eq!(
        crate_paths(&code),
        BTreeSet::from(["http".to_owned()]),
        "{code}"
    );
    assert_eq!(
        crate_paths("$crate::read_db!(x); my_crate::nope"),
        BTreeSet::from(["db".to_owned()])
    );
}

/// Prints the module graph (`cargo test -p auth-skeleton --test it layers::print -- --ignored
/// --nocapture`), as drawn in `docs/architecture.md`.
#[test]
#[ignore = "prints the graph for the docs"]
fn print_module_graph() {
    let graph = graph();
    for (name, modules) in LAYERS.iter().rev() {
        println!("{name}:");
        for module in *modules {
            let deps = graph.edges.get(*module).cloned().unwrap_or_default();
            let deps: Vec<_> = deps.into_iter().collect();
            println!("  {module} -> {}", deps.join(", "));
        }
    }
}
