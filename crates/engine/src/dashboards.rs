//! Dashboards: the built-in leader and city dashboards, and those people compose (kept in
//! the store, visible to their owner and to the roles they are shared with); the video
//! wall's profile. Checked here so a broken dashboard is refused with its reason, never
//! stored.

use chrono::{DateTime, Utc};
use ioc_model::{Dashboard, Panel, PanelKind, Role, Severity, WallItem, WallProfile, WallScreen};

fn panel(id: &str, kind: PanelKind, (x, y, w, h): (u8, u8, u8, u8)) -> Panel {
    Panel {
        id: id.into(),
        kind,
        x,
        y,
        w,
        h,
        title: None,
        kpi: None,
        kpis: Vec::new(),
        entity: None,
        metric: None,
        days: None,
        text: None,
        min_severity: None,
        limit: None,
    }
}

fn kpi(id: &str, kind: PanelKind, at: (u8, u8, u8, u8), k: &str) -> Panel {
    Panel {
        kpi: Some(k.into()),
        ..panel(id, kind, at)
    }
}

/// The dashboards shipped with the console.
pub fn builtin(at: DateTime<Utc>) -> Vec<Dashboard> {
    let leader = Dashboard {
        id: "leader".into(),
        name: "Lãnh đạo — tổng quan chỉ số".into(),
        owner: crate::alerts::SYSTEM.into(),
        shared_roles: Role::ALL.to_vec(),
        builtin: true,
        panels: vec![
            kpi("t1", PanelKind::Kpi, (0, 0, 3, 2), "aq-good-share"),
            kpi("t2", PanelKind::Kpi, (3, 0, 3, 2), "river-below-alarm"),
            kpi("t3", PanelKind::Kpi, (6, 0, 3, 2), "camera-availability"),
            kpi("t4", PanelKind::Kpi, (9, 0, 3, 2), "directives-on-time"),
            Panel {
                title: Some("Chất lượng không khí theo xã, phường".into()),
                ..kpi("map", PanelKind::Map, (0, 2, 6, 5), "aq-good-share")
            },
            Panel {
                limit: Some(6),
                ..panel("inc", PanelKind::Incidents, (6, 2, 6, 5))
            },
            Panel {
                days: Some(14),
                ..kpi("mtta", PanelKind::Chart, (0, 7, 6, 3), "mtta-critical")
            },
            Panel {
                limit: Some(8),
                ..kpi(
                    "rank",
                    PanelKind::Ranking,
                    (6, 7, 6, 3),
                    "river-below-alarm",
                )
            },
            Panel {
                kpis: crate::kpi::catalogue::starter()
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect(),
                ..panel("all", PanelKind::Table, (0, 10, 12, 5))
            },
        ],
        updated_at: at,
    };
    let city = Dashboard {
        id: "city".into(),
        name: "Toàn cảnh thành phố".into(),
        owner: crate::alerts::SYSTEM.into(),
        shared_roles: Role::ALL.to_vec(),
        builtin: true,
        panels: vec![
            Panel {
                title: Some("Thiết bị trên toàn tỉnh".into()),
                ..panel("map", PanelKind::Map, (0, 0, 8, 7))
            },
            Panel {
                min_severity: Some(Severity::Major),
                limit: Some(8),
                ..panel("alerts", PanelKind::Alerts, (8, 0, 4, 7))
            },
            kpi("t1", PanelKind::Kpi, (0, 7, 3, 2), "pm25-mean"),
            kpi("t2", PanelKind::Kpi, (3, 7, 3, 2), "traffic-speed"),
            kpi("t3", PanelKind::Kpi, (6, 7, 3, 2), "critical-alerts"),
            kpi("t4", PanelKind::Kpi, (9, 7, 3, 2), "mtta-critical"),
        ],
        updated_at: at,
    };
    vec![leader, city]
}

/// The wall as it starts: one screen alternating the two built-in dashboards, switching to
/// a critical alert when one comes.
pub fn default_wall() -> WallProfile {
    WallProfile {
        screens: vec![WallScreen {
            name: "Màn hình 1".into(),
            playlist: vec![
                WallItem {
                    dashboard: "leader".into(),
                    seconds: 60,
                },
                WallItem {
                    dashboard: "city".into(),
                    seconds: 60,
                },
            ],
        }],
        preset_severity: Severity::Critical,
    }
}

/// Whether someone may see a dashboard: its owner, the roles it is shared with, an admin.
pub fn visible(d: &Dashboard, user: &str, role: Role) -> bool {
    d.builtin || d.owner == user || role == Role::Admin || d.shared_roles.contains(&role)
}

/// Checks a dashboard: a name, panels inside the grid without overlapping, each with what
/// its kind needs (KPIs among `kpis`).
pub fn check(d: &Dashboard, kpis: &[String]) -> Result<(), String> {
    if d.name.trim().is_empty() {
        return Err("a dashboard needs a name".into());
    }
    if d.panels.len() > 40 {
        return Err("at most 40 panels".into());
    }
    let mut ids = std::collections::HashSet::new();
    for p in &d.panels {
        if !ids.insert(p.id.as_str()) || p.id.is_empty() {
            return Err(format!(
                "panel ids must be present and different ({:?})",
                p.id
            ));
        }
        if !p.fits() {
            return Err(format!(
                "panel {:?} does not fit the grid of {} columns",
                p.id,
                ioc_model::GRID_COLUMNS
            ));
        }
        let known = |k: &str| kpis.iter().any(|x| x == k);
        match p.kind {
            PanelKind::Kpi | PanelKind::Ranking => match &p.kpi {
                Some(k) if known(k) => {}
                Some(k) => return Err(format!("panel {:?}: no KPI {k:?}", p.id)),
                None => return Err(format!("panel {:?} needs a KPI", p.id)),
            },
            PanelKind::Chart => match (&p.kpi, &p.entity, &p.metric) {
                (Some(k), _, _) if known(k) => {}
                (Some(k), _, _) => return Err(format!("panel {:?}: no KPI {k:?}", p.id)),
                (None, Some(_), Some(_)) => {}
                _ => {
                    return Err(format!(
                        "panel {:?}: a chart of a KPI, or of a device's metric",
                        p.id
                    ))
                }
            },
            PanelKind::Map => {
                if let Some(k) = p.kpi.as_deref().filter(|k| !known(k)) {
                    return Err(format!("panel {:?}: no KPI {k:?}", p.id));
                }
            }
            PanelKind::Table => {
                if p.kpis.is_empty() {
                    return Err(format!("panel {:?}: which KPIs?", p.id));
                }
                if let Some(k) = p.kpis.iter().find(|k| !known(k)) {
                    return Err(format!("panel {:?}: no KPI {k:?}", p.id));
                }
            }
            PanelKind::Text => {
                if p.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
                    return Err(format!("panel {:?}: a text panel needs some words", p.id));
                }
            }
            PanelKind::Camera => {
                if p.entity.as_deref().is_none_or(|e| e.trim().is_empty()) {
                    return Err(format!("panel {:?}: which camera (entity)?", p.id));
                }
            }
            PanelKind::Alerts | PanelKind::Incidents => {}
        }
    }
    for (i, a) in d.panels.iter().enumerate() {
        for b in &d.panels[i + 1..] {
            let apart =
                a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
            if !apart {
                return Err(format!("panels {:?} and {:?} overlap", a.id, b.id));
            }
        }
    }
    Ok(())
}

/// Checks a wall profile against the dashboards there are.
pub fn check_wall(w: &WallProfile, dashboards: &[String]) -> Result<(), String> {
    if w.screens.is_empty() || w.screens.len() > 16 {
        return Err("a wall has 1 to 16 screens".into());
    }
    for s in &w.screens {
        if s.playlist.is_empty() {
            return Err(format!("screen {:?} shows nothing", s.name));
        }
        for item in &s.playlist {
            if !dashboards.contains(&item.dashboard) {
                return Err(format!(
                    "screen {:?}: no dashboard {:?}",
                    s.name, item.dashboard
                ));
            }
            if !(5..=3600).contains(&item.seconds) {
                return Err(format!(
                    "screen {:?}: show {:?} for 5 to 3600 seconds",
                    s.name, item.dashboard
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<String> {
        crate::kpi::catalogue::starter()
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    #[test]
    fn the_builtin_dashboards_and_wall_are_valid() {
        let b = builtin(Utc::now());
        for d in &b {
            check(d, &ids()).unwrap_or_else(|e| panic!("{}: {e}", d.id));
        }
        let names: Vec<String> = b.iter().map(|d| d.id.clone()).collect();
        check_wall(&default_wall(), &names).unwrap();
    }

    #[test]
    fn broken_dashboards_are_refused() {
        let mut d = builtin(Utc::now()).remove(1);
        d.panels[1].x = 7;
        assert!(check(&d, &ids()).unwrap_err().contains("overlap"));
        let mut d = builtin(Utc::now()).remove(1);
        d.panels[0].w = 13;
        assert!(check(&d, &ids()).unwrap_err().contains("grid"));
        let mut d = builtin(Utc::now()).remove(1);
        d.panels[2].kpi = Some("nope".into());
        assert!(check(&d, &ids()).unwrap_err().contains("no KPI"));
        let mut w = default_wall();
        w.screens[0].playlist[0].seconds = 1;
        assert!(check_wall(&w, &["leader".into(), "city".into()]).is_err());
    }
}
