//! The synthetic generator: determinism, the contract, and planted figures.

use std::collections::{HashMap, HashSet};

use kith::intake::check::check_export;
use kith::progress::Progress;
use kith::synth::{SynthConfig, generate};

use crate::support::{export_files, read_table, synth, truth};

#[test]
fn same_seed_gives_identical_bytes() {
    let (a, _) = synth(3_000, 7, 0.01);
    let (b, _) = synth(3_000, 7, 0.01);
    for (left, right) in export_files(a.path()).iter().zip(export_files(b.path())) {
        let left_bytes = std::fs::read(left).unwrap();
        assert!(!left_bytes.is_empty());
        assert!(left_bytes == std::fs::read(&right).unwrap(), "{} differs", left.display());
    }
}

#[test]
fn output_does_not_depend_on_thread_count() {
    let (parallel, _) = synth(5_000, 11, 0.0);
    let single = tempfile::tempdir().unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    pool.install(|| generate(&SynthConfig::new(5_000, 11), single.path(), &Progress::hidden()))
        .unwrap();
    for (left, right) in export_files(parallel.path()).iter().zip(export_files(single.path())) {
        assert!(std::fs::read(left).unwrap() == std::fs::read(&right).unwrap());
    }
}

#[test]
fn different_seeds_give_different_data() {
    let (a, _) = synth(2_000, 1, 0.0);
    let (b, _) = synth(2_000, 2, 0.0);
    for table in ["people.csv", "ties.csv", "consents.csv", "decisions.csv"] {
        let left = std::fs::read(a.path().join(table)).unwrap();
        let right = std::fs::read(b.path().join(table)).unwrap();
        assert_ne!(left, right, "{table} is the same for two seeds");
    }
}

#[test]
fn clean_export_keeps_every_rule_of_the_contract() {
    let (dir, summary) = synth(4_000, 3, 0.0);

    // Row-level rules, checked by the same code intake uses.
    let checks = check_export(dir.path(), 5).unwrap();
    for check in &checks {
        assert_eq!(check.problem_rows(), 0, "{}: {:?}", check.table, check.problems);
    }
    assert_eq!(checks[0].rows, summary.people);
    assert_eq!(checks[3].rows, summary.decisions);

    // Cross-row rules, which only ingest will check.
    let people = read_table(&dir.path().join("people.csv"));
    let ids: HashSet<&str> = people.iter().map(|p| p["source_id"].as_str()).collect();
    assert_eq!(ids.len(), people.len(), "source_id is unique");
    let pairs: HashSet<(&str, &str)> =
        people.iter().map(|p| (p["dob"].as_str(), p["ssn_last4"].as_str())).collect();
    assert_eq!(pairs.len(), people.len(), "identity pairs are unique");
    assert!(people.iter().any(|p| p["community"].contains(',')), "some names need quoting");

    let ties = read_table(&dir.path().join("ties.csv"));
    let mut seen = HashSet::new();
    for tie in &ties {
        assert!(ids.contains(tie["from_id"].as_str()) && ids.contains(tie["to_id"].as_str()));
        assert_ne!(tie["from_id"], tie["to_id"]);
        assert!(seen.insert((&tie["from_id"], &tie["to_id"], &tie["kind"])), "duplicate tie");
    }
    for table in ["consents.csv", "decisions.csv"] {
        for row in read_table(&dir.path().join(table)) {
            assert!(ids.contains(row["source_id"].as_str()), "{table} names an unknown person");
        }
    }
    let decisions = read_table(&dir.path().join("decisions.csv"));
    assert!(decisions.iter().all(|d| ("2026-01-05".."2026-03-02").contains(&d["date"].as_str())));
}

#[test]
fn planted_network_and_consent_figures_land_near_their_targets() {
    let people_count = 20_000;
    let (dir, summary) = synth(people_count, 5, 0.0);
    let truth = truth(dir.path());

    // Nominations: roughly 8 to 12 per person, with a long tail and many returned ties.
    let mean = summary.ties as f64 / people_count as f64;
    assert!((8.0..=12.0).contains(&mean), "mean nominations {mean}");
    let ties = read_table(&dir.path().join("ties.csv"));
    let mut out_degree: HashMap<&str, usize> = HashMap::new();
    for tie in &ties {
        *out_degree.entry(tie["from_id"].as_str()).or_default() += 1;
    }
    let max = *out_degree.values().max().unwrap() as f64;
    assert!(max > 3.0 * mean, "no realistic tail: max {max}, mean {mean}");
    let kinds: HashSet<&str> = ties.iter().map(|t| t["kind"].as_str()).collect();
    assert_eq!(kinds.len(), 6, "every tie kind appears: {kinds:?}");
    let mutual = truth["network"]["mutual_share"].as_f64().unwrap();
    assert!((0.2..0.8).contains(&mutual), "mutual share {mutual}");
    let mixing = truth["network"]["mixing"].as_f64().unwrap();
    assert!((0.1..0.45).contains(&mixing), "planted mixing {mixing}");

    // Communities: about sqrt(n) / 3 of them, of uneven size, covering everyone.
    let communities = truth["communities"].as_array().unwrap();
    assert_eq!(communities.len(), ((people_count as f64).sqrt() / 3.0).round() as usize);
    let sizes: Vec<u64> = communities.iter().map(|c| c["people"].as_u64().unwrap()).collect();
    assert_eq!(sizes.iter().sum::<u64>(), people_count as u64);
    let (small, large) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    assert!(*large > 4 * small, "community sizes too even: {small}..{large}");

    // Consent: network scope active for about 0.97 * 0.85 * 0.94 of people.
    let consents = read_table(&dir.path().join("consents.csv"));
    let active_network =
        consents.iter().filter(|c| c["scope"] == "network" && c["revoked"].is_empty()).count()
            as f64
            / people_count as f64;
    assert!((active_network - 0.775).abs() < 0.02, "active network consent {active_network}");
    let revoked =
        consents.iter().filter(|c| !c["revoked"].is_empty()).count() as f64 / consents.len() as f64;
    assert!((revoked - 0.06).abs() < 0.01, "revocation share {revoked}");

    // Decisions: about three per person-week over eight weeks.
    let per_week = summary.decisions as f64 / people_count as f64 / 8.0;
    assert!((per_week - 3.0).abs() < 0.15, "decisions per person-week {per_week}");
}

#[test]
fn planted_effects_are_visible_in_the_decisions() {
    let (dir, _) = synth(20_000, 9, 0.0);
    let decisions = read_table(&dir.path().join("decisions.csv"));

    // Pre-deciding is planted at +15 points in nutrition; raw contrasts are confounded by the
    // other factors, so only the sign and rough size are checked here.
    let rate = |flag: &str| {
        let rows: Vec<_> = decisions
            .iter()
            .filter(|d| d["domain"] == "nutrition" && d["pre_decided"] == flag)
            .collect();
        rows.iter().filter(|d| d["healthy"] == "1").count() as f64 / rows.len() as f64
    };
    let lift = rate("1") - rate("0");
    assert!((0.08..0.25).contains(&lift), "pre-decision lift {lift}");

    // Homophily: people in the same hidden cluster share orientation.
    let truth_people = read_table(&dir.path().join("truth_people.csv"));
    let mut by_cluster: HashMap<&str, Vec<f64>> = HashMap::new();
    for person in &truth_people {
        by_cluster
            .entry(person["cluster"].as_str())
            .or_default()
            .push(person["orientation"].parse().unwrap());
    }
    let means: Vec<f64> =
        by_cluster.values().map(|v| v.iter().sum::<f64>() / v.len() as f64).collect();
    let spread = (means.iter().map(|m| m * m).sum::<f64>() / means.len() as f64).sqrt();
    assert!((0.06..0.12).contains(&spread), "cluster orientation spread {spread}");
}

#[test]
fn every_planted_defect_is_recorded_where_the_contract_check_finds_it() {
    let (dir, summary) = synth(4_000, 13, 0.02);
    let truth = truth(dir.path());
    let expected = truth["expected_quarantine"].as_array().unwrap();
    assert_eq!(expected.len() as u64, summary.defects);

    // Reasons a single row reveals must be found by the row check, on the recorded line.
    let row_level = |reason: &str| {
        !matches!(
            reason,
            "person_quarantined"
                | "duplicate_tie"
                | "unknown_tie_end"
                | "unknown_person"
                | "duplicate_source_id"
                | "shared_identity"
                | "dob_in_future"
        )
    };
    let checks = check_export(dir.path(), usize::MAX).unwrap();
    let found: HashSet<(&str, u64, &str)> = checks
        .iter()
        .flat_map(|c| c.problems.iter().map(move |p| (c.table, p.line, p.reason.as_str())))
        .collect();
    let planted: HashSet<(&str, u64, &str)> = expected
        .iter()
        .map(|e| {
            (
                e["table"].as_str().unwrap(),
                e["line"].as_u64().unwrap(),
                e["reason"].as_str().unwrap(),
            )
        })
        .filter(|(_, _, reason)| row_level(reason))
        .collect();
    assert!(planted.len() > 50, "too few planted row defects: {}", planted.len());
    assert_eq!(found, planted, "row check and planted truth disagree");

    let reasons: HashSet<&str> = expected.iter().map(|e| e["reason"].as_str().unwrap()).collect();
    assert!(reasons.len() >= 15, "defects of too few kinds: {reasons:?}");
}
