//! SOP templates: the standard operating procedure an incident is worked through, as TOML.
//!
//! ```toml
//! name = "flood-warning"
//! title = "Ứng phó cảnh báo lũ, ngập lụt"
//! categories = ["flood"]          # the default SOP for incidents of these alert categories
//!
//! [[step]]
//! id = "verify"                   # letters, digits, _ (used as `answers.verify`)
//! title = "Xác minh mực nước"
//! role = "operator"               # operator | supervisor | leader | admin | oc_staff
//! sla = "15m"                     # how long it may take once it can start
//! checklist = ["Đối chiếu trạm lân cận", "Xem camera khu vực"]
//! require = ["comment"]           # and/or "attachment" (a photo, a signed record)
//!
//! [[step]]
//! id = "assess"
//! answers = ["Sơ tán", "Theo dõi"] # a question; later steps branch on the answer
//!
//! [[step]]
//! id = "evacuate"
//! after = ["assess"]              # default: the step before; [] starts at once
//! if = "answers.assess == 'Sơ tán'"   # CEL over `answers` and `incident`; false: skipped
//! ```
//!
//! Steps with the same predecessors run in parallel. A step may only come after steps
//! written before it, so a procedure can never wait on itself.

use crate::rules::files::line_col;
use chrono::{DateTime, Utc};
use ioc_model::{
    ChecklistItem, IncidentEvent, IncidentEventKind, Role, RuleProblem, SopInfo, SopStepInfo, Step,
    StepStatus,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// One `[[step]]` table.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    pub id: String,
    pub title: String,
    #[serde(default = "operator")]
    pub role: Role,
    /// Default: the step written before (none for the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<String>>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub sla: Option<Duration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checklist: Vec<String>,
    /// `comment`, `attachment`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<String>,
    #[serde(rename = "if", default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

fn operator() -> Role {
    Role::Operator
}

/// A template file.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SopConfig {
    pub name: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_en: Option<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(rename = "step")]
    pub steps: Vec<StepConfig>,
    /// Cameras (entity ids) shown with alerts of its categories and with its incidents,
    /// before the alerting device's nearest: the town's flood cameras for the flood SOP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cameras: Vec<String>,
}

/// A checked template, one version of it.
#[derive(Debug, Clone, PartialEq)]
pub struct SopTemplate {
    pub config: SopConfig,
    pub version: u32,
    /// As written (comments kept).
    pub text: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// The latest version of every template, by name.
pub type SopSet = HashMap<String, Arc<SopTemplate>>;

/// The template for incidents of `category`: the first (by name) that lists it.
pub fn for_category<'a>(set: &'a SopSet, category: &str) -> Option<&'a Arc<SopTemplate>> {
    let mut names: Vec<&String> = set.keys().collect();
    names.sort();
    names
        .into_iter()
        .map(|n| &set[n])
        .find(|t| t.config.categories.iter().any(|c| c == category))
}

fn valid_id(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 64
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'))
}

/// A problem at a byte offset of `text`.
fn problem_at(text: &str, offset: usize, message: String) -> RuleProblem {
    let (line, column) = line_col(text, offset);
    RuleProblem {
        rule: None,
        origin: "text".into(),
        line,
        column,
        message,
    }
}

/// Where a key of the `n`-th step (or of the top, for `None`) starts in `text`.
fn key_offset(doc: &toml_edit::Document<String>, step: Option<usize>, key: &str) -> Option<usize> {
    let table = match step {
        Some(i) => doc.get("step")?.as_array_of_tables()?.get(i)?,
        None => doc.as_table(),
    };
    table
        .get(key)
        .and_then(|i| i.span())
        .map(|s| s.start)
        .or_else(|| table.span().map(|s| s.start))
}

/// Parses and checks a template's text. Problems carry the line and column in `text`.
pub fn parse(text: &str) -> Result<SopConfig, Vec<RuleProblem>> {
    let config: SopConfig = toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        vec![problem_at(text, offset, e.message().trim().to_string())]
    })?;
    let doc = toml_edit::Document::parse(text.to_string()).ok();
    let at = |step: Option<usize>, key: &str| {
        doc.as_ref()
            .and_then(|d| key_offset(d, step, key))
            .unwrap_or(0)
    };
    let mut problems = Vec::new();
    let mut fail = |step: Option<usize>, key: &str, message: String| {
        problems.push(problem_at(text, at(step, key), message));
    };
    if !valid_name(&config.name) {
        fail(
            None,
            "name",
            format!(
                "name {:?}: lower-case letters, digits, '-' and '_', at most 64",
                config.name
            ),
        );
    }
    if config.title.trim().is_empty() {
        fail(None, "title", "a template needs a title".into());
    }
    if config.steps.is_empty() {
        fail(
            None,
            "name",
            "a template needs at least one [[step]]".into(),
        );
    }
    // Steps that ask a question, by id, with the position they were written at.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, s) in config.steps.iter().enumerate() {
        let n = i + 1;
        if !valid_id(&s.id) {
            fail(
                Some(i),
                "id",
                format!(
                    "step {n}: id {:?}: lower-case letters, digits and '_', not starting with a digit",
                    s.id
                ),
            );
        }
        if seen.contains_key(s.id.as_str()) {
            fail(
                Some(i),
                "id",
                format!("step {n}: another step is {:?}", s.id),
            );
        }
        if s.title.trim().is_empty() {
            fail(Some(i), "title", format!("step {:?} needs a title", s.id));
        }
        for a in s.after.iter().flatten() {
            if !seen.contains_key(a.as_str()) {
                fail(
                    Some(i),
                    "after",
                    format!(
                        "step {:?} comes after {a:?}, which is not a step written before it",
                        s.id
                    ),
                );
            }
        }
        for r in &s.require {
            if !matches!(r.as_str(), "comment" | "attachment") {
                fail(
                    Some(i),
                    "require",
                    format!(
                        "step {:?}: require {r:?}: \"comment\" or \"attachment\"",
                        s.id
                    ),
                );
            }
        }
        let mut answers = s.answers.clone();
        answers.sort();
        answers.dedup();
        if answers.len() != s.answers.len() || s.answers.iter().any(|a| a.trim().is_empty()) {
            fail(
                Some(i),
                "answers",
                format!("step {:?}: answers must be different and not empty", s.id),
            );
        }
        if s.answers.len() == 1 {
            fail(
                Some(i),
                "answers",
                format!("step {:?}: a question needs at least two answers", s.id),
            );
        }
        if let Some(cond) = &s.condition {
            if let Err(m) = check_condition(cond, &config.steps[..i]) {
                fail(Some(i), "if", format!("step {:?}: if: {m}", s.id));
            }
        }
        seen.insert(s.id.as_str(), i);
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

/// Compiles a step's condition and checks what it refers to: `answers.X` of a question
/// written before it, `incident.…`.
fn check_condition(cond: &str, before: &[StepConfig]) -> Result<(), String> {
    let program = cel::Program::compile(cond).map_err(|errs| {
        errs.errors
            .first()
            .map(|e| format!("{} (column {})", e.msg, e.pos.1.max(0) + 1))
            .unwrap_or_else(|| errs.to_string())
    })?;
    for var in program.references().variables() {
        if !matches!(var, "answers" | "incident") {
            return Err(format!(
                "unknown variable {var:?} (known: answers, incident)"
            ));
        }
    }
    // `answers.ID` must name a question asked before this step.
    let mut rest = cond;
    while let Some(i) = rest.find("answers.") {
        let tail = &rest[i + "answers.".len()..];
        let id: String = tail
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        match before.iter().find(|s| s.id == id) {
            None => return Err(format!("answers.{id}: no step {id:?} before this one")),
            Some(s) if s.answers.is_empty() => {
                return Err(format!("answers.{id}: step {id:?} asks no question"))
            }
            Some(_) => {}
        }
        rest = tail;
    }
    Ok(())
}

impl SopTemplate {
    /// For the SOP screen.
    pub fn info(&self, versions: Vec<u32>) -> SopInfo {
        SopInfo {
            name: self.config.name.clone(),
            version: self.version,
            title: self.config.title.clone(),
            title_en: self.config.title_en.clone(),
            categories: self.config.categories.clone(),
            cameras: self.config.cameras.clone(),
            steps: self
                .config
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| SopStepInfo {
                    id: s.id.clone(),
                    title: s.title.clone(),
                    role: s.role,
                    after: after_of(&self.config.steps, i),
                    sla_seconds: s.sla.map(|d| d.as_secs()),
                    condition: s.condition.clone(),
                    answers: s.answers.clone(),
                    checklist: s.checklist.len(),
                })
                .collect(),
            text: self.text.clone(),
            updated_at: self.updated_at,
            updated_by: self.updated_by.clone(),
            province: self.updated_by == crate::sync::PROVINCE,
            versions,
        }
    }

    /// The steps of a new incident worked through this template, all waiting.
    pub fn instantiate(&self) -> Vec<Step> {
        self.config
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| Step {
                id: s.id.clone(),
                title: s.title.clone(),
                role: s.role,
                after: after_of(&self.config.steps, i),
                sla_seconds: s.sla.map(|d| d.as_secs()),
                checklist: s
                    .checklist
                    .iter()
                    .map(|t| ChecklistItem {
                        text: t.clone(),
                        done: false,
                        by: None,
                        at: None,
                    })
                    .collect(),
                require_comment: s.require.iter().any(|r| r == "comment"),
                require_attachment: s.require.iter().any(|r| r == "attachment"),
                answers: s.answers.clone(),
                condition: s.condition.clone(),
                status: StepStatus::Waiting,
                ready_at: None,
                due_at: None,
                done_at: None,
                done_by: None,
                answer: None,
                comment: None,
                attachments: Vec::new(),
                overdue: false,
            })
            .collect()
    }
}

/// The predecessors of step `i`: as written, else the step before.
fn after_of(steps: &[StepConfig], i: usize) -> Vec<String> {
    match &steps[i].after {
        Some(a) => a.clone(),
        None if i > 0 => vec![steps[i - 1].id.clone()],
        None => Vec::new(),
    }
}

/// What a step's condition sees of its incident.
pub struct ConditionCtx<'a> {
    pub severity: &'a str,
    pub category: &'a str,
    pub unit: Option<&'a str>,
    pub domain: &'a str,
}

/// Evaluates a step's condition. An error (an answer that is missing because its question
/// was skipped, a type mismatch) counts as false: the branch is not taken.
fn condition_holds(cond: &str, steps: &[Step], ctx: &ConditionCtx<'_>) -> Result<bool, String> {
    let program = cel::Program::compile(cond).map_err(|e| e.to_string())?;
    let answers: HashMap<String, cel::Value> = steps
        .iter()
        .filter_map(|s| {
            s.answer
                .as_ref()
                .map(|a| (s.id.clone(), cel::Value::String(Arc::new(a.clone()))))
        })
        .collect();
    let s = |v: &str| cel::Value::String(Arc::new(v.to_string()));
    let incident: HashMap<String, cel::Value> = [
        ("severity".to_string(), s(ctx.severity)),
        ("category".to_string(), s(ctx.category)),
        (
            "unit".to_string(),
            ctx.unit.map(s).unwrap_or(cel::Value::Null),
        ),
        ("domain".to_string(), s(ctx.domain)),
    ]
    .into_iter()
    .collect();
    let mut c = cel::Context::default();
    c.add_variable_from_value("answers", answers);
    c.add_variable_from_value("incident", incident);
    match program.execute(&c) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("gave {other:?}, not true or false")),
        Err(e) => Err(e.to_string()),
    }
}

/// Moves waiting steps on: a step whose predecessors are all finished becomes ready (its
/// SLA starts) or, when its condition is false, skipped — which may in turn free the steps
/// after it. Returns the events to append.
pub fn advance(
    steps: &mut [Step],
    ctx: &ConditionCtx<'_>,
    now: DateTime<Utc>,
    actor: &str,
) -> Vec<IncidentEvent> {
    let mut events = Vec::new();
    loop {
        let finished: HashMap<String, bool> = steps
            .iter()
            .map(|s| (s.id.clone(), s.status.finished()))
            .collect();
        let next = steps.iter().position(|s| {
            s.status == StepStatus::Waiting
                && s.after
                    .iter()
                    .all(|a| finished.get(a).copied().unwrap_or(true))
        });
        let Some(i) = next else { break };
        let verdict = match steps[i].condition.clone() {
            None => Ok(true),
            Some(c) => condition_holds(&c, steps, ctx),
        };
        let step = &mut steps[i];
        let mut ev = IncidentEvent {
            at: now,
            actor: actor.to_string(),
            kind: IncidentEventKind::StepReady,
            step: Some(step.id.clone()),
            alert: None,
            directive: None,
            comment: None,
            node: None,
        };
        match verdict {
            Ok(true) => {
                step.status = StepStatus::Ready;
                step.ready_at = Some(now);
                // An SLA too long to date (another node's template) has no due time.
                step.due_at = step.sla_seconds.and_then(|s| {
                    chrono::Duration::try_seconds(i64::try_from(s).ok()?)
                        .and_then(|d| now.checked_add_signed(d))
                });
            }
            Ok(false) => {
                step.status = StepStatus::Skipped;
                step.done_at = Some(now);
                ev.kind = IncidentEventKind::StepSkipped;
                ev.comment = step.condition.as_ref().map(|c| format!("if {c}: false"));
            }
            Err(e) => {
                step.status = StepStatus::Skipped;
                step.done_at = Some(now);
                ev.kind = IncidentEventKind::StepSkipped;
                ev.comment = Some(format!("if: {e}"));
            }
        }
        events.push(ev);
    }
    events
}

/// The demo templates: flood warning, air-pollution episode, traffic accident, camera
/// failure — written to the store on first start, then edited like any other.
pub fn seed() -> Vec<(&'static str, &'static str)> {
    vec![
        ("flood-warning", include_str!("sops/flood-warning.toml")),
        ("air-pollution", include_str!("sops/air-pollution.toml")),
        (
            "traffic-accident",
            include_str!("sops/traffic-accident.toml"),
        ),
        ("camera-failure", include_str!("sops/camera-failure.toml")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(text: &str) -> SopTemplate {
        SopTemplate {
            config: parse(text).unwrap(),
            version: 1,
            text: text.into(),
            updated_at: Utc::now(),
            updated_by: "test".into(),
        }
    }

    const BRANCHING: &str = r#"
name = "t"
title = "Thử"

[[step]]
id = "verify"
title = "Xác minh"
checklist = ["a", "b"]
sla = "10m"

[[step]]
id = "assess"
title = "Đánh giá"
role = "supervisor"
answers = ["Sơ tán", "Theo dõi"]

[[step]]
id = "evacuate"
title = "Sơ tán"
if = "answers.assess == 'Sơ tán'"

[[step]]
id = "watch"
title = "Theo dõi"
after = ["assess"]
if = "answers.assess == 'Theo dõi'"

[[step]]
id = "report"
title = "Báo cáo"
after = ["evacuate", "watch"]
require = ["comment"]
"#;

    fn ctx() -> ConditionCtx<'static> {
        ConditionCtx {
            severity: "major",
            category: "flood",
            unit: Some("16681"),
            domain: "water",
        }
    }

    fn finish(steps: &mut [Step], id: &str, answer: Option<&str>) {
        let s = steps.iter_mut().find(|s| s.id == id).unwrap();
        assert_eq!(s.status, StepStatus::Ready, "{id} should be ready");
        s.status = StepStatus::Done;
        s.answer = answer.map(str::to_string);
    }

    fn status(steps: &[Step], id: &str) -> StepStatus {
        steps.iter().find(|s| s.id == id).unwrap().status
    }

    #[test]
    fn ordered_steps_then_a_branch() {
        let t = template(BRANCHING);
        let mut steps = t.instantiate();
        assert_eq!(
            steps[1].after,
            vec!["verify"],
            "default: after the step before"
        );
        assert!(steps[0].after.is_empty());
        let now = Utc::now();
        let ev = advance(&mut steps, &ctx(), now, "system");
        assert_eq!(ev.len(), 1);
        assert_eq!(status(&steps, "verify"), StepStatus::Ready);
        assert_eq!(
            steps[0].due_at,
            Some(now + chrono::Duration::minutes(10)),
            "the SLA runs from when it can start"
        );
        assert_eq!(status(&steps, "assess"), StepStatus::Waiting);
        finish(&mut steps, "verify", None);
        advance(&mut steps, &ctx(), now, "system");
        finish(&mut steps, "assess", Some("Theo dõi"));
        let ev = advance(&mut steps, &ctx(), now, "system");
        assert_eq!(status(&steps, "evacuate"), StepStatus::Skipped);
        assert_eq!(status(&steps, "watch"), StepStatus::Ready);
        assert_eq!(status(&steps, "report"), StepStatus::Waiting);
        assert!(ev
            .iter()
            .any(|e| e.kind == IncidentEventKind::StepSkipped
                && e.step.as_deref() == Some("evacuate")));
        finish(&mut steps, "watch", None);
        advance(&mut steps, &ctx(), now, "system");
        assert_eq!(
            status(&steps, "report"),
            StepStatus::Ready,
            "a skipped predecessor counts as finished"
        );
        assert!(steps[4].require_comment);
    }

    #[test]
    fn a_template_names_its_cameras() {
        let t = template(
            r#"
name = "flood"
title = "Ngập"
categories = ["flood"]
cameras = ["cam-ben-thuy", "cam-cua-hoi"]
[[step]]
id = "look"
title = "Xem camera"
"#,
        );
        assert_eq!(t.info(vec![1]).cameras, ["cam-ben-thuy", "cam-cua-hoi"]);
        assert!(template(
            &t.text
                .replace("cameras = [\"cam-ben-thuy\", \"cam-cua-hoi\"]\n", "")
        )
        .info(vec![1])
        .cameras
        .is_empty());
    }

    #[test]
    fn parallel_steps_start_together() {
        let t = template(
            r#"
name = "p"
title = "Song song"
[[step]]
id = "a"
title = "A"
[[step]]
id = "b"
title = "B"
after = ["a"]
[[step]]
id = "c"
title = "C"
after = ["a"]
[[step]]
id = "d"
title = "D"
after = []
"#,
        );
        let mut steps = t.instantiate();
        advance(&mut steps, &ctx(), Utc::now(), "system");
        assert_eq!(status(&steps, "a"), StepStatus::Ready);
        assert_eq!(
            status(&steps, "d"),
            StepStatus::Ready,
            "after = [] starts at once"
        );
        finish(&mut steps, "a", None);
        advance(&mut steps, &ctx(), Utc::now(), "system");
        assert_eq!(status(&steps, "b"), StepStatus::Ready);
        assert_eq!(status(&steps, "c"), StepStatus::Ready);
    }

    #[test]
    fn conditions_see_the_incident() {
        let t = template(
            r#"
name = "c"
title = "C"
[[step]]
id = "critical_only"
title = "Chỉ khi nghiêm trọng"
if = "incident.severity == 'critical'"
[[step]]
id = "in_vinh"
title = "Chỉ ở Vinh"
after = []
if = "incident.unit == '16681'"
"#,
        );
        let mut steps = t.instantiate();
        advance(&mut steps, &ctx(), Utc::now(), "system");
        assert_eq!(status(&steps, "critical_only"), StepStatus::Skipped);
        assert_eq!(status(&steps, "in_vinh"), StepStatus::Ready);
    }

    #[test]
    fn mistakes_are_refused_with_their_place() {
        let bad = |text: &str| parse(text).unwrap_err();
        let p = bad(
            "name = \"x\"\ntitle = \"X\"\n[[step]]\nid = \"a\"\ntitle = \"A\"\nafter = [\"b\"]\n",
        );
        assert_eq!((p[0].line, p[0].column), (6, 9), "at the value: {p:?}");
        assert!(p[0].message.contains("not a step written before"));
        let p = bad(
            "name = \"x\"\ntitle = \"X\"\n[[step]]\nid = \"a\"\ntitle = \"A\"\nrole = \"chief\"\n",
        );
        assert_eq!(p[0].line, 6, "{p:?}");
        let p = bad("name = \"x\"\ntitle = \"X\"\n[[step]]\nid = \"a\"\ntitle = \"A\"\nif = \"answers.q == 'y'\"\n");
        assert!(p[0].message.contains("no step \"q\""), "{p:?}");
        let p = bad("name = \"x\"\ntitle = \"X\"\n[[step]]\nid = \"a\"\ntitle = \"A\"\nif = \"value > 1.0\"\n");
        assert!(p[0].message.contains("unknown variable"), "{p:?}");
        let p = bad("name = \"x\"\ntitle = \"X\"\n[[step]]\nid = \"a\"\ntitle = \"A\"\nif = \"answers.(\"\n");
        assert_eq!(p[0].line, 6, "{p:?}");
        let p = bad("name = \"X Y\"\ntitle = \"X\"\n[[step]]\nid = \"a-b\"\ntitle = \"A\"\nrequire = [\"photo\"]\n");
        assert_eq!(p.len(), 3, "{p:?}");
        let p = bad("name = \"x\"\ntitle = \"X\"\nsteps = 1\n");
        assert_eq!(p.len(), 1, "{p:?}");
    }

    #[test]
    fn the_demo_templates_are_valid() {
        for (name, text) in seed() {
            let c = parse(text).unwrap_or_else(|p| panic!("{name}: {p:?}"));
            assert_eq!(c.name, name);
            assert!(!c.categories.is_empty(), "{name}");
        }
        let set: SopSet = seed()
            .into_iter()
            .map(|(n, text)| (n.to_string(), Arc::new(template(text))))
            .collect();
        assert_eq!(
            for_category(&set, "flood").map(|t| t.config.name.as_str()),
            Some("flood-warning")
        );
        assert!(for_category(&set, "nothing").is_none());
    }
}
