//! The cameras screen: a grid of 1, 4 or 9 cameras, driven from the keyboard as a video
//! management system's viewer is. Every camera with a picture (a stream or a still) can be
//! shown, those with a stream first; the grid pages through them, any cell can be set to
//! another camera, and the layout and the cells chosen are kept on this workstation.
//!
//! Keys: `g` 1/4/9, arrows move the focused cell, `n`/`p` the next/previous camera in it,
//! `]`/`[` (or PageDown/PageUp) the next/previous page, `Enter` the focused camera alone and
//! back, `v` saves an evidence clip of it, `o` shows it on the map.

use super::app::Ops;
use crate::api::{local_storage_get, local_storage_set};
use crate::client;
use crate::i18n::use_i18n;
use crate::state::{Live, Selection, View};
use ioc_model::camera::{has_live, has_still};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::{Deserialize, Serialize};

const KEY: &str = "ioc.cameras.grid";

/// The grid as kept on this workstation.
#[derive(Clone, Copy)]
pub struct Grid {
    /// 1, 4 or 9 cells.
    pub layout: RwSignal<usize>,
    pub focus: RwSignal<usize>,
    pub page: RwSignal<usize>,
    /// Cells set to a camera of their own (else the page's camera).
    pub chosen: RwSignal<Vec<Option<String>>>,
    /// The one camera shown alone (`Enter`), and the layout to go back to.
    pub alone: RwSignal<Option<(String, usize)>>,
}

#[derive(Serialize, Deserialize, Default)]
struct Kept {
    layout: usize,
    page: usize,
    chosen: Vec<Option<String>>,
}

impl Grid {
    pub fn new() -> Grid {
        let kept: Kept = local_storage_get(KEY)
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let layout = if matches!(kept.layout, 1 | 4 | 9) {
            kept.layout
        } else {
            4
        };
        Grid {
            layout: RwSignal::new(layout),
            focus: RwSignal::new(0),
            page: RwSignal::new(kept.page),
            chosen: RwSignal::new(kept.chosen),
            alone: RwSignal::new(None),
        }
    }

    fn keep(&self) {
        let k = Kept {
            layout: self.layout.get_untracked(),
            page: self.page.get_untracked(),
            chosen: self.chosen.get_untracked(),
        };
        if let Ok(s) = serde_json::to_string(&k) {
            local_storage_set(KEY, &s);
        }
    }
}

/// Every camera with a picture: (id, name, has a stream), those with a stream first.
fn cameras(live: Live) -> Vec<(String, String, bool)> {
    let mut v: Vec<(String, String, bool)> = live.entities.with(|m| {
        m.values()
            .filter(|e| has_live(e) || has_still(e))
            .map(|e| (e.id.clone(), e.name.clone(), has_live(e)))
            .collect()
    });
    v.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)).then(a.0.cmp(&b.0)));
    v
}

/// What each cell shows: (camera, has a stream).
fn cells(grid: Grid, all: &[(String, String, bool)]) -> Vec<Option<(String, bool)>> {
    if let Some((cam, _)) = grid.alone.get() {
        let live = all.iter().find(|c| c.0 == cam).is_some_and(|c| c.2);
        return vec![Some((cam, live))];
    }
    let n = grid.layout.get();
    let page = grid.page.get();
    let chosen = grid.chosen.get();
    (0..n)
        .map(|i| {
            let own = chosen.get(i).cloned().flatten();
            match own.and_then(|id| all.iter().find(|c| c.0 == id)) {
                Some(c) => Some((c.0.clone(), c.2)),
                None => all.get(page * n + i).map(|c| (c.0.clone(), c.2)),
            }
        })
        .collect()
}

/// The cameras screen's keys.
pub fn on_key(key: &str, ops: Ops, live: Live, sel: Selection, grid: Grid) -> bool {
    let all = cameras(live);
    let n = grid.layout.get_untracked();
    let side = (n as f64).sqrt() as usize;
    let focus = grid.focus.get_untracked().min(n - 1);
    let shown = {
        let c = untrack(|| cells(grid, &all));
        c.get(focus.min(c.len().saturating_sub(1)))
            .cloned()
            .flatten()
    };
    let pages = all.len().div_ceil(n).max(1);
    match key {
        "g" => {
            let next = match n {
                1 => 4,
                4 => 9,
                _ => 1,
            };
            grid.alone.set(None);
            grid.layout.set(next);
            grid.focus.set(0);
            grid.page.set(0);
        }
        "ArrowRight" => grid.focus.set((focus + 1).min(n - 1)),
        "ArrowLeft" => grid.focus.set(focus.saturating_sub(1)),
        "ArrowDown" => grid.focus.set((focus + side).min(n - 1)),
        "ArrowUp" => grid.focus.set(focus.saturating_sub(side)),
        "]" | "PageDown" => {
            grid.page.set((grid.page.get_untracked() + 1) % pages);
            grid.chosen.set(Vec::new());
        }
        "[" | "PageUp" => {
            grid.page
                .set((grid.page.get_untracked() + pages - 1) % pages);
            grid.chosen.set(Vec::new());
        }
        "n" | "p" if !all.is_empty() => {
            let at = shown
                .as_ref()
                .and_then(|(id, _)| all.iter().position(|c| &c.0 == id));
            let next = match (key, at) {
                ("n", Some(i)) => (i + 1) % all.len(),
                ("p", Some(i)) => (i + all.len() - 1) % all.len(),
                _ => 0,
            };
            grid.chosen.update(|c| {
                c.resize(n.max(c.len()), None);
                c[focus] = Some(all[next].0.clone());
            });
        }
        "Enter" => match grid.alone.get_untracked() {
            Some(_) => grid.alone.set(None),
            None => {
                if let Some((id, _)) = shown {
                    grid.alone.set(Some((id, n)));
                }
            }
        },
        "Escape" if grid.alone.get_untracked().is_some() => grid.alone.set(None),
        "v" => match shown {
            Some((id, true)) => {
                spawn_local(async move {
                    match client::cameras::save_clip(&id, &ioc_model::ClipRequest::default()).await
                    {
                        Ok(c) => ops.toast(
                            ops.i18n().tr_with(
                                "clip-started",
                                &[
                                    ("n", 1u64.into()),
                                    ("before", u64::from(c.before_s).into()),
                                    ("after", u64::from(c.after_s).into()),
                                ],
                            ),
                            false,
                        ),
                        Err(e) => ops.toast(ops.i18n().tr_n("action-failed", "error", e), true),
                    }
                });
            }
            _ => ops.toast(ops.i18n().tr("clip-no-camera"), true),
        },
        "o" => {
            if let Some((id, _)) = shown {
                sel.view.set(View::Operations);
                ops.select_entity(Some(id), true);
            }
        }
        _ => return false,
    }
    grid.keep();
    true
}

#[component]
pub fn CamerasView() -> impl IntoView {
    let i18n = use_i18n();
    let live = expect_context::<Live>();
    let grid = expect_context::<Grid>();
    let all = Memo::new(move |_| cameras(live));
    let shown = Memo::new(move |_| all.with(|a| cells(grid, a)));
    let layout = move || {
        if grid.alone.get().is_some() {
            1
        } else {
            grid.layout.get()
        }
    };
    let name_of = move |id: &str| {
        all.with(|a| {
            a.iter()
                .find(|c| c.0 == id)
                .map(|c| c.1.clone())
                .unwrap_or_default()
        })
    };
    let pages = move || all.with(|a| a.len().div_ceil(grid.layout.get()).max(1));
    view! {
        <section class="page cameras-page" id="cameras-page">
            <header class="page-head">
                <h1>{move || i18n.tr("view-cameras")}</h1>
                <div class="page-actions">
                    {[1usize, 4, 9].into_iter().map(|n| view! {
                        <button
                            class="btn small"
                            class:primary=move || layout() == n
                            id=format!("grid-{n}")
                            on:click=move |_| {
                                grid.alone.set(None);
                                grid.layout.set(n);
                                grid.focus.set(0);
                                grid.page.set(0);
                                grid.keep();
                            }
                        >{n}</button>
                    }).collect_view()}
                    <span class="muted" id="grid-page">
                        {move || format!("{} {}/{} · {} camera", i18n.tr("grid-page"), grid.page.get() + 1, pages(), all.with(|a| a.len()))}
                    </span>
                    <span class="muted keys">{move || i18n.tr("grid-keys")}</span>
                </div>
            </header>
            <Show when=move || all.with(|a| !a.is_empty()) fallback=move || view! { <p class="muted">{i18n.tr("grid-none")}</p> }>
                <div class="camera-grid" id="camera-grid" data-layout=layout style=move || {
                    let side = (layout() as f64).sqrt() as usize;
                    format!("grid-template-columns: repeat({side}, 1fr); grid-template-rows: repeat({side}, 1fr);")
                }>
                    {move || shown.get().into_iter().enumerate().map(|(i, cell)| {
                        let focused = move || grid.alone.get().is_some() || grid.focus.get() == i;
                        match cell {
                            Some((cam, is_live)) => {
                                let name = name_of(&cam);
                                view! {
                                    <div class="grid-cell" class:focused=focused data-camera=cam.clone() data-focused=move || focused().to_string()
                                        on:click=move |_| grid.focus.set(i)>
                                        <crate::still::CameraView camera=cam.clone() live=is_live/>
                                        // A still names its camera itself (cameras burn their
                                        // name in, the demo's drawing has it).
                                        {is_live.then(|| view! { <div class="grid-name">{name}</div> })}
                                    </div>
                                }.into_any()
                            }
                            None => view! {
                                <div class="grid-cell empty" class:focused=focused data-focused=move || focused().to_string()
                                    on:click=move |_| grid.focus.set(i)></div>
                            }.into_any(),
                        }
                    }).collect_view()}
                </div>
            </Show>
        </section>
    }
}
