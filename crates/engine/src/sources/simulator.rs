//! The Nghệ An demo scenario as a source. Every entity of [`crate::demo`] reports once per
//! interval with plausible daily cycles (rush hours for traffic and PM2.5, the afternoon heat,
//! the tide at the river mouth) plus noise; now and then an episode (a pollution spike, a
//! rising river, a cloudburst, a jam, a camera going offline) pushes one entity past the demo
//! rules' thresholds for a while. On first start it fills in the last hours of history so
//! that charts have something to show.
//!
//! Episodes are a function of the clock and the seed, not of the process: time is cut into
//! slots of `episode_every`, and each slot's episodes are drawn from a generator seeded by the
//! slot's number. A restarted app therefore sees the very same episodes continue.

use super::SourceCtx;
use crate::demo::{self, DemoEntity, Kind};
use crate::ingest::{Ingest, Item, Obs};
use chrono::{DateTime, Duration as ChronoDuration, Timelike, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::f64::consts::PI;
use std::sync::Arc;

/// Vietnam is UTC+7 all year (no daylight saving): the demo's daily cycles follow local time.
const LOCAL_OFFSET_H: f64 = 7.0;

/// During backfill, episodes only start in this last stretch, so a first start shows a
/// handful of alerts rather than hours' worth.
const EVENTFUL_TAIL: ChronoDuration = ChronoDuration::hours(1);

#[derive(Debug, Clone)]
struct Episode {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    /// Kind-specific: peak PM2.5, rise in metres, rain mm/h, jam speed…
    peak: f64,
}

impl Episode {
    /// 0 → 1 → 0 over the episode: quick rise, plateau, slower fall.
    fn shape(&self, t: DateTime<Utc>) -> f64 {
        if t < self.start || t >= self.end {
            return 0.0;
        }
        let total = (self.end - self.start).num_milliseconds() as f64;
        let x = (t - self.start).num_milliseconds() as f64 / total;
        if x < 0.2 {
            x / 0.2
        } else if x < 0.7 {
            1.0
        } else {
            (1.0 - x) / 0.3
        }
    }
}

struct State {
    spec: DemoEntity,
    noise: f64,
    shower: f64,
}

/// The simulation, separate from the task so it can be tested without time passing.
pub struct Simulation {
    entities: Vec<State>,
    ids: Vec<Arc<str>>,
    metrics: Vec<Vec<Arc<str>>>,
    by_kind: Vec<(Kind, Vec<usize>)>,
    rng: SmallRng,
    seed: u64,
    episode_every_ms: i64,
    episode_length_s: f64,
    /// Episodes of recent slots, by slot number.
    slots: std::collections::BTreeMap<i64, Vec<(usize, Episode)>>,
    /// Episodes started by hand (tests).
    manual: Vec<(usize, Episode)>,
    last_step: Option<DateTime<Utc>>,
}

fn gauss(x: f64, mu: f64, sigma: f64) -> f64 {
    (-((x - mu) * (x - mu)) / (2.0 * sigma * sigma)).exp()
}

fn local_hour(t: DateTime<Utc>) -> f64 {
    let h = t.hour() as f64 + t.minute() as f64 / 60.0 + t.second() as f64 / 3600.0;
    (h + LOCAL_OFFSET_H).rem_euclid(24.0)
}

/// Traffic through the day: morning and evening rush, quiet nights.
fn traffic_cycle(h: f64) -> f64 {
    0.12 + 0.9 * gauss(h, 7.3, 1.2) + 0.95 * gauss(h, 17.5, 1.5) + 0.55 * gauss(h, 12.0, 3.0)
}

/// PM2.5 through the day: traffic peaks, a midday dip as the air mixes, evening cooking.
fn pm_cycle(h: f64) -> f64 {
    1.0 + 0.45 * gauss(h, 7.5, 1.5) + 0.6 * gauss(h, 19.5, 2.0) - 0.3 * gauss(h, 14.0, 2.5)
}

impl Simulation {
    pub fn new(config: &SimulatorConfig, start: DateTime<Utc>) -> Simulation {
        let specs = demo::entities(config.seed, config.scale);
        let ids = specs
            .iter()
            .map(|d| Arc::from(d.entity.id.as_str()))
            .collect();
        let metrics = specs
            .iter()
            .map(|d| d.kind.metrics().iter().map(|m| Arc::from(*m)).collect())
            .collect();
        let by_kind = [
            Kind::AirQuality,
            Kind::WaterLevel,
            Kind::Camera,
            Kind::Rain,
            Kind::Traffic,
        ]
        .into_iter()
        .map(|k| {
            let idx = specs
                .iter()
                .enumerate()
                .filter(|(_, d)| d.kind == k)
                .map(|(i, _)| i)
                .collect();
            (k, idx)
        })
        .collect();
        Simulation {
            entities: specs
                .into_iter()
                .map(|spec| State {
                    spec,
                    noise: 0.0,
                    shower: 0.0,
                })
                .collect(),
            ids,
            metrics,
            by_kind,
            rng: SmallRng::seed_from_u64(config.seed ^ start.timestamp() as u64),
            seed: config.seed,
            episode_every_ms: (config.episode_every.as_millis() as i64).max(1),
            episode_length_s: config.episode_length.as_secs_f64().max(1.0),
            slots: Default::default(),
            manual: Vec::new(),
            last_step: None,
        }
    }

    /// Units and entities to register before the first observation.
    pub fn registrations(&self) -> Vec<Item> {
        let mut items: Vec<Item> = demo::units().into_iter().map(Item::Unit).collect();
        items.extend(
            self.entities
                .iter()
                .map(|s| Item::Entity(Box::new(s.spec.entity.clone()))),
        );
        items
    }

    pub fn len(&self) -> usize {
        self.entities.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// External ids of the simulated entities.
    pub fn ids(&self) -> &[Arc<str>] {
        &self.ids
    }

    fn peak(kind: Kind, rng: &mut SmallRng) -> f64 {
        match kind {
            Kind::AirQuality => rng.random_range(180.0..330.0),
            Kind::WaterLevel => rng.random_range(1.7..3.9),
            Kind::Rain => rng.random_range(55.0..95.0),
            Kind::Traffic => rng.random_range(3.0..8.0),
            Kind::Camera => 0.0,
        }
    }

    /// Starts an episode on entity `idx` at `t` (tests).
    pub fn start_episode(&mut self, idx: usize, t: DateTime<Utc>) {
        let len = self.episode_length_s * self.rng.random_range(0.6..1.4);
        let peak = Self::peak(self.entities[idx].spec.kind, &mut self.rng);
        self.manual.push((
            idx,
            Episode {
                start: t,
                end: t + ChronoDuration::milliseconds((len * 1000.0) as i64),
                peak,
            },
        ));
    }

    /// The episodes that start in slot `k`: as many as a Poisson draw with mean one gives,
    /// each on an entity of a kind chosen by weight.
    fn draw_slot(&self, k: i64) -> Vec<(usize, Episode)> {
        let mut rng = SmallRng::seed_from_u64(
            self.seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(k as u64),
        );
        // Poisson(1) by inversion.
        let u = rng.random::<f64>();
        let (mut n, mut p) = (0, (-1f64).exp());
        let mut cum = p;
        while u > cum && n < 6 {
            n += 1;
            p /= n as f64;
            cum += p;
        }
        let slot_start = k * self.episode_every_ms;
        let mut out = Vec::new();
        for _ in 0..n {
            let kind = match rng.random::<f64>() {
                r if r < 0.32 => Kind::AirQuality,
                r if r < 0.52 => Kind::WaterLevel,
                r if r < 0.72 => Kind::Camera,
                r if r < 0.84 => Kind::Rain,
                _ => Kind::Traffic,
            };
            let Some((_, candidates)) = self.by_kind.iter().find(|(kd, _)| *kd == kind) else {
                continue;
            };
            if candidates.is_empty() {
                continue;
            }
            let idx = candidates[rng.random_range(0..candidates.len())];
            let start = slot_start + rng.random_range(0..self.episode_every_ms);
            let len = self.episode_length_s * rng.random_range(0.6..1.4);
            let peak = Self::peak(kind, &mut rng);
            let start = DateTime::from_timestamp_millis(start).unwrap_or_default();
            out.push((
                idx,
                Episode {
                    start,
                    end: start + ChronoDuration::milliseconds((len * 1000.0) as i64),
                    peak,
                },
            ));
        }
        out
    }

    /// (shape, peak) of the strongest episode of each entity at `t`; `scheduled` includes the
    /// clock's episodes, otherwise only those started by hand.
    fn episodes_at(&mut self, t: DateTime<Utc>, scheduled: bool) -> Vec<(f64, f64)> {
        let mut eps = vec![(0.0, 0.0); self.entities.len()];
        let t_ms = t.timestamp_millis();
        let longest = (self.episode_length_s * 1400.0) as i64;
        let first = (t_ms - longest).div_euclid(self.episode_every_ms);
        let last = t_ms.div_euclid(self.episode_every_ms);
        if scheduled {
            while self
                .slots
                .first_key_value()
                .is_some_and(|(k, _)| *k < first)
            {
                self.slots.pop_first();
            }
            for k in first..=last {
                if !self.slots.contains_key(&k) {
                    let drawn = self.draw_slot(k);
                    self.slots.insert(k, drawn);
                }
            }
        }
        let from_clock = self
            .slots
            .range(first..=last)
            .filter(|_| scheduled)
            .flat_map(|(_, v)| v.iter());
        for (idx, e) in from_clock.chain(self.manual.iter()) {
            let shape = e.shape(t);
            let (cur_shape, cur_peak) = eps[*idx];
            if shape > 0.0 && shape * e.peak.max(1.0) >= cur_shape * f64::max(cur_peak, 1.0) {
                eps[*idx] = (shape, e.peak);
            }
        }
        eps
    }

    /// Every entity's values at time `t`; with `eventful`, the clock's episodes play out.
    pub fn step(&mut self, t: DateTime<Utc>, eventful: bool) -> Vec<Item> {
        let dt_s = self
            .last_step
            .map(|l| (t - l).num_milliseconds() as f64 / 1000.0)
            .unwrap_or(0.0)
            .max(0.0);
        self.last_step = Some(t);
        let episodes = self.episodes_at(t, eventful);
        let h = local_hour(t);
        // AR(1) noise, its memory independent of the step length.
        let keep = (-dt_s / 600.0).exp();
        let mut items = Vec::with_capacity(self.entities.len() * 2);
        for (i, s) in self.entities.iter_mut().enumerate() {
            let n: f64 = self.rng.random_range(-1.0..1.0);
            s.noise = keep * s.noise + (1.0 - keep * keep).sqrt() * n;
            let ep = episodes[i];
            let mut emit = |m: usize, v: f64| {
                items.push(Item::Obs(Obs {
                    entity: self.ids[i].clone(),
                    metric: self.metrics[i][m].clone(),
                    time: t,
                    value: v,
                }))
            };
            let base = s.spec.base;
            match s.spec.kind {
                Kind::AirQuality => {
                    let normal = base * pm_cycle(h) * (1.0 + 0.15 * s.noise);
                    let pm25 = normal.max(ep.1 * ep.0).max(1.0);
                    emit(0, round(pm25, 1));
                    emit(1, round(pm25 * 1.55 + 4.0 * s.noise.abs(), 1));
                    let temp = 24.5 + 4.5 * ((h - 9.0) / 24.0 * 2.0 * PI).sin() + 0.4 * s.noise;
                    emit(2, round(temp, 1));
                    emit(
                        3,
                        round(
                            (82.0 - 2.6 * (temp - 24.0) + 3.0 * s.noise).clamp(35.0, 100.0),
                            0,
                        ),
                    );
                }
                Kind::WaterLevel => {
                    let tide = if base < 1.0 {
                        0.35 * (h / 12.42 * 2.0 * PI).sin()
                    } else {
                        0.0
                    };
                    let level = base + tide + 0.05 * s.noise + ep.1 * ep.0;
                    emit(0, round(level.max(0.0), 2));
                }
                Kind::Rain => {
                    // Light showers come and go; a cloudburst is the episode.
                    if s.shower <= 0.0 && self.rng.random::<f64>() < dt_s / 7200.0 {
                        s.shower = self.rng.random_range(0.5..12.0);
                    } else if s.shower > 0.0 && self.rng.random::<f64>() < dt_s / 1800.0 {
                        s.shower = 0.0;
                    }
                    let rain = (s.shower * (1.0 + 0.3 * s.noise)).max(0.0) + ep.1 * ep.0;
                    emit(0, round(rain, 1));
                }
                Kind::Traffic => {
                    let capacity = base * 1.6;
                    let mut intensity = base * traffic_cycle(h) * (1.0 + 0.08 * s.noise);
                    let free = s.spec.entity.attr_f64("free_speed").unwrap_or(50.0);
                    let load = (intensity / capacity).min(1.0);
                    let mut speed = free * (1.0 - 0.55 * load * load) * (1.0 + 0.05 * s.noise);
                    if ep.0 > 0.0 {
                        intensity *= 1.0 - 0.6 * ep.0;
                        speed = speed * (1.0 - ep.0) + ep.1 * ep.0;
                    }
                    emit(0, intensity.max(0.0).round());
                    emit(1, round(speed.max(1.0), 1));
                }
                Kind::Camera => {
                    emit(0, if ep.0 > 0.0 { 0.0 } else { 1.0 });
                }
            }
        }
        items
    }
}

fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

/// The source task.
pub async fn run(config: SimulatorConfig, ctx: SourceCtx) {
    let mut sim = Simulation::new(&config, ctx.clock.now());
    tracing::info!(
        "simulator {:?}: Nghệ An demo with {} entities every {:?}",
        ctx.name,
        sim.len(),
        config.interval
    );
    ctx.health.set_state(ioc_model::SourceState::Connected);
    match ctx.sender.ingest(&ctx.name, sim.registrations()).await {
        Ok(r) if !r.rejected.is_empty() => {
            tracing::warn!("simulator: {} registrations refused", r.rejected.len())
        }
        Ok(_) => {}
        Err(_) => return,
    }

    // Fill in history back to the last run, at most `backfill` long.
    let now = ctx.clock.now();
    let horizon = now - ChronoDuration::from_std(config.backfill).unwrap_or_default();
    let last_seen = sim
        .ids()
        .iter()
        .filter_map(|id| ctx.hub.entity(id).and_then(|e| e.last_seen))
        .max();
    let step = ChronoDuration::from_std(config.interval.max(std::time::Duration::from_secs(60)))
        .unwrap_or(ChronoDuration::minutes(1));
    let mut t = last_seen.unwrap_or(horizon).max(horizon) + step;
    if t < now {
        tracing::info!("simulator: filling in history from {t}");
        let mut pending = Vec::new();
        while t < now {
            pending.extend(sim.step(t, t >= now - EVENTFUL_TAIL));
            if pending.len() >= 4096 && send(&ctx, std::mem::take(&mut pending)).await.is_err() {
                return;
            }
            t += step;
        }
        if !pending.is_empty() && send(&ctx, pending).await.is_err() {
            return;
        }
    }

    let mut interval = tokio::time::interval(config.interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ctx.cancel.cancelled() => {
                ctx.health.set_state(ioc_model::SourceState::Disconnected);
                break;
            }
            _ = interval.tick() => {
                let items = sim.step(ctx.clock.now(), true);
                if send(&ctx, items).await.is_err() {
                    break;
                }
            }
        }
    }
}

async fn send(ctx: &SourceCtx, items: Vec<Item>) -> Result<(), ()> {
    ctx.health.message(ctx.clock.now());
    ctx.sender
        .send(Ingest::new(ctx.name.clone(), items))
        .await
        .map_err(|_| ())
}

/// The Nghệ An demo scenario (`kind = "simulator"`): about 300 stations, gauges, counters and
/// cameras at real places, with daily cycles and occasional episodes that make rules fire.
#[derive(serde::Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorConfig {
    pub name: String,
    pub enabled: bool,
    /// Every entity reports once per interval.
    #[serde(with = "humantime_serde")]
    pub interval: std::time::Duration,
    /// Random seed: the same seed places the same entities.
    pub seed: u64,
    /// Multiplies the number of entities (1.0 ≈ 300).
    pub scale: f64,
    /// Mean time between two episodes (pollution spike, rising river, camera down, …).
    #[serde(with = "humantime_serde")]
    pub episode_every: std::time::Duration,
    /// Mean length of an episode.
    #[serde(with = "humantime_serde")]
    pub episode_length: std::time::Duration,
    /// On first start (or after a gap), history generated back to this long ago.
    #[serde(with = "humantime_serde")]
    pub backfill: std::time::Duration,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            name: "demo".into(),
            enabled: true,
            interval: std::time::Duration::from_secs(5),
            seed: 40,
            scale: 1.0,
            episode_every: std::time::Duration::from_secs(4 * 60),
            episode_length: std::time::Duration::from_secs(25 * 60),
            backfill: std::time::Duration::from_secs(6 * 3600),
        }
    }
}

impl super::Source for SimulatorConfig {
    fn name(&self) -> &str {
        &self.name
    }
    fn enabled(&self) -> bool {
        self.enabled
    }
    fn max_age(&self) -> Option<std::time::Duration> {
        None
    }
    fn validate(&self) -> Result<(), String> {
        if self.interval.is_zero() {
            return Err("interval must be more than 0".into());
        }
        if !(self.scale > 0.0 && self.scale <= 100.0) {
            return Err("scale must be in (0, 100]".into());
        }
        Ok(())
    }
    fn detail(&self) -> Option<String> {
        Some(format!(
            "Nghệ An demo, every {}",
            humantime::format_duration(self.interval)
        ))
    }
    fn spawn(&self, ctx: SourceCtx) -> tokio::task::JoinHandle<()> {
        let c = self.clone();
        tokio::spawn(async move { run(c, ctx).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(items: &[Item], metric: &str) -> Vec<f64> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Obs(o) if &*o.metric == metric => Some(o.value),
                _ => None,
            })
            .collect()
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn calm_values_are_plausible() {
        let cfg = SimulatorConfig::default();
        let mut sim = Simulation::new(&cfg, t("2026-11-26T00:00:00Z"));
        for hour in 0..24 {
            let items = sim.step(
                t("2026-11-26T00:00:00Z") + ChronoDuration::hours(hour),
                false,
            );
            for v in values(&items, "pm25") {
                assert!((1.0..150.0).contains(&v), "calm PM2.5 {v}");
            }
            for v in values(&items, "water_level") {
                assert!((0.0..8.0).contains(&v), "calm level {v}");
            }
            for v in values(&items, "online") {
                assert_eq!(v, 1.0);
            }
            for v in values(&items, "speed") {
                assert!((1.0..80.0).contains(&v), "speed {v}");
            }
        }
    }

    #[test]
    fn rush_hour_has_more_traffic_than_night() {
        let cfg = SimulatorConfig::default();
        let mut sim = Simulation::new(&cfg, t("2026-11-26T00:00:00Z"));
        // 07:30 local is 00:30 UTC; 02:00 local is 19:00 UTC.
        let rush: f64 = values(&sim.step(t("2026-11-26T00:30:00Z"), false), "intensity")
            .iter()
            .sum();
        let night: f64 = values(&sim.step(t("2026-11-26T19:00:00Z"), false), "intensity")
            .iter()
            .sum();
        assert!(rush > 3.0 * night, "rush {rush} night {night}");
    }

    #[test]
    fn episodes_cross_the_demo_thresholds() {
        let cfg = SimulatorConfig::default();
        let start = t("2026-11-26T03:00:00Z");
        let mut sim = Simulation::new(&cfg, start);
        let find = |sim: &Simulation, kind: Kind| {
            sim.entities
                .iter()
                .position(|s| s.spec.kind == kind)
                .unwrap()
        };
        let (aq, wl, cam) = (
            find(&sim, Kind::AirQuality),
            find(&sim, Kind::WaterLevel),
            find(&sim, Kind::Camera),
        );
        for i in [aq, wl, cam] {
            sim.start_episode(i, start);
        }
        let mid = start + ChronoDuration::seconds((cfg.episode_length.as_secs() / 3) as i64);
        let items = sim.step(mid, false);
        let of = |i: usize, metric: &str| {
            items.iter().find_map(|it| match it {
                Item::Obs(o) if *o.entity == *sim.ids()[i] && &*o.metric == metric => Some(o.value),
                _ => None,
            })
        };
        assert!(of(aq, "pm25").unwrap() > 150.0);
        let gauge = &sim.entities[wl].spec.entity;
        assert!(of(wl, "water_level").unwrap() >= gauge.attr_f64("alarm_1").unwrap());
        assert_eq!(of(cam, "online"), Some(0.0));
        // And it ends.
        let after = sim.step(
            start + ChronoDuration::seconds(cfg.episode_length.as_secs() as i64 * 2),
            false,
        );
        assert!(values(&after, "online").iter().all(|&v| v == 1.0));
    }

    fn under_way(sim: &mut Simulation, t: DateTime<Utc>) -> Vec<usize> {
        sim.episodes_at(t, true)
            .iter()
            .enumerate()
            .filter(|(_, e)| e.0 > 0.0)
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn episodes_start_at_the_configured_rate() {
        let cfg = SimulatorConfig {
            episode_every: std::time::Duration::from_secs(60),
            episode_length: std::time::Duration::from_secs(30),
            ..Default::default()
        };
        let start = t("2026-11-26T03:00:00Z");
        let mut sim = Simulation::new(&cfg, start);
        let drawn: usize = (0..100).map(|k| sim.draw_slot(29_650_000 + k).len()).sum();
        // 100 minutes at one a minute: about 100.
        assert!((70..=130).contains(&drawn), "{drawn} episodes");
        // At any moment about length/every of them are under way.
        let busy: usize = (0..100)
            .map(|i| under_way(&mut sim, start + ChronoDuration::seconds(i * 60 + 7)).len())
            .sum();
        assert!((20..=90).contains(&busy), "{busy}");
    }

    #[test]
    fn a_restarted_simulation_continues_the_same_episodes() {
        let cfg = SimulatorConfig::default();
        let t0 = t("2026-11-26T03:00:00Z");
        let mut first = Simulation::new(&cfg, t0);
        let later = t0 + ChronoDuration::minutes(37);
        let mut restarted = Simulation::new(&cfg, t0 + ChronoDuration::minutes(30));
        let a = under_way(&mut first, later);
        assert!(!a.is_empty(), "some episode is under way");
        assert_eq!(a, under_way(&mut restarted, later));
        let mut other_seed = Simulation::new(&SimulatorConfig { seed: 7, ..cfg }, t0);
        assert_ne!(a, under_way(&mut other_seed, later));
    }
}
