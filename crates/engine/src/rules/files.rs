//! Rules files: a folder (`[paths] rules`, default `<data>/rules`) of `*.toml` files holding
//! `[[rule]]` tables. The engine reads them again whenever one changes (it polls their
//! modification times), and the rules screen edits them in place with `toml_edit`, so the
//! comments and layout of everything else in a file survive an edit.
//!
//! A file that stops parsing keeps its last good rules running and reports where it broke:
//! a typo saved by an editor must not switch off the province's flood rules.

use super::RuleConfig;
use ioc_model::RuleProblem;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The file rules added from the rules screen go to.
pub const EDITED_FILE: &str = "console.toml";
/// The file a node linked to a provincial IOC keeps the province's shared rules in: written
/// by the link, read-only on the node's rules screen (they are changed at the IOC).
pub const PROVINCE_FILE: &str = "tinh.toml";
/// The first line of [`PROVINCE_FILE`], followed by the version it holds.
pub const PROVINCE_HEADER: &str =
    "# Rules of the provincial IOC, kept by the link; change them at the IOC. version ";
/// The file the demo rules are written to on first start.
pub const SEED_FILE: &str = "nghe-an.toml";

/// Where a rule comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The configuration file (read-only here).
    Config,
    /// A rules file (its path).
    File(PathBuf),
}

impl Origin {
    /// Whether the rule is the provincial IOC's (kept by the link, not edited here).
    pub fn is_province(&self) -> bool {
        matches!(self, Origin::File(p) if p.file_name().is_some_and(|n| n == PROVINCE_FILE))
    }

    /// As shown: `config` or the file's name.
    pub fn label(&self) -> String {
        match self {
            Origin::Config => "config".into(),
            Origin::File(p) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<RuleConfig>,
}

/// The files' state, as last read.
pub type Signature = Vec<(PathBuf, Option<SystemTime>, u64)>;

/// The rules folder.
pub struct RuleFiles {
    dir: PathBuf,
    /// Last rules that parsed, per file.
    last_good: HashMap<PathBuf, Vec<RuleConfig>>,
}

/// What reading the folder gave.
pub struct Loaded {
    pub rules: Vec<(RuleConfig, Origin)>,
    pub problems: Vec<RuleProblem>,
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count() + 1)
        .unwrap_or(1);
    (line, column)
}

fn toml_problem(origin: &str, text: &str, e: &toml::de::Error) -> RuleProblem {
    let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
    RuleProblem {
        rule: None,
        origin: origin.into(),
        line,
        column,
        message: e.message().trim().to_string(),
    }
}

/// One rule from the editor: its TOML keys (`name = …`, `when = …`), optionally under a
/// `[[rule]]` header.
pub fn parse_rule(text: &str) -> Result<RuleConfig, RuleProblem> {
    let bare = text.trim_start().strip_prefix("[[rule]]").is_none();
    if bare {
        toml::from_str::<RuleConfig>(text).map_err(|e| toml_problem("text", text, &e))
    } else {
        let file: RulesFile = toml::from_str(text).map_err(|e| toml_problem("text", text, &e))?;
        let mut rules = file.rule.into_iter();
        match (rules.next(), rules.next()) {
            (Some(r), None) => Ok(r),
            _ => Err(RuleProblem {
                rule: None,
                origin: "text".into(),
                line: 1,
                column: 1,
                message: "give exactly one rule".into(),
            }),
        }
    }
}

/// Where the `when` (or `clear_when`) string of a rule starts in `text`, as (line, column) of
/// its first character, so a CEL position can be shown in the text's own coordinates.
pub fn cel_origin(text: &str, key: &str) -> Option<(usize, usize)> {
    let doc = toml_edit::Document::parse(text.to_string()).ok()?;
    let table = match doc.get("rule").and_then(|r| r.as_array_of_tables()) {
        Some(aot) => aot.get(0)?,
        None => doc.as_table(),
    };
    let span = table.get(key)?.as_value()?.span()?;
    let raw = &text[span.clone()];
    // Skip the opening quotes (and the newline a multi-line string may start with).
    let skip = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        3 + usize::from(raw[3..].starts_with('\n'))
    } else {
        1
    };
    Some(line_col(text, span.start + skip))
}

/// The rule as the editor shows it: its TOML keys, defaults left out.
pub fn rule_text(rule: &RuleConfig) -> String {
    toml::to_string(rule).unwrap_or_default()
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

impl RuleFiles {
    pub fn new(dir: PathBuf) -> RuleFiles {
        RuleFiles {
            dir,
            last_good: HashMap::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the folder when it does not exist; then, if `seed` is given, writes those rules
    /// to [`SEED_FILE`] so that they can be seen and changed like any other.
    pub fn create(&self, seed: Option<&[RuleConfig]>) -> std::io::Result<()> {
        if self.dir.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)?;
        if let Some(rules) = seed {
            let mut text = String::from(
                "# Event rules of the Nghệ An demo. Edit here or on the rules screen; the \
                 console\n# reads this folder again whenever a file changes.\n",
            );
            let file = RulesFile {
                rule: rules.to_vec(),
            };
            text.push('\n');
            text.push_str(&toml::to_string(&file).map_err(std::io::Error::other)?);
            write_atomically(&self.dir.join(SEED_FILE), &text)?;
        }
        Ok(())
    }

    /// The `*.toml` files, sorted, with their modification times and sizes.
    pub fn signature(&self) -> Signature {
        let mut out: Signature = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .map(|p| {
                    let meta = std::fs::metadata(&p).ok();
                    let modified = meta.as_ref().and_then(|m| m.modified().ok());
                    let len = meta.map(|m| m.len()).unwrap_or(0);
                    (p, modified, len)
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        out.sort();
        out
    }

    /// Reads every file. A file that does not parse keeps its last good rules.
    pub fn load(&mut self) -> Loaded {
        let mut rules = Vec::new();
        let mut problems = Vec::new();
        let files: Vec<PathBuf> = self.signature().into_iter().map(|(p, _, _)| p).collect();
        self.last_good.retain(|p, _| files.contains(p));
        for path in files {
            let origin = Origin::File(path.clone());
            let label = origin.label();
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| RuleProblem {
                    rule: None,
                    origin: label.clone(),
                    line: 1,
                    column: 1,
                    message: format!("cannot read: {e}"),
                })
                .and_then(|text| {
                    toml::from_str::<RulesFile>(&text).map_err(|e| toml_problem(&label, &text, &e))
                });
            match parsed {
                Ok(f) => {
                    self.last_good.insert(path.clone(), f.rule);
                }
                Err(mut p) => {
                    if self.last_good.contains_key(&path) {
                        p.message.push_str(" (its previous rules keep running)");
                    }
                    problems.push(p);
                }
            }
            if let Some(good) = self.last_good.get(&path) {
                rules.extend(good.iter().cloned().map(|r| (r, origin.clone())));
            }
        }
        Loaded { rules, problems }
    }

    /// Writes `rule` into the file that holds the rule named `replacing` (or, for a new rule,
    /// into [`EDITED_FILE`]). Returns the file written.
    pub fn put(
        &self,
        rule: &RuleConfig,
        replacing: Option<&Origin>,
        replacing_name: Option<&str>,
    ) -> Result<PathBuf, String> {
        let path = match replacing {
            Some(o) if o.is_province() => {
                return Err("this rule is the provincial IOC's; it is changed at the IOC".into())
            }
            Some(Origin::File(p)) => p.clone(),
            Some(Origin::Config) => {
                return Err("this rule is in the configuration file; change it there".into())
            }
            None => self.dir.join(EDITED_FILE),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                "# Rules added from the rules screen.\n".to_string()
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let mut doc: toml_edit::DocumentMut = text
            .parse()
            .map_err(|e| format!("{} does not parse: {e}", path.display()))?;
        let new: toml_edit::DocumentMut = rule_text(rule)
            .parse()
            .map_err(|e| format!("internal: {e}"))?;
        let table = new.as_table().clone();
        let aot = doc
            .entry("rule")
            .or_insert(toml_edit::Item::ArrayOfTables(Default::default()))
            .as_array_of_tables_mut()
            .ok_or_else(|| format!("{}: `rule` is not an array of tables", path.display()))?;
        let at = replacing_name.and_then(|name| {
            aot.iter()
                .position(|t| t.get("name").and_then(|n| n.as_str()) == Some(name))
        });
        match at {
            Some(i) => {
                let slot = aot.get_mut(i).expect("found");
                let decor = slot.decor().clone();
                *slot = table;
                *slot.decor_mut() = decor;
            }
            None => aot.push(table),
        }
        write_atomically(&path, &doc.to_string())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// Removes the rule `name` from its file.
    pub fn delete(&self, name: &str, origin: &Origin) -> Result<(), String> {
        if origin.is_province() {
            return Err("this rule is the provincial IOC's; it is removed at the IOC".into());
        }
        let Origin::File(path) = origin else {
            return Err("this rule is in the configuration file; remove it there".into());
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut doc: toml_edit::DocumentMut = text
            .parse()
            .map_err(|e| format!("{} does not parse: {e}", path.display()))?;
        let aot = doc
            .get_mut("rule")
            .and_then(|r| r.as_array_of_tables_mut())
            .ok_or_else(|| format!("no rule {name:?} in {}", path.display()))?;
        let i = aot
            .iter()
            .position(|t| t.get("name").and_then(|n| n.as_str()) == Some(name))
            .ok_or_else(|| format!("no rule {name:?} in {}", path.display()))?;
        // The comments above the first rule are the file's header: they stay.
        let header = (i == 0).then(|| aot.get(0).and_then(|t| t.decor().prefix().cloned()));
        aot.remove(i);
        if let (Some(Some(prefix)), Some(first)) = (header, aot.get_mut(0)) {
            first.decor_mut().set_prefix(prefix);
        }
        write_atomically(path, &doc.to_string()).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ioc_model::Severity;

    fn rule(name: &str, when: &str) -> RuleConfig {
        RuleConfig {
            name: name.into(),
            when: when.into(),
            severity: Severity::Major,
            message: "{entity.name}".into(),
            ..Default::default()
        }
    }

    #[test]
    fn seed_edit_delete_keep_comments() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = RuleFiles::new(dir.path().join("rules"));
        let mut seeded = rule("a", "metric == 'pm25' && value > 150.0");
        seeded.area = Some(crate::rules::AreaConfig {
            unit: Some("17392".into()),
            ..Default::default()
        });
        seeded.window = Some(std::time::Duration::from_secs(600));
        files
            .create(Some(&[seeded.clone(), rule("b", "value > 1.0")]))
            .unwrap();
        let seed = dir.path().join("rules").join(SEED_FILE);
        let text = std::fs::read_to_string(&seed).unwrap();
        std::fs::write(&seed, format!("# my note\n{text}")).unwrap();
        let loaded = files.load();
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert_eq!(loaded.rules.len(), 2);
        assert_eq!(loaded.rules[0].0, seeded, "round trip through the file");

        // Change b in place, add c to the edited file, delete a.
        let origin = loaded.rules[1].1.clone();
        files
            .put(&rule("b", "value > 2.0"), Some(&origin), Some("b"))
            .unwrap();
        files.put(&rule("c", "value > 3.0"), None, None).unwrap();
        files.delete("a", &loaded.rules[0].1).unwrap();
        let loaded = files.load();
        let names: Vec<(&str, &str)> = loaded
            .rules
            .iter()
            .map(|(r, _)| (r.name.as_str(), r.when.as_str()))
            .collect();
        assert_eq!(names, [("c", "value > 3.0"), ("b", "value > 2.0")]);
        assert!(std::fs::read_to_string(&seed)
            .unwrap()
            .starts_with("# my note"));

        // A broken file keeps its last good rules and says where it broke.
        std::fs::write(&seed, "[[rule]]\nname = \"b\"\nwhen = \n").unwrap();
        let loaded = files.load();
        assert_eq!(loaded.rules.len(), 2, "b keeps running");
        assert_eq!(loaded.problems.len(), 1);
        assert_eq!(loaded.problems[0].origin, SEED_FILE);
        assert_eq!(loaded.problems[0].line, 3, "{:?}", loaded.problems[0]);
    }

    #[test]
    fn a_rule_names_its_cameras_and_keeps_them_in_its_text() {
        let text = "name = \"x\"\nseverity = \"warning\"\nmessage = \"m\"\nwhen = \"metric == 'water_level'\"\ncameras = [\"cam-1\", \"cam-2\"]\n";
        let r = parse_rule(text).unwrap();
        assert_eq!(r.cameras, ["cam-1", "cam-2"]);
        assert_eq!(parse_rule(&rule_text(&r)).unwrap(), r, "round trip");
        assert!(!rule_text(&rule("y", "value > 1.0")).contains("cameras"));
    }

    #[test]
    fn rule_text_parses_and_points_into_cel() {
        let text =
            "name = \"x\"\nseverity = \"warning\"\nmessage = \"m\"\nwhen = \"metric == 'pm25'\"\n";
        let r = parse_rule(text).unwrap();
        assert_eq!(r.name, "x");
        assert_eq!(cel_origin(text, "when"), Some((4, 9)));
        let err = parse_rule("name = \"x\"\nwhen = 3\n").unwrap_err();
        assert_eq!(err.line, 2);
        let headed = format!("[[rule]]\n{text}");
        assert_eq!(parse_rule(&headed).unwrap(), r);
        assert_eq!(cel_origin(&headed, "when"), Some((5, 9)));
    }
}
