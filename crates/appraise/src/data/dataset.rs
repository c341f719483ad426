//! The Houses dataset: reading `HousesInfo.txt`, finding the dataset folder, the zip-code
//! filter, and the loader that returns the houses as the table every dataset is
//! ([`load_table`]): the zip code a category, the three attributes numbers (the area
//! declared), the price the target, the line an identifier, a photo column per room.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::schema::{Schema, SchemaOptions};
use crate::data::table::{Frame, Values};
use crate::error::{Error, Result};

/// The attribute file inside a dataset folder.
pub const INFO_FILE: &str = "HousesInfo.txt";
/// Environment variable that may name the dataset folder.
pub const DATASET_ENV: &str = "APPRAISE_DATASET";
/// Where appraise looks first when neither `--dataset` nor `APPRAISE_DATASET` is given (then
/// in the cache, [`crate::data::fetch`]).
pub const DEFAULT_DATASET_DIR: &str = "Houses-dataset/Houses Dataset";

/// One house: a line of `HousesInfo.txt`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct House {
    /// 1-based line number in `HousesInfo.txt`; also the prefix of the house's photo files.
    pub id: usize,
    /// Number of bedrooms.
    pub bedrooms: f64,
    /// Number of bathrooms (may be fractional, e.g. 2.5).
    pub bathrooms: f64,
    /// Living area in square feet.
    pub area: f64,
    /// US zip code.
    pub zipcode: u32,
    /// Price in US dollars (always > 0).
    pub price: f64,
}

/// The names of the five fields of a line, in file order.
pub const FIELDS: [&str; 5] = ["bedrooms", "bathrooms", "area", "zipcode", "price"];

/// Parses field `index` (see [`FIELDS`]) of a house; the error message names the field.
/// Rejects NaN, infinities and negatives; the price must also be > 0.
pub fn parse_field(text: &str, index: usize) -> std::result::Result<f64, String> {
    let name = FIELDS[index];
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{name}: '{text}' is not a number"))?;
    if !value.is_finite() {
        return Err(format!("{name}: '{text}' is not a finite number"));
    }
    if value < 0.0 {
        return Err(format!("{name}: {text} is negative"));
    }
    if index == 4 && value <= 0.0 {
        return Err(format!(
            "price: {text} must be greater than 0 (the loss divides by the price)"
        ));
    }
    Ok(value)
}

/// Parses the text of a `HousesInfo.txt` file. `path` is used only in error messages.
///
/// Fields are separated by runs of whitespace; CRLF line ends, a UTF-8 byte-order mark and a
/// missing final newline are accepted; blank lines are skipped (but still counted, so house ids
/// stay equal to line numbers).
pub fn parse_houses(text: &str, path: &Path) -> Result<Vec<House>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut houses = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let parse_error = |field: String, message: String| Error::Parse {
            path: path.to_path_buf(),
            line: number,
            field,
            message,
        };
        if line.trim().is_empty() {
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.len() != 5 {
            // Name the first missing field, or the first extra one.
            let field = (tokens.len() + 1).min(6);
            return Err(parse_error(
                field.to_string(),
                format!(
                    "expected 5 numbers (bedrooms bathrooms area zipcode price), found {}",
                    tokens.len()
                ),
            ));
        }
        if tokens[0].eq_ignore_ascii_case("bedrooms") {
            return Err(parse_error(
                "1".into(),
                "looks like a header line; HousesInfo.txt has no header (five numbers per line), remove it".into(),
            ));
        }
        let mut values = [0.0; 5];
        for (i, token) in tokens.iter().enumerate() {
            values[i] = parse_field(token, i).map_err(|m| parse_error(format!("{}", i + 1), m))?;
        }
        let zip = values[3];
        if zip.fract() != 0.0 || zip > f64::from(u32::MAX) {
            return Err(parse_error(
                "4".into(),
                format!("zipcode: '{}' is not a whole number in range", tokens[3]),
            ));
        }
        houses.push(House {
            id: number,
            bedrooms: values[0],
            bathrooms: values[1],
            area: values[2],
            zipcode: zip as u32,
            price: values[4],
        });
    }
    if houses.is_empty() {
        return Err(Error::Input {
            path: path.to_path_buf(),
            message: "contains no houses (the file is empty or has only blank lines)".into(),
        });
    }
    Ok(houses)
}

/// A fingerprint of a file's bytes (FNV-1a, 64 bits), to tell whether two datasets are the same.
pub fn fingerprint(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("fnv1a64:{hash:016x}")
}

/// The houses of a `HousesInfo.txt` and the fingerprint of the file.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Every house of the file, in file order.
    pub houses: Vec<House>,
    /// [`fingerprint`] of the file's bytes.
    pub fingerprint: String,
}

/// Reads and parses `HousesInfo.txt` at `path`.
pub fn load_houses(path: &Path) -> Result<Dataset> {
    if path.is_dir() {
        return Err(Error::Input {
            path: path.to_path_buf(),
            message: "is a directory, expected the HousesInfo.txt file".into(),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| {
        Error::reading(
            path,
            e,
            "not found; check the dataset folder (see README: getting the dataset)",
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        Error::Parse {
            path: path.to_path_buf(),
            line,
            field: "-".into(),
            message: "the file is not UTF-8 text (is it the right file?)".into(),
        }
    })?;
    Ok(Dataset {
        houses: parse_houses(&text, path)?,
        fingerprint: fingerprint(text.as_bytes()),
    })
}

/// Finds the dataset folder without downloading it: `flag` (the folder the user named) if
/// given, else `APPRAISE_DATASET`, else `Houses-dataset/Houses Dataset` under the current
/// folder, else the copy [`crate::data::fetch`] downloaded into `cache_dir`. `None`: none of these
/// is there. A folder the user named must exist: nothing is downloaded in its place.
pub fn find_dataset_dir(flag: Option<&Path>, cache_dir: &Path) -> Result<Option<PathBuf>> {
    let (dir, source) = if let Some(dir) = flag {
        (dir.to_path_buf(), "`dataset`")
    } else if let Some(dir) = std::env::var_os(DATASET_ENV).filter(|v| !v.is_empty()) {
        (PathBuf::from(dir), DATASET_ENV)
    } else {
        let local = PathBuf::from(DEFAULT_DATASET_DIR);
        return Ok(if local.is_dir() {
            Some(local)
        } else {
            crate::data::fetch::cached(cache_dir)
        });
    };
    if !dir.exists() {
        return Err(Error::Input {
            path: dir,
            message: format!(
                "dataset folder (from {source}) does not exist; check the path, or leave out \
                 {source} to use the copy appraise downloads"
            ),
        });
    }
    if !dir.is_dir() {
        return Err(Error::Input {
            path: dir,
            message: format!(
                "is not a folder; {source} must name the folder that holds {INFO_FILE}"
            ),
        });
    }
    Ok(Some(dir))
}

/// Keeps only houses whose zip code occurs at least `min_count` times, preserving file order.
pub fn filter_min_zip_count(houses: &[House], min_count: usize) -> Vec<House> {
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    for house in houses {
        *counts.entry(house.zipcode).or_default() += 1;
    }
    houses
        .iter()
        .filter(|h| counts[&h.zipcode] >= min_count)
        .copied()
        .collect()
}

/// Mean and sample standard deviation (n - 1) of the prices, as pandas computes them.
pub fn price_mean_std(houses: &[House]) -> (f64, f64) {
    let prices: Vec<f64> = houses.iter().map(|h| h.price).collect();
    crate::evaluate::stats::mean_sample_std(&prices)
}

/// The zip-code column of the Houses dataset's table.
pub const ZIPCODE: &str = "zipcode";
/// The tutorial's zip-code filter: houses whose zip code occurs at least this many times.
pub const MIN_ZIP_COUNT: usize = 25;
/// Its attribute columns, in the tutorial's feature order.
pub const ATTRIBUTES: [&str; 3] = ["bedrooms", "bathrooms", "area"];
/// Its price column.
pub const PRICE: &str = "price";

/// Houses' attributes (`[bedrooms, bathrooms, area]` and zip code, one pair per house) as a
/// table of the columns [`ZIPCODE`] and [`ATTRIBUTES`], named `path` in errors.
pub fn attribute_frame(continuous: &[[f64; 3]], zipcodes: &[u32], path: &Path) -> Frame {
    let mut names = vec![ZIPCODE.to_string()];
    let mut columns = vec![Values::Numbers(
        zipcodes.iter().map(|&z| Some(f64::from(z))).collect(),
    )];
    for (k, name) in ATTRIBUTES.iter().enumerate() {
        names.push(name.to_string());
        columns.push(Values::Numbers(
            continuous.iter().map(|c| Some(c[k])).collect(),
        ));
    }
    Frame {
        path: path.to_path_buf(),
        names,
        columns,
        lines: None,
    }
}

/// The houses as a table: [`ZIPCODE`], [`ATTRIBUTES`] and [`PRICE`], one row per house.
pub fn frame(houses: &[House], path: &Path) -> Frame {
    let continuous: Vec<[f64; 3]> = houses
        .iter()
        .map(|h| [h.bedrooms, h.bathrooms, h.area])
        .collect();
    let zipcodes: Vec<u32> = houses.iter().map(|h| h.zipcode).collect();
    let mut frame = attribute_frame(&continuous, &zipcodes, path);
    frame.names.push(PRICE.to_string());
    frame.columns.push(Values::Numbers(
        houses.iter().map(|h| Some(h.price)).collect(),
    ));
    frame
}

/// The schema of [`frame`]'s table: the zip code a category (it is written as a number), the
/// attributes numbers, the price the target.
pub fn schema(frame: &Frame) -> Result<Schema> {
    crate::data::schema::infer(
        frame,
        &SchemaOptions {
            target: Some(PRICE.to_string()),
            categorical: vec![ZIPCODE.to_string()],
            numeric: ATTRIBUTES.iter().map(|a| a.to_string()).collect(),
            ..SchemaOptions::default()
        },
    )
}

/// The rooms each house has a photo of (`{line}_{room}.jpg`), in the order the tutorial
/// tiles them into a montage (its sorted file names); each is a photo column of the table,
/// named `{room}_photo` ([`photo_column`]).
pub const ROOMS: [&str; 4] = ["bathroom", "bedroom", "frontal", "kitchen"];
/// The room whose photo shows the house from the street.
pub const FRONT_ROOM: &str = "frontal";

/// The photo column of a room.
pub fn photo_column(room: &str) -> String {
    format!("{room}_photo")
}
/// The identifier column: the house's line in `HousesInfo.txt`.
pub const HOUSE: &str = "house";

/// The Houses dataset as the table every dataset is: what [`load_table`] returns.
#[derive(Debug, Clone)]
pub struct HousesTable {
    /// One row per kept house: [`HOUSE`], [`ZIPCODE`], [`ATTRIBUTES`], [`PRICE`] and a photo
    /// column per room of [`ROOMS`] (paths relative to the dataset folder). The frame is
    /// named after `HousesInfo.txt` and its rows after their lines there.
    pub frame: Frame,
    /// The zip code a category, the attributes numbers with the area declared, the price
    /// the target, the house an identifier, the rooms photo columns with the frontal photo
    /// the front one.
    pub schema: Schema,
    /// [`fingerprint`] of `HousesInfo.txt`.
    pub fingerprint: String,
    /// Houses in the file, before the zip-code filter.
    pub houses: usize,
}

/// Loads the Houses dataset in `dir` as a table, keeping the houses whose zip code occurs
/// at least `min_zip_count` times (the tutorial's filter); refuses when fewer than 2 remain.
pub fn load_table(dir: &Path, min_zip_count: usize) -> Result<HousesTable> {
    let path = dir.join(INFO_FILE);
    let data = load_houses(&path)?;
    let houses = filter_min_zip_count(&data.houses, min_zip_count);
    if houses.len() < 2 {
        return Err(Error::Usage(format!(
            "`min_zip_count` {min_zip_count} leaves {} of {} houses (those whose zip code occurs \
             at least {min_zip_count} times); at least 2 are needed to train and test",
            houses.len(),
            data.houses.len()
        )));
    }
    let mut frame = self::frame(&houses, &path);
    frame.names.insert(0, HOUSE.to_string());
    frame.columns.insert(
        0,
        Values::Numbers(houses.iter().map(|h| Some(h.id as f64)).collect()),
    );
    for room in ROOMS {
        frame.names.push(photo_column(room));
        let cells: Vec<Option<String>> = houses
            .iter()
            .map(|h| Some(format!("{}_{room}.jpg", h.id)))
            .collect();
        frame
            .columns
            .push(Values::Texts(crate::data::table::Texts::from_cells(&cells)));
    }
    frame.lines = Some(houses.iter().map(|h| h.id).collect());
    let mut schema = crate::data::schema::infer(
        &frame,
        &SchemaOptions {
            target: Some(PRICE.to_string()),
            categorical: vec![ZIPCODE.to_string()],
            numeric: ATTRIBUTES.iter().map(|a| a.to_string()).collect(),
            identifier: vec![HOUSE.to_string()],
            photos: ROOMS.iter().map(|r| photo_column(r)).collect(),
            area: Some("area".to_string()),
            front_photo: Some(photo_column(FRONT_ROOM)),
            ..SchemaOptions::default()
        },
    )?;
    // The tutorial one-hot encodes every zip code of the kept houses, test houses' too.
    let zips: std::collections::BTreeSet<u32> = houses.iter().map(|h| h.zipcode).collect();
    if let Some(zip) = schema.columns.iter_mut().find(|c| c.name == ZIPCODE) {
        zip.levels = Some(zips.iter().map(u32::to_string).collect());
    }
    Ok(HousesTable {
        frame,
        schema,
        fingerprint: data.fingerprint,
        houses: data.houses.len(),
    })
}

/// Whether `text` looks like a `HousesInfo.txt` (five numbers a line, no header) rather than
/// a table with a header line.
pub fn looks_like_houses_info(text: &str) -> bool {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    !first.contains(',')
        && first
            .split_whitespace()
            .next()
            .is_some_and(|t| t.parse::<f64>().is_ok())
}

/// Houses to price from a `HousesInfo.txt`-style file (`text`, read from `path`): a table of
/// [`HOUSE`] (the line), the [`ATTRIBUTES`] and [`ZIPCODE`]; a price on the line is ignored.
pub fn query_table(text: &str, path: &Path) -> Result<Frame> {
    let houses = parse_houses(text, path)?;
    let number =
        |f: &dyn Fn(&House) -> f64| Values::Numbers(houses.iter().map(|h| Some(f(h))).collect());
    let mut frame = Frame {
        path: path.to_path_buf(),
        names: [HOUSE, "bedrooms", "bathrooms", "area", ZIPCODE]
            .map(String::from)
            .to_vec(),
        columns: vec![
            number(&|h| h.id as f64),
            number(&|h| h.bedrooms),
            number(&|h| h.bathrooms),
            number(&|h| h.area),
            number(&|h| f64::from(h.zipcode)),
        ],
        lines: None,
    };
    frame.lines = Some(houses.iter().map(|h| h.id).collect());
    Ok(frame)
}

/// Refuses houses to price whose [`ATTRIBUTES`] (where `frame` has them) are negative, naming
/// the file, line and field, as `HousesInfo.txt` is read.
pub fn check_attributes(frame: &Frame) -> Result<()> {
    for name in ATTRIBUTES {
        let Some(c) = frame.find(name) else { continue };
        let Values::Numbers(values) = &frame.columns[c] else {
            continue;
        };
        if let Some(r) = values.iter().position(|v| v.is_some_and(|v| v < 0.0)) {
            return Err(Error::Parse {
                path: frame.path.clone(),
                line: frame.line(r),
                field: name.to_string(),
                message: format!(
                    "{} is negative; a house's {name} is 0 or more",
                    values[r].unwrap_or_default()
                ),
            });
        }
    }
    Ok(())
}

/// One house to price: its [`ATTRIBUTES`] and [`ZIPCODE`], after its [`HOUSE`] id when given.
pub fn one_house(id: Option<&str>, attributes: [f64; 3], zipcode: u32) -> Frame {
    let mut names: Vec<String> = Vec::new();
    let mut columns = Vec::new();
    if let Some(id) = id {
        names.push(HOUSE.to_string());
        columns.push(Values::Texts(crate::data::table::Texts::from_cells(&[
            Some(id),
        ])));
    }
    for (name, value) in ATTRIBUTES.iter().zip(attributes) {
        names.push(name.to_string());
        columns.push(Values::Numbers(vec![Some(value)]));
    }
    names.push(ZIPCODE.to_string());
    columns.push(Values::Numbers(vec![Some(f64::from(zipcode))]));
    Frame {
        path: PathBuf::from("the command line"),
        names,
        columns,
        lines: None,
    }
}

/// `frame` with each of the photo `columns` naming the house's photo in `dir` the Houses
/// way (`{id}_{room}.jpg` for the column `{room}_photo`, or `{id}_{column}.jpg`; the id from
/// its [`HOUSE`] or `id` column); an error when the rows have no id.
pub fn with_photos_in(frame: &Frame, dir: &Path, columns: &[String]) -> Result<Frame> {
    let ids = frame
        .find(HOUSE)
        .or_else(|| frame.find("id"))
        .ok_or_else(|| {
            Error::Usage(
                "the photo folder (`photos`) names each photo by its house's id: give the \
                 input a house or id column, or name one house (`house`)"
                    .into(),
            )
        })?;
    // Absolute, as the photo cells of a table are read relative to the table's folder.
    let dir = std::path::absolute(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = frame.clone();
    for column in columns {
        let cells: Vec<Option<String>> = (0..frame.rows())
            .map(|r| {
                frame.columns[ids].key(r).map(|id| {
                    let room = column.strip_suffix("_photo").unwrap_or(column);
                    dir.join(format!("{id}_{room}.jpg")).display().to_string()
                })
            })
            .collect();
        let values = Values::Texts(crate::data::table::Texts::from_cells(&cells));
        match out.find(column) {
            Some(c) => out.columns[c] = values,
            None => {
                out.names.push(column.clone());
                out.columns.push(values);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<House>> {
        parse_houses(text, Path::new("HousesInfo.txt"))
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_good_lines_with_runs_of_spaces_crlf_bom_and_no_final_newline() {
        let text =
            "\u{feff}4 4 4053 85255 869500\r\n3  2.5\t1500 92276 300000\r\n\n2 1 900 92276 1e5";
        let houses = parse(text).unwrap();
        assert_eq!(houses.len(), 3);
        assert_eq!(houses[0].id, 1);
        assert_eq!(houses[1].bathrooms, 2.5);
        assert_eq!(houses[1].zipcode, 92276);
        // The blank line still counts, so ids match photo prefixes.
        assert_eq!(houses[2].id, 4);
        assert_eq!(houses[2].price, 100000.0);
    }

    #[test]
    fn rejects_wrong_field_counts_with_line_numbers() {
        assert!(
            err("1 1 1 1 1\n1 1 1 1").contains("HousesInfo.txt:2: field 5: expected 5 numbers")
        );
        assert!(
            err("bedrooms bathrooms area zipcode price\n1 1 1 1 1")
                .contains(":1: field 1: looks like a header line")
        );
        assert!(err("1 1 1 1 1 1").contains(
            ":1: field 6: expected 5 numbers (bedrooms bathrooms area zipcode price), found 6"
        ));
    }

    #[test]
    fn rejects_bad_values_naming_the_field() {
        assert!(err("1 x 1 1 1").contains(":1: field 2: bathrooms: 'x' is not a number"));
        assert!(err("1 1 NaN 1 1").contains("field 3: area: 'NaN' is not a finite number"));
        assert!(err("1 1 inf 1 1").contains("field 3"));
        assert!(err("-1 1 1 1 1").contains("field 1: bedrooms: -1 is negative"));
        assert!(err("1 1 1 1 0").contains("field 5: price: 0 must be greater than 0"));
        assert!(err("1 1 1 1 -5").contains("field 5"));
        assert!(err("1 1 1 99999999999 1").contains("field 4: zipcode"));
        assert!(err("1 1 1 92276.5 1").contains("field 4: zipcode"));
        assert!(err("1 1 1e999 1 1").contains("field 3"));
    }

    #[test]
    fn rejects_empty_and_blank_files() {
        assert!(err("").contains("contains no houses"));
        assert!(err("\n  \r\n\n").contains("contains no houses"));
    }

    #[test]
    fn load_names_missing_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.txt");
        std::fs::write(&good, b"1 1 1 1 1\n").unwrap();
        let loaded = load_houses(&good).unwrap();
        assert_eq!(loaded.houses.len(), 1);
        assert_eq!(loaded.fingerprint, fingerprint(b"1 1 1 1 1\n"));
        assert_ne!(loaded.fingerprint, fingerprint(b"1 1 1 1 2\n"));
        let missing = load_houses(&dir.path().join("nope.txt")).unwrap_err();
        assert!(missing.to_string().contains("not found"));
        assert_eq!(missing.exit_code(), 2);
        let is_dir = load_houses(dir.path()).unwrap_err();
        assert!(is_dir.to_string().contains("is a directory"));
        let latin1 = dir.path().join("latin1.txt");
        std::fs::write(&latin1, b"1 1 1 1 1\n1 1 \xe9 1 1\n").unwrap();
        let e = load_houses(&latin1).unwrap_err().to_string();
        assert!(e.contains("latin1.txt:2") && e.contains("not UTF-8"), "{e}");
    }

    #[test]
    fn the_houses_load_as_a_table_of_the_common_schema() {
        use crate::data::schema::Role;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(INFO_FILE),
            "3 2 1500 10 300000\n4 3 2500 20 500000\n\n2 1 900 10 150000\n",
        )
        .unwrap();
        let t = load_table(dir.path(), 2).unwrap();
        assert_eq!(t.houses, 3);
        assert_eq!(
            t.frame.names,
            [
                "house",
                "zipcode",
                "bedrooms",
                "bathrooms",
                "area",
                "price",
                "bathroom_photo",
                "bedroom_photo",
                "frontal_photo",
                "kitchen_photo"
            ]
        );
        // The house on line 2 has a zip code of its own: dropped; rows name their lines.
        assert_eq!(t.frame.rows(), 2);
        assert_eq!(t.frame.place(1), "line 4");
        assert_eq!(t.frame.columns[8].key(1).as_deref(), Some("4_frontal.jpg"));
        let role = |name: &str| {
            t.schema
                .columns
                .iter()
                .find(|c| c.name == name)
                .unwrap()
                .role
        };
        assert_eq!(role("zipcode"), Role::Categorical);
        assert_eq!(role("area"), Role::Numeric);
        assert_eq!(role("house"), Role::Identifier);
        assert_eq!(role("kitchen_photo"), Role::Photos);
        assert_eq!(t.schema.target().name, "price");
        assert_eq!(t.schema.area.as_deref(), Some("area"));
        assert_eq!(t.schema.photo_columns_front_first()[0], "frontal_photo");
        let e = load_table(dir.path(), 5).unwrap_err();
        assert!(
            e.to_string().starts_with("`min_zip_count` 5 leaves 0 of 3"),
            "{e}"
        );
    }

    #[test]
    fn zip_filter_and_price_stats() {
        let houses = parse("1 1 1 10 100\n1 1 1 10 300\n1 1 1 20 5\n").unwrap();
        let kept = filter_min_zip_count(&houses, 2);
        assert_eq!(kept.iter().map(|h| h.id).collect::<Vec<_>>(), vec![1, 2]);
        let (mean, std) = price_mean_std(&kept);
        assert_eq!(mean, 200.0);
        assert!((std - 20000f64.sqrt()).abs() < 1e-9);
    }
}
