#![no_main]
//! See `ioc_fuzz::run` for what this target checks.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ioc_fuzz::run("decode_csv", data);
});
