//! Syncthing's event long-poll (`GET /rest/events`) as typed events and an async stream.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::Stream;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{FileError, FolderStatus};
use crate::{Error, Result, SyncthingClient};

/// Event types this crate decodes (others arrive as [`EventData::Other`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EventKind {
    /// A remote device's completion of a folder changed.
    FolderCompletion,
    /// A folder's counters changed.
    FolderSummary,
    /// A folder's state changed (idle, scanning, syncing, error).
    StateChanged,
    /// A device connected.
    DeviceConnected,
    /// A device disconnected.
    DeviceDisconnected,
    /// Items of a folder failed to sync.
    FolderErrors,
    /// The configuration was saved.
    ConfigSaved,
}

impl EventKind {
    /// Syncthing's name of the event type.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::FolderCompletion => "FolderCompletion",
            EventKind::FolderSummary => "FolderSummary",
            EventKind::StateChanged => "StateChanged",
            EventKind::DeviceConnected => "DeviceConnected",
            EventKind::DeviceDisconnected => "DeviceDisconnected",
            EventKind::FolderErrors => "FolderErrors",
            EventKind::ConfigSaved => "ConfigSaved",
        }
    }

    /// The kinds a sync watcher needs.
    pub const SYNC: [EventKind; 6] = [
        EventKind::FolderCompletion,
        EventKind::FolderSummary,
        EventKind::StateChanged,
        EventKind::DeviceConnected,
        EventKind::DeviceDisconnected,
        EventKind::FolderErrors,
    ];
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Event id (increases by one per event of the subscribed mask; restarts at 1 when the
    /// daemon restarts).
    pub id: u64,
    /// Global id across all event types.
    pub global_id: u64,
    /// When (RFC 3339).
    pub time: String,
    /// What happened.
    pub data: EventData,
}

/// The payload of an [`Event`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum EventData {
    /// A remote device's completion of a folder.
    FolderCompletion {
        /// Folder id.
        folder: String,
        /// The remote device.
        device: String,
        /// Percent complete.
        completion: f64,
        /// Bytes it still needs.
        need_bytes: u64,
        /// Items it still needs.
        need_items: u64,
    },
    /// A folder's counters.
    FolderSummary {
        /// Folder id.
        folder: String,
        /// The counters (as `/rest/db/status`).
        summary: Box<FolderStatus>,
    },
    /// A folder changed state.
    StateChanged {
        /// Folder id.
        folder: String,
        /// Previous state.
        from: String,
        /// New state.
        to: String,
        /// The error, when `to` is `error`.
        error: Option<String>,
    },
    /// A device connected.
    DeviceConnected {
        /// Device ID.
        id: String,
        /// Remote address.
        addr: String,
        /// Its name.
        device_name: String,
    },
    /// A device disconnected.
    DeviceDisconnected {
        /// Device ID.
        id: String,
        /// Why.
        error: String,
    },
    /// Items of a folder failed.
    FolderErrors {
        /// Folder id.
        folder: String,
        /// The failures.
        errors: Vec<FileError>,
    },
    /// Any other event type, kept raw.
    Other {
        /// Syncthing's event type.
        kind: String,
        /// Its data.
        data: Value,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    id: u64,
    #[serde(default, rename = "globalID")]
    global_id: u64,
    #[serde(default)]
    time: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

impl From<RawEvent> for Event {
    fn from(r: RawEvent) -> Event {
        let d = &r.data;
        let s = |k: &str| {
            d.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let u = |k: &str| d.get(k).and_then(Value::as_u64).unwrap_or(0);
        let data = match r.kind.as_str() {
            "FolderCompletion" => EventData::FolderCompletion {
                folder: s("folder"),
                device: s("device"),
                completion: d.get("completion").and_then(Value::as_f64).unwrap_or(0.0),
                need_bytes: u("needBytes"),
                need_items: u("needItems"),
            },
            "FolderSummary" => EventData::FolderSummary {
                folder: s("folder"),
                summary: Box::new(
                    d.get("summary")
                        .cloned()
                        .and_then(|v| serde_json::from_value(v).ok())
                        .unwrap_or_default(),
                ),
            },
            "StateChanged" => EventData::StateChanged {
                folder: s("folder"),
                from: s("from"),
                to: s("to"),
                error: d.get("error").and_then(Value::as_str).map(str::to_owned),
            },
            "DeviceConnected" => EventData::DeviceConnected {
                id: s("id"),
                addr: s("addr"),
                device_name: s("deviceName"),
            },
            "DeviceDisconnected" => EventData::DeviceDisconnected {
                id: s("id"),
                error: s("error"),
            },
            "FolderErrors" => EventData::FolderErrors {
                folder: s("folder"),
                errors: d
                    .get("errors")
                    .cloned()
                    .and_then(|v| serde_json::from_value(v).ok())
                    .unwrap_or_default(),
            },
            _ => EventData::Other {
                kind: r.kind.clone(),
                data: r.data.clone(),
            },
        };
        Event {
            id: r.id,
            global_id: r.global_id,
            time: r.time,
            data,
        }
    }
}

impl SyncthingClient {
    /// One long-poll: events with id greater than `since` of the given kinds (all kinds when
    /// empty), waiting up to `wait` for the first one. An empty answer means nothing happened.
    pub async fn events(
        &self,
        since: u64,
        kinds: &[EventKind],
        wait: Duration,
    ) -> Result<Vec<Event>> {
        let since_s = since.to_string();
        let timeout_s = wait.as_secs().max(1).to_string();
        let mask = kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut q = vec![("since", since_s.as_str()), ("timeout", timeout_s.as_str())];
        if !mask.is_empty() {
            q.push(("events", mask.as_str()));
        }
        let v = self
            .call(
                Method::GET,
                "rest/events",
                &q,
                None,
                wait + Duration::from_secs(1),
            )
            .await?;
        let raw: Vec<RawEvent> =
            serde_json::from_value(if v.is_null() { Value::Array(vec![]) } else { v }).map_err(
                |e| Error::Decode {
                    node: self.node().to_owned(),
                    method: "GET".into(),
                    path: "rest/events".into(),
                    message: e.to_string(),
                },
            )?;
        Ok(raw.into_iter().map(Event::from).collect())
    }

    /// The latest event id of the given kinds right now (start point for a stream that only
    /// wants new events). Blocks up to a second when no event of those kinds happened yet.
    pub async fn last_event_id(&self, kinds: &[EventKind]) -> Result<u64> {
        // `limit=1` returns the newest buffered event without waiting.
        let mask = kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut q = vec![("since", "0"), ("limit", "1"), ("timeout", "1")];
        if !mask.is_empty() {
            q.push(("events", mask.as_str()));
        }
        let v = self
            .call(Method::GET, "rest/events", &q, None, Duration::from_secs(2))
            .await?;
        Ok(v.as_array()
            .and_then(|a| a.last())
            .and_then(|e| e.get("id"))
            .and_then(Value::as_u64)
            .unwrap_or(0))
    }

    /// An endless stream of events after `since`, long-polling with `poll` per request and
    /// resuming from the last id received. A failed poll yields the error once and the stream
    /// continues (after a short pause) from the same id, so a daemon restart is survived; when
    /// the daemon's ids restart below ours, the stream starts over from 0.
    pub fn event_stream(
        &self,
        since: u64,
        kinds: Vec<EventKind>,
        poll: Duration,
    ) -> impl Stream<Item = Result<Event>> + Send + 'static {
        struct State {
            client: SyncthingClient,
            since: u64,
            kinds: Vec<EventKind>,
            poll: Duration,
            buffer: VecDeque<Event>,
            failed: bool,
        }
        let state = State {
            client: self.clone(),
            since,
            kinds,
            poll,
            buffer: VecDeque::new(),
            failed: false,
        };
        futures_util::stream::unfold(state, |mut st| async move {
            loop {
                if let Some(ev) = st.buffer.pop_front() {
                    return Some((Ok(ev), st));
                }
                if st.failed {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                match st.client.events(st.since, &st.kinds, st.poll).await {
                    Ok(events) => {
                        if st.failed && events.is_empty() && st.since > 0 {
                            // After an outage the daemon may have restarted with fresh ids.
                            let latest =
                                st.client.last_event_id(&st.kinds).await.unwrap_or(st.since);
                            if latest < st.since {
                                st.since = 0;
                            }
                        }
                        st.failed = false;
                        for ev in events {
                            st.since = st.since.max(ev.id);
                            st.buffer.push_back(ev);
                        }
                    }
                    Err(e) => {
                        st.failed = true;
                        return Some((Err(e), st));
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_events_become_typed_and_unknown_ones_stay_raw() {
        let raw: Vec<RawEvent> = serde_json::from_value(serde_json::json!([
            {"id": 3, "globalID": 9, "time": "t", "type": "StateChanged",
             "data": {"folder": "f", "from": "idle", "to": "scanning"}},
            {"id": 4, "globalID": 10, "time": "t", "type": "FolderCompletion",
             "data": {"folder": "f", "device": "D", "completion": 50.5, "needBytes": 7, "needItems": 1, "x": 1}},
            {"id": 5, "globalID": 11, "time": "t", "type": "NewTypeIn2x", "data": {"a": 1}}
        ]))
        .unwrap();
        let ev: Vec<Event> = raw.into_iter().map(Event::from).collect();
        assert_eq!(
            ev[0].data,
            EventData::StateChanged {
                folder: "f".into(),
                from: "idle".into(),
                to: "scanning".into(),
                error: None
            }
        );
        assert!(
            matches!(ev[1].data, EventData::FolderCompletion { completion, need_bytes: 7, .. } if completion == 50.5)
        );
        assert!(matches!(&ev[2].data, EventData::Other { kind, .. } if kind == "NewTypeIn2x"));
    }
}
