//! The Nghệ An demo: where its ~300 entities stand. Communes are the 130 communes and wards
//! of Nghệ An since the July 2025 reform, each with a point inside its boundary
//! (`assets/demo/nghe-an-communes.csv`, derived from the official boundaries by
//! `ioc demo places`). Stations, gauges, counters and cameras are placed around those points:
//! dense in Vinh, Cửa Lò and the towns, river gauges along the Cả (Lam) and Hiếu rivers, rain
//! gauges across the western uplands.

pub mod province;

use ioc_model::{Domain, Entity, Unit};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const COMMUNES_CSV: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../assets/demo/nghe-an-communes.csv"
));

/// Code of the province unit, parent of every commune.
pub const PROVINCE_CODE: &str = "40";

#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub code: String,
    pub name: String,
    pub full_name: String,
    pub lon: f64,
    pub lat: f64,
}

/// The 130 communes and wards with a point inside each.
pub fn places() -> Vec<Place> {
    let mut rdr = csv::Reader::from_reader(COMMUNES_CSV.as_bytes());
    rdr.records()
        .filter_map(|r| r.ok())
        .filter_map(|r| {
            Some(Place {
                code: r.get(0)?.to_string(),
                name: r.get(1)?.to_string(),
                full_name: r.get(2)?.to_string(),
                lon: r.get(3)?.parse().ok()?,
                lat: r.get(4)?.parse().ok()?,
            })
        })
        .collect()
}

/// The province and its communes as units.
pub fn units() -> Vec<Unit> {
    let mut units = vec![Unit {
        code: PROVINCE_CODE.into(),
        name: "Nghệ An".into(),
        full_name: Some("Tỉnh Nghệ An".into()),
        parent: None,
        lon: Some(105.1),
        lat: Some(19.2),
    }];
    units.extend(places().into_iter().map(|p| Unit {
        code: p.code,
        name: p.name,
        full_name: Some(p.full_name),
        parent: Some(PROVINCE_CODE.into()),
        lon: Some(p.lon),
        lat: Some(p.lat),
    }));
    units
}

/// What a demo entity is; decides its metrics and how they behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    AirQuality,
    WaterLevel,
    Rain,
    Traffic,
    Camera,
}

impl Kind {
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::AirQuality => "AirQualityStation",
            Kind::WaterLevel => "WaterLevelGauge",
            Kind::Rain => "RainGauge",
            Kind::Traffic => "TrafficCounter",
            Kind::Camera => "Camera",
        }
    }

    pub fn metrics(self) -> &'static [&'static str] {
        match self {
            Kind::AirQuality => &["pm25", "pm10", "temperature", "humidity"],
            Kind::WaterLevel => &["water_level"],
            Kind::Rain => &["rain_1h"],
            Kind::Traffic => &["intensity", "speed"],
            Kind::Camera => &["online"],
        }
    }
}

/// Where a demo entity stands and its baseline.
#[derive(Debug, Clone)]
pub struct DemoEntity {
    pub entity: Entity,
    pub kind: Kind,
    /// Typical level: PM2.5 µg/m³, water level m, vehicles/h, free-flow km/h…
    pub base: f64,
    /// Urban (1.0) to remote (0.0): scales pollution and traffic.
    pub urban: f64,
}

/// Wards of Vinh city and the coastal resort.
const VINH: [&str; 5] = [
    "Thành Vinh",
    "Trường Vinh",
    "Vinh Phú",
    "Vinh Lộc",
    "Vinh Hưng",
];
const CUA_LO: &str = "Cửa Lò";
const TOWNS: [&str; 5] = ["Hoàng Mai", "Quỳnh Mai", "Tân Mai", "Thái Hoà", "Tây Hiếu"];

/// River gauges: (commune, river, station name, usual level in m).
const GAUGES: [(&str, &str, &str, f64); 18] = [
    ("Mường Xén", "Nậm Mộ", "Mường Xén", 3.2),
    ("Tương Dương", "Cả", "Cửa Rào", 2.8),
    ("Con Cuông", "Cả", "Con Cuông", 2.4),
    ("Anh Sơn", "Cả", "Dừa", 2.1),
    ("Đô Lương", "Cả", "Đô Lương", 1.8),
    ("Cát Ngạn", "Cả", "Thanh Chương", 1.5),
    ("Nam Đàn", "Cả", "Nam Đàn", 1.2),
    ("Hưng Nguyên", "Lam", "Chợ Tràng", 0.9),
    ("Trường Vinh", "Lam", "Bến Thủy", 0.6),
    ("Lam Thành", "Lam", "Hưng Lam", 0.7),
    ("Quế Phong", "Hiếu", "Quế Phong", 2.6),
    ("Quỳ Châu", "Hiếu", "Quỳ Châu", 2.2),
    ("Nghĩa Đàn", "Hiếu", "Nghĩa Khánh", 1.8),
    ("Thái Hoà", "Hiếu", "Thái Hòa", 1.6),
    ("Tân Kỳ", "Con", "Tân Kỳ", 1.4),
    ("Hoàng Mai", "Hoàng Mai", "Hoàng Mai", 0.8),
    ("Diễn Châu", "Bùng", "Diễn Châu", 0.7),
    ("Yên Thành", "Dinh", "Yên Thành", 0.9),
];

/// Communes on national road 1A and road 7 (traffic counters).
const ROADS: [(&str, &str); 12] = [
    ("Quỳnh Văn", "QL1A"),
    ("Quỳnh Lưu", "QL1A"),
    ("Diễn Châu", "QL1A"),
    ("An Châu", "QL1A"),
    ("Nghi Lộc", "QL1A"),
    ("Hưng Nguyên", "QL1A"),
    ("Đô Lương", "QL7"),
    ("Anh Sơn", "QL7"),
    ("Con Cuông", "QL7"),
    ("Tương Dương", "QL7"),
    ("Nghĩa Đàn", "QL48"),
    ("Quỳ Hợp", "QL48"),
];

struct Placer {
    rng: SmallRng,
    scale: f64,
    out: Vec<DemoEntity>,
}

impl Placer {
    /// How many for a nominal count at this scale (at least one).
    fn n(&self, nominal: usize) -> usize {
        ((nominal as f64 * self.scale).round() as usize).max(1)
    }

    fn jitter(&mut self, p: &Place, radius_km: f64) -> (f64, f64) {
        let r = radius_km * self.rng.random::<f64>().sqrt();
        let a = self.rng.random::<f64>() * std::f64::consts::TAU;
        let dlat = r * a.sin() / 111.0;
        let dlon = r * a.cos() / (111.0 * p.lat.to_radians().cos());
        (round6(p.lon + dlon), round6(p.lat + dlat))
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        p: &Place,
        kind: Kind,
        id: String,
        name: String,
        radius_km: f64,
        base: f64,
        urban: f64,
        attributes: serde_json::Value,
    ) {
        let (lon, lat) = if radius_km > 0.0 {
            self.jitter(p, radius_km)
        } else {
            (p.lon, p.lat)
        };
        let domain = match kind {
            Kind::AirQuality => Domain::Environment,
            Kind::WaterLevel | Kind::Rain => Domain::Water,
            Kind::Traffic => Domain::Traffic,
            Kind::Camera => Domain::Safety,
        };
        self.out.push(DemoEntity {
            entity: Entity {
                attributes: match attributes {
                    serde_json::Value::Object(m) => m,
                    _ => Default::default(),
                },
                ..Entity::new(&id, kind.type_name(), &name, domain)
                    .at(lon, lat)
                    .in_unit(&p.code, &p.name)
            },
            kind,
            base,
            urban,
        });
    }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// Places the demo entities. The same seed and scale always give the same entities.
pub fn entities(seed: u64, scale: f64) -> Vec<DemoEntity> {
    let places = places();
    let by_name = |n: &str| places.iter().find(|p| p.name == n);
    let mut pl = Placer {
        rng: SmallRng::seed_from_u64(seed),
        scale,
        out: Vec::new(),
    };
    let urban_level = |p: &Place| {
        if VINH.contains(&p.name.as_str()) {
            1.0
        } else if p.name == CUA_LO || TOWNS.contains(&p.name.as_str()) {
            0.7
        } else if p.full_name.starts_with("Phường") {
            0.6
        } else {
            0.25
        }
    };

    for p in &places {
        let urban = urban_level(p);
        let (aq, traffic, cams, radius) = if VINH.contains(&p.name.as_str()) {
            (3, 4, 12, 1.2)
        } else if p.name == CUA_LO {
            (2, 3, 12, 1.0)
        } else if TOWNS.contains(&p.name.as_str()) {
            (1, 2, 4, 1.2)
        } else {
            (0, 0, 0, 3.0)
        };
        for i in 1..=pl.n(aq) * (aq > 0) as usize {
            let base = 30.0 + 18.0 * urban + pl.rng.random::<f64>() * 8.0;
            pl.add(
                p,
                Kind::AirQuality,
                format!("aq-{}-{i}", p.code),
                format!("Quan trắc không khí {} {i}", p.name),
                radius,
                base,
                urban,
                serde_json::json!({"operator": "Sở Nông nghiệp và Môi trường"}),
            );
        }
        for i in 1..=pl.n(traffic) * (traffic > 0) as usize {
            let base = 900.0 + 900.0 * urban * pl.rng.random::<f64>();
            pl.add(
                p,
                Kind::Traffic,
                format!("tc-{}-{i}", p.code),
                format!("Đếm xe {} {i}", p.name),
                radius,
                base,
                urban,
                serde_json::json!({"road": "đô thị", "free_speed": 40.0}),
            );
        }
        for i in 1..=pl.n(cams) * (cams > 0) as usize {
            pl.add(
                p,
                Kind::Camera,
                format!("cam-{}-{i:02}", p.code),
                format!("Camera {} {i:02}", p.name),
                radius,
                1.0,
                urban,
                serde_json::json!({"ptz": i % 3 == 0, "simulated": true}),
            );
        }
    }

    // Rural communes: an air station in every third, a rain gauge in every third (offset),
    // a camera in every sixth.
    let rural: Vec<&Place> = places.iter().filter(|p| urban_level(p) < 0.5).collect();
    let every = |k: f64| ((k / pl.scale).round() as usize).max(1);
    let (aq_every, rain_every, cam_every) = (every(3.0), every(3.0), every(6.0));
    for (i, p) in rural.iter().enumerate() {
        if i % aq_every == 0 {
            let base = 18.0 + pl.rng.random::<f64>() * 10.0;
            pl.add(
                p,
                Kind::AirQuality,
                format!("aq-{}-1", p.code),
                format!("Quan trắc không khí {}", p.name),
                2.0,
                base,
                0.2,
                serde_json::json!({"operator": "Sở Nông nghiệp và Môi trường"}),
            );
        }
        if i % rain_every == 1 % rain_every {
            pl.add(
                p,
                Kind::Rain,
                format!("rg-{}", p.code),
                format!("Đo mưa {}", p.name),
                2.0,
                0.0,
                0.0,
                serde_json::json!({}),
            );
        }
        if i % cam_every == 2 % cam_every {
            pl.add(
                p,
                Kind::Camera,
                format!("cam-{}-01", p.code),
                format!("Camera {} 01", p.name),
                1.0,
                1.0,
                0.2,
                serde_json::json!({"ptz": false, "simulated": true}),
            );
        }
    }

    for (commune, river, station, level) in GAUGES {
        let Some(p) = by_name(commune) else { continue };
        let a1 = (level + 1.5_f64).round_to(1);
        pl.add(
            p,
            Kind::WaterLevel,
            format!("wl-{}", p.code),
            format!("Thủy văn {station} (sông {river})"),
            0.5,
            level,
            0.0,
            serde_json::json!({
                "river": river,
                "station": station,
                "alarm_1": a1,
                "alarm_2": (a1 + 1.0).round_to(1),
                "alarm_3": (a1 + 2.0).round_to(1),
            }),
        );
    }

    for (commune, road) in ROADS {
        let Some(p) = by_name(commune) else { continue };
        let base = 700.0 + pl.rng.random::<f64>() * 400.0;
        pl.add(
            p,
            Kind::Traffic,
            format!("tc-{}-{}", p.code, road.to_lowercase()),
            format!("Đếm xe {road} {}", p.name),
            1.5,
            base,
            0.5,
            serde_json::json!({"road": road, "free_speed": 60.0}),
        );
    }
    pl.out
}

trait RoundTo {
    fn round_to(self, decimals: i32) -> f64;
}

impl RoundTo for f64 {
    fn round_to(self, decimals: i32) -> f64 {
        let f = 10f64.powi(decimals);
        (self * f).round() / f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn there_are_130_communes_in_nghe_an() {
        let p = places();
        assert_eq!(p.len(), 130);
        for place in &p {
            assert!(
                (103.8..105.9).contains(&place.lon) && (18.5..20.1).contains(&place.lat),
                "{place:?} is outside Nghệ An"
            );
        }
        assert_eq!(units().len(), 131);
    }

    #[test]
    fn about_three_hundred_entities_with_unique_ids_inside_the_province() {
        let e = entities(40, 1.0);
        assert!((250..=350).contains(&e.len()), "{} entities", e.len());
        let ids: HashSet<_> = e.iter().map(|d| d.entity.id.clone()).collect();
        assert_eq!(ids.len(), e.len());
        for kind in [
            Kind::AirQuality,
            Kind::WaterLevel,
            Kind::Rain,
            Kind::Traffic,
            Kind::Camera,
        ] {
            assert!(
                e.iter().filter(|d| d.kind == kind).count() >= 10,
                "{kind:?}"
            );
        }
        for d in &e {
            let (lon, lat) = d.entity.position().unwrap();
            assert!((103.7..106.0).contains(&lon), "{:?}", d.entity);
            assert!((18.4..20.2).contains(&lat), "{:?}", d.entity);
        }
        // Deterministic.
        let again = entities(40, 1.0);
        assert_eq!(e[7].entity, again[7].entity);
        // Scale changes the count.
        assert!(entities(40, 0.2).len() < e.len() / 2);
        assert!(entities(40, 3.0).len() > e.len() * 2);
    }
}
