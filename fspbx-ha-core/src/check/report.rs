//! Check results.

use std::fmt::Write as _;

use serde::Serialize;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// As needed.
    Pass,
    /// Works, but not as recommended.
    Warn,
    /// Blocks high availability.
    Fail,
    /// Not run because a prerequisite failed.
    Skip,
}

impl CheckStatus {
    /// `pass`, `warn`, `fail` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
            CheckStatus::Skip => "skip",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckItem {
    /// Node name.
    pub node: String,
    /// Check id, e.g. `postgres.wal_level`.
    pub check: String,
    /// Outcome.
    pub status: CheckStatus,
    /// What was observed.
    pub observed: String,
    /// What is needed.
    pub expected: String,
    /// How to fix it (absent on pass).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl CheckItem {
    /// A new item.
    pub fn new(
        node: &str,
        check: &str,
        status: CheckStatus,
        observed: impl Into<String>,
        expected: impl Into<String>,
        fix: Option<String>,
    ) -> Self {
        CheckItem {
            node: node.to_string(),
            check: check.to_string(),
            status,
            observed: observed.into(),
            expected: expected.into(),
            fix,
        }
    }
}

/// All results of a check run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Results, node A's first, in check order.
    pub items: Vec<CheckItem>,
}

impl CheckReport {
    /// True when no check failed (warnings and skips of non-failing prerequisites allowed).
    pub fn ok(&self) -> bool {
        !self
            .items
            .iter()
            .any(|i| matches!(i.status, CheckStatus::Fail | CheckStatus::Skip))
    }

    /// Number of items with `status`.
    pub fn count(&self, status: CheckStatus) -> usize {
        self.items.iter().filter(|i| i.status == status).count()
    }

    /// Items that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckItem> {
        self.items.iter().filter(|i| i.status == CheckStatus::Fail)
    }

    /// The item for `node` and `check`, if it was produced.
    pub fn find(&self, node: &str, check: &str) -> Option<&CheckItem> {
        self.items
            .iter()
            .find(|i| i.node == node && i.check == check)
    }

    /// A human table: node, check, status, observed; the fix under each non-passing line.
    pub fn render_table(&self) -> String {
        let w_node = self
            .items
            .iter()
            .map(|i| i.node.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let w_check = self
            .items
            .iter()
            .map(|i| i.check.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<w_node$}  {:<w_check$}  {:<6}  OBSERVED",
            "NODE", "CHECK", "STATUS"
        );
        for i in &self.items {
            let _ = writeln!(
                out,
                "{:<w_node$}  {:<w_check$}  {:<6}  {}",
                i.node,
                i.check,
                i.status.as_str().to_uppercase(),
                i.observed
            );
            if i.status != CheckStatus::Pass {
                let pad = " ".repeat(w_node + w_check + 12);
                let _ = writeln!(out, "{pad}expected: {}", i.expected);
                if let Some(fix) = &i.fix {
                    let _ = writeln!(out, "{pad}fix: {fix}");
                }
            }
        }
        let _ = writeln!(
            out,
            "\n{} passed, {} warnings, {} failed, {} skipped",
            self.count(CheckStatus::Pass),
            self.count(CheckStatus::Warn),
            self.count(CheckStatus::Fail),
            self.count(CheckStatus::Skip)
        );
        out
    }
}
