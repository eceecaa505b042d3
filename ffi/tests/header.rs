//! The committed include/flashsampling.h must be what the pinned cbindgen generates from ffi/src.
//! `FLASHSAMPLING_BLESS=1` rewrites it instead.

use std::path::Path;

#[test]
fn committed_header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("ffi/cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen failed on ffi/src")
        .write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();

    let committed_path = crate_dir.join("../include/flashsampling.h");
    if std::env::var_os("FLASHSAMPLING_BLESS").is_some() {
        std::fs::write(&committed_path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/flashsampling.h is stale; regenerate it with \
         FLASHSAMPLING_BLESS=1 cargo test -p flashsampling-ffi --test header"
    );
}
