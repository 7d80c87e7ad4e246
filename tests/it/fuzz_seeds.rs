//! Runs the committed seed corpus (`fuzz/seeds/<target>/`) through every check under a
//! stable `cargo test`, so the properties hold in CI even where cargo-fuzz cannot run.

use std::path::Path;

use crate::fuzz_checks::TARGETS;

#[test]
fn every_seed_passes_its_target() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    for (name, check) in TARGETS {
        let dir = seeds.join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("seed dir entry").path());
        let mut count = 0;
        for path in entries {
            let data = std::fs::read(&path).expect("seed file");
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{name}: {} fails", path.display());
            count += 1;
        }
        assert!(count > 0, "{name}: no seeds in {}", dir.display());
    }
}
