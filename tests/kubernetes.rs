//! The Kubernetes manifests of `deploy/kubernetes/` validated offline against the schemas of a
//! pinned Kubernetes version (`kubernetes-validate`, installed by `scripts/kubeval` from pinned
//! versions), strictly (no unknown field), and shown to catch a broken one. Skipped with a note
//! when the package index cannot be reached, unless `HARNESS_REQUIRE_KUBEVAL=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Kubernetes version the manifests are written for (Indexed Jobs with
/// `backoffLimitPerIndex`, stable since 1.33).
const KUBERNETES: &str = "1.33.0";
const REQUIRE_VAR: &str = "HARNESS_REQUIRE_KUBEVAL";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `kubernetes-validate`, or `None` (skip) when the package index cannot be reached.
fn validator() -> Option<PathBuf> {
    let output = Command::new(root().join("scripts/kubeval"))
        .current_dir(root())
        .output()
        .expect("running scripts/kubeval");
    let said = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => Some(PathBuf::from(
            String::from_utf8_lossy(&output.stdout).trim(),
        )),
        Some(2) if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") => {
            panic!("{REQUIRE_VAR}=1, but scripts/kubeval cannot install the validator: {said}")
        }
        Some(2) => {
            eprintln!("note: skipping the manifest validation: {said}");
            None
        }
        _ => panic!("scripts/kubeval failed ({}): {said}", output.status),
    }
}

fn validate(validator: &Path, files: &[PathBuf]) -> Output {
    Command::new(validator)
        .args(["--strict", "--kubernetes-version", KUBERNETES])
        .args(files)
        .output()
        .expect("kubernetes-validate runs")
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("deploy/kubernetes"))
        .expect("deploy/kubernetes")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_manifests_are_valid_for_the_pinned_kubernetes_and_a_broken_one_is_caught() {
    let files = manifests();
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| Some(f.file_name()?.to_str()?.to_owned()))
        .collect();
    assert_eq!(
        names,
        ["merge.yaml", "results.yaml", "scenario.yaml", "shards.yaml"]
    );
    // What the validator cannot know: the fleet's size is said once for the Job and once for
    // the harness, and the merge reads the directory the scenario's name gives.
    let shards =
        std::fs::read_to_string(root().join("deploy/kubernetes/shards.yaml")).expect("shards.yaml");
    for wanted in [
        "completionMode: Indexed",
        "completions: 10",
        "parallelism: 10",
        "value: \"10\"",
        "--shard \"$((JOB_COMPLETION_INDEX + 1))/$SHARDS\"",
    ] {
        assert!(shards.contains(wanted), "shards.yaml lacks {wanted}");
    }
    let merge =
        std::fs::read_to_string(root().join("deploy/kubernetes/merge.yaml")).expect("merge.yaml");
    let scenario = std::fs::read_to_string(root().join("deploy/kubernetes/scenario.yaml"))
        .expect("scenario.yaml");
    assert!(scenario.contains("\n    name: fleet\n"));
    assert!(merge.contains("/results/$RUN/fleet/shard-*/result.json"));

    let Some(validator) = validator() else {
        return;
    };
    let output = validate(&validator, &files);
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // A misspelt field and a wrong type: each refused.
    let dir = std::env::temp_dir().join(format!("harness-kubeval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    for (name, from, to) in [
        (
            "misspelt.yaml",
            "completionMode: Indexed",
            "completionMod: Indexed",
        ),
        ("wrong-type.yaml", "completions: 10", "completions: ten"),
    ] {
        let broken = dir.join(name);
        std::fs::write(&broken, shards.replacen(from, to, 1)).expect("write");
        let output = validate(&validator, &[broken]);
        assert!(!output.status.success(), "{name} passed");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
