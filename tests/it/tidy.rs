//! House rules and architecture invariants, checked by reading the source tree as text.
//!
//! In the spirit of rust-analyzer's `xtask/src/tidy.rs`: each test names the file and line that
//! broke its rule. Comments and string literals are told apart from code by [`lex`], so prose
//! ("update the ledger") or a doc link never counts as code, and SQL is looked for only in strings.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::support::{assert_none, repo};

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for e in read {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_source_file_starts_with_a_module_doc_line() {
    let mut files = Vec::new();
    for d in ["src", "tests", "benches"] {
        rust_files(&repo().join(d), &mut files);
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    let missing: Vec<_> = files
        .iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            !text
                .lines()
                .next()
                .is_some_and(|l| l.starts_with("//! ") && l.len() > 8)
        })
        .map(|p| p.strip_prefix(repo()).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` first line: {missing:?}"
    );
}

#[test]
fn lib_layout_names_every_module() {
    let lib = std::fs::read_to_string(repo().join("src/lib.rs")).unwrap();
    for line in lib.lines().filter(|l| l.starts_with("pub mod ")) {
        let name = line.trim_start_matches("pub mod ").trim_end_matches(';');
        assert!(
            lib.contains(&format!("- [`{name}`]")),
            "src/lib.rs `# Layout` does not describe `{name}`"
        );
    }
}

/// One Rust file under `src/`, split by [`lex`].
struct Source {
    /// Relative to the repository, with `/` separators: `src/render/mod.rs`.
    path: String,
    /// The text with comments and the contents of string and char literals blanked out (newlines
    /// kept, so offsets still give the right line).
    code: String,
    /// Every string literal: the line it starts on and its contents (escapes left as written).
    strings: Vec<(usize, String)>,
}

impl Source {
    fn line_at(&self, offset: usize) -> usize {
        self.code[..offset].matches('\n').count() + 1
    }
}

/// The Rust files under `src/{sub}`, sorted, each split into code and string literals.
fn sources(sub: &str) -> Vec<Source> {
    let mut files = Vec::new();
    rust_files(&repo().join("src").join(sub), &mut files);
    files.sort();
    assert!(!files.is_empty(), "no Rust files under src/{sub}");
    files
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(repo()).unwrap();
            let path = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>();
            let (code, strings) = lex(&std::fs::read_to_string(p).unwrap());
            Source {
                path: path.join("/"),
                code,
                strings,
            }
        })
        .collect()
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits Rust source into code (comments and literal contents replaced, newlines kept) and its
/// string literals, with the line each starts on. Handles `//`, nested `/* */`, `"..."`, `b"..."`,
/// raw strings (`r#"..."#`), char literals (`'"'`, `'\''`) and lifetimes. Not a full lexer: enough
/// for a source tree that compiles.
fn lex(text: &str) -> (String, Vec<(usize, String)>) {
    let c: Vec<char> = text.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let (mut code, mut strings, mut line, mut i) = (String::new(), Vec::new(), 1, 0);
    // Keeps the newlines of skipped text so that lines in `code` stay where they were.
    let skip = |code: &mut String, line: &mut usize, from: usize, to: usize| {
        for &ch in &c[from..to.min(c.len())] {
            if ch == '\n' {
                code.push('\n');
                *line += 1;
            }
        }
    };
    while i < c.len() {
        let raw_start = at(i) == 'r'
            && (i == 0
                || !is_ident(c[i - 1])
                || (c[i - 1] == 'b' && (i < 2 || !is_ident(c[i - 2]))));
        let hashes = if raw_start {
            c[i + 1..].iter().take_while(|&&h| h == '#').count()
        } else {
            0
        };
        if at(i) == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if at(i) == '/' && at(i + 1) == '*' {
            let (start, mut depth) = (i, 0);
            while i < c.len() {
                if at(i) == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if at(i) == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            skip(&mut code, &mut line, start, i);
        } else if at(i) == '"' || (raw_start && at(i + 1 + hashes) == '"') {
            let raw = at(i) != '"';
            let open = if raw { i + 1 + hashes } else { i };
            let mut end = open + 1;
            while end < c.len() {
                if !raw && c[end] == '\\' {
                    end += 2;
                } else if c[end] == '"' && (1..=hashes).all(|h| at(end + h) == '#') {
                    break;
                } else {
                    end += 1;
                }
            }
            let end = end.min(c.len());
            strings.push((line, c[open + 1..end].iter().collect()));
            code.push('"');
            skip(&mut code, &mut line, open + 1, end);
            code.push('"');
            i = end + 1 + if raw { hashes } else { 0 };
        } else if at(i) == '\'' && (at(i + 1) == '\\' || at(i + 2) == '\'') {
            // A char literal; otherwise `'` starts a lifetime or label and is kept as code.
            let mut end = if at(i + 1) == '\\' { i + 3 } else { i + 2 };
            while end < c.len() && c[end] != '\'' {
                end += 1;
            }
            code.push_str("' '");
            i = end + 1;
        } else {
            code.push(c[i]);
            if c[i] == '\n' {
                line += 1;
            }
            i += 1;
        }
    }
    (code, strings)
}

/// `path:line: code line` for every place `needle` occurs in the code (not comments or strings).
fn find_in_code(src: &Source, needle: &str) -> Vec<String> {
    src.code
        .match_indices(needle)
        .map(|(at, _)| {
            let line = src.line_at(at);
            let text = src.code.lines().nth(line - 1).unwrap_or("").trim();
            format!("{}:{line}: `{needle}` in `{text}`", src.path)
        })
        .collect()
}

/// What makes a string literal SQL: an upper-case keyword as a whole word, then (if given) a second
/// word somewhere after it. `UPDATE` alone could be a label; `UPDATE ... SET` is a statement.
const SQL: &[(&str, &str)] = &[
    // With its FROM: IMAP has a SELECT command too (src/imap.rs selects the bounce folder).
    ("SELECT ", " FROM "),
    ("INSERT ", " INTO "),
    ("REPLACE INTO ", ""),
    ("UPDATE ", " SET "),
    ("DELETE FROM ", ""),
    ("CREATE ", " TABLE "),
    ("CREATE ", " INDEX "),
    ("ALTER TABLE ", ""),
    ("DROP TABLE ", ""),
    ("PRAGMA ", ""),
];

fn looks_like_sql(s: &str) -> Option<&'static str> {
    SQL.iter().find_map(|&(first, then)| {
        s.match_indices(first)
            .filter(|&(at, _)| !s[..at].ends_with(is_ident))
            .any(|(at, _)| s[at + first.len()..].contains(then))
            .then_some(first.trim())
    })
}

/// `path:line: ...` for every string literal of `src` that looks like SQL.
fn sql_strings(src: &Source) -> Vec<String> {
    src.strings
        .iter()
        .filter_map(|(line, s)| {
            let keyword = looks_like_sql(s)?;
            let first = s.lines().next().unwrap_or("").trim();
            Some(format!(
                "{}:{line}: SQL (`{keyword}`) in the string \"{first}\"",
                src.path
            ))
        })
        .collect()
}

#[test]
fn only_the_ledger_runs_sql() {
    let all = sources("");
    let (ledger, others): (Vec<_>, Vec<_>) =
        all.iter().partition(|s| s.path.starts_with("src/ledger/"));
    // The check itself must see the ledger's SQL, or it would pass by finding nothing anywhere.
    assert!(
        ledger.iter().map(|l| sql_strings(l).len()).sum::<usize>() > 10,
        "the SQL check finds no SQL under src/ledger/: has the database code moved?"
    );
    let found: Vec<_> = others
        .iter()
        .flat_map(|s| [find_in_code(s, "rusqlite"), sql_strings(s)].concat())
        .collect();
    assert_none(
        "only files under src/ledger/ may use rusqlite or hold SQL (ARCHITECTURE.md: only `ledger` runs SQL)",
        &found,
    );
}

/// What `render` may not name: file or network I/O, or a clock.
const IMPURE: &[&str] = &[
    "std::fs",
    "fs::",
    "File::",
    "tokio::fs",
    "std::net",
    "net::",
    "reqwest",
    "Utc::now",
    "Local::now",
    "SystemTime",
    "Instant::now",
    "crate::clock",
    "Clock",
];

#[test]
fn render_does_no_io_and_reads_no_clock() {
    let found: Vec<_> = sources("render")
        .iter()
        .flat_map(|src| {
            IMPURE
                .iter()
                .flat_map(move |needle| find_in_code(src, needle))
        })
        .collect();
    assert_none(
        "src/render/ must stay pure: no file or network I/O, no clock (ARCHITECTURE.md invariants)",
        &found,
    );
}

/// The top-level module a file belongs to (`src/render/html.rs` -> `render`); `None` for the crate
/// root files `src/lib.rs` and `src/main.rs`.
fn module_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("src/")?;
    let first = rest.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then_some(name)
}

/// The leading identifier of `s` (after whitespace), with its offset in `s`.
fn leading_ident(s: &str) -> (usize, &str) {
    let start = s.len() - s.trim_start().len();
    let len = s[start..]
        .find(|c: char| !is_ident(c))
        .unwrap_or(s.len() - start);
    (start, &s[start..start + len])
}

/// Every `crate::X` a file names (`use crate::X`, `crate::X::f()`, `use crate::{X, Y::Z}`), with
/// the offset of `X`. `super::` never leaves a top-level module, so it is not an edge.
fn crate_refs(code: &str) -> Vec<(usize, &str)> {
    let mut refs = Vec::new();
    for (at, m) in code.match_indices("crate::") {
        if code[..at].ends_with(is_ident) {
            continue;
        }
        let after = at + m.len();
        let rest = &code[after..];
        if rest.trim_start().starts_with('{') {
            // A group: split at the commas outside nested braces, take each item's first name.
            let open = after + rest.find('{').unwrap() + 1;
            let (mut depth, mut item) = (0, open);
            for (i, ch) in code[open..].char_indices() {
                let i = open + i;
                match ch {
                    '{' => depth += 1,
                    '}' if depth > 0 => depth -= 1,
                    ',' | '}' if depth == 0 => {
                        let (off, name) = leading_ident(&code[item..i]);
                        refs.push((item + off, name));
                        item = i + 1;
                        if ch == '}' {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let (off, name) = leading_ident(rest);
            refs.push((after + off, name));
        }
    }
    refs
}

/// The import graph between top-level modules: `from -> to -> ["src/file.rs:line", ...]`.
type Graph = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn module_graph(all: &[Source]) -> Graph {
    let modules: BTreeSet<&str> = all.iter().filter_map(|s| module_of(&s.path)).collect();
    let mut graph = Graph::new();
    for src in all {
        let Some(from) = module_of(&src.path) else {
            continue;
        };
        for (at, to) in crate_refs(&src.code) {
            if to != from && modules.contains(to) {
                let place = format!("{}:{}", src.path, src.line_at(at));
                let edges = graph.entry(from.to_string()).or_default();
                edges.entry(to.to_string()).or_default().push(place);
            }
        }
    }
    graph
}

/// For every module on a cycle, the shortest cycle through it, each cycle once: `[a, b, ..., a]`.
fn cycles(graph: &Graph) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    for a in graph.keys().map(String::as_str) {
        // Breadth first from `a` until the search comes back to it; `back` leads home.
        let mut back: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([a]);
        'search: while let Some(n) = queue.pop_front() {
            for m in graph.get(n).into_iter().flat_map(|e| e.keys()) {
                if !back.contains_key(m.as_str()) {
                    back.insert(m, n);
                    if m == a {
                        break 'search;
                    }
                    queue.push_back(m);
                }
            }
        }
        let Some(mut n) = back.get(a).copied() else {
            continue;
        };
        let mut cycle = vec![a];
        while n != a {
            cycle.push(n);
            n = back[n];
        }
        cycle.reverse(); // now in import order; start at the smallest name so each is found once
        let min = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap();
        cycle.rotate_left(min);
        cycle.push(cycle[0]);
        found.insert(cycle.iter().map(|s| s.to_string()).collect());
    }
    found
}

#[test]
fn modules_import_each_other_without_cycles() {
    let graph = module_graph(&sources(""));
    // The graph must hold the edges we know of, or an empty graph would pass.
    assert!(
        graph.get("cli").is_some_and(|e| e.contains_key("daemon")),
        "the module graph misses `cli -> daemon` (src/cli.rs calls crate::daemon::run)"
    );
    let found: Vec<_> = cycles(&graph)
        .iter()
        .map(|cycle| {
            let edges: Vec<_> = cycle
                .windows(2)
                .map(|w| format!("{} -> {}: {}", w[0], w[1], graph[&w[0]][&w[1]].join(", ")))
                .collect();
            format!("{}\n    {}", cycle.join(" -> "), edges.join("\n    "))
        })
        .collect();
    assert_none(
        "top-level modules of src/ import each other in a cycle (break it so data flows one way)",
        &found,
    );
}

/// The module path of a file module (`src/http/admin.rs` -> `["http", "admin"]`, `src/feed/mod.rs`
/// -> `["feed"]`, `src/lib.rs` -> `[]`); `None` for `src/main.rs`, a crate of its own.
fn file_module(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix("src/")?.strip_suffix(".rs")?;
    if rest == "main" {
        return None;
    }
    let mut segs: Vec<String> = rest.split('/').map(str::to_string).collect();
    if matches!(segs.last().map(String::as_str), Some("mod" | "lib")) {
        segs.pop();
    }
    Some(segs)
}

/// Every path that starts at `at` in `code` (`a::b::c`, `a::{b, c::d}`, `a::{self, b}`), each
/// as its segments with the offset of its first one. Stops at the first token that is not part
/// of a path; `self` inside a group names the group's prefix.
fn paths_at(code: &str, at: usize, prefix: &[String], out: &mut Vec<(usize, Vec<String>)>) {
    let mut segs = prefix.to_vec();
    let mut pos = at;
    loop {
        let (off, name) = leading_ident(&code[pos..]);
        if name.is_empty() {
            break;
        }
        if name != "self" || segs.len() == prefix.len() && prefix.is_empty() {
            segs.push(name.to_string());
        }
        pos += off + name.len();
        let rest = &code[pos..];
        let Some(after) = rest.trim_start().strip_prefix("::") else {
            break;
        };
        pos = code.len() - after.len();
        if after.trim_start().starts_with('{') {
            // A group: split at the commas outside nested braces, each item a path of its own.
            let open = pos + after.find('{').unwrap() + 1;
            let (mut depth, mut item) = (0, open);
            for (i, ch) in code[open..].char_indices() {
                let i = open + i;
                match ch {
                    '{' => depth += 1,
                    '}' if depth > 0 => depth -= 1,
                    ',' | '}' if depth == 0 => {
                        paths_at(&code[..i], item, &segs, out);
                        item = i + 1;
                        if ch == '}' {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            return;
        }
    }
    if segs.len() > prefix.len() || !prefix.is_empty() {
        out.push((at, segs));
    }
}

/// The names of the inline modules (`mod tests { ... }`) around each offset of `code`: for the
/// offset `at`, `inline_mods(code)` gives the stack of names open there.
fn inline_mods_at(code: &str, at: usize) -> Vec<String> {
    // One entry per open brace: the module name if that brace opens an inline `mod`.
    let mut stack: Vec<Option<String>> = Vec::new();
    for (i, ch) in code[..at].char_indices() {
        match ch {
            '{' => {
                let before = code[..i].trim_end();
                let name_start = before.rfind(|c: char| !is_ident(c)).map_or(0, |p| p + 1);
                let name = &before[name_start..];
                let kw = before[..name_start].trim_end();
                let is_mod = kw.ends_with("mod")
                    && !kw[..kw.len() - 3].ends_with(is_ident)
                    && !name.is_empty();
                stack.push(is_mod.then(|| name.to_string()));
            }
            '}' => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack.into_iter().flatten().collect()
}

/// The import graph between the files of `src/`: `from -> to -> ["src/file.rs:line", ...]`. An
/// edge is a path that names an item of another file: `crate::a::b::f` goes to the deepest file
/// module on it (`src/a/b.rs` or `src/a/b/mod.rs`, else `src/a.rs`, else `src/lib.rs`);
/// `super::x` and `self::x` are resolved from the file's own module (and any inline `mod` it is
/// in); in a parent, `child::f` goes to the child's file. Declaring `mod child;` is not an import.
fn file_graph(all: &[Source]) -> Graph {
    let files: BTreeMap<Vec<String>, &str> = all
        .iter()
        .filter_map(|s| Some((file_module(&s.path)?, s.path.as_str())))
        .collect();
    let resolve = |segs: &[String]| -> &str {
        (0..=segs.len())
            .rev()
            .find_map(|k| files.get(&segs[..k]).copied())
            .unwrap_or("src/lib.rs")
    };
    let mut graph = Graph::new();
    for src in all {
        let Some(own) = file_module(&src.path) else {
            continue;
        };
        let code = &src.code;
        // The child modules this file declares (`mod admin;`), named by bare paths `admin::f`.
        let children: BTreeSet<String> = files
            .keys()
            .filter(|m| m.len() == own.len() + 1 && m.starts_with(&own))
            .map(|m| m.last().unwrap().clone())
            .collect();
        let mut found = Vec::new();
        for (at, _) in code.match_indices(|c: char| c.is_alphabetic() || c == '_') {
            if at > 0 && code[..at].ends_with(|c: char| is_ident(c) || c == ':' || c == '\'') {
                continue;
            }
            let (_, first) = leading_ident(&code[at..]);
            let next = &code[at + first.len()..];
            if !next.trim_start().starts_with("::") {
                continue;
            }
            let is_child = children.contains(first) && !code[..at].trim_end().ends_with("mod");
            if !(matches!(first, "crate" | "super" | "self") || is_child) {
                continue;
            }
            let mut paths = Vec::new();
            paths_at(code, at, &[], &mut paths);
            for (_, segs) in paths {
                let mut abs: Vec<String> = Vec::new();
                let mut rest = &segs[..];
                match first {
                    "crate" => rest = &rest[1..],
                    "super" | "self" => {
                        abs = own.clone();
                        abs.extend(inline_mods_at(code, at));
                        while rest.first().is_some_and(|s| s == "super" || s == "self") {
                            if rest[0] == "super" {
                                abs.pop();
                            }
                            rest = &rest[1..];
                        }
                    }
                    _ => abs = own.clone(),
                }
                abs.extend(rest.iter().cloned());
                found.push((at, resolve(&abs).to_string()));
            }
        }
        for (at, to) in found {
            if to != src.path {
                let place = format!("{}:{}", src.path, src.line_at(at));
                let edges = graph.entry(src.path.clone()).or_default();
                edges.entry(to).or_default().push(place);
            }
        }
    }
    graph
}

#[test]
fn files_import_each_other_without_cycles() {
    let graph = file_graph(&sources(""));
    // The graph must hold the edges we know of, or an empty graph would pass.
    for (from, to) in [
        ("src/cli/mod.rs", "src/daemon.rs"),
        ("src/http/admin.rs", "src/token.rs"),
    ] {
        assert!(
            graph.get(from).is_some_and(|e| e.contains_key(to)),
            "the file graph misses `{from} -> {to}`"
        );
    }
    let found: Vec<_> = cycles(&graph)
        .iter()
        .map(|cycle| {
            let edges: Vec<_> = cycle
                .windows(2)
                .map(|w| format!("{} -> {}: {}", w[0], w[1], graph[&w[0]][&w[1]].join(", ")))
                .collect();
            format!("{}\n    {}", cycle.join(" -> "), edges.join("\n    "))
        })
        .collect();
    assert_none(
        "files of src/ import each other in a cycle (move what both need into a third file)",
        &found,
    );
}

#[test]
fn the_file_graph_resolves_paths_to_files_and_finds_a_sibling_cycle() {
    let source = |path: &str, text: &str| {
        let (code, strings) = lex(text);
        Source {
            path: path.to_string(),
            code,
            strings,
        }
    };
    let all = [
        source("src/lib.rs", "pub mod web;\npub mod store;\n"),
        source("src/store.rs", "pub fn get() {}\n"),
        source(
            "src/web/mod.rs",
            "mod pages;\nmod look;\npub fn router() { pages::routes(); }\n",
        ),
        source(
            "src/web/pages.rs",
            "use super::look::{heading, para};\nuse crate::store;\npub fn routes() {}\n\
             #[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
        ),
        source(
            "src/web/look.rs",
            "pub fn heading() { crate::web::pages::routes(); self::para(); }\npub fn para() {}\n",
        ),
    ];
    let graph = file_graph(&all);
    let edges = |from: &str| -> Vec<&str> {
        graph
            .get(from)
            .map_or(Vec::new(), |e| e.keys().map(String::as_str).collect())
    };
    assert_eq!(edges("src/web/mod.rs"), ["src/web/pages.rs"]);
    assert_eq!(
        edges("src/web/pages.rs"),
        ["src/store.rs", "src/web/look.rs"]
    );
    assert_eq!(edges("src/web/look.rs"), ["src/web/pages.rs"]);
    let found = cycles(&graph);
    let cycle = ["src/web/look.rs", "src/web/pages.rs", "src/web/look.rs"].map(String::from);
    assert_eq!(found.into_iter().collect::<Vec<_>>(), [cycle.to_vec()]);
}

#[test]
fn code_map_names_every_module() {
    let doc = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let map: Vec<&str> = doc
        .lines()
        .skip_while(|l| l.trim() != "## Code map")
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter_map(|l| l.strip_prefix("- `")?.split('`').next())
        .collect();
    assert!(
        map.len() > 10,
        "ARCHITECTURE.md has no `## Code map` list of `- `name`: ...` bullets"
    );
    let lib = std::fs::read_to_string(repo().join("src/lib.rs")).unwrap();
    let missing: Vec<_> = lib
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let words: Vec<_> = l.trim().strip_suffix(';')?.split_whitespace().collect();
            let name = *words.last()?;
            (words.len() >= 2 && words[words.len() - 2] == "mod" && !map.contains(&name)).then(
                || {
                    format!(
                        "src/lib.rs:{}: module `{name}` has no \"- `{name}`: ...\" bullet",
                        i + 1
                    )
                },
            )
        })
        .collect();
    assert_none(
        "ARCHITECTURE.md `## Code map` must describe every module of src/lib.rs",
        &missing,
    );
}

#[test]
fn crate_roots_forbid_unsafe_code() {
    let missing: Vec<_> = ["src/lib.rs", "src/main.rs"]
        .into_iter()
        .filter(|f| {
            let text = std::fs::read_to_string(repo().join(f)).unwrap();
            !text.lines().any(|l| l.trim() == "#![forbid(unsafe_code)]")
        })
        .map(|f| format!("{f}: no `#![forbid(unsafe_code)]` line"))
        .collect();
    assert_none("every crate root must forbid unsafe code", &missing);
}

#[test]
fn tidy_lexer_tells_code_from_comments_and_strings() {
    let text = "let q = '\"'; // std::fs in a comment\n/* /* nested */ crate::clock */ let a = '\\'';\n\
                let s = r#\"SELECT \"x\" FROM t\"#; fn f<'a>(x: &'a str) { b\"PRAGMA \\\" x\"; crate::app::f() }\n";
    let (code, strings) = lex(text);
    assert_eq!(code.lines().count(), 3, "{code}");
    assert!(
        !code.contains("std::fs") && !code.contains("clock") && !code.contains("SELECT"),
        "{code}"
    );
    assert!(
        code.contains("fn f<'a>(x: &'a str)") && code.contains("crate::app::f()"),
        "{code}"
    );
    let strings: Vec<_> = strings.iter().map(|(l, s)| (*l, s.as_str())).collect();
    assert_eq!(strings, [(3, "SELECT \"x\" FROM t"), (3, "PRAGMA \\\" x")]);
    assert_eq!(looks_like_sql(strings[0].1), Some("SELECT"));
    assert_eq!(looks_like_sql("Update the ledger, then SET it"), None);
    assert_eq!(
        crate_refs("use crate::{app::{self, X}, render};\n"),
        [(12, "app"), (28, "render")]
    );
}

/// The route patterns a source text gives the router (`.route("/path", ...)`).
fn routes_in(text: &str) -> Vec<String> {
    text.match_indices(".route(")
        .filter_map(|(at, m)| {
            let rest = text[at + m.len()..].trim_start().strip_prefix('"')?;
            Some(rest[..rest.find('"')?].to_string())
        })
        .collect()
}

/// The words of the `words!(NAME { Variant => "word", ... })` table in `text`.
fn words_of(text: &str, name: &str) -> Vec<String> {
    let start = text
        .find(&format!("words!({name} {{"))
        .unwrap_or_else(|| panic!("no words!({name}) table"));
    let table = &text[start..start + text[start..].find("})").unwrap()];
    table
        .split("=> \"")
        .skip(1)
        .map(|w| w[..w.find('"').unwrap()].to_string())
        .collect()
}

/// The variants of `pub enum NAME { ... }` in `text`, in lower case.
fn variants_of(text: &str, name: &str) -> Vec<String> {
    let start = text
        .find(&format!("pub enum {name} {{"))
        .unwrap_or_else(|| panic!("no enum {name}"));
    let body = &text[start..];
    let mut depth = 0;
    let mut out = Vec::new();
    for line in body.lines() {
        let t = line.trim();
        if depth == 1 && t.starts_with(|c: char| c.is_ascii_uppercase()) {
            out.push(
                t.split(|c: char| !c.is_alphanumeric())
                    .next()
                    .unwrap()
                    .to_lowercase(),
            );
        }
        depth += t.matches('{').count();
        depth -= t.matches('}').count();
        if depth == 0 && !out.is_empty() {
            break;
        }
    }
    out
}

/// What a list of faces leaves out of `routes` and `mails`, and what it names that is gone.
fn face_gaps(routes: &[String], mails: &[String]) -> Vec<String> {
    use crate::faces::{Shows, FACES, NOT_FACES, SPANISH_FACES};
    let mut face_routes = BTreeSet::new();
    let mut face_mails = BTreeSet::new();
    for f in FACES.iter().chain(SPANISH_FACES) {
        match f.shows {
            Shows::Mail(kind) => {
                face_mails.insert(kind.to_string());
            }
            Shows::Page(rs) => face_routes.extend(rs.iter().map(|r| r.to_string())),
        }
    }
    let excused: BTreeSet<String> = NOT_FACES.iter().map(|(r, _)| r.to_string()).collect();
    let mut gaps = Vec::new();
    for r in routes {
        if !face_routes.contains(r) && !excused.contains(r) {
            gaps.push(format!("route {r} is neither in FACES nor in NOT_FACES"));
        }
    }
    for m in mails {
        if !face_mails.contains(m) {
            gaps.push(format!("mail kind {m} is not in FACES"));
        }
    }
    for r in face_routes.iter().chain(&excused) {
        if !routes.contains(r) {
            gaps.push(format!("{r} is listed but no route has it"));
        }
    }
    for m in &face_mails {
        if !mails.contains(m) {
            gaps.push(format!("{m} is listed but brief sends no such mail"));
        }
    }
    gaps
}

/// Every mail kind brief sends and every route it serves is a face the harness looks at
/// (`tests/it/faces.rs`), or is listed there as no face with its reason.
#[test]
fn every_mail_kind_and_page_is_a_face() {
    let mut routes = Vec::new();
    for s in sources("http") {
        let text = std::fs::read_to_string(repo().join(&s.path)).unwrap();
        routes.extend(routes_in(&text));
    }
    routes.sort();
    routes.dedup();
    assert!(routes.contains(&"/subscribe".to_string()), "{routes:?}");
    let read = |p: &str| std::fs::read_to_string(repo().join(p)).unwrap();
    let mut mails = words_of(&read("src/ledger/notices.rs"), "NoticeKind");
    // A message of kind `Notice` is one of the notice kinds above.
    mails.extend(
        variants_of(&read("src/message.rs"), "Kind")
            .into_iter()
            .filter(|k| k != "notice"),
    );
    assert!(mails.len() >= 9, "{mails:?}");
    assert_none("every mail and page is a face", &face_gaps(&routes, &mails));

    // The check itself sees a new route and a new kind of mail.
    let mut more = routes.clone();
    more.extend(routes_in(
        "r.route(\n    \"/admin/not-a-page-yet/\", get(list))",
    ));
    let mut kinds = mails.clone();
    kinds.extend(words_of(
        "words!(NoticeKind { Welcome => \"welcome\", })",
        "NoticeKind",
    ));
    assert_eq!(
        face_gaps(&more, &kinds),
        [
            "route /admin/not-a-page-yet/ is neither in FACES nor in NOT_FACES",
            "mail kind welcome is not in FACES"
        ]
    );
}
