//! POSIX shell quoting for commands run on a node over SSH.
//!
//! Remote commands are strings interpreted by the remote user's shell; every argument that comes
//! from configuration goes through [`quote`]. Secrets never go on a command line at all: they are
//! passed on standard input.

/// Quotes one argument for a POSIX shell (single quotes; embedded single quotes escaped).
pub fn quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// Quotes every argument and joins them with spaces.
pub fn join<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    args.into_iter()
        .map(|a| quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_needs_quoting() {
        assert_eq!(quote("abc"), "abc");
        assert_eq!(quote("-oBatchMode=yes"), "-oBatchMode=yes");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(join(["ssh", "-p", "22", "a b"]), "ssh -p 22 'a b'");
    }
}
