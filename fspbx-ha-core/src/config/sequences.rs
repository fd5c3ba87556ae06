//! How the pair keeps serial and identity columns from colliding (`[replication.sequences]`),
//! and the size type of `replication.slot_max_retained`.
//!
//! Logical replication copies rows, never sequence values. Two strategies:
//!
//! - `interleave`: every node draws from its own residue class (`INCREMENT BY step`, values
//!   `≡ offset (mod step)`): node A odd, node B even by default. Inserts on both nodes at once
//!   never collide, and a switchover has nothing to move.
//! - `sync` (default, nothing changes on the servers until a switchover): before a planned
//!   switchover the target's sequences are moved past the source's last values plus `margin`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The strategy (`replication.sequences.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SequenceStrategy {
    /// Each node draws values `≡ offset (mod step)`.
    Interleave,
    /// The target's sequences are moved past the source's before a switchover.
    Sync,
}

impl SequenceStrategy {
    /// `interleave` or `sync`.
    pub fn as_str(self) -> &'static str {
        match self {
            SequenceStrategy::Interleave => "interleave",
            SequenceStrategy::Sync => "sync",
        }
    }
}

/// `[replication.sequences]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequencesSpec {
    /// `interleave` or `sync`.
    #[serde(default = "default_strategy")]
    pub strategy: SequenceStrategy,
    /// Interleave: the increment of every serial/identity sequence (2 for a pair; more leaves
    /// room for further nodes).
    #[serde(default = "default_step")]
    pub step: i64,
    /// Interleave: each node's offset, in `[[nodes]]` order (1..=step, distinct modulo step):
    /// node A draws `offset[0], offset[0]+step, …`.
    #[serde(default = "default_offsets")]
    pub offsets: Vec<i64>,
    /// Sync: how far past the source's last value the target's sequences are set (room for
    /// rows the old node still takes until clients follow the record). Interleave uses it only
    /// for sequences that are not interleaved yet when a switchover runs.
    #[serde(default = "default_margin")]
    pub margin: i64,
}

impl Default for SequencesSpec {
    fn default() -> Self {
        SequencesSpec {
            strategy: default_strategy(),
            step: default_step(),
            offsets: default_offsets(),
            margin: default_margin(),
        }
    }
}

impl SequencesSpec {
    /// Node `index`'s offset (interleave).
    pub fn offset(&self, index: usize) -> i64 {
        self.offsets.get(index).copied().unwrap_or(index as i64 + 1)
    }
}

fn default_strategy() -> SequenceStrategy {
    SequenceStrategy::Sync
}
fn default_step() -> i64 {
    2
}
fn default_offsets() -> Vec<i64> {
    vec![1, 2]
}
fn default_margin() -> i64 {
    1000
}

/// A size in bytes, written like PostgreSQL's settings: `"1GB"`, `"512MB"`, `"64kB"`, `"100"`
/// (units are powers of 1024; `KiB`/`MiB`/`GiB`/`TiB` and lower case are accepted too), or a
/// bare integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `"1GB"`, `"1.5 GiB"`, `"512MB"`, `"100"`.
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("{text:?} is not a size (expected e.g. \"1GB\", \"512MB\")"))?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            "t" | "tb" | "tib" => 1 << 40,
            other => {
                return Err(format!(
                    "unknown unit {other:?} in {text:?} (expected B, kB, MB, GB or TB)"
                ));
            }
        };
        let bytes = value * mult as f64;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(format!("{text:?} is out of range"));
        }
        Ok(ByteSize(bytes.round() as u64))
    }

    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

/// Bytes in a human unit (`1.0 GB`, `12.3 MB`, `512 B`), powers of 1024.
pub fn human_bytes(bytes: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v.abs() >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, m) in [
            ("TB", 1u64 << 40),
            ("GB", 1 << 30),
            ("MB", 1 << 20),
            ("kB", 1 << 10),
        ] {
            if b >= m && b.is_multiple_of(m) {
                return write!(f, "{}{unit}", b / m);
            }
        }
        write!(f, "{b}B")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(ByteSize(n)),
            Raw::Text(t) => ByteSize::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_postgresql() {
        assert_eq!(ByteSize::parse("1GB").unwrap().bytes(), 1 << 30);
        assert_eq!(ByteSize::parse("512MB").unwrap().bytes(), 512 << 20);
        assert_eq!(ByteSize::parse("64kB").unwrap().bytes(), 64 << 10);
        assert_eq!(ByteSize::parse(" 1.5 GiB ").unwrap().bytes(), 3 << 29);
        assert_eq!(ByteSize::parse("100").unwrap().bytes(), 100);
        assert!(ByteSize::parse("1XB").unwrap_err().contains("unknown unit"));
        assert!(ByteSize::parse("GB").is_err());
        assert!(ByteSize::parse("-1GB").is_err());
        assert_eq!(ByteSize(1 << 30).to_string(), "1GB");
        assert_eq!(ByteSize(1500).to_string(), "1500B");
        assert_eq!(human_bytes(3 << 29), "1.5 GB");
        assert_eq!(human_bytes(12), "12 B");
    }

    #[test]
    fn bad_sequence_settings_name_their_key() {
        use crate::Error;
        use crate::config::ClusterConfig;
        use crate::config::tests::{keys, problems_with};
        let parse = |extra: &str| {
            ClusterConfig::from_toml_str(&format!("{}\n{extra}", ClusterConfig::template()))
        };
        let c = parse(
            "[replication]\nslot_max_retained = \"512MB\"\n[replication.sequences]\n\
             strategy = \"interleave\"\nstep = 10\noffsets = [3, 7]\n",
        )
        .unwrap();
        assert_eq!(c.replication.slot_max_retained, ByteSize(512 << 20));
        assert_eq!(
            c.replication.sequences.strategy,
            SequenceStrategy::Interleave
        );
        assert_eq!(c.replication.sequences.offset(1), 7);
        let back = ClusterConfig::from_toml_str(&c.to_toml()).unwrap();
        assert_eq!(back.replication.sequences, c.replication.sequences);
        assert_eq!(
            back.replication.slot_max_retained,
            c.replication.slot_max_retained
        );

        let problems = problems_with(
            "[replication]\nslot_max_retained = 0\n[replication.sequences]\n\
             strategy = \"interleave\"\nstep = 2\noffsets = [1, 3]\nmargin = -5\n",
        );
        assert_eq!(
            keys(&problems),
            [
                "replication.slot_max_retained",
                "replication.sequences.margin",
                "replication.sequences.offsets[1]"
            ],
            "{problems:?}"
        );
        let problems = problems_with(
            "[replication.sequences]\nstrategy = \"interleave\"\nstep = 4\noffsets = [2, 2]\n",
        );
        assert_eq!(problems[0].key, "replication.sequences.offsets[1]");
        assert!(
            problems[0].expected.contains("no other node"),
            "{problems:?}"
        );
        let Err(Error::ConfigSyntax { key, message, .. }) =
            parse("[replication]\nslot_max_retained = \"1XB\"\n")
        else {
            panic!("expected ConfigSyntax")
        };
        assert!(
            key.contains("slot_max_retained") || message.contains("unknown unit"),
            "{key}: {message}"
        );
    }

    #[test]
    fn defaults_are_sync_with_a_margin_and_odd_even_offsets() {
        let s = SequencesSpec::default();
        assert_eq!(s.strategy, SequenceStrategy::Sync);
        assert_eq!(
            (s.step, s.offset(0), s.offset(1), s.margin),
            (2, 1, 2, 1000)
        );
    }
}
