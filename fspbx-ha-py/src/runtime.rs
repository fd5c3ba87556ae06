//! One tokio runtime shared by every blocking call; the GIL is released while it runs.

use std::future::Future;
use std::sync::OnceLock;

use pyo3::prelude::*;

/// The shared runtime (background tasks such as a running failover controller live here).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fspbx-ha")
            .enable_all()
            .build()
            .expect("the tokio runtime starts")
    })
}

/// Runs `fut` to completion on the shared runtime with the GIL released.
pub(crate) fn block_on<F>(py: Python<'_>, fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    py.detach(|| runtime().block_on(fut))
}
