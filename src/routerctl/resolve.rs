//! Node ids as operators type them: the exact id, or a unique prefix of one, as git takes
//! commit hashes.

use std::collections::BTreeSet;

use super::error::CtlError;

/// The node id `query` names among `ids` (every node of every router): an exact match wins,
/// else the one id it is a prefix of. None, or several, is an error saying so.
pub fn resolve<'a>(
    query: &str,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<String, CtlError> {
    let ids: BTreeSet<&str> = ids.into_iter().collect();
    if ids.contains(query) {
        return Ok(query.to_owned());
    }
    let candidates: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| id.starts_with(query))
        .collect();
    match candidates.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(CtlError::Failed(format!(
            "no node matches {query:?} — `routerctl nodes` lists them"
        ))),
        many => Err(CtlError::Failed(format!(
            "node id {query:?} is ambiguous: it could be {} — give more of the id",
            many.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: [&str; 4] = ["web-1", "web-10", "web-2", "api-1"];

    #[test]
    fn exact_ids_win_over_prefixes() {
        assert_eq!(resolve("web-1", IDS).unwrap(), "web-1");
    }

    #[test]
    fn unique_prefixes_resolve() {
        assert_eq!(resolve("a", IDS).unwrap(), "api-1");
        assert_eq!(resolve("web-2", IDS).unwrap(), "web-2");
        assert_eq!(resolve("web-10", IDS).unwrap(), "web-10");
    }

    #[test]
    fn ambiguous_prefixes_list_the_candidates() {
        let e = resolve("web", IDS).unwrap_err().to_string();
        assert!(
            e.contains("ambiguous") && e.contains("web-1, web-10, web-2"),
            "{e}"
        );
        assert_eq!(resolve("web", IDS).unwrap_err().exit_code(), 1);
    }

    #[test]
    fn unknown_ids_are_errors() {
        let e = resolve("db", IDS).unwrap_err().to_string();
        assert!(e.contains("no node matches \"db\""), "{e}");
        // The same id on two routers is one node.
        assert_eq!(resolve("api", ["api-1", "api-1"]).unwrap(), "api-1");
    }
}
