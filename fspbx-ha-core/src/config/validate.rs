//! Semantic validation of a parsed configuration. Pure: no file or network access, so it runs
//! in milliseconds and is tested without servers. Every problem is collected, not just the first.

use std::collections::HashSet;
use std::time::Duration;

use super::{ClusterConfig, ConfigProblem, NodeSpec};

/// All problems of `config`, in key order.
pub(crate) fn validate(config: &ClusterConfig) -> Vec<ConfigProblem> {
    let mut v = Validator::default();
    v.nodes(&config.nodes);
    v.floating(config);
    v.folders(config);
    v.policy(config);
    v.replication(config);
    v.failover(config);
    v.upgrade(config);
    v.problems
}

#[derive(Default)]
struct Validator {
    problems: Vec<ConfigProblem>,
}

impl Validator {
    fn push(
        &mut self,
        key: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) {
        self.problems.push(ConfigProblem::new(key, expected, got));
    }

    fn port(&mut self, key: String, port: u16) {
        if port == 0 {
            self.push(key, "1..65535", "0");
        }
    }

    fn non_empty(&mut self, key: String, value: &str, what: &str) {
        if value.trim().is_empty() {
            self.push(key, what, "an empty string");
        }
    }

    fn positive(&mut self, key: String, d: Duration) {
        if d.is_zero() {
            self.push(key, "a duration above zero (e.g. \"10s\")", "0s");
        }
    }

    fn nodes(&mut self, nodes: &[NodeSpec]) {
        if nodes.len() != 2 {
            self.push(
                "nodes",
                "exactly 2 [[nodes]] entries (primary first, standby second)",
                format!("{} entries", nodes.len()),
            );
        }
        let mut names = HashSet::new();
        for (i, n) in nodes.iter().enumerate() {
            let k = |s: &str| format!("nodes[{i}].{s}");
            if !is_node_name(&n.name) {
                self.push(
                    k("name"),
                    "1-32 characters of a-z, 0-9, '-' or '_'",
                    format!("{:?}", n.name),
                );
            } else if !names.insert(n.name.as_str()) {
                self.push(
                    k("name"),
                    "a name no other node has",
                    format!("{:?}", n.name),
                );
            }
            if !is_dns_name(&n.hostname) {
                self.push(
                    k("hostname"),
                    "a fully qualified host name such as server1.example.com",
                    format!("{:?}", n.hostname),
                );
            }
            if n.addresses.is_empty() {
                self.push(k("addresses"), "at least one IPv4 or IPv6 address", "[]");
            }
            // ssh
            self.non_empty(k("ssh.host"), &n.ssh.host, "a host name or address");
            self.port(k("ssh.port"), n.ssh.port);
            self.non_empty(k("ssh.user"), &n.ssh.user, "a user name");
            if n.ssh.identity.as_os_str().is_empty() {
                self.push(
                    k("ssh.identity"),
                    "the path of a private key file",
                    "an empty path",
                );
            }
            if n.ssh.known_hosts.as_os_str().is_empty() {
                self.push(
                    k("ssh.known_hosts"),
                    "the path of a known_hosts file",
                    "an empty path",
                );
            }
            self.positive(k("ssh.connect_timeout"), n.ssh.connect_timeout);
            self.positive(k("ssh.command_timeout"), n.ssh.command_timeout);
            self.positive(k("ssh.keepalive_interval"), n.ssh.keepalive_interval);
            if n.ssh.connect_attempts == 0 || n.ssh.connect_attempts > 20 {
                self.push(
                    k("ssh.connect_attempts"),
                    "1..20",
                    n.ssh.connect_attempts.to_string(),
                );
            }
            // postgres
            self.non_empty(
                k("postgres.host"),
                &n.postgres.host,
                "a host name or address",
            );
            self.port(k("postgres.port"), n.postgres.port);
            self.non_empty(k("postgres.dbname"), &n.postgres.dbname, "a database name");
            self.non_empty(k("postgres.user"), &n.postgres.user, "a role name");
            self.positive(k("postgres.connect_timeout"), n.postgres.connect_timeout);
            // syncthing
            if let Some(root) = n.syncthing.as_ref().and_then(|st| st.folder_root.as_ref())
                && !root.is_absolute()
            {
                self.push(
                    k("syncthing.folder_root"),
                    "an absolute path",
                    format!("{root:?}"),
                );
            }
            if let Some(st) = &n.syncthing
                && !(st.url.starts_with("http://") || st.url.starts_with("https://"))
            {
                self.push(
                    k("syncthing.url"),
                    "an http:// or https:// URL",
                    format!("{:?}", st.url),
                );
            }
            // probes
            self.positive(k("probes.timeout"), n.probes.timeout);
            if let Some(sip) = &n.probes.sip {
                self.non_empty(k("probes.sip.host"), &sip.host, "a host name or address");
                self.port(k("probes.sip.port"), sip.port);
                if let Some(t) = sip.timeout {
                    self.positive(k("probes.sip.timeout"), t);
                }
            }
            if let Some(http) = &n.probes.http {
                if let Some(t) = http.timeout {
                    self.positive(k("probes.http.timeout"), t);
                }
                if let Some(b) = &http.body_contains {
                    self.non_empty(
                        k("probes.http.body_contains"),
                        b,
                        "text the body must contain (or no key)",
                    );
                }
            }
            if let Some(http) = &n.probes.http {
                if !(http.url.starts_with("http://") || http.url.starts_with("https://")) {
                    self.push(
                        k("probes.http.url"),
                        "an http:// or https:// URL",
                        format!("{:?}", http.url),
                    );
                }
                if !(100..=599).contains(&http.status_min)
                    || !(100..=599).contains(&http.status_max)
                    || http.status_min > http.status_max
                {
                    self.push(
                        k("probes.http.status_min"),
                        "100 <= status_min <= status_max <= 599",
                        format!("{}..{}", http.status_min, http.status_max),
                    );
                }
            }
        }
    }

    fn floating(&mut self, c: &ClusterConfig) {
        let f = &c.floating;
        let zone = f.zone.trim_end_matches('.').to_ascii_lowercase();
        let name = f.name.trim_end_matches('.').to_ascii_lowercase();
        if !is_dns_name(&zone) {
            self.push(
                "floating.zone",
                "a DNS zone such as example.com",
                format!("{:?}", f.zone),
            );
        }
        if !is_dns_name(&name) {
            self.push(
                "floating.name",
                "a DNS name such as pbx.example.com",
                format!("{:?}", f.name),
            );
        } else if !(name == zone || name.ends_with(&format!(".{zone}"))) {
            self.push(
                "floating.name",
                format!("a name inside the zone {zone:?}"),
                format!("{:?}", f.name),
            );
        }
        if f.ttl == 0 || f.ttl > 86_400 {
            self.push(
                "floating.ttl",
                "1..86400 seconds (30-60 suggested)",
                f.ttl.to_string(),
            );
        }
        for (i, ns) in f.nameservers.iter().enumerate() {
            if ns.trim().is_empty() {
                self.push(
                    format!("floating.nameservers[{i}]"),
                    "host or host:port",
                    "an empty string",
                );
            }
        }
        for (i, n) in c.nodes.iter().enumerate() {
            let h = n.hostname.trim_end_matches('.').to_ascii_lowercase();
            if h == name {
                self.push(
                    format!("nodes[{i}].hostname"),
                    "a name different from floating.name (each node keeps its own record)",
                    format!("{:?}", n.hostname),
                );
            }
        }
    }

    fn folders(&mut self, c: &ClusterConfig) {
        let mut paths = HashSet::new();
        let mut ids = HashSet::new();
        for (i, f) in c.folders.iter().enumerate() {
            if !f.path.is_absolute() {
                self.push(
                    format!("folders[{i}].path"),
                    "an absolute path",
                    format!("{:?}", f.path),
                );
            } else if !paths.insert(f.path.clone()) {
                self.push(
                    format!("folders[{i}].path"),
                    "a path listed once",
                    format!("{:?}", f.path),
                );
            }
            if let Some(id) = &f.id {
                if id.is_empty() || id.len() > 64 || id.chars().any(|c| c.is_whitespace()) {
                    self.push(
                        format!("folders[{i}].id"),
                        "1-64 characters without spaces",
                        format!("{id:?}"),
                    );
                } else if !ids.insert(id.clone()) {
                    self.push(
                        format!("folders[{i}].id"),
                        "an id used once",
                        format!("{id:?}"),
                    );
                }
            }
            if f.rescan_interval_s == 0 {
                self.push(
                    format!("folders[{i}].rescan_interval_s"),
                    "seconds above zero (FS PBX uses 300 or 3600)",
                    "0",
                );
            }
        }
    }

    fn policy(&mut self, c: &ClusterConfig) {
        let p = &c.policy;
        self.positive("policy.interval".into(), p.interval);
        if p.rise == 0 {
            self.push("policy.rise", "1 or more", "0");
        }
        if p.fall == 0 {
            self.push("policy.fall", "1 or more", "0");
        }
    }
}

impl Validator {
    fn replication(&mut self, c: &ClusterConfig) {
        let r = &c.replication;
        let names = [
            ("replication.publication_a", &r.publication_a),
            ("replication.publication_b", &r.publication_b),
            ("replication.subscription_a_to_b", &r.subscription_a_to_b),
            ("replication.subscription_b_to_a", &r.subscription_b_to_a),
            ("replication.role", &r.role),
            ("replication.heartbeat_schema", &r.heartbeat_schema),
        ];
        for (key, value) in names {
            if value.is_empty() || value.len() > 63 || value.contains('\0') {
                self.push(key, "an SQL name of 1-63 bytes", format!("{value:?}"));
            }
        }
        for (key, value) in [
            ("replication.subscription_a_to_b", &r.subscription_a_to_b),
            ("replication.subscription_b_to_a", &r.subscription_b_to_a),
        ] {
            // The subscription's slot is named after it; slot names allow only these.
            if !value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                self.push(
                    key,
                    "a-z, 0-9 and '_' only (it names the replication slot)",
                    format!("{value:?}"),
                );
            }
        }
        if r.publication_a == r.publication_b {
            self.push(
                "replication.publication_b",
                "a name different from publication_a",
                format!("{:?}", r.publication_b),
            );
        }
        if r.subscription_a_to_b == r.subscription_b_to_a {
            self.push(
                "replication.subscription_b_to_a",
                "a name different from subscription_a_to_b",
                format!("{:?}", r.subscription_b_to_a),
            );
        }
        if !super::HBA_METHODS.contains(&r.hba_method.as_str()) {
            self.push(
                "replication.hba_method",
                super::HBA_METHODS.join(", "),
                format!("{:?}", r.hba_method),
            );
        }
        self.positive("replication.heartbeat_timeout".into(), r.heartbeat_timeout);
        self.positive("replication.copy_timeout".into(), r.copy_timeout);
        self.non_empty(
            "replication.restart_command".into(),
            &r.restart_command,
            "a shell command",
        );
        self.non_empty(
            "replication.log_command".into(),
            &r.log_command,
            "a shell command printing the end of the PostgreSQL log",
        );
        if r.pg_dump_command.is_empty() {
            self.push(
                "replication.pg_dump_command",
                "a program and its leading arguments",
                "[]",
            );
        }
        if r.psql_command.is_empty() {
            self.push(
                "replication.psql_command",
                "a program and its leading arguments",
                "[]",
            );
        }
        if r.slot_max_retained.bytes() == 0 {
            self.push(
                "replication.slot_max_retained",
                "a size above zero (e.g. \"1GB\")",
                "0",
            );
        }
        self.sequences(&r.sequences, c.nodes.len());
    }

    fn sequences(&mut self, s: &super::SequencesSpec, nodes: usize) {
        if s.margin < 0 {
            self.push(
                "replication.sequences.margin",
                "0 or more",
                s.margin.to_string(),
            );
        }
        if s.strategy != super::SequenceStrategy::Interleave {
            return;
        }
        if !(2..=1_000_000).contains(&s.step) {
            self.push(
                "replication.sequences.step",
                "2..=1000000 (2 for a pair: node A odd, node B even)",
                s.step.to_string(),
            );
            return;
        }
        if s.offsets.len() != nodes {
            self.push(
                "replication.sequences.offsets",
                format!("one offset per node ({nodes}), in [[nodes]] order, e.g. [1, 2]"),
                format!("{:?}", s.offsets),
            );
        }
        let mut seen = HashSet::new();
        for (i, o) in s.offsets.iter().enumerate() {
            if !(1..=s.step).contains(o) {
                self.push(
                    format!("replication.sequences.offsets[{i}]"),
                    format!("1..={} (at most the step)", s.step),
                    o.to_string(),
                );
            } else if !seen.insert(o.rem_euclid(s.step)) {
                self.push(
                    format!("replication.sequences.offsets[{i}]"),
                    "an offset no other node uses (the nodes' values would collide)",
                    o.to_string(),
                );
            }
        }
    }
}

impl Validator {
    fn failover(&mut self, c: &ClusterConfig) {
        let f = &c.failover;
        for (i, cmd) in f.fence_commands.iter().enumerate() {
            self.non_empty(
                format!("failover.fence_commands[{i}]"),
                cmd,
                "a shell command",
            );
        }
        self.positive("failover.fence_timeout".into(), f.fence_timeout);
        self.positive("failover.record_refresh".into(), f.record_refresh);
        self.positive("failover.flip_timeout".into(), f.flip_timeout);
        self.positive(
            "failover.preconditions_interval".into(),
            f.preconditions_interval,
        );
        if let Some(cmd) = &f.notify_command {
            self.non_empty(
                "failover.notify_command".into(),
                cmd,
                "a shell command (or no key)",
            );
        }
        if f.audit_log.as_os_str().is_empty() {
            self.push(
                "failover.audit_log",
                "the path of a file to append to",
                "an empty path",
            );
        }
        for (kind, command, pattern, interval, what) in [
            (
                "registrations",
                &f.registrations_command,
                &f.registrations_pattern,
                f.registrations_interval,
                "a shell command printing the node's registrations",
            ),
            (
                "calls",
                &f.calls_command,
                &f.calls_pattern,
                f.calls_interval,
                "a shell command printing the node's calls",
            ),
        ] {
            self.non_empty(format!("failover.{kind}_command"), command, what);
            self.positive(format!("failover.{kind}_interval"), interval);
            if let Some(p) = pattern {
                const EXPECTED: &str =
                    "a regular expression with exactly one capture group, e.g. '^(\\d+) total\\.$'";
                match regex::Regex::new(p) {
                    Err(e) => self.push(
                        format!("failover.{kind}_pattern"),
                        EXPECTED,
                        format!("{p:?}, which does not compile: {e}"),
                    ),
                    Ok(re) if re.captures_len() != 2 => self.push(
                        format!("failover.{kind}_pattern"),
                        EXPECTED,
                        format!("{p:?}, with {} capture groups", re.captures_len() - 1),
                    ),
                    Ok(_) => {}
                }
            }
        }
    }
}

fn is_node_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A host name: dot-separated labels of 1-63 letters, digits and hyphens, 253 characters in all.
pub(crate) fn is_dns_name(s: &str) -> bool {
    let s = s.trim_end_matches('.');
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

impl Validator {
    fn upgrade(&mut self, c: &ClusterConfig) {
        let u = &c.upgrade;
        if !u.workdir.starts_with('/') {
            self.push(
                "upgrade.workdir",
                "an absolute path on the nodes (FS PBX: /var/www/fspbx)",
                format!("{:?}", u.workdir),
            );
        }
        if !u.first.eq_ignore_ascii_case(super::FIRST_ACTIVE) && c.node(&u.first).is_none() {
            let names: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
            self.push(
                "upgrade.first",
                format!("\"active\" or a node name ({})", names.join(", ")),
                format!("{:?}", u.first),
            );
        }
        for (key, cmd) in [
            ("upgrade.update_code", &u.update_code),
            ("upgrade.migrate", &u.migrate),
            ("upgrade.delete_last_batch", &u.delete_last_batch),
            ("upgrade.refresh_subscriptions", &u.refresh_subscriptions),
        ] {
            self.non_empty(format!("{key}.run"), &cmd.run, "a shell command");
            if let Some(t) = cmd.timeout {
                self.positive(format!("{key}.timeout"), t);
            }
        }
        self.positive("upgrade.command_timeout".into(), u.command_timeout);
        self.positive("upgrade.sync_timeout".into(), u.sync_timeout);
        if let Some(p) = &u.state_file
            && p.as_os_str().is_empty()
        {
            self.push("upgrade.state_file", "a file path", "an empty string");
        }
    }
}
