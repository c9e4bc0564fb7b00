//! Vietnamese first, English second, with Fluent (`ui/locales/*.ftl`). Every visible string
//! goes through [`I18n::tr`]; reading it inside a reactive closure re-renders on a switch.

use fluent_bundle::{FluentArgs, FluentBundle, FluentResource, FluentValue};
use leptos::prelude::*;
use unic_langid::langid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Vi,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "vi" => Some(Lang::Vi),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// BCP 47 tag for number and date formatting.
    pub fn locale(self) -> &'static str {
        match self {
            Lang::Vi => "vi-VN",
            Lang::En => "en-GB",
        }
    }
}

fn bundle(lang: Lang) -> FluentBundle<FluentResource> {
    let (id, src) = match lang {
        Lang::Vi => (langid!("vi"), include_str!("../locales/vi.ftl")),
        Lang::En => (langid!("en"), include_str!("../locales/en.ftl")),
    };
    let mut b = FluentBundle::new(vec![id]);
    // No Unicode isolation marks around arguments: they show up as boxes in some fonts.
    b.set_use_isolating(false);
    b.add_resource(FluentResource::try_new(src.to_string()).expect("valid FTL"))
        .expect("no duplicate messages");
    b
}

thread_local! {
    static BUNDLES: (FluentBundle<FluentResource>, FluentBundle<FluentResource>) =
        (bundle(Lang::Vi), bundle(Lang::En));
}

/// Translates outside the reactive system.
pub fn translate(lang: Lang, key: &str, args: Option<&FluentArgs>) -> String {
    BUNDLES.with(|(vi, en)| {
        let b = if lang == Lang::Vi { vi } else { en };
        match b.get_message(key).and_then(|m| m.value()) {
            Some(pattern) => {
                let mut errors = vec![];
                b.format_pattern(pattern, args, &mut errors).into_owned()
            }
            None => key.to_string(),
        }
    })
}

/// The current language, shared by every component.
#[derive(Clone, Copy)]
pub struct I18n {
    pub lang: RwSignal<Lang>,
}

impl I18n {
    pub fn tr(&self, key: &str) -> String {
        translate(self.lang.get(), key, None)
    }

    /// Like [`I18n::tr`], or `fallback` when the key is unknown (e.g. a metric we have no
    /// label for).
    pub fn tr_or(&self, key: &str, fallback: &str) -> String {
        let s = self.tr(key);
        if s == key {
            fallback.to_string()
        } else {
            s
        }
    }

    pub fn tr_n(&self, key: &str, name: &str, n: impl Into<FluentValue<'static>>) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_string(), n.into());
        translate(self.lang.get(), key, Some(&args))
    }

    /// With several arguments.
    pub fn tr_with(&self, key: &str, args: &[(&str, FluentValue<'static>)]) -> String {
        let mut a = FluentArgs::new();
        for (k, v) in args {
            a.set(k.to_string(), v.clone());
        }
        translate(self.lang.get(), key, Some(&a))
    }

    pub fn toggle(&self) {
        self.lang.update(|l| {
            *l = match l {
                Lang::Vi => Lang::En,
                Lang::En => Lang::Vi,
            }
        });
        let _ = crate::api::local_storage_set("ioc.lang", self.lang.get_untracked().code());
        if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
            if let Some(html) = doc.document_element() {
                let _ = html.set_attribute("lang", self.lang.get_untracked().code());
            }
        }
    }
}

pub fn use_i18n() -> I18n {
    expect_context::<I18n>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key exists in both languages.
    #[test]
    fn both_languages_have_the_same_keys() {
        let keys = |src: &str| -> Vec<String> {
            src.lines()
                .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim().to_string()))
                .collect()
        };
        let vi = keys(include_str!("../locales/vi.ftl"));
        let en = keys(include_str!("../locales/en.ftl"));
        assert_eq!(vi, en);
        assert_eq!(translate(Lang::Vi, "ack", None), "Xác nhận");
        let mut a = FluentArgs::new();
        a.set("n", 3);
        assert_eq!(translate(Lang::En, "ago-min", Some(&a)), "3 min ago");
    }
}
