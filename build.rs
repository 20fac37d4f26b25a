//! Link-time setup for every binary and test of this package (tch's own recipe, see
//! ../shared/reference/rust_stack.md §1.3):
//! - rpath to the libtorch that torch-sys built against, so nothing needs `LD_LIBRARY_PATH`;
//! - `--no-as-needed -ltorch`, so `libtorch.so` (and through it `libtorch_cuda.so`) stays a
//!   NEEDED entry even though no symbol of it is referenced; otherwise CUDA is silently off.
//!
//! It also records build facts that `r1lab info` and run records print.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.lock");
    let libtorch_lib = std::env::var("DEP_TCH_LIBTORCH_LIB").unwrap_or_default();
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        if !libtorch_lib.is_empty() {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{libtorch_lib}");
        }
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
    println!("cargo:rustc-env=R1LAB_BUILD_LIBTORCH_LIB={libtorch_lib}");
    println!("cargo:rustc-env=R1LAB_BUILD_TCH_VERSION={}", locked_version("tch"));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=R1LAB_BUILD_RUSTC={rustc_version}");
}

/// Version of `name` in this package's Cargo.lock ("unknown" when built as a dependency).
fn locked_version(name: &str) -> String {
    let lock = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("Cargo.lock");
    let text = std::fs::read_to_string(lock).unwrap_or_default();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"")
            && let Some(v) = lines.next().and_then(|l| l.trim().strip_prefix("version = "))
        {
            return v.trim_matches('"').to_owned();
        }
    }
    "unknown".into()
}
