//! tauri.conf.json lives at the repository root, not in src-tauri/.
fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .config_path("../tauri.conf.json")
            .codegen(tauri_build::CodegenContext::new()),
    )
    .expect("tauri-build");
}
