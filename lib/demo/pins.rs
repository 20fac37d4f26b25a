//! The embedded manifests pin exactly what the chains install: every `kind = "hub"` source of a repository that a
//! chain builds (the tiny model of its `[tiny]` settings) or installs (its `[[install]]` folders) names a revision
//! some chain installs, and every file hash it pins is that revision's. A change to the tiny model's builder or to a
//! committed model folder that is not carried into the manifests fails here, not an hour later in the notebooks.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{Chain, install_folder, tiny_spec};
use crate::model::tiny::{TINY_REPO_ID, install};

/// `(repo, revision)` → file → sha256.
type Installed = BTreeMap<(String, String), BTreeMap<String, String>>;

fn hub_pins(v: &toml::Value, out: &mut Vec<(String, String, BTreeMap<String, String>)>) {
    match v {
        toml::Value::Table(t) => {
            if t.get("kind").and_then(|k| k.as_str()) == Some("hub") {
                let s = |k: &str| t.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
                let files = t
                    .get("files")
                    .and_then(|f| f.as_table())
                    .map(|f| f.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
                    .unwrap_or_default();
                out.push((s("repo"), s("revision"), files));
            }
            t.values().for_each(|x| hub_pins(x, out));
        }
        toml::Value::Array(a) => a.iter().for_each(|x| hub_pins(x, out)),
        _ => {}
    }
}

#[test]
fn embedded_manifests_pin_the_models_the_chains_install() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cache = tempfile::tempdir().unwrap();
    let mut installed = Installed::new();
    let mut built = Vec::new();
    let files = crate::io::files_ending(&root.join("experiments/embedded"), ".toml");
    for f in files.iter().filter(|f| f.to_string_lossy().ends_with(".chain.toml")) {
        let chain = Chain::load(f).unwrap();
        // The chains share their `[tiny]` settings: build each distinct tiny model once.
        if !built.contains(&chain.tiny) {
            built.push(chain.tiny);
            let tiny = install(&tiny_spec(&chain.tiny), cache.path()).unwrap();
            let hashes = tiny.files.iter().map(|(f, h, _)| (f.clone(), h.clone())).collect();
            installed.insert((TINY_REPO_ID.to_string(), tiny.revision), hashes);
        }
        for i in &chain.install {
            let done = install_folder(i, root, cache.path()).unwrap_or_else(|e| panic!("{}: {e:#}", f.display()));
            let hashes = done.files.iter().map(|(f, h, _)| (f.clone(), h.clone())).collect();
            installed.insert((i.repo.clone(), done.revision), hashes);
        }
    }
    let repos: BTreeSet<&String> = installed.keys().map(|(r, _)| r).collect();
    let mut checked = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let mut pins = Vec::new();
        hub_pins(&toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display())), &mut pins);
        for (repo, revision, pinned) in pins.into_iter().filter(|(r, _, _)| repos.contains(r)) {
            let Some(have) = installed.get(&(repo.clone(), revision.clone())) else {
                let known: Vec<_> = installed.keys().filter(|(r, _)| *r == repo).map(|(_, v)| v).collect();
                panic!("{} pins {repo}@{revision}, but the chains install {known:?}", f.display());
            };
            assert!(!pinned.is_empty(), "{} pins no file hashes of {repo}", f.display());
            for (file, sha) in &pinned {
                assert_eq!(have.get(file), Some(sha), "{}: {repo} file {file}", f.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} pins of installed repositories found");
}
