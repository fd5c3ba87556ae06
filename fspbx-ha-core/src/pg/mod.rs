//! PostgreSQL connections to a node and what the checks read from it.
//!
//! A node's PostgreSQL is reached directly (`host:port`) or, with `postgres.via_ssh`, through a
//! direct-tcpip channel of the node's SSH connection, so port 5432 never has to be open to the
//! operator's machine. The password is resolved from its secret reference at connect time and
//! handed to the driver only.

mod connect;
mod facts;

pub use connect::{PgConn, connect};
pub use facts::{ServerFacts, TableRef, server_facts, tables_without_identity};
