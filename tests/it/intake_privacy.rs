//! What intake keeps of a person's identity: nothing but a random ID. After ingesting a dirty
//! synthetic export with verbose JSON logs, no date of birth appears in any workspace file or
//! log line, and no vault column holds a `ssn_last4` value, a `source_id` or a birth date.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use arrow::array::{Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::support::{kith, read_table, synth};

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

/// Every value of every column of a Parquet file, as text, with each column's type.
fn parquet_values(path: &Path) -> Vec<(String, DataType, Vec<String>)> {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let mut columns: Vec<(String, DataType, Vec<String>)> = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        for (index, field) in batch.schema().fields().iter().enumerate() {
            if columns.len() <= index {
                columns.push((field.name().clone(), field.data_type().clone(), Vec::new()));
            }
            let text = cast(batch.column(index), &DataType::Utf8).unwrap();
            let text = text.as_any().downcast_ref::<StringArray>().unwrap();
            columns[index].2.extend(
                (0..text.len()).filter(|&i| text.is_valid(i)).map(|i| text.value(i).to_owned()),
            );
        }
    }
    columns
}

#[test]
fn no_birth_date_ssn_digits_or_source_id_survive_intake() {
    let (export, _) = synth(3000, 23, 0.02);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    assert!(kith().arg("init").arg(&root).status().unwrap().success());
    let output = kith()
        .env("RUST_LOG", "trace")
        .args(["-vv", "--log-format", "json", "--workspace"])
        .arg(&root)
        .arg("ingest")
        .arg(export.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let logs = String::from_utf8_lossy(&output.stderr).into_owned();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();

    let people = read_table(&export.path().join("people.csv"));
    let dobs: HashSet<String> =
        people.iter().map(|p| p["dob"].clone()).filter(|d| !d.is_empty()).collect();
    let ssns: HashSet<String> = people.iter().map(|p| p["ssn_last4"].clone()).collect();
    let source_ids: HashSet<String> = people.iter().map(|p| p["source_id"].clone()).collect();
    assert!(dobs.len() > 2000 && ssns.len() > 2000);

    for text in [&logs, &printed] {
        for dob in &dobs {
            assert!(!text.contains(dob.as_str()), "a birth date reached the output or logs");
        }
    }

    let mut parquet_files = 0;
    for file in walk(&root) {
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        if file.extension().is_some_and(|e| e == "key") {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for dob in &dobs {
            assert!(!text.contains(dob.as_str()), "{name} holds a birth date");
        }
        if file.extension().is_some_and(|e| e == "parquet") {
            parquet_files += 1;
            for (column, data_type, values) in parquet_values(&file) {
                if name.contains("people/") {
                    assert!(!matches!(data_type, DataType::Date32 | DataType::Date64), "{name}");
                }
                for value in &values {
                    assert!(!ssns.contains(value), "{name}: `{column}` holds ssn_last4 values");
                    assert!(!source_ids.contains(value), "{name}: `{column}` holds source_ids");
                    assert!(!dobs.contains(value), "{name}: `{column}` holds birth dates");
                }
            }
        }
    }
    assert!(parquet_files >= 4, "the vault was read");
}
