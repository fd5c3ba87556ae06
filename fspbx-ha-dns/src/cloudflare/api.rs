//! Cloudflare API v4 documents and the pure planning of record operations.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The v4 response envelope.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope<T> {
    pub(crate) success: bool,
    #[serde(default)]
    pub(crate) errors: Vec<ApiError>,
    pub(crate) result: Option<T>,
    pub(crate) result_info: Option<ResultInfo>,
}

/// One entry of `errors`.
#[derive(Debug, Deserialize, Clone)]
pub(crate) struct ApiError {
    pub(crate) code: i64,
    pub(crate) message: String,
}

/// Pagination of list results.
#[derive(Debug, Deserialize, Clone, Copy)]
pub(crate) struct ResultInfo {
    pub(crate) page: u32,
    #[serde(default)]
    pub(crate) total_pages: Option<u32>,
    #[serde(default)]
    pub(crate) per_page: u32,
    #[serde(default)]
    pub(crate) total_count: u32,
}

impl ResultInfo {
    /// Whether another page follows this one.
    pub(crate) fn has_more(&self) -> bool {
        let pages = self.total_pages.unwrap_or_else(|| {
            if self.per_page == 0 {
                1
            } else {
                self.total_count.div_ceil(self.per_page)
            }
        });
        self.page < pages
    }
}

/// A zone as listed by `GET /zones`.
#[derive(Debug, Deserialize)]
pub(crate) struct Zone {
    pub(crate) id: String,
    pub(crate) name: String,
}

/// A DNS record as the API returns it.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
pub(crate) struct DnsRecord {
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) content: String,
    pub(crate) ttl: u32,
    #[serde(default)]
    pub(crate) proxied: bool,
}

/// Body of POST/PUT/PATCH on `dns_records`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct RecordBody {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<String>,
    pub(crate) ttl: u32,
    /// A SIP/RTP name must never go through Cloudflare's HTTP proxy.
    pub(crate) proxied: bool,
}

/// One write against the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// Replace an existing record's content (PUT): the flip of a single-value record is this one
    /// request.
    Put {
        /// Record id.
        id: String,
        /// New address.
        content: IpAddr,
    },
    /// Fix TTL / proxy flag of a record whose content stays (PATCH).
    Patch {
        /// Record id.
        id: String,
    },
    /// Create a record (POST).
    Post {
        /// Address.
        content: IpAddr,
    },
    /// Delete a record.
    Delete {
        /// Record id.
        id: String,
    },
}

/// The writes that turn `existing` (one name, one type) into exactly `values` with `ttl`:
/// in-place updates first, then creations, deletions last, so the name never goes empty during
/// a flip.
pub(crate) fn plan_ops(existing: &[DnsRecord], values: &[IpAddr], ttl: u32) -> Vec<Op> {
    let mut keep = vec![false; existing.len()];
    let mut missing = vec![];
    let mut patches = vec![];
    for v in values {
        let found = existing
            .iter()
            .enumerate()
            .find(|(i, r)| !keep[*i] && r.content.parse::<IpAddr>().ok() == Some(*v));
        match found {
            Some((i, r)) => {
                keep[i] = true;
                if r.ttl != ttl || r.proxied {
                    patches.push(Op::Patch { id: r.id.clone() });
                }
            }
            None => missing.push(*v),
        }
    }
    let mut spare = existing
        .iter()
        .enumerate()
        .filter(|(i, _)| !keep[*i])
        .map(|(_, r)| r.id.clone());
    let mut ops = patches;
    let mut posts = vec![];
    for v in missing {
        match spare.next() {
            Some(id) => ops.push(Op::Put { id, content: v }),
            None => posts.push(Op::Post { content: v }),
        }
    }
    ops.extend(posts);
    ops.extend(spare.map(|id| Op::Delete { id }));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, content: &str, ttl: u32) -> DnsRecord {
        DnsRecord {
            id: id.into(),
            name: "pbx.example.com".into(),
            kind: "A".into(),
            content: content.into(),
            ttl,
            proxied: false,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn single_value_flip_is_one_put() {
        let ops = plan_ops(&[rec("r1", "192.0.2.1", 60)], &[ip("192.0.2.2")], 60);
        assert_eq!(
            ops,
            vec![Op::Put {
                id: "r1".into(),
                content: ip("192.0.2.2")
            }]
        );
    }

    #[test]
    fn grows_shrinks_and_fixes_ttl() {
        let existing = [rec("r1", "192.0.2.1", 300), rec("r2", "192.0.2.2", 60)];
        let ops = plan_ops(
            &existing,
            &[ip("192.0.2.1"), ip("192.0.2.3"), ip("192.0.2.4")],
            60,
        );
        assert_eq!(
            ops,
            vec![
                Op::Patch { id: "r1".into() },
                Op::Put {
                    id: "r2".into(),
                    content: ip("192.0.2.3")
                },
                Op::Post {
                    content: ip("192.0.2.4")
                },
            ]
        );
        let ops = plan_ops(&existing, &[], 60);
        assert_eq!(
            ops,
            vec![
                Op::Delete { id: "r1".into() },
                Op::Delete { id: "r2".into() }
            ]
        );
        assert!(plan_ops(&existing[1..], &[ip("192.0.2.2")], 60).is_empty());
    }

    #[test]
    fn pagination_end_is_found_with_or_without_total_pages() {
        let ri = |page, total_pages, per_page, total_count| ResultInfo {
            page,
            total_pages,
            per_page,
            total_count,
        };
        assert!(ri(1, Some(2), 2, 3).has_more());
        assert!(!ri(2, Some(2), 2, 3).has_more());
        assert!(ri(1, None, 2, 3).has_more());
        assert!(!ri(2, None, 2, 3).has_more());
        assert!(!ri(1, None, 0, 0).has_more());
    }
}
