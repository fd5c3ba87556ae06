//! Syncthing client for fspbx-ha (work in progress: see issue 5).
