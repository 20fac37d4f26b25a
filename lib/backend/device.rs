//! `--device auto|cpu|cuda[:N]`: parsing and resolution to a `tch::Device`.
use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use tch::{Cuda, Device};

use super::libtorch::{CudaLibrary, ensure_cuda_loaded};

/// What the user asked for. `Auto` picks `cuda:0` when CUDA is usable, else the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

/// Environment variable notebooks read their device from (same syntax as `--device`).
pub const DEVICE_ENV: &str = "R1LAB_DEVICE";

impl FromStr for DeviceSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(i)) => Ok(Self::Cuda(i)),
                _ => bail!("invalid device {s:?}: expected auto, cpu, cuda or cuda:N (N a GPU index such as 0)"),
            },
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl DeviceSpec {
    /// Reads [`DEVICE_ENV`]; `auto` when it is unset or empty.
    pub fn from_env() -> Result<Self> {
        match std::env::var(DEVICE_ENV) {
            Ok(v) if !v.trim().is_empty() => v.parse().map_err(|e| anyhow::anyhow!("{DEVICE_ENV}: {e}")),
            _ => Ok(Self::Auto),
        }
    }

    /// The concrete device. Loads libtorch's CUDA half first (see [`ensure_cuda_loaded`]); an
    /// explicit `cuda[:N]` that cannot be honoured is an error that says why.
    pub fn resolve(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Auto => Ok(if cuda_usable() { Device::Cuda(0) } else { Device::Cpu }),
            Self::Cuda(i) => {
                if !cuda_usable() {
                    bail!("--device {self} requested, but {}", cuda_unavailable_reason());
                }
                let count = Cuda::device_count();
                if i as i64 >= count {
                    bail!(
                        "--device {self} requested, but only {count} CUDA device(s) are visible (indices 0..{count})"
                    );
                }
                Ok(Device::Cuda(i))
            }
        }
    }
}

fn cuda_usable() -> bool {
    ensure_cuda_loaded().is_loaded() && Cuda::is_available()
}

/// Human-readable reason why CUDA is not usable in this process.
pub fn cuda_unavailable_reason() -> String {
    match ensure_cuda_loaded() {
        CudaLibrary::CpuOnlyBuild => "the loaded libtorch is a CPU-only build (no libtorch_cuda.so); install the CUDA torch==2.11.0 wheel".into(),
        CudaLibrary::LoadFailed(msg) => format!("libtorch_cuda.so could not be loaded: {msg}"),
        CudaLibrary::LibtorchNotFound => "libtorch_cpu.so is not mapped in this process, so libtorch_cuda.so cannot be located".into(),
        CudaLibrary::Linked | CudaLibrary::Loaded(_) => "libtorch_cuda.so is loaded but no CUDA device is visible (no GPU, no driver, or CUDA_VISIBLE_DEVICES hides them)".into(),
    }
}

/// Short name of a device for logs and records: `cpu`, `cuda:0`.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        assert_eq!("auto".parse::<DeviceSpec>().unwrap(), DeviceSpec::Auto);
        assert_eq!("CPU".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        for spec in [DeviceSpec::Auto, DeviceSpec::Cpu, DeviceSpec::Cuda(2)] {
            assert_eq!(spec.to_string().parse::<DeviceSpec>().unwrap(), spec);
        }
    }

    #[test]
    fn rejects_malformed_devices_with_the_accepted_forms() {
        for bad in ["gpu", "cuda:", "cuda:-1", "cuda:x", "mps", ""] {
            let err = bad.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(err.contains("expected auto, cpu, cuda or cuda:N"), "{bad}: {err}");
        }
    }

    #[test]
    fn cpu_resolves_and_auto_agrees_with_cuda_availability() {
        assert_eq!(DeviceSpec::Cpu.resolve().unwrap(), Device::Cpu);
        let auto = DeviceSpec::Auto.resolve().unwrap();
        assert_eq!(auto.is_cuda(), Cuda::is_available());
    }

    #[test]
    fn unusable_gpu_index_is_an_error_naming_the_device() {
        // Index far beyond any real machine: fails with or without a GPU, with a reason.
        let err = DeviceSpec::Cuda(4096).resolve().unwrap_err().to_string();
        assert!(err.contains("cuda:4096"), "{err}");
        if !Cuda::is_available() {
            assert!(err.contains("no CUDA device is visible") || err.contains("CPU-only"), "{err}");
        }
    }

    #[test]
    fn device_names_are_short() {
        assert_eq!(device_name(Device::Cpu), "cpu");
        assert_eq!(device_name(Device::Cuda(1)), "cuda:1");
    }
}
