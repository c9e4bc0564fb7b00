//! Unit scope: what a person (or another system, or an OC's node account) may see.
//!
//! A commune's staff work their commune; the province's operators see everything. Every read
//! of something that belongs to a unit — a device on the map, an alert, an incident and its
//! files, a directive, a silence, a KPI's number, a report — goes through a [`View`], which
//! is made from the caller's [`Scope`] in one place (the server's `Caller`). A handler cannot
//! forget the check, because the unscoped reads are not what it is handed.
//!
//! Out of scope, one thing is refused ([`EngineError::Forbidden`]) and lists leave it out.
//! Things that belong to no unit are seen by the whole province's people only.

use crate::engine::{Engine, EngineError};
use crate::operate::report::AfterAction;
use chrono::{DateTime, NaiveDate, Utc};
use ioc_model::{
    Alert, AlertState, AttachmentInfo, Directive, DirectiveState, Entity, Incident, IncidentState,
    KpiItem, KpiSeries, KpiValue, Period, ReportJob, SeriesResponse, ServerMsg, Silence,
};
use std::sync::Arc;

/// The units someone may see: the whole province, or some units (commune codes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Province,
    Units(Arc<[String]>),
}

impl Scope {
    /// From an account's unit list: empty means the whole province.
    pub fn of(units: &[String]) -> Scope {
        if units.is_empty() {
            Scope::Province
        } else {
            Scope::Units(units.iter().cloned().collect())
        }
    }

    /// Whether something of `unit` (`None`: of no unit) is within the scope.
    pub fn allows(&self, unit: Option<&str>) -> bool {
        match self {
            Scope::Province => true,
            Scope::Units(us) => unit.is_some_and(|u| us.iter().any(|x| x == u)),
        }
    }

    /// The units, or `None` for the whole province.
    pub fn units(&self) -> Option<&[String]> {
        match self {
            Scope::Province => None,
            Scope::Units(us) => Some(us),
        }
    }

    pub fn is_province(&self) -> bool {
        matches!(self, Scope::Province)
    }

    /// The units a unit-filtered read covers: `unit` if given (refused when outside the
    /// scope), else the whole scope.
    fn narrow(&self, unit: Option<String>) -> Result<Option<Vec<String>>, EngineError> {
        match unit {
            Some(u) if !self.allows(Some(&u)) => Err(outside(&format!("unit {u:?}"))),
            Some(u) => Ok(Some(vec![u])),
            None => Ok(self.units().map(<[String]>::to_vec)),
        }
    }
}

fn outside(what: &str) -> EngineError {
    EngineError::Forbidden(format!("{what} is outside your units"))
}

impl Engine {
    /// The engine as someone of `scope` may read it.
    pub fn view(&self, scope: Scope) -> View<'_> {
        View {
            engine: self,
            scope,
        }
    }
}

/// Scoped reads of one engine. Changes go through the pipeline, whose books check the
/// actor's units themselves.
pub struct View<'a> {
    engine: &'a Engine,
    scope: Scope,
}

impl View<'_> {
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    fn check<T>(&self, what: &str, unit: Option<&str>, v: T) -> Result<T, EngineError> {
        if self.scope.allows(unit) {
            Ok(v)
        } else {
            Err(outside(what))
        }
    }

    // ----- devices

    /// The devices on the map.
    pub fn entities(&self) -> Vec<Entity> {
        let mut v = self.engine.hub().entities();
        v.retain(|e| self.scope.allows(e.unit.as_deref()));
        v
    }

    pub fn entity(&self, id: &str) -> Result<Entity, EngineError> {
        let e = self
            .engine
            .hub()
            .entity(id)
            .ok_or_else(|| EngineError::NotFound(format!("no entity {id:?}")))?;
        let unit = e.unit.clone();
        self.check(&format!("entity {id:?}"), unit.as_deref(), e)
    }

    /// A device's metric over `[from, to)`.
    pub async fn series(
        &self,
        entity: String,
        metric: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Option<SeriesResponse>, EngineError> {
        // A device the hub does not know (any more) is the province's to read.
        if let Some(e) = self.engine.hub().entity(&entity) {
            self.check(&format!("entity {entity:?}"), e.unit.as_deref(), ())?;
        } else if !self.scope.is_province() {
            return Ok(None);
        }
        self.engine.series(entity, metric, from, to).await
    }

    // ----- alerts

    /// Open alerts, live, in queue order.
    pub fn open_alerts(&self) -> Vec<Alert> {
        let mut v = self.engine.hub().open_alerts();
        v.retain(|a| self.scope.allows(a.unit.as_deref()));
        v
    }

    /// Alerts in these states (all when empty), newest first. The limit counts what the
    /// caller may see.
    pub async fn alerts(
        &self,
        states: Vec<AlertState>,
        limit: usize,
    ) -> Result<Vec<Alert>, EngineError> {
        if self.scope.is_province() {
            return self.engine.alerts(states, limit).await;
        }
        // A commune's alerts are a small share: read more and keep theirs.
        let mut v = self.engine.alerts(states, limit.saturating_mul(20)).await?;
        v.retain(|a| self.scope.allows(a.unit.as_deref()));
        v.truncate(limit);
        Ok(v)
    }

    pub async fn alert(&self, id: i64) -> Result<Alert, EngineError> {
        let a = self
            .engine
            .alert(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no alert {id}")))?;
        let unit = a.unit.clone();
        self.check(&format!("alert {id}"), unit.as_deref(), a)
    }

    /// The alert as CAP 1.2 XML.
    pub async fn alert_cap(&self, id: i64) -> Result<String, EngineError> {
        self.alert(id).await?;
        self.engine
            .alert_cap(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no alert {id}")))
    }

    // ----- incidents

    /// Incidents not closed, live.
    pub fn open_incidents(&self) -> Vec<Incident> {
        let mut v = self.engine.hub().incidents();
        v.retain(|i| self.scope.allows(i.unit.as_deref()));
        v
    }

    pub async fn incidents(
        &self,
        states: Vec<IncidentState>,
        limit: usize,
    ) -> Result<Vec<Incident>, EngineError> {
        let read = if self.scope.is_province() {
            limit
        } else {
            limit.saturating_mul(20)
        };
        let mut v = self.engine.incidents(states, read).await?;
        v.retain(|i| self.scope.allows(i.unit.as_deref()));
        v.truncate(limit);
        Ok(v)
    }

    pub async fn incident(&self, id: i64) -> Result<Incident, EngineError> {
        let i = self
            .engine
            .incident(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no incident {id}")))?;
        let unit = i.unit.clone();
        self.check(&format!("incident {id}"), unit.as_deref(), i)
    }

    pub async fn after_action(&self, id: i64) -> Result<AfterAction, EngineError> {
        self.incident(id).await?;
        self.engine
            .after_action(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no incident {id}")))
    }

    /// An incident's file, with its bytes: in scope when its incident is.
    pub async fn attachment(&self, id: i64) -> Result<(AttachmentInfo, Vec<u8>), EngineError> {
        let (info, data) = self
            .engine
            .attachment(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no attachment {id}")))?;
        self.incident(info.incident).await.map_err(|e| match e {
            EngineError::NotFound(_) => EngineError::NotFound(format!("no attachment {id}")),
            EngineError::Forbidden(_) => outside(&format!("attachment {id}")),
            e => e,
        })?;
        Ok((info, data))
    }

    // ----- evidence clips (in scope when their camera's unit is)

    pub fn clips(
        &self,
        f: crate::store::ClipFilter,
    ) -> Result<Vec<ioc_model::ClipInfo>, EngineError> {
        let mut v = self.engine.clips(f)?;
        v.retain(|c| self.scope.allows(c.unit.as_deref()));
        Ok(v)
    }

    pub fn clip(&self, id: i64) -> Result<ioc_model::ClipInfo, EngineError> {
        let c = self.engine.clip(id)?;
        let unit = c.unit.clone();
        self.check(&format!("clip {id}"), unit.as_deref(), c)
    }

    pub async fn clip_file(&self, id: i64) -> Result<(ioc_model::ClipInfo, Vec<u8>), EngineError> {
        self.clip(id)?;
        self.engine.clip_file(id).await
    }

    // ----- directives and silences

    pub fn open_directives(&self) -> Vec<Directive> {
        let mut v = self.engine.hub().directives();
        v.retain(|d| self.scope.allows(Some(&d.unit)));
        v
    }

    pub async fn directives(
        &self,
        states: Vec<DirectiveState>,
        limit: usize,
    ) -> Result<Vec<Directive>, EngineError> {
        let read = if self.scope.is_province() {
            limit
        } else {
            limit.saturating_mul(20)
        };
        let mut v = self.engine.directives(states, read).await?;
        v.retain(|d| self.scope.allows(Some(&d.unit)));
        v.truncate(limit);
        Ok(v)
    }

    pub async fn directive(&self, id: i64) -> Result<Directive, EngineError> {
        let d = self
            .engine
            .directive(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no directive {id}")))?;
        let unit = d.unit.clone();
        self.check(&format!("directive {id}"), Some(&unit), d)
    }

    /// Silences not over, live.
    pub fn current_silences(&self) -> Vec<Silence> {
        let mut v = self.engine.hub().silences();
        v.retain(|s| self.scope.allows(s.matcher.unit.as_deref()));
        v
    }

    /// Silences over or not, newest first.
    pub async fn silences(&self, limit: usize) -> Result<Vec<Silence>, EngineError> {
        let mut v = self.engine.silences(limit).await?;
        v.retain(|s| self.scope.allows(s.matcher.unit.as_deref()));
        Ok(v)
    }

    // ----- KPIs: a scoped caller's numbers are computed over their units only

    /// Every KPI: the live values for the province, else computed over the caller's units.
    pub async fn kpi_values(
        &self,
        period: Option<Period>,
        date: Option<NaiveDate>,
    ) -> Result<Vec<KpiValue>, EngineError> {
        if self.scope.is_province() && period.is_none() && date.is_none() {
            let live = self.engine.hub().kpis();
            if !live.is_empty() {
                return Ok(live);
            }
        }
        let units = self.scope.units().map(<[String]>::to_vec);
        self.engine.kpi_values(period, date, units).await
    }

    pub async fn kpi_value(
        &self,
        id: &str,
        period: Option<Period>,
        date: Option<NaiveDate>,
        unit: Option<String>,
    ) -> Result<KpiValue, EngineError> {
        let units = self.scope.narrow(unit)?;
        self.engine.kpi_value(id, period, date, units).await
    }

    pub async fn kpi_series(
        &self,
        id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        period: Option<Period>,
        unit: Option<String>,
    ) -> Result<KpiSeries, EngineError> {
        let units = self.scope.narrow(unit)?;
        self.engine.kpi_series(id, from, to, period, units).await
    }

    pub async fn kpi_detail(
        &self,
        id: &str,
        period: Option<Period>,
        date: Option<NaiveDate>,
        unit: Option<String>,
    ) -> Result<Vec<KpiItem>, EngineError> {
        let units = self.scope.narrow(unit)?;
        self.engine.kpi_detail(id, period, date, units).await
    }

    // ----- statistical reports: a report of a unit is that unit's; the province's, the
    // province's people's

    pub fn report_jobs(&self) -> Vec<ReportJob> {
        let mut v = self.engine.report_jobs();
        v.retain(|j| self.scope.allows(j.request.unit.as_deref()));
        v
    }

    pub fn report_job(&self, id: i64) -> Result<ReportJob, EngineError> {
        let j = self
            .engine
            .report_job(id)
            .ok_or_else(|| EngineError::NotFound(format!("no report {id}")))?;
        let unit = j.request.unit.clone();
        self.check(&format!("report {id}"), unit.as_deref(), j)
    }

    pub async fn report_file(&self, id: i64) -> Result<(String, Vec<u8>), EngineError> {
        self.report_job(id)?;
        self.engine
            .report_file(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("report {id} has no file (yet)")))
    }

    /// The reports folder: name, size, when written.
    pub async fn report_folder(&self) -> Vec<(String, u64, DateTime<Utc>)> {
        let mut v = self.engine.report_folder().await;
        v.retain(|(name, _, _)| {
            self.scope
                .allows(crate::report::unit_of_file(name).as_deref())
        });
        v
    }

    pub async fn report_folder_file(&self, name: &str) -> Result<Vec<u8>, EngineError> {
        let unit = crate::report::unit_of_file(name);
        let bytes = self
            .engine
            .report_folder_file(name)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no report file {name:?}")))?;
        self.check(&format!("report {name:?}"), unit.as_deref(), bytes)
    }

    // ----- the live feed

    /// A feed message with only what the scope allows: devices and their values, alerts,
    /// incidents, directives, silences, and KPIs (a scoped caller's KPI numbers come from
    /// `/api/kpis`, computed over their units, not the province's live ones).
    pub fn feed(&self, mut msg: ServerMsg) -> ServerMsg {
        if self.scope.is_province() {
            return msg;
        }
        let s = &self.scope;
        match &mut msg {
            ServerMsg::Snapshot {
                entities,
                alerts,
                incidents,
                directives,
                silences,
                kpis,
                ..
            } => {
                entities.retain(|e| s.allows(e.unit.as_deref()));
                alerts.retain(|a| s.allows(a.unit.as_deref()));
                incidents.retain(|i| s.allows(i.unit.as_deref()));
                directives.retain(|d| s.allows(Some(&d.unit)));
                silences.retain(|x| s.allows(x.matcher.unit.as_deref()));
                kpis.clear();
            }
            ServerMsg::Delta {
                entities,
                values,
                alerts,
                incidents,
                directives,
                silences,
                kpis,
                ..
            } => {
                entities.retain(|e| s.allows(e.unit.as_deref()));
                let hub = self.engine.hub();
                values.retain(|v| {
                    hub.entity_unit(&v.entity)
                        .is_some_and(|u| s.allows(u.as_deref()))
                });
                alerts.retain(|a| s.allows(a.unit.as_deref()));
                incidents.retain(|i| s.allows(i.unit.as_deref()));
                directives.retain(|d| s.allows(Some(&d.unit)));
                silences.retain(|x| s.allows(x.matcher.unit.as_deref()));
                kpis.clear();
            }
            ServerMsg::Values { values, .. } => {
                let hub = self.engine.hub();
                values.retain(|v| {
                    hub.entity_unit(&v.entity)
                        .is_some_and(|u| s.allows(u.as_deref()))
                });
            }
            ServerMsg::Heartbeat { .. } => {}
        }
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let p = Scope::of(&[]);
        assert!(p.allows(Some("16681")) && p.allows(None));
        let c = Scope::of(&["16681".into()]);
        assert!(c.allows(Some("16681")));
        assert!(!c.allows(Some("16684")));
        assert!(!c.allows(None), "what belongs to no unit is the province's");
        assert_eq!(c.narrow(None).unwrap(), Some(vec!["16681".to_string()]));
        assert!(c.narrow(Some("16684".into())).is_err());
        assert_eq!(p.narrow(None).unwrap(), None);
    }
}
