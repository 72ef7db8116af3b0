// Link settings for every crate whose binaries (or tests, benches) link libtorch through
// `tch`. Not a module: build scripts pull it in with
//     include!("../scripts/torch_link.rs");
// and call `torch_link()` from their `main`, so the logic lives in one place.
//
// Why: `cargo:rustc-link-arg` from a library's build script reaches only that crate's own
// targets, never its dependents, so each crate that produces an executable must say it.

/// Where libtorch's shared libraries are, found the way torch-sys finds them.
///
/// In order: the metadata torch-sys exports to crates depending on it directly
/// (`DEP_TCH_LIBTORCH_LIB`); `LIBTORCH_LIB` or `LIBTORCH` (+ `/lib`); with
/// `LIBTORCH_USE_PYTORCH`, the `torch` package of the Python on PATH; `/usr/lib`.
fn libtorch_lib_dir() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    for var in ["DEP_TCH_LIBTORCH_LIB", "LIBTORCH_LIB", "LIBTORCH", "LIBTORCH_USE_PYTORCH", "VIRTUAL_ENV", "PATH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if let Some(dir) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") {
        return Some(PathBuf::from(dir));
    }
    for var in ["LIBTORCH_LIB", "LIBTORCH"] {
        if let Some(root) = std::env::var_os(var) {
            return Some(PathBuf::from(root).join("lib"));
        }
    }
    if std::env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        // The interpreter torch-sys picks: `python` inside a virtualenv, else `python3`.
        let python = if std::env::var_os("VIRTUAL_ENV").is_some() { "python" } else { "python3" };
        let out = std::process::Command::new(python)
            .args(["-c", "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))"])
            .output()
            .ok()?;
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        return (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir));
    }
    std::path::Path::new("/usr/lib/libtorch.so").exists().then(|| PathBuf::from("/usr/lib"))
}

/// Emits the link arguments: an rpath to libtorch's lib dir (no LD_LIBRARY_PATH needed to
/// run), and `torch_cuda` linked even though no symbol of it is referenced (else the
/// linker's `--as-needed` drops it and `tch::Cuda::is_available()` is false on a GPU).
fn torch_link() {
    let Some(dir) = libtorch_lib_dir() else {
        println!("cargo:warning=libtorch lib dir not found: binaries will need LD_LIBRARY_PATH");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    if dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
