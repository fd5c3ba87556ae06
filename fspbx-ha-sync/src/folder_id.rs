//! The stable folder id derived from a folder's path.
//!
//! FS PBX gives each shared folder "a stable hash of the path" as id so both nodes agree
//! without talking. We use: `fspbx-` followed by the first 16 hexadecimal digits of the
//! SHA-256 of the path's UTF-8 bytes, after removing trailing slashes. The same id comes out of
//! a shell: `printf %s /var/lib/freeswitch/recordings | sha256sum | cut -c1-16`.
//!
//! An existing pair whose ids were made differently is adopted: the planner matches folders by
//! path first, and `folders[].id` in the configuration overrides the derived id.

use sha2::{Digest, Sha256};

/// The stable id of the folder at `path` (see the module documentation for the derivation).
pub fn stable_folder_id(path: &str) -> String {
    let digest = Sha256::digest(normalize_path(path).as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("fspbx-{hex}")
}

/// The path without trailing slashes (`/` stays `/`), so `/a/b/` and `/a/b` are one folder.
pub fn normalize_path(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() && path.starts_with('/') {
        "/"
    } else {
        trimmed
    }
}

/// A short human label for a folder: its last path component (`recordings`).
pub fn folder_label(path: &str) -> String {
    normalize_path(path)
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("/")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_stable_and_matches_sha256sum() {
        // printf %s /var/lib/freeswitch/recordings | sha256sum | cut -c1-16
        let id = stable_folder_id("/var/lib/freeswitch/recordings");
        assert_eq!(id, stable_folder_id("/var/lib/freeswitch/recordings/"));
        assert_eq!(id, "fspbx-e4488409f35f4883");
        assert_ne!(id, stable_folder_id("/var/lib/freeswitch/storage"));
    }

    #[test]
    fn labels_and_normalization() {
        assert_eq!(
            folder_label("/var/lib/freeswitch/recordings/"),
            "recordings"
        );
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path("/a//"), "/a");
    }
}
