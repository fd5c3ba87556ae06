//! Mapping errors to exit codes and rendering them (human or JSON).

use std::process::ExitCode;

use fspbx_ha_core::{Error as CoreError, ErrorClass};

/// Exit code: a check failed or the operation reported failure.
pub(crate) const FAILED: u8 = 1;
/// Exit code: bad usage or invalid configuration.
pub(crate) const USAGE: u8 = 2;
/// Exit code: could not complete.
pub(crate) const RUNTIME: u8 = 3;

/// The exit code of an error class (the library classifies, [`CoreError::class`]).
pub(crate) fn code(class: ErrorClass) -> u8 {
    match class {
        ErrorClass::Refused => FAILED,
        ErrorClass::Usage => USAGE,
        _ => RUNTIME,
    }
}

/// The exit code for an error: configuration problems are usage errors, a lost
/// compare-and-swap a failure, the rest runtime.
fn code_of(e: &anyhow::Error) -> u8 {
    e.downcast_ref::<CoreError>()
        .map_or(RUNTIME, |e| code(e.class()))
}

/// Prints `e` on stderr (or as JSON on stdout) and returns its exit code.
pub(crate) fn report(e: &anyhow::Error, json: bool) -> ExitCode {
    let code = code_of(e);
    if json {
        let problems = match e.downcast_ref::<CoreError>() {
            Some(CoreError::ConfigInvalid { problems, .. }) => serde_json::to_value(problems).ok(),
            _ => None,
        };
        let body = serde_json::json!({
            "ok": false,
            "exit_code": code,
            "error": format!("{e:#}"),
            "problems": problems,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        eprintln!("error: {e:#}");
    }
    ExitCode::from(code)
}
