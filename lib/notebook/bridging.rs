//! Modality-bridging results as polars tables for notebook 01 (Vision-R1 §3.3, papers_spec §1.2; the pipeline is
//! [`crate::data::bridging`]): the filter statistics of one or more runs (one row per run and family, plus `all`),
//! and the samples of a run (description, raw reasoning, verdict) with their problem's question and answer; and the
//! endpoints the real pipeline ([`crate::datagen::bridge`]) calls from the notebook.
use std::path::Path;

use anyhow::{Result, ensure};
use polars::df;
use polars::prelude::DataFrame;

use crate::data::bridging::BridgeStats;
use crate::data::bridging::pipeline::Sample;
use crate::data::bridging::stats::Counts;
use crate::data::synthetic::Problem;
use crate::endpoint::EndpointConfig;
use crate::serve::{ServeOptions, Server, start};

/// One row per (run, family) and per run (`family = "all"`): totals, kept, keep rate %, the drop reasons, slips
/// made/caught, kept samples with a reflection word, mean words of the kept reasonings.
pub fn stats_frame(runs: &[&BridgeStats]) -> Result<DataFrame> {
    let mut rows: Vec<(String, String, &Counts)> = Vec::new();
    for s in runs {
        for (f, c) in &s.per_family {
            rows.push((s.run.clone(), f.name().to_string(), c));
        }
        rows.push((s.run.clone(), "all".to_string(), &s.overall));
    }
    let u = |f: fn(&Counts) -> usize| rows.iter().map(|r| f(r.2) as u64).collect::<Vec<_>>();
    let df = df!(
        "run" => rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        "family" => rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
        "total" => u(|c| c.total),
        "kept" => u(|c| c.kept),
        "keep_%" => rows.iter().map(|r| 100.0 * r.2.keep_rate()).collect::<Vec<_>>(),
        "wrong_answer" => u(|c| c.wrong_answer),
        "empty" => u(|c| c.empty),
        "inconsistent" => u(|c| c.inconsistent),
        "reward_check" => u(|c| c.reward_check),
        "slips_made" => u(|c| c.slips_made),
        "slips_caught" => u(|c| c.slips_caught),
        "kept_with_reflection" => u(|c| c.kept_with_reflection),
        "mean_words" => rows.iter().map(|r| r.2.mean_words).collect::<Vec<_>>(),
    )?;
    Ok(df)
}

/// The verdict of a sample: `kept` or the drop reason.
pub fn verdict(s: &Sample) -> String {
    match (&s.kept, &s.dropped) {
        (Some(_), _) => "kept".to_string(),
        (None, Some(r)) => format!(
            "dropped: {}",
            serde_json::to_value(r).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_else(|| format!("{r:?}"))
        ),
        (None, None) => "undecided".to_string(),
    }
}

/// One row per sample of a run, in problem order; `problems` are the run's input problems (same order).
pub fn samples_frame(samples: &[Sample], problems: &[Problem]) -> Result<DataFrame> {
    ensure!(
        samples.len() == problems.len(),
        "{} samples for {} problems: pass the problems the run was given",
        samples.len(),
        problems.len()
    );
    let df = df!(
        "id" => samples.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        "family" => samples.iter().map(|s| s.family.name().to_string()).collect::<Vec<_>>(),
        "question" => problems.iter().map(|p| p.question.clone()).collect::<Vec<_>>(),
        "answer" => problems.iter().map(|p| p.answer.clone()).collect::<Vec<_>>(),
        "reasoner_answer" => samples.iter().map(|s| s.raw.answer.clone()).collect::<Vec<_>>(),
        "verdict" => samples.iter().map(verdict).collect::<Vec<_>>(),
        "slipped" => samples.iter().map(|s| s.raw.slipped).collect::<Vec<_>>(),
        "caught" => samples.iter().map(|s| s.raw.caught).collect::<Vec<_>>(),
        "description" => samples.iter().map(|s| s.description.clone()).collect::<Vec<_>>(),
        "reasoning" => samples.iter().map(|s| s.raw.reasoning.clone()).collect::<Vec<_>>(),
    )?;
    Ok(df)
}

/// Where the endpoint pipeline of notebook 01 sends its requests: the endpoints named by `R1LAB_MLLM_ENDPOINT` and
/// `R1LAB_REASONER_ENDPOINT` (base URLs ending in `/v1`; models `R1LAB_MLLM_MODEL` / `R1LAB_REASONER_MODEL`, key
/// `R1LAB_API_KEY`) when set; otherwise `r1lab serve` started on loopback over `local_model` (both roles).
pub struct Endpoints {
    pub mllm: EndpointConfig,
    pub reasoner: EndpointConfig,
    /// The local server, when one was started (stopped when dropped).
    pub local: Option<Server>,
}

impl Endpoints {
    pub fn from_env_or_local(local_model: &Path) -> Result<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let key = var("R1LAB_API_KEY");
        if let Some(mllm_url) = var("R1LAB_MLLM_ENDPOINT") {
            let reasoner_url = var("R1LAB_REASONER_ENDPOINT").unwrap_or_else(|| mllm_url.clone());
            let mut mllm = EndpointConfig::new(&mllm_url, &var("R1LAB_MLLM_MODEL").unwrap_or_default());
            let mut reasoner = EndpointConfig::new(&reasoner_url, &var("R1LAB_REASONER_MODEL").unwrap_or_default());
            mllm.api_key = key.clone();
            reasoner.api_key = key;
            return Ok(Self { mllm, reasoner, local: None });
        }
        let mut opts = ServeOptions::new(local_model.to_path_buf());
        opts.model_name = "tiny".into();
        let server = start(&opts)?;
        let cfg = EndpointConfig::new(&server.base_url(), "tiny");
        Ok(Self { mllm: cfg.clone(), reasoner: cfg, local: Some(server) })
    }
}

/// The verdicts the endpoint pipeline wrote (`<out>/samples.jsonl`) as a table.
pub fn endpoint_verdicts(out: &Path) -> Result<DataFrame> {
    let text = std::fs::read_to_string(out.join("samples.jsonl"))?;
    let rows: Vec<serde_json::Value> = text.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    let field = |k: &str| rows.iter().map(|r| r.get(k).map_or(String::new(), |v| v.to_string())).collect::<Vec<_>>();
    Ok(df!(
        "id" => field("id"),
        "ground_truth" => field("ground_truth"),
        "answer" => field("answer"),
        "kept" => field("kept"),
        "drop_reason" => field("drop_reason"),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::bridging::{BridgeConfig, DescribeMode, bridge};
    use crate::data::synthetic::{Config, Family, Split, generate_mix};

    #[test]
    fn tables_have_a_row_per_family_and_sample_and_agree_with_the_stats() {
        let problems = generate_mix(&Family::ALL, &Config { seed: 0, level: 1, size: 112 }, Split::Train, 3).unwrap();
        let run = bridge(&problems, DescribeMode::PseudoCotConditioned, &BridgeConfig::default()).unwrap();
        let stats = stats_frame(&[&run.stats]).unwrap();
        assert_eq!(stats.height(), Family::ALL.len() + 1);
        let s = samples_frame(&run.samples, &problems).unwrap();
        assert_eq!(s.height(), problems.len());
        let kept = s.column("verdict").unwrap().str().unwrap().iter().filter(|v| *v == Some("kept")).count();
        assert_eq!(kept, run.stats.overall.kept);
        assert!(samples_frame(&run.samples, &problems[1..]).is_err());
    }
}
