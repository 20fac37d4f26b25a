//! Loading a Hugging Face safetensors checkpoint of Qwen2.5-VL into a `VarStore` whose variable names are the
//! published keys (`model.layers.{i}...`, `lm_head.weight`, `visual.*`): a single `model.safetensors`, or shards
//! listed by `model.safetensors.index.json` (`weight_map`), as `PreTrainedModel.from_pretrained` reads them.
//!
//! transformers 5.x names the modules `model.language_model.*` and `model.visual.*` in its `state_dict`, but
//! `save_pretrained` writes the published names (checked for 5.17 by `tests/fixtures/qwen2_5_vl_text.py`); files
//! written from a raw `state_dict` are still accepted through the one rename table [`KEY_RENAMES`].
//!
//! Every variable must be covered (else an error lists the missing names); file tensors that match no variable are
//! returned in [`LoadReport::unused`] (the vision weights when only the text model was built, for instance), and
//! [`LoadReport::ensure_all_used`] turns them into an error. Values are copied into the existing variables, so the
//! VarStore keeps its own dtype and device (bf16 from an f32 file works, and the reverse).
//!
//! Deviation: tch reads each file whole into host memory (no mmap), so the peak is about one shard above the
//! model's size; load big models shard by shard as done here, never a merged file.
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use tch::{Tensor, nn};

/// `(prefix in a file, published prefix)`: transformers 5.x `state_dict` names to checkpoint names.
pub const KEY_RENAMES: &[(&str, &str)] = &[("model.language_model.", "model."), ("model.visual.", "visual.")];

/// The published name of a checkpoint key (applies [`KEY_RENAMES`]).
pub fn published_key(key: &str) -> String {
    for (from, to) in KEY_RENAMES {
        if let Some(rest) = key.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    key.to_string()
}

/// What [`load_safetensors`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// The safetensors files read, in order.
    pub files: Vec<PathBuf>,
    /// Number of variables filled (all of them).
    pub loaded: usize,
    /// File keys (published names, sorted) that match no variable.
    pub unused: Vec<String>,
}

impl LoadReport {
    /// Fails when a file tensor was left unused, except those whose name starts with one of `allowed_prefixes`
    /// (e.g. `["visual."]` for a text-only model).
    pub fn ensure_all_used(&self, allowed_prefixes: &[&str]) -> Result<()> {
        let bad: Vec<&String> =
            self.unused.iter().filter(|k| !allowed_prefixes.iter().any(|p| k.starts_with(p))).collect();
        ensure!(
            bad.is_empty(),
            "{} tensors in the checkpoint match no model variable (is this checkpoint for a different config?): {}",
            bad.len(),
            preview(&bad)
        );
        Ok(())
    }
}

/// The safetensors files of a checkpoint: `path` itself if it is a file, otherwise in the folder
/// `model.safetensors.index.json`'s shards (sorted, deduplicated) or else `model.safetensors`.
pub fn checkpoint_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    ensure!(path.is_dir(), "checkpoint {} does not exist", path.display());
    let index = path.join("model.safetensors.index.json");
    if index.is_file() {
        let shards: BTreeSet<String> = read_index(&index)?.into_values().collect();
        let files: Vec<PathBuf> = shards.iter().map(|s| path.join(s)).collect();
        for f in &files {
            ensure!(f.is_file(), "shard {} listed in {} is missing", f.display(), index.display());
        }
        return Ok(files);
    }
    let single = path.join("model.safetensors");
    ensure!(
        single.is_file(),
        "{} has neither model.safetensors nor model.safetensors.index.json (only safetensors checkpoints are supported)",
        path.display()
    );
    Ok(vec![single])
}

/// `weight_map` of an index file: checkpoint key -> shard file name.
fn read_index(index: &Path) -> Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(index).with_context(|| format!("reading {}", index.display()))?;
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: HashMap<String, String>,
    }
    let parsed: Index =
        serde_json::from_str(&text).with_context(|| format!("{} has no valid `weight_map`", index.display()))?;
    Ok(parsed.weight_map)
}

/// Loads the checkpoint at `path` (file or folder, see [`checkpoint_files`]) into `vs`.
pub fn load_safetensors(vs: &nn::VarStore, path: &Path) -> Result<LoadReport> {
    let files = checkpoint_files(path)?;
    let index_path = path.join("model.safetensors.index.json");
    let index = if path.is_dir() && index_path.is_file() { Some(read_index(&index_path)?) } else { None };
    let vars = vs.variables();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    let mut unused = Vec::new();
    let _guard = tch::no_grad_guard();
    for file in &files {
        let tensors =
            Tensor::read_safetensors(file).with_context(|| format!("reading safetensors file {}", file.display()))?;
        for (key, tensor) in tensors {
            if let Some(index) = &index {
                let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                ensure!(
                    index.get(&key).map(String::as_str) == Some(name),
                    "{}: tensor `{key}` is not mapped to this shard by model.safetensors.index.json",
                    file.display()
                );
            }
            let name = published_key(&key);
            if let Some(prev) = seen.insert(name.clone(), file.clone()) {
                bail!("checkpoint key `{name}` appears twice ({} and {})", prev.display(), file.display());
            }
            let Some(var) = vars.get(&name) else {
                unused.push(name);
                continue;
            };
            ensure!(
                var.size() == tensor.size(),
                "`{name}` has shape {:?} in {} but the model built from the config expects {:?} (config and \
                 checkpoint disagree)",
                tensor.size(),
                file.display(),
                var.size()
            );
            let mut var = var.shallow_clone();
            var.f_copy_(&tensor).with_context(|| format!("copying `{name}` into the model"))?;
        }
    }
    let mut missing: Vec<&String> = vars.keys().filter(|k| !seen.contains_key(*k)).collect();
    missing.sort();
    ensure!(
        missing.is_empty(),
        "{} model variables are not in the checkpoint {} (wrong config, e.g. tie_word_embeddings, or a truncated \
         download?): {}",
        missing.len(),
        path.display(),
        preview(&missing)
    );
    unused.sort();
    Ok(LoadReport { files, loaded: vars.len(), unused })
}

fn preview(names: &[&String]) -> String {
    const SHOWN: usize = 20;
    let head: Vec<&str> = names.iter().take(SHOWN).map(|s| s.as_str()).collect();
    let more = names.len().saturating_sub(SHOWN);
    if more > 0 { format!("{} and {more} more", head.join(", ")) } else { head.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn renames_transformers_5_state_dict_names() {
        assert_eq!(
            published_key("model.language_model.layers.0.mlp.up_proj.weight"),
            "model.layers.0.mlp.up_proj.weight"
        );
        assert_eq!(published_key("model.visual.blocks.0.attn.qkv.bias"), "visual.blocks.0.attn.qkv.bias");
        assert_eq!(published_key("lm_head.weight"), "lm_head.weight");
        assert_eq!(published_key("model.norm.weight"), "model.norm.weight");
    }

    #[test]
    fn reports_missing_unused_and_bad_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model.safetensors");
        let a = Tensor::from_slice(&[1f32, 2.0]);
        let extra = Tensor::from_slice(&[3f32]);
        Tensor::write_safetensors(&[("model.language_model.a", &a), ("visual.x", &extra)], &file).unwrap();

        let vs = nn::VarStore::new(Device::Cpu);
        let v = vs.root().sub("model").zeros("a", &[2]);
        let report = load_safetensors(&vs, dir.path()).unwrap();
        assert_eq!(report.unused, vec!["visual.x".to_string()]);
        assert_eq!(Vec::<f32>::try_from(&v).unwrap(), vec![1.0, 2.0]);
        report.ensure_all_used(&["visual."]).unwrap();
        assert!(report.ensure_all_used(&[]).unwrap_err().to_string().contains("visual.x"));

        let mut vs = nn::VarStore::new(Device::Cpu);
        vs.set_kind(Kind::BFloat16);
        let _ = vs.root().sub("model").zeros("a", &[2]);
        let _ = vs.root().zeros("b", &[1]);
        let e = load_safetensors(&vs, &file).unwrap_err().to_string();
        assert!(e.contains("1 model variables are not in the checkpoint") && e.contains(": b"), "{e}");

        let vs = nn::VarStore::new(Device::Cpu);
        let _ = vs.root().sub("model").zeros("a", &[3]);
        let e = load_safetensors(&vs, &file).unwrap_err().to_string();
        assert!(e.contains("shape [2]"), "{e}");
    }
}
