//! The SSH executor: run commands on a node and reach its local services through the SSH
//! connection (russh).
//!
//! - [`SshTarget`]: where and how to connect (plain struct, built from the cluster config).
//! - [`SshSession`]: one authenticated connection, cheap to clone, many channels:
//!   [`exec`](SshSession::exec), [`exec_with_input`](SshSession::exec_with_input) (secrets go
//!   through stdin, never argv), [`open_tcp`](SshSession::open_tcp) and
//!   [`forward_local`](SshSession::forward_local).
//! - [`known_hosts`]: strict host-key checking against an OpenSSH known_hosts file; errors name
//!   the file and the physical line. Trust-on-first-use only when asked, and never for a
//!   changed key.
//!
//! Connection failures (refused, reset, timeout) are retried with exponential backoff; host-key
//! and authentication failures never are. Commands are POSIX shell text, run by `/bin/sh` on
//! the node under coreutils `timeout`, so a command the client gave up on is also stopped on
//! the node.
//!
//! ```no_run
//! # async fn demo() -> fspbx_ha_core::Result<()> {
//! use fspbx_ha_core::ssh::{SshSession, SshTarget};
//! let target = SshTarget::new("pbx-a", "127.0.0.2", 22, "root",
//!     "/root/.ssh/id_ed25519", "/root/.ssh/known_hosts");
//! let ssh = SshSession::connect(&target).await?;
//! let out = ssh.exec("uname -r").await?;
//! assert!(out.success());
//! println!("{}", out.stdout_str());
//! # Ok(()) }
//! ```

mod exec;
mod forward;
mod identity;
pub mod known_hosts;
mod retry;
mod session;
mod target;

pub use exec::ExecOutput;
pub use forward::{LocalForward, SshStream};
pub use session::{SshSession, worst_case_connect_time};
pub use target::SshTarget;
