//! Synthetic datasets in the Houses layout, so tests, demos and scaling benchmarks need no
//! download.
//!
//! The price rule (documented in the README):
//!
//! - 8 zip codes, 90001 to 90008, equally likely, with base prices per square foot of
//!   $120, $160, $200, $250, $300, $380, $450 and $600;
//! - bedrooms 1 to 6 (uniform); bathrooms from 1 to bedrooms + 1 in steps of 0.5 (uniform);
//!   area = 500 + 450 x bedrooms + uniform(-300, 600) square feet;
//! - price = area x base(zip) x (1 + 0.03 x (bathrooms - 2)) x exp(noise), noise ~ Normal(0, 0.1),
//!   rounded to $100.
//!
//! With photos, each house gets four small JPEGs (`{id}_bathroom.jpg`, `{id}_bedroom.jpg`,
//! `{id}_frontal.jpg`, `{id}_kitchen.jpg`, 96x64 pixels): flat colour with noise, the brightness
//! rising with the zip code's price level, so photos carry some of the signal.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::dataset::{House, INFO_FILE};
use crate::error::{Error, Result};
use crate::io::atomic;
use crate::runtime::cancel::Cancel;
use crate::runtime::rng::SeededRng;

/// Base price per square foot of zip codes 90001..=90008.
pub const PRICE_PER_SQFT: [f64; 8] = [120.0, 160.0, 200.0, 250.0, 300.0, 380.0, 450.0, 600.0];
/// The first synthetic zip code.
pub const FIRST_ZIP: u32 = 90001;
/// Standard deviation of the log-price noise.
pub const NOISE: f64 = 0.1;
/// The four photo kinds, in file-name order.
pub const ROOMS: [&str; 4] = ["bathroom", "bedroom", "frontal", "kitchen"];
const PHOTO_SIZE: (u16, u16) = (96, 64);
const STREAM_SYNTH: u64 = 100;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthConfig {
    /// Number of houses.
    pub houses: usize,
    /// Also write four JPEG photos per house.
    pub photos: bool,
    /// Seed of every random choice.
    pub seed: u64,
}

/// The rule's price before noise.
pub fn rule_price(house: &House) -> f64 {
    let zip = (house.zipcode - FIRST_ZIP) as usize;
    house.area * PRICE_PER_SQFT[zip] * (1.0 + 0.03 * (house.bathrooms - 2.0))
}

fn normal(rng: &mut SeededRng) -> f64 {
    // Box-Muller; 1 - unit() is in (0, 1], so the log is finite.
    let (u, v) = (1.0 - rng.unit(), rng.unit());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Draws `n` houses by the rule.
pub fn houses(n: usize, seed: u64) -> Vec<House> {
    let mut rng = SeededRng::new(seed, STREAM_SYNTH);
    (1..=n)
        .map(|id| {
            let zip = rng.below(PRICE_PER_SQFT.len() as u64) as u32;
            let bedrooms = 1 + rng.below(6);
            let bathrooms = 1.0 + 0.5 * rng.below(2 * bedrooms + 1) as f64;
            let area = (500.0 + 450.0 * bedrooms as f64 + rng.uniform(-300.0, 600.0)).round();
            let mut house = House {
                id,
                bedrooms: bedrooms as f64,
                bathrooms,
                area,
                zipcode: FIRST_ZIP + zip,
                price: 0.0,
            };
            let price = rule_price(&house) * (NOISE * normal(&mut rng)).exp();
            house.price = (price / 100.0).round().max(1.0) * 100.0;
            house
        })
        .collect()
}

/// `HousesInfo.txt` text for `houses`.
pub fn housesinfo(houses: &[House]) -> String {
    let mut out = String::with_capacity(houses.len() * 32);
    for h in houses {
        let _ = writeln!(
            out,
            "{} {} {} {} {}",
            h.bedrooms, h.bathrooms, h.area, h.zipcode, h.price
        );
    }
    out
}

/// One synthetic photo of `house` as JPEG bytes.
pub fn photo(house: &House, room: usize, rng: &mut SeededRng) -> Vec<u8> {
    let level = (house.zipcode - FIRST_ZIP) as f64 / (PRICE_PER_SQFT.len() - 1) as f64;
    let base = [
        40.0 + 170.0 * level,
        60.0 + 40.0 * room as f64,
        200.0 - 120.0 * level,
    ];
    let (w, h) = PHOTO_SIZE;
    let mut rgb = Vec::with_capacity(usize::from(w) * usize::from(h) * 3);
    for _ in 0..usize::from(w) * usize::from(h) {
        for c in base {
            rgb.push((c + rng.uniform(-25.0, 25.0)).clamp(0.0, 255.0) as u8);
        }
    }
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 90)
        .encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("encoding an in-memory RGB image");
    jpeg
}

/// Writes a synthetic dataset into `dir` (created if missing): `HousesInfo.txt` and, with
/// photos, four JPEGs per house. Every file is written atomically.
pub fn write(config: &SynthConfig, dir: &Path, cancel: &Cancel) -> Result<()> {
    if config.houses == 0 {
        return Err(Error::Usage("`houses` must be at least 1".into()));
    }
    atomic::check_output_dir(dir, "the synthetic dataset (`out`)")?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let houses = houses(config.houses, config.seed);
    if config.photos {
        let mut rng = SeededRng::new(config.seed, STREAM_SYNTH + 1);
        for house in &houses {
            for (room, name) in ROOMS.iter().enumerate() {
                cancel.check()?;
                let path = dir.join(format!("{}_{name}.jpg", house.id));
                atomic::write(&path, &photo(house, room, &mut rng))?;
            }
        }
    }
    atomic::write(&dir.join(INFO_FILE), housesinfo(&houses).as_bytes())
}

/// Numeric columns of a synthetic table (`num_01`..`num_20`).
pub const TABLE_NUMERIC: usize = 20;
/// Levels of each categorical column of a synthetic table (`cat_01`..`cat_10`): the last
/// ones have hundreds, as zip codes and neighbourhoods do.
pub const TABLE_LEVELS: [usize; 10] = [3, 5, 8, 12, 20, 30, 50, 100, 200, 500];
/// Share of missing cells in every third numeric column and every other categorical one.
pub const TABLE_MISSING: f64 = 0.05;

/// A synthetic house table of `rows` rows and 32 columns, as CSV: `id`, 20 numbers, 10
/// categories (some with hundreds of levels), some cells missing, and `price`:
///
/// ln(price) = 12 + sum_j w_j x_j + sum_k e_k(level) + Normal(0, 0.1), where the numbers
/// x_j are uniform in [0, 1) (w_j = 0.4 / j, so the first matter most), and each
/// category's level effects are fixed draws from uniform(-0.3, 0.3). Missing numbers count
/// as 0.5, missing categories as no effect.
pub fn table_csv(rows: usize, seed: u64) -> String {
    let mut rng = SeededRng::new(seed, STREAM_SYNTH + 1);
    let effects: Vec<Vec<f64>> = TABLE_LEVELS
        .iter()
        .map(|&n| (0..n).map(|_| rng.uniform(-0.3, 0.3)).collect())
        .collect();
    let mut out = String::with_capacity(rows * 200);
    out.push_str("id");
    for j in 1..=TABLE_NUMERIC {
        let _ = write!(out, ",num_{j:02}");
    }
    for k in 1..=TABLE_LEVELS.len() {
        let _ = write!(out, ",cat_{k:02}");
    }
    out.push_str(",price\n");
    for i in 0..rows {
        let _ = write!(out, "{}", i + 1);
        let mut log_price = 12.0;
        for j in 0..TABLE_NUMERIC {
            let x = rng.unit();
            let missing = j % 3 == 2 && rng.unit() < TABLE_MISSING;
            log_price += 0.4 / (j + 1) as f64 * if missing { 0.5 } else { x };
            if missing {
                out.push(',');
            } else {
                let _ = write!(out, ",{x:.4}");
            }
        }
        for (k, levels) in effects.iter().enumerate() {
            let level = rng.below(levels.len() as u64) as usize;
            if k % 2 == 1 && rng.unit() < TABLE_MISSING {
                out.push(',');
            } else {
                log_price += levels[level];
                let _ = write!(out, ",c{}_{level}", k + 1);
            }
        }
        log_price += NOISE * normal(&mut rng);
        let _ = writeln!(out, ",{:.0}", log_price.exp());
    }
    out
}

/// Writes [`table_csv`] to `path` atomically.
pub fn write_table(rows: usize, seed: u64, path: &Path) -> Result<()> {
    if rows < 4 {
        return Err(Error::Usage(
            "a synthetic table needs at least 4 rows".into(),
        ));
    }
    atomic::write(path, table_csv(rows, seed).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::parse_houses;

    #[test]
    fn a_synthetic_table_has_its_roles_and_missing_cells() {
        let text = table_csv(400, 3);
        assert_eq!(text, table_csv(400, 3));
        let frame = crate::data::table::from_csv(text.as_bytes(), Path::new("t.csv")).unwrap();
        assert_eq!((frame.rows(), frame.names.len()), (400, 32));
        let schema =
            crate::data::schema::infer(&frame, &crate::data::schema::SchemaOptions::default())
                .unwrap();
        let count = |role| schema.columns.iter().filter(|c| c.role == role).count();
        use crate::data::schema::Role;
        assert_eq!(count(Role::Identifier), 1);
        assert_eq!(count(Role::Numeric), TABLE_NUMERIC);
        assert_eq!(count(Role::Categorical), TABLE_LEVELS.len());
        assert_eq!(count(Role::Target), 1);
        let missing: usize = schema.columns.iter().map(|c| c.missing).sum();
        assert!(missing > 100 && missing < 400, "{missing}");
    }

    #[test]
    fn houses_follow_the_rule_and_parse_back() {
        let hs = houses(2000, 7);
        assert_eq!(hs, houses(2000, 7));
        let parsed = parse_houses(&housesinfo(&hs), Path::new("HousesInfo.txt")).unwrap();
        assert_eq!(parsed, hs);
        let log_ratios: Vec<f64> = hs.iter().map(|h| (h.price / rule_price(h)).ln()).collect();
        let (mean, std) = crate::evaluate::stats::mean_std(&log_ratios);
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((std - NOISE).abs() < 0.01, "{std}");
        assert!(
            hs.iter()
                .all(|h| (1.0..=6.0).contains(&h.bedrooms) && h.bathrooms <= h.bedrooms + 1.0)
        );
        let zips: std::collections::BTreeSet<u32> = hs.iter().map(|h| h.zipcode).collect();
        assert_eq!(zips.len(), 8);
    }

    #[test]
    fn photos_are_jpegs() {
        let h = houses(1, 1)[0];
        let jpeg = photo(&h, 0, &mut SeededRng::new(1, 1));
        assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
    }
}
