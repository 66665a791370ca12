//! Loading an issue for a command: the issue with its feed items, or its problems printed.

use crate::app::App;
use crate::issue::IssueId;

/// Loads every configured language's edition of an issue (the default first, see
/// [`App::collect_editions`]), printing the problems of all; `None` when any has one.
pub(super) async fn load_editions_or_report(
    app: &App,
    id: IssueId,
) -> Option<Vec<(crate::lang::Lang, crate::issue::Issue)>> {
    reported(
        id,
        app.collect_editions(id, crate::feed::FetchPolicy::Once)
            .await,
    )
}

/// What was loaded of issue `id`, or `None` with its problems printed.
fn reported<T>(id: IssueId, loaded: Result<T, crate::error::Problems>) -> Option<T> {
    match loaded {
        Ok(found) => Some(found),
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
