//! Secrets for fspbx-ha: references that say *where* a secret lives, resolved as late as possible
//! into values that never print.
//!
//! Configuration files never hold a password, an API token or a TSIG key. They hold a
//! [`SecretRef`] — `env:NAME` or `file:/path` — and the code that needs the value calls
//! [`SecretRef::resolve`] right before use. The resolved [`Secret`] redacts itself in `Debug`,
//! `Display` and `Serialize`, so it cannot leak through logs, error messages or `--json` output.
//!
//! ```
//! use fspbx_ha_secret::SecretRef;
//! // SAFETY of the example: the variable is set for this process only.
//! unsafe { std::env::set_var("EXAMPLE_DB_PASSWORD", "hunter2") };
//! let r: SecretRef = "env:EXAMPLE_DB_PASSWORD".parse().unwrap();
//! let s = r.resolve().unwrap();
//! assert_eq!(s.expose(), "hunter2");
//! assert_eq!(format!("{s}"), "<redacted>");
//! assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
//! ```

mod reference;
mod value;

pub use reference::{SecretRef, SecretSource};
pub use value::Secret;

/// What can go wrong when a [`SecretRef`] is parsed or resolved.
///
/// Messages name the reference (which is not secret) and never the value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The text is not `env:NAME` or `file:PATH`.
    #[error(
        "invalid secret reference {given:?}: expected `env:NAME` or `file:/path/to/file` \
         (secrets are never written into the configuration itself)"
    )]
    InvalidReference {
        /// What was given, truncated to its scheme when it looks like an inline value.
        given: String,
    },
    /// The environment variable is not set (or not valid UTF-8).
    #[error("secret env:{name} is not set: export {name} before running")]
    EnvMissing {
        /// Variable name.
        name: String,
    },
    /// The file could not be read.
    #[error("secret file:{} could not be read: {source}", path.display())]
    FileUnreadable {
        /// Path of the file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The resolved value is empty.
    #[error("secret {reference} is empty")]
    Empty {
        /// The reference, e.g. `env:PGPASSWORD`.
        reference: String,
    },
}
