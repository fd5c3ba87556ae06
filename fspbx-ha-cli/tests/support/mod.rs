//! What the CLI tests share: the `fspbx-ha` binary run against a configuration file, its output
//! read back as text or JSON, and a predicate for output that must say several things.
//!
//! Each test file compiles this module on its own and uses a part of it.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use assert_cmd::Command;
use assert_cmd::assert::Assert;
use predicates::BoxPredicate;
use predicates::prelude::*;

/// `fspbx-ha --config <config>` (`FSPBX_HA_CONFIG` removed from its environment).
pub fn fspbx_ha(config: &Path) -> Command {
    let mut c = Command::cargo_bin("fspbx-ha").unwrap();
    c.env_remove("FSPBX_HA_CONFIG").arg("--config").arg(config);
    c
}

/// Runs `fspbx-ha --config <config> <args>` and asserts that it exits with `code`.
pub fn run(config: &Path, args: &[&str], code: i32) -> Assert {
    fspbx_ha(config).args(args).assert().code(code)
}

/// The command's standard output as text.
pub fn stdout(a: &Assert) -> String {
    String::from_utf8(a.get_output().stdout.clone()).unwrap()
}

/// The command's standard output parsed as JSON.
pub fn json(a: &Assert) -> serde_json::Value {
    let text = stdout(a);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Text containing every one of `parts`.
pub fn contains_all(parts: &[&str]) -> BoxPredicate<str> {
    parts.iter().fold(predicate::always().boxed(), |p, part| {
        p.and(predicate::str::contains(*part)).boxed()
    })
}
