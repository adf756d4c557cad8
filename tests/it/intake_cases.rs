//! The bad-input catalogue of `kith ingest`: one defect per case on a small hand-written
//! export in which everyone consented to everything, so every row that breaks no rule must be
//! stored. Each case states its exact outcome: refused with which error, or which lines are
//! quarantined with which reason and column.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use kith::Error;
use kith::intake::{self, IngestOptions, IngestReport};
use kith::progress::Progress;
use kith::workspace::Workspace;
use parquet::file::reader::{FileReader, SerializedFileReader};

const PEOPLE: &str = "source_id,dob,ssn_last4,community,workplace,household,sex
P1,1980-01-01,0001,North,W1,H1,F
P2,1981-02-02,0002,North,W1,H1,M
P3,1982-03-03,0003,South,W2,H2,X
P4,1983-04-04,0004,South,,H3,U
P5,1984-05-05,0005,East,W2,,
P6,1985-06-06,0006,East,W3,H4,F
";

const TIES: &str = "from_id,to_id,kind,weight,since
P1,P2,spouse,1,2010-05-01
P2,P1,spouse,,
P1,P3,friend,0.5,
P3,P4,coworker,0.8,2020-01-01
P4,P5,neighbor,,
P5,P6,family,1,
P6,P1,other,0.25,
P2,P3,friend,,
";

const DECISIONS_HEADER: &str = "source_id,date,domain,healthy,schedule_conflict,planned_ahead,\
disrupted_environment,with_others,decided_by_other,cost,minutes,pre_decided";

fn consents() -> String {
    let mut text = String::from("source_id,scope,granted,revoked\n");
    for person in 1..=6 {
        for scope in ["network", "reports", "research"] {
            text.push_str(&["P", &person.to_string(), ",", scope, ",2025-01-01,\n"].concat());
        }
    }
    text
}

fn decisions() -> String {
    let mut text = format!("{DECISIONS_HEADER}\n");
    for person in 1..=6 {
        for rest in
            ["2026-01-05,nutrition,1,0,1,0,0,0,4.50,10,0", "2026-01-06,sleep,0,1,0,1,1,0,0,480,1"]
        {
            text.push_str(&["P", &person.to_string(), ",", rest, "\n"].concat());
        }
    }
    text
}

/// The four tables of the base export, by name.
fn base() -> Vec<(&'static str, String)> {
    vec![
        ("people", PEOPLE.to_owned()),
        ("ties", TIES.to_owned()),
        ("consents", consents()),
        ("decisions", decisions()),
    ]
}

/// An export under edit.
struct Export {
    tables: Vec<(&'static str, String)>,
}

impl Export {
    fn new() -> Export {
        Export { tables: base() }
    }

    fn text(&mut self, table: &str) -> &mut String {
        &mut self.tables.iter_mut().find(|(name, _)| *name == table).expect("a table").1
    }

    /// Replaces physical line `line` (the header is line 1).
    fn set_line(mut self, table: &str, line: usize, new: &str) -> Export {
        let text = self.text(table);
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        new.clone_into(&mut lines[line - 1]);
        *text = lines.join("\n") + "\n";
        self
    }

    fn append(mut self, table: &str, row: &str) -> Export {
        let text = self.text(table);
        text.push_str(row);
        text.push('\n');
        self
    }

    fn map(mut self, table: &str, change: impl FnOnce(&str) -> String) -> Export {
        let text = self.text(table);
        *text = change(text);
        self
    }

    fn write(&self, dir: &Path) {
        for (name, text) in &self.tables {
            std::fs::write(dir.join(format!("{name}.csv")), text).unwrap();
        }
    }
}

/// The result of ingesting an export into a fresh workspace.
struct Run {
    workspace: tempfile::TempDir,
    export: tempfile::TempDir,
    result: kith::Result<IngestReport>,
}

impl Run {
    fn report(&self) -> &IngestReport {
        self.result.as_ref().expect("the export is stored")
    }

    /// Quarantine rows of `table` as (line, reason, column).
    fn quarantined(&self, table: &str) -> Vec<(u64, String, String)> {
        let path = self.workspace.path().join("ws").join(&self.report().manifest.quarantine.path);
        let mut reader = csv::Reader::from_path(path).unwrap();
        reader
            .records()
            .map(Result::unwrap)
            .filter(|row| &row[0] == table)
            .map(|row| (row[2].parse().unwrap(), row[5].to_owned(), row[4].to_owned()))
            .collect()
    }

    fn error(&self) -> &Error {
        self.result.as_ref().expect_err("the export is refused")
    }
}

fn ingest_dir(export: tempfile::TempDir) -> Run {
    let workspace = tempfile::tempdir().unwrap();
    let ws = Workspace::init(&workspace.path().join("ws"), "steward").unwrap();
    let options = IngestOptions { export: export.path().to_owned(), as_of: None };
    let result = intake::ingest(&ws, &options, Progress::hidden());
    Run { workspace, export, result }
}

fn ingest(export: &Export) -> Run {
    let dir = tempfile::tempdir().unwrap();
    export.write(dir.path());
    ingest_dir(dir)
}

/// The lines of the base tables that name `person`, as `(table, line)`.
fn rows_naming(person: &str) -> Vec<(&'static str, u64)> {
    let mut found = Vec::new();
    for (table, text) in base().into_iter().skip(1) {
        for (index, line) in text.lines().enumerate().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            let names = if table == "ties" { &fields[..2] } else { &fields[..1] };
            if names.contains(&person) {
                found.push((table, index as u64 + 1));
            }
        }
    }
    found
}

type Expected = Vec<(&'static str, u64, &'static str, &'static str)>;

/// Asserts the quarantine is exactly `expected` (table, line, reason, column) and that every
/// other row was stored.
fn assert_outcome(run: &Run, expected: &Expected) {
    let report = run.report();
    for entry in &report.manifest.accounting {
        let mut want: Vec<(u64, String, String)> = expected
            .iter()
            .filter(|(table, ..)| *table == entry.table)
            .map(|(_, line, reason, column)| (*line, (*reason).to_owned(), (*column).to_owned()))
            .collect();
        want.sort();
        let mut got = run.quarantined(&entry.table);
        got.sort();
        assert_eq!(got, want, "quarantine of {}", entry.table);
        let count = &entry.count;
        assert_eq!(count.quarantined, want.len() as u64, "{}", entry.table);
        assert_eq!(count.excluded_by_consent, 0, "{}", entry.table);
        assert_eq!(count.stored + count.quarantined, count.read, "{}", entry.table);
        if let Some(records) = csv_records(&run.export.path().join(format!("{}.csv", entry.table)))
        {
            assert_eq!(count.read, records, "rows read of {}", entry.table);
        }
        let stored = vault_rows(&report.snapshot_dir.join(&entry.table));
        assert_eq!(stored, count.stored, "rows of {} in the vault", entry.table);
    }
    assert_eq!(report.manifest.quarantine.rows, report.manifest.quarantined(), "manifest");
}

/// Data records of a CSV file, counted by the `csv` crate rather than by kith.
fn csv_records(path: &Path) -> Option<u64> {
    let reader = csv::ReaderBuilder::new().flexible(true).from_path(path).ok()?;
    Some(reader.into_records().count() as u64)
}

/// Rows stored in a vault table's Parquet parts.
fn vault_rows(dir: &Path) -> u64 {
    let mut rows = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "parquet") {
            let file = std::fs::File::open(&path).unwrap();
            let reader = SerializedFileReader::new(file).unwrap();
            rows += reader.metadata().file_metadata().num_rows() as u64;
        }
    }
    rows
}

fn assert_person_quarantined(run: &Run, person: &str, own: Expected) {
    let mut expected = own;
    for (table, line) in rows_naming(person) {
        expected.push((table, line, "person_quarantined", ""));
    }
    assert_outcome(run, &expected);
}

fn assert_refused(run: &Run, file: &str, needle: &str) {
    let error = run.error();
    assert_eq!(error.exit_status().code(), 3, "{error}");
    let message = error.to_string();
    assert!(message.contains(file), "{message}");
    assert!(message.contains(needle), "{message}");
    let vault = run.workspace.path().join("ws/vault");
    let stored: Vec<_> = std::fs::read_dir(&vault)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    assert!(stored.is_empty(), "a refused export stores nothing: {stored:?}");
    assert!(!run.workspace.path().join("ws/identity/map.bin").exists());
}

// --- Refused as a whole ---------------------------------------------------------------------

#[test]
fn an_identifier_column_refuses_the_export() {
    let full = ["email", "First Name", "phone_number", "ssn", "home_address"];
    let abbreviated = ["work_tel", "cellPhone", "e_mail", "home_addr", "fax_no"];
    for name in full.into_iter().chain(abbreviated) {
        let run = ingest(&Export::new().map("people", |t| t.replacen("sex", name, 1)));
        assert_refused(
            &run,
            "people.csv",
            &format!("column `{name}` looks like a direct identifier"),
        );
    }
}

#[test]
fn an_identifier_column_in_another_table_refuses_the_export() {
    let run = ingest(&Export::new().map("decisions", |t| t.replacen("pre_decided", "mobile", 1)));
    assert_refused(&run, "decisions.csv", "`mobile` looks like a direct identifier");
}

#[test]
fn a_file_without_a_header_is_refused_without_quoting_its_first_row() {
    let export =
        Export::new().map("people", |t| t.lines().skip(1).map(|l| l.to_owned() + "\n").collect());
    let run = ingest(&export);
    assert_refused(&run, "people.csv", "holds digits");
    let message = run.error().to_string();
    let first_row = PEOPLE.lines().nth(1).unwrap();
    for field in first_row.split(',').filter(|f| f.bytes().any(|b| b.is_ascii_digit())) {
        assert!(!message.contains(field), "the error quotes `{field}`: {message}");
    }
}

#[test]
fn an_unknown_column_is_named() {
    let run = ingest(&Export::new().map("ties", |t| t.replacen("since", "favourite_colour", 1)));
    assert_refused(&run, "ties.csv", "column `favourite_colour` is not in the `ties` contract");
}

#[test]
fn a_missing_required_column_is_named() {
    let export = Export::new().map("ties", |t| {
        t.lines().map(|l| l.rsplitn(4, ',').last().unwrap().to_owned() + "\n").collect()
    });
    let run = ingest(&export);
    assert_refused(&run, "ties.csv", "required column is missing");
    assert!(run.error().to_string().contains("column `kind`"));
}

#[test]
fn a_repeated_column_is_refused() {
    let run = ingest(&Export::new().map("people", |t| t.replacen("sex", "community", 1)));
    assert_refused(&run, "people.csv", "column `community`: the column appears twice");
}

#[test]
fn a_missing_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    Export::new().write(dir.path());
    std::fs::remove_file(dir.path().join("decisions.csv")).unwrap();
    let run = ingest_dir(dir);
    assert_refused(&run, "decisions.csv", "the export has no `decisions` table");
}

#[test]
fn a_table_given_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    Export::new().write(dir.path());
    std::fs::copy(dir.path().join("people.csv"), dir.path().join("people.csv.gz")).unwrap();
    let run = ingest_dir(dir);
    assert_refused(&run, "people.csv", "holds the `people` table more than once");
}

#[test]
fn an_empty_file_is_refused() {
    let run = ingest(&Export::new().map("consents", |_| String::new()));
    assert_refused(&run, "consents.csv", "required column is missing");
}

#[test]
fn a_corrupt_gzip_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    Export::new().write(dir.path());
    std::fs::remove_file(dir.path().join("ties.csv")).unwrap();
    std::fs::write(dir.path().join("ties.csv.gz"), b"\x1f\x8b\x08\x00garbage").unwrap();
    let run = ingest_dir(dir);
    assert_refused(&run, "ties.csv.gz", "unreadable CSV");
}

#[test]
fn a_corrupt_parquet_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    Export::new().write(dir.path());
    std::fs::remove_file(dir.path().join("people.csv")).unwrap();
    std::fs::write(dir.path().join("people.parquet"), b"PAR1 not really").unwrap();
    let run = ingest_dir(dir);
    assert_refused(&run, "people.parquet", "unreadable Parquet");
}

#[test]
fn a_numeric_ssn_column_in_parquet_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    Export::new().write(dir.path());
    std::fs::remove_file(dir.path().join("people.csv")).unwrap();
    let rows = crate::support::read_table_text(PEOPLE);
    let text = |name: &str| -> ArrayRef {
        Arc::new(
            rows.iter()
                .map(|r| Some(r[name].clone()).filter(|v| !v.is_empty()))
                .collect::<StringArray>(),
        )
    };
    let ssn: ArrayRef = Arc::new(Int64Array::from_iter_values(
        rows.iter().map(|r| r["ssn_last4"].parse::<i64>().unwrap()),
    ));
    let columns = vec![text("source_id"), text("dob"), ssn, text("community")];
    let schema = Schema::new(vec![
        Field::new("source_id", DataType::Utf8, true),
        Field::new("dob", DataType::Utf8, true),
        Field::new("ssn_last4", DataType::Int64, false),
        Field::new("community", DataType::Utf8, true),
    ]);
    write_parquet(&dir.path().join("people.parquet"), schema, columns);
    let run = ingest_dir(dir);
    assert_refused(&run, "people.parquet", "column `ssn_last4`: the column has Parquet type Int64");
}

// --- Rows set aside -------------------------------------------------------------------------

#[test]
fn a_bad_birth_date_quarantines_the_person_and_their_rows() {
    let run = ingest(&Export::new().set_line("people", 4, "P3,1982-02-30,0003,South,W2,H2,X"));
    assert_person_quarantined(&run, "P3", vec![("people", 4, "bad_date", "dob")]);
}

#[test]
fn a_birth_date_after_the_export_date_is_quarantined() {
    let run = ingest(&Export::new().set_line("people", 5, "P4,2026-06-01,0004,South,,H3,U"));
    assert_person_quarantined(&run, "P4", vec![("people", 5, "dob_in_future", "dob")]);
}

#[test]
fn malformed_ssn_digits_are_quarantined() {
    for bad in ["123", "12a4", "12345", " 123"] {
        let row = format!("P5,1984-05-05,{bad},East,W2,,");
        let run = ingest(&Export::new().set_line("people", 6, &row));
        assert_person_quarantined(&run, "P5", vec![("people", 6, "bad_ssn_last4", "ssn_last4")]);
    }
}

#[test]
fn an_unknown_sex_code_is_a_bad_value() {
    let run = ingest(&Export::new().set_line("people", 7, "P6,1985-06-06,0006,East,W3,H4,female"));
    assert_person_quarantined(&run, "P6", vec![("people", 7, "bad_value", "sex")]);
}

#[test]
fn a_people_row_with_an_extra_field_is_quarantined() {
    let run = ingest(&Export::new().set_line("people", 2, "P1,1980-01-01,0001,North,W1,H1,F,x"));
    assert_person_quarantined(&run, "P1", vec![("people", 2, "field_count", "")]);
}

#[test]
fn an_absurdly_long_field_is_quarantined() {
    let row = format!("P2,1981-02-02,0002,North,W1,{},M", "H".repeat(5000));
    let run = ingest(&Export::new().set_line("people", 3, &row));
    assert_person_quarantined(&run, "P2", vec![("people", 3, "field_too_long", "household")]);
}

#[test]
fn a_missing_birth_date_is_quarantined() {
    let run = ingest(&Export::new().set_line("people", 4, "P3,,0003,South,W2,H2,X"));
    assert_person_quarantined(&run, "P3", vec![("people", 4, "missing_value", "dob")]);
}

#[test]
fn a_source_id_on_two_people_rows_quarantines_both() {
    let run = ingest(&Export::new().append("people", "P2,1990-09-09,0099,West,,,"));
    assert_person_quarantined(
        &run,
        "P2",
        vec![
            ("people", 3, "duplicate_source_id", "source_id"),
            ("people", 8, "duplicate_source_id", "source_id"),
        ],
    );
}

#[test]
fn two_source_ids_with_one_identity_pair_are_both_quarantined() {
    let run = ingest(&Export::new().append("people", "P9,1984-05-05,0005,East,,,"));
    assert_person_quarantined(
        &run,
        "P5",
        vec![("people", 6, "shared_identity", ""), ("people", 8, "shared_identity", "")],
    );
}

#[test]
fn a_defective_row_still_claims_its_identity_pair() {
    // P9 breaks a rule of its own (an unknown sex code) but names P5's identity pair, so it is
    // unknown which of the two that person is: both rows are set aside.
    let run = ingest(&Export::new().append("people", "P9,1984-05-05,0005,East,,,Z"));
    assert_person_quarantined(
        &run,
        "P5",
        vec![("people", 6, "shared_identity", ""), ("people", 8, "bad_value", "sex")],
    );
}

#[test]
fn a_tie_to_an_unknown_person_is_quarantined() {
    let run = ingest(&Export::new().set_line("ties", 6, "P4,P77,neighbor,,"));
    assert_outcome(&run, &vec![("ties", 6, "unknown_tie_end", "to_id")]);
}

#[test]
fn a_tie_from_an_unknown_person_is_quarantined() {
    let run = ingest(&Export::new().set_line("ties", 6, "P77,P5,neighbor,,"));
    assert_outcome(&run, &vec![("ties", 6, "unknown_tie_end", "from_id")]);
}

#[test]
fn a_self_tie_is_quarantined() {
    let run = ingest(&Export::new().set_line("ties", 4, "P1,P1,friend,0.5,"));
    assert_outcome(&run, &vec![("ties", 4, "self_tie", "to_id")]);
}

#[test]
fn a_repeated_nomination_keeps_the_first() {
    let run = ingest(&Export::new().append("ties", "P1,P3,friend,0.9,"));
    assert_outcome(&run, &vec![("ties", 10, "duplicate_tie", "")]);
    // The same pair under another kind is a second layer of the multiplex graph, not a repeat.
    let run = ingest(&Export::new().append("ties", "P1,P3,coworker,0.9,"));
    assert_outcome(&run, &vec![]);
}

#[test]
fn an_unknown_tie_kind_is_quarantined() {
    let run = ingest(&Export::new().set_line("ties", 5, "P3,P4,acquaintance,0.8,2020-01-01"));
    assert_outcome(&run, &vec![("ties", 5, "unknown_kind", "kind")]);
}

#[test]
fn weights_outside_the_unit_interval_are_out_of_range() {
    for weight in ["1.5", "0", "-0.2"] {
        let run = ingest(&Export::new().set_line("ties", 8, &format!("P6,P1,other,{weight},")));
        assert_outcome(&run, &vec![("ties", 8, "out_of_range", "weight")]);
    }
}

#[test]
fn a_word_for_a_weight_is_a_bad_value() {
    let run = ingest(&Export::new().set_line("ties", 8, "P6,P1,other,strong,"));
    assert_outcome(&run, &vec![("ties", 8, "bad_value", "weight")]);
}

#[test]
fn an_impossible_tie_date_is_quarantined() {
    let run = ingest(&Export::new().set_line("ties", 2, "P1,P2,spouse,1,2024-02-30"));
    assert_outcome(&run, &vec![("ties", 2, "bad_date", "since")]);
}

#[test]
fn an_unknown_consent_scope_is_quarantined() {
    let run = ingest(&Export::new().append("consents", "P1,marketing,2025-01-01,"));
    assert_outcome(&run, &vec![("consents", 20, "unknown_scope", "scope")]);
}

#[test]
fn a_revocation_before_the_grant_is_quarantined() {
    let run = ingest(&Export::new().append("consents", "P1,network,2025-01-01,2024-01-01"));
    assert_outcome(&run, &vec![("consents", 20, "revoked_before_granted", "revoked")]);
}

#[test]
fn a_consent_of_an_unknown_person_is_quarantined() {
    let run = ingest(&Export::new().append("consents", "P42,network,2025-01-01,"));
    assert_outcome(&run, &vec![("consents", 20, "unknown_person", "source_id")]);
}

#[test]
fn decision_defects_name_their_column() {
    let cases = [
        ("P1,2026-01-05,diet,1,0,1,0,0,0,4.50,10,0", "unknown_domain", "domain"),
        ("P1,2026-01-05,nutrition,2,0,1,0,0,0,4.50,10,0", "out_of_range", "healthy"),
        ("P1,2026-01-05,nutrition,1,0,1,0,0,0,-4.50,10,0", "out_of_range", "cost"),
        ("P1,2026-01-05,nutrition,1,0,1,0,0,0,4.50,ten,0", "bad_value", "minutes"),
        ("P1,2026-01-05,nutrition,1,0,1,0,0,0,NaN,10,0", "bad_value", "cost"),
        ("P1,2026-01-05,nutrition,1,0,1,0,0,0,inf,10,0", "bad_value", "cost"),
        ("P1,03/02/2026,nutrition,1,0,1,0,0,0,4.50,10,0", "bad_date", "date"),
        ("P1,2026-01-05,nutrition,,0,1,0,0,0,4.50,10,0", "missing_value", "healthy"),
        ("P1,2026-01-05,nutrition,1,0,1,0,0,0,4.50,10", "field_count", ""),
        ("P99,2026-01-05,nutrition,1,0,1,0,0,0,4.50,10,0", "unknown_person", "source_id"),
    ];
    for (row, reason, column) in cases {
        let run = ingest(&Export::new().set_line("decisions", 2, row));
        assert_outcome(&run, &vec![("decisions", 2, reason, column)]);
    }
}

#[test]
fn bytes_that_are_not_utf8_are_a_bad_value() {
    let export = Export::new();
    let dir = tempfile::tempdir().unwrap();
    export.write(dir.path());
    let mut people = PEOPLE.as_bytes().to_vec();
    let at = people.windows(5).position(|w| w == b"South").unwrap();
    people[at + 1] = 0xff;
    std::fs::write(dir.path().join("people.csv"), people).unwrap();
    let run = ingest_dir(dir);
    assert_person_quarantined(&run, "P3", vec![("people", 4, "bad_value", "community")]);
}

// --- Valid oddities -------------------------------------------------------------------------

#[test]
fn a_byte_order_mark_crlf_and_a_trailing_empty_line_are_accepted() {
    let export = Export::new()
        .map("people", |t| format!("\u{feff}{}", t.replace('\n', "\r\n")))
        .map("ties", |t| format!("{t}\n"));
    let run = ingest(&export);
    assert_outcome(&run, &vec![]);
    assert_eq!(run.report().manifest.accounting[0].count.stored, 6);
}

#[test]
fn quoted_commas_and_line_breaks_keep_later_line_numbers_right() {
    let export = Export::new()
        .set_line("people", 4, "P3,1982-03-03,0003,South,W2,H2,female")
        .set_line("people", 2, "P1,1980-01-01,0001,\"North, by the\nriver\",W1,H1,F");
    let run = ingest(&export);
    // P3's row starts on physical line 5 now: line 2's field spans two lines.
    assert_person_quarantined(&run, "P3", vec![("people", 5, "bad_value", "sex")]);
}

#[test]
fn columns_in_another_order_and_absent_optional_columns_are_accepted() {
    let export = Export::new().map("ties", |t| {
        t.lines()
            .map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                [f[2], ",", f[1], ",", f[0], ",", f[3], "\n"].concat()
            })
            .collect()
    });
    let run = ingest(&export);
    assert_outcome(&run, &vec![]);
    assert_eq!(run.report().manifest.accounting[1].count.stored, 8);
}

#[test]
fn gzip_and_parquet_exports_give_the_csv_outcome() {
    let dirty = Export::new().set_line("ties", 4, "P1,P1,friend,0.5,").set_line(
        "decisions",
        3,
        "P1,2026-01-06,diet,0,1,0,1,1,0,0,480,1",
    );
    let csv_run = ingest(&dirty);

    let gz = tempfile::tempdir().unwrap();
    for (name, text) in &dirty.tables {
        let file = std::fs::File::create(gz.path().join(format!("{name}.csv.gz"))).unwrap();
        let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap();
    }
    let gz_run = ingest_dir(gz);

    let parquet = tempfile::tempdir().unwrap();
    for (name, text) in &dirty.tables {
        let rows = crate::support::read_table_text(text);
        let header: Vec<String> =
            text.lines().next().unwrap().split(',').map(str::to_owned).collect();
        let schema = Schema::new(
            header.iter().map(|h| Field::new(h.as_str(), DataType::Utf8, true)).collect::<Vec<_>>(),
        );
        let columns: Vec<ArrayRef> = header
            .iter()
            .map(|h| -> ArrayRef {
                Arc::new(
                    rows.iter()
                        .map(|r| Some(r[h].clone()).filter(|v| !v.is_empty()))
                        .collect::<StringArray>(),
                )
            })
            .collect();
        write_parquet(&parquet.path().join(format!("{name}.parquet")), schema, columns);
    }
    let parquet_run = ingest_dir(parquet);

    let expected: Expected =
        vec![("ties", 4, "self_tie", "to_id"), ("decisions", 3, "unknown_domain", "domain")];
    assert_outcome(&csv_run, &expected);
    assert_outcome(&gz_run, &expected);
    // Parquet has no lines; a row is numbered from 1, so data row n is "line" n.
    assert_outcome(
        &parquet_run,
        &vec![("ties", 3, "self_tie", "to_id"), ("decisions", 2, "unknown_domain", "domain")],
    );
    for run in [&gz_run, &parquet_run] {
        let counts = |r: &Run| {
            r.report().manifest.accounting.iter().map(|e| e.count.stored).collect::<Vec<_>>()
        };
        assert_eq!(counts(run), counts(&csv_run));
    }
}

#[test]
fn typed_parquet_columns_are_read_as_their_values() {
    use arrow::array::{BooleanArray, Date32Array, DictionaryArray, Float64Array};
    use arrow::array::{TimestampNanosecondArray, UInt8Array};
    use arrow::datatypes::{Int32Type, TimeUnit};

    let dir = tempfile::tempdir().unwrap();
    Export::new().write(dir.path());
    for table in ["people", "decisions"] {
        std::fs::remove_file(dir.path().join(format!("{table}.csv"))).unwrap();
    }
    let days = |text: &str| {
        let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
        (date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
    };

    let people = crate::support::read_table_text(PEOPLE);
    let dob: ArrayRef = Arc::new(TimestampNanosecondArray::from_iter_values(
        people.iter().map(|p| i64::from(days(&p["dob"])) * 86_400 * 1_000_000_000),
    ));
    let community: DictionaryArray<Int32Type> =
        people.iter().map(|p| p["community"].as_str()).collect();
    let text = |name: &str| -> ArrayRef {
        Arc::new(people.iter().map(|p| Some(p[name].clone())).collect::<StringArray>())
    };
    let schema = Schema::new(vec![
        Field::new("source_id", DataType::Utf8, true),
        Field::new("dob", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        Field::new("ssn_last4", DataType::Utf8, true),
        Field::new("community", community.data_type().clone(), true),
    ]);
    let columns = vec![text("source_id"), dob, text("ssn_last4"), Arc::new(community)];
    write_parquet(&dir.path().join("people.parquet"), schema, columns);

    let decisions = crate::support::read_table_text(&decisions());
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for name in DECISIONS_HEADER.split(',') {
        let (data_type, column): (DataType, ArrayRef) = match name {
            "source_id" | "domain" => (
                DataType::Utf8,
                Arc::new(decisions.iter().map(|d| Some(d[name].clone())).collect::<StringArray>()),
            ),
            "date" => (
                DataType::Date32,
                Arc::new(Date32Array::from_iter_values(decisions.iter().map(|d| days(&d[name])))),
            ),
            "cost" | "minutes" => (
                DataType::Float64,
                Arc::new(Float64Array::from_iter_values(
                    decisions.iter().map(|d| d[name].parse().unwrap()),
                )),
            ),
            "healthy" => (
                DataType::UInt8,
                Arc::new(UInt8Array::from_iter_values(
                    decisions.iter().map(|d| d[name].parse().unwrap()),
                )),
            ),
            _ => (
                DataType::Boolean,
                Arc::new(decisions.iter().map(|d| Some(&d[name] == "1")).collect::<BooleanArray>()),
            ),
        };
        fields.push(Field::new(name, data_type, false));
        columns.push(column);
    }
    write_parquet(&dir.path().join("decisions.parquet"), Schema::new(fields), columns);

    let run = ingest_dir(dir);
    assert_outcome(&run, &vec![]);
    let stored: Vec<u64> =
        run.report().manifest.accounting.iter().map(|e| e.count.stored).collect();
    assert_eq!(stored, [6, 8, 18, 12]);
}

// --- Consent --------------------------------------------------------------------------------

#[test]
fn consent_is_applied_as_of_the_export_date() {
    // P2 revoked `network` before the newest date in the export, and P6 consented to nothing.
    let export = Export::new()
        .set_line("consents", 5, "P2,network,2025-01-01,2026-01-01")
        .map("consents", |t| {
            t.lines().filter(|l| !l.starts_with("P6,")).map(|l| [l, "\n"].concat()).collect()
        });
    let run = ingest(&export);
    let counts: Vec<_> = run.report().manifest.accounting.iter().map(|e| e.count.clone()).collect();
    assert_eq!(run.report().manifest.as_of, "2026-01-06");
    // People: P6 is excluded. Ties touching P2 (3) or P6 (2) are excluded. P6's decisions too.
    assert_eq!((counts[0].stored, counts[0].excluded_by_consent), (5, 1));
    assert_eq!((counts[1].stored, counts[1].excluded_by_consent), (3, 5));
    assert_eq!((counts[2].stored, counts[2].excluded_by_consent), (15, 0));
    assert_eq!((counts[3].stored, counts[3].excluded_by_consent), (10, 2));
    assert!(counts.iter().all(|c| c.quarantined == 0 && c.balances()));

    // Judged on a day before the revocation, P2's ties are used again.
    let dir = tempfile::tempdir().unwrap();
    export.write(dir.path());
    let workspace = tempfile::tempdir().unwrap();
    let ws = Workspace::init(&workspace.path().join("ws"), "steward").unwrap();
    let as_of = chrono::NaiveDate::from_ymd_opt(2025, 12, 31);
    let options = IngestOptions { export: dir.path().to_owned(), as_of };
    let report = intake::ingest(&ws, &options, Progress::hidden()).unwrap();
    assert_eq!(report.manifest.accounting[1].count.stored, 6);
    assert_eq!(report.manifest.as_of_from, "--as-of");
}

fn write_parquet(path: &Path, schema: Schema, columns: Vec<ArrayRef>) {
    let batch = RecordBatch::try_new(Arc::new(schema), columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}
