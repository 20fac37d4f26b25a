//! SFT records in LLaMA-Factory's sharegpt layout (papers_spec §1.2, §2.3): a JSON array of
//! `{"messages": [{"role": "user"|"assistant"|"system", "content": ...}], "images": [paths]}`,
//! the user turn holding one `<image>` placeholder per image, the images written as PNG files next to
//! the JSON (paths relative to the JSON's folder, LLaMA-Factory's `media_dir` default being the
//! dataset folder). [`write_dataset`] also writes a `dataset_info.json` entry describing the columns.
//!
//! [`read_json`] also accepts Vision-R1's released variants: `conversations` with `from`/`value`
//! (`human`/`gpt` or `user`/`assistant`) and `image` (one path) instead of `images`.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::synthetic::Problem;
use crate::io::write_atomic;

/// One chat turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// One SFT sample: the conversation and its image paths (as written in the JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SftRecord {
    pub messages: Vec<Message>,
    #[serde(default)]
    pub images: Vec<String>,
}

impl SftRecord {
    /// A user turn with `prompt` and an assistant turn with `response`.
    pub fn pair(prompt: String, response: String, images: Vec<String>) -> Self {
        SftRecord {
            messages: vec![
                Message { role: "user".into(), content: prompt },
                Message { role: "assistant".into(), content: response },
            ],
            images,
        }
    }

    /// The multimodal sample of a synthetic problem answered with `response`; the image path is
    /// `images/{id}.png`.
    pub fn from_problem(p: &Problem, response: String) -> Self {
        SftRecord::pair(p.problem(), response, vec![image_path(p)])
    }

    /// The text-only twin answered with `response` (ReVisual-R1's text cold start).
    pub fn text_twin(p: &Problem, response: String) -> Self {
        SftRecord::pair(p.text_twin(), response, vec![])
    }
}

/// Where a problem's image goes, relative to the dataset folder.
pub fn image_path(p: &Problem) -> String {
    format!("images/{}.png", p.id)
}

/// Writes `records` as `{dir}/{name}.json`, the PNGs of `problems` under `{dir}/images/`, and a
/// `{dir}/dataset_info.json` with the LLaMA-Factory entry `name` (merged into an existing file).
pub fn write_dataset(dir: &Path, name: &str, records: &[SftRecord], problems: &[Problem]) -> Result<PathBuf> {
    for p in problems {
        write_atomic(&dir.join(image_path(p)), &p.png)?;
    }
    let file = dir.join(format!("{name}.json"));
    write_json(&file, records)?;
    let info_path = dir.join("dataset_info.json");
    let mut info: BTreeMap<String, Value> = match std::fs::read(&info_path) {
        Ok(b) => serde_json::from_slice(&b)
            .with_context(|| format!("{} is not a JSON object: fix or remove it", info_path.display()))?,
        Err(_) => BTreeMap::new(),
    };
    info.insert(
        name.to_string(),
        json!({
            "file_name": format!("{name}.json"),
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                     "assistant_tag": "assistant", "system_tag": "system"}
        }),
    );
    write_atomic(&info_path, &serde_json::to_vec_pretty(&info)?)?;
    Ok(file)
}

/// Writes `records` as a sharegpt JSON array (atomically).
pub fn write_json(path: &Path, records: &[SftRecord]) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(records)?;
    write_atomic(path, &bytes).with_context(|| format!("writing sharegpt JSON {}", path.display()))
}

/// Reads a sharegpt JSON array (see the module header for the accepted variants).
pub fn read_json(path: &Path) -> Result<Vec<SftRecord>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}: check the path", path.display()))?;
    let rows: Vec<Value> =
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not a JSON array", path.display()))?;
    rows.iter()
        .enumerate()
        .map(|(i, v)| record(v).with_context(|| format!("record {i} of {}", path.display())))
        .collect()
}

fn record(v: &Value) -> Result<SftRecord> {
    let (turns, role_key, content_key) = if let Some(m) = v.get("messages") {
        (m, "role", "content")
    } else if let Some(c) = v.get("conversations") {
        (c, "from", "value")
    } else {
        bail!("no `messages` or `conversations` list")
    };
    let turns = turns.as_array().context("the conversation must be a list")?;
    let mut messages = Vec::with_capacity(turns.len());
    for t in turns {
        let s = |k: &str| t.get(k).and_then(Value::as_str).with_context(|| format!("a turn without string `{k}`"));
        let role = match s(role_key)? {
            "human" => "user",
            "gpt" => "assistant",
            r => r,
        };
        messages.push(Message { role: role.to_string(), content: s(content_key)?.to_string() });
    }
    let images = match v.get("images").or_else(|| v.get("image")) {
        None | Some(Value::Null) => vec![],
        Some(Value::String(p)) => vec![p.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|p| p.as_str().map(str::to_string).context("an image path that is not a string"))
            .collect::<Result<_>>()?,
        Some(other) => bail!("`images` must be a list of paths, found {other}"),
    };
    Ok(SftRecord { messages, images })
}

/// `path` resolved against the dataset folder (`dir`) unless it is absolute.
pub fn resolve(dir: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() { p.to_path_buf() } else { dir.join(p) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vision_r1_variants() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("v.json");
        std::fs::write(
            &path,
            r#"[{"conversations":[{"from":"human","value":"<image>q"},{"from":"gpt","value":"a"}],"image":"x/1.jpg"},
               {"messages":[{"role":"user","content":"t"},{"role":"assistant","content":"u"}]}]"#,
        )
        .unwrap();
        let r = read_json(&path).unwrap();
        assert_eq!(r[0], SftRecord::pair("<image>q".into(), "a".into(), vec!["x/1.jpg".into()]));
        assert_eq!(r[1], SftRecord::pair("t".into(), "u".into(), vec![]));
        std::fs::write(&path, r#"[{"foo": 1}]"#).unwrap();
        assert!(format!("{:#}", read_json(&path).unwrap_err()).contains("record 0"));
        assert_eq!(resolve(Path::new("/d"), "images/a.png"), PathBuf::from("/d/images/a.png"));
    }
}
