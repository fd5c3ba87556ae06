//! After a flip: are phones registering on the new active node? A configurable command run
//! over SSH on that node (FS PBX: `fs_cli -x 'show registrations'`) is sampled for
//! `failover.registrations_watch`, every `failover.registrations_interval`; each sample is one
//! `registrations` record in the audit log, which `failover status` reads back.
//!
//! [`count_registrations`] is the pure rule turning the command's output into a count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::config::NodeSpec;
use crate::failover::{AuditLog, AuditRecord};
use crate::ssh::SshSession;

/// The audit log event of one sample.
pub const EVENT: &str = "registrations";

/// One sample of the registrations on a node after a flip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationSample {
    /// The node sampled (the new active node).
    pub node: String,
    /// The number of registrations, when the command ran and its output could be counted.
    pub count: Option<u64>,
    /// Seconds since the flip finished.
    pub seconds_since_flip: f64,
    /// Why there is no count (unreachable, command failed, output not understood).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Counts registrations in a command's output.
///
/// With no `pattern`, the number of the last non-empty line when it reads `N total.` (what
/// FreeSWITCH's `show registrations` ends with). With a `pattern`, its first capture group in
/// the last line that matches. `None` when nothing matches or the capture is not a number.
pub fn count_registrations(output: &str, pattern: Option<&Regex>) -> Option<u64> {
    match pattern {
        None => {
            let last = output.lines().map(str::trim).rfind(|l| !l.is_empty())?;
            let n = last.strip_suffix("total.")?.trim();
            n.parse().ok()
        }
        Some(re) => output
            .lines()
            .rev()
            .find_map(|l| re.captures(l))
            .and_then(|c| c.get(1))
            .and_then(|m| m.as_str().trim().parse().ok()),
    }
}

/// What to run and how long to watch (from `[failover]`).
#[derive(Debug, Clone)]
pub struct RegistrationsWatch {
    /// The shell command run on the node.
    pub command: String,
    /// The counting rule (see [`count_registrations`]).
    pub pattern: Option<Regex>,
    /// How long after the flip to sample.
    pub watch: Duration,
    /// Time between samples.
    pub interval: Duration,
    /// The longest one sample (connection and command) may take.
    pub timeout: Duration,
}

/// Takes one sample on `node` over `session` (opening one when there is none), bounded by
/// `w.timeout`. A session that failed is dropped so the next sample reconnects.
async fn sample_once(
    node: &NodeSpec,
    w: &RegistrationsWatch,
    session: &mut Option<SshSession>,
) -> Result<u64, String> {
    let run = async {
        if session.is_none() {
            let mut target = node.ssh.target(&node.name);
            target.connect_attempts = 1;
            target.connect_timeout = target.connect_timeout.min(w.timeout);
            *session = Some(
                SshSession::connect(&target)
                    .await
                    .map_err(|e| format!("unreachable: {e}"))?,
            );
        }
        let s = session.as_ref().expect("just connected");
        let out = s
            .exec_with_timeout(&w.command, w.timeout)
            .await
            .map_err(|e| e.to_string())?;
        if !out.success() {
            return Err(format!("`{}` {}", w.command, out.status_text()));
        }
        count_registrations(&out.stdout_str(), w.pattern.as_ref()).ok_or_else(|| {
            format!(
                "no registration count in the output of `{}` (see failover.registrations_pattern)",
                w.command
            )
        })
    };
    match tokio::time::timeout(w.timeout, run).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => {
            *session = None;
            Err(e)
        }
        Err(_) => {
            *session = None;
            Err(format!("no sample within {:?}", w.timeout))
        }
    }
}

/// Samples `node` every `w.interval` for `w.watch` after `flipped_at`, writing each sample to
/// `audit`. Meant to run as a background task: it never fails, it records.
pub async fn watch(
    node: NodeSpec,
    w: RegistrationsWatch,
    flipped_at: Instant,
    audit: Arc<AuditLog>,
) {
    let mut session = None;
    let mut next = tokio::time::Instant::from_std(flipped_at);
    loop {
        tokio::time::sleep_until(next).await;
        let result = sample_once(&node, &w, &mut session).await;
        let since = flipped_at.elapsed();
        let sample = RegistrationSample {
            node: node.name.clone(),
            count: result.as_ref().ok().copied(),
            seconds_since_flip: (since.as_secs_f64() * 10.0).round() / 10.0,
            error: result.err(),
        };
        let (level, message) = match (&sample.count, &sample.error) {
            (Some(n), _) => (
                "info",
                format!(
                    "{n} registrations on node {} {:.0} s after the flip",
                    node.name, sample.seconds_since_flip
                ),
            ),
            (None, e) => (
                "warning",
                format!(
                    "registrations on node {} not counted: {}",
                    node.name,
                    e.as_deref().unwrap_or("unknown")
                ),
            ),
        };
        audit.write(
            &AuditRecord::new(EVENT, level, message)
                .node(&node.name)
                .detail(&sample),
        );
        // A slow sample (up to `w.timeout`) delays the next one; missed ticks are not caught up.
        next = (next + w.interval).max(tokio::time::Instant::now());
        if next.duration_since(tokio::time::Instant::from_std(flipped_at)) > w.watch {
            break;
        }
    }
    if let Some(s) = session {
        let _ = tokio::time::timeout(Duration::from_secs(1), s.close()).await;
    }
}

/// The `registrations` samples among audit records, oldest first.
pub fn samples_in(records: &[AuditRecord]) -> Vec<RegistrationSample> {
    records
        .iter()
        .filter(|r| r.event == EVENT)
        .filter_map(|r| serde_json::from_value(r.detail.clone()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FS_OUTPUT: &str = "reg_user,realm,token,url,expires,network_ip,network_port,network_proto,hostname,metadata\n\
        100,pbx.example.com,abc,sofia/internal/sip:100@10.0.0.5:5060,1700000000,10.0.0.5,5060,udp,pbx,\n\
        101,pbx.example.com,def,sofia/internal/sip:101@10.0.0.6:5060,1700000000,10.0.0.6,5060,udp,pbx,\n\
        \n2 total.\n\n";

    #[test]
    fn the_default_rule_reads_the_trailing_total_line() {
        assert_eq!(count_registrations(FS_OUTPUT, None), Some(2));
        assert_eq!(count_registrations("0 total.\n", None), Some(0));
        assert_eq!(count_registrations("  17 total.  ", None), Some(17));
    }

    #[test]
    fn the_default_rule_refuses_anything_else() {
        assert_eq!(count_registrations("", None), None);
        assert_eq!(count_registrations("-ERR no reply\n", None), None);
        assert_eq!(count_registrations("many total.\n", None), None);
        // The total must be the last line, not somewhere in the middle.
        assert_eq!(
            count_registrations("3 total.\nsomething else\n", None),
            None
        );
    }

    #[test]
    fn a_pattern_counts_its_first_capture_in_the_last_matching_line() {
        let re = Regex::new(r"^Registered: (\d+)$").unwrap();
        assert_eq!(
            count_registrations("Registered: 1\nRegistered: 4\nbye\n", Some(&re)),
            Some(4)
        );
        assert_eq!(count_registrations("nothing here\n", Some(&re)), None);
        let re = Regex::new(r"users=(\w+)").unwrap();
        assert_eq!(count_registrations("users=none\n", Some(&re)), None);
    }

    #[test]
    fn samples_are_read_back_from_audit_records() {
        let s = RegistrationSample {
            node: "b".into(),
            count: Some(3),
            seconds_since_flip: 4.5,
            error: None,
        };
        let records = vec![
            AuditRecord::new("flip", "info", "x").node("b"),
            AuditRecord::new(EVENT, "info", "y").node("b").detail(&s),
        ];
        assert_eq!(samples_in(&records), vec![s]);
    }
}
