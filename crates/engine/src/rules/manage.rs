//! The rules the engine runs and where each comes from: the configuration file's `[[rule]]`
//! tables (read-only here) and the rules folder's files (hot-reloaded, editable from the rules
//! screen). Everything that changes a rule goes through here, which compiles the whole set
//! again and hands it to the pipeline; a rule that does not compile is reported with its
//! position and left out, and the others keep running.

use super::files::{self, Loaded, Origin, RuleFiles, Signature};
use super::RuleConfig;
use super::{RuleError, RuleSet};
use ioc_model::{RuleCheck, RuleInfo, RuleProblem, RulesResponse};

pub struct RuleManager {
    files: RuleFiles,
    config_rules: Vec<RuleConfig>,
    tz: chrono_tz::Tz,
    /// Every rule, disabled ones included, with its origin.
    current: Vec<(RuleConfig, Origin)>,
    file_problems: Vec<RuleProblem>,
    errors: Vec<RuleError>,
    signature: Signature,
}

/// What an edit changed, for the audit log.
pub struct Edit {
    pub rules: RuleSet,
    /// The rule changed.
    pub name: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A rule problem in the coordinates of `text` (the rule as the editor shows it): a CEL
/// error at its place inside the `when` (or `clear_when`) string.
fn located(e: &RuleError, text: &str) -> RuleProblem {
    let (line, column) = match e.key.and_then(|k| files::cel_origin(text, k)) {
        Some((l, c)) if e.line <= 1 => (l, c + e.column.saturating_sub(1)),
        Some((l, _)) => (l + e.line - 1, e.column),
        None => (1, 1),
    };
    RuleProblem {
        rule: Some(e.rule.clone()),
        origin: "text".into(),
        line,
        column,
        message: e.message.clone(),
    }
}

impl RuleManager {
    /// Opens the rules folder (creating it, with the demo rules when the configuration names
    /// no rules of its own) and compiles everything.
    pub fn open(
        dir: std::path::PathBuf,
        config_rules: Option<&[RuleConfig]>,
        tz: chrono_tz::Tz,
    ) -> (RuleManager, RuleSet) {
        let files = RuleFiles::new(dir);
        let seed = super::default_rules();
        if let Err(e) = files.create(config_rules.is_none().then_some(&seed[..])) {
            tracing::error!("rules folder {}: {e}", files.dir().display());
        }
        let mut m = RuleManager {
            files,
            config_rules: config_rules.map(<[_]>::to_vec).unwrap_or_default(),
            tz,
            current: Vec::new(),
            file_problems: Vec::new(),
            errors: Vec::new(),
            signature: Vec::new(),
        };
        let set = m.reload();
        (m, set)
    }

    /// Whether a rules file changed since the last reload.
    pub fn changed(&self) -> bool {
        self.files.signature() != self.signature
    }

    /// Reads the files again and compiles everything.
    pub fn reload(&mut self) -> RuleSet {
        self.signature = self.files.signature();
        let Loaded { rules, problems } = self.files.load();
        for p in &problems {
            tracing::error!(
                "rules file {} line {} column {}: {}",
                p.origin,
                p.line,
                p.column,
                p.message
            );
        }
        self.file_problems = problems;
        self.current = self
            .config_rules
            .iter()
            .cloned()
            .map(|r| (r, Origin::Config))
            .chain(rules)
            .collect();
        self.compile()
    }

    fn compile(&mut self) -> RuleSet {
        let enabled: Vec<RuleConfig> = self
            .current
            .iter()
            .filter(|(r, _)| r.enabled)
            .map(|(r, _)| r.clone())
            .collect();
        let (mut set, errors) = RuleSet::compile(&enabled);
        set.tz = self.tz;
        for e in &errors {
            tracing::error!("{e}; the other rules run");
        }
        self.errors = errors;
        set
    }

    /// Every rule in force (enabled or not), as configured.
    pub fn configs(&self) -> Vec<RuleConfig> {
        self.current.iter().map(|(r, _)| r.clone()).collect()
    }

    pub fn errors(&self) -> &[RuleError] {
        &self.errors
    }

    /// The rules screen's list.
    pub fn list(&self) -> RulesResponse {
        let mut problems = self.file_problems.clone();
        let error_of = |name: &str| self.errors.iter().find(|e| e.rule == name);
        let rules = self
            .current
            .iter()
            .map(|(r, origin)| {
                let error = error_of(&r.name);
                if let Some(e) = error {
                    problems.push(RuleProblem {
                        rule: Some(r.name.clone()),
                        origin: origin.label(),
                        line: e.line,
                        column: e.column,
                        message: e.message.clone(),
                    });
                }
                RuleInfo {
                    name: r.name.clone(),
                    when: r.when.clone(),
                    for_: humantime::format_duration(r.for_).to_string(),
                    severity: r.severity,
                    category: r.category.clone(),
                    message: r.message.clone(),
                    enabled: r.enabled,
                    origin: origin.label(),
                    editable: matches!(origin, Origin::File(_)) && !origin.is_province(),
                    text: files::rule_text(r),
                    error: error.map(|e| e.to_string()),
                    cameras: r.cameras.clone(),
                }
            })
            .collect();
        let errors = problems
            .iter()
            .map(|p| match &p.rule {
                Some(rule) if p.message.starts_with("rule ") => rule.clone(),
                Some(rule) => format!(
                    "rule {rule:?} ({}): line {}, column {}: {}",
                    p.origin, p.line, p.column, p.message
                ),
                None => format!(
                    "{} line {}, column {}: {}",
                    p.origin, p.line, p.column, p.message
                ),
            })
            .collect();
        RulesResponse {
            rules,
            errors,
            problems,
            folder: Some(self.files.dir().display().to_string()),
        }
    }

    fn find(&self, name: &str) -> Option<&(RuleConfig, Origin)> {
        self.current.iter().find(|(r, _)| r.name == name)
    }

    /// Checks one rule's text as it would be saved in place of `replacing` (`None`: a new
    /// rule): TOML, the rule's keys, its CEL, and that its name is free.
    pub fn check(&self, text: &str, replacing: Option<&str>) -> Result<RuleConfig, RuleCheck> {
        let fail = |name: Option<String>, problems| RuleCheck {
            ok: false,
            name,
            problems,
        };
        let rule = files::parse_rule(text).map_err(|p| fail(None, vec![p]))?;
        let name = Some(rule.name.clone());
        if rule.name.trim().is_empty() {
            return Err(fail(
                name,
                vec![problem_at(text, "name", "a rule needs a name")],
            ));
        }
        if replacing != Some(rule.name.as_str()) && self.find(&rule.name).is_some() {
            return Err(fail(
                name,
                vec![problem_at(text, "name", "another rule has this name")],
            ));
        }
        let mut probe = rule.clone();
        probe.enabled = true;
        let (_, errors) = RuleSet::compile(std::slice::from_ref(&probe));
        if !errors.is_empty() {
            return Err(fail(
                name,
                errors.iter().map(|e| located(e, text)).collect(),
            ));
        }
        Ok(rule)
    }

    /// Saves a rule from the rules screen: in place of `replacing`, or as a new rule.
    pub fn put(&mut self, text: &str, replacing: Option<&str>) -> Result<Edit, RuleCheck> {
        let rule = self.check(text, replacing)?;
        let old = replacing.and_then(|n| self.find(n)).cloned();
        if let Some(name) = replacing {
            if old.is_none() {
                return Err(RuleCheck {
                    ok: false,
                    name: Some(name.into()),
                    problems: vec![problem_at(text, "name", &format!("no rule {name:?}"))],
                });
            }
        }
        self.files
            .put(&rule, old.as_ref().map(|(_, o)| o), replacing)
            .map_err(|message| RuleCheck {
                ok: false,
                name: Some(rule.name.clone()),
                problems: vec![RuleProblem {
                    rule: Some(rule.name.clone()),
                    origin: "text".into(),
                    line: 1,
                    column: 1,
                    message,
                }],
            })?;
        Ok(Edit {
            rules: self.reload(),
            name: rule.name.clone(),
            before: old.map(|(r, _)| files::rule_text(&r)),
            after: Some(files::rule_text(&rule)),
        })
    }

    /// Removes a rule of a rules file.
    pub fn delete(&mut self, name: &str) -> Result<Edit, String> {
        let (rule, origin) = self
            .find(name)
            .cloned()
            .ok_or_else(|| format!("no rule {name:?}"))?;
        self.files.delete(name, &origin)?;
        Ok(Edit {
            rules: self.reload(),
            name: rule.name.clone(),
            before: Some(files::rule_text(&rule)),
            after: None,
        })
    }

    /// One rule compiled on its own, for a backtest. Its name may be taken (by itself, when
    /// an existing rule is backtested as it is).
    pub fn compile_one(&self, text: &str) -> Result<RuleSet, RuleCheck> {
        let name = files::parse_rule(text).map(|r| r.name).ok();
        let mut rule = self.check(text, name.as_deref())?;
        rule.enabled = true;
        let (mut set, _) = RuleSet::compile(&[rule]);
        set.tz = self.tz;
        Ok(set)
    }
}

/// A problem pointing at `key`'s value in `text` (or the start).
fn problem_at(text: &str, key: &str, message: &str) -> RuleProblem {
    let (line, column) = files::cel_origin(text, key).unwrap_or((1, 1));
    RuleProblem {
        rule: None,
        origin: "text".into(),
        line,
        column,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_points_into_the_text() {
        let dir = tempfile::tempdir().unwrap();
        let (m, set) = RuleManager::open(dir.path().join("rules"), None, chrono_tz::UTC);
        assert!(!set.is_empty(), "the demo rules are seeded");
        let text = "name = \"x\"\nseverity = \"major\"\nmessage = \"m\"\nwhen = \"metric == 'pm25' && valu > 3.0\"\n";
        let c = m.check(text, None).unwrap_err();
        assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
        assert_eq!(c.problems[0].line, 4, "{:?}", c.problems[0]);
        assert!(
            c.problems[0].message.contains("valu"),
            "{:?}",
            c.problems[0]
        );
        let text = "name = \"x\"\nseverity = \"major\"\nmessage = \"m\"\nwhen = \"\"\"\nmetric == 'pm25' &&\n  value >\"\"\"\n";
        let c = m.check(text, None).unwrap_err();
        assert_eq!(c.problems[0].line, 6, "{:?}", c.problems[0]);
        let taken = m.list().rules[0].name.clone();
        let text = format!(
            "name = \"{taken}\"\nseverity = \"major\"\nmessage = \"m\"\nwhen = \"value > 1.0\"\n"
        );
        let c = m.check(&text, None).unwrap_err();
        assert_eq!(c.problems[0].message, "another rule has this name");
        assert!(m.check(&text, Some(&taken)).is_ok());
    }
}
