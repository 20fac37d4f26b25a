//! The notebook output check (`scripts/check_notebook_outputs.py`, run by `make notebooks` on every executed
//! notebook) catches a lost display: evcxr keeps only the last display of each MIME type per cell, so a cell that
//! calls `.evcxr_display()` twice for two tables shows one table in the executed copy. The check compares each
//! code cell's `.evcxr_display()` calls (comments and string literals ignored) with the displays its outputs hold,
//! refuses a display inside a loop body, and lets a conditional display declare its count in the cell metadata
//! (`{"r1lab": {"displays": N}}`).
//!
//! The notebooks here are written by hand (nbformat 4, outputs included) and checked by the venv's python, which
//! `make test` installs before `cargo test` (`make venv`).
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

const SVG: &str = r#"<svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/></svg>"#;
const TABLE: &str = "<table><thead><tr><th>a</th></tr></thead><tbody><tr><td>1</td></tr></tbody></table>";

fn display(mime: &str, data: &str) -> Value {
    json!({ "output_type": "display_data", "data": { mime: data }, "metadata": {} })
}

/// A code cell with `source`, execution count `n`, these outputs and cell metadata.
fn cell(n: u32, source: &str, outputs: Vec<Value>, metadata: Value) -> Value {
    json!({ "cell_type": "code", "execution_count": n, "metadata": metadata, "source": source, "outputs": outputs })
}

/// A notebook whose first two cells show a chart and a table (the check wants one of each per notebook),
/// followed by `extra` cells.
fn notebook(extra: Vec<(&str, Vec<Value>, Value)>) -> Value {
    let mut cells = vec![
        cell(1, "chart.evcxr_display();", vec![display("image/svg+xml", SVG)], json!({})),
        cell(2, "table(&df, 5).evcxr_display();", vec![display("text/html", TABLE)], json!({})),
    ];
    for (i, (src, outs, meta)) in extra.into_iter().enumerate() {
        cells.push(cell(3 + i as u32, src, outs, meta));
    }
    json!({
        "nbformat": 4, "nbformat_minor": 5, "cells": cells,
        "metadata": { "kernelspec": { "name": "r1lab", "display_name": "Rust (r1lab)", "language": "rust" } },
    })
}

/// Runs the check on `nb`; (passed, stderr).
fn check(nb: &Value) -> (bool, String) {
    let python: PathBuf = root().join(".venv/bin/python");
    assert!(python.is_file(), "{} is missing; run `make venv` (the check needs nbformat)", python.display());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("executed.ipynb");
    std::fs::write(&path, serde_json::to_vec_pretty(nb).unwrap()).unwrap();
    let out = Command::new(python).arg(root().join("scripts/check_notebook_outputs.py")).arg(&path).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn one_display_per_call_passes_and_comments_strings_and_other_kinds_do_not_count() {
    let extra = vec![
        // A chart and a table in one cell: two kinds, both kept.
        (
            "chart.evcxr_display();\ntable(&df, 5).evcxr_display();",
            vec![
                json!({ "output_type": "display_data", "data": { "image/svg+xml": SVG, "text/html": TABLE }, "metadata": {} }),
            ],
            json!({}),
        ),
        // A commented-out call, a call inside a string, and a loop without a display.
        (
            "// old.evcxr_display();\nfor x in &xs { println!(\"{x} .evcxr_display() {{\"); }\n/* y.evcxr_display(); */",
            vec![json!({ "output_type": "stream", "name": "stdout", "text": "1\n" })],
            json!({}),
        ),
    ];
    let (ok, err) = check(&notebook(extra));
    assert!(ok, "{err}");
}

#[test]
fn a_second_display_of_the_same_kind_lost_by_evcxr_fails_the_check() {
    let src = "table(&a, 5).evcxr_display();\ntable(&b, 5).evcxr_display();";
    let (ok, err) = check(&notebook(vec![(src, vec![display("text/html", TABLE)], json!({}))]));
    assert!(!ok);
    assert!(err.contains("code cell 3 calls .evcxr_display() 2 times but shows 1 display(s)"), "{err}");
}

#[test]
fn a_display_inside_a_loop_fails_the_check() {
    let src = "for (name, t) in &tables {\n    println!(\"{name}\");\n    table(t, 5).evcxr_display();\n}";
    let (ok, err) = check(&notebook(vec![(src, vec![display("text/html", TABLE)], json!({}))]));
    assert!(!ok);
    assert!(err.contains("code cell 3 calls .evcxr_display() inside a loop"), "{err}");
}

#[test]
fn declared_display_counts_replace_the_source_count() {
    let src = "match rejected { Some(p) => p.evcxr_display(), None => println!(\"every sample was kept\") }";
    let stdout = json!({ "output_type": "stream", "name": "stdout", "text": "every sample was kept\n" });
    let (ok, err) = check(&notebook(vec![(src, vec![stdout], json!({ "r1lab": { "displays": 0 } }))]));
    assert!(ok, "{err}");
    let (ok, err) = check(&notebook(vec![(src, vec![], json!({}))]));
    assert!(!ok && err.contains("calls .evcxr_display() 1 times but shows 0"), "{err}");
    let (ok, err) = check(&notebook(vec![(src, vec![], json!({ "r1lab": { "displays": 1 } }))]));
    assert!(!ok && err.contains("metadata r1lab.displays says 1"), "{err}");
}
