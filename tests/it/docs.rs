//! The documentation kept true by reading it: every config key is documented, the README is a
//! front door (short, the two set-up commands first), and every relative link resolves.

use std::collections::BTreeMap;

use crate::support::repo;

/// The serde structs of `src/config/sections.rs`: struct name -> its fields that are keys of the
/// file (`#[serde(skip)]` fields left out), each with its type.
fn config_structs(source: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut structs = BTreeMap::new();
    let mut current: Option<(String, Vec<(String, String)>)> = None;
    let mut skip_next = false;
    let mut serde_struct = false;
    for line in source.lines() {
        let t = line.trim();
        if t.starts_with("#[serde(deny_unknown_fields") {
            serde_struct = true;
            continue;
        }
        if let Some(rest) = t.strip_prefix("pub struct ") {
            if serde_struct && current.is_none() {
                let name = rest.split([' ', '{']).next().unwrap().to_string();
                current = Some((name, Vec::new()));
            }
            serde_struct = false;
            continue;
        }
        let Some((_, fields)) = current.as_mut() else {
            continue;
        };
        if t.starts_with("#[serde(skip") {
            skip_next = true;
        } else if let Some(field) = t.strip_prefix("pub ") {
            let (name, ty) = field.split_once(':').expect("a field");
            if !skip_next {
                let ty = ty.trim().trim_end_matches(',').to_string();
                fields.push((name.trim().to_string(), ty));
            }
            skip_next = false;
        } else if t == "}" {
            let (name, fields) = current.take().unwrap();
            structs.insert(name, fields);
        }
    }
    structs
}

/// Every key of the file as (section, key), e.g. ("bounces.imap", "interval"); a table of
/// tables (`[[content.feeds]]`) is named with its brackets doubled.
fn config_keys() -> Vec<(String, String)> {
    let source = std::fs::read_to_string(repo().join("src/config/sections.rs")).unwrap();
    let structs = config_structs(&source);
    let inner = |ty: &str| -> (String, bool) {
        let list = ty.starts_with("Vec<");
        let t = ty
            .trim_start_matches("Option<")
            .trim_start_matches("Vec<")
            .trim_end_matches('>');
        (t.to_string(), list)
    };
    let mut keys = Vec::new();
    let mut todo: Vec<(String, String)> = structs["Config"]
        .iter()
        .map(|(field, ty)| (field.clone(), inner(ty).0))
        .collect();
    assert!(todo.len() >= 8, "found only {} config sections", todo.len());
    while let Some((section, ty)) = todo.pop() {
        let fields = structs.get(&ty).unwrap_or_else(|| {
            panic!("src/config/sections.rs: no serde struct {ty} for [{section}]")
        });
        for (field, fty) in fields {
            let (child, list) = inner(fty);
            if structs.contains_key(&child) {
                let name = if list {
                    format!("[{section}.{field}]")
                } else {
                    format!("{section}.{field}")
                };
                todo.push((name, child));
            } else {
                keys.push((section.clone(), field.clone()));
            }
        }
    }
    keys
}

#[test]
fn every_config_key_is_in_the_configuration_page() {
    let page = std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap();
    // The first cell of each table row, e.g. "`[smtp] transport, host, port`".
    let cells: Vec<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(" | ").next())
        .collect();
    let keys = config_keys();
    assert!(keys.len() > 40, "found only {} keys", keys.len());
    let missing: Vec<String> = keys
        .iter()
        .filter(|(section, key)| {
            let head = format!("[{section}]");
            !cells.iter().any(|cell| {
                cell.find(&head).is_some_and(|at| {
                    cell[at + head.len()..]
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .any(|word| word == key)
                })
            })
        })
        .map(|(section, key)| format!("[{section}] {key}"))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md has no table row for: {}",
        missing.join(", ")
    );
}

#[test]
fn the_config_key_reader_sees_nested_tables_and_skips_what_is_not_a_key() {
    let source = "#[serde(deny_unknown_fields)]\npub struct Config {\n    pub a: A,\n    \
                  #[serde(skip)]\n    pub source: PathBuf,\n}\n#[serde(deny_unknown_fields)]\n\
                  pub struct A {\n    pub x: u32,\n    pub b: Option<B>,\n    pub c: Vec<B>,\n}\n\
                  #[serde(deny_unknown_fields)]\npub struct B {\n    pub y: String,\n}\n";
    let structs = config_structs(source);
    assert_eq!(structs["Config"], [("a".to_string(), "A".to_string())]);
    assert_eq!(structs["A"].len(), 3);
    assert_eq!(structs["B"], [("y".to_string(), "String".to_string())]);
}

#[test]
fn the_readme_is_a_front_door_with_the_two_commands_first() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    assert!(
        lines.len() < 250,
        "README.md has {} lines: the manual belongs in docs/",
        lines.len()
    );
    let fence = lines.iter().position(|l| l.starts_with("```")).unwrap();
    assert!(fence < 5, "the set-up commands must come first");
    let commands: Vec<&str> = lines[fence + 1..]
        .iter()
        .take_while(|l| !l.starts_with("```"))
        .copied()
        .collect();
    assert_eq!(
        commands.len(),
        2,
        "exactly two set-up commands: {commands:?}"
    );
    assert!(commands[1].starts_with("./scripts/test.sh"), "{commands:?}");
    let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    assert!(
        ci.contains("scripts/test.sh"),
        ".ci/run must run the README's test command"
    );
}

/// The anchors GitHub gives a page's headings: lowercased, punctuation dropped but for `-` and
/// `_`, spaces made `-`.
fn anchors(page: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in page.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        let Some(text) = line.strip_prefix('#').filter(|_| !fenced) else {
            continue;
        };
        let text = text.trim_start_matches('#').trim();
        let anchor: String = text
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        out.push(anchor);
    }
    out
}

#[test]
fn github_anchors_are_made_as_github_makes_them() {
    let page =
        "# Title\n## The daemon: `brief run`\n```\n# not a heading\n```\n### Staff sign-in\n";
    assert_eq!(
        anchors(page),
        ["title", "the-daemon-brief-run", "staff-sign-in"]
    );
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let mut pages = vec![repo().join("README.md"), repo().join("ARCHITECTURE.md")];
    for e in std::fs::read_dir(repo().join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            pages.push(p);
        }
    }
    assert!(pages.len() >= 8, "docs/ holds too few pages: {pages:?}");
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        let dir = page.parent().unwrap();
        for (n, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find("](") {
                rest = &rest[at + 2..];
                let Some(end) = rest.find(')') else { break };
                let target = &rest[..end];
                let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
                let external = target.contains("://") || target.starts_with("mailto:");
                if external {
                    continue;
                }
                let linked = if file.is_empty() {
                    page.clone()
                } else {
                    dir.join(file)
                };
                let resolves = linked.exists()
                    && (anchor.is_empty()
                        || anchors(&std::fs::read_to_string(&linked).unwrap_or_default())
                            .iter()
                            .any(|a| a == anchor));
                if !resolves {
                    let shown = page.strip_prefix(repo()).unwrap().display().to_string();
                    broken.push(format!("{shown}:{}: {target}", n + 1));
                }
            }
        }
    }
    assert!(broken.is_empty(), "links to nothing: {broken:?}");
}
