//! The protocol side of the SIP OPTIONS probe, without I/O: building the request, parsing a
//! response (status line and headers, compact and folded forms, `Content-Length` framing on
//! stream transports) and deciding whether a response answers our request and what it means.
//!
//! ```
//! use fspbx_ha_core::probe::sip_message::{Framing, OptionsRequest, Parsed, parse_response};
//! use fspbx_ha_core::probe::SipTransport;
//! let req = OptionsRequest::new(SipTransport::Udp, "127.0.0.2", 5060, "127.0.0.2:40000".parse().unwrap());
//! let answer = format!(
//!     "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 127.0.0.2:40000;branch={};rport=40000\r\n\
//!      i: {}\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n",
//!     req.branch, req.call_id
//! );
//! let Parsed::Complete { response, .. } = parse_response(answer.as_bytes(), Framing::Datagram).unwrap()
//! else { unreachable!() };
//! assert!(req.is_answered_by(&response));
//! assert_eq!(response.status, 200);
//! ```

use std::fmt;
use std::net::SocketAddr;

use rand::Rng;
use rand::distr::Alphanumeric;

use crate::config::SipTransport;

/// The magic cookie every RFC 3261 branch starts with.
pub const BRANCH_COOKIE: &str = "z9hG4bK";
/// `User-Agent` of our requests.
pub const USER_AGENT: &str = "fspbx-ha";
/// Largest header section accepted on a stream transport before giving up.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// A SIP OPTIONS request of the probe, with the identifiers its response must echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionsRequest {
    /// Transport (goes into the Via).
    pub transport: SipTransport,
    /// Host of the Request-URI (name or address).
    pub host: String,
    /// Port of the Request-URI.
    pub port: u16,
    /// Our address as the server sees it: Via sent-by and Contact.
    pub local: SocketAddr,
    /// The Via branch, starting with [`BRANCH_COOKIE`].
    pub branch: String,
    /// Call-ID.
    pub call_id: String,
    /// From tag.
    pub from_tag: String,
    /// CSeq number (the method is OPTIONS).
    pub cseq: u32,
}

fn random_token(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// `host` as it goes into a SIP URI: IPv6 addresses in brackets.
pub fn uri_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

impl OptionsRequest {
    /// A request to `sip:ping@host:port` from `local` with a fresh random branch, Call-ID and
    /// From tag, CSeq 1.
    pub fn new(
        transport: SipTransport,
        host: &str,
        port: u16,
        local: SocketAddr,
    ) -> OptionsRequest {
        OptionsRequest {
            transport,
            host: host.to_owned(),
            port,
            local,
            branch: format!("{BRANCH_COOKIE}{}", random_token(24)),
            call_id: format!("{}@fspbx-ha", random_token(24)),
            from_tag: random_token(12),
            cseq: 1,
        }
    }

    /// `sip:ping@host:port`.
    pub fn request_uri(&self) -> String {
        format!("sip:ping@{}:{}", uri_host(&self.host), self.port)
    }

    /// The request as sent on the wire.
    pub fn render(&self) -> String {
        let transport = match self.transport {
            SipTransport::Udp => "UDP",
            SipTransport::Tcp => "TCP",
        };
        let uri = self.request_uri();
        let local = self.local;
        format!(
            "OPTIONS {uri} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{USER_AGENT}@{local_host}>;tag={tag}\r\n\
             To: <{uri}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} OPTIONS\r\n\
             Contact: <sip:{USER_AGENT}@{local};transport={transport_lc}>\r\n\
             Accept: application/sdp\r\n\
             User-Agent: {USER_AGENT}\r\n\
             Content-Length: 0\r\n\
             \r\n",
            branch = self.branch,
            local_host = uri_host(&local.ip().to_string()),
            tag = self.from_tag,
            call_id = self.call_id,
            cseq = self.cseq,
            transport_lc = transport.to_ascii_lowercase(),
        )
    }

    /// Why `response` does not answer this request, or `None` when it does: same branch in the
    /// top Via, same Call-ID, same CSeq number and method.
    pub fn mismatch(&self, response: &SipResponse) -> Option<&'static str> {
        match response.top_via_branch() {
            Some(b) if b.eq_ignore_ascii_case(&self.branch) => {}
            Some(_) => return Some("another Via branch"),
            None => return Some("no Via branch"),
        }
        if response.call_id() != Some(self.call_id.as_str()) {
            return Some("another Call-ID");
        }
        match response.cseq() {
            Some((n, m)) if n == self.cseq && m == "OPTIONS" => None,
            _ => Some("another CSeq"),
        }
    }

    /// Whether `response` answers this request (see [`OptionsRequest::mismatch`]).
    pub fn is_answered_by(&self, response: &SipResponse) -> bool {
        self.mismatch(response).is_none()
    }
}

/// A parsed SIP response: status line and headers (the body is only counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipResponse {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers in order: full lowercase names (compact forms expanded), unfolded values.
    pub headers: Vec<(String, String)>,
    /// Length of the body.
    pub body_len: usize,
}

impl SipResponse {
    /// Values of header `name` in order (case-insensitive; compact names accepted).
    pub fn headers_named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = canonical_name(name);
        self.headers
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).next()
    }

    /// The topmost Via (first value of the first Via header).
    pub fn top_via(&self) -> Option<&str> {
        self.header("via").map(|v| split_top_level(v).0.trim())
    }

    /// The `branch` parameter of the topmost Via.
    pub fn top_via_branch(&self) -> Option<&str> {
        self.top_via()?.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("branch").then(|| v.trim())
        })
    }

    /// Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.header("call-id").map(str::trim)
    }

    /// CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let mut it = self.header("cseq")?.split_whitespace();
        let n = it.next()?.parse().ok()?;
        Some((n, it.next()?))
    }

    /// `Server` (or `User-Agent`) header, when sent.
    pub fn server(&self) -> Option<&str> {
        self.header("server").or_else(|| self.header("user-agent"))
    }

    /// A 1xx response.
    pub fn is_provisional(&self) -> bool {
        (100..200).contains(&self.status)
    }

    /// `200 OK`-style summary: status and reason.
    pub fn status_line(&self) -> String {
        format!("{} {}", self.status, self.reason)
    }
}

/// The first element of a comma-separated header value and the rest (commas inside quotes or
/// angle brackets do not split).
fn split_top_level(value: &str) -> (&str, Option<&str>) {
    let (mut quoted, mut angle) = (false, false);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => return (&value[..i], Some(&value[i + 1..])),
            _ => {}
        }
    }
    (value, None)
}

/// Full lowercase header name; compact forms (RFC 3261 §7.3.3 and extensions) expanded.
pub fn canonical_name(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let full = match lower.as_str() {
        "v" => "via",
        "i" => "call-id",
        "l" => "content-length",
        "f" => "from",
        "t" => "to",
        "m" => "contact",
        "c" => "content-type",
        "e" => "content-encoding",
        "k" => "supported",
        "s" => "subject",
        "o" => "event",
        "u" => "allow-events",
        "r" => "refer-to",
        "b" => "referred-by",
        "x" => "session-expires",
        _ => return lower,
    };
    full.to_owned()
}

/// How messages are delimited on the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// UDP: one datagram is one message; a missing `Content-Length` means "the rest".
    Datagram,
    /// TCP: messages follow each other; `Content-Length` is required to find the end.
    Stream,
}

/// What [`parse_response`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole response, `len` bytes long (including leading keepalive CRLFs and the body).
    Complete {
        /// The response.
        response: SipResponse,
        /// Bytes consumed from the buffer.
        len: usize,
    },
    /// More bytes are needed (stream framing only).
    Incomplete,
}

/// Why bytes are not a SIP response. Data, not an error of this crate: it ends up in an
/// observation's detail (or the bytes are skipped, on UDP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// What is wrong.
    pub reason: &'static str,
    /// The offending line (shortened).
    pub excerpt: String,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?}", self.reason, self.excerpt)
    }
}

fn malformed(reason: &'static str, line: &[u8]) -> Malformed {
    let text = String::from_utf8_lossy(line);
    Malformed {
        reason,
        excerpt: text.chars().take(80).collect(),
    }
}

/// Parses one SIP response from the start of `buf`.
pub fn parse_response(buf: &[u8], framing: Framing) -> Result<Parsed, Malformed> {
    // Keepalives (RFC 5626: CRLF pings) may precede a message.
    let start = buf
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .unwrap_or(buf.len());
    let msg = &buf[start..];
    if msg.is_empty() {
        return match framing {
            Framing::Stream => Ok(Parsed::Incomplete),
            Framing::Datagram => Err(malformed("keepalive, not a message", buf)),
        };
    }
    // Find the end of the header section (an empty line; CRLF or bare LF tolerated).
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut pos = 0;
    let mut header_end = None;
    while let Some(nl) = msg[pos..].iter().position(|b| *b == b'\n') {
        let mut line = &msg[pos..pos + nl];
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        pos += nl + 1;
        if line.is_empty() {
            header_end = Some(pos);
            break;
        }
        lines.push(line);
    }
    let header_end = match (header_end, framing) {
        (Some(e), _) => e,
        (None, Framing::Stream) => {
            if msg.len() > MAX_HEADER_BYTES {
                return Err(malformed(
                    "header section too long",
                    &msg[..80.min(msg.len())],
                ));
            }
            // The status line alone already tells whether this is a response at all.
            if !lines.is_empty() {
                status_line(lines[0])?;
            }
            return Ok(Parsed::Incomplete);
        }
        (None, Framing::Datagram) => {
            if pos < msg.len() {
                lines.push(msg[pos..].strip_suffix(b"\r").unwrap_or(&msg[pos..]));
            }
            msg.len()
        }
    };
    let Some((first, header_lines)) = lines.split_first() else {
        return Err(malformed("empty message", msg));
    };
    let (status, reason) = status_line(first)?;

    let mut headers: Vec<(String, String)> = Vec::new();
    for line in header_lines {
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            // Folded continuation of the previous header.
            let Some((_, value)) = headers.last_mut() else {
                return Err(malformed("continuation line before any header", line));
            };
            value.push(' ');
            value.push_str(String::from_utf8_lossy(line).trim());
            continue;
        }
        let text = String::from_utf8_lossy(line);
        let Some((name, value)) = text.split_once(':') else {
            return Err(malformed("header line without ':'", line));
        };
        if name.trim().is_empty() || name.trim().contains(char::is_whitespace) {
            return Err(malformed("bad header name", line));
        }
        headers.push((canonical_name(name), value.trim().to_owned()));
    }

    let content_length = match headers.iter().find(|(n, _)| n == "content-length") {
        Some((_, v)) => Some(
            v.parse::<usize>()
                .map_err(|_| malformed("bad Content-Length", v.as_bytes()))?,
        ),
        None => None,
    };
    let available = msg.len() - header_end;
    let body_len = match (framing, content_length) {
        (Framing::Stream, None) => {
            return Err(malformed("no Content-Length on a stream transport", first));
        }
        (Framing::Stream, Some(n)) if available < n => return Ok(Parsed::Incomplete),
        (Framing::Stream, Some(n)) => n,
        (Framing::Datagram, Some(n)) if available < n => {
            return Err(malformed("datagram shorter than its Content-Length", first));
        }
        (Framing::Datagram, Some(n)) => n,
        (Framing::Datagram, None) => available,
    };
    Ok(Parsed::Complete {
        response: SipResponse {
            status,
            reason,
            headers,
            body_len,
        },
        len: start + header_end + body_len,
    })
}

/// `SIP/2.0 200 OK` → (200, "OK").
fn status_line(line: &[u8]) -> Result<(u16, String), Malformed> {
    let text = String::from_utf8_lossy(line);
    let mut parts = text.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        let reason = if text.trim_end().to_ascii_uppercase().ends_with(" SIP/2.0") {
            "a SIP request, not a response"
        } else {
            "not a SIP/2.0 status line"
        };
        return Err(malformed(reason, line));
    }
    let code = parts.next().unwrap_or_default();
    let status = match code.parse::<u16>() {
        Ok(s) if code.len() == 3 && (100..=699).contains(&s) => s,
        _ => return Err(malformed("bad status code", line)),
    };
    Ok((status, parts.next().unwrap_or_default().trim().to_owned()))
}

/// Which answers count as healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SipAcceptance {
    /// Any final answer (≥ 200): the SIP stack is alive, even if it refuses us.
    #[default]
    AnyFinal,
    /// Only 2xx.
    Require2xx,
}

/// What a matching response means for the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 1xx: keep waiting for the final answer.
    Provisional,
    /// A final answer that counts as healthy.
    Healthy,
    /// A final answer that does not.
    Unhealthy,
}

/// What `response` (already matched to our request) means under `acceptance`.
pub fn classify(response: &SipResponse, acceptance: SipAcceptance) -> Outcome {
    if response.is_provisional() {
        return Outcome::Provisional;
    }
    match acceptance {
        SipAcceptance::AnyFinal => Outcome::Healthy,
        SipAcceptance::Require2xx if (200..300).contains(&response.status) => Outcome::Healthy,
        SipAcceptance::Require2xx => Outcome::Unhealthy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(t: SipTransport) -> OptionsRequest {
        OptionsRequest {
            transport: t,
            host: "pbx.example.test".into(),
            port: 5060,
            local: "192.0.2.7:40123".parse().unwrap(),
            branch: "z9hG4bKabc123".into(),
            call_id: "call-1@fspbx-ha".into(),
            from_tag: "tag1".into(),
            cseq: 1,
        }
    }

    fn complete(buf: &[u8], f: Framing) -> (SipResponse, usize) {
        match parse_response(buf, f).unwrap() {
            Parsed::Complete { response, len } => (response, len),
            Parsed::Incomplete => panic!("incomplete"),
        }
    }

    #[test]
    fn request_has_every_mandatory_header() {
        let text = req(SipTransport::Udp).render();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "OPTIONS sip:ping@pbx.example.test:5060 SIP/2.0");
        for l in [
            "Via: SIP/2.0/UDP 192.0.2.7:40123;branch=z9hG4bKabc123;rport",
            "Max-Forwards: 70",
            "From: <sip:fspbx-ha@192.0.2.7>;tag=tag1",
            "To: <sip:ping@pbx.example.test:5060>",
            "Call-ID: call-1@fspbx-ha",
            "CSeq: 1 OPTIONS",
            "Contact: <sip:fspbx-ha@192.0.2.7:40123;transport=udp>",
            "User-Agent: fspbx-ha",
            "Content-Length: 0",
        ] {
            assert!(lines.contains(&l), "missing {l:?} in\n{text}");
        }
        assert!(text.ends_with("\r\n\r\n"));
        let tcp = req(SipTransport::Tcp).render();
        assert!(tcp.contains("Via: SIP/2.0/TCP 192.0.2.7:40123;branch="));
    }

    #[test]
    fn fresh_requests_get_fresh_identifiers() {
        let local = "127.0.0.2:1".parse().unwrap();
        let a = OptionsRequest::new(SipTransport::Udp, "::1", 5060, local);
        let b = OptionsRequest::new(SipTransport::Udp, "::1", 5060, local);
        assert!(a.branch.starts_with(BRANCH_COOKIE) && a.branch.len() > 20);
        assert_ne!(a.branch, b.branch);
        assert_ne!(a.call_id, b.call_id);
        assert_ne!(a.from_tag, b.from_tag);
        assert_eq!(a.request_uri(), "sip:ping@[::1]:5060");
    }

    #[test]
    fn parses_kamailio_style_response_and_matches() {
        let r = req(SipTransport::Udp);
        let text = "SIP/2.0 200 OK\r\n\
            Via: SIP/2.0/UDP 192.0.2.7:40123;branch=z9hG4bKabc123;rport=40123;received=192.0.2.7\r\n\
            From: <sip:fspbx-ha@192.0.2.7>;tag=tag1\r\n\
            To: <sip:ping@pbx.example.test:5060>;tag=xyz\r\n\
            Call-ID: call-1@fspbx-ha\r\n\
            CSeq: 1 OPTIONS\r\n\
            Server: kamailio (5.6.3 (x86_64/linux))\r\n\
            Content-Length: 0\r\n\r\n";
        let (resp, len) = complete(text.as_bytes(), Framing::Datagram);
        assert_eq!(len, text.len());
        assert_eq!((resp.status, resp.reason.as_str()), (200, "OK"));
        assert_eq!(resp.top_via_branch(), Some("z9hG4bKabc123"));
        assert_eq!(resp.server(), Some("kamailio (5.6.3 (x86_64/linux))"));
        assert!(r.is_answered_by(&resp));
        assert_eq!(classify(&resp, SipAcceptance::Require2xx), Outcome::Healthy);
    }

    #[test]
    fn compact_and_folded_headers() {
        let text = "SIP/2.0 403 Forbidden\n\
            v: SIP/2.0/TCP 192.0.2.7:40123\n\
            \t;branch=z9hG4bKabc123 , SIP/2.0/UDP proxy.example;branch=z9hG4bKother\n\
            i: call-1@fspbx-ha\n\
            CSEQ:   1\n  OPTIONS\n\
            l: 4\n\nbody";
        let (resp, len) = complete(text.as_bytes(), Framing::Stream);
        assert_eq!(len, text.len());
        assert_eq!(resp.body_len, 4);
        assert_eq!(
            resp.top_via(),
            Some("SIP/2.0/TCP 192.0.2.7:40123 ;branch=z9hG4bKabc123")
        );
        assert_eq!(resp.top_via_branch(), Some("z9hG4bKabc123"));
        assert_eq!(resp.cseq(), Some((1, "OPTIONS")));
        assert_eq!(resp.header("Call-ID"), Some("call-1@fspbx-ha"));
        assert_eq!(resp.header("i"), Some("call-1@fspbx-ha"));
        assert!(req(SipTransport::Tcp).is_answered_by(&resp));
        assert_eq!(classify(&resp, SipAcceptance::AnyFinal), Outcome::Healthy);
        assert_eq!(
            classify(&resp, SipAcceptance::Require2xx),
            Outcome::Unhealthy
        );
    }

    #[test]
    fn second_via_header_is_not_the_top_one() {
        let text = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bKfirst\r\n\
            Via: SIP/2.0/UDP b;branch=z9hG4bKabc123\r\nCall-ID: call-1@fspbx-ha\r\n\
            CSeq: 1 OPTIONS\r\n\r\n";
        let (resp, _) = complete(text.as_bytes(), Framing::Datagram);
        assert_eq!(resp.top_via_branch(), Some("z9hG4bKfirst"));
        assert_eq!(
            req(SipTransport::Udp).mismatch(&resp),
            Some("another Via branch")
        );
    }

    #[test]
    fn mismatches_are_named() {
        let r = req(SipTransport::Udp);
        let base = |via: &str, cid: &str, cseq: &str| {
            let t =
                format!("SIP/2.0 200 OK\r\nVia: {via}\r\nCall-ID: {cid}\r\nCSeq: {cseq}\r\n\r\n");
            complete(t.as_bytes(), Framing::Datagram).0
        };
        let good_via = "SIP/2.0/UDP x;branch=z9hG4bKabc123";
        assert_eq!(
            r.mismatch(&base(good_via, "call-1@fspbx-ha", "1 OPTIONS")),
            None
        );
        assert_eq!(
            r.mismatch(&base("SIP/2.0/UDP x;rport", "call-1@fspbx-ha", "1 OPTIONS")),
            Some("no Via branch")
        );
        assert_eq!(
            r.mismatch(&base(good_via, "other@x", "1 OPTIONS")),
            Some("another Call-ID")
        );
        assert_eq!(
            r.mismatch(&base(good_via, "call-1@fspbx-ha", "2 OPTIONS")),
            Some("another CSeq")
        );
        assert_eq!(
            r.mismatch(&base(good_via, "call-1@fspbx-ha", "1 INVITE")),
            Some("another CSeq")
        );
    }

    #[test]
    fn provisional_is_skipped() {
        let (resp, _) = complete(b"SIP/2.0 100 Trying\r\nl: 0\r\n\r\n", Framing::Stream);
        assert_eq!(
            classify(&resp, SipAcceptance::AnyFinal),
            Outcome::Provisional
        );
        let (resp, _) = complete(
            b"SIP/2.0 503 Service Unavailable\r\n\r\n",
            Framing::Datagram,
        );
        assert_eq!(classify(&resp, SipAcceptance::AnyFinal), Outcome::Healthy);
        assert_eq!(
            classify(&resp, SipAcceptance::Require2xx),
            Outcome::Unhealthy
        );
    }

    #[test]
    fn stream_framing_waits_for_headers_and_body_and_leaves_the_rest() {
        let full = b"\r\n\r\nSIP/2.0 200 OK\r\nContent-Length: 3\r\n\r\nabcSIP/2.0 100 Trying\r\n";
        let first_len = full.len() - b"SIP/2.0 100 Trying\r\n".len();
        for cut in 0..first_len {
            assert_eq!(
                parse_response(&full[..cut], Framing::Stream),
                Ok(Parsed::Incomplete),
                "cut at {cut}"
            );
        }
        let (resp, len) = complete(full, Framing::Stream);
        assert_eq!((resp.status, resp.body_len, len), (200, 3, first_len));
        assert_eq!(
            parse_response(&full[len..], Framing::Stream),
            Ok(Parsed::Incomplete)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let e = |b: &[u8], f| parse_response(b, f).unwrap_err().reason;
        assert_eq!(
            e(b"OPTIONS sip:x SIP/2.0\r\n\r\n", Framing::Datagram),
            "a SIP request, not a response"
        );
        assert_eq!(
            e(b"HTTP/1.1 200 OK\r\n\r\n", Framing::Datagram),
            "not a SIP/2.0 status line"
        );
        assert_eq!(
            e(b"SIP/2.0 20 OK\r\n\r\n", Framing::Datagram),
            "bad status code"
        );
        assert_eq!(
            e(b"SIP/2.0 200 OK\r\nnocolon\r\n\r\n", Framing::Datagram),
            "header line without ':'"
        );
        assert_eq!(
            e(b"SIP/2.0 200 OK\r\nl: x\r\n\r\n", Framing::Datagram),
            "bad Content-Length"
        );
        assert_eq!(
            e(b"SIP/2.0 200 OK\r\nl: 9\r\n\r\nab", Framing::Datagram),
            "datagram shorter than its Content-Length"
        );
        assert_eq!(
            e(b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n", Framing::Stream),
            "no Content-Length on a stream transport"
        );
        assert_eq!(
            e(b"\r\n\r\n", Framing::Datagram),
            "keepalive, not a message"
        );
        // A stream that is not SIP at all is refused before its headers end.
        assert_eq!(
            e(b"HTTP/1.1 400 Bad\r\n", Framing::Stream),
            "not a SIP/2.0 status line"
        );
    }

    proptest::proptest! {
        /// Bytes from the network never make the parser panic, whatever the framing.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse_response(&bytes, Framing::Datagram);
            let _ = parse_response(&bytes, Framing::Stream);
        }

        /// Our answer, with headers in any case and compact or full names, split anywhere on a
        /// stream: incomplete before the last byte, then complete and matched.
        #[test]
        fn any_split_of_a_matching_answer(
            compact in proptest::bool::ANY,
            upper in proptest::bool::ANY,
            status in 100u16..700,
            body in "[a-z]{0,20}",
            cut_seed in proptest::num::usize::ANY,
        ) {
            let r = req(SipTransport::Tcp);
            let name = |full: &str, short: &str| {
                let n = if compact { short } else { full };
                if upper { n.to_ascii_uppercase() } else { n.to_owned() }
            };
            let text = format!(
                "SIP/2.0 {status} Whatever\r\n{}: SIP/2.0/TCP 192.0.2.7:40123;branch={};rport\r\n\
                 {}: {}\r\nCSeq: 1 OPTIONS\r\n{}: {}\r\n\r\n{body}",
                name("Via", "v"), r.branch, name("Call-ID", "i"), r.call_id,
                name("Content-Length", "l"), body.len(),
            );
            let bytes = text.as_bytes();
            let cut = cut_seed % bytes.len();
            proptest::prop_assert_eq!(parse_response(&bytes[..cut], Framing::Stream), Ok(Parsed::Incomplete));
            let (resp, len) = complete(bytes, Framing::Stream);
            proptest::prop_assert_eq!(len, bytes.len());
            proptest::prop_assert_eq!(resp.status, status);
            proptest::prop_assert!(r.is_answered_by(&resp));
        }
    }

    #[test]
    fn datagram_without_content_length_takes_the_rest() {
        let (resp, _) = complete(
            b"SIP/2.0 200 OK\r\nCall-ID: a\r\n\r\nxyz",
            Framing::Datagram,
        );
        assert_eq!(resp.body_len, 3);
        // A datagram missing its final empty line is still read.
        let (resp, _) = complete(b"SIP/2.0 200 OK\r\nCall-ID: a", Framing::Datagram);
        assert_eq!(resp.call_id(), Some("a"));
    }
}
