//! `r1lab info`: versions, libtorch location, CUDA state and the selected device, as one
//! serialisable struct (run records embed the same struct).
use std::fmt;

use serde::Serialize;
use tch::{Cuda, Device};

use super::device::{DeviceSpec, cuda_unavailable_reason, device_name};
use super::libtorch;

#[derive(Debug, Clone, Serialize)]
pub struct EnvInfo {
    pub r1lab_version: String,
    pub tch_version: String,
    pub rustc: String,
    /// Version of the libtorch mapped into this process (e.g. `2.11.0+cu130`).
    pub libtorch_version: Option<String>,
    /// Directory of the mapped `libtorch_cpu.so`.
    pub libtorch_dir: Option<String>,
    /// The libtorch `lib/` torch-sys compiled against (empty outside this package's build).
    pub libtorch_build_dir: String,
    pub cuda: CudaInfo,
    pub cpu_threads: i32,
    pub mkl: bool,
    pub openmp: bool,
    /// What was asked for (`--device`) and what it resolved to.
    pub device_requested: String,
    pub device: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CudaInfo {
    /// Outcome of loading `libtorch_cuda.so` (see [`libtorch::CudaLibrary`]).
    pub library: String,
    pub available: bool,
    pub device_count: i64,
    pub cudnn_available: bool,
    /// Why CUDA cannot be used, when it cannot.
    pub unavailable_reason: Option<String>,
}

impl EnvInfo {
    /// Collects the facts for a device that was already resolved from `requested`.
    pub fn collect(requested: DeviceSpec, device: Device) -> Self {
        let library = libtorch::ensure_cuda_loaded();
        let available = library.is_loaded() && Cuda::is_available();
        let cuda = CudaInfo {
            library: format!("{library:?}"),
            available,
            device_count: if available { Cuda::device_count() } else { 0 },
            cudnn_available: available && Cuda::cudnn_is_available(),
            unavailable_reason: (!available).then(cuda_unavailable_reason),
        };
        Self {
            r1lab_version: env!("CARGO_PKG_VERSION").into(),
            tch_version: env!("R1LAB_BUILD_TCH_VERSION").into(),
            rustc: env!("R1LAB_BUILD_RUSTC").into(),
            libtorch_version: libtorch::loaded_version(),
            libtorch_dir: libtorch::loaded_dir().map(|d| d.display().to_string()),
            libtorch_build_dir: env!("R1LAB_BUILD_LIBTORCH_LIB").into(),
            cuda,
            cpu_threads: tch::get_num_threads(),
            mkl: tch::utils::has_mkl(),
            openmp: tch::utils::has_openmp(),
            device_requested: requested.to_string(),
            device: device_name(device),
        }
    }
}

impl fmt::Display for EnvInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let na = || "unknown".to_owned();
        writeln!(f, "r1lab     {}", self.r1lab_version)?;
        writeln!(f, "tch       {}  ({})", self.tch_version, self.rustc)?;
        writeln!(f, "libtorch  {}", self.libtorch_version.clone().unwrap_or_else(na))?;
        writeln!(f, "  loaded from  {}", self.libtorch_dir.clone().unwrap_or_else(na))?;
        writeln!(f, "  built against {}", self.libtorch_build_dir)?;
        writeln!(f, "  cpu threads {}, mkl {}, openmp {}", self.cpu_threads, self.mkl, self.openmp)?;
        writeln!(
            f,
            "cuda      available {}, devices {}, cudnn {}",
            self.cuda.available, self.cuda.device_count, self.cuda.cudnn_available
        )?;
        writeln!(f, "  libtorch_cuda {}", self.cuda.library)?;
        if let Some(reason) = &self.cuda.unavailable_reason {
            writeln!(f, "  why not: {reason}")?;
        }
        write!(f, "device    {} (requested {})", self.device, self.device_requested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_real_libtorch_and_the_resolved_device() {
        let info = EnvInfo::collect(DeviceSpec::Cpu, Device::Cpu);
        assert_eq!(info.tch_version, "0.24.0");
        assert!(info.libtorch_version.as_deref().unwrap().starts_with("2.11.0"));
        assert_eq!(info.device, "cpu");
        assert_eq!(info.cuda.available, info.cuda.unavailable_reason.is_none());
        let text = info.to_string();
        assert!(text.contains("libtorch  2.11.0") && text.contains("device    cpu"), "{text}");
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["device_requested"], "cpu");
    }
}
