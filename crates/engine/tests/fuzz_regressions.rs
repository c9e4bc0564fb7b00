//! Every input with which the fuzzer (`cargo xtask fuzz`) crashed an entry point, fed again
//! to that entry point through the fuzz targets' own harness (`fuzz/src/lib.rs`, included
//! here as it is): each must now be taken or refused with a reason, never panic, and keep
//! every invariant the fuzzer checks.
//!
//! The inputs are `tests/fuzz_regressions/<target>/<name>` (minimized with `cargo fuzz
//! tmin`). Where the right answer is a refusal, `<name>.reason` holds words the reason must
//! contain.

#[allow(dead_code)]
#[path = "../../../fuzz/src/lib.rs"]
mod harness;
#[path = "common/missing.rs"]
mod missing;

use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions")
}

fn files(d: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(d)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn every_crash_found_by_fuzzing_is_fixed() {
    let mut ran = 0;
    for target_dir in files(&dir()) {
        if !target_dir.is_dir() {
            continue;
        }
        let target = target_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            harness::TARGETS.contains(&target.as_str()),
            "{}: no fuzz target {target:?} (one of {:?})",
            target_dir.display(),
            harness::TARGETS
        );
        for input in files(&target_dir) {
            if input.extension().is_some_and(|e| e == "reason") {
                continue;
            }
            let data = std::fs::read(&input).unwrap();
            let what = format!("{target}/{}", input.file_name().unwrap().to_string_lossy());
            let outcome = std::panic::catch_unwind(|| harness::run(&target, &data))
                .unwrap_or_else(|_| panic!("{what} still panics (see above)"));
            let mut reason_file = input.clone().into_os_string();
            reason_file.push(".reason");
            if let Ok(want) = std::fs::read_to_string(&reason_file) {
                match &outcome {
                    harness::Outcome::Refused(reason) => assert!(
                        reason.contains(want.trim()),
                        "{what}: refused with {reason:?}, expected it to say {:?}",
                        want.trim()
                    ),
                    other => panic!("{what}: {other:?}, expected a refusal saying {want:?}"),
                }
            }
            ran += 1;
        }
    }
    if ran == 0 {
        missing::missing(&format!(
            "{} holds no input: the fuzz regression inputs are missing",
            dir().display()
        ));
    }
    println!("{ran} fuzz regression inputs");
}
