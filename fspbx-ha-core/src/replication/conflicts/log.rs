//! Reading the apply worker's conflicts out of PostgreSQL's server log text (pure).
//!
//! An apply worker that hits a conflict logs a message whose `CONTEXT:` line says
//! `processing remote data for replication origin "pg_<subscription oid>" during message type
//! "INSERT" for replication target relation "public.t" in transaction <xid>, finished at <lsn>`.
//! PostgreSQL 17 logs the plain constraint error (`duplicate key value violates unique
//! constraint …` with `DETAIL: Key (id)=(5) already exists.`); PostgreSQL 18 logs
//! `conflict detected on relation "public.t": conflict=insert_exists` with both row versions in
//! the `DETAIL`, and logs `update_missing` / `delete_missing` at `LOG` level (the change is
//! skipped, the worker goes on).
//!
//! Lines of one message share the log line prefix (`%m [%p]` and friends), so a message's
//! `DETAIL`/`CONTEXT` lines are attached by their prefix; continuation lines start with a tab.

use serde::Serialize;

/// What kind of conflict a log message reports (serialized as [`ConflictKind::name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictKind {
    /// PostgreSQL 17 and older: a unique constraint was violated by a remote change.
    UniqueViolation,
    /// A PostgreSQL 18 `conflict=<name>` (`insert_exists`, `update_exists`,
    /// `update_missing`, `delete_missing`, `update_origin_differs`, …).
    Detected(String),
    /// Any other error while applying a remote change (e.g. a missing column).
    Other,
}

impl Serialize for ConflictKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl ConflictKind {
    /// A short name: `unique_violation`, the PostgreSQL 18 conflict name, or `other`.
    pub fn name(&self) -> &str {
        match self {
            ConflictKind::UniqueViolation => "unique_violation",
            ConflictKind::Detected(n) => n,
            ConflictKind::Other => "other",
        }
    }
}

/// A key as PostgreSQL prints it: `(id)=(5)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictKey {
    /// The text as logged, e.g. `(id)=(5)`.
    pub text: String,
    /// Column names (unquoted).
    pub columns: Vec<String>,
    /// The values as text, one per column, when they could be told apart (a value holding
    /// `, ` in a multi-column key makes the split ambiguous: then empty).
    pub values: Vec<String>,
}

/// One conflict message of an apply worker, as read from the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogConflict {
    /// The log line prefix (time and process id with the default `log_line_prefix`).
    pub logged: String,
    /// `ERROR` (the worker stopped and will retry) or `LOG` (the change was skipped).
    pub severity: String,
    /// The kind.
    pub kind: ConflictKind,
    /// The message.
    pub message: String,
    /// The `DETAIL`, continuation lines joined with a space.
    pub detail: Option<String>,
    /// The replication origin, `pg_<subscription oid>`.
    pub origin: String,
    /// The subscription's oid, from the origin's name.
    pub subscription_oid: Option<u32>,
    /// `INSERT`, `UPDATE`, `DELETE`, `COMMIT`, …
    pub message_type: String,
    /// `schema.table` as logged (unquoted).
    pub relation: Option<String>,
    /// The remote transaction's id on the publisher.
    pub remote_xid: Option<u32>,
    /// The remote transaction's finish (commit) LSN: what `ALTER SUBSCRIPTION … SKIP` takes.
    pub finish_lsn: Option<String>,
    /// The conflicting key.
    pub key: Option<ConflictKey>,
    /// The unique constraint or index named by the message.
    pub constraint: Option<String>,
    /// PostgreSQL 18: the subscriber's row as logged.
    pub local_row: Option<String>,
    /// PostgreSQL 18: the publisher's row as logged.
    pub remote_row: Option<String>,
}

impl LogConflict {
    /// The worker stopped on it (it will retry the same transaction).
    pub fn stops_worker(&self) -> bool {
        self.severity == "ERROR" || self.severity == "FATAL"
    }
}

const SEVERITIES: &[&str] = &[
    "ERROR",
    "LOG",
    "WARNING",
    "FATAL",
    "PANIC",
    "DETAIL",
    "CONTEXT",
    "HINT",
    "STATEMENT",
    "NOTICE",
    "INFO",
    "DEBUG1",
    "DEBUG2",
    "DEBUG3",
    "DEBUG4",
    "DEBUG5",
];

/// Splits `<prefix><SEVERITY>:  <text>`.
fn split_line(line: &str) -> Option<(&str, &str, &str)> {
    let mut best: Option<(usize, &str)> = None;
    for sev in SEVERITIES {
        let pat_len = sev.len() + 3;
        let mut from = 0;
        while let Some(pos) = line[from..].find(sev) {
            let at = from + pos;
            if line[at + sev.len()..].starts_with(":  ")
                && (at == 0 || !line.as_bytes()[at - 1].is_ascii_alphanumeric())
            {
                if best.is_none_or(|(b, _)| at < b) {
                    best = Some((at, sev));
                }
                break;
            }
            from = at + 1;
            if from + pat_len > line.len() {
                break;
            }
        }
    }
    let (at, sev) = best?;
    Some((&line[..at], sev, &line[at + sev.len() + 3..]))
}

struct Message {
    prefix: String,
    severity: String,
    text: String,
    detail: Option<String>,
    context: Option<String>,
}

/// Groups lines into messages: a `DETAIL`/`CONTEXT`/`HINT`/`STATEMENT` line joins the latest
/// message with the same prefix; a tab-indented line continues the previous field.
fn messages(text: &str) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    // Which message and field the previous line belonged to (for continuation lines).
    let mut last: Option<(usize, &'static str)> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('\t') {
            if let Some((i, field)) = last {
                let m = &mut out[i];
                let slot = match field {
                    "detail" => m.detail.as_mut(),
                    "context" => m.context.as_mut(),
                    _ => Some(&mut m.text),
                };
                if let Some(s) = slot {
                    s.push(' ');
                    s.push_str(rest.trim());
                }
            }
            continue;
        }
        let Some((prefix, sev, body)) = split_line(line) else {
            last = None;
            continue;
        };
        match sev {
            "DETAIL" | "CONTEXT" | "HINT" | "STATEMENT" => {
                let Some(i) = out.iter().rposition(|m| m.prefix == prefix) else {
                    last = None;
                    continue;
                };
                let field = match sev {
                    "DETAIL" => {
                        out[i].detail = Some(body.to_string());
                        "detail"
                    }
                    "CONTEXT" => {
                        out[i].context = Some(body.to_string());
                        "context"
                    }
                    _ => "other",
                };
                last = Some((i, field));
            }
            _ => {
                out.push(Message {
                    prefix: prefix.to_string(),
                    severity: sev.to_string(),
                    text: body.to_string(),
                    detail: None,
                    context: None,
                });
                last = Some((out.len() - 1, "text"));
            }
        }
    }
    out
}

/// The text between `start` and the next `"`.
fn quoted_after<'a>(text: &'a str, start: &str) -> Option<&'a str> {
    let i = text.find(start)? + start.len();
    let rest = &text[i..];
    Some(&rest[..rest.find('"')?])
}

/// Parses the apply worker's `CONTEXT` (`processing remote data for replication origin …`).
struct ApplyContext {
    origin: String,
    message_type: String,
    relation: Option<String>,
    xid: Option<u32>,
    finish_lsn: Option<String>,
}

fn apply_context(ctx: &str) -> Option<ApplyContext> {
    const HEAD: &str = "processing remote data for replication origin \"";
    let at = ctx.find(HEAD)?;
    let ctx = &ctx[at..];
    let origin = quoted_after(ctx, HEAD)?.to_string();
    let message_type = quoted_after(ctx, "during message type \"")?.to_string();
    // The relation is printed as "schema.name" without quoting; a name may hold `"`, so take
    // the text up to the `" in transaction` / `" column "` that follows it.
    let relation = ctx
        .find("for replication target relation \"")
        .map(|i| &ctx[i + "for replication target relation \"".len()..])
        .and_then(|rest| {
            let end = [
                rest.find("\" column \""),
                rest.find("\" in transaction "),
                rest.rfind('"'),
            ]
            .into_iter()
            .flatten()
            .min()?;
            Some(rest[..end].to_string())
        });
    let xid = ctx.find(" in transaction ").and_then(|i| {
        ctx[i + " in transaction ".len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    });
    let finish_lsn = ctx.find(", finished at ").map(|i| {
        ctx[i + ", finished at ".len()..]
            .split(|c: char| !(c.is_ascii_hexdigit() || c == '/'))
            .next()
            .unwrap_or_default()
            .to_string()
    });
    Some(ApplyContext {
        origin,
        message_type,
        relation,
        xid,
        finish_lsn: finish_lsn.filter(|l| l.contains('/')),
    })
}

/// Finds `Key (cols)=(vals)` (or `replica identity (cols)=(vals)`) in a DETAIL.
pub fn parse_key(detail: &str) -> Option<ConflictKey> {
    let lower = detail.to_ascii_lowercase();
    let start = ["key (", "replica identity ("]
        .iter()
        .filter_map(|p| lower.find(p).map(|i| i + p.len() - 1))
        .min()?;
    let rest = &detail[start..];
    let sep = rest.find(")=(")?;
    let cols_text = &rest[1..sep];
    let vals_all = &rest[sep + 3..];
    // The values end at `) already exists.` (17), `); ` (18) or `).` at the end.
    let end = [
        vals_all.find(") already exists"),
        vals_all.find("); "),
        vals_all.strip_suffix(").").map(str::len),
        vals_all.strip_suffix(')').map(str::len),
    ]
    .into_iter()
    .flatten()
    .min()?;
    let vals_text = &vals_all[..end];
    let columns: Vec<String> = split_columns(cols_text);
    let values: Vec<String> = if columns.len() == 1 {
        vec![vals_text.to_string()]
    } else {
        let v: Vec<String> = vals_text.split(", ").map(str::to_string).collect();
        if v.len() == columns.len() {
            v
        } else {
            Vec::new()
        }
    };
    Some(ConflictKey {
        text: format!("({cols_text})=({vals_text})"),
        columns,
        values,
    })
}

/// Splits `a, "B c", d` into unquoted names.
fn split_columns(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(cur.trim().to_string());
                cur.clear();
            }
            c => cur.push(c),
        }
    }
    if !cur.trim().is_empty() || !out.is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// `existing local row (…)` / `remote row (…)` from a PostgreSQL 18 DETAIL.
fn row_after(detail: &str, label: &str) -> Option<String> {
    let i = detail.find(label)? + label.len();
    let rest = &detail[i..];
    // Rows end at `); ` or `).` at the end of the detail.
    let end = [
        rest.find("); "),
        rest.strip_suffix(").").map(str::len),
        rest.strip_suffix(')').map(str::len),
    ]
    .into_iter()
    .flatten()
    .min()?;
    Some(format!("({})", &rest[..end]))
}

/// Every apply-worker conflict in `text`, oldest first. Messages of other processes (a client's
/// own duplicate-key error) are left out: only messages with the apply worker's CONTEXT count.
pub fn parse_log(text: &str) -> Vec<LogConflict> {
    let mut out = Vec::new();
    for m in messages(text) {
        let Some(ctx) = m.context.as_deref().and_then(apply_context) else {
            continue;
        };
        let kind = if let Some(i) = m.text.find("conflict=") {
            ConflictKind::Detected(
                m.text[i + "conflict=".len()..]
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            )
        } else if m
            .text
            .starts_with("duplicate key value violates unique constraint")
        {
            ConflictKind::UniqueViolation
        } else {
            ConflictKind::Other
        };
        let detail = m.detail.clone();
        let key = detail.as_deref().and_then(parse_key);
        let constraint = quoted_after(&m.text, "unique constraint \"")
            .or_else(|| {
                detail
                    .as_deref()
                    .and_then(|d| quoted_after(d, "unique index \""))
            })
            .map(str::to_string);
        let local_row = detail.as_deref().and_then(|d| row_after(d, "local row ("));
        let remote_row = detail.as_deref().and_then(|d| row_after(d, "emote row ("));
        let relation = ctx.relation.or_else(|| {
            quoted_after(&m.text, "conflict detected on relation \"").map(str::to_string)
        });
        out.push(LogConflict {
            logged: m.prefix.trim_end().to_string(),
            severity: m.severity,
            kind,
            message: m.text,
            detail,
            subscription_oid: ctx.origin.strip_prefix("pg_").and_then(|n| n.parse().ok()),
            origin: ctx.origin,
            message_type: ctx.message_type,
            relation,
            remote_xid: ctx.xid,
            finish_lsn: ctx.finish_lsn,
            key,
            constraint,
            local_row,
            remote_row,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PG17: &str = include_str!("testdata/pg17_subscriber.log");
    const PG18: &str = include_str!("testdata/pg18_subscriber.log");

    #[test]
    fn postgresql_17_duplicate_key() {
        let all = parse_log(PG17);
        assert_eq!(all.len(), 5, "{all:#?}");
        let c = all.last().unwrap();
        assert_eq!(c.severity, "ERROR");
        assert!(c.stops_worker());
        assert_eq!(c.kind, ConflictKind::UniqueViolation);
        assert_eq!(c.origin, "pg_16406");
        assert_eq!(c.subscription_oid, Some(16406));
        assert_eq!(c.message_type, "INSERT");
        assert_eq!(c.relation.as_deref(), Some("public.u"));
        assert_eq!(c.remote_xid, Some(743));
        assert_eq!(c.finish_lsn.as_deref(), Some("0/14C09E8"));
        assert_eq!(c.constraint.as_deref(), Some("u_pkey"));
        assert_eq!(c.logged, "2026-11-30 03:14:13.462 UTC [27067]");
        let k = c.key.as_ref().unwrap();
        assert_eq!(k.text, "(id)=(11111111-1111-1111-1111-111111111111)");
        assert_eq!(k.columns, ["id"]);
        assert_eq!(k.values, ["11111111-1111-1111-1111-111111111111"]);
        assert_eq!(c.local_row, None);
    }

    #[test]
    fn postgresql_18_conflicts_with_rows_and_skipped_changes() {
        let all = parse_log(PG18);
        // The first DETAIL has no message of its own (the excerpt starts there), and the
        // client's own duplicate-key error (no apply CONTEXT) is not a replication conflict.
        let kinds: Vec<(&str, &str)> = all
            .iter()
            .map(|c| (c.severity.as_str(), c.kind.name()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("ERROR", "insert_exists"),
                ("ERROR", "insert_exists"),
                ("ERROR", "insert_exists"),
                ("ERROR", "insert_exists"),
                ("LOG", "update_missing"),
                ("LOG", "delete_missing"),
            ]
        );
        let c = &all[3];
        assert_eq!(c.relation.as_deref(), Some("public.u"));
        assert_eq!(c.finish_lsn.as_deref(), Some("0/173CBB8"));
        assert_eq!(c.remote_xid, Some(757));
        assert_eq!(c.constraint.as_deref(), Some("u_pkey"));
        assert_eq!(
            c.key.as_ref().unwrap().text,
            "(id)=(11111111-1111-1111-1111-111111111111)"
        );
        assert_eq!(
            c.local_row.as_deref(),
            Some("(11111111-1111-1111-1111-111111111111, from b)")
        );
        assert_eq!(
            c.remote_row.as_deref(),
            Some("(11111111-1111-1111-1111-111111111111, from a)")
        );
        let upd = &all[4];
        assert!(!upd.stops_worker());
        assert_eq!(upd.message_type, "UPDATE");
        assert_eq!(upd.relation.as_deref(), Some("public.other"));
        assert_eq!(upd.key.as_ref().unwrap().text, "(id)=(10)");
        assert_eq!(upd.remote_row.as_deref(), Some("(12)"));
        let del = &all[5];
        assert_eq!(del.message_type, "DELETE");
        assert_eq!(del.key.as_ref().unwrap().values, ["11"]);
        assert_eq!(del.finish_lsn.as_deref(), Some("0/173F828"));
    }

    #[test]
    fn keys_and_prefixes_of_other_shapes() {
        let k = parse_key(r#"Key ("Tenant", seq)=(acme, 42) already exists."#).unwrap();
        assert_eq!(k.columns, ["Tenant", "seq"]);
        assert_eq!(k.values, ["acme", "42"]);
        let k = parse_key("Key (a, b)=(x, y, z) already exists.").unwrap();
        assert!(k.values.is_empty(), "ambiguous split is not guessed");
        // Debian's prefix `%m [%p] %q%u@%d ` and a relation named with a dot and a quote.
        let text = "2026-01-01 10:00:00.000 UTC [42] ERROR:  duplicate key value violates unique constraint \"x_pkey\"\n\
                    2026-01-01 10:00:00.000 UTC [42] DETAIL:  Key (k)=(1) already exists.\n\
                    2026-01-01 10:00:00.000 UTC [43] fusionpbx@fusionpbx LOG:  unrelated\n\
                    2026-01-01 10:00:00.000 UTC [42] CONTEXT:  processing remote data for replication origin \"pg_77\" during message type \"UPDATE\" for replication target relation \"Billing Data.it's \"a\" table\" column \"k\" in transaction 9, finished at 1A/FF00\n";
        let all = parse_log(text);
        assert_eq!(all.len(), 1);
        assert_eq!(
            all[0].relation.as_deref(),
            Some("Billing Data.it's \"a\" table")
        );
        assert_eq!(all[0].finish_lsn.as_deref(), Some("1A/FF00"));
        assert_eq!(all[0].subscription_oid, Some(77));
        assert_eq!(all[0].key.as_ref().unwrap().values, ["1"]);
        // A streamed transaction has no finish LSN.
        let text = "P ERROR:  boom\nP CONTEXT:  processing remote data for replication origin \"pg_5\" during message type \"INSERT\" in transaction 7\n";
        let all = parse_log(text);
        assert_eq!(all[0].finish_lsn, None);
        assert_eq!(all[0].relation, None);
        assert_eq!(all[0].kind, ConflictKind::Other);
    }
}
