//! After a flip: is the new active node serving? Two counts are sampled on it over SSH, each
//! by a configurable command:
//! - **registrations** (`failover.registrations_command`; FS PBX: `fs_cli -x 'show
//!   registrations'`), sampled every `failover.registrations_interval` for
//!   `failover.registrations_watch`;
//! - **calls** (`failover.calls_command`; FS PBX: `fs_cli -x 'show calls count'`), every
//!   `failover.calls_interval` for `failover.calls_watch`.
//!
//! One background task ([`watch`]) samples both over one SSH session; each sample is one audit
//! record whose event is the count's name (`registrations`, `calls`), which `failover status`
//! reads back ([`samples_in`]). [`count_total`] is the pure rule turning a command's output
//! into a count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::config::{FailoverSpec, NodeSpec};
use crate::failover::{AuditLog, AuditRecord};
use crate::ssh::SshSession;

/// What is counted on the new active node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CountKind {
    /// Phone registrations.
    Registrations,
    /// Calls in progress.
    Calls,
}

impl CountKind {
    /// Both kinds, registrations first.
    pub const ALL: [CountKind; 2] = [CountKind::Registrations, CountKind::Calls];

    /// The audit log event of its samples (`registrations`, `calls`).
    pub fn event(self) -> &'static str {
        match self {
            CountKind::Registrations => "registrations",
            CountKind::Calls => "calls",
        }
    }

    /// The prefix of its settings' keys (`failover.registrations`, `failover.calls`).
    fn key(self) -> &'static str {
        match self {
            CountKind::Registrations => "failover.registrations",
            CountKind::Calls => "failover.calls",
        }
    }
}

impl std::fmt::Display for CountKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.event())
    }
}

/// One sample of a count on a node after a flip (the kind is the audit record's event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountSample {
    /// The node sampled (the new active node).
    pub node: String,
    /// The count, when the command ran and its output could be counted.
    pub count: Option<u64>,
    /// Seconds since the flip finished.
    pub seconds_since_flip: f64,
    /// Why there is no count (unreachable, command failed, output not understood).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A registrations sample (see [`CountSample`]).
pub type RegistrationSample = CountSample;

/// Reads a count from a command's output.
///
/// With no `pattern`, the number of the last non-empty line when it reads `N total.` (what
/// FreeSWITCH's `show registrations` and `show calls count` end with). With a `pattern`, its
/// first capture group in the last line that matches. `None` when nothing matches or the
/// capture is not a number.
pub fn count_total(output: &str, pattern: Option<&Regex>) -> Option<u64> {
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

/// What to run for one count and how long to watch (from `[failover]`).
#[derive(Debug, Clone)]
pub struct CountWatch {
    /// What is counted.
    pub kind: CountKind,
    /// The shell command run on the node.
    pub command: String,
    /// The counting rule (see [`count_total`]).
    pub pattern: Option<Regex>,
    /// How long after the flip to sample.
    pub watch: Duration,
    /// Time between samples.
    pub interval: Duration,
    /// The longest one sample (connection and command) may take.
    pub timeout: Duration,
}

impl CountWatch {
    /// The watch of `kind` as `[failover]` configures it; `Ok(None)` when its watch is `0s`,
    /// `Err` (the key and why) when its pattern does not compile (validation refuses that, but
    /// a configuration built in code may not have been validated).
    pub fn from_spec(f: &FailoverSpec, kind: CountKind) -> Result<Option<CountWatch>, String> {
        let (command, pattern, watch, interval) = match kind {
            CountKind::Registrations => (
                &f.registrations_command,
                &f.registrations_pattern,
                f.registrations_watch,
                f.registrations_interval,
            ),
            CountKind::Calls => (
                &f.calls_command,
                &f.calls_pattern,
                f.calls_watch,
                f.calls_interval,
            ),
        };
        if watch.is_zero() {
            return Ok(None);
        }
        let pattern = pattern
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| format!("{}_pattern: {e}", kind.key()))?;
        Ok(Some(CountWatch {
            kind,
            command: command.clone(),
            pattern,
            watch,
            interval,
            timeout: f.fence_timeout,
        }))
    }
}

/// Takes one sample on `node` over `session` (opening one when there is none), bounded by
/// `w.timeout`. A session that failed is dropped so the next sample reconnects.
async fn sample_once(
    node: &NodeSpec,
    w: &CountWatch,
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
        count_total(&out.stdout_str(), w.pattern.as_ref()).ok_or_else(|| {
            format!(
                "no count in the output of `{}` (see {}_pattern)",
                w.command,
                w.kind.key()
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

/// Writes one sample of `kind` to `audit`.
fn record(audit: &AuditLog, kind: CountKind, sample: &CountSample) {
    let (level, message) = match (&sample.count, &sample.error) {
        (Some(n), _) => (
            "info",
            format!(
                "{n} {kind} on node {} {:.0} s after the flip",
                sample.node, sample.seconds_since_flip
            ),
        ),
        (None, e) => (
            "warning",
            format!(
                "{kind} on node {} not counted: {}",
                sample.node,
                e.as_deref().unwrap_or("unknown")
            ),
        ),
    };
    audit.write(
        &AuditRecord::new(kind.event(), level, message)
            .node(&sample.node)
            .detail(sample),
    );
}

/// Samples `node` for every watch in `watches`, each every `interval` for `watch` after
/// `flipped_at`, over one SSH session, writing each sample to `audit`. Meant to run as a
/// background task: it never fails, it records.
pub async fn watch(
    node: NodeSpec,
    watches: Vec<CountWatch>,
    flipped_at: Instant,
    audit: Arc<AuditLog>,
) {
    let start = tokio::time::Instant::from_std(flipped_at);
    // When each watch samples next; `None` once its watch is over.
    let mut next: Vec<Option<tokio::time::Instant>> = watches.iter().map(|_| Some(start)).collect();
    let mut session = None;
    while let Some(due) = next.iter().flatten().min().copied() {
        tokio::time::sleep_until(due).await;
        for (w, slot) in watches.iter().zip(next.iter_mut()) {
            if slot.is_none_or(|t| t > due) {
                continue;
            }
            let result = sample_once(&node, w, &mut session).await;
            let since = flipped_at.elapsed();
            let sample = CountSample {
                node: node.name.clone(),
                count: result.as_ref().ok().copied(),
                seconds_since_flip: (since.as_secs_f64() * 10.0).round() / 10.0,
                error: result.err(),
            };
            record(&audit, w.kind, &sample);
            // A slow sample (up to `w.timeout`) delays the next one; missed ticks are not
            // caught up.
            let after = (due + w.interval).max(tokio::time::Instant::now());
            *slot = (after.duration_since(start) <= w.watch).then_some(after);
        }
    }
    if let Some(s) = session {
        let _ = tokio::time::timeout(Duration::from_secs(1), s.close()).await;
    }
}

/// The samples of `kind` among audit records, oldest first.
pub fn samples_in(records: &[AuditRecord], kind: CountKind) -> Vec<CountSample> {
    records
        .iter()
        .filter(|r| r.event == kind.event())
        .filter_map(|r| serde_json::from_value(r.detail.clone()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FS_REGISTRATIONS: &str = "reg_user,realm,token,url,expires,network_ip,network_port,network_proto,hostname,metadata\n\
        100,pbx.example.com,abc,sofia/internal/sip:100@10.0.0.5:5060,1700000000,10.0.0.5,5060,udp,pbx,\n\
        101,pbx.example.com,def,sofia/internal/sip:101@10.0.0.6:5060,1700000000,10.0.0.6,5060,udp,pbx,\n\
        \n2 total.\n\n";

    #[test]
    fn the_default_rule_reads_the_trailing_total_line() {
        assert_eq!(count_total(FS_REGISTRATIONS, None), Some(2));
        // `fs_cli -x 'show calls count'` prints a blank line, then the total.
        assert_eq!(count_total("\n7 total.\n\n", None), Some(7));
        assert_eq!(count_total("0 total.\n", None), Some(0));
        assert_eq!(count_total("  17 total.  ", None), Some(17));
    }

    #[test]
    fn the_default_rule_refuses_anything_else() {
        assert_eq!(count_total("", None), None);
        assert_eq!(count_total("-ERR no reply\n", None), None);
        assert_eq!(count_total("many total.\n", None), None);
        // The total must be the last line, not somewhere in the middle.
        assert_eq!(count_total("3 total.\nsomething else\n", None), None);
    }

    #[test]
    fn a_pattern_counts_its_first_capture_in_the_last_matching_line() {
        let re = Regex::new(r"^Registered: (\d+)$").unwrap();
        assert_eq!(
            count_total("Registered: 1\nRegistered: 4\nbye\n", Some(&re)),
            Some(4)
        );
        assert_eq!(count_total("nothing here\n", Some(&re)), None);
        let re = Regex::new(r"users=(\w+)").unwrap();
        assert_eq!(count_total("users=none\n", Some(&re)), None);
    }

    #[test]
    fn samples_are_read_back_per_kind_from_audit_records() {
        let s = |n| CountSample {
            node: "b".into(),
            count: Some(n),
            seconds_since_flip: 4.5,
            error: None,
        };
        let records = vec![
            AuditRecord::new("flip", "info", "x").node("b"),
            AuditRecord::new("registrations", "info", "y")
                .node("b")
                .detail(s(3)),
            AuditRecord::new("calls", "info", "z")
                .node("b")
                .detail(s(2)),
        ];
        assert_eq!(samples_in(&records, CountKind::Registrations), vec![s(3)]);
        assert_eq!(samples_in(&records, CountKind::Calls), vec![s(2)]);
    }

    #[test]
    fn watches_come_from_the_failover_section() {
        let mut f = FailoverSpec::default();
        let w = CountWatch::from_spec(&f, CountKind::Calls)
            .unwrap()
            .unwrap();
        assert_eq!(w.command, "fs_cli -x 'show calls count'");
        assert_eq!((w.watch, w.interval), (f.calls_watch, f.calls_interval));
        assert_eq!(w.timeout, f.fence_timeout);
        f.registrations_watch = Duration::ZERO;
        assert!(
            CountWatch::from_spec(&f, CountKind::Registrations)
                .unwrap()
                .is_none()
        );
        f.calls_pattern = Some("(unclosed".into());
        let e = CountWatch::from_spec(&f, CountKind::Calls).unwrap_err();
        assert!(e.starts_with("failover.calls_pattern"), "{e}");
    }
}
