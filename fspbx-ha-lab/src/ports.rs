//! Free ports for lab components, so test suites can run in parallel.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::{Mutex, OnceLock};

/// Lowest port handed out.
pub const PORT_MIN: u16 = 20000;
/// One past the highest port handed out.
pub const PORT_MAX: u16 = 60000;

fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static HANDED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    HANDED.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A random number from std's randomly keyed hasher (no extra dependency needed).
pub(crate) fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.finish()
}

/// Whether `port` on `ip` can be bound right now on both TCP and UDP.
pub fn is_free(ip: IpAddr, port: u16) -> bool {
    let addr = SocketAddr::new(ip, port);
    TcpListener::bind(addr).is_ok() && UdpSocket::bind(addr).is_ok()
}

/// A free TCP+UDP port on `ip` (20000..60000, random start, bind-probed on TCP and UDP, never
/// handed out twice by this process).
///
/// # Panics
/// When every port in the range is taken or was handed out already (40,000 ports).
pub fn free_port(ip: IpAddr) -> u16 {
    let span = u64::from(PORT_MAX - PORT_MIN);
    let start = random_u64() % span;
    let mut handed = handed_out().lock().unwrap_or_else(|e| e.into_inner());
    for i in 0..span {
        let port = PORT_MIN + u16::try_from((start + i) % span).unwrap_or(0);
        if handed.contains(&port) {
            continue;
        }
        if is_free(ip, port) {
            handed.insert(port);
            return port;
        }
    }
    panic!("no free port left on {ip} in {PORT_MIN}..{PORT_MAX}");
}

/// A random lowercase hex string of `len` characters (lab passwords and tokens; not for
/// production secrets).
pub fn random_hex(len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        out.push_str(&format!("{:016x}", random_u64()));
    }
    out.truncate(len);
    out
}
