//! The `vqsgd` command line (being written).
fn main() {}
