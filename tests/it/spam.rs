//! The shipped example's campaign message, DKIM-signed as `brief preview` writes it, through
//! SpamAssassin's default rules: it must score 0.0 or less. SpamAssassin is the Debian package
//! `spamassassin`, which `scripts/test.sh` installs; without it the test fails (it never skips).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::dkim::{ed25519_key, DOMAIN, SELECTOR};
use crate::support::World;

const MISSING: &str = "this test needs SpamAssassin: run scripts/test.sh, which installs it, or \
                       `apt-get install spamassassin`";

fn spamassassin() -> PathBuf {
    ["/usr/bin/spamassassin", "/usr/local/bin/spamassassin"]
        .into_iter()
        .map(PathBuf::from)
        .chain(
            std::env::var_os("PATH")
                .into_iter()
                .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .map(|d| d.join("spamassassin")),
        )
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("spamassassin is missing: {MISSING}"))
}

/// The score in SpamAssassin's report and the report's rule table.
fn score(report: &str) -> (f64, String) {
    let at = report
        .find("Content analysis details:")
        .unwrap_or_else(|| panic!("no analysis in SpamAssassin's report:\n{report}"));
    let details = &report[at..];
    let points = details
        .split('(')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no score in SpamAssassin's report:\n{details}"));
    (points, details.to_string())
}

#[test]
fn the_signed_example_message_scores_zero_or_less_with_spamassassin() {
    let sa = spamassassin();
    let (_, pem, _) = ed25519_key();
    let w = World::with_config(&format!(
        "[dkim]\ndomain = \"{DOMAIN}\"\nselector = \"{SELECTOR}\"\nprivate_key_file = \"dkim.pem\"\n"
    ));
    w.write("dkim.pem", &pem);
    let out = w
        .brief()
        .args(["preview", "--issue", "2021-07", "--out", "preview"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let eml = std::fs::read(w.path("preview/2021-07.eml")).unwrap();
    assert!(eml.starts_with(b"DKIM-Signature:"), "the preview is signed");

    // Test mode (-t), local rules only (-L: no DNS or network lists), and a home of its own so
    // no user preferences count.
    let home = w.path("sa-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut child = Command::new(&sa)
        .args(["-t", "-L"])
        .env("HOME", &home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} does not start ({e}): {MISSING}", sa.display()));
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&eml).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let (points, rules) = score(&report);
    assert!(
        points <= 0.0,
        "SpamAssassin scores the example message {points} (over 0.0):\n{rules}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
