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

/// Loads every configured language's edition of an issue (the default first, see
/// [`App::collect_editions`]), printing the problems of all; `None` when any has one.
pub(super) async fn load_editions_or_report(
    app: &App,
    id: IssueId,
) -> Option<Vec<(crate::lang::Lang, crate::issue::Issue)>> {
    match app
        .collect_editions(id, crate::feed::FetchPolicy::Once)
        .await
    {
        Ok(e) => Some(e),
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
