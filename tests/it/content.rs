//! Bad content: `brief check` reports each problem as `path:line: message`, exits 1, and the
//! issue is never sent.

use crate::support::World;

const GOOD: &str = "+++\ntitle = \"T\"\ndate = 2021-07-01\nlink = \"https://example.org/\"\n+++\n\n## Context\n\nText.\n";

/// Writes `content/2021-07/99-bad.md`, runs `brief check --issue 2021-07` and returns its stdout.
fn check_with(file: &str, text: &[u8]) -> (World, String) {
    let w = World::new();
    w.write_bytes(&format!("content/2021-07/{file}"), text);
    let out = w
        .brief()
        .args(["check", "--issue", "2021-07"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "check must fail: {out:?}");
    (w, String::from_utf8(out.stdout).unwrap())
}

fn expect_line(stdout: &str, suffix_path: &str, line: usize, message: &str) {
    let want = format!("{suffix_path}:{line}: {message}");
    assert!(
        stdout
            .lines()
            .any(|l| l.ends_with(&want) || l.contains(&want)),
        "expected a line containing `{want}` in:\n{stdout}"
    );
}

#[test]
fn unclosed_front_matter_names_file_and_line_and_send_sends_nothing() {
    let (w, out) = check_with(
        "99-bad.md",
        b"\n+++\ntitle = \"T\"\ndate = 2021-07-01\n\nNo closing line.\n",
    );
    expect_line(
        &out,
        "content/2021-07/99-bad.md",
        2,
        "the front matter opened here with `+++` is never closed",
    );
    let send = w
        .brief()
        .args(["send", "--issue", "2021-07", "--yes"])
        .output()
        .unwrap();
    assert_eq!(send.status.code(), Some(1));
    let err = String::from_utf8(send.stderr).unwrap();
    assert!(err.contains("99-bad.md:2:"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
    assert!(w.outbox("2021-07").is_empty());
    assert!(w
        .ledger()
        .campaign("2021-07".parse().unwrap())
        .unwrap()
        .is_none());
}

#[test]
fn missing_front_matter_suggests_the_plus_lines() {
    let (_w, out) = check_with("99-bad.md", b"title = \"T\"\n");
    expect_line(
        &out,
        "99-bad.md",
        1,
        "no front matter: did you forget the `+++` lines?",
    );
}

#[test]
fn invalid_toml_points_at_its_line() {
    let (_w, out) = check_with(
        "99-bad.md",
        b"+++\ntitle = \"T\"\ndate = 2021-07-01\nlink = \"https://example.org/\nnumber = 9\n+++\n\n## A\n\nB\n",
    );
    assert!(out.contains("99-bad.md:4:"), "{out}");
}

#[test]
fn missing_field_is_named() {
    let (_w, out) = check_with(
        "99-bad.md",
        b"+++\ntitle = \"T\"\nlink = \"https://example.org/\"\n+++\n\n## A\n\nB\n",
    );
    expect_line(
        &out,
        "99-bad.md",
        1,
        "missing field `date` in the front matter",
    );
}

#[test]
fn bad_date_is_reported_at_its_line() {
    let (_w, out) = check_with(
        "99-bad.md",
        b"+++\ntitle = \"T\"\ndate = \"07/05/21\"\nlink = \"https://example.org/\"\n+++\n\n## A\n\nB\n",
    );
    expect_line(
        &out,
        "99-bad.md",
        3,
        "`date`: invalid date `07/05/21`: write it as YYYY-MM-DD",
    );
}

#[test]
fn bad_url_is_reported_at_its_line() {
    let (_w, out) = check_with(
        "99-bad.md",
        b"+++\ntitle = \"T\"\ndate = 2021-07-01\nlink = \"javascript:alert(1)\"\n+++\n\n## A\n\nB\n",
    );
    expect_line(
        &out,
        "99-bad.md",
        4,
        "`link` must be an http or https URL, not javascript:",
    );
    let (_w, out) = check_with(
        "99-bad.md",
        b"+++\ntitle = \"T\"\ndate = 2021-07-01\nlink = \"not a url\"\n+++\n\n## A\n\nB\n",
    );
    expect_line(&out, "99-bad.md", 4, "`link`: invalid URL `not a url`");
}

#[test]
fn duplicate_number_names_both_files() {
    let (_w, out) = check_with(
        "99-dup.md",
        b"+++\ntitle = \"T\"\ndate = 2021-07-01\nlink = \"https://example.org/\"\nnumber = 2\n+++\n\n## A\n\nB\n",
    );
    assert!(out.contains("99-dup.md:5: duplicate number 2"), "{out}");
    assert!(
        out.contains("02-defense-working-group.md has it too"),
        "{out}"
    );
}

#[test]
fn non_utf8_is_reported_with_its_line() {
    let mut bytes = GOOD.as_bytes().to_vec();
    bytes.extend_from_slice(b"\nCaf\xe9 au lait\n");
    let (_w, out) = check_with("99-latin1.md", &bytes);
    expect_line(&out, "99-latin1.md", 11, "not valid UTF-8");
}

#[test]
fn empty_issue_is_a_problem() {
    let w = World::new();
    w.write("content/2021-09/issue.toml", "date = 2021-09-23\n");
    let out = w
        .brief()
        .args(["check", "--issue", "2021-09"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.contains("content/2021-09: the issue has no entries"),
        "{out}"
    );
}

#[test]
fn unknown_key_is_reported_at_its_line() {
    let (_w, out) = check_with(
        "99-bad.md",
        b"+++\ntitle = \"T\"\ndate = 2021-07-01\nlink = \"https://example.org/\"\nauthor = \"me\"\n+++\n\n## A\n\nB\n",
    );
    expect_line(&out, "99-bad.md", 5, "unknown field `author`");
}

#[test]
fn raw_html_in_markdown_is_refused() {
    let (_w, out) = check_with(
        "99-bad.md",
        b"+++\ntitle = \"T\"\ndate = 2021-07-01\nlink = \"https://example.org/\"\n+++\n\n## A\n\nHello <script>alert(1)</script>\n",
    );
    expect_line(
        &out,
        "99-bad.md",
        9,
        "raw HTML `<script>`, `</script>` is not allowed in an entry",
    );
}

/// The problems `check` printed for `file`, in order, without the path prefix up to `file:`.
fn problems_of(stdout: &str, file: &str) -> Vec<String> {
    let marker = format!("{file}:");
    stdout
        .lines()
        .filter_map(|l| l.find(&marker).map(|i| l[i + marker.len()..].to_string()))
        .collect()
}

#[test]
fn invalid_toml_does_not_hide_the_body_problems() {
    // Line 3 opens a string that is never closed; line 9 has raw HTML, line 11 a link without
    // a scheme.
    let (_w, out) = check_with(
        "99-bad.md",
        b"+++\ntitle = \"T\"\ndate = \"2021-07-01\nlink = \"https://example.org/\"\n+++\n\n## A\n\nHello <b>bold</b>\n\nSee [the site](www.example.org).\n",
    );
    let problems = problems_of(&out, "99-bad.md");
    assert_eq!(problems.len(), 3, "{out}");
    assert!(problems[0].starts_with("3: "), "{out}");
    assert_eq!(
        problems[1],
        "9: raw HTML `<b>`, `</b>` is not allowed in an entry: write **bold** instead"
    );
    assert_eq!(
        problems[2],
        "11: link `www.example.org` has no scheme: did you mean `https://www.example.org`?"
    );

    // A body with no text at all is reported along with the front matter, too.
    let (_w, out) = check_with("99-bad.md", b"+++\ntitle = = \"T\"\n+++\n\n\n");
    let problems = problems_of(&out, "99-bad.md");
    assert_eq!(problems.len(), 2, "{out}");
    assert!(problems[0].starts_with("2: "), "{out}");
    assert_eq!(
        problems[1],
        "4: the entry has no text: add `## Institutional context` and a paragraph"
    );
}

#[test]
fn raw_html_is_reported_once_per_place() {
    let (_w, out) = check_with(
        "99-bad.md",
        b"+++\ntitle = \"T\"\ndate = 2021-07-01\nlink = \"https://example.org/\"\n+++\n\n## A\n\nHello <b>bold</b> world\n\n<div>\n<p>Hi</p>\n</div>\n\nText.\n",
    );
    assert_eq!(
        problems_of(&out, "99-bad.md"),
        [
            "9: raw HTML `<b>`, `</b>` is not allowed in an entry: write **bold** instead",
            "11: raw HTML block `<div>` (lines 11-13) is not allowed in an entry: write the text as Markdown, with a blank line between paragraphs",
        ],
        "{out}"
    );
    assert!(out.contains("2 problem(s) in issue 2021-07\n"), "{out}");
}

#[test]
fn link_without_scheme_suggests_https() {
    let (_w, out) = check_with(
        "99-bad.md",
        b"+++\ntitle = \"T\"\ndate = 2021-07-01\nlink = \"www.example.org/page\"\n+++\n\n## A\n\nSee [x](www.example.org) and [our page](/about).\n",
    );
    assert_eq!(
        problems_of(&out, "99-bad.md"),
        [
            "4: `link`: `www.example.org/page` has no scheme: did you mean `https://www.example.org/page`?",
            "9: link `www.example.org` has no scheme: did you mean `https://www.example.org`?",
            "9: link `/about` is relative, which cannot work in an email: write the full address, starting with https://",
        ],
        "{out}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let w = World::new();
    w.write("content/2021-07/98-a.md", "+++\ntitle = \"A\"\n");
    w.write(
        "content/2021-07/99-b.md",
        "+++\ntitle = \"B\"\ndate = 2021-13-01\nlink = \"https://e.org/\"\n+++\n\n## X\n\nY\n",
    );
    w.write(
        "subscribers.csv",
        "email,name\nok@example.org,Ok\nbroken-address,Nope\n",
    );
    let out = w
        .brief()
        .args(["check", "--issue", "2021-07"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(out.contains("98-a.md:1:"), "{out}");
    assert!(out.contains("99-b.md:3:"), "{out}");
    assert!(
        out.contains("subscribers.csv:3: `broken-address` is not a valid email address"),
        "{out}"
    );
    // The bad row is the subscriber list's problem, not the issue's.
    assert!(
        out.ends_with("2 problem(s) in issue 2021-07, 1 in the subscriber list\n"),
        "{out}"
    );
}

#[test]
fn a_bad_subscriber_row_alone_is_counted_as_the_lists_not_the_issues() {
    let w = World::new();
    w.write(
        "subscribers.csv",
        "email,name\r\nok@example.org,Ok\r\n\r\nbroken-address,Nope\r\n",
    );
    let out = w.brief().args(["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out,
        format!(
            "{}:4: `broken-address` is not a valid email address (Missing domain or user)\n\
             0 problem(s) in issue 2021-07, 1 in the subscriber list\n",
            w.path("subscribers.csv").display()
        )
    );
}

#[test]
fn a_good_issue_checks_clean() {
    let w = World::new();
    let out = w.brief().args(["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "ok: issue 2021-07, 4 entries, 3 subscribers"
    );
}

#[test]
fn a_bad_config_is_a_usage_error_naming_file_and_line() {
    let w = World::new();
    let cfg = std::fs::read_to_string(w.config_path())
        .unwrap()
        .replace("[delivery]\n", "[delivery]\nconcurrency = \"many\"\n");
    w.write("brief.toml", &cfg);
    let line = cfg
        .lines()
        .position(|l| l.starts_with("concurrency"))
        .unwrap()
        + 1;
    let out = w.brief().args(["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!("brief.toml:{line}: invalid type")),
        "{err}"
    );
}

#[test]
fn md_in_any_case_and_markdown_files_are_entries_and_anything_else_is_named() {
    let w = World::new();
    w.write("content/2021-07/05-upper.MD", GOOD);
    w.write("content/2021-07/06-long.markdown", GOOD);
    w.write("content/2021-07/.DS_Store", "\0\0\0\x01Bud1");
    w.write("content/2021-07/07-notes.txt", "not an entry");
    w.write("content/2021-07/drafts/08-draft.md", GOOD);
    let out = w
        .brief()
        .args(["check", "--issue", "2021-07"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = String::from_utf8(out.stdout).unwrap();
    let folder = w.path("content/2021-07");
    let problems: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("content/2021-07/"))
        .collect();
    assert_eq!(
        problems,
        [
            format!(
                "{}: `07-notes.txt` is not an entry: an entry is a Markdown file ending in `.md` \
                 (rename it to `07-notes.md`), and anything else belongs outside the issue folder",
                folder.join("07-notes.txt").display()
            ),
            format!(
                "{}: a folder inside an issue folder is not read: move its entries up into {}, or \
                 the folder out of the content folder",
                folder.join("drafts").display(),
                folder.display()
            ),
        ],
        "{out}"
    );

    w.remove("content/2021-07/07-notes.txt");
    w.remove("content/2021-07/drafts");
    let out = w.brief().args(["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("ok: issue 2021-07, 6 entries"),
        "the .MD and .markdown entries count"
    );
}

#[test]
fn tables_and_strikethrough_are_refused_with_their_line() {
    let (_w, out) = check_with(
        "99-bad.md",
        b"+++\ntitle = \"T\"\ndate = 2021-07-01\nlink = \"https://example.org/\"\n+++\n\n## A\n\nOffices ~3 km apart:\n\n| City | Office |\n| --- | --- |\n| El Paso | CBI |\n\nThe ~~old~~ new office.\n",
    );
    assert_eq!(
        problems_of(&out, "99-bad.md"),
        [
            "11: tables are not supported in entries (an email would show the pipes): write one `- ` list item per row instead",
            "15: strikethrough (`~~text~~`) is not supported in entries: delete the struck-out text, or write the tildes as `\\~\\~` to print them",
        ],
        "{out}"
    );
}
