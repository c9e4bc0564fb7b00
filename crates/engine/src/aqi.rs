//! Air-quality indices from particulate concentrations (µg/m³):
//!
//! - the US EPA **NowCast** (hourly averages of the last 12 hours, weighted towards the recent
//!   ones when the air is changing) and the US **AQI** with its six categories, with the
//!   breakpoints of 2012 (used by AirNow until May 2024, and by the reference files) or of 2024
//!   (in force since); beyond the top breakpoint, the top of the scale ([`UsAqi::beyond`]);
//! - Vietnam's **VN_AQI** (hourly) of Decision 1459/QĐ-TCMT (2019) of the Vietnam Environment
//!   Administration, with its breakpoint table and six categories (Tốt … Nguy hại).

/// The particulates both indices are defined for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pollutant {
    Pm25,
    Pm10,
}

/// Which US breakpoint table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsTable {
    /// 2012 revision: PM2.5 "good" up to 12.0 µg/m³.
    Epa2012,
    /// 2024 revision (in force since 6 May 2024): "good" up to 9.0 µg/m³.
    Epa2024,
}

/// NowCast from hourly averages, newest first (`None`: hour missing or invalid; a slightly
/// negative average of a clean hour counts as it is, as AirNow counts it: Hanoi 2018-09-03
/// 05:00, raw −2.0, NowCast 1.2). Needs at least
/// two of the three most recent hours; looks at twelve. Truncated as the EPA does: PM2.5 to
/// 0.1 µg/m³, PM10 to 1 µg/m³. The same weighting is prescribed by Decision 1459 for the
/// hourly VN_AQI of particulates.
pub fn nowcast(hourly: &[Option<f64>], p: Pollutant) -> Option<f64> {
    let hours: Vec<Option<f64>> = hourly
        .iter()
        .take(12)
        .map(|c| c.filter(|v| v.is_finite()))
        .collect();
    if hours.iter().take(3).filter(|c| c.is_some()).count() < 2 {
        return None;
    }
    let valid = hours.iter().flatten();
    let (min, max) = valid.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &c| {
        (lo.min(c), hi.max(c))
    });
    let w = if max <= 0.0 {
        1.0
    } else {
        (min / max).max(0.5)
    };
    let (mut num, mut den, mut wi) = (0.0, 0.0, 1.0);
    for c in &hours {
        if let Some(c) = c {
            num += wi * c;
            den += wi;
        }
        wi *= w;
    }
    Some(truncate(num / den, p))
}

fn truncate(c: f64, p: Pollutant) -> f64 {
    // A small epsilon so 35.4 computed as 35.39999… stays 35.4.
    match p {
        Pollutant::Pm25 => ((c + 1e-9) * 10.0).floor() / 10.0,
        Pollutant::Pm10 => (c + 1e-9).floor(),
    }
}

/// (concentration low, concentration high, index low, index high)
type Band = (f64, f64, f64, f64);

const US_PM25_2012: &[Band] = &[
    (0.0, 12.0, 0.0, 50.0),
    (12.1, 35.4, 51.0, 100.0),
    (35.5, 55.4, 101.0, 150.0),
    (55.5, 150.4, 151.0, 200.0),
    (150.5, 250.4, 201.0, 300.0),
    (250.5, 350.4, 301.0, 400.0),
    (350.5, 500.4, 401.0, 500.0),
];

const US_PM25_2024: &[Band] = &[
    (0.0, 9.0, 0.0, 50.0),
    (9.1, 35.4, 51.0, 100.0),
    (35.5, 55.4, 101.0, 150.0),
    (55.5, 125.4, 151.0, 200.0),
    (125.5, 225.4, 201.0, 300.0),
    (225.5, 325.4, 301.0, 500.0),
];

const US_PM10: &[Band] = &[
    (0.0, 54.0, 0.0, 50.0),
    (55.0, 154.0, 51.0, 100.0),
    (155.0, 254.0, 101.0, 150.0),
    (255.0, 354.0, 151.0, 200.0),
    (355.0, 424.0, 201.0, 300.0),
    (425.0, 504.0, 301.0, 400.0),
    (505.0, 604.0, 401.0, 500.0),
];

/// The top of the US AQI scale.
pub const US_AQI_TOP: u32 = 500;

/// A US AQI value. Above the top breakpoint of its table the EPA calls the air "Beyond the
/// AQI": AirNow reports the top of the scale (written "500+"), category Hazardous, and asks
/// to follow the Hazardous recommendations (AirNow, "The AQI Equation", 2015 and 2024; EPA
/// technical assistance document EPA-454/B-24-002, Table 6). Giving nothing there would
/// leave a screen on the last, lower value during the worst episodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsAqi {
    /// 0–500; [`US_AQI_TOP`] beyond the index.
    pub value: u32,
    /// The concentration is above the table's top breakpoint.
    pub beyond: bool,
}

impl UsAqi {
    pub fn category(self) -> UsCategory {
        UsCategory::of(self.value)
    }

    /// As AirNow writes it: the number, or "500+" beyond the index.
    pub fn label(self) -> String {
        if self.beyond {
            format!("{US_AQI_TOP}+")
        } else {
            self.value.to_string()
        }
    }
}

/// US AQI of a (NowCast or 24-hour) concentration; `None` only when it is not a number.
/// Below zero (a clean hour's noise) it is 0, the bottom of the scale; beyond the top
/// breakpoint, the top of the scale, marked [`UsAqi::beyond`].
pub fn aqi_us(concentration: f64, p: Pollutant, table: UsTable) -> Option<UsAqi> {
    if concentration.is_nan() {
        return None;
    }
    let c = truncate(concentration.max(0.0), p);
    let bands = match (p, table) {
        (Pollutant::Pm25, UsTable::Epa2012) => US_PM25_2012,
        (Pollutant::Pm25, UsTable::Epa2024) => US_PM25_2024,
        (Pollutant::Pm10, _) => US_PM10,
    };
    let Some(&(clo, chi, ilo, ihi)) = bands.iter().find(|(_, chi, _, _)| c <= *chi + 1e-9) else {
        return Some(UsAqi {
            value: US_AQI_TOP,
            beyond: true,
        });
    };
    let i = (ihi - ilo) / (chi - clo) * (c - clo) + ilo;
    Some(UsAqi {
        value: i.round() as u32,
        beyond: false,
    })
}

/// The six US categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsCategory {
    Good,
    Moderate,
    UnhealthyForSensitiveGroups,
    Unhealthy,
    VeryUnhealthy,
    Hazardous,
}

impl UsCategory {
    pub fn of(aqi: u32) -> UsCategory {
        match aqi {
            0..=50 => UsCategory::Good,
            51..=100 => UsCategory::Moderate,
            101..=150 => UsCategory::UnhealthyForSensitiveGroups,
            151..=200 => UsCategory::Unhealthy,
            201..=300 => UsCategory::VeryUnhealthy,
            _ => UsCategory::Hazardous,
        }
    }

    /// As AirNow writes it.
    pub fn label(self) -> &'static str {
        match self {
            UsCategory::Good => "Good",
            UsCategory::Moderate => "Moderate",
            UsCategory::UnhealthyForSensitiveGroups => "Unhealthy for Sensitive Groups",
            UsCategory::Unhealthy => "Unhealthy",
            UsCategory::VeryUnhealthy => "Very Unhealthy",
            UsCategory::Hazardous => "Hazardous",
        }
    }
}

/// Decision 1459/QĐ-TCMT, Table 2: breakpoints of PM2.5 and PM10 (µg/m³) for indices
/// 0, 50, 100, 150, 200, 300, 400, 500.
const VN_INDEX: [f64; 8] = [0.0, 50.0, 100.0, 150.0, 200.0, 300.0, 400.0, 500.0];
const VN_PM25: [f64; 8] = [0.0, 25.0, 50.0, 80.0, 150.0, 250.0, 350.0, 500.0];
const VN_PM10: [f64; 8] = [0.0, 50.0, 150.0, 250.0, 350.0, 420.0, 500.0, 600.0];

/// Hourly VN_AQI of one particulate from its NowCast concentration, rounded to an integer as
/// the decision prescribes; above the last breakpoint the index is capped at 500.
pub fn vn_aqi(nowcast: f64, p: Pollutant) -> Option<u32> {
    if nowcast.is_nan() {
        return None;
    }
    // Below zero (a clean hour's noise): the bottom of the scale.
    let nowcast = nowcast.max(0.0);
    let bp = match p {
        Pollutant::Pm25 => &VN_PM25,
        Pollutant::Pm10 => &VN_PM10,
    };
    if nowcast >= bp[7] {
        return Some(500);
    }
    let i = (0..7).find(|&i| nowcast < bp[i + 1]).unwrap_or(6);
    let aqi =
        (VN_INDEX[i + 1] - VN_INDEX[i]) / (bp[i + 1] - bp[i]) * (nowcast - bp[i]) + VN_INDEX[i];
    Some(aqi.round() as u32)
}

/// The six VN_AQI categories and their official colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VnCategory {
    Tot,
    TrungBinh,
    Kem,
    Xau,
    RatXau,
    NguyHai,
}

impl VnCategory {
    pub fn of(aqi: u32) -> VnCategory {
        match ioc_model::metric::vn_aqi_band(aqi as f64) {
            1 => VnCategory::Tot,
            2 => VnCategory::TrungBinh,
            3 => VnCategory::Kem,
            4 => VnCategory::Xau,
            5 => VnCategory::RatXau,
            _ => VnCategory::NguyHai,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            VnCategory::Tot => "Tốt",
            VnCategory::TrungBinh => "Trung bình",
            VnCategory::Kem => "Kém",
            VnCategory::Xau => "Xấu",
            VnCategory::RatXau => "Rất xấu",
            VnCategory::NguyHai => "Nguy hại",
        }
    }

    /// RGB as published with the decision.
    pub fn rgb(self) -> (u8, u8, u8) {
        match self {
            VnCategory::Tot => (0, 228, 0),
            VnCategory::TrungBinh => (255, 255, 0),
            VnCategory::Kem => (255, 126, 0),
            VnCategory::Xau => (255, 0, 0),
            VnCategory::RatXau => (143, 63, 151),
            VnCategory::NguyHai => (126, 0, 35),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AirNow Hanoi, 2018-09-03 05:00: a Valid hour of −2.0 µg/m³ after a clean night; AirNow's
    /// NowCast is 1.2, which only counting the hour as it is gives (dropping it: 4.4; zero: 2.2).
    #[test]
    fn a_valid_negative_hour_counts_as_it_is() {
        let hours = [
            -2.0, 3.0, 6.0, 5.0, 7.0, 2.0, 5.0, 9.0, 13.0, 31.0, 34.0, 30.0,
        ]
        .map(Some);
        assert_eq!(nowcast(&hours, Pollutant::Pm25), Some(1.2));
        assert_eq!(
            aqi_us(-1.3, Pollutant::Pm25, UsTable::Epa2012).map(|a| a.value),
            Some(0)
        );
        assert_eq!(vn_aqi(-1.3, Pollutant::Pm25), Some(0));
    }

    #[test]
    fn nowcast_follows_the_epa_worked_example() {
        // 12 hours newest first; w* = 13.5/55.5 < 0.5 so w = 0.5: Σ 0.5^(i-1) c_i / Σ 0.5^(i-1).
        let hours = [
            13.5, 21.6, 41.6, 55.5, 49.2, 40.3, 37.3, 32.8, 28.9, 27.8, 27.6, 27.1,
        ];
        let h: Vec<Option<f64>> = hours.iter().map(|&c| Some(c)).collect();
        assert_eq!(nowcast(&h, Pollutant::Pm25), Some(23.5));
        // Missing hours keep their weight position; two of the last three are required.
        let mut gap = h.clone();
        gap[1] = None;
        assert!(nowcast(&gap, Pollutant::Pm25).is_some());
        gap[2] = None;
        assert_eq!(nowcast(&gap, Pollutant::Pm25), None);
        // Steady air: the plain average.
        assert_eq!(nowcast(&[Some(10.0); 12], Pollutant::Pm25), Some(10.0));
        assert_eq!(nowcast(&[Some(0.0); 12], Pollutant::Pm10), Some(0.0));
    }

    #[test]
    fn us_aqi_breakpoints() {
        use Pollutant::*;
        use UsTable::*;
        let aqi = |c, p, t| aqi_us(c, p, t).map(|a| a.value);
        assert_eq!(aqi(12.0, Pm25, Epa2012), Some(50));
        assert_eq!(aqi(12.1, Pm25, Epa2012), Some(51));
        assert_eq!(aqi(35.4, Pm25, Epa2012), Some(100));
        assert_eq!(aqi(68.9, Pm25, Epa2012), Some(158));
        assert_eq!(aqi(500.4, Pm25, Epa2012), Some(500));
        assert!(!aqi_us(500.4, Pm25, Epa2012).unwrap().beyond);
        assert_eq!(aqi(9.0, Pm25, Epa2024), Some(50));
        assert_eq!(aqi(12.0, Pm25, Epa2024), Some(56));
        assert_eq!(aqi(154.0, Pm10, Epa2024), Some(100));
        assert_eq!(
            aqi(-1.0, Pm10, Epa2024),
            Some(0),
            "noise below zero is clean air"
        );
        assert_eq!(aqi(f64::NAN, Pm25, Epa2024), None);
        assert_eq!(UsCategory::of(158).label(), "Unhealthy");
    }

    /// Hourly PM2.5 (µg/m³) of the US Embassy Beijing monitor, 2013-01-12 09:00–20:00 Beijing
    /// time, newest first (09:00 missing): the worst hour of its record, 886 µg/m³ at 20:00.
    /// From the UCI Machine Learning Repository's "Beijing PM2.5 Data" (Liang et al., 2015),
    /// file `PRSA_data_2010.1.1-2014.12.31.csv`, rows `No` 26578–26589, as published in
    /// github.com/naogelzc/PM2.5-Data-Mining-in-Beijing (commit 060bbffd).
    const BEIJING_2013_01_12_20H: [Option<f64>; 12] = [
        Some(886.0),
        Some(824.0),
        Some(776.0),
        Some(810.0),
        Some(845.0),
        Some(802.0),
        Some(529.0),
        Some(458.0),
        Some(472.0),
        Some(383.0),
        Some(319.0),
        None,
    ];

    /// Above the top breakpoint AirNow reports the top of the scale ("500+", "Beyond the
    /// AQI"), category Hazardous: never nothing, which left the screen on an older, lower AQI.
    #[test]
    fn beyond_the_index_is_the_top_of_the_scale_and_hazardous() {
        use Pollutant::*;
        use UsTable::*;
        let nc = nowcast(&BEIJING_2013_01_12_20H, Pm25).unwrap();
        assert_eq!(nc, 843.3);
        let top = Some(UsAqi {
            value: 500,
            beyond: true,
        });
        for table in [Epa2012, Epa2024] {
            assert_eq!(aqi_us(nc, Pm25, table), top, "{table:?}");
        }
        assert_eq!(aqi_us(500.5, Pm25, Epa2012), top);
        assert_eq!(aqi_us(325.5, Pm25, Epa2024), top);
        assert_eq!(aqi_us(605.0, Pm10, Epa2024), top);
        let beyond = aqi_us(nc, Pm25, Epa2024).unwrap();
        assert_eq!(beyond.category().label(), "Hazardous");
        assert_eq!(beyond.label(), "500+");
        let at_top = aqi_us(325.4, Pm25, Epa2024).unwrap();
        assert_eq!((at_top.value, at_top.label()), (500, "500".to_string()));
    }

    #[test]
    fn vn_aqi_breakpoints_of_decision_1459() {
        use Pollutant::*;
        assert_eq!(vn_aqi(0.0, Pm25), Some(0));
        assert_eq!(vn_aqi(25.0, Pm25), Some(50));
        assert_eq!(vn_aqi(50.0, Pm25), Some(100));
        assert_eq!(vn_aqi(65.0, Pm25), Some(125));
        assert_eq!(vn_aqi(150.0, Pm25), Some(200));
        assert_eq!(vn_aqi(200.0, Pm25), Some(250));
        assert_eq!(vn_aqi(600.0, Pm25), Some(500));
        assert_eq!(vn_aqi(100.0, Pm10), Some(75));
        assert_eq!(vn_aqi(385.0, Pm10), Some(250));
        assert_eq!(VnCategory::of(125), VnCategory::Kem);
        assert_eq!(VnCategory::of(125).label(), "Kém");
        assert_eq!(VnCategory::of(301), VnCategory::NguyHai);
    }
}
