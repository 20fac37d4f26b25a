//! Per-step fingerprints of a run (`fingerprints.jsonl`, style_anchors B10/B11): cheap digests of what a step drew
//! and computed, so a replay can say at which step and in which field it first diverged from the record (L1 of the
//! replay ladder) without storing the tensors.
//!
//! A fingerprint is one JSON object per line: `{"step": N, "<field>": "<value>", ...}` with fields sorted by name.
//! Values are hex: `sha256(...)` digests of ordered sequences ([`digest_i64`], [`digest_f64`]) or the IEEE-754 bits
//! of a scalar ([`bits`]), so equality is bitwise. GRPO steps record `tokens` (every response's prompt uid, sample
//! index and token ids), `rewards`, `advantages`, `pg_loss` and `grad_norm`; SFT steps `loss`, `grad_norm`, `lr`
//! and `examples` (digest of the step's example indices: the data order L0 of `r1lab replay` regenerates).
//! The file is rewritten atomically whenever the metrics are (so a killed run never leaves a torn line), and a
//! resumed run keeps the lines of the steps its checkpoint covers.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use sha2::{Digest, Sha256};

use crate::io::write_atomic;

/// One step's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub step: u64,
    pub fields: BTreeMap<String, String>,
}

/// sha256 (hex) of i64 values, little-endian.
pub fn digest_i64(values: impl IntoIterator<Item = i64>) -> String {
    let mut h = Sha256::new();
    for v in values {
        h.update(v.to_le_bytes());
    }
    hex(&h.finalize())
}

/// sha256 (hex) of f64 values' bits, little-endian.
pub fn digest_f64(values: impl IntoIterator<Item = f64>) -> String {
    let mut h = Sha256::new();
    for v in values {
        h.update(v.to_bits().to_le_bytes());
    }
    hex(&h.finalize())
}

/// The bits of `x` as 16 hex digits.
pub fn bits(x: f64) -> String {
    format!("{:016x}", x.to_bits())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The fingerprints of a run, in step order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprints {
    pub steps: Vec<Fingerprint>,
}

impl Fingerprints {
    /// Adds the fingerprint of `step` (steps must increase).
    pub fn push(&mut self, step: u64, fields: impl IntoIterator<Item = (&'static str, String)>) -> Result<()> {
        if let Some(last) = self.steps.last() {
            ensure!(step > last.step, "fingerprint of step {step} after step {}", last.step);
        }
        let fields = fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        self.steps.push(Fingerprint { step, fields });
        Ok(())
    }

    /// The JSON-lines text.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for f in &self.steps {
            let mut obj = serde_json::Map::new();
            obj.insert("step".into(), f.step.into());
            for (k, v) in &f.fields {
                obj.insert(k.clone(), v.clone().into());
            }
            out.push_str(&serde_json::Value::Object(obj).to_string());
            out.push('\n');
        }
        out
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_jsonl().as_bytes())
    }

    /// Reads `path`, keeping the steps `< until` (`u64::MAX`: all).
    pub fn read(path: &Path, until: u64) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut out = Self::default();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let ctx = || format!("{} line {}", path.display(), i + 1);
            let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).with_context(ctx)?;
            let step = v.get("step").and_then(|s| s.as_u64()).with_context(|| format!("{}: no step", ctx()))?;
            if step >= until {
                continue;
            }
            let fields = v
                .into_iter()
                .filter(|(k, _)| k != "step")
                .map(|(k, v)| Ok((k, v.as_str().with_context(|| format!("{}: non-string field", ctx()))?.to_string())))
                .collect::<Result<_>>()?;
            out.steps.push(Fingerprint { step, fields });
        }
        Ok(out)
    }

    /// The first `(step, field)` where `other` differs from `self` over their common steps (a step missing from
    /// `other` counts as field `"step"`), or `None` when every common field is equal.
    pub fn first_divergence(&self, other: &Fingerprints) -> Option<(u64, String)> {
        for (a, b) in self.steps.iter().zip(&other.steps) {
            if a.step != b.step {
                return Some((a.step.min(b.step), "step".into()));
            }
            for (k, v) in &a.fields {
                if b.fields.get(k) != Some(v) {
                    return Some((a.step, k.clone()));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_divergence() {
        let mut a = Fingerprints::default();
        a.push(1, [("loss", bits(0.5)), ("tokens", digest_i64([1, 2, 3]))]).unwrap();
        a.push(2, [("loss", bits(0.25)), ("tokens", digest_i64([4]))]).unwrap();
        assert!(a.push(2, [("loss", bits(0.0))]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.jsonl");
        a.write(&p).unwrap();
        assert_eq!(Fingerprints::read(&p, u64::MAX).unwrap(), a);
        assert_eq!(Fingerprints::read(&p, 2).unwrap().steps.len(), 1);
        assert_eq!(a.first_divergence(&a), None);
        let mut b = Fingerprints::read(&p, 2).unwrap();
        b.push(2, [("loss", bits(0.25)), ("tokens", digest_i64([5]))]).unwrap();
        assert_eq!(a.first_divergence(&b), Some((2, "tokens".into())));
        assert_eq!(bits(1.0), "3ff0000000000000");
        assert_ne!(digest_f64([0.0]), digest_f64([-0.0]), "bitwise, not numeric");
    }
}
