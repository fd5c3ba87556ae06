//! The marked block this tool keeps in a node's `pg_hba.conf`: pure text editing, tested
//! without servers. The block admits the peer's address only (a /32 or /128), to the FS PBX
//! database, as the replication role.

use std::net::IpAddr;

/// First line of the block.
pub const BEGIN: &str = "# BEGIN fspbx-ha";
/// Last line of the block.
pub const END: &str = "# END fspbx-ha";

/// The lines of the block (markers included) for a peer.
pub fn block(dbname: &str, role: &str, peer: IpAddr, method: &str) -> Vec<String> {
    let mask = if peer.is_ipv4() { 32 } else { 128 };
    vec![
        BEGIN.to_string(),
        "# Managed by fspbx-ha: logical replication from the peer node. Edits here are replaced."
            .to_string(),
        format!(
            "host    {}    {}    {peer}/{mask}    {method}",
            hba_word(dbname),
            hba_word(role)
        ),
        END.to_string(),
    ]
}

/// A database or role name as a pg_hba.conf word (quoted when it is not plain).
fn hba_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// `text` with the block in place: an existing block is replaced where it stands; otherwise the
/// block goes first, before any rule (pg_hba.conf is first-match, so a broad `reject` further
/// down cannot shadow it). Returns `None` when the text already holds exactly this block.
pub fn with_block(text: &str, block: &[String]) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let begin = lines.iter().position(|l| l.trim() == BEGIN);
    let end = begin.and_then(|b| {
        lines[b..]
            .iter()
            .position(|l| l.trim() == END)
            .map(|e| b + e)
    });
    let mut out: Vec<String> = Vec::with_capacity(lines.len() + block.len());
    match (begin, end) {
        (Some(b), Some(e)) => {
            if lines[b..=e]
                .iter()
                .map(|l| l.trim_end())
                .eq(block.iter().map(String::as_str))
            {
                return None;
            }
            out.extend(lines[..b].iter().map(|l| l.to_string()));
            out.extend(block.iter().cloned());
            out.extend(lines[e + 1..].iter().map(|l| l.to_string()));
        }
        _ => {
            // No complete block (a lone BEGIN is left as it is): put a fresh block first.
            out.extend(block.iter().cloned());
            out.extend(lines.iter().map(|l| l.to_string()));
        }
    }
    let mut s = out.join("\n");
    s.push('\n');
    Some(s)
}

/// `text` without the block, or `None` when there is none.
pub fn without_block(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let b = lines.iter().position(|l| l.trim() == BEGIN)?;
    let e = lines[b..].iter().position(|l| l.trim() == END)? + b;
    let mut out: Vec<&str> = lines[..b].to_vec();
    out.extend_from_slice(&lines[e + 1..]);
    let mut s = out.join("\n");
    s.push('\n');
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = "# lab\nlocal all all trust\nhost all all 127.0.0.0/8 scram-sha-256\n";

    #[test]
    fn block_goes_first_once_and_is_replaced_in_place() {
        let peer: IpAddr = "127.0.0.3".parse().unwrap();
        let b = block("fusionpbx", "fspbx_replicator", peer, "scram-sha-256");
        assert_eq!(
            b[2],
            "host    fusionpbx    fspbx_replicator    127.0.0.3/32    scram-sha-256"
        );
        let once = with_block(LAB, &b).expect("added");
        assert!(once.starts_with(BEGIN));
        assert!(once.ends_with("host all all 127.0.0.0/8 scram-sha-256\n"));
        assert_eq!(with_block(&once, &b), None, "second edit changes nothing");

        let other: IpAddr = "10.0.0.9".parse().unwrap();
        let b2 = block("fusionpbx", "fspbx_replicator", other, "md5");
        let twice = with_block(&once, &b2).expect("replaced");
        assert_eq!(twice.matches(BEGIN).count(), 1);
        assert!(twice.contains("10.0.0.9/32    md5"));
        assert!(!twice.contains("127.0.0.3/32"));
        assert_eq!(without_block(&twice).as_deref(), Some(LAB));
        assert_eq!(without_block(LAB), None);
    }

    #[test]
    fn odd_names_and_ipv6() {
        let peer: IpAddr = "2001:db8::7".parse().unwrap();
        let b = block("fusion pbx", "re\"pl", peer, "scram-sha-256");
        assert_eq!(
            b[2],
            "host    \"fusion pbx\"    \"re\"\"pl\"    2001:db8::7/128    scram-sha-256"
        );
    }
}
