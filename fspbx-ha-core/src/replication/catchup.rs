//! What a planned switchover needs from replication: proof that the target holds everything
//! the source committed so far (a fresh heartbeat written on the source, seen on the target),
//! and the target's sequences moved up to the source's values plus a margin (logical
//! replication copies rows, never sequence values, so without this the target's first insert
//! into a `bigserial` table collides with a replicated row).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::inventory::{SequenceInfo, read_sequences};
use super::pair::Pair;
use super::plan::Side;
use super::sql::qualified;
use super::status::{watch_beat, write_beat};
use crate::Result;

/// One sequence moved (or, in a dry run, to be moved) on the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SequenceMove {
    /// `"schema"."name"`.
    pub sequence: String,
    /// Its last value on the target before (`None`: never used).
    pub before: Option<i64>,
    /// Its last value on the source.
    pub source: i64,
    /// The value it is set to: the source's plus the margin.
    pub after: i64,
}

/// The moves that bring every ascending sequence of `to` up to `from`'s last value plus
/// `margin` (pure). A sequence already there, or only on one side, is left alone; none is
/// ever moved down.
pub fn sequence_moves(
    to: &[SequenceInfo],
    from: &[SequenceInfo],
    margin: i64,
) -> Vec<SequenceMove> {
    to.iter()
        .filter(|s| s.increment > 0)
        .filter_map(|s| {
            let f = from
                .iter()
                .find(|f| f.schema == s.schema && f.name == s.name)?;
            let source = f.last_value?;
            let after = source.saturating_add(margin.max(0));
            s.last_value
                .is_none_or(|v| v < after)
                .then(|| SequenceMove {
                    sequence: s.qualified(),
                    before: s.last_value,
                    source,
                    after,
                })
        })
        .collect()
}

/// Reads both nodes' sequences and moves node `on`'s up to node `from`'s last values plus
/// `margin` (`setval(…, true)`: the next value is one more). With
/// `replication.sequences.strategy = "interleave"`, sequences of `on` that already draw from
/// its own class are left alone (they cannot collide); the others (created since the
/// interleave, say) are moved. With `dry_run`, only says what it would move. Returns the moves.
pub async fn move_sequences(
    pair: &Pair,
    on: Side,
    from: Side,
    margin: i64,
    dry_run: bool,
) -> Result<Vec<SequenceMove>> {
    let conn = pair.pg(on);
    let (mine, theirs) =
        futures_util::future::join(read_sequences(conn), read_sequences(pair.pg(from))).await;
    let interleaved = super::sequences::interleaved_on(pair, on).await?;
    let mut moves = sequence_moves(&mine?, &theirs?, margin);
    moves.retain(|m| !interleaved.contains(&m.sequence));
    if !dry_run {
        for m in &moves {
            conn.client()
                .execute(
                    "SELECT pg_catalog.setval($1::text::regclass, \
                     greatest($2, (SELECT last_value FROM pg_catalog.pg_sequences \
                      WHERE format('%I.%I', schemaname, sequencename)::regclass = $1::text::regclass)), true)",
                    &[&m.sequence, &m.after],
                )
                .await
                .map_err(conn.query_error("moving a sequence"))?;
        }
    }
    Ok(moves)
}

/// Writes a fresh heartbeat on node `from` and waits up to `timeout` until node `from`'s peer
/// holds it. Logical replication applies commits in order, so once it arrives the peer holds
/// every transaction `from` committed before it. Returns how long that took, or `None` when it
/// did not arrive in time (or there is no heartbeat table: replication was never set up).
pub async fn wait_caught_up(
    pair: &Pair,
    from: Side,
    timeout: Duration,
) -> Result<Option<Duration>> {
    let table = qualified(&pair.config().replication.heartbeat_schema, "heartbeat");
    let seq = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let from_name = pair.node_name(from);
    if !write_beat(pair.pg(from), &table, from_name, seq).await? {
        return Ok(None);
    }
    let wrote_at = Instant::now();
    let (lag, _) = watch_beat(
        pair.pg(from.peer()),
        &table,
        from_name,
        seq,
        wrote_at,
        timeout,
    )
    .await?;
    Ok(lag.map(Duration::from_secs_f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(name: &str, last: Option<i64>, increment: i64) -> SequenceInfo {
        SequenceInfo {
            schema: "public".into(),
            name: name.into(),
            last_value: last,
            increment,
            owned_by: None,
        }
    }

    #[test]
    fn moves_up_by_the_margin_never_down() {
        let from = [
            seq("a", Some(100), 1),
            seq("b", Some(100), 1),
            seq("c", None, 1),
            seq("d", Some(100), -1),
            seq("only_source", Some(5), 1),
        ];
        let to = [
            seq("a", Some(10), 1),
            seq("b", Some(5000), 1),
            seq("c", Some(3), 1),
            seq("d", Some(1), -1),
            seq("never_used", None, 1),
        ];
        let moves = sequence_moves(&to, &from, 1000);
        assert_eq!(
            moves,
            [SequenceMove {
                sequence: from[0].qualified(),
                before: Some(10),
                source: 100,
                after: 1100,
            }]
        );
        // Margin 0 is "catch up exactly"; a never-used target sequence moves too.
        let to = [seq("a", None, 1)];
        assert_eq!(sequence_moves(&to, &from, 0)[0].after, 100);
        assert!(sequence_moves(&[seq("a", Some(100), 1)], &from, 0).is_empty());
    }
}
