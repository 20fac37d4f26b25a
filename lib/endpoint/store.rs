//! The resumable result store of the endpoint pipelines: a JSON-lines file of `{"id": ..., "value": ...}` records,
//! one per finished item, keyed by item id.
//!
//! - **Atomic appends**: each record is one `write` of the whole line (newline included) on a file opened with
//!   `O_APPEND`, under a lock, then `fdatasync`. A process killed mid-write can only leave a last line without its
//!   newline; [`JobStore::open`] cuts such a torn tail off (it was never acknowledged), so every record in the
//!   file is complete. Deviation from `crate::io::write_atomic` (temp file + rename): rewriting the whole file per
//!   item would be quadratic in the item count.
//! - **Keyed**: an id already in the file is never appended again ([`JobStore::append`] returns false), so a
//!   resumed run neither repeats nor loses items. A malformed line that is not the last is an error naming the line.
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// An append-only JSON-lines store of finished items.
#[derive(Debug)]
pub struct JobStore {
    path: PathBuf,
    inner: Mutex<(File, BTreeSet<String>)>,
}

/// Reads the complete records of `path` as `(id, value)`, cutting nothing; also returns the byte length of the
/// complete prefix.
fn scan(path: &Path) -> Result<(Vec<(String, Value)>, u64)> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], 0)),
        Err(e) => return Err(e).with_context(|| format!("reading the result store {}", path.display())),
    };
    let mut out = Vec::new();
    let mut good = 0usize;
    let mut start = 0usize;
    let mut line_no = 0;
    while start < bytes.len() {
        line_no += 1;
        let Some(end) = bytes[start..].iter().position(|&b| b == b'\n').map(|i| start + i) else {
            break; // a torn last line
        };
        let line = &bytes[start..end];
        if !line.iter().all(u8::is_ascii_whitespace) {
            let v: Value = serde_json::from_slice(line).with_context(|| {
                format!("{} line {line_no} is not a JSON record: fix or remove the file to start over", path.display())
            })?;
            let id = v
                .get("id")
                .and_then(Value::as_str)
                .with_context(|| format!("{} line {line_no} has no string `id`", path.display()))?;
            out.push((id.to_string(), v.get("value").cloned().unwrap_or(Value::Null)));
        }
        start = end + 1;
        good = start;
    }
    Ok((out, good as u64))
}

impl JobStore {
    /// Opens (creating) the store at `path`, cutting a torn last line.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let (records, good) = scan(path)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .with_context(|| format!("opening the result store {}", path.display()))?;
        if file.metadata()?.len() > good {
            file.set_len(good).with_context(|| format!("cutting the torn last line of {}", path.display()))?;
        }
        let ids = records.into_iter().map(|(id, _)| id).collect();
        Ok(Self { path: path.to_path_buf(), inner: Mutex::new((file, ids)) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn contains(&self, id: &str) -> bool {
        self.inner.lock().expect("store lock").1.contains(id)
    }

    pub fn len(&self) -> usize {
        self.inner.lock().expect("store lock").1.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the record of `id` unless the store has it; returns whether it was written.
    pub fn append<T: Serialize>(&self, id: &str, value: &T) -> Result<bool> {
        let mut line = serde_json::to_vec(&serde_json::json!({"id": id, "value": value}))?;
        line.push(b'\n');
        let mut g = self.inner.lock().expect("store lock");
        if g.1.contains(id) {
            return Ok(false);
        }
        g.0.write_all(&line).with_context(|| format!("appending to {}", self.path.display()))?;
        g.0.sync_data().with_context(|| format!("flushing {}", self.path.display()))?;
        g.1.insert(id.to_string());
        Ok(true)
    }

    /// Every complete record of the store at `path` (the first per id), in file order.
    pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<(String, T)>> {
        let (records, _) = scan(path)?;
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(records.len());
        for (id, v) in records {
            if seen.insert(id.clone()) {
                let t = serde_json::from_value(v)
                    .with_context(|| format!("the record of `{id}` in {} has an unexpected shape", path.display()))?;
                out.push((id, t));
            }
        }
        Ok(out)
    }
}

/// Fails when `ids` has a duplicate (input data sets must key items uniquely).
pub fn check_unique<'a>(ids: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            bail!("item id `{id}` appears twice in the input: ids must be unique for resumable runs");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_once_per_id_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        let s = JobStore::open(&p).unwrap();
        assert!(s.append("a", &1).unwrap());
        assert!(!s.append("a", &2).unwrap());
        assert!(s.append("b", &3).unwrap());
        drop(s);
        // A kill mid-write leaves half a line.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"id":"c","val"#).unwrap();
        drop(f);
        assert_eq!(JobStore::read::<i64>(&p).unwrap(), vec![("a".into(), 1), ("b".into(), 3)]);
        let s = JobStore::open(&p).unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.contains("b") && !s.contains("c"));
        assert!(s.append("c", &4).unwrap());
        let all = JobStore::read::<i64>(&p).unwrap();
        assert_eq!(all.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
        std::fs::write(&p, "{\"id\":\"a\",\"value\":1}\nnot json\n{\"id\":\"b\",\"value\":1}\n").unwrap();
        assert!(format!("{:#}", JobStore::open(&p).unwrap_err()).contains("line 2"));
        assert!(check_unique(["x", "y", "x"]).unwrap_err().to_string().contains("`x`"));
    }
}
