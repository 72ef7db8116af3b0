//! Link settings for this crate's own test and example binaries: see
//! `scripts/torch_link.rs` (shared with the `cairn` binary's and the benches' build scripts).

include!("../scripts/torch_link.rs");

fn main() {
    println!("cargo:rerun-if-changed=../scripts/torch_link.rs");
    torch_link();
}
