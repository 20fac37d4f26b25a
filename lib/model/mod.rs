//! Model implementations. `qwen2_5_vl`: Qwen2.5-VL (vision tower + text decoder), config structs that
//! mirror HF `config.json`, weight paths equal to HF keys.
pub mod qwen2_5_vl;
pub mod sampling;
pub mod tiny;
