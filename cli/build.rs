//! Link settings for the `cairn` binary (rpath to libtorch, `torch_cuda` kept): see
//! `scripts/torch_link.rs`.

include!("../scripts/torch_link.rs");

fn main() {
    println!("cargo:rerun-if-changed=../scripts/torch_link.rs");
    torch_link();
}
