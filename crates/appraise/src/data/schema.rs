//! What each column of a user's table is: the price to predict, a number, a category, an
//! identifier, photo paths, or ignored. Inferred from the data, overridable by flags or a
//! schema file, printed at the start of a run and saved in the model.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::table::{Frame, Values};
use crate::error::{Error, Result};

/// A column's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The price to predict.
    Target,
    /// A number (scaled; missing values imputed with the training median, plus an indicator).
    Numeric,
    /// A category (one-hot, or target-encoded when it has many levels).
    Categorical,
    /// Names a row (passed through by `predict`, never an input).
    Identifier,
    /// Paths of the house's photos (not read by the table models yet).
    Photos,
    /// Not used.
    Ignored,
}

impl Role {
    /// The word the schema table prints.
    pub fn name(self) -> &'static str {
        match self {
            Role::Target => "target",
            Role::Numeric => "numeric",
            Role::Categorical => "categorical",
            Role::Identifier => "identifier",
            Role::Photos => "photos",
            Role::Ignored => "ignored",
        }
    }

    /// Whether the models read this column.
    pub fn is_input(self) -> bool {
        matches!(self, Role::Numeric | Role::Categorical)
    }
}

/// One column of the schema, with what the data showed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnInfo {
    /// The column's name in the table.
    pub name: String,
    /// What it is.
    pub role: Role,
    /// Whether the role came from a flag or the schema file rather than inference.
    pub declared: bool,
    /// Missing cells.
    pub missing: usize,
    /// Distinct present values.
    pub distinct: usize,
    /// Smallest and largest value of a numeric column.
    pub range: Option<(f64, f64)>,
    /// A categorical column's levels, when its loader declares them: the encoder one-hot
    /// encodes exactly these (the tutorial's zip codes: every level of the loaded rows, as
    /// scikit-learn's `LabelBinarizer` fitted on the whole table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<Vec<String>>,
}

/// The roles of a table's columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    /// Every column, in the table's order.
    pub columns: Vec<ColumnInfo>,
    /// The column holding each house's living area, when declared (`--area`): the baseline
    /// prices per area unit.
    #[serde(default)]
    pub area: Option<String>,
    /// The photo column whose photo shows the house from the street, when declared: the
    /// recipe reads its manufactured-home score (without it, the first photo column's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub front_photo: Option<String>,
    /// Numeric columns the price must rise with (the recipe's trees keep to it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monotone: Vec<String>,
}

/// Roles given by the user; everything else is inferred.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchemaOptions {
    /// The price column.
    pub target: Option<String>,
    /// Columns to treat as categories.
    pub categorical: Vec<String>,
    /// Columns to treat as numbers.
    pub numeric: Vec<String>,
    /// Columns not to use.
    pub ignore: Vec<String>,
    /// Columns of photo paths.
    pub photos: Vec<String>,
    /// Identifier columns.
    pub identifier: Vec<String>,
    /// The living-area column.
    pub area: Option<String>,
    /// The photo column that shows each house from the street.
    pub front_photo: Option<String>,
    /// Numeric columns the price must rise with.
    pub monotone: Vec<String>,
}

impl SchemaOptions {
    /// Reads a schema file (JSON with the fields of [`SchemaOptions`]) and lays `self`, the
    /// flags, over it: a flag wins over the file.
    pub fn with_file(self, path: &PathBuf) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::reading(path, e, "schema file not found"))?;
        let file: SchemaOptions = serde_json::from_str(&text).map_err(|e| Error::Input {
            path: path.clone(),
            message: format!(
                "is not a valid schema file ({}); expected JSON such as \
                 {{\"target\": \"price\", \"categorical\": [\"zip\"], \"ignore\": [\"id\"]}}",
                crate::error::quoted(e)
            ),
        })?;
        let join = |a: Vec<String>, b: Vec<String>| {
            let mut out = a;
            out.extend(b);
            out
        };
        Ok(Self {
            target: self.target.or(file.target),
            categorical: join(file.categorical, self.categorical),
            numeric: join(file.numeric, self.numeric),
            ignore: join(file.ignore, self.ignore),
            photos: join(file.photos, self.photos),
            identifier: join(file.identifier, self.identifier),
            area: self.area.or(file.area),
            front_photo: self.front_photo.or(file.front_photo),
            monotone: join(file.monotone, self.monotone),
        })
    }
}

/// Column names that usually hold the price, in the order they are tried.
const TARGET_NAMES: [&str; 4] = ["price", "saleprice", "sale_price", "sold_price"];

fn normalized(name: &str) -> String {
    name.to_ascii_lowercase()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

fn looks_like_id(name: &str) -> bool {
    let n = normalized(name);
    n == "id" || n == "pid" || n == "house" || n.ends_with("id") && name.contains(['_', ' ', '-'])
}

fn looks_like_zip(name: &str) -> bool {
    let n = normalized(name);
    n.contains("zip") || n.contains("postal") || n.contains("postcode")
}

fn looks_like_photo(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    [".jpg", ".jpeg", ".png", ".webp"]
        .iter()
        .any(|ext| v.split([';', '|']).all(|p| p.trim().ends_with(ext)))
}

/// Infers the schema of `frame`, applying `options`.
pub fn infer(frame: &Frame, options: &SchemaOptions) -> Result<Schema> {
    let path = &frame.path;
    let unknown = |flag: &str, name: &str| {
        Error::Usage(format!(
            "{flag} {name}: {} has no such column; its columns are: {}",
            path.display(),
            frame.names.join(", ")
        ))
    };
    let mut declared: Vec<(String, Role, &str)> = Vec::new();
    for (names, role, flag) in [
        (&options.categorical, Role::Categorical, "`categorical`"),
        (&options.numeric, Role::Numeric, "`numeric`"),
        (&options.ignore, Role::Ignored, "`ignore`"),
        (&options.photos, Role::Photos, "`photos`"),
        (&options.identifier, Role::Identifier, "`identifier`"),
    ] {
        for name in names {
            if frame.find(name).is_none() {
                return Err(unknown(flag, name));
            }
            if let Some((_, other, other_flag)) = declared.iter().find(|(n, _, _)| n == name)
                && *other != role
            {
                return Err(Error::Usage(format!(
                    "column {name} is given two roles ({other_flag} and {flag}); give it one"
                )));
            }
            declared.push((name.clone(), role, flag));
        }
    }
    let target = match &options.target {
        Some(t) => {
            if frame.find(t).is_none() {
                return Err(unknown("`target`", t));
            }
            t.clone()
        }
        None => TARGET_NAMES
            .iter()
            .find_map(|want| {
                frame
                    .names
                    .iter()
                    .find(|n| normalized(n) == normalized(want))
            })
            .cloned()
            .ok_or_else(|| {
                Error::Usage(format!(
                    "which column of {} is the price? name it (`target`; columns: {})",
                    path.display(),
                    frame.names.join(", ")
                ))
            })?,
    };
    if declared.iter().any(|(n, _, _)| *n == target) {
        return Err(Error::Usage(format!(
            "column {target} is the target (`target`); it cannot have another role"
        )));
    }
    if let Some(area) = &options.area
        && frame.find(area).is_none()
    {
        return Err(unknown("`area`", area));
    }
    let rows = frame.rows();
    let mut columns = Vec::with_capacity(frame.names.len());
    for (name, values) in frame.names.iter().zip(&frame.columns) {
        let missing = (0..rows).filter(|&r| values.is_missing(r)).count();
        let distinct = match values {
            Values::Numbers(v) => v
                .iter()
                .flatten()
                .map(|x| x.to_bits())
                .collect::<std::collections::HashSet<u64>>()
                .len(),
            // Every level of a text column occurs in it.
            Values::Texts(t) => t.levels.len(),
        };
        let range = match values {
            Values::Numbers(v) => {
                let present = v.iter().flatten();
                let lo = present.clone().copied().fold(f64::INFINITY, f64::min);
                let hi = present.copied().fold(f64::NEG_INFINITY, f64::max);
                (lo <= hi).then_some((lo, hi))
            }
            Values::Texts(_) => None,
        };
        let given = declared.iter().find(|(n, _, _)| n == name).map(|d| d.1);
        let role = if *name == target {
            Role::Target
        } else if let Some(role) = given {
            role
        } else {
            match values {
                _ if missing == rows => Role::Ignored,
                Values::Numbers(_) if looks_like_id(name) && distinct == rows - missing => {
                    Role::Identifier
                }
                Values::Numbers(_) if looks_like_zip(name) => Role::Categorical,
                Values::Numbers(_) => Role::Numeric,
                Values::Texts(t) if t.levels.iter().all(|s| looks_like_photo(s)) => Role::Photos,
                // A text that names every row differently identifies it.
                Values::Texts(_) if rows >= 20 && distinct == rows - missing => Role::Identifier,
                Values::Texts(_) if distinct <= 1 => Role::Ignored,
                Values::Texts(_) => Role::Categorical,
            }
        };
        if role == Role::Numeric && matches!(values, Values::Texts(_)) {
            let (row, cell) = (0..rows)
                .find_map(|r| {
                    values
                        .key(r)
                        .filter(|k| crate::data::table::parse_number(k).is_none())
                        .map(|k| (r, k))
                })
                .expect("a text column has a non-number");
            return Err(Error::Parse {
                path: path.clone(),
                line: frame.line(row),
                field: name.clone(),
                message: format!(
                    "{cell:?} is not a number, but the column is declared numeric (`numeric`); \
                     fix the value or declare the column categorical (`categorical`)"
                ),
            });
        }
        columns.push(ColumnInfo {
            name: name.clone(),
            role,
            declared: given.is_some() || *name == target,
            missing,
            distinct,
            range,
            levels: None,
        });
    }
    if let Some(front) = &options.front_photo
        && !columns
            .iter()
            .any(|c| c.name == *front && c.role == Role::Photos)
    {
        return Err(Error::Usage(format!(
            "the front photo column {front} is not a column of photo paths of {}",
            path.display()
        )));
    }
    for name in &options.monotone {
        if !columns
            .iter()
            .any(|c| c.name == *name && c.role == Role::Numeric)
        {
            return Err(Error::Usage(format!(
                "the price can only be made to rise with a numeric column; {name} is not one \
                 of {} (`monotone`)",
                path.display()
            )));
        }
    }
    let schema = Schema {
        columns,
        area: options.area.clone(),
        front_photo: options.front_photo.clone(),
        monotone: options.monotone.clone(),
    };
    let target_info = schema.target();
    if target_info.range.is_none() && target_info.missing < rows {
        return Err(Error::Usage(format!(
            "the target column {target} of {} holds text; it must hold prices",
            path.display()
        )));
    }
    if !schema.columns.iter().any(|c| c.role.is_input()) {
        return Err(Error::Usage(format!(
            "{} has no input columns besides the target; declare some numeric (`numeric`) or categorical (`categorical`)",
            path.display()
        )));
    }
    Ok(schema)
}

impl Schema {
    /// The target column.
    pub fn target(&self) -> &ColumnInfo {
        self.columns
            .iter()
            .find(|c| c.role == Role::Target)
            .expect("a schema has a target")
    }

    /// The columns the models read, in table order.
    pub fn inputs(&self) -> impl Iterator<Item = &ColumnInfo> {
        self.columns.iter().filter(|c| c.role.is_input())
    }

    /// The first identifier column, if any: what names a row in a run's outputs.
    pub fn identifier(&self) -> Option<&str> {
        self.columns
            .iter()
            .find(|c| c.role == Role::Identifier)
            .map(|c| c.name.as_str())
    }

    /// The names of the columns of photo paths, in table order.
    pub fn photo_columns(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| c.role == Role::Photos)
            .map(|c| c.name.clone())
            .collect()
    }

    /// The photo columns with the front photo's first (the recipe's photo inputs read them
    /// in this order; the first is the one whose manufactured-home score is read).
    pub fn photo_columns_front_first(&self) -> Vec<String> {
        let mut columns = self.photo_columns();
        if let Some(k) = self
            .front_photo
            .as_ref()
            .and_then(|f| columns.iter().position(|c| c == f))
        {
            let front = columns.remove(k);
            columns.insert(0, front);
        }
        columns
    }

    /// The schema as a table for the terminal: column, role, missing, and distinct values or
    /// range.
    pub fn render(&self) -> String {
        let width = self
            .columns
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let mut out = format!(
            "{:width$}  {:12} {:>8}  values\n",
            "column", "role", "missing"
        );
        for c in &self.columns {
            let values = match (c.role, c.range) {
                (Role::Numeric | Role::Target, Some((lo, hi))) => {
                    format!("{} .. {}", short(lo), short(hi))
                }
                _ => format!("{} distinct", c.distinct),
            };
            let how = if c.declared { "" } else { " (inferred)" };
            let _ = writeln!(
                out,
                "{:width$}  {:12} {:>8}  {values}{how}",
                c.name,
                c.role.name(),
                c.missing
            );
        }
        out
    }
}

fn short(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn frame(text: &str) -> Frame {
        crate::data::table::from_csv(text.as_bytes(), Path::new("t.csv")).unwrap()
    }

    fn listing(rows: usize) -> String {
        let mut text = String::from("id,zip,beds,type,photo,price\n");
        for i in 0..rows {
            let kind = ["house", "condo"][i % 2];
            let _ = writeln!(
                text,
                "{i},{},{},{kind},{i}.jpg,{}",
                90000 + i % 3,
                i % 5,
                1000 + i
            );
        }
        text
    }

    #[test]
    fn roles_are_inferred_from_names_and_values() {
        let f = frame(&listing(30));
        let s = infer(&f, &SchemaOptions::default()).unwrap();
        let roles: Vec<Role> = s.columns.iter().map(|c| c.role).collect();
        assert_eq!(
            roles,
            [
                Role::Identifier,
                Role::Categorical,
                Role::Numeric,
                Role::Categorical,
                Role::Photos,
                Role::Target
            ]
        );
        assert_eq!(s.columns[2].range, Some((0.0, 4.0)));
        assert!(s.render().contains("zip"));
    }

    #[test]
    fn flags_override_and_bad_flags_are_refused() {
        let f = frame(&listing(30));
        let options = SchemaOptions {
            categorical: vec!["beds".into()],
            ignore: vec!["type".into()],
            ..SchemaOptions::default()
        };
        let s = infer(&f, &options).unwrap();
        assert!(s.monotone.is_empty());
        let rising = SchemaOptions {
            monotone: vec!["beds".into()],
            ..SchemaOptions::default()
        };
        assert_eq!(infer(&f, &rising).unwrap().monotone, ["beds"]);
        assert_eq!(s.columns[2].role, Role::Categorical);
        assert!(s.columns[2].declared);
        assert_eq!(s.columns[3].role, Role::Ignored);
        for bad in [
            SchemaOptions {
                target: Some("cost".into()),
                ..SchemaOptions::default()
            },
            SchemaOptions {
                numeric: vec!["type".into()],
                ..SchemaOptions::default()
            },
            SchemaOptions {
                numeric: vec!["beds".into()],
                categorical: vec!["beds".into()],
                ..SchemaOptions::default()
            },
            // The price can rise only with a number.
            SchemaOptions {
                monotone: vec!["type".into()],
                ..SchemaOptions::default()
            },
        ] {
            assert!(infer(&f, &bad).is_err(), "{bad:?}");
        }
        let no_price = frame("a,b\n1,2\n");
        let err = infer(&no_price, &SchemaOptions::default()).unwrap_err();
        assert!(err.to_string().contains("`target`"), "{err}");
    }
}
