//! OpenSSH `known_hosts` files: parsing and the host-key decision, without I/O.
//!
//! The parser keeps the *physical* line number of every entry (comment and blank lines count),
//! so an error can say exactly which line of which file to look at. It understands plain and
//! `[host]:port` names, comma lists, `*`/`?` wildcards, `!` negation, hashed names
//! (`|1|salt|hash`, as written with `HashKnownHosts yes`, Debian's default) and the
//! `@revoked` marker. `@cert-authority` lines are skipped (host certificates are not used).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit as _, Mac as _};
use russh::keys::{Algorithm, HashAlg, PublicKey, PublicKeyBase64 as _};

/// One usable entry of a known_hosts file.
#[derive(Debug, Clone)]
pub struct KnownHostEntry {
    /// 1-based physical line number in the file.
    pub line: usize,
    /// The entry carries `@revoked`: this key must never be accepted.
    pub revoked: bool,
    /// The host pattern field as written (comma list, possibly hashed).
    pub patterns: String,
    /// The recorded key.
    pub key: PublicKey,
}

/// A parsed known_hosts file.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    entries: Vec<KnownHostEntry>,
    /// Physical line numbers that could not be parsed (reported in debug logs, otherwise ignored
    /// like OpenSSH does).
    skipped: Vec<usize>,
}

/// What the known_hosts file says about the key a server presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyVerdict {
    /// The key is recorded for this host, at `line`.
    Trusted {
        /// Physical line of the matching entry.
        line: usize,
    },
    /// Nothing of this key type is recorded for this host.
    Unknown,
    /// A different key of the same type is recorded for this host at `line`.
    Changed {
        /// Physical line of the conflicting entry.
        line: usize,
        /// SHA256 fingerprint of the recorded key.
        recorded_fingerprint: String,
    },
    /// The presented key is marked `@revoked` at `line`.
    Revoked {
        /// Physical line of the `@revoked` entry.
        line: usize,
    },
}

/// The name under which OpenSSH records `host` at `port`: `host` for port 22, `[host]:port`
/// otherwise.
pub fn host_key_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The line to append to a known_hosts file for `key` of `host`:`port`
/// (`[host]:port ssh-ed25519 AAAA…`, no comment).
pub fn known_hosts_line(host: &str, port: u16, key: &PublicKey) -> String {
    let b64 = key.public_key_base64();
    format!(
        "{} {} {}",
        host_key_name(host, port),
        key.algorithm().as_str(),
        b64
    )
}

/// `SHA256:…` fingerprint of a key, as `ssh-keygen -lf` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

impl KnownHosts {
    /// Parses the content of a known_hosts file. Lines that cannot be parsed are skipped (their
    /// numbers are kept in [`KnownHosts::skipped_lines`]), as OpenSSH does.
    pub fn parse(text: &str) -> KnownHosts {
        let mut out = KnownHosts::default();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut fields = trimmed.split_ascii_whitespace();
            let mut first = fields.next().unwrap_or_default();
            let mut revoked = false;
            if let Some(marker) = first.strip_prefix('@') {
                match marker {
                    "revoked" => revoked = true,
                    // Certificate authorities are not used by this tool.
                    _ => continue,
                }
                first = match fields.next() {
                    Some(f) => f,
                    None => {
                        out.skipped.push(line);
                        continue;
                    }
                };
            }
            let (Some(_key_type), Some(b64)) = (fields.next(), fields.next()) else {
                out.skipped.push(line);
                continue;
            };
            match russh::keys::parse_public_key_base64(b64) {
                Ok(key) => out.entries.push(KnownHostEntry {
                    line,
                    revoked,
                    patterns: first.to_string(),
                    key,
                }),
                Err(_) => out.skipped.push(line),
            }
        }
        out
    }

    /// The usable entries, in file order.
    pub fn entries(&self) -> &[KnownHostEntry] {
        &self.entries
    }

    /// Physical numbers of lines that were not understood.
    pub fn skipped_lines(&self) -> &[usize] {
        &self.skipped
    }

    /// The entries whose host patterns match `host`:`port`.
    fn matching<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> impl Iterator<Item = &'a KnownHostEntry> + 'a {
        // OpenSSH lowercases the host name before matching (hashed names depend on it).
        let name = host_key_name(&host.to_ascii_lowercase(), port);
        self.entries
            .iter()
            .filter(move |e| patterns_match(&e.patterns, &name))
    }

    /// Decides whether `key`, presented by `host`:`port`, is trusted.
    ///
    /// A revoked key is refused first; then a recorded identical key trusts; then a recorded key
    /// of the same type (RSA hash variants count as one type) that differs means the key
    /// changed; otherwise the key is unknown.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> HostKeyVerdict {
        // `@revoked` applies to the key whatever host it is presented by.
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.revoked && e.key.key_data() == key.key_data())
        {
            return HostKeyVerdict::Revoked { line: e.line };
        }
        let mut changed = None;
        for e in self.matching(host, port).filter(|e| !e.revoked) {
            if e.key.key_data() == key.key_data() {
                return HostKeyVerdict::Trusted { line: e.line };
            }
            if changed.is_none() && same_family(&e.key.algorithm(), &key.algorithm()) {
                changed = Some(HostKeyVerdict::Changed {
                    line: e.line,
                    recorded_fingerprint: fingerprint(&e.key),
                });
            }
        }
        changed.unwrap_or(HostKeyVerdict::Unknown)
    }

    /// Orders `offered` host-key algorithms so those with a key recorded for `host`:`port` come
    /// first (as OpenSSH does), so a server with several host keys presents one we know.
    pub fn preferred_algorithms(
        &self,
        host: &str,
        port: u16,
        offered: &[Algorithm],
    ) -> Vec<Algorithm> {
        let known: Vec<Algorithm> = self
            .matching(host, port)
            .filter(|e| !e.revoked)
            .map(|e| e.key.algorithm())
            .collect();
        let (mut first, rest): (Vec<Algorithm>, Vec<Algorithm>) = offered
            .iter()
            .cloned()
            .partition(|a| known.iter().any(|k| same_family(k, a)));
        first.extend(rest);
        first
    }
}

/// Two algorithms are the same key type (RSA with any signature hash is one type).
fn same_family(a: &Algorithm, b: &Algorithm) -> bool {
    match (a, b) {
        (Algorithm::Rsa { .. }, Algorithm::Rsa { .. }) => true,
        _ => a == b,
    }
}

/// OpenSSH host-pattern matching for one known_hosts field against the name `[host]:port` or
/// `host`. A negated pattern that matches rejects the whole entry.
fn patterns_match(field: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in field.split(',') {
        if let Some(hashed) = pattern.strip_prefix("|1|") {
            if hashed_match(hashed, name) {
                matched = true;
            }
        } else if let Some(negated) = pattern.strip_prefix('!') {
            if glob_match(negated.as_bytes(), name.as_bytes()) {
                return false;
            }
        } else if glob_match(pattern.as_bytes(), name.as_bytes()) {
            matched = true;
        }
    }
    matched
}

/// `salt|hash` (both base64): HMAC-SHA1(key = salt, message = name) == hash.
fn hashed_match(salt_and_hash: &str, name: &str) -> bool {
    let Some((salt, hash)) = salt_and_hash.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (BASE64.decode(salt), BASE64.decode(hash)) else {
        return false;
    };
    let Ok(mac) = Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.chain_update(name.as_bytes())
        .verify_slice(&hash)
        .is_ok()
}

/// Case-insensitive glob with `*` and `?`.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p].eq_ignore_ascii_case(&text[t])) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Public keys generated here with ssh-keygen (no private material kept).
    const ED_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIKWdnSe8cgDtBNPTBQJeAggCFVILersEjoUJuXok7Hs7";
    const ED_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIHyDOSs0qL/odtEUF901MMzRT+XuJZHoFv2FuHTPz/0o";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).unwrap()
    }

    #[test]
    fn physical_line_numbers_count_comments_and_blanks() {
        let text = format!(
            "# comment\n\n# another\n[127.0.0.2]:2222 ssh-ed25519 {ED_A}\n\
             garbage line\n[127.0.0.3]:2222 ssh-ed25519 {ED_B}\n"
        );
        let kh = KnownHosts::parse(&text);
        assert_eq!(kh.entries().len(), 2);
        assert_eq!(kh.entries()[0].line, 4);
        assert_eq!(kh.entries()[1].line, 6);
        assert_eq!(kh.skipped_lines(), &[5]);
        assert_eq!(
            kh.check("127.0.0.2", 2222, &key(ED_A)),
            HostKeyVerdict::Trusted { line: 4 }
        );
        match kh.check("127.0.0.2", 2222, &key(ED_B)) {
            HostKeyVerdict::Changed {
                line,
                recorded_fingerprint,
            } => {
                assert_eq!(line, 4);
                assert_eq!(recorded_fingerprint, fingerprint(&key(ED_A)));
            }
            other => panic!("expected Changed, got {other:?}"),
        }
        // Same key, other port: not recorded.
        assert_eq!(
            kh.check("127.0.0.2", 2223, &key(ED_A)),
            HostKeyVerdict::Unknown
        );
    }

    #[test]
    fn port_22_uses_bare_name_and_lists_and_wildcards_match() {
        let kh = KnownHosts::parse(&format!(
            "pbx-a.example.test,10.0.0.1 ssh-ed25519 {ED_A}\n*.lab.test,!bad.lab.test ssh-ed25519 {ED_B}\n"
        ));
        assert_eq!(
            kh.check("10.0.0.1", 22, &key(ED_A)),
            HostKeyVerdict::Trusted { line: 1 }
        );
        assert_eq!(
            kh.check("PBX-A.example.test", 22, &key(ED_A)),
            HostKeyVerdict::Trusted { line: 1 }
        );
        assert_eq!(
            kh.check("x.lab.test", 22, &key(ED_B)),
            HostKeyVerdict::Trusted { line: 2 }
        );
        assert_eq!(
            kh.check("bad.lab.test", 22, &key(ED_B)),
            HostKeyVerdict::Unknown
        );
    }

    #[test]
    fn hashed_names_match() {
        // Produced here by `ssh-keygen -H` for "pbx-a.example.test".
        let kh = KnownHosts::parse(
            "|1|5B+1Y+LTuTaPya7igzkY8k0qP7c=|9vs58N07whk3hygLGzQupL2v2JY= ssh-ed25519 \
             AAAAC3NzaC1lZDI1NTE5AAAAIF2EPrSJ5Js0M6KcYHWax41dmtnXZKgIYjCj6Ih9AHE8\n",
        );
        let k = key("AAAAC3NzaC1lZDI1NTE5AAAAIF2EPrSJ5Js0M6KcYHWax41dmtnXZKgIYjCj6Ih9AHE8");
        assert_eq!(
            kh.check("pbx-a.example.test", 22, &k),
            HostKeyVerdict::Trusted { line: 1 }
        );
        assert_eq!(
            kh.check("pbx-b.example.test", 22, &k),
            HostKeyVerdict::Unknown
        );
    }

    #[test]
    fn revoked_key_is_refused_even_if_listed() {
        let kh = KnownHosts::parse(&format!(
            "[h]:2000 ssh-ed25519 {ED_A}\n@revoked * ssh-ed25519 {ED_A}\n"
        ));
        assert_eq!(
            kh.check("h", 2000, &key(ED_A)),
            HostKeyVerdict::Revoked { line: 2 }
        );
    }

    #[test]
    fn line_round_trips_and_known_algorithms_come_first() {
        let line = known_hosts_line("127.0.0.2", 2222, &key(ED_A));
        assert_eq!(line, format!("[127.0.0.2]:2222 ssh-ed25519 {ED_A}"));
        let kh = KnownHosts::parse(&line);
        assert_eq!(
            kh.check("127.0.0.2", 2222, &key(ED_A)),
            HostKeyVerdict::Trusted { line: 1 }
        );
        let offered = [
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Ed25519,
        ];
        assert_eq!(
            kh.preferred_algorithms("127.0.0.2", 2222, &offered),
            vec![
                Algorithm::Ed25519,
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha512)
                }
            ]
        );
        assert!(fingerprint(&key(ED_A)).starts_with("SHA256:"));
    }

    #[test]
    fn glob() {
        assert!(glob_match(b"*", b"anything"));
        assert!(glob_match(b"10.0.0.?", b"10.0.0.7"));
        assert!(!glob_match(b"10.0.0.?", b"10.0.0.17"));
        assert!(glob_match(b"[*]:2222", b"[h]:2222"));
        assert!(!glob_match(b"a*b", b"ac"));
    }
}
