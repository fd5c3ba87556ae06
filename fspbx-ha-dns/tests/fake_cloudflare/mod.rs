//! A fake of the Cloudflare API v4 (no emulator exists): a minimal HTTP/1.1 server on loopback
//! that follows the published contract for the calls the provider makes.
//!
//! - Envelope `{success, errors[{code, message}], messages[], result, result_info}`; list calls
//!   carry `result_info {page, per_page, count, total_count, total_pages}`.
//! - `Authorization: Bearer <token>`: missing → 400 code 9106; wrong → 403 code 10000
//!   "Authentication error".
//! - `GET /zones?name=`; `GET|POST /zones/{id}/dns_records` (filters `name`, `type`, paging with
//!   `page`/`per_page`, capped by the server's own maximum); `GET|PUT|PATCH|DELETE
//!   /zones/{id}/dns_records/{rid}`.
//! - Errors: unknown zone → 400 code 7003; unknown record → 404 code 81044; identical record →
//!   400 code 81058; A content not IPv4 → 400 code 9005; A/AAAA beside a CNAME → 400 code 81053.
//! - Rate limiting: when armed, HTTP 429 with `retry-after` (seconds) and code 971.
//! - TTL must be 1 (automatic) or 60..86400 (the documented non-Enterprise range). The codes of
//!   the TTL, record-type and AAAA-content refusals (9021, 9020, 9006) are not in the public docs
//!   we had; the fake uses them as stand-ins, and the provider only passes them through.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One record held by the fake.
#[derive(Debug, Clone)]
pub struct Rec {
    pub id: String,
    pub zone_id: String,
    pub name: String,
    pub kind: String,
    pub content: String,
    pub ttl: u64,
    pub proxied: bool,
}

/// The fake's whole state, open to the test.
#[derive(Debug, Default)]
pub struct State {
    pub token: String,
    pub zones: Vec<(String, String)>,
    pub records: Vec<Rec>,
    /// Largest page the server hands out, whatever the client asks.
    pub max_per_page: usize,
    /// Answer the next N requests with 429.
    pub throttle_next: u32,
    /// `retry-after` seconds sent with a 429.
    pub retry_after: u64,
    /// Answer the next request with an HTML page instead of JSON.
    pub malformed_next: bool,
    /// Every request seen: (method, path with query, status).
    pub log: Vec<(String, String, u16)>,
    next_id: u64,
}

/// The running fake.
pub struct FakeCloudflare {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeCloudflare {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeCloudflare {
    /// Starts the fake with one zone and a token.
    pub async fn start(token: &str, zone: &str) -> FakeCloudflare {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            token: token.to_string(),
            zones: vec![("023e105f4ecef8ad9ca31a8372d0c353".into(), zone.to_string())],
            max_per_page: 5000,
            retry_after: 1,
            ..State::default()
        }));
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = serve(sock, st).await;
                });
            }
        });
        FakeCloudflare { addr, state, task }
    }

    /// The API base to configure (`http://127.0.0.1:PORT/client/v4`).
    pub fn endpoint(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/client/v4", self.addr)).unwrap()
    }

    /// The zone id of the (first) zone.
    pub fn zone_id(&self) -> String {
        self.state.lock().unwrap().zones[0].0.clone()
    }

    /// The addresses the fake holds for `name` (with or without trailing dot) and `kind`.
    pub fn values(&self, name: &str, kind: &str) -> Vec<IpAddr> {
        let name = name.trim_end_matches('.');
        let mut v: Vec<IpAddr> = self
            .state
            .lock()
            .unwrap()
            .records
            .iter()
            .filter(|r| r.name == name && r.kind == kind)
            .map(|r| r.content.parse().unwrap())
            .collect();
        v.sort();
        v
    }

    /// Adds a record directly (as if made in the dashboard).
    pub fn insert(&self, name: &str, kind: &str, content: &str, ttl: u64) {
        let mut s = self.state.lock().unwrap();
        s.next_id += 1;
        let id = format!("{:032x}", s.next_id);
        let zone_id = s.zones[0].0.clone();
        s.records.push(Rec {
            id,
            zone_id,
            name: name.trim_end_matches('.').into(),
            kind: kind.into(),
            content: content.into(),
            ttl,
            proxied: false,
        });
    }
}

struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn read_request(sock: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some(Request {
        method,
        path: path.to_string(),
        query,
        headers,
        body,
    })
}

async fn serve(mut sock: TcpStream, st: Arc<Mutex<State>>) -> std::io::Result<()> {
    let Some(req) = read_request(&mut sock).await else {
        return Ok(());
    };
    let (status, extra, body) = {
        let mut s = st.lock().unwrap();
        let (status, extra, body) = handle(&mut s, &req);
        let target = if req.query.is_empty() {
            req.path.clone()
        } else {
            format!(
                "{}?{}",
                req.path,
                req.query
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&")
            )
        };
        s.log.push((req.method.clone(), target, status));
        (status, extra, body)
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Status",
    };
    let content_type = if body.starts_with('<') {
        "text/html"
    } else {
        "application/json"
    };
    let mut resp = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        resp.push_str(&format!("{k}: {v}\r\n"));
    }
    resp.push_str("\r\n");
    resp.push_str(&body);
    sock.write_all(resp.as_bytes()).await?;
    sock.shutdown().await
}

fn envelope_err(code: i64, message: &str) -> String {
    json!({"success": false, "errors": [{"code": code, "message": message}], "messages": [], "result": null})
        .to_string()
}

fn ok(result: Value) -> String {
    json!({"success": true, "errors": [], "messages": [], "result": result}).to_string()
}

fn rec_json(r: &Rec, zone_name: &str) -> Value {
    json!({
        "id": r.id, "zone_id": r.zone_id, "zone_name": zone_name, "name": r.name,
        "type": r.kind, "content": r.content, "proxiable": true, "proxied": r.proxied,
        "ttl": r.ttl, "settings": {}, "meta": {}, "comment": null, "tags": [],
        "created_on": "2026-01-01T00:00:00.000000Z", "modified_on": "2026-01-01T00:00:00.000000Z"
    })
}

fn page(s: &State, req: &Request, items: Vec<Value>) -> String {
    let q = |k: &str| {
        req.query
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.clone())
    };
    let per_page = q("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, s.max_per_page);
    let page = q("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let total = items.len();
    let total_pages = total.div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    json!({
        "success": true, "errors": [], "messages": [], "result": slice,
        "result_info": {"page": page, "per_page": per_page, "count": slice.len(),
                        "total_count": total, "total_pages": total_pages}
    })
    .to_string()
}

type Reply = (u16, Vec<(String, String)>, String);

fn handle(s: &mut State, req: &Request) -> Reply {
    let auth = req
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone());
    match auth {
        None => {
            return (
                400,
                vec![],
                envelope_err(
                    9106,
                    "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
                ),
            );
        }
        Some(a) if a != format!("Bearer {}", s.token) => {
            return (403, vec![], envelope_err(10000, "Authentication error"));
        }
        _ => {}
    }
    if s.throttle_next > 0 {
        s.throttle_next -= 1;
        return (
            429,
            vec![("retry-after".into(), s.retry_after.to_string())],
            envelope_err(
                971,
                "Please wait and consider throttling your request speed",
            ),
        );
    }
    if s.malformed_next {
        s.malformed_next = false;
        return (
            200,
            vec![],
            "<html><body>502 Bad Gateway</body></html>".into(),
        );
    }
    let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let q = |k: &str| {
        req.query
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.clone())
    };
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["client", "v4", "zones"]) => {
            let items = s
                .zones
                .iter()
                .filter(|(_, n)| q("name").is_none_or(|want| &want == n))
                .map(|(id, n)| json!({"id": id, "name": n, "status": "active", "paused": false, "type": "full"}))
                .collect();
            (200, vec![], page(s, req, items))
        }
        (method, ["client", "v4", "zones", zid, "dns_records", rest @ ..]) => {
            let Some(zone_name) = s
                .zones
                .iter()
                .find(|(id, _)| id == zid)
                .map(|(_, n)| n.clone())
            else {
                return (
                    400,
                    vec![],
                    envelope_err(
                        7003,
                        &format!(
                            "Could not route to /zones/{zid}/dns_records, perhaps your object identifier is invalid?"
                        ),
                    ),
                );
            };
            records(s, req, method, zid, &zone_name, rest)
        }
        _ => (404, vec![], envelope_err(7000, "No route for that URI")),
    }
}

fn records(
    s: &mut State,
    req: &Request,
    method: &str,
    zid: &str,
    zone_name: &str,
    rest: &[&str],
) -> Reply {
    let q = |k: &str| {
        req.query
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.clone())
    };
    let body: Value = if req.body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(_) => return (400, vec![], envelope_err(9207, "Request body is invalid.")),
        }
    };
    match (method, rest) {
        ("GET", []) => {
            let items = s
                .records
                .iter()
                .filter(|r| r.zone_id == zid)
                .filter(|r| q("name").is_none_or(|n| n == r.name))
                .filter(|r| q("type").is_none_or(|t| t == r.kind))
                .map(|r| rec_json(r, zone_name))
                .collect();
            (200, vec![], page(s, req, items))
        }
        ("POST", []) => {
            let candidate = Rec {
                id: String::new(),
                zone_id: zid.to_string(),
                name: body["name"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_end_matches('.')
                    .to_string(),
                kind: body["type"].as_str().unwrap_or_default().to_string(),
                content: body["content"].as_str().unwrap_or_default().to_string(),
                ttl: body["ttl"].as_u64().unwrap_or(1),
                proxied: body["proxied"].as_bool().unwrap_or(false),
            };
            if let Some(err) = validate(s, &candidate, None) {
                return err;
            }
            s.next_id += 1;
            let id = format!("{:032x}", s.next_id);
            let rec = Rec { id, ..candidate };
            let out = rec_json(&rec, zone_name);
            s.records.push(rec);
            (200, vec![], ok(out))
        }
        (m @ ("GET" | "PUT" | "PATCH" | "DELETE"), [rid]) => {
            let Some(i) = s
                .records
                .iter()
                .position(|r| r.id == *rid && r.zone_id == zid)
            else {
                return (404, vec![], envelope_err(81044, "Record does not exist."));
            };
            match m {
                "GET" => (200, vec![], ok(rec_json(&s.records[i], zone_name))),
                "DELETE" => {
                    s.records.remove(i);
                    (200, vec![], ok(json!({"id": rid})))
                }
                _ => {
                    let old = s.records[i].clone();
                    // PUT overwrites the record; PATCH changes only the fields given.
                    let field = |k: &str, keep: &str| -> String {
                        match body[k].as_str() {
                            Some(v) => v.trim_end_matches('.').to_string(),
                            None if m == "PATCH" => keep.to_string(),
                            None => String::new(),
                        }
                    };
                    let updated = Rec {
                        id: old.id.clone(),
                        zone_id: old.zone_id.clone(),
                        name: field("name", &old.name),
                        kind: field("type", &old.kind),
                        content: field("content", &old.content),
                        ttl: body["ttl"]
                            .as_u64()
                            .unwrap_or(if m == "PATCH" { old.ttl } else { 1 }),
                        proxied: body["proxied"].as_bool().unwrap_or(if m == "PATCH" {
                            old.proxied
                        } else {
                            false
                        }),
                    };
                    if let Some(err) = validate(s, &updated, Some(&old.id)) {
                        return err;
                    }
                    s.records[i] = updated;
                    (200, vec![], ok(rec_json(&s.records[i], zone_name)))
                }
            }
        }
        _ => (404, vec![], envelope_err(7000, "No route for that URI")),
    }
}

fn validate(s: &State, r: &Rec, except: Option<&str>) -> Option<Reply> {
    let others = || {
        s.records
            .iter()
            .filter(|o| Some(o.id.as_str()) != except && o.zone_id == r.zone_id)
    };
    match r.kind.as_str() {
        "A" if r.content.parse::<std::net::Ipv4Addr>().is_err() => {
            return Some((
                400,
                vec![],
                envelope_err(9005, "Content for A record must be a valid IPv4 address."),
            ));
        }
        "AAAA" if r.content.parse::<std::net::Ipv6Addr>().is_err() => {
            return Some((
                400,
                vec![],
                envelope_err(
                    9006,
                    "Content for AAAA record must be a valid IPv6 address.",
                ),
            ));
        }
        "A" | "AAAA" | "CNAME" => {}
        _ => return Some((400, vec![], envelope_err(9020, "Invalid DNS record type"))),
    }
    if r.ttl != 1 && !(60..=86_400).contains(&r.ttl) {
        return Some((
            400,
            vec![],
            envelope_err(
                9021,
                "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.",
            ),
        ));
    }
    let clash = others().any(|o| {
        o.name == r.name
            && (o.kind == "CNAME") != (r.kind == "CNAME")
            && matches!(o.kind.as_str(), "A" | "AAAA" | "CNAME")
    });
    if clash {
        return Some((
            400,
            vec![],
            envelope_err(
                81053,
                "An A, AAAA, or CNAME record with that host already exists.",
            ),
        ));
    }
    if others().any(|o| o.name == r.name && o.kind == r.kind && o.content == r.content) {
        return Some((
            400,
            vec![],
            envelope_err(81058, "An identical record already exists."),
        ));
    }
    None
}
