//! Counting Syncthing's conflict copies (`*.sync-conflict-*`) on a node, over SSH.

use crate::shell::quote;

/// The shell command counting conflict files under `paths` (missing paths count 0).
pub(crate) fn count_command(paths: &[String]) -> String {
    let quoted: Vec<String> = paths.iter().map(|p| quote(p)).collect();
    format!(
        "for d in {}; do [ -d \"$d\" ] && find \"$d\" -name '*.sync-conflict-*' -print; done | wc -l",
        quoted.join(" ")
    )
}

/// Reads `wc -l` output.
pub(crate) fn parse_count(stdout: &str) -> Option<u64> {
    stdout.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted() {
        let c = count_command(&[
            "/var/lib/freeswitch/recordings".into(),
            "/tmp/it's here".into(),
        ]);
        assert!(
            c.contains("for d in /var/lib/freeswitch/recordings '/tmp/it'\\''s here'; do"),
            "{c}"
        );
        assert_eq!(parse_count(" 3\n"), Some(3));
        assert_eq!(parse_count("x"), None);
    }
}
