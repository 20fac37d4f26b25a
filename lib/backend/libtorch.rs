//! The libtorch this process actually runs on, and loading of `libtorch_cuda.so`.
//!
//! Binaries and tests of this package link `libtorch_cuda.so` through build.rs
//! (`--no-as-needed -ltorch`). Code built by others, notably the cdylib evcxr compiles for every
//! notebook cell, has no such link argument, so the linker drops `libtorch_cuda.so` and
//! `tch::Cuda::is_available()` is false even on a GPU machine. [`ensure_cuda_loaded`] fixes that
//! by `dlopen`ing it from the directory of the loaded `libtorch_cpu.so` before the first CUDA
//! query; loading runs its static initialisers, which register the CUDA backend with libtorch.
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Outcome of making sure the CUDA half of libtorch is in the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CudaLibrary {
    /// `libtorch_cuda.so` was already mapped (linked at build time, or loaded earlier).
    Linked,
    /// This call `dlopen`ed it from the given path.
    Loaded(PathBuf),
    /// The loaded libtorch has no `libtorch_cuda.so` next to it: a CPU-only build.
    CpuOnlyBuild,
    /// The file is there but the loader refused it (message from `dlerror`).
    LoadFailed(String),
    /// No `libtorch_cpu.so` is mapped, so there is nothing to load next to.
    LibtorchNotFound,
}

impl CudaLibrary {
    /// Whether libtorch's CUDA backend is registered in this process.
    pub fn is_loaded(&self) -> bool {
        matches!(self, Self::Linked | Self::Loaded(_))
    }
}

/// Shared libraries mapped into this process whose file name is exactly `file_name`.
fn mapped_paths(file_name: &str) -> Vec<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut paths: Vec<PathBuf> = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .map(PathBuf::from)
        .filter(|p| p.file_name().is_some_and(|n| n == file_name))
        .collect();
    paths.dedup();
    paths
}

/// Whether a shared library with this file name (e.g. `libtorch_cuda.so`) is mapped.
pub fn is_mapped(file_name: &str) -> bool {
    !mapped_paths(file_name).is_empty()
}

/// Directory of the `libtorch_cpu.so` this process runs on.
pub fn loaded_dir() -> Option<PathBuf> {
    mapped_paths("libtorch_cpu.so").into_iter().next().and_then(|p| p.parent().map(Path::to_path_buf))
}

/// Version of the loaded libtorch, e.g. `2.11.0+cu130`: read from `torch/version.py` for the
/// PyPI wheel, or `build-version` for a standalone libtorch archive.
pub fn loaded_version() -> Option<String> {
    version_of(&loaded_dir()?)
}

/// Version of the libtorch whose `lib/` directory is `lib_dir`.
pub fn version_of(lib_dir: &Path) -> Option<String> {
    let root = lib_dir.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        return text
            .lines()
            .find_map(|l| l.trim().strip_prefix("__version__"))
            .map(|rest| rest.trim_start_matches([' ', '=']).trim().trim_matches(['\'', '"']).to_owned());
    }
    std::fs::read_to_string(root.join("build-version")).ok().map(|s| s.trim().to_owned())
}

/// Makes sure `libtorch_cuda.so` is loaded (once per process; later calls return the first
/// outcome). Call before the first `tch::Cuda` query; [`super::DeviceSpec::resolve`] does.
pub fn ensure_cuda_loaded() -> &'static CudaLibrary {
    static OUTCOME: OnceLock<CudaLibrary> = OnceLock::new();
    OUTCOME.get_or_init(load_cuda)
}

fn load_cuda() -> CudaLibrary {
    if is_mapped("libtorch_cuda.so") {
        return CudaLibrary::Linked;
    }
    let Some(dir) = loaded_dir() else {
        return CudaLibrary::LibtorchNotFound;
    };
    let path = dir.join("libtorch_cuda.so");
    if !path.exists() {
        return CudaLibrary::CpuOnlyBuild;
    }
    let Ok(c_path) = CString::new(path.as_os_str().as_encoded_bytes()) else {
        return CudaLibrary::LoadFailed(format!("path {} contains a NUL byte", path.display()));
    };
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call. The handle is
    // deliberately never closed: libtorch's CUDA backend must stay registered for the process.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns NULL or a NUL-terminated string owned by the loader, valid
        // until the next dl* call on this thread; it is copied out immediately.
        let msg = unsafe {
            let err = libc::dlerror();
            if err.is_null() {
                "unknown dlopen error".to_owned()
            } else {
                CStr::from_ptr(err).to_string_lossy().into_owned()
            }
        };
        return CudaLibrary::LoadFailed(msg);
    }
    CudaLibrary::Loaded(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_loaded_libtorch_and_its_version() {
        let _ = tch::Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
        let dir = loaded_dir().expect("libtorch_cpu.so must be mapped in a tch test binary");
        assert!(dir.join("libtorch_cpu.so").exists());
        let version = loaded_version().expect("libtorch version readable");
        assert!(version.starts_with("2.11.0"), "tch 0.24 needs libtorch 2.11.0, found {version}");
    }

    #[test]
    fn cuda_half_is_loaded_whenever_libtorch_ships_it() {
        let dir = loaded_dir().unwrap();
        let outcome = ensure_cuda_loaded();
        if dir.join("libtorch_cuda.so").exists() {
            // build.rs links it with --no-as-needed, so it is mapped before any dlopen.
            assert_eq!(outcome, &CudaLibrary::Linked);
            assert!(is_mapped("libtorch_cuda.so"));
        } else {
            assert_eq!(outcome, &CudaLibrary::CpuOnlyBuild);
        }
        assert!(std::ptr::eq(outcome, ensure_cuda_loaded()), "outcome is computed once");
    }

    #[test]
    fn version_files_of_both_distributions_parse() {
        let tmp = tempfile::tempdir().unwrap();
        let wheel = tmp.path().join("torch");
        std::fs::create_dir_all(wheel.join("lib")).unwrap();
        std::fs::write(
            wheel.join("version.py"),
            "from typing import Optional\n__version__ = '2.11.0+cu130'\ngit_version = 'x'\n",
        )
        .unwrap();
        assert_eq!(version_of(&wheel.join("lib")).as_deref(), Some("2.11.0+cu130"));
        let archive = tmp.path().join("libtorch");
        std::fs::create_dir_all(archive.join("lib")).unwrap();
        std::fs::write(archive.join("build-version"), "2.11.0+cpu\n").unwrap();
        assert_eq!(version_of(&archive.join("lib")).as_deref(), Some("2.11.0+cpu"));
        assert_eq!(version_of(&tmp.path().join("nothing/lib")), None);
    }
}
