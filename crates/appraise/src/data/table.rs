//! A user's own table of houses, read from CSV or Parquet into named columns.
//!
//! Cells are typed per column once the whole file is read: a column whose every present cell
//! is a number is [`Values::Numbers`], anything else [`Values::Texts`]. Empty cells and the
//! usual missing-value spellings (`NA`, `NaN`, `null`, ...) are missing in either kind.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Spellings of a missing value (compared case-insensitively, after trimming).
pub const MISSING: [&str; 8] = ["", "na", "nan", "n/a", "null", "none", "nil", "?"];

/// The values of one column.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Every present cell is a number.
    Numbers(Vec<Option<f64>>),
    /// At least one present cell is not a number; the cells as written (trimmed).
    Texts(Texts),
}

/// A text column, dictionary-encoded: each distinct text is stored once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Texts {
    /// Per row, the index of its text in `levels`, or [`Texts::MISSING`].
    pub codes: Vec<u32>,
    /// The distinct texts, in order of first appearance.
    pub levels: Vec<String>,
}

impl Texts {
    /// The code of a missing cell.
    pub const MISSING: u32 = u32::MAX;

    /// Cell `row`, or `None` when missing.
    pub fn get(&self, row: usize) -> Option<&str> {
        let code = self.codes[row];
        (code != Self::MISSING).then(|| self.levels[code as usize].as_str())
    }

    /// A column of these cells (for tests and small tables).
    pub fn from_cells<S: AsRef<str>>(cells: &[Option<S>]) -> Self {
        let mut builder = TextBuilder::default();
        for c in cells {
            builder.push(c.as_ref().map(AsRef::as_ref));
        }
        builder.texts
    }
}

#[derive(Default)]
struct TextBuilder {
    texts: Texts,
    // A fixed-seed fast hash: the same codes on every run.
    index: std::collections::HashMap<String, u32, foldhash::fast::FixedState>,
}

impl TextBuilder {
    fn push(&mut self, cell: Option<&str>) {
        let code = match cell {
            None => Texts::MISSING,
            Some(text) => match self.index.get(text) {
                Some(&code) => code,
                None => {
                    let code = self.texts.levels.len() as u32;
                    self.texts.levels.push(text.to_string());
                    self.index.insert(text.to_string(), code);
                    code
                }
            },
        };
        self.texts.codes.push(code);
    }
}

impl Values {
    /// Number of cells.
    pub fn len(&self) -> usize {
        match self {
            Values::Numbers(v) => v.len(),
            Values::Texts(t) => t.codes.len(),
        }
    }

    /// Whether the column has no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether cell `row` is missing.
    pub fn is_missing(&self, row: usize) -> bool {
        match self {
            Values::Numbers(v) => v[row].is_none(),
            Values::Texts(t) => t.codes[row] == Texts::MISSING,
        }
    }

    /// Cell `row` as a category key: the text, or the number as Rust prints it (`92276`,
    /// `1.5`); `None` when missing.
    pub fn key(&self, row: usize) -> Option<String> {
        match self {
            Values::Numbers(v) => v[row].map(|x| x.to_string()),
            Values::Texts(t) => t.get(row).map(str::to_string),
        }
    }

    /// Cell `row` as written, for output (empty when missing).
    pub fn display(&self, row: usize) -> String {
        self.key(row).unwrap_or_default()
    }
}

/// A table: named columns of equal length, and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The file it was read from (named in errors).
    pub path: PathBuf,
    /// Column names, in file order.
    pub names: Vec<String>,
    /// Column values, in file order.
    pub columns: Vec<Values>,
    /// The file line of each row, where it is not the CSV's (row + 2): a loader that reads a
    /// file without a header line, or keeps only some of its rows, says which line each came
    /// from, so that errors and outputs name it.
    pub lines: Option<Vec<usize>>,
}

impl Frame {
    /// Reads a `.parquet` file, or anything else as CSV.
    pub fn read(path: &Path) -> Result<Self> {
        let is_parquet = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq"));
        let frame = if is_parquet {
            read_parquet(path)?
        } else {
            let bytes = std::fs::read(path).map_err(|e| {
                Error::reading(path, e, "table not found; pass a CSV or Parquet file")
            })?;
            from_csv(&bytes, path)?
        };
        if frame.rows() == 0 {
            return Err(Error::Input {
                path: path.to_path_buf(),
                message: "has a header but no rows".into(),
            });
        }
        Ok(frame)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Values::len)
    }

    /// The position of the column named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The human line of data row `row` (0-based) in the file: a CSV's line number (the
    /// header is line 1), a Parquet file's row number.
    pub fn place(&self, row: usize) -> String {
        if self.is_parquet() {
            format!("row {}", row + 1)
        } else {
            format!("line {}", self.line(row))
        }
    }

    /// The file line of data row `row` (0-based): the CSV's line (the header is line 1),
    /// or the one its loader recorded in [`Frame::lines`].
    pub fn line(&self, row: usize) -> usize {
        self.lines.as_ref().map_or(row + 2, |lines| lines[row])
    }

    /// Whether it was read from a Parquet file.
    pub fn is_parquet(&self) -> bool {
        self.path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq"))
    }
}

/// Parses `text` as a number when it is one (`1,234` is not: thousands separators make a
/// column text, which the schema reports).
pub fn parse_number(text: &str) -> Option<f64> {
    trim(text).parse::<f64>().ok().filter(|v| v.is_finite())
}

/// `str::trim`, with a fast path for the usual cell that has no surrounding space.
fn trim(text: &str) -> &str {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(a), Some(b))
            if !a.is_ascii_whitespace()
                && !b.is_ascii_whitespace()
                && a.is_ascii()
                && b.is_ascii() =>
        {
            text
        }
        _ => text.trim(),
    }
}

fn is_missing(text: &str) -> bool {
    let t = trim(text);
    // The longest missing-value spelling has 4 bytes.
    t.len() <= 4 && MISSING.iter().any(|m| t.eq_ignore_ascii_case(m))
}

/// Builds typed columns from cells, column by column: numbers where every present cell of
/// the column is one (`is_text[c]` false), texts otherwise.
struct Columns {
    numbers: Vec<Vec<Option<f64>>>,
    texts: Vec<TextBuilder>,
    is_text: Vec<bool>,
}

impl Columns {
    fn new(is_text: Vec<bool>) -> Self {
        let n = is_text.len();
        Self {
            numbers: vec![Vec::new(); n],
            texts: (0..n).map(|_| TextBuilder::default()).collect(),
            is_text,
        }
    }

    fn push(&mut self, c: usize, cell: Option<&str>) {
        if self.is_text[c] {
            self.texts[c].push(cell);
        } else {
            self.numbers[c].push(cell.and_then(parse_number));
        }
    }

    fn finish(self) -> Vec<Values> {
        self.numbers
            .into_iter()
            .zip(self.texts)
            .zip(self.is_text)
            .map(|((n, t), text)| {
                if text {
                    Values::Texts(t.texts)
                } else {
                    Values::Numbers(n)
                }
            })
            .collect()
    }
}

/// Reads CSV bytes: a header row of unique names, then one row per house. Two passes over
/// the bytes: the first finds which columns hold text, the second stores each column typed
/// (numbers as numbers, texts once per distinct value), so a large table never exists as
/// strings.
pub fn from_csv(bytes: &[u8], path: &Path) -> Result<Frame> {
    let reader = || {
        csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(bytes)
    };
    let bad = |line: u64, field: String, message: String| Error::Parse {
        path: path.to_path_buf(),
        line: line as usize,
        field,
        message,
    };
    let mut first = reader();
    let headers = first.headers().map_err(|e| Error::Input {
        path: path.to_path_buf(),
        message: format!("is not a readable CSV table: {}", crate::error::quoted(e)),
    })?;
    let names: Vec<String> = headers.iter().map(|h| h.trim().to_string()).collect();
    if names.is_empty() || names.iter().all(String::is_empty) {
        return Err(Error::Input {
            path: path.to_path_buf(),
            message: "is empty; a table needs a header row naming its columns".into(),
        });
    }
    check_names(&names, path)?;
    let read_error = |e: csv::Error| {
        let line = e.position().map_or(0, |p| p.line());
        match e.kind() {
            csv::ErrorKind::UnequalLengths { len, .. } => bad(
                line,
                "(row)".into(),
                format!(
                    "has {len} fields but the header names {}; quote fields that contain commas",
                    names.len()
                ),
            ),
            _ => bad(line, "(row)".into(), e.to_string()),
        }
    };
    let mut record = csv::ByteRecord::new();
    let is_text = match text_columns_in_parallel(bytes, names.len()) {
        Some(is_text) => is_text,
        // Quotes, lone carriage returns or a malformed row: one pass in order, which also
        // names the line of any error exactly.
        None => {
            let mut is_text = vec![false; names.len()];
            while first.read_byte_record(&mut record).map_err(read_error)? {
                mark_text_columns(&record, &mut is_text);
            }
            is_text
        }
    };
    let mut second = reader();
    let mut columns = Columns::new(is_text);
    while second.read_byte_record(&mut record).map_err(read_error)? {
        for c in 0..names.len() {
            let text = std::str::from_utf8(&record[c]).map_err(|_| {
                bad(
                    record.position().map_or(0, |p| p.line()),
                    names[c].clone(),
                    "is not UTF-8 text".into(),
                )
            })?;
            columns.push(c, (!is_missing(text)).then(|| trim(text)));
        }
    }
    Ok(Frame {
        path: path.to_path_buf(),
        names,
        columns: columns.finish(),
        lines: None,
    })
}

/// Whether a CSV file's records are exactly its non-empty lines: it holds no quote (so no
/// field spans lines) and no carriage return outside a CRLF line end (which the csv reader
/// would also take for a line end). Such a file can be cut at line ends without parsing.
pub fn line_oriented(bytes: &[u8]) -> bool {
    memchr::memchr(b'"', bytes).is_none()
        && memchr::memchr_iter(b'\r', bytes).all(|i| bytes.get(i + 1) == Some(&b'\n'))
}

/// Marks the columns of `record` whose cell is neither a number nor a missing value.
fn mark_text_columns(record: &csv::ByteRecord, is_text: &mut [bool]) {
    for (c, text) in is_text.iter_mut().enumerate() {
        if !*text {
            let number = std::str::from_utf8(&record[c])
                .ok()
                .is_some_and(|t| is_missing(t) || parse_number(t).is_some());
            *text = !number;
        }
    }
}

/// Which columns hold text, found on every core: a table without quotes and without lone
/// carriage returns has its records on lines, so its rows can be cut into parts at line
/// ends and each part checked alone. `None` for any other table, or when a part does not
/// parse into rows of `columns` fields (the caller's pass in order then reports the error).
fn text_columns_in_parallel(bytes: &[u8], columns: usize) -> Option<Vec<bool>> {
    use rayon::prelude::*;
    if !line_oriented(bytes) {
        return None;
    }
    let body = &bytes[memchr::memchr(b'\n', bytes)? + 1..];
    // A few parts per core, each ending at a line end.
    let parts = 4 * rayon::current_num_threads().max(1);
    let target = body.len().div_ceil(parts).max(1 << 16);
    let mut cuts = vec![0];
    while let Some(&last) = cuts.last() {
        if last >= body.len() {
            break;
        }
        let from = (last + target).min(body.len());
        let next = memchr::memchr(b'\n', &body[from..]).map_or(body.len(), |i| from + i + 1);
        cuts.push(next);
    }
    let marks: Option<Vec<Vec<bool>>> = cuts
        .par_windows(2)
        .map(|w| {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(&body[w[0]..w[1]]);
            let mut record = csv::ByteRecord::new();
            let mut is_text = vec![false; columns];
            while reader.read_byte_record(&mut record).ok()? {
                if record.len() != columns {
                    return None;
                }
                mark_text_columns(&record, &mut is_text);
            }
            Some(is_text)
        })
        .collect();
    Some(
        marks?
            .into_iter()
            .fold(vec![false; columns], |mut all, part| {
                for (a, p) in all.iter_mut().zip(part) {
                    *a |= p;
                }
                all
            }),
    )
}

fn check_names(names: &[String], path: &Path) -> Result<()> {
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(Error::Input {
                path: path.to_path_buf(),
                message: format!("column {} has no name in the header", i + 1),
            });
        }
        if names[..i].contains(name) {
            return Err(Error::Input {
                path: path.to_path_buf(),
                message: format!("the header names column {name:?} twice"),
            });
        }
    }
    Ok(())
}

/// Reads a Parquet file through the `parquet` crate's row reader: numbers of any width,
/// booleans (as 0/1), strings, dates (as days) and timestamps (as milliseconds); nulls are
/// missing.
fn read_parquet(path: &Path) -> Result<Frame> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    let file = std::fs::File::open(path)
        .map_err(|e| Error::reading(path, e, "table not found; pass a CSV or Parquet file"))?;
    let unreadable = |e: parquet::errors::ParquetError| Error::Input {
        path: path.to_path_buf(),
        message: format!(
            "is not a readable Parquet file: {}",
            crate::error::quoted(e)
        ),
    };
    let reader = SerializedFileReader::new(file).map_err(unreadable)?;
    let schema = reader.metadata().file_metadata().schema_descr();
    let names: Vec<String> = schema
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    check_names(&names, path)?;
    let mut cells: Vec<Vec<Option<String>>> = vec![Vec::new(); names.len()];
    let rows = reader.get_row_iter(None).map_err(unreadable)?;
    for (r, row) in rows.enumerate() {
        let row = row.map_err(unreadable)?;
        for (c, (name, field)) in row.get_column_iter().enumerate() {
            let text = match field {
                Field::Null => None,
                Field::Bool(b) => Some(u8::from(*b).to_string()),
                Field::Byte(v) => Some(v.to_string()),
                Field::Short(v) => Some(v.to_string()),
                Field::Int(v) => Some(v.to_string()),
                Field::Long(v) => Some(v.to_string()),
                Field::UByte(v) => Some(v.to_string()),
                Field::UShort(v) => Some(v.to_string()),
                Field::UInt(v) => Some(v.to_string()),
                Field::ULong(v) => Some(v.to_string()),
                Field::Float(v) => v.is_finite().then(|| v.to_string()),
                Field::Double(v) => v.is_finite().then(|| v.to_string()),
                Field::Float16(v) => Some(v.to_string()),
                Field::Str(s) => (!is_missing(s)).then(|| s.trim().to_string()),
                Field::Date(d) => Some(d.to_string()),
                Field::TimestampMillis(t) => Some(t.to_string()),
                Field::TimestampMicros(t) => Some((t / 1000).to_string()),
                other => {
                    return Err(Error::Parse {
                        path: path.to_path_buf(),
                        line: r + 1,
                        field: name.clone(),
                        message: format!(
                            "holds a value appraise cannot use ({other}); a table's cells must be numbers or text"
                        ),
                    });
                }
            };
            cells[c].push(text);
        }
    }
    let is_text = cells
        .iter()
        .map(|column| column.iter().flatten().any(|c| parse_number(c).is_none()))
        .collect();
    let mut columns = Columns::new(is_text);
    for (c, column) in cells.iter().enumerate() {
        for cell in column {
            columns.push(c, cell.as_deref());
        }
    }
    Ok(Frame {
        path: path.to_path_buf(),
        names,
        columns: columns.finish(),
        lines: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_columns_found_in_parallel_as_in_order() {
        // Enough rows for several parts; a text cell only in the last row and a missing
        // cell in the middle.
        let mut csv = String::from("a,b,c\r\n");
        for i in 0..40_000 {
            let b = if i == 20_000 {
                String::new()
            } else {
                format!("{}.5", i)
            };
            let c = if i == 39_999 {
                "x".to_string()
            } else {
                i.to_string()
            };
            csv.push_str(&format!("{i},{b},{c}\r\n"));
        }
        assert_eq!(
            text_columns_in_parallel(csv.as_bytes(), 3),
            Some(vec![false, false, true])
        );
        let frame = from_csv(csv.as_bytes(), Path::new("t.csv")).unwrap();
        assert!(matches!(frame.columns[2], Values::Texts(_)));
        assert!(matches!(frame.columns[1], Values::Numbers(_)));
        // Quotes, or a row of the wrong length: left to the pass in order.
        assert_eq!(text_columns_in_parallel(b"a,b\n\"1\",2\n", 2), None);
        assert_eq!(text_columns_in_parallel(b"a,b\n1,2,3\n", 2), None);
        let e = from_csv(b"a,b\n1,2\n1,2,3\n", Path::new("t.csv")).unwrap_err();
        assert!(e.to_string().starts_with("t.csv:3:"), "{e}");
    }

    fn csv(text: &str) -> Result<Frame> {
        from_csv(text.as_bytes(), Path::new("t.csv"))
    }

    #[test]
    fn columns_are_typed_and_missing_values_recognized() {
        let f = csv("a,b,c\n1,x,NA\n2.5,,3\n,y,nan\n").unwrap();
        assert_eq!(f.names, ["a", "b", "c"]);
        assert_eq!(
            f.columns[0],
            Values::Numbers(vec![Some(1.0), Some(2.5), None])
        );
        assert_eq!(
            f.columns[1],
            Values::Texts(Texts::from_cells(&[Some("x"), None, Some("y")]))
        );
        assert_eq!(f.columns[2], Values::Numbers(vec![None, Some(3.0), None]));
        assert_eq!(f.columns[0].key(0).as_deref(), Some("1"));
        assert_eq!(f.place(0), "line 2");
    }

    #[test]
    fn a_ragged_row_names_its_line() {
        let err = csv("a,b\n1,2\n3\n").unwrap_err().to_string();
        assert!(err.contains("t.csv:3") && err.contains("1 fields"), "{err}");
        let err = csv("a,a\n1,2\n").unwrap_err().to_string();
        assert!(err.contains("twice"), "{err}");
    }
}
