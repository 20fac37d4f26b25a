//! The compute backend: which libtorch is loaded, how CUDA gets loaded, which device runs.
pub mod device;
pub mod info;
pub mod libtorch;

pub use device::DeviceSpec;
pub use info::EnvInfo;
