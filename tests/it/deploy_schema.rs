//! The Kubernetes manifests against the Kubernetes API's own schemas, strictly (a field the
//! API does not know is an error, as `kubectl apply --validate=strict` makes it), with
//! `kubernetes-validate` from PyPI, which carries the schemas (`.ci/run` installs it, pinned).
//! No cluster runs here; this is what can be checked of a manifest without one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::deploy::read;

/// The oldest Kubernetes still common in production and the newest the tool knows.
const VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

fn k8s_manifests() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/k8s")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "manifests: {files:?}");
    files
}

fn validate(files: &[PathBuf], version: &str) -> Output {
    Command::new("python3")
        .args([
            "-m",
            "kubernetes_validate",
            "--strict",
            "--quiet",
            "-k",
            version,
        ])
        .args(files)
        .output()
        .expect("run python3")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn every_k8s_manifest_passes_the_kubernetes_schema_strictly() {
    let files = k8s_manifests();
    for version in VERSIONS {
        let out = validate(&files, version);
        assert!(
            out.status.success(),
            "Kubernetes {version} (needs `pip install kubernetes-validate`, see .ci/run):\n{}",
            text(&out)
        );
    }
}

#[test]
fn the_schema_check_refuses_a_misspelled_field() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s/deployment.yaml");
    let good = read(&manifest);
    assert!(
        good.contains("readOnlyRootFilesystem"),
        "deployment changed"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("deployment.yaml");
    std::fs::write(
        &bad,
        good.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem"),
    )
    .expect("write");
    let out = validate(&[bad], VERSIONS[1]);
    assert!(!out.status.success(), "accepted:\n{}", text(&out));
    assert!(
        text(&out).contains("'readOnlyRootFileSystem' was unexpected"),
        "{}",
        text(&out)
    );
}
