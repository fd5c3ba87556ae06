//! Mapping errors to exit codes and rendering them (human or JSON).

use std::process::ExitCode;

use fspbx_ha_core::{Error as CoreError, ErrorFamily};

/// Exit code: a check failed or the operation reported failure.
pub(crate) const FAILED: u8 = 1;
/// Exit code: bad usage or invalid configuration.
pub(crate) const USAGE: u8 = 2;
/// Exit code: could not complete.
pub(crate) const RUNTIME: u8 = 3;

/// The exit code for an error: configuration problems are usage errors, the rest runtime.
fn code_of(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<CoreError>().map(CoreError::family) {
        Some(ErrorFamily::Config | ErrorFamily::Secret) => USAGE,
        _ => RUNTIME,
    }
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
        println!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
    } else {
        eprintln!("error: {e:#}");
    }
    ExitCode::from(code)
}
