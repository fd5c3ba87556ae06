//! Printing results.

use std::io::Write as _;

use serde::Serialize;

/// Exit status when stdout was closed early: what a shell reports for a process that SIGPIPE
/// ended (128 + 13), as `fspbx-ha status | head -1` expects of any Unix tool.
const EXIT_STDOUT_CLOSED: i32 = 141;

/// Writes to stdout (with a newline when `newline`). A reader that went away (`| head`) ends
/// the process quietly with [`EXIT_STDOUT_CLOSED`] instead of a panic; any other write error
/// is reported on stderr and ends it with 3.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            std::process::exit(EXIT_STDOUT_CLOSED)
        }
        Err(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            std::process::exit(3)
        }
    }
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
