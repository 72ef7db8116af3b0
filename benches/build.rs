//! Link settings for the bench binaries that link libtorch (through `cairn-participant`):
//! see `scripts/torch_link.rs`.

include!("../scripts/torch_link.rs");

fn main() {
    println!("cargo:rerun-if-changed=../scripts/torch_link.rs");
    torch_link();
}
