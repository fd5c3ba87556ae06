//! Dev-only lab: starts and stops REAL components (PostgreSQL, OpenSSH, ...) on loopback for the
//! test suites and the demo.
//!
//! Every process the lab starts is owned by a [`process::Guard`] that stops it by PID when it is
//! dropped (also when a test panics), because PID 1 on the lab machines is no init.
//! Node A listens on 127.0.0.2 and node B on 127.0.0.3; ports come from [`ports::free_port`] so
//! suites run in parallel. The API is synchronous (std::process) so it works from any test.
//!
//! Components live in one module each (`postgres`, `sshd`, ...); [`lab`] composes them into the
//! two-node lab the `fspbx-ha-lab` binary starts.

pub mod cluster_toml;
pub mod kamailio;
pub mod knot;
pub mod lab;
pub mod moto;
pub mod paths;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod sipp;
pub mod sshd;
pub mod syncthing;
pub mod upgrade;

mod error;

pub use error::Error;

/// Node A's loopback address.
pub const NODE_A_IP: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
/// Node B's loopback address.
pub const NODE_B_IP: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));
