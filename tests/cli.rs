//! End-to-end tests of the `r1lab` binary: run as a user would, with no LD_LIBRARY_PATH (the
//! rpath from build.rs must find libtorch on its own).
use std::path::Path;
use std::process::{Command, Output};

fn r1lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_r1lab"))
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("R1LAB_DEVICE")
        .output()
        .expect("r1lab binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn info_json_reports_pinned_versions_and_linked_cuda_library() {
    let out = r1lab(&["--device", "cpu", "info", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let info: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(info["tch_version"], "0.24.0");
    assert!(info["libtorch_version"].as_str().unwrap().starts_with("2.11.0"), "{info}");
    assert_eq!(info["device"], "cpu");
    let dir = Path::new(info["libtorch_dir"].as_str().unwrap());
    if dir.join("libtorch_cuda.so").exists() {
        // --no-as-needed -ltorch keeps libtorch_cuda.so loaded from process start.
        assert_eq!(info["cuda"]["library"], "Linked", "{info}");
    }
}

#[test]
fn info_text_runs_without_ld_library_path() {
    let out = r1lab(&["info"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("libtorch  2.11.0") && text.contains("(requested auto)"), "{text}");
}

#[test]
fn device_comes_from_the_environment_when_no_flag_is_given() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_r1lab")).args(["info", "--json"]).env("R1LAB_DEVICE", "cpu").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let info: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(info["device_requested"], "cpu");
}

#[test]
fn bad_devices_fail_with_a_message_saying_what_is_accepted_or_missing() {
    let out = r1lab(&["--device", "tpu", "info"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("expected auto, cpu, cuda or cuda:N"), "{}", stderr(&out));

    let out = r1lab(&["--device", "cuda:4096", "info"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cuda:4096 requested"), "{}", stderr(&out));
}

#[test]
fn smoke_writes_its_artefacts() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("smoke");
    let out = r1lab(&["--device", "cpu", "smoke", "--steps", "40", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("held-out MSE"), "{text}");
    for f in ["metrics.parquet", "loss.png", "summary.json"] {
        assert!(out_dir.join(f).is_file(), "{f} missing; stdout: {text}");
    }
}
