//! Versioned prompt templates of the endpoint pipelines, loaded at run time from `prompts/{pipeline}/{version}/
//! {name}.txt` (see `prompts/README.md` for each file's provenance). A placeholder is `{name}` with a lowercase
//! name; rendering replaces each in one pass (a value containing `{x}` is not expanded again) and fails when a
//! placeholder has no value or a value has no placeholder, so a template and the code cannot drift apart
//! silently. Each template's SHA-256 goes into the outputs ([`PromptSet::hashes`]).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use anyhow::{Context, Result, bail, ensure};
use regex::Regex;
use sha2::{Digest, Sha256};

static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\{([a-z_]+)\}").expect("valid regex"));

/// One template file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub name: String,
    pub text: String,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
}

impl Template {
    pub fn new(name: &str, text: &str) -> Self {
        Self { name: name.into(), text: text.into(), sha256: format!("{:x}", Sha256::digest(text.as_bytes())) }
    }

    /// The placeholder names, in order of first use.
    pub fn placeholders(&self) -> Vec<String> {
        let mut out: Vec<String> = vec![];
        for c in PLACEHOLDER.captures_iter(&self.text) {
            if !out.iter().any(|n| n == &c[1]) {
                out.push(c[1].to_string());
            }
        }
        out
    }

    /// Fills every placeholder from `vars` (see the module header).
    pub fn render(&self, vars: &[(&str, &str)]) -> Result<String> {
        let names = self.placeholders();
        for n in &names {
            ensure!(vars.iter().any(|(k, _)| k == n), "prompt template `{}` needs a value for {{{n}}}", self.name);
        }
        for (k, _) in vars {
            ensure!(
                names.iter().any(|n| n == k),
                "prompt template `{}` has no {{{k}}} placeholder: the template file and the pipeline disagree",
                self.name
            );
        }
        Ok(PLACEHOLDER
            .replace_all(&self.text, |c: &regex::Captures| {
                vars.iter().find(|(k, _)| *k == &c[1]).map(|(_, v)| v.to_string()).unwrap_or_default()
            })
            .into_owned())
    }
}

/// The templates of one pipeline version.
#[derive(Debug, Clone)]
pub struct PromptSet {
    /// `{root}/{pipeline}/{version}`.
    pub dir: PathBuf,
    pub templates: BTreeMap<String, Template>,
}

impl PromptSet {
    /// Loads `names` (file stems) from `{root}/{pipeline}/{version}/`.
    pub fn load(root: &Path, pipeline: &str, version: &str, names: &[&str]) -> Result<Self> {
        let dir = root.join(pipeline).join(version);
        let mut templates = BTreeMap::new();
        for n in names {
            let path = dir.join(format!("{n}.txt"));
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "reading prompt template {}: pass --prompts with the repository's prompts/ folder",
                    path.display()
                )
            })?;
            templates.insert(n.to_string(), Template::new(n, &text));
        }
        Ok(Self { dir, templates })
    }

    pub fn get(&self, name: &str) -> Result<&Template> {
        self.templates.get(name).with_context(|| format!("no prompt template `{name}` in {}", self.dir.display()))
    }

    /// `name -> sha256`.
    pub fn hashes(&self) -> BTreeMap<String, String> {
        self.templates.iter().map(|(k, t)| (k.clone(), t.sha256.clone())).collect()
    }

    /// Writes `{out}/prompts.json` (folder and hashes), or, when it exists, checks that it names the same
    /// hashes: a resumed run must not mix results of different prompts.
    pub fn pin(&self, out: &Path) -> Result<()> {
        let path = out.join("prompts.json");
        let want = serde_json::json!({"dir": self.dir.display().to_string(), "sha256": self.hashes()});
        if let Ok(bytes) = std::fs::read(&path) {
            let have: serde_json::Value =
                serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))?;
            if have["sha256"] != want["sha256"] {
                bail!(
                    "the prompt templates differ from those the results in {} were made with ({}): use a new \
                     --out folder, or restore the templates",
                    out.display(),
                    path.display()
                );
            }
            return Ok(());
        }
        crate::io::write_atomic(&path, &serde_json::to_vec_pretty(&want)?)
    }
}

/// The repository's `prompts/` folder (for tests and as the CLI default when run from the repository root).
pub fn default_root() -> PathBuf {
    PathBuf::from("prompts")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_placeholder_once_and_checks_names() {
        let t = Template::new("t", "Q: {question}\nA: {answer} \\boxed{} {question}");
        assert_eq!(t.placeholders(), vec!["question", "answer"]);
        let s = t.render(&[("question", "is {answer}?"), ("answer", "7")]).unwrap();
        assert_eq!(s, "Q: is {answer}?\nA: 7 \\boxed{} is {answer}?");
        assert!(t.render(&[("question", "q")]).unwrap_err().to_string().contains("{answer}"));
        assert!(t.render(&[("question", "q"), ("answer", "a"), ("x", "")]).is_err());
    }

    #[test]
    fn the_repository_templates_load_and_pin() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        let set = PromptSet::load(&root, "bridging", "v1", &["pseudo_cot", "description", "reasoning"]).unwrap();
        assert_eq!(set.get("description").unwrap().placeholders(), vec!["question", "thinking_process"]);
        assert!(set.get("description").unwrap().text.starts_with("Given a image, a question:{question}"));
        assert_eq!(set.get("reasoning").unwrap().placeholders(), vec!["description", "question"]);
        let dir = tempfile::tempdir().unwrap();
        set.pin(dir.path()).unwrap();
        set.pin(dir.path()).unwrap();
        let mut changed = set.clone();
        changed.templates.insert("reasoning".into(), Template::new("reasoning", "{description} {question}!"));
        assert!(changed.pin(dir.path()).unwrap_err().to_string().contains("differ"));
        assert!(PromptSet::load(&root, "bridging", "v9", &["x"]).is_err());
    }
}
