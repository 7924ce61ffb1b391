//! The files carried in the binary against the repository's.

use std::path::Path;

/// Every file of both SDKs is carried: a new module in the repository
/// must be added above, or a generated project would not build.
#[test]
fn every_sdk_file_is_embedded() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (dir, ext, prefix, embedded) in [
        ("plugins/sdk/src", "rs", "src/", super::RUST_SDK),
        ("plugins/python/grantpool_plugin", "py", "grantpool_plugin/", super::PYTHON_SDK),
    ] {
        let mut on_disk: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .map(|p| format!("{prefix}{}", p.file_name().unwrap().to_string_lossy()))
            .collect();
        on_disk.sort();
        let mut carried: Vec<String> = embedded.iter().map(|(p, _)| p.to_string()).collect();
        carried.sort();
        assert_eq!(on_disk, carried, "{dir}: embedded.rs must list every file");
    }
}
