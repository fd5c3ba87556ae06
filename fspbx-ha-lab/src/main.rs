//! `fspbx-ha-lab`: start and stop the lab.
fn main() {}
