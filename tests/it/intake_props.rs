//! Property tests of intake: random rows and random bytes never panic it, and whatever it
//! stores, every row read is accounted for exactly once.

use kith::intake::{self, IngestOptions};
use kith::progress::Progress;
use kith::workspace::Workspace;
use proptest::prelude::*;

const HEADERS: [&str; 4] = [
    "source_id,dob,ssn_last4,community,workplace,household,sex",
    "from_id,to_id,kind,weight,since",
    "source_id,scope,granted,revoked",
    "source_id,date,domain,healthy,schedule_conflict,planned_ahead,disrupted_environment,\
     with_others,decided_by_other,cost,minutes,pre_decided",
];
const NAMES: [&str; 4] = ["people", "ties", "consents", "decisions"];

/// A field: mostly plausible values so rows get far into the checks, sometimes anything.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "P1", "P2", "P3", "P4", "1980-01-01", "2026-01-05", "2027-01-01", "0042", "1",
            "0", "0.5", "friend", "network", "reports", "nutrition", "F", "North", "",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
        1 => "[a-z0-9,\"\\n\\r -]{0,12}",
    ]
}

fn table(width: usize) -> impl Strategy<Value = Vec<Vec<String>>> {
    prop::collection::vec(prop::collection::vec(field(), width - 2..=width + 1), 0..24)
}

fn ingest(files: &[Vec<u8>; 4]) -> (kith::Result<intake::IngestReport>, Vec<u64>) {
    let export = tempfile::tempdir().unwrap();
    let mut records = Vec::new();
    for (name, bytes) in NAMES.iter().zip(files) {
        std::fs::write(export.path().join(format!("{name}.csv")), bytes).unwrap();
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes.as_slice());
        records.push(reader.byte_records().flatten().count() as u64);
    }
    let workspace = tempfile::tempdir().unwrap();
    let ws = Workspace::init(&workspace.path().join("ws"), "steward").unwrap();
    let options = IngestOptions { export: export.path().to_owned(), as_of: None };
    (intake::ingest(&ws, &options, Progress::hidden()), records)
}

fn assert_accounted(result: &kith::Result<intake::IngestReport>, records: &[u64]) {
    let report = result.as_ref().expect("a valid header is never refused");
    for (entry, read) in report.manifest.accounting.iter().zip(records) {
        assert!(entry.count.balances(), "{}: {:?}", entry.table, entry.count);
        assert_eq!(entry.count.read, *read, "{}: every record is read", entry.table);
        let stored: u64 =
            report.manifest.tables.iter().find(|t| t.table == entry.table).unwrap().rows;
        assert_eq!(stored, entry.count.stored, "{}", entry.table);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_rows_are_stored_or_quarantined_never_lost(
        people in table(7), ties in table(5), consents in table(4), decisions in table(12),
    ) {
        let rows = [people, ties, consents, decisions];
        let files: [Vec<u8>; 4] = std::array::from_fn(|t| {
            let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
            writer.write_record(HEADERS[t].split(',')).unwrap();
            for row in &rows[t] {
                writer.write_record(row).unwrap();
            }
            writer.into_inner().unwrap()
        });
        let (result, records) = ingest(&files);
        assert_accounted(&result, &records);
    }

    #[test]
    fn random_bytes_after_a_header_never_panic(
        bodies in prop::array::uniform4(prop::collection::vec(any::<u8>(), 0..400)),
    ) {
        let files: [Vec<u8>; 4] = std::array::from_fn(|t| {
            let mut bytes = format!("{}\n", HEADERS[t]).into_bytes();
            bytes.extend_from_slice(&bodies[t]);
            bytes
        });
        let (result, records) = ingest(&files);
        match &result {
            Ok(_) => assert_accounted(&result, &records),
            Err(error) => prop_assert_eq!(error.exit_status().code(), 3, "{}", error),
        }
    }

    #[test]
    fn random_headers_are_refused_or_read_never_panic(
        header in "[a-z_, \"]{0,40}",
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut files: [Vec<u8>; 4] =
            std::array::from_fn(|t| format!("{}\n", HEADERS[t]).into_bytes());
        files[1] = format!("{header}\n").into_bytes();
        files[1].extend_from_slice(&body);
        let (result, _) = ingest(&files);
        if let Err(error) = &result {
            prop_assert!(matches!(error.exit_status().code(), 3), "{}", error);
        }
    }
}
