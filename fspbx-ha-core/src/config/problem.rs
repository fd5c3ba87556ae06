//! One validation problem: a key path, what was expected and what was found.

use std::fmt;

use serde::Serialize;

/// A configuration value that is wrong, with the key path that names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    /// Key path, e.g. `nodes[1].ssh.port`.
    pub key: String,
    /// What is expected, e.g. `1..65535`.
    pub expected: String,
    /// What was found (never a secret value: secrets are references).
    pub got: String,
}

impl ConfigProblem {
    /// A problem at `key`.
    pub fn new(
        key: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        ConfigProblem {
            key: key.into(),
            expected: expected.into(),
            got: got.into(),
        }
    }

    /// One problem a line, indented, for error messages.
    pub fn list(problems: &[ConfigProblem]) -> String {
        problems
            .iter()
            .map(|p| format!("  {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.key, self.expected, self.got
        )
    }
}
