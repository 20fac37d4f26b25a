//! The canonical parameter hash of a checkpoint (style_anchors B10: "sha256 over (name, dtype, shape, raw
//! little-endian bytes), sorted by name"), the `sha256` a `ParentRun` model source pins and `checkpoint.json`'s
//! `params_sha256`.
//!
//! SHA-256 over the tensors sorted by name (byte-wise UTF-8 order, = Python's `sorted` on `str`), each
//! contributing
//! ```text
//! u64le(len(name)) ‖ name (UTF-8) ‖ u64le(len(dtype)) ‖ dtype (ASCII safetensors name: F32, BF16, F16, F64,
//! I64, I32, I16, I8, U8, BOOL) ‖ u64le(ndim) ‖ u64le(dim_0) ‖ … ‖ u64le(dim_{ndim−1}) ‖ raw bytes
//! ```
//! where the raw bytes are the row-major contiguous element data, little-endian (a 0-dim tensor has ndim 0 and
//! one element). [`params_sha256`] hashes the variables of a VarStore, which are exactly the tensors
//! `model::qwen2_5_vl::save` writes (a tied `lm_head.weight` is not a variable), so it equals
//! [`params_sha256_safetensors`] of the saved folder, which reads the files' headers and streams their data
//! without building a model. The dtype is part of the hash: the same weights in f32 and bf16 hash differently.
//!
//! Deviation from B10: no `sha256:` prefix (hashes are bare 64-hex, as in the manifest).
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor, nn};

use crate::model::qwen2_5_vl::weights::checkpoint_files;

/// Canonical parameter hash (see the module docs) of every variable of `vs` (copied to the host one at a time).
pub fn params_sha256(vs: &nn::VarStore) -> Result<String> {
    ensure!(cfg!(target_endian = "little"), "the canonical parameter hash is defined for little-endian hosts");
    let _guard = tch::no_grad_guard();
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = Sha256::new();
    for (name, t) in &vars {
        let (dtype, elt) = dtype_name(t.kind()).with_context(|| format!("hashing `{name}`"))?;
        let shape: Vec<u64> = t.size().iter().map(|&d| d as u64).collect();
        hash_head(&mut h, name, dtype, &shape);
        let t = t.to_device(Device::Cpu).contiguous();
        let mut buf = vec![0u8; t.numel() * elt];
        t.f_copy_data_u8(&mut buf, t.numel()).with_context(|| format!("reading the data of `{name}`"))?;
        h.update(&buf);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Canonical parameter hash of a safetensors checkpoint: one file, or a model folder (single file or shards, as
/// [`checkpoint_files`] finds them), read straight from the files without building a model.
pub fn params_sha256_safetensors(path: &Path) -> Result<String> {
    struct Entry {
        file: usize,
        dtype: String,
        shape: Vec<u64>,
        start: u64,
        len: u64,
    }
    let files = checkpoint_files(path)?;
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for (i, file) in files.iter().enumerate() {
        let ctx = || format!("reading the safetensors header of {}", file.display());
        let mut f = File::open(file).with_context(ctx)?;
        let file_len = f.metadata().with_context(ctx)?.len();
        let mut n = [0u8; 8];
        f.read_exact(&mut n).with_context(ctx)?;
        let header_len = u64::from_le_bytes(n);
        ensure!(
            header_len <= file_len.saturating_sub(8),
            "{}: header length {header_len} is past the end",
            file.display()
        );
        let mut header = vec![0u8; header_len as usize];
        f.read_exact(&mut header).with_context(ctx)?;
        let header: serde_json::Map<String, Value> = serde_json::from_slice(&header).with_context(ctx)?;
        let data_start = 8 + header_len;
        for (name, v) in header {
            if name == "__metadata__" {
                continue;
            }
            let (dtype, shape, [a, b]) =
                parse_entry(&v).with_context(|| format!("{}: tensor `{name}`", file.display()))?;
            let elt = dtype_size(&dtype).with_context(|| format!("{}: tensor `{name}`", file.display()))?;
            let numel: u64 = shape.iter().product();
            ensure!(
                a <= b && b - a == numel * elt as u64 && data_start + b <= file_len,
                "{}: tensor `{name}` has data offsets [{a}, {b}] that do not fit its shape {shape:?} or the file",
                file.display()
            );
            let entry = Entry { file: i, dtype, shape, start: data_start + a, len: b - a };
            ensure!(
                entries.insert(name.clone(), entry).is_none(),
                "tensor `{name}` appears in two files of {}",
                path.display()
            );
        }
    }
    let mut handles: Vec<File> = files
        .iter()
        .map(|p| File::open(p).with_context(|| format!("opening {}", p.display())))
        .collect::<Result<_>>()?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for (name, e) in &entries {
        hash_head(&mut h, name, &e.dtype, &e.shape);
        let f = &mut handles[e.file];
        f.seek(SeekFrom::Start(e.start)).with_context(|| format!("reading `{name}` in {}", files[e.file].display()))?;
        let mut left = e.len;
        while left > 0 {
            let k = left.min(buf.len() as u64) as usize;
            f.read_exact(&mut buf[..k]).with_context(|| format!("reading `{name}` in {}", files[e.file].display()))?;
            h.update(&buf[..k]);
            left -= k as u64;
        }
    }
    Ok(format!("{:x}", h.finalize()))
}

fn hash_head(h: &mut Sha256, name: &str, dtype: &str, shape: &[u64]) {
    h.update((name.len() as u64).to_le_bytes());
    h.update(name.as_bytes());
    h.update((dtype.len() as u64).to_le_bytes());
    h.update(dtype.as_bytes());
    h.update((shape.len() as u64).to_le_bytes());
    for d in shape {
        h.update(d.to_le_bytes());
    }
}

fn parse_entry(v: &Value) -> Result<(String, Vec<u64>, [u64; 2])> {
    let dtype = v["dtype"].as_str().context("no dtype")?.to_owned();
    let shape = v["shape"].as_array().context("no shape")?;
    let shape = shape.iter().map(|d| d.as_u64().context("shape is not unsigned integers")).collect::<Result<_>>()?;
    let offsets = v["data_offsets"].as_array().context("no data_offsets")?;
    ensure!(offsets.len() == 2, "data_offsets is not a pair");
    let off = |i: usize| offsets[i].as_u64().context("data_offsets are not unsigned integers");
    Ok((dtype, shape, [off(0)?, off(1)?]))
}

/// The safetensors dtype name of a tch kind and its element size.
fn dtype_name(kind: Kind) -> Result<(&'static str, usize)> {
    let name = match kind {
        Kind::Float => "F32",
        Kind::BFloat16 => "BF16",
        Kind::Half => "F16",
        Kind::Double => "F64",
        Kind::Int64 => "I64",
        Kind::Int => "I32",
        Kind::Int16 => "I16",
        Kind::Int8 => "I8",
        Kind::Uint8 => "U8",
        Kind::Bool => "BOOL",
        other => bail!("no canonical dtype name for {other:?}"),
    };
    Ok((name, kind.elt_size_in_bytes()))
}

fn dtype_size(name: &str) -> Result<usize> {
    Ok(match name {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "BF16" | "F16" | "I16" | "U16" => 2,
        "I8" | "U8" | "BOOL" => 1,
        other => bail!("unsupported safetensors dtype {other:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::qwen2_5_vl::save::write_safetensors;

    fn put(vs: &nn::VarStore, name: &str, t: Tensor) {
        let mut parts: Vec<&str> = name.split('.').collect();
        let leaf = parts.pop().unwrap();
        let _ = parts.iter().fold(vs.root(), |p, s| p / *s).add(leaf, t, false);
    }

    /// Four tensors of four kinds, including a 0-dim one.
    fn tiny_store() -> nn::VarStore {
        let vs = nn::VarStore::new(Device::Cpu);
        put(&vs, "layer.weight", Tensor::from_slice(&[1.0f32, -2.0, 0.5, 3.25]).reshape([2, 2]));
        put(&vs, "emb", Tensor::from_slice(&[1.0f32, -0.5, 2.0]).to_kind(Kind::BFloat16));
        put(&vs, "scale", Tensor::from(0.25f32));
        put(&vs, "count", Tensor::from_slice(&[-7i64]));
        vs
    }

    /// Golden value computed independently with Python's `hashlib` + `struct` over the layout in the module docs.
    #[test]
    fn canonical_hash_golden_value() {
        let vs = tiny_store();
        assert_eq!(params_sha256(&vs).unwrap(), "a63584d764d7873c7e0b22ac52034e518dcddc63edd09e75e4a2dbc1bc3d7efa");
    }

    #[test]
    fn safetensors_hash_equals_the_var_store_hash_and_sees_every_bit() {
        let vs = tiny_store();
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("t.safetensors");
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        write_safetensors(&named, &file).unwrap();
        let want = params_sha256(&vs).unwrap();
        assert_eq!(params_sha256_safetensors(&file).unwrap(), want);
        // One flipped bit in the last tensor's data changes it.
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        assert_ne!(params_sha256_safetensors(&file).unwrap(), want);
        // The dtype is part of the hash.
        let vs32 = nn::VarStore::new(Device::Cpu);
        put(&vs32, "emb", Tensor::from_slice(&[1.0f32, -0.5, 2.0]));
        let vs16 = nn::VarStore::new(Device::Cpu);
        put(&vs16, "emb", Tensor::from_slice(&[1.0f32, -0.5, 2.0]).to_kind(Kind::BFloat16));
        assert_ne!(params_sha256(&vs32).unwrap(), params_sha256(&vs16).unwrap());
    }
}
