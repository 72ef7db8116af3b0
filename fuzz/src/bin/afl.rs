//! The AFL++ harness: runs the target named by the first argument (or `CAIRN_FUZZ_TARGET`)
//! in afl.rs's persistent mode. Build with `cargo afl build --release --features afl`;
//! see `fuzz/README.md`.

fn main() {
    let name = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("CAIRN_FUZZ_TARGET").ok())
        .unwrap_or_default();
    let Some(target) = cairn_fuzz::target(&name) else {
        let names: Vec<&str> = cairn_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!("usage: afl TARGET (one of: {})", names.join(", "));
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| target(data));
}
