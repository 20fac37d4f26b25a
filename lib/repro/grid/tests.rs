//! Grid tests: the checked-in grid files, coupled axes, chains beside axes, and the table beside the paper's.
use super::*;

#[test]
fn every_checked_in_grid_parses_and_every_cell_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = crate::io::files_ending(&root.join("experiments"), ".grid.toml");
    assert!(files.len() >= 8, "expected the 4 paper grids and their 4 embedded twins, found {files:?}");
    for f in &files {
        let g = Grid::load(f).unwrap_or_else(|e| panic!("{e:#}"));
        if let Some(m) = &g.manifest {
            assert!(root.join(m).is_file(), "{} names a missing manifest {}", f.display(), m.display());
        }
        let check = g.check(root).unwrap_or_else(|e| panic!("{}: {e:#}", f.display()));
        assert!(check.runs >= 2 * g.seeds.len(), "{}: {} runs", f.display(), check.runs);
        assert!(!g.published.is_empty() || f.to_string_lossy().contains("embedded"), "{}", f.display());
    }
}

#[test]
fn vision_r1_baseline_zero_and_no_cot_rows_are_cells() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cells = |rel: &str| {
        let g = Grid::load(&root.join(rel)).unwrap();
        let base = read(root, g.manifest.as_ref().unwrap()).unwrap();
        let planned = sweep::plan(&base, &g.spec()).unwrap();
        let labels = g.cell_labels();
        let by_label: BTreeMap<String, Manifest> =
            planned.into_iter().map(|p| (labels[p.cell].clone(), p.manifest)).collect();
        (g, by_label)
    };
    for rel in
        ["experiments/vision_r1/grids/tab5_ptst.grid.toml", "experiments/embedded/grids/vision_r1_tab5_ptst.grid.toml"]
    {
        let (_, m) = cells(rel);
        let baseline = &m["Baseline"];
        assert!(matches!(baseline.train, TrainSettings::EvalOnly(_)), "{rel}");
        assert!(matches!(baseline.model.source, crate::repro::manifest::Source::Hub { .. }), "{rel}: untrained");
        assert!(matches!(m["4K×16→8K×8"].train, TrainSettings::Grpo(_)), "{rel}");
    }
    for rel in [
        "experiments/vision_r1/grids/tab6_cold_start.grid.toml",
        "experiments/embedded/grids/vision_r1_tab6_cold_start.grid.toml",
    ] {
        let (g, m) = cells(rel);
        let zero = &m["Vision-R1-Zero"];
        let TrainSettings::Grpo(z) = &zero.train else { panic!("{rel}: Zero trains") };
        assert_eq!(z.schedule.len(), 1, "{rel}: one stage");
        assert_eq!(z.reward, crate::repro::manifest::train::RewardSpec::R1vFormatAccuracy { format_weight: 0.5 });
        assert!(zero.data.system_prompt.as_deref().is_some_and(|p| p.starts_with("A conversation between User")));
        assert_eq!(zero.eval[0].scorer, Some(crate::repro::manifest::train::RewardSpec::VisionR1Hard), "{rel}");
        for other in ["Zero+PTST", "Vision-R1"] {
            assert_eq!(m[other].data.system_prompt, None, "{rel}: {other}");
            assert_eq!(m[other].eval[0].scorer, None, "{rel}: {other}");
        }
        let chain = g.chain.iter().find(|c| c.label == "Zero+SFT(no CoT)+PTST").expect("the no-CoT chain");
        let sft = Manifest::load(&root.join(&chain.manifests[0])).unwrap();
        assert_eq!(sft.data.transform, Some(crate::repro::manifest::DataTransform::StripCot), "{rel}");
        assert_eq!(g.cell_labels().len(), 4, "{rel}: every row of Tab.6");
    }
}

#[test]
fn cell_labels_follow_the_planners_order() {
    let base =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/embedded/vision_r1_ptst.toml"))
            .unwrap();
    let g: Grid = toml::from_str(
        r#"
        table = "t"
        manifest = "experiments/embedded/vision_r1_ptst.toml"
        base_label = "base"
        seeds = [1, 2]
        metric = "heldout.acc"
        [[axis]]
        key = "train.optimizer.lr"
        values = [1e-3, 2e-3]
        labels = ["lo", "hi"]
        [[axis]]
        key = "train.schedule"
        values = [[{ max_new_tokens = 8, group_size = 2, steps = 1 }], [{ max_new_tokens = 9, group_size = 3, steps = 1 }]]
        labels = ["a", "b"]
        [[published]]
        cell = "hi × a"
        source = "x"
        metrics = { "heldout.acc" = 0.5 }
        "#,
    )
    .unwrap();
    g.validate().unwrap();
    let labels = g.cell_labels();
    assert_eq!(labels, ["base", "lo × a", "lo × b", "hi × a", "hi × b"]);
    // The planner's cell c carries the values the label names.
    for p in sweep::plan(&base, &g.spec()).unwrap() {
        let t: Table = p.text.parse().unwrap();
        let (lr, sched) = (&t["train"]["optimizer"]["lr"], &t["train"]["schedule"]);
        let names: Vec<&str> = labels[p.cell + 1].split(" × ").collect();
        let i = g.axis[0].labels.iter().position(|l| l == names[0]).unwrap();
        let j = g.axis[1].labels.iter().position(|l| l == names[1]).unwrap();
        assert_eq!((lr, sched), (&g.axis[0].values[i], &g.axis[1].values[j]), "cell {}", p.cell);
    }
    let mut bad = g.clone();
    bad.published[0].cell = "hi × c".into();
    assert!(bad.validate().unwrap_err().to_string().contains("not a cell"));
    let mut bad = g.clone();
    bad.axis[0].labels.pop();
    assert!(bad.validate().unwrap_err().to_string().contains("one label per value"));
    let mut bad = g.clone();
    bad.chain.push(GridChain { label: "x".into(), manifests: vec![] });
    assert!(bad.validate().is_err());
}

const COUPLED: &str = r#"
    table = "t"
    manifest = "experiments/embedded/vision_r1_ptst.toml"
    seeds = [1]
    metric = "heldout.acc"
    [[axis]]
    labels = ["Baseline", "Zero"]
    sets = [
      { "train" = { algo = "none" } },
      { "train.schedule" = [{ max_new_tokens = 8, group_size = 2, steps = 3 }], "data.system_prompt" = "Think." },
    ]
    [[axis]]
    key = "model.dtype"
    values = ["f32"]
    labels = ["fp32"]
    "#;

#[test]
fn coupled_axes_set_their_keys_together_and_leave_the_rest() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = std::fs::read_to_string(root.join("experiments/embedded/vision_r1_ptst.toml")).unwrap();
    let g: Grid = toml::from_str(COUPLED).unwrap();
    g.validate().unwrap();
    assert_eq!(g.cell_labels(), ["Baseline × fp32", "Zero × fp32"]);
    assert_eq!(g.axis[0].name(), "train + data.system_prompt + train.schedule");
    let planned = sweep::plan(&base, &g.spec()).unwrap();
    let (baseline, zero) = (&planned[0].manifest, &planned[1].manifest);
    assert!(matches!(baseline.train, TrainSettings::EvalOnly(_)), "{:?}", baseline.train);
    assert_eq!((baseline.data.system_prompt.as_deref(), zero.data.system_prompt.as_deref()), (None, Some("Think.")));
    let TrainSettings::Grpo(z) = &zero.train else { panic!("the Zero cell trains") };
    assert_eq!((z.schedule.len(), z.total_steps()), (1, 3));
    // What the Zero value leaves out is the base manifest's.
    let base_m = Manifest::from_toml_str(&base).unwrap();
    let TrainSettings::Grpo(b) = &base_m.train else { panic!() };
    assert_eq!((z.reward, &z.optimizer, &zero.model), (b.reward, &b.optimizer, &base_m.model));
    assert_eq!(g.check(root).unwrap().runs, 2);
}

#[test]
fn coupled_axis_errors_name_the_axis() {
    let err = |text: &str| {
        let g: Grid = toml::from_str(text).unwrap();
        format!("{:#}", g.validate().unwrap_err())
    };
    let e = err(&COUPLED.replace(r#"labels = ["Baseline", "Zero"]"#, r#"labels = ["Baseline"]"#));
    assert!(e.contains("axis train + data.system_prompt + train.schedule") && e.contains("1 labels for 2"), "{e}");
    let e = err(&COUPLED.replace(r#"{ "train" = { algo = "none" } }"#, "{}"));
    assert!(e.contains("\"Baseline\" sets no key"), "{e}");
    let e = err(&COUPLED.replace(r#""model.dtype""#, r#""train.schedule.0.steps""#));
    assert!(e.contains("both set train / train.schedule.0.steps"), "{e}");
    let e = err(&COUPLED.replace(r#""data.system_prompt""#, r#""train.schedule.0""#));
    assert!(e.contains("sets both train.schedule and train.schedule.0"), "{e}");
    let e = err(&COUPLED.replace(r#""data.system_prompt""#, r#""seeds.base""#));
    assert!(e.contains("seeds.base is set by the grid"), "{e}");
    let e = err(&COUPLED.replace("labels = [\"fp32\"]", "labels = [\"fp32\"]\nsets = [{ \"a\" = 1 }]"));
    assert!(e.contains("axis model.dtype: give either"), "{e}");
    // A bad cell is refused when the grid is checked, naming the cell.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let g: Grid = toml::from_str(&COUPLED.replace("\"Think.\"", "\" \"")).unwrap();
    let e = format!("{:#}", g.check(root).unwrap_err());
    assert!(e.contains("cell 1") && e.contains("data.system_prompt is empty"), "{e}");
}

#[test]
fn axes_and_chains_mix_and_chains_cannot_follow_an_evaluation_only_stage() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut g: Grid = toml::from_str(COUPLED).unwrap();
    let cs = "experiments/embedded/vision_r1_cold_start.toml";
    g.chain.push(GridChain {
        label: "CS+PTST".into(),
        manifests: vec![cs.into(), "experiments/embedded/vision_r1_ptst.toml".into()],
    });
    g.validate().unwrap();
    assert_eq!(g.cell_labels(), ["Baseline × fp32", "Zero × fp32", "CS+PTST"]);
    assert_eq!(g.check(root).unwrap().runs, 4);
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root.join(cs)).unwrap();
    let start = text.find("[train]").unwrap();
    let end = start + text[start..].find("[[eval]]").unwrap();
    let eval_only = format!("{}[train]\nalgo = \"none\"\n\n{}", &text[..start], &text[end..]);
    std::fs::write(tmp.path().join("cs.toml"), eval_only).unwrap();
    std::fs::copy(root.join("experiments/embedded/vision_r1_ptst.toml"), tmp.path().join("ptst.toml")).unwrap();
    g.chain[0].manifests = vec!["cs.toml".into(), "ptst.toml".into()];
    g.manifest = None;
    g.axis.clear();
    let e = format!("{:#}", g.check(tmp.path()).unwrap_err());
    assert!(e.contains("evaluation-only stage embedded_vision_r1/cold_start"), "{e}");
}

#[test]
fn chains_must_follow_their_parents() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chain = |m: &[&str]| Grid {
        table: "t".into(),
        manifest: None,
        base_label: None,
        seeds: vec![1],
        metric: "heldout.acc".into(),
        axis: vec![],
        chain: vec![GridChain { label: "c".into(), manifests: m.iter().map(PathBuf::from).collect() }],
        published: vec![],
    };
    let ok = chain(&["experiments/embedded/revisual_r1_cold_start.toml", "experiments/embedded/revisual_r1_mrl.toml"]);
    assert_eq!(ok.check(root).unwrap().runs, 2);
    let skip =
        chain(&["experiments/embedded/revisual_r1_cold_start.toml", "experiments/embedded/revisual_r1_trl.toml"]);
    let err = skip.check(root).unwrap_err().to_string();
    assert!(err.contains("stage.parent") && err.contains("embedded_revisual_r1/cold_start"), "{err}");
}

#[test]
fn published_numbers_print_beside_ours() {
    let g: Grid = toml::from_str(
        "table = \"T\"\nmanifest = \"m\"\nseeds = [1]\nmetric = \"a.acc\"\n[[axis]]\nkey = \"k\"\nvalues = [1, 2]\n\
         labels = [\"x\", \"y\"]\n[[published]]\ncell = \"y\"\nsource = \"Tab.1\"\nmetrics = { \"a.acc\" = 47.5 }\n",
    )
    .unwrap();
    let rows = [
        SweepRow { cell: 0, values: vec![], seed: 1, run_id: "r0".into(), value: 0.25 },
        SweepRow { cell: 1, values: vec![], seed: 1, run_id: "r1".into(), value: 0.5 },
    ];
    let cells: Vec<_> = g.cell_labels().into_iter().zip(sweep::summarize(&rows)).collect();
    let md = beside_published(&g, &cells);
    assert!(md.contains("| x | 1 | 0.2500 | n/a | – | – |"), "{md}");
    assert!(md.contains("| y | 1 | 0.5000 | n/a | 47.5 | Tab.1 |"), "{md}");
}

#[test]
fn revisual_r1_mixed_rl_chain_and_dapo_cell_are_rows() {
    use crate::repro::manifest::Source;
    use crate::repro::manifest::dynamic::{DynamicSamplingSpec, FilterMetricSpec};
    use crate::repro::manifest::train::{AggregationSpec, SurrogateSpec};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (rel, published) in [
        ("experiments/revisual_r1/grids/tab3_stages.grid.toml", true),
        ("experiments/embedded/grids/revisual_r1_tab3_stages.grid.toml", false),
    ] {
        let g = Grid::load(&root.join(rel)).unwrap();
        let chain = g.chain.iter().find(|c| c.label == "CS+Mixed-RL").expect("the Mixed-RL chain");
        assert_eq!(chain.manifests.len(), 2, "{rel}: CS then Mixed-RL");
        let rl = Manifest::load(&root.join(&chain.manifests[1])).unwrap();
        assert!(matches!(rl.data.source, Source::Mixed { ref members, .. } if members.len() == 2), "{rel}");
        let row = g.published.iter().find(|p| p.cell == "CS+Mixed-RL");
        assert_eq!(row.is_some(), published, "{rel}");
        if let Some(p) = row {
            assert_eq!(p.metrics["mathvista_testmini.acc"], 72.1);
            assert_eq!(p.metrics["avg6.acc"], 47.6);
        }
    }
    for (rel, published) in [
        ("experiments/revisual_r1/grids/tab4_pad.grid.toml", true),
        ("experiments/embedded/grids/revisual_r1_tab4_pad.grid.toml", false),
    ] {
        let g = Grid::load(&root.join(rel)).unwrap();
        let base = read(root, g.manifest.as_ref().unwrap()).unwrap();
        // The base cell ("GRPO") comes first in the labels; the planner numbers the axis cells from 0.
        let labels = &g.cell_labels()[usize::from(g.base_label.is_some())..];
        let cells: BTreeMap<String, Manifest> =
            sweep::plan(&base, &g.spec()).unwrap().into_iter().map(|p| (labels[p.cell].clone(), p.manifest)).collect();
        assert_eq!(cells.keys().collect::<Vec<_>>(), ["DAPO", "GRPO-Filter", "PAD", "Random-Sampling"], "{rel}");
        let TrainSettings::Grpo(d) = &cells["DAPO"].train else { panic!("{rel}: DAPO trains") };
        assert_eq!(
            d.dynamic_sampling,
            Some(DynamicSamplingSpec::Dapo { max_gen_batches: 30, metric: FilterMetricSpec::Accuracy }),
            "{rel}"
        );
        assert_eq!(d.surrogate, SurrogateSpec::DualClip { eps_low: 0.2, eps_high: 0.28, c: 3.0 }, "{rel}");
        assert_eq!(d.aggregation, AggregationSpec::GlobalTokenMean, "{rel}");
        assert!(d.pad.is_none(), "{rel}: DAPO replaces PAD");
        let TrainSettings::Grpo(p) = &cells["PAD"].train else { panic!() };
        assert!(p.pad.is_some() && p.dynamic_sampling.is_none(), "{rel}");
        assert_eq!(g.published.iter().any(|p| p.cell == "DAPO"), published, "{rel}");
    }
}
