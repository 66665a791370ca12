//! Loading an issue for a command: the issue with its feed items, or its problems printed.

use crate::app::App;
use crate::issue::IssueId;

/// Loads an issue (with its feed items), printing its problems; `None` when it has any.
pub(super) async fn load_or_report(app: &App, id: IssueId) -> Option<crate::issue::Issue> {
    match app.collect_issue(id, crate::feed::FetchPolicy::Once).await {
        Ok(i) => Some(i),
        Err(problems) => {
            for p in &problems.0 {
                eprintln!("{p}");
            }
            eprintln!(
                "error: issue {id} has {} problem(s): nothing was sent or written",
                problems.0.len()
            );
            None
        }
    }
}
