//! Saving a Qwen2.5-VL `VarStore` as a Hugging Face checkpoint folder, the layout transformers 5.17's
//! `PreTrainedModel.save_pretrained` writes and [`super::weights::load_safetensors`] / `from_pretrained` read:
//!
//! - `config.json`: the [`Config`] in the nested layout, keys sorted and indented by 2 as transformers'
//!   `to_json_string` (`json.dumps(sort_keys=True, indent=2)` + newline), plus `architectures`
//!   (`["Qwen2_5_VLForConditionalGeneration"]`) and `dtype` (the dtype of the saved tensors);
//! - `model.safetensors`: every variable under its published key (`model.*`, `visual.*`, `lm_head.*`, as the
//!   VarStore already names them), in the VarStore's dtype; with `tie_word_embeddings` the `lm_head.weight` is
//!   not written (transformers drops tied parameters from the saved state dict). The file layout is the one
//!   the `safetensors` library (0.8, what transformers calls) writes: an 8-byte little-endian header length, a
//!   compact JSON header `{"__metadata__":{"format":"pt"}, name: {dtype, shape, data_offsets}, ...}` padded
//!   with spaces to a multiple of 8, then the tensors back to back, ordered by dtype (widest-ranked first, as
//!   safetensors' `Dtype` order) then by name. For the transformers-written fixture the file is byte-identical
//!   (tested);
//! - above [`SaveOptions::max_shard_bytes`], shards `model-0000i-of-0000n.safetensors` filled greedily in key
//!   order (a new shard starts when the next tensor would exceed the limit, as `split_torch_state_dict_into_shards`
//!   does) and `model.safetensors.index.json` (`metadata.total_size`, `weight_map`).
//!
//! Crash safety: everything is written into a temporary folder beside the target (`.tmp-<name>-*`), each file
//! synced, then the folder is renamed onto the target name. An existing target is first renamed aside and
//! removed after the new folder is in place, so the final name only ever holds a complete checkpoint (between
//! the two renames it briefly does not exist). An interrupted save leaves at most a `.tmp-*` folder.
//!
//! Deviations: no `transformers_version` key (r1lab is not transformers; the key is bookkeeping that
//! `from_pretrained` does not need); floats in `config.json` are printed by serde_json (`1e-6` where Python
//! prints `1e-06`): the parsed values are equal; no `generation_config.json` (the tiny repository writes its own,
//! see [`crate::model::tiny`]).
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Map, Value, json};
use tch::{Device, Kind, Tensor, nn};

use super::config::Config;
use super::model::Qwen2_5_VL;

/// The config file of a checkpoint.
pub const CONFIG_FILE: &str = "config.json";
/// The single-file weights.
pub const SAFETENSORS_FILE: &str = "model.safetensors";
/// The shard index.
pub const INDEX_FILE: &str = "model.safetensors.index.json";
/// `architectures` of a saved Qwen2.5-VL.
pub const ARCHITECTURE: &str = "Qwen2_5_VLForConditionalGeneration";

/// How to save.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SaveOptions {
    /// Shard when the tensors take more than this many bytes (`None`: always one `model.safetensors`).
    /// transformers' default is 50 GB.
    pub max_shard_bytes: Option<u64>,
}

/// What [`save_pretrained`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCheckpoint {
    /// The checkpoint folder.
    pub dir: PathBuf,
    /// File names written in it, sorted.
    pub files: Vec<String>,
    /// Number of tensors saved (the tied `lm_head.weight` not counted).
    pub tensors: usize,
    /// Bytes of tensor data.
    pub total_bytes: u64,
}

/// Saves `model` (which must own its VarStore, as [`Qwen2_5_VL::from_dir`] builds it) into `dir`.
pub fn save_model(model: &Qwen2_5_VL, dir: &Path, opts: SaveOptions) -> Result<SavedCheckpoint> {
    let Some(vs) = model.var_store() else {
        bail!(
            "this Qwen2.5-VL does not own its VarStore (it was built with Qwen2_5_VL::new on a caller's VarStore); \
             call save_pretrained with that VarStore"
        )
    };
    save_pretrained(vs, &model.config, dir, opts)
}

/// Saves the variables of `vs` (a model built from `cfg`) and `cfg` as a checkpoint folder `dir` (see the module
/// docs), replacing `dir` if it exists.
pub fn save_pretrained(vs: &nn::VarStore, cfg: &Config, dir: &Path, opts: SaveOptions) -> Result<SavedCheckpoint> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("checkpoint folder {} has no usable name", dir.display()))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".tmp-{name}-"))
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary folder in {} for the checkpoint", parent.display()))?;
    let mut saved = write_checkpoint_files(vs, cfg, tmp.path(), opts)?;
    replace_dir(tmp, dir)?;
    saved.dir = dir.to_path_buf();
    Ok(saved)
}

/// Writes `config.json` and the safetensors file(s) into the existing folder `dir`, each file synced but not
/// renamed into place: the caller stages `dir` and moves it (as [`save_pretrained`] does with [`replace_dir`]).
pub fn write_checkpoint_files(
    vs: &nn::VarStore,
    cfg: &Config,
    dir: &Path,
    opts: SaveOptions,
) -> Result<SavedCheckpoint> {
    let tensors = state_dict(vs, cfg)?;
    let dtype = tensors.first().map(|(_, t)| t.kind()).unwrap_or(Kind::Float);
    let config = config_json(cfg, dtype)?;
    let mut files = vec![CONFIG_FILE.to_string()];
    write_synced(&dir.join(CONFIG_FILE), config.as_bytes())?;
    let total_bytes: u64 = tensors.iter().map(|(_, t)| nbytes(t)).sum();
    let shards = split_shards(&tensors, opts.max_shard_bytes);
    if shards.len() == 1 {
        write_safetensors(&tensors, &dir.join(SAFETENSORS_FILE))?;
        files.push(SAFETENSORS_FILE.to_string());
    } else {
        let n = shards.len();
        let mut weight_map = BTreeMap::new();
        for (i, shard) in shards.iter().enumerate() {
            let file = format!("model-{:05}-of-{n:05}.safetensors", i + 1);
            for (name, _) in shard.iter() {
                weight_map.insert(name.clone(), file.clone());
            }
            write_safetensors(shard, &dir.join(&file))?;
            files.push(file);
        }
        let index = json!({"metadata": {"total_size": total_bytes}, "weight_map": weight_map});
        let text = serde_json::to_string_pretty(&index)? + "\n";
        write_synced(&dir.join(INDEX_FILE), text.as_bytes())?;
        files.push(INDEX_FILE.to_string());
    }
    files.sort();
    Ok(SavedCheckpoint { dir: dir.to_path_buf(), files, tensors: tensors.len(), total_bytes })
}

/// The tensors `save_pretrained` writes: every variable of `vs` by name (sorted), minus `lm_head.weight` when
/// the config ties it to the embeddings.
pub fn state_dict(vs: &nn::VarStore, cfg: &Config) -> Result<Vec<(String, Tensor)>> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    if cfg.tie_word_embeddings {
        vars.retain(|(k, _)| k != "lm_head.weight");
    }
    ensure!(!vars.is_empty(), "the VarStore has no variables to save");
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(vars)
}

/// `config.json` text of `cfg` saved with tensors of `dtype` (see the module docs).
pub fn config_json(cfg: &Config, dtype: Kind) -> Result<String> {
    let Value::Object(mut map) = serde_json::to_value(cfg)? else { bail!("Config did not serialize to an object") };
    map.insert("architectures".into(), json!([ARCHITECTURE]));
    map.insert("dtype".into(), Value::String(torch_dtype_name(dtype)?.into()));
    Ok(serde_json::to_string_pretty(&sorted(Value::Object(map)))? + "\n")
}

/// Object keys sorted at every level (Python's `sort_keys=True`), whatever map type serde_json uses.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let entries: BTreeMap<String, Value> = m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(entries.into_iter().collect::<Map<String, Value>>())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// transformers' name of a torch dtype (`float32`, `bfloat16`, ...).
pub fn torch_dtype_name(kind: Kind) -> Result<&'static str> {
    Ok(match kind {
        Kind::Float => "float32",
        Kind::BFloat16 => "bfloat16",
        Kind::Half => "float16",
        Kind::Double => "float64",
        other => bail!("cannot save a checkpoint of dtype {other:?}: use f32, bf16, f16 or f64"),
    })
}

/// The safetensors dtype string and its rank in safetensors' `Dtype` enum (the file orders tensors by
/// descending rank, then by name).
fn st_dtype(kind: Kind) -> Result<(&'static str, u8)> {
    Ok(match kind {
        Kind::Bool => ("BOOL", 0),
        Kind::Uint8 => ("U8", 4),
        Kind::Int8 => ("I8", 5),
        Kind::Int16 => ("I16", 9),
        Kind::Half => ("F16", 11),
        Kind::BFloat16 => ("BF16", 12),
        Kind::Int => ("I32", 13),
        Kind::Float => ("F32", 15),
        Kind::Double => ("F64", 16),
        Kind::Int64 => ("I64", 17),
        other => bail!("safetensors has no dtype for {other:?}"),
    })
}

fn nbytes(t: &Tensor) -> u64 {
    (t.numel() * t.kind().elt_size_in_bytes()) as u64
}

/// Greedy sharding in key order; one shard when there is no limit or everything fits.
fn split_shards(tensors: &[(String, Tensor)], max: Option<u64>) -> Vec<&[(String, Tensor)]> {
    let Some(max) = max else { return vec![tensors] };
    let mut shards = Vec::new();
    let (mut start, mut size) = (0, 0u64);
    for (i, (_, t)) in tensors.iter().enumerate() {
        let n = nbytes(t);
        if i > start && size + n > max {
            shards.push(&tensors[start..i]);
            (start, size) = (i, 0);
        }
        size += n;
    }
    shards.push(&tensors[start..]);
    shards
}

/// Writes `tensors` as a safetensors file with safetensors 0.8's exact layout (see the module docs), synced.
pub fn write_safetensors(tensors: &[(String, Tensor)], path: &Path) -> Result<()> {
    let mut order: Vec<(u8, &str, &'static str, &Tensor)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let (dtype, rank) = st_dtype(t.kind()).with_context(|| format!("saving `{name}`"))?;
        order.push((rank, name.as_str(), dtype, t));
    }
    order.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let mut header = String::from(r#"{"__metadata__":{"format":"pt"}"#);
    let mut offset = 0u64;
    for (_, name, dtype, t) in &order {
        let end = offset + nbytes(t);
        let entry = json!({"dtype": dtype, "shape": t.size(), "data_offsets": [offset, end]});
        header.push(',');
        header.push_str(&serde_json::to_string(name)?);
        header.push(':');
        // Field order as safetensors writes it (dtype, shape, data_offsets), not serde_json's map order.
        header.push_str(&format!(
            r#"{{"dtype":{},"shape":{},"data_offsets":{}}}"#,
            entry["dtype"], entry["shape"], entry["data_offsets"]
        ));
        offset = end;
    }
    header.push('}');
    let mut header = header.into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::new(&file);
    let write = |w: &mut BufWriter<&File>| -> Result<()> {
        w.write_all(&(header.len() as u64).to_le_bytes())?;
        w.write_all(&header)?;
        for (_, name, _, t) in &order {
            let t = t.to_device(Device::Cpu).contiguous();
            let mut buf = vec![0u8; nbytes(&t) as usize];
            t.f_copy_data_u8(&mut buf, t.numel()).with_context(|| format!("reading the data of `{name}`"))?;
            w.write_all(&buf)?;
        }
        w.flush()?;
        Ok(())
    };
    write(&mut w).with_context(|| format!("writing {}", path.display()))?;
    drop(w);
    file.sync_all().with_context(|| format!("flushing {}", path.display()))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes).with_context(|| format!("writing {}", path.display()))?;
    file.sync_all().with_context(|| format!("flushing {}", path.display()))
}

/// Moves the finished temporary folder `tmp` onto `dir`, replacing an existing `dir` (see the module docs for the
/// order of the renames). `tmp` must be on the same file system, e.g. created beside `dir`.
pub fn replace_dir(tmp: tempfile::TempDir, dir: &Path) -> Result<()> {
    let parent = tmp.path().parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let old = if dir.exists() {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("checkpoint");
        let aside = tempfile::Builder::new()
            .prefix(&format!(".old-{name}-"))
            .tempdir_in(&parent)
            .with_context(|| format!("creating a folder beside {} to move the old copy aside", dir.display()))?;
        let target = aside.path().join("old");
        std::fs::rename(dir, &target)
            .with_context(|| format!("moving the existing {} aside before replacing it", dir.display()))?;
        Some(aside)
    } else {
        None
    };
    let staged = tmp.keep();
    // tempfile creates 0700 folders; a checkpoint is as readable as one save_pretrained makes.
    let _ = std::fs::set_permissions(&staged, std::os::unix::fs::PermissionsExt::from_mode(0o755));
    if let Err(e) = std::fs::rename(&staged, dir) {
        if let Some(aside) = &old {
            let _ = std::fs::rename(aside.path().join("old"), dir);
        }
        let _ = std::fs::remove_dir_all(&staged);
        return Err(e).with_context(|| format!("renaming the finished folder onto {}", dir.display()));
    }
    if let Ok(d) = File::open(&parent) {
        let _ = d.sync_all();
    }
    drop(old); // removes the previous copy
    Ok(())
}

#[cfg(test)]
mod tests;
