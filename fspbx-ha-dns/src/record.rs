//! Record sets, changes and receipts: the data the providers exchange with callers.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The record kinds a floating name uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RecordKind {
    /// IPv4 address record.
    A,
    /// IPv6 address record.
    #[serde(rename = "AAAA")]
    Aaaa,
}

impl RecordKind {
    /// The record type as written in zone files and APIs (`A`, `AAAA`).
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::A => "A",
            RecordKind::Aaaa => "AAAA",
        }
    }

    /// Whether `ip` can be a value of this kind.
    pub fn fits(self, ip: &IpAddr) -> bool {
        matches!(
            (self, ip),
            (RecordKind::A, IpAddr::V4(_)) | (RecordKind::Aaaa, IpAddr::V6(_))
        )
    }

    /// The kind an address belongs in.
    pub fn of(ip: &IpAddr) -> RecordKind {
        match ip {
            IpAddr::V4(_) => RecordKind::A,
            IpAddr::V6(_) => RecordKind::Aaaa,
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "A" => Ok(RecordKind::A),
            "AAAA" => Ok(RecordKind::Aaaa),
            _ => Err(Error::InvalidInput {
                field: "kind",
                value: s.to_string(),
                reason: "only A and AAAA records are managed".into(),
            }),
        }
    }
}

/// A record set as a provider holds it: one name, one kind, one TTL, its values.
///
/// `values` are kept sorted and without duplicates so two sets compare equal when they hold the
/// same addresses in any order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSet {
    /// Fully qualified name, lower case, with the trailing dot (`pbx.example.com.`).
    pub name: String,
    /// Record kind.
    pub kind: RecordKind,
    /// Time to live in seconds.
    pub ttl: u32,
    /// The addresses, sorted.
    pub values: Vec<IpAddr>,
}

impl RecordSet {
    /// Builds a record set, normalizing the name and sorting the values.
    pub fn new(name: &str, kind: RecordKind, ttl: u32, values: Vec<IpAddr>) -> Self {
        RecordSet {
            name: fqdn(name),
            kind,
            ttl,
            values: normalize_values(values),
        }
    }
}

impl fmt::Display for RecordSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} ", self.name, self.ttl, self.kind)?;
        write_values(f, &self.values)
    }
}

fn write_values(f: &mut fmt::Formatter<'_>, values: &[IpAddr]) -> fmt::Result {
    f.write_str("[")?;
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{v}")?;
    }
    f.write_str("]")
}

/// The compare-and-swap guard of a [`Change`]: what the caller believes is there now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "values", rename_all = "lowercase")]
pub enum Expected {
    /// No record of this name and kind exists.
    Absent,
    /// The record holds exactly these addresses (order and TTL do not matter).
    Values(Vec<IpAddr>),
}

impl Expected {
    /// The guard matching what `current` holds (what a caller who just read it expects).
    pub fn from_current(current: Option<&RecordSet>) -> Self {
        match current {
            Some(rs) => Expected::Values(rs.values.clone()),
            None => Expected::Absent,
        }
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Absent => f.write_str("no record"),
            Expected::Values(v) => write_values(f, &normalize_values(v.clone())),
        }
    }
}

/// A change of one record set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Record name (absolute; a trailing dot is optional).
    pub name: String,
    /// Record kind.
    pub kind: RecordKind,
    /// TTL of the new record set, seconds.
    pub ttl: u32,
    /// The new addresses. Empty means: delete the record set.
    pub values: Vec<IpAddr>,
    /// Compare-and-swap guard: apply only if the record is currently this. `None` sets
    /// unconditionally.
    pub expect: Option<Expected>,
}

impl Change {
    /// An unconditional change to `values`.
    pub fn set(name: &str, kind: RecordKind, ttl: u32, values: Vec<IpAddr>) -> Self {
        Change {
            name: name.to_string(),
            kind,
            ttl,
            values,
            expect: None,
        }
    }

    /// Adds a compare-and-swap guard.
    pub fn expecting(mut self, expect: Expected) -> Self {
        self.expect = Some(expect);
        self
    }

    /// The record set this change writes (as given; call on a validated change).
    pub(crate) fn record_set(&self) -> RecordSet {
        RecordSet {
            name: self.name.clone(),
            kind: self.kind,
            ttl: self.ttl,
            values: self.values.clone(),
        }
    }

    /// Checks the change is well formed for `zone` and returns it normalized (FQDN name,
    /// sorted values).
    pub fn validated(&self, zone: &str) -> Result<Change> {
        let name = fqdn(&self.name);
        check_name(&name)?;
        let zone = fqdn(zone);
        if !in_zone(&name, &zone) {
            return Err(Error::NameNotInZone {
                name,
                zone: zone.trim_end_matches('.').to_string(),
            });
        }
        for v in self.values.iter().chain(match &self.expect {
            Some(Expected::Values(v)) => v.iter(),
            _ => [].iter(),
        }) {
            if !self.kind.fits(v) {
                return Err(Error::ValueKindMismatch {
                    value: *v,
                    kind: self.kind,
                });
            }
        }
        Ok(Change {
            name,
            kind: self.kind,
            ttl: self.ttl,
            values: normalize_values(self.values.clone()),
            expect: self.expect.clone().map(|e| match e {
                Expected::Values(v) if v.is_empty() => Expected::Absent,
                Expected::Values(v) => Expected::Values(normalize_values(v)),
                Expected::Absent => Expected::Absent,
            }),
        })
    }
}

/// What a provider hands back after accepting a change; give it to
/// [`crate::DnsProvider::wait_applied`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeReceipt {
    /// Provider name.
    pub provider: String,
    /// The provider's change id, when it has one (Route53 `/change/C…`).
    pub id: Option<String>,
    /// The record set as submitted (name normalized).
    pub record: RecordSet,
    /// When the provider accepted the change.
    #[serde(with = "unix_millis")]
    pub accepted_at: SystemTime,
}

impl ChangeReceipt {
    /// The receipt of `provider` accepting the validated `change` now.
    pub(crate) fn accepted(provider: &str, id: Option<String>, change: &Change) -> Self {
        ChangeReceipt {
            provider: provider.into(),
            id,
            record: change.record_set(),
            accepted_at: SystemTime::now(),
        }
    }
}

/// What a provider can promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// The compare-and-swap guard is enforced by the server in the same operation as the write.
    /// When `false`, the provider reads, compares and then writes, and a concurrent writer can
    /// slip in between.
    pub atomic_cas: bool,
    /// The lowest TTL the provider accepts, seconds.
    pub min_ttl: u32,
    /// Whether [`crate::DnsProvider::wait_applied`] asks the provider for a change status
    /// (Route53) rather than reading the record back.
    pub change_tracking: bool,
}

/// The name in canonical form: lower case, trailing dot.
pub fn fqdn(name: &str) -> String {
    let mut n = name.trim().to_ascii_lowercase();
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

/// Whether `name` (FQDN) is `zone` (FQDN) or below it.
pub fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}")) || zone == "."
}

/// `name` as an FQDN, or [`Error::NameNotInZone`] when it is not in `zone` (FQDN).
pub(crate) fn fqdn_in_zone(name: &str, zone: &str) -> Result<String> {
    let fq = fqdn(name);
    if in_zone(&fq, zone) {
        Ok(fq)
    } else {
        Err(Error::NameNotInZone {
            name: fq,
            zone: zone.to_string(),
        })
    }
}

fn check_name(name: &str) -> Result<()> {
    let bad = |reason: &str| Error::InvalidInput {
        field: "name",
        value: name.to_string(),
        reason: reason.to_string(),
    };
    if name == "." {
        return Err(bad("the root cannot hold a floating record"));
    }
    if name.len() > 254 {
        return Err(bad("longer than 253 characters"));
    }
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() {
            return Err(bad("has an empty label (two dots in a row)"));
        }
        if label.len() > 63 {
            return Err(bad("has a label longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*')
        {
            return Err(bad(
                "may only hold letters, digits, '-' and '_' (use punycode for IDN)",
            ));
        }
    }
    Ok(())
}

/// Sorts and deduplicates addresses.
pub fn normalize_values(mut values: Vec<IpAddr>) -> Vec<IpAddr> {
    values.sort();
    values.dedup();
    values
}

mod unix_millis {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let ms = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        s.serialize_u64(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let ms = u64::deserialize(d)?;
        Ok(UNIX_EPOCH + Duration::from_millis(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn validated_normalizes_and_checks_zone() {
        let c = Change::set(
            "PBX.Example.Test",
            RecordKind::A,
            60,
            vec![ip("10.0.0.2"), ip("10.0.0.1"), ip("10.0.0.2")],
        )
        .validated("example.test.")
        .unwrap();
        assert_eq!(c.name, "pbx.example.test.");
        assert_eq!(c.values, vec![ip("10.0.0.1"), ip("10.0.0.2")]);

        let err = Change::set("pbx.other.test", RecordKind::A, 60, vec![])
            .validated("example.test")
            .unwrap_err();
        assert!(matches!(err, Error::NameNotInZone { .. }), "{err}");
        // A suffix that is not a label boundary is not inside the zone.
        assert!(!in_zone("badexample.test.", "example.test."));
    }

    #[test]
    fn validated_rejects_wrong_family_and_bad_names() {
        let err = Change::set("pbx.example.test", RecordKind::A, 60, vec![ip("::1")])
            .validated("example.test")
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::ValueKindMismatch {
                    kind: RecordKind::A,
                    ..
                }
            ),
            "{err}"
        );
        let err = Change::set("pbx..example.test", RecordKind::A, 60, vec![])
            .validated("example.test")
            .unwrap_err();
        assert!(err.to_string().contains("empty label"), "{err}");
        let err = Change::set("p b.example.test", RecordKind::A, 60, vec![])
            .validated("example.test")
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { field: "name", .. }),
            "{err}"
        );
    }

    #[test]
    fn empty_expected_values_mean_absent() {
        let c = Change::set("pbx.example.test", RecordKind::A, 60, vec![])
            .expecting(Expected::Values(vec![]))
            .validated("example.test")
            .unwrap();
        assert_eq!(c.expect, Some(Expected::Absent));
    }

    #[test]
    fn kind_parsing_and_display() {
        assert_eq!("aaaa".parse::<RecordKind>().unwrap(), RecordKind::Aaaa);
        assert!("MX".parse::<RecordKind>().is_err());
        let rs = RecordSet::new("pbx.example.test", RecordKind::A, 30, vec![ip("10.0.0.1")]);
        assert_eq!(rs.to_string(), "pbx.example.test. 30 A [10.0.0.1]");
    }
}
