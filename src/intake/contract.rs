//! The input data contract: the four tables of an export, their columns and vocabularies,
//! the checks on one field, and the reasons a row can be quarantined.
//!
//! Every column is read as text and checked here, rather than typed by a CSV reader's
//! inference: inference turns `ssn_last4` `0042` into the number 42 and rejects a whole batch
//! for one bad date, where the contract wants the bad row set aside with its reason.

use chrono::{Datelike, NaiveDate};

/// What a column holds, and so how one of its fields is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Free text (identifiers and declared groups); only the length is bounded.
    Text,
    /// An ISO `YYYY-MM-DD` calendar date.
    Date,
    /// Exactly four ASCII digits.
    SsnLast4,
    /// One of [`Sex`].
    Sex,
    /// One of [`TieKind`].
    TieKind,
    /// A number in (0, 1].
    Weight,
    /// One of [`Scope`].
    Scope,
    /// One of [`Domain`].
    Domain,
    /// `0` or `1`.
    Flag,
    /// A finite number at least 0.
    NonNegative,
}

/// One column of a table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The header name.
    pub name: &'static str,
    /// What the column holds.
    pub kind: ColumnKind,
    /// Whether an empty cell is a defect (otherwise it is a missing value).
    pub required: bool,
}

/// One table of an export.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// The file stem: `people` is read from `people.csv`, `people.csv.gz` or `people.parquet`.
    pub name: &'static str,
    /// Columns in the order kith writes them; readers accept any order.
    pub columns: &'static [Column],
}

const fn required(name: &'static str, kind: ColumnKind) -> Column {
    Column { name, kind, required: true }
}

const fn optional(name: &'static str, kind: ColumnKind) -> Column {
    Column { name, kind, required: false }
}

/// One row per enrolled person.
pub const PEOPLE: Table = Table {
    name: "people",
    columns: &[
        required("source_id", ColumnKind::Text),
        required("dob", ColumnKind::Date),
        required("ssn_last4", ColumnKind::SsnLast4),
        required("community", ColumnKind::Text),
        optional("workplace", ColumnKind::Text),
        optional("household", ColumnKind::Text),
        optional("sex", ColumnKind::Sex),
    ],
};

/// One row per directed nomination: `from_id` named `to_id`.
pub const TIES: Table = Table {
    name: "ties",
    columns: &[
        required("from_id", ColumnKind::Text),
        required("to_id", ColumnKind::Text),
        required("kind", ColumnKind::TieKind),
        optional("weight", ColumnKind::Weight),
        optional("since", ColumnKind::Date),
    ],
};

/// One row per scope a person granted.
pub const CONSENTS: Table = Table {
    name: "consents",
    columns: &[
        required("source_id", ColumnKind::Text),
        required("scope", ColumnKind::Scope),
        required("granted", ColumnKind::Date),
        optional("revoked", ColumnKind::Date),
    ],
};

/// One row per everyday health decision.
pub const DECISIONS: Table = Table {
    name: "decisions",
    columns: &[
        required("source_id", ColumnKind::Text),
        required("date", ColumnKind::Date),
        required("domain", ColumnKind::Domain),
        required("healthy", ColumnKind::Flag),
        required("schedule_conflict", ColumnKind::Flag),
        required("planned_ahead", ColumnKind::Flag),
        required("disrupted_environment", ColumnKind::Flag),
        required("with_others", ColumnKind::Flag),
        required("decided_by_other", ColumnKind::Flag),
        required("cost", ColumnKind::NonNegative),
        required("minutes", ColumnKind::NonNegative),
        required("pre_decided", ColumnKind::Flag),
    ],
};

/// The four tables, in the order intake reads them (people first: the rest refer to it).
pub const TABLES: [Table; 4] = [PEOPLE, TIES, CONSENTS, DECISIONS];

/// Longest field accepted, in bytes. Real identifiers and names of sites are far shorter; a
/// longer field is a broken export (an unclosed quote swallowing lines) or an attack.
pub const MAX_FIELD_BYTES: usize = 256;

impl Table {
    /// The header line kith writes for this table, without a line break.
    pub fn header(&self) -> String {
        self.columns.iter().map(|column| column.name).collect::<Vec<_>>().join(",")
    }

    /// Finds a column by header name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|column| column.name == name)
    }
}

macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as written in an export.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the exact text of an export; no case folding, no synonyms.
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// Position in [`Self::ALL`], for dense arrays indexed by value.
            pub fn index(self) -> usize {
                self as usize
            }
        }
    };
}

vocabulary!(
    /// The kind of a nomination.
    TieKind {
        Friend => "friend", Spouse => "spouse", Family => "family",
        Coworker => "coworker", Neighbor => "neighbor", Other => "other",
    }
);

vocabulary!(
    /// A consent scope.
    Scope { Network => "network", Reports => "reports", Research => "research" }
);

vocabulary!(
    /// The domain of an everyday health decision.
    Domain {
        Nutrition => "nutrition", Exercise => "exercise", Sleep => "sleep",
        Mindfulness => "mindfulness", Social => "social", Financial => "financial",
        Occupational => "occupational", Intellectual => "intellectual",
    }
);

vocabulary!(
    /// Declared sex.
    Sex { Female => "F", Male => "M", Other => "X", Unknown => "U" }
);

vocabulary!(
    /// Why a row was set aside. The codes are stable: quarantine files and tests use them.
    Reason {
        FieldCount => "field_count",
        FieldTooLong => "field_too_long",
        MissingValue => "missing_value",
        BadDate => "bad_date",
        DobInFuture => "dob_in_future",
        BadSsnLast4 => "bad_ssn_last4",
        BadValue => "bad_value",
        OutOfRange => "out_of_range",
        UnknownKind => "unknown_kind",
        UnknownScope => "unknown_scope",
        UnknownDomain => "unknown_domain",
        RevokedBeforeGranted => "revoked_before_granted",
        SelfTie => "self_tie",
        DuplicateTie => "duplicate_tie",
        UnknownTieEnd => "unknown_tie_end",
        UnknownPerson => "unknown_person",
        DuplicateSourceId => "duplicate_source_id",
        SharedIdentity => "shared_identity",
        PersonQuarantined => "person_quarantined",
    }
);

/// Whether a column name looks like a direct identifier (name, e-mail, phone, address, full
/// SSN and their usual spellings). Such a column refuses the whole export, whatever flag is
/// given: data minimisation is not negotiable per run.
pub fn looks_like_identifier(name: &str) -> bool {
    const EXACT: [&str; 8] =
        ["name", "ssn", "dl", "mrn", "zip", "zipcode", "postcode", "postalcode"];
    const PARTS: [&str; 17] = [
        "firstname",
        "lastname",
        "fullname",
        "surname",
        "givenname",
        "middlename",
        "email",
        "phone",
        "mobile",
        "telephone",
        "address",
        "street",
        "socialsecurity",
        "ssnfull",
        "fullssn",
        "passport",
        "licence",
    ];
    let folded: String =
        name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    EXACT.contains(&folded.as_str())
        || PARTS.iter().any(|part| folded.contains(part))
        || SHORT_PARTS.iter().any(|part| folded.contains(part))
        || words(name).any(|word| is_short_contact_word(&word))
        || folded.ends_with("name")
        || folded == "license"
        || folded.starts_with("ssn") && folded != "ssnlast4"
}

/// Abbreviations of contact fields that no contract column contains anywhere, so they are
/// matched inside any name (`home_addr`, `e_mail`, `mailing_list`, `fax_no`).
const SHORT_PARTS: [&str; 3] = ["addr", "mail", "fax"];

/// Abbreviations that are also pieces of ordinary words (`hotel`, `cancelled`), so they are
/// matched only as a whole word of the name, alone or with a usual prefix or suffix.
const SHORT_WORDS: [&str; 2] = ["tel", "cell"];
const SHORT_WORD_PREFIXES: [&str; 6] = ["", "home", "work", "office", "mobile", "private"];
const SHORT_WORD_SUFFIXES: [&str; 7] = ["", "no", "nr", "num", "number", "phone", "s"];

/// The words of a column name, lower-cased: split at anything that is not a letter or digit
/// and where a lower-case letter meets an upper-case one (`cellPhone` is `cell`, `phone`).
fn words(name: &str) -> impl Iterator<Item = String> + '_ {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        let boundary = !c.is_ascii_alphanumeric() || (previous_lower && c.is_ascii_uppercase());
        if boundary && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        if c.is_ascii_alphanumeric() {
            word.push(c.to_ascii_lowercase());
        }
        previous_lower = c.is_ascii_lowercase();
    }
    if !word.is_empty() {
        words.push(word);
    }
    words.into_iter()
}

fn is_short_contact_word(word: &str) -> bool {
    SHORT_WORDS.iter().any(|short| {
        SHORT_WORD_PREFIXES.iter().any(|prefix| {
            SHORT_WORD_SUFFIXES.iter().any(|suffix| {
                word.len() == prefix.len() + short.len() + suffix.len()
                    && word.starts_with(prefix)
                    && word[prefix.len()..].starts_with(short)
                    && word.ends_with(suffix)
            })
        })
    })
}

/// Parses a strict ISO `YYYY-MM-DD` date.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes.iter().enumerate().all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| {
        bytes[range].iter().fold(0u32, |value, b| value * 10 + u32::from(b - b'0'))
    };
    NaiveDate::from_ymd_opt(digits(0..4) as i32, digits(5..7), digits(8..10))
}

/// Days from 1970-01-01 to `date` (Arrow's `Date32`).
pub fn epoch_days(date: NaiveDate) -> i32 {
    // 719_163 is the day number of 1970-01-01 counted from 0001-01-01 as day 1.
    date.num_days_from_ce() - 719_163
}

/// The date `days` after 1970-01-01.
pub fn from_epoch_days(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(719_163)?)
}

impl ColumnKind {
    /// Checks one non-empty field, returning the quarantine reason if it breaks the contract.
    ///
    /// Checks that need other fields or other rows (a date of birth in the future, duplicate
    /// ties, unknown people) belong to intake's row and table passes, not here.
    pub fn check(self, field: &str) -> Result<(), Reason> {
        self.value(field).map(|_| ())
    }

    /// Checks one non-empty field and returns its value as a number: the number itself for
    /// numeric kinds, days since 1970-01-01 for dates, 0 for text kinds.
    #[expect(clippy::float_cmp, reason = "a flag is exactly 0 or 1; nothing is computed")]
    pub fn value(self, field: &str) -> Result<f64, Reason> {
        if field.len() > MAX_FIELD_BYTES {
            return Err(Reason::FieldTooLong);
        }
        let known = |found: bool, reason: Reason| if found { Ok(0.0) } else { Err(reason) };
        match self {
            ColumnKind::Text => Ok(0.0),
            ColumnKind::Date => {
                parse_date(field).map(|date| f64::from(epoch_days(date))).ok_or(Reason::BadDate)
            }
            ColumnKind::SsnLast4 => known(
                field.len() == 4 && field.bytes().all(|b| b.is_ascii_digit()),
                Reason::BadSsnLast4,
            ),
            ColumnKind::Sex => known(Sex::parse(field).is_some(), Reason::BadValue),
            ColumnKind::TieKind => known(TieKind::parse(field).is_some(), Reason::UnknownKind),
            ColumnKind::Scope => known(Scope::parse(field).is_some(), Reason::UnknownScope),
            ColumnKind::Domain => known(Domain::parse(field).is_some(), Reason::UnknownDomain),
            // The two spellings nearly every export uses skip the float parser.
            ColumnKind::Flag => match field {
                "0" => Ok(0.0),
                "1" => Ok(1.0),
                _ => number(field, |v| v == 0.0 || v == 1.0),
            },
            ColumnKind::Weight => number(field, |v| v > 0.0 && v <= 1.0),
            ColumnKind::NonNegative => number(field, |v| v >= 0.0),
        }
    }
}

/// A field that is not a finite number is a bad value; a number outside `in_range` is out of
/// range. Keeping the two apart tells the steward whether the export or the program is at fault.
fn number(field: &str, in_range: impl Fn(f64) -> bool) -> Result<f64, Reason> {
    match field.parse::<f64>() {
        Ok(value) if value.is_finite() => {
            if in_range(value) {
                Ok(value)
            } else {
                Err(Reason::OutOfRange)
            }
        }
        _ => Err(Reason::BadValue),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_strict_iso() {
        assert!(parse_date("2024-02-29").is_some());
        for bad in ["2023-02-29", "2024-2-29", "29/02/2024", "2024-02-29T00", "", "２０２４-02-01"]
        {
            assert!(parse_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn epoch_days_round_trip() {
        let date = parse_date("2026-01-05").unwrap();
        assert_eq!(epoch_days(parse_date("1970-01-02").unwrap()), 1);
        assert_eq!(from_epoch_days(epoch_days(date)), Some(date));
    }

    #[test]
    fn field_checks_name_their_reason() {
        assert_eq!(ColumnKind::SsnLast4.check("0042"), Ok(()));
        assert_eq!(ColumnKind::SsnLast4.check("042"), Err(Reason::BadSsnLast4));
        assert_eq!(ColumnKind::Flag.check("2"), Err(Reason::OutOfRange));
        assert_eq!(ColumnKind::Flag.check("yes"), Err(Reason::BadValue));
        assert_eq!(ColumnKind::Weight.check("0"), Err(Reason::OutOfRange));
        assert_eq!(ColumnKind::Weight.check("1"), Ok(()));
        assert_eq!(ColumnKind::NonNegative.check("NaN"), Err(Reason::BadValue));
        assert_eq!(ColumnKind::TieKind.check("buddy"), Err(Reason::UnknownKind));
        assert_eq!(ColumnKind::Text.check(&"x".repeat(300)), Err(Reason::FieldTooLong));
    }

    #[test]
    fn vocabularies_round_trip() {
        for domain in Domain::ALL {
            assert_eq!(Domain::parse(domain.as_str()), Some(*domain));
        }
        assert_eq!(Reason::parse("person_quarantined"), Some(Reason::PersonQuarantined));
        assert_eq!(TieKind::parse("Friend"), None);
    }

    #[test]
    fn identifier_columns_are_recognised() {
        for name in [
            "name",
            "First Name",
            "e-mail",
            "EMAIL_ADDRESS",
            "phone_number",
            "ssn",
            "SSN_full",
            "street",
            "home_address",
            "surname",
            "mobile",
        ] {
            assert!(looks_like_identifier(name), "{name}");
        }
        for column in TABLES.iter().flat_map(|t| t.columns) {
            assert!(!looks_like_identifier(column.name), "{}", column.name);
        }
    }

    #[test]
    fn abbreviated_contact_columns_are_recognised() {
        for name in [
            "addr",
            "tel",
            "cell",
            "mail",
            "fax",
            "home_addr",
            "Addr2",
            "cell_phone",
            "cellPhone",
            "CELL",
            "cell_no",
            "e_mail",
            "E-Mail",
            "mail_address",
            "mailing_list",
            "TEL",
            "tel_no",
            "telNo",
            "work_tel",
            "hometel",
            "fax_number",
            "faxnr",
        ] {
            assert!(looks_like_identifier(name), "{name}");
        }
        // Words that merely contain `tel` or `cell` are ordinary unknown columns.
        for name in ["hotel", "cancelled", "intellectual", "excellent", "telemetry_id"] {
            assert!(!looks_like_identifier(name), "{name}");
        }
        for column in TABLES.iter().flat_map(|t| t.columns) {
            assert!(!looks_like_identifier(column.name), "{}", column.name);
            assert!(
                !words(column.name).any(|word| is_short_contact_word(&word)),
                "{}",
                column.name
            );
        }
    }
}
