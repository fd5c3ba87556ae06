//! References to secrets: `env:NAME` and `file:PATH`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::{Secret, SecretError};

/// Where a secret lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecretSource {
    /// An environment variable of the process that resolves it.
    Env(String),
    /// A file; its content with one trailing newline removed is the value.
    File(PathBuf),
}

/// A reference to a secret, as written in the configuration (`env:NAME` or `file:/path`).
///
/// The reference itself is not secret: it is shown in errors and JSON so the operator knows
/// where to look. The value is read only by [`SecretRef::resolve`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    source: SecretSource,
}

impl SecretRef {
    /// A reference to the environment variable `name`.
    pub fn env(name: impl Into<String>) -> Self {
        SecretRef {
            source: SecretSource::Env(name.into()),
        }
    }

    /// A reference to the file at `path`.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        SecretRef {
            source: SecretSource::File(path.into()),
        }
    }

    /// Where the secret lives.
    pub fn source(&self) -> &SecretSource {
        &self.source
    }

    /// Reads the value now.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        let value = match &self.source {
            SecretSource::Env(name) => {
                std::env::var(name).map_err(|_| SecretError::EnvMissing { name: name.clone() })?
            }
            SecretSource::File(path) => {
                let mut s = std::fs::read_to_string(path).map_err(|source| {
                    SecretError::FileUnreadable {
                        path: path.clone(),
                        source,
                    }
                })?;
                if s.ends_with('\n') {
                    s.pop();
                    if s.ends_with('\r') {
                        s.pop();
                    }
                }
                s
            }
        };
        if value.is_empty() {
            return Err(SecretError::Empty {
                reference: self.to_string(),
            });
        }
        Ok(Secret::new(value))
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            SecretSource::Env(n) => write!(f, "env:{n}"),
            SecretSource::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

impl FromStr for SecretRef {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || SecretError::InvalidReference {
            // Never echo something that may be an inline password back in full.
            given: match s.split_once(':') {
                Some((scheme, _)) if scheme.len() <= 8 => format!("{scheme}:…"),
                _ => "<value not shown>".to_string(),
            },
        };
        if let Some(name) = s.strip_prefix("env:") {
            let ok = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !ok {
                return Err(SecretError::InvalidReference {
                    given: format!("env:{name}"),
                });
            }
            return Ok(SecretRef::env(name));
        }
        if let Some(path) = s.strip_prefix("file:") {
            if path.is_empty() {
                return Err(invalid());
            }
            return Ok(SecretRef::file(path));
        }
        Err(invalid())
    }
}

impl serde::Serialize for SecretRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_and_file() {
        assert_eq!(
            "env:PG_PASS".parse::<SecretRef>().unwrap(),
            SecretRef::env("PG_PASS")
        );
        assert_eq!(
            "file:/etc/x".parse::<SecretRef>().unwrap(),
            SecretRef::file("/etc/x")
        );
    }

    #[test]
    fn refuses_inline_values_without_echoing_them() {
        let err = "hunter2".parse::<SecretRef>().unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let err = "plain:supersecretvalue"
            .parse::<SecretRef>()
            .unwrap_err()
            .to_string();
        assert!(!err.contains("supersecretvalue"), "{err}");
        assert!("env:".parse::<SecretRef>().is_err());
        assert!("env:1ABC".parse::<SecretRef>().is_err());
    }

    #[test]
    fn file_value_drops_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "abc\n").unwrap();
        assert_eq!(SecretRef::file(&p).resolve().unwrap().expose(), "abc");
        std::fs::write(&p, "").unwrap();
        assert!(matches!(
            SecretRef::file(&p).resolve(),
            Err(SecretError::Empty { .. })
        ));
    }

    #[test]
    fn missing_env_names_variable() {
        let e = SecretRef::env("FSPBX_HA_SURELY_UNSET_VAR")
            .resolve()
            .unwrap_err();
        assert!(e.to_string().contains("FSPBX_HA_SURELY_UNSET_VAR"));
    }
}
