//! The denominators and probes of the benchmarks: peak compute and memory bandwidth (measured in the same run,
//! and the spec-sheet numbers where known), peak memory per phase, and device synchronisation for timing.
//!
//! - **Measured peaks**: the best of a few square matmuls in the benchmark dtype (FLOP/s) and of a few large
//!   device-to-device copies (bytes read + written per second). Achievable numbers, not marketing ones.
//! - **Spec peaks** (CUDA only): dense bf16 tensor-core FLOP/s by GPU name (NVIDIA data sheets; no sparsity), and
//!   the memory bandwidth NVML implies (`2 × max memory clock × bus width`, HBM being double data rate).
//! - **Memory**: on CUDA the device memory in use as NVML reports it (what the process holds: tensors, the
//!   caching allocator's reserve, the CUDA context), polled every 2 ms by a thread; on the CPU the peak resident
//!   set (`VmHWM`), reset between phases through `/proc/self/clear_refs`. NVML sees the caching allocator's
//!   reserve, which libtorch keeps between phases: on CUDA a phase's peak is a high-water mark that includes what
//!   earlier phases reserved (the first phase to need memory shows it). The baseline script reports the same NVML
//!   figure next to PyTorch's own allocator peaks.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tch::{Device, Kind, Tensor};

/// Waits for the device's queued work (a no-op on the CPU).
pub fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Seconds `f` takes, the device synchronised before and after.
pub fn timed<T>(device: Device, f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    sync(device);
    let t0 = Instant::now();
    let out = f()?;
    sync(device);
    Ok((out, t0.elapsed().as_secs_f64()))
}

/// Peak compute and bandwidth of the device.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Peaks {
    pub device_name: String,
    /// Best measured matmul FLOP/s in the benchmark dtype.
    pub measured_flops: f64,
    /// Best measured copy bandwidth, bytes/s (read + write).
    pub measured_bandwidth: f64,
    /// Dense bf16 FLOP/s from the data sheet, when the GPU is known.
    pub spec_flops: Option<f64>,
    /// Memory bandwidth from NVML's clock and bus width, bytes/s.
    pub spec_bandwidth: Option<f64>,
}

impl Peaks {
    /// The FLOP/s MFU divides by: the data sheet's when known, else the measured one.
    pub fn flops(&self) -> f64 {
        self.spec_flops.unwrap_or(self.measured_flops)
    }

    /// The bandwidth the roofline divides by: the spec's when known, else the measured one.
    pub fn bandwidth(&self) -> f64 {
        self.spec_bandwidth.unwrap_or(self.measured_bandwidth)
    }

    pub fn measure(device: Device, kind: Kind) -> Result<Self> {
        let _g = tch::no_grad_guard();
        let (n, reps, copy_elems) = match device {
            Device::Cuda(_) => (8192, 20, 1 << 29),
            _ => (1024, 4, 1 << 26),
        };
        let a = Tensor::randn([n, n], (kind, device));
        let b = Tensor::randn([n, n], (kind, device));
        let _ = a.matmul(&b);
        let mut best_mm = f64::INFINITY;
        for _ in 0..reps {
            let (_, s) = timed(device, || Ok(a.matmul(&b)))?;
            best_mm = best_mm.min(s);
        }
        drop((a, b));
        let src = Tensor::ones([copy_elems], (kind, device));
        let mut dst = src.empty_like();
        dst.copy_(&src);
        let mut best_copy = f64::INFINITY;
        for _ in 0..reps {
            let (_, s) = timed(device, || {
                dst.copy_(&src);
                Ok(())
            })?;
            best_copy = best_copy.min(s);
        }
        let bytes = 2.0 * copy_elems as f64 * kind.elt_size_in_bytes() as f64;
        let gpu = Gpu::of(device);
        Ok(Self {
            device_name: gpu.as_ref().map_or_else(cpu_name, |g| g.name.clone()),
            measured_flops: 2.0 * (n as f64).powi(3) / best_mm,
            measured_bandwidth: bytes / best_copy,
            spec_flops: gpu.as_ref().and_then(|g| spec_bf16_flops(&g.name)),
            spec_bandwidth: gpu.and_then(|g| g.bandwidth),
        })
    }
}

/// What NVML says about a GPU.
struct Gpu {
    name: String,
    bandwidth: Option<f64>,
}

impl Gpu {
    fn of(device: Device) -> Option<Self> {
        let Device::Cuda(i) = device else { return None };
        let nvml = nvml_wrapper::Nvml::init().ok()?;
        let d = nvml.device_by_index(i as u32).ok()?;
        let name = d.name().ok()?;
        let clock = d.max_clock_info(nvml_wrapper::enum_wrappers::device::Clock::Memory).ok();
        let bus = d.memory_bus_width().ok();
        let bandwidth = clock.zip(bus).map(|(mhz, bits)| 2.0 * mhz as f64 * 1e6 * bits as f64 / 8.0);
        Some(Self { name, bandwidth })
    }
}

/// Dense bf16 tensor-core FLOP/s of a GPU from its name (NVIDIA data sheets, without sparsity).
pub fn spec_bf16_flops(name: &str) -> Option<f64> {
    let n = name.to_ascii_uppercase();
    let tflops = if n.contains("H200") {
        989.4
    } else if n.contains("H100") && n.contains("PCIE") {
        756.5
    } else if n.contains("H100") && n.contains("NVL") {
        835.5
    } else if n.contains("H100") {
        989.4
    } else if n.contains("A100") {
        312.0
    } else {
        return None;
    };
    Some(tflops * 1e12)
}

fn cpu_name() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info.lines().find_map(|l| l.strip_prefix("model name")).map(|s| s.trim_start_matches([' ', '\t', ':']));
    let threads = tch::get_num_threads();
    format!("{} ({threads} threads)", model.unwrap_or("cpu"))
}

/// Peak memory since the last [`MemoryProbe::reset`].
pub enum MemoryProbe {
    /// `VmHWM` of this process.
    Rss,
    /// NVML's used device memory, polled.
    Nvml { peak: Arc<AtomicU64>, stop: Arc<AtomicBool>, thread: Option<JoinHandle<()>> },
    /// Nothing can be measured (NVML missing); says why.
    Unavailable(String),
}

impl MemoryProbe {
    pub fn start(device: Device) -> Self {
        let Device::Cuda(i) = device else { return Self::Rss };
        let nvml = match nvml_wrapper::Nvml::init() {
            Ok(n) => n,
            Err(e) => return Self::Unavailable(format!("NVML could not be loaded ({e}); no device memory figures")),
        };
        let (peak, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let Ok(d) = nvml.device_by_index(i as u32) else { return };
            while !s.load(Ordering::Relaxed) {
                if let Ok(m) = d.memory_info() {
                    p.fetch_max(m.used, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Self::Nvml { peak, stop, thread: Some(thread) }
    }

    /// What the probe measures, for reports.
    pub fn source(&self) -> &str {
        match self {
            Self::Rss => "VmHWM (peak resident set of the process)",
            Self::Nvml { .. } => "NVML used device memory, polled every 2 ms",
            Self::Unavailable(why) => why,
        }
    }

    /// Forgets the peak so far (the next peak counts from the current use).
    pub fn reset(&self) {
        match self {
            Self::Rss => {
                // Writing 5 resets VmHWM to the current RSS (Linux >= 4.0); harmless where it fails.
                let _ = std::fs::write("/proc/self/clear_refs", "5");
            }
            Self::Nvml { peak, .. } => {
                std::thread::sleep(Duration::from_millis(5));
                peak.store(0, Ordering::Relaxed);
            }
            Self::Unavailable(_) => {}
        }
    }

    /// The peak in bytes since the last reset.
    pub fn peak(&self) -> Result<Option<u64>> {
        match self {
            Self::Rss => {
                let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
                let kb = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                    .context("no VmHWM line in /proc/self/status")?;
                Ok(Some(kb * 1024))
            }
            Self::Nvml { peak, .. } => {
                std::thread::sleep(Duration::from_millis(5));
                Ok(Some(peak.load(Ordering::Relaxed)))
            }
            Self::Unavailable(_) => Ok(None),
        }
    }
}

impl Drop for MemoryProbe {
    fn drop(&mut self) {
        if let Self::Nvml { stop, thread, .. } = self {
            stop.store(true, Ordering::Relaxed);
            if let Some(t) = thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_flops_by_name() {
        assert_eq!(spec_bf16_flops("NVIDIA H100 80GB HBM3"), Some(989.4e12));
        assert_eq!(spec_bf16_flops("NVIDIA H100 PCIe"), Some(756.5e12));
        assert_eq!(spec_bf16_flops("NVIDIA H200"), Some(989.4e12));
        assert_eq!(spec_bf16_flops("Intel Xeon"), None);
    }

    #[test]
    fn cpu_peaks_and_rss_are_measured() {
        let p = Peaks::measure(Device::Cpu, Kind::Float).unwrap();
        assert!(p.measured_flops > 1e8 && p.measured_bandwidth > 1e8, "{p:?}");
        assert_eq!(p.flops(), p.measured_flops);
        let probe = MemoryProbe::start(Device::Cpu);
        probe.reset();
        let before = probe.peak().unwrap().unwrap();
        let big = Tensor::ones([64 << 20], (Kind::Float, Device::Cpu));
        let after = probe.peak().unwrap().unwrap();
        drop(big);
        assert!(after >= before + (200 << 20), "a 256 MiB tensor raised VmHWM from {before} to {after}");
    }
}
