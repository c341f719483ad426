//! Photo ingest (Part 2's input): each house's four photos, decoded, shrunk to 32x32 and
//! tiled into one 64x64 RGB montage, with a cache so unchanged photos are decoded only once.
//!
//! Layout, as the tutorial tiles it: bathroom top-left, bedroom top-right, frontal
//! bottom-right, kitchen bottom-left. JPEGs are decoded with DCT-domain downscaling (1/2, 1/4
//! or 1/8 while decoding, the smallest that stays at least 32 pixels), then resized to 32x32
//! with a triangle (bilinear) filter; grayscale and CMYK photos are converted to RGB.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use image::{RgbImage, imageops};

use crate::error::{Error, Result};

/// The photo kinds, in file-name order (the order the tutorial reads them).
pub const ROOMS: [&str; 4] = ["bathroom", "bedroom", "frontal", "kitchen"];
/// Side of one photo in the montage.
pub const TILE: usize = 32;
/// Side of the montage.
pub const SIDE: usize = 2 * TILE;
/// Bytes of one montage (64 x 64 RGB, row-major, channels last).
pub const MONTAGE_BYTES: usize = SIDE * SIDE * 3;
/// The largest photo appraise decodes, in pixels; larger headers are refused before decoding.
pub const MAX_PIXELS: u64 = 64_000_000;
/// (row, column) of each room's tile, in [`ROOMS`] order.
const PLACES: [(usize, usize); 4] = [(0, 0), (0, 1), (1, 1), (1, 0)];

/// The path of one of a house's photos.
pub fn photo_path(dir: &Path, house: impl std::fmt::Display, room: &str) -> PathBuf {
    dir.join(format!("{house}_{room}.jpg"))
}

const PHOTO_MISSING: &str = "photo not found; every house needs its four photos";

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::Input {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Decodes one photo and shrinks it to a 32x32 RGB tile.
pub fn load_tile(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::reading(path, e, PHOTO_MISSING))?;
    decode_tile(&bytes, path)
}

/// Decodes JPEG `bytes` (named `path` in errors) into a 32x32 RGB tile.
pub fn decode_tile(bytes: &[u8], path: &Path) -> Result<RgbImage> {
    let image = decode_rgb(bytes, path, |_, _| (TILE as u16, TILE as u16))?;
    Ok(imageops::resize(
        &image,
        TILE as u32,
        TILE as u32,
        imageops::FilterType::Triangle,
    ))
}

/// Decodes one photo whole, at the smallest JPEG scale (1/8, 1/4, 1/2 or 1) that keeps its
/// shorter side at least `min_side` pixels (or at full size).
pub fn load_photo(path: &Path, min_side: u16) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::reading(path, e, PHOTO_MISSING))?;
    decode_photo(&bytes, path, min_side)
}

/// [`load_photo`] of JPEG `bytes` already read (named `path` in errors).
pub fn decode_photo(bytes: &[u8], path: &Path, min_side: u16) -> Result<RgbImage> {
    decode_rgb(bytes, path, |w, h| {
        // The decoder keeps a scale once either side reaches the request, so ask for the
        // photo's own proportions.
        let shorter = f64::from(w.min(h).max(1));
        let side = |s: u16| {
            (f64::from(s) * f64::from(min_side) / shorter)
                .ceil()
                .min(65535.0) as u16
        };
        (side(w), side(h))
    })
}

/// The JPEG scale, in eighths (1, 2, 4 or 8), that decodes a `w x h` photo to at least
/// `request` on one side: the smallest that reaches either requested side.
fn eighths(w: u16, h: u16, (request_w, request_h): (u16, u16)) -> u8 {
    let scaled = |len: u16, s: u32| (u32::from(len) * s).div_ceil(8);
    [1u8, 2, 4]
        .into_iter()
        .find(|&s| {
            scaled(w, u32::from(s)) >= u32::from(request_w)
                || scaled(h, u32::from(s)) >= u32::from(request_h)
        })
        .unwrap_or(8)
}

/// A JPEG in memory as libjpeg reads it, noting whether libjpeg asked for bytes past its
/// end: the file is truncated (libjpeg would otherwise pad it with a fake end marker).
struct JpegReader<'a> {
    rest: &'a [u8],
    ran_out: &'a Cell<bool>,
}

impl std::io::Read for JpegReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::io::Read::read(&mut self.rest, buf)?;
        if n == 0 && !buf.is_empty() {
            self.ran_out.set(true);
        }
        Ok(n)
    }
}

impl std::io::BufRead for JpegReader<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.rest.is_empty() {
            self.ran_out.set(true);
        }
        Ok(self.rest)
    }

    fn consume(&mut self, n: usize) {
        self.rest = &self.rest[n.min(self.rest.len())..];
    }
}

/// A progressive JPEG without its AC scans (those whose spectral selection starts past 0),
/// which a 1/8-scale decode does not need (each 8x8 block becomes its DC value); `None` for
/// a baseline JPEG or anything this walk of the markers does not understand, which is then
/// decoded whole.
fn progressive_dc_scans(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() / 4);
    out.extend_from_slice(bytes.get(..2)?);
    let mut i = 2;
    let mut progressive = false;
    loop {
        if *bytes.get(i)? != 0xff {
            return None;
        }
        let marker = *bytes.get(i + 1)?;
        match marker {
            0xff => {
                i += 1;
                continue;
            }
            0xd9 => {
                out.extend_from_slice(&[0xff, 0xd9]);
                return progressive.then_some(out);
            }
            // Markers without a length (SOI, RSTn, TEM) have no place between segments.
            0x00 | 0x01 | 0xd0..=0xd8 => return None,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*bytes.get(i + 2)?, *bytes.get(i + 3)?]));
        let end = i + 2 + len;
        if len < 2 || end > bytes.len() {
            return None;
        }
        if marker == 0xc2 {
            progressive = true;
        }
        if marker != 0xda {
            out.extend_from_slice(&bytes[i..end]);
            i = end;
            continue;
        }
        // A scan: its header (component count, components, then the spectral start), then
        // entropy-coded data up to the next marker that is neither a stuffed 0xff nor RSTn.
        let components = usize::from(*bytes.get(i + 4)?);
        let spectral_start = *bytes[..end].get(i + 5 + 2 * components)?;
        let mut j = end;
        while *bytes.get(j)? != 0xff || matches!(*bytes.get(j + 1)?, 0x00 | 0xd0..=0xd7) {
            j += 1;
        }
        if spectral_start == 0 {
            out.extend_from_slice(&bytes[i..j]);
        }
        i = j;
    }
}

/// Decodes JPEG `bytes` (named `path` in errors) into RGB with libjpeg (mozjpeg's), scaled
/// down in the DCT domain to the size `request` asks for given the photo's width and height
/// (the smallest of 1/8, 1/4, 1/2 and 1 that reaches either requested side). At 1/8, a
/// progressive JPEG's AC scans are skipped.
fn decode_rgb(
    bytes: &[u8],
    path: &Path,
    request: impl FnOnce(u16, u16) -> (u16, u16),
) -> Result<RgbImage> {
    if bytes.is_empty() {
        return Err(bad(path, "photo is an empty file"));
    }
    if bytes.starts_with(b"\x89PNG") {
        return Err(bad(
            path,
            "is a PNG file named .jpg; appraise reads JPEG photos only (convert it to JPEG)",
        ));
    }
    if !bytes.starts_with(&[0xff, 0xd8]) {
        return Err(bad(
            path,
            "is not a JPEG file (it does not start with a JPEG marker)",
        ));
    }
    // libjpeg reports a damaged file by unwinding (mozjpeg's error handler), caught here;
    // `in_header` tells which message it gets.
    let in_header = Cell::new(true);
    let ran_out = Cell::new(false);
    let decoded = std::panic::catch_unwind(AssertUnwindSafe(|| {
        decode_libjpeg(bytes, path, request, &in_header, &ran_out)
    }));
    let failed = |message: &str| {
        if in_header.get() {
            bad(path, format!("cannot read the JPEG header: {message}"))
        } else {
            bad(
                path,
                format!("cannot decode the JPEG (truncated or damaged?): {message}"),
            )
        }
    };
    match decoded {
        Ok(Ok(_)) if ran_out.get() => Err(failed("the file ends before the image does")),
        Ok(Ok(image)) => Ok(image),
        Ok(Err(Decoding::Refused(e))) => Err(e),
        Ok(Err(Decoding::Io(e))) => Err(failed(&e.to_string())),
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("libjpeg failed");
            Err(failed(
                message
                    .strip_prefix("libjpeg fatal error: ")
                    .unwrap_or(message),
            ))
        }
    }
}

/// How [`decode_libjpeg`] fails without unwinding.
enum Decoding {
    /// A photo appraise will not decode (the error to report as is).
    Refused(Error),
    /// libjpeg's own refusals that do not unwind.
    Io(std::io::Error),
}

impl From<std::io::Error> for Decoding {
    fn from(e: std::io::Error) -> Self {
        Decoding::Io(e)
    }
}

fn decode_libjpeg(
    bytes: &[u8],
    path: &Path,
    request: impl FnOnce(u16, u16) -> (u16, u16),
    in_header: &Cell<bool>,
    ran_out: &Cell<bool>,
) -> std::result::Result<RgbImage, Decoding> {
    let open = |bytes| {
        mozjpeg::Decompress::builder().from_reader(JpegReader {
            rest: bytes,
            ran_out,
        })
    };
    // Declared before the decoder that may borrow it.
    let mut dc_only: Option<Vec<u8>> = None;
    let mut decoder = open(bytes)?;
    let (width, height) = decoder.size();
    let pixels = width as u64 * height as u64;
    if pixels > MAX_PIXELS {
        return Err(Decoding::Refused(bad(
            path,
            format!(
                "photo claims {width}x{height} pixels, more than appraise's limit of {} megapixels; refusing to decode it",
                MAX_PIXELS / 1_000_000
            ),
        )));
    }
    if pixels == 0 {
        return Err(Decoding::Refused(bad(
            path,
            "photo has zero width or height",
        )));
    }
    // libjpeg's dimensions are at most 65500, so they fit.
    let (width, height) = (width as u16, height as u16);
    let scale = eighths(width, height, request(width, height));
    if scale == 1 {
        dc_only = progressive_dc_scans(bytes);
    }
    if let Some(dc_only) = &dc_only {
        decoder = open(dc_only)?;
    }
    in_header.set(false);
    decoder.scale(scale);
    // Smoothing guesses the AC coefficients of an incomplete progressive JPEG; the
    // 1/8-scale decode wants the DC values alone, and a complete JPEG is never smoothed.
    decoder.do_block_smoothing(false);
    let cmyk = matches!(
        decoder.color_space(),
        mozjpeg::ColorSpace::JCS_CMYK | mozjpeg::ColorSpace::JCS_YCCK
    );
    let (w, h, rgb) = if cmyk {
        let mut started = decoder.to_colorspace(mozjpeg::ColorSpace::JCS_CMYK)?;
        let (w, h) = (started.width(), started.height());
        let data: Vec<u8> = started.read_scanlines()?;
        started.finish()?;
        // libjpeg gives the stored values (YCCK converted to CMYK), which Adobe-style CMYK
        // JPEGs keep inverted (255 means no ink); inverted back, as jpeg-decoder did for
        // appraise before, and multiplied out.
        let rgb = data
            .chunks_exact(4)
            .flat_map(|c| {
                let k = 255 - u16::from(c[3]);
                [c[0], c[1], c[2]].map(|v| ((255 - u16::from(v)) * k / 255) as u8)
            })
            .collect();
        (w, h, rgb)
    } else {
        // Greyscale converts to RGB in libjpeg.
        let mut started = decoder.rgb()?;
        let (w, h) = (started.width(), started.height());
        let rgb: Vec<u8> = started.read_scanlines()?;
        started.finish()?;
        (w, h, rgb)
    };
    if rgb.len() != w * h * 3 {
        return Err(Decoding::Refused(bad(
            path,
            "the JPEG decoded to an unexpected number of pixels",
        )));
    }
    Ok(RgbImage::from_raw(w as u32, h as u32, rgb).expect("buffer size checked"))
}

/// Tiles four 32x32 photos (in [`ROOMS`] order) into one montage.
pub fn montage(tiles: &[RgbImage; 4]) -> Vec<u8> {
    let mut out = vec![0u8; MONTAGE_BYTES];
    for (tile, (row, col)) in tiles.iter().zip(PLACES) {
        for y in 0..TILE {
            let dst = ((row * TILE + y) * SIDE + col * TILE) * 3;
            let src = y * TILE * 3;
            out[dst..dst + TILE * 3].copy_from_slice(&tile.as_raw()[src..src + TILE * 3]);
        }
    }
    out
}

/// Appends montages (channels last, bytes) as the networks read them: channels first, in [0, 1].
pub fn push_network_input(montages: &[u8], out: &mut Vec<f32>) {
    for montage in montages.chunks_exact(MONTAGE_BYTES) {
        for c in 0..3 {
            out.extend(
                montage
                    .iter()
                    .skip(c)
                    .step_by(3)
                    .map(|&v| f32::from(v) / 255.0),
            );
        }
    }
}

/// The default cache folder: `$XDG_CACHE_HOME/appraise`, else `~/.cache/appraise`, else
/// `.appraise-cache` in the current folder.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("appraise");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".cache/appraise");
    }
    PathBuf::from(".appraise-cache")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rayon::prelude::*;

    /// The montage of house `id` from the photos `{id}_{room}.jpg` in `dir`.
    pub(crate) fn house_montage(dir: &Path, id: impl std::fmt::Display) -> Result<Vec<u8>> {
        let mut tiles = Vec::with_capacity(4);
        for room in ROOMS {
            tiles.push(load_tile(&photo_path(dir, &id, room))?);
        }
        let tiles: [RgbImage; 4] = tiles.try_into().expect("four rooms");
        Ok(montage(&tiles))
    }

    /// A solid-colour JPEG of `w x h` pixels.
    pub(crate) fn solid_jpeg(w: u16, h: u16, rgb: [u8; 3]) -> Vec<u8> {
        let pixels: Vec<u8> = (0..usize::from(w) * usize::from(h))
            .flat_map(|_| rgb)
            .collect();
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 95)
            .encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    fn write_house(dir: &Path, id: usize, colours: [[u8; 3]; 4]) {
        for (room, rgb) in ROOMS.iter().zip(colours) {
            std::fs::write(photo_path(dir, id, room), solid_jpeg(720, 480, rgb)).unwrap();
        }
    }

    const COLOURS: [[u8; 3]; 4] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]];

    fn mean_of_quadrant(m: &[u8], row: usize, col: usize) -> [f64; 3] {
        let mut sum = [0.0; 3];
        for y in row * TILE..(row + 1) * TILE {
            for x in col * TILE..(col + 1) * TILE {
                for c in 0..3 {
                    sum[c] += f64::from(m[(y * SIDE + x) * 3 + c]);
                }
            }
        }
        sum.map(|s| s / (TILE * TILE) as f64)
    }

    #[test]
    fn network_input_is_channels_first_and_scaled() {
        let mut montage = vec![0u8; MONTAGE_BYTES];
        montage[3 * (SIDE + 2) + 1] = 255; // pixel (1, 2), green
        let mut out = Vec::new();
        push_network_input(&montage, &mut out);
        assert_eq!(out.len(), MONTAGE_BYTES);
        assert_eq!(out[SIDE * SIDE + SIDE + 2], 1.0);
        assert_eq!(out.iter().filter(|&&v| v != 0.0).count(), 1);
    }

    #[test]
    fn montage_puts_each_room_in_its_quadrant() {
        let dir = tempfile::tempdir().unwrap();
        write_house(dir.path(), 7, COLOURS);
        let m = house_montage(dir.path(), 7).unwrap();
        assert_eq!(m.len(), MONTAGE_BYTES);
        // bathroom top-left red, bedroom top-right green, frontal bottom-right blue,
        // kitchen bottom-left white.
        let expect = [
            ((0, 0), [255.0, 0.0, 0.0]),
            ((0, 1), [0.0, 255.0, 0.0]),
            ((1, 1), [0.0, 0.0, 255.0]),
            ((1, 0), [255.0, 255.0, 255.0]),
        ];
        for ((row, col), rgb) in expect {
            let got = mean_of_quadrant(&m, row, col);
            for c in 0..3 {
                assert!(
                    (got[c] - rgb[c]).abs() < 6.0,
                    "quadrant ({row},{col}): {got:?} vs {rgb:?}"
                );
            }
        }
    }

    #[test]
    fn grayscale_and_cmyk_photos_are_converted() {
        let gray: Vec<u8> = vec![128; 64 * 48];
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 95)
            .encode(&gray, 64, 48, jpeg_encoder::ColorType::Luma)
            .unwrap();
        let tile = decode_tile(&out, Path::new("g.jpg")).unwrap();
        let p = tile.get_pixel(5, 5).0;
        assert!(p.iter().all(|&v| (i32::from(v) - 128).abs() < 4), "{p:?}");
        let cmyk: Vec<u8> = (0..64 * 48).flat_map(|_| [0u8, 255, 255, 0]).collect();
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 95)
            .encode(&cmyk, 64, 48, jpeg_encoder::ColorType::Cmyk)
            .unwrap();
        let tile = decode_tile(&out, Path::new("c.jpg")).unwrap();
        assert_eq!(tile.dimensions(), (32, 32));
        // Each of C, M and Y times K over 255, as appraise converted CMYK with jpeg-decoder
        // (here K = 0).
        assert_eq!(tile.get_pixel(5, 5).0, [0, 0, 0]);
        let cmyk: Vec<u8> = (0..64 * 48).flat_map(|_| [10u8, 200, 30, 220]).collect();
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 95)
            .encode(&cmyk, 64, 48, jpeg_encoder::ColorType::Cmyk)
            .unwrap();
        let p = decode_tile(&out, Path::new("c.jpg"))
            .unwrap()
            .get_pixel(5, 5)
            .0;
        // 10 * 220 / 255, 200 * 220 / 255, 30 * 220 / 255, give or take JPEG's rounding.
        for (got, want) in p.iter().zip([8, 172, 25]) {
            assert!((i32::from(*got) - want).abs() <= 2, "{p:?}");
        }
    }

    /// A `w x h` JPEG of a colour gradient, baseline or progressive.
    fn gradient_jpeg(w: u16, h: u16, progressive: bool) -> Vec<u8> {
        let pixels: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [(x % 256) as u8, (y % 256) as u8, 128]))
            .collect();
        let mut out = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
        encoder.set_progressive(progressive);
        encoder
            .encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    #[test]
    fn scale_is_the_smallest_that_reaches_a_requested_side() {
        assert_eq!(eighths(720, 480, (32, 32)), 1);
        assert_eq!(eighths(200, 100, (32, 32)), 2);
        assert_eq!(eighths(64, 48, (32, 32)), 4);
        assert_eq!(eighths(20, 10, (32, 32)), 8);
        // At 1/2, 720x480 is 360x240: neither side reaches (384, 256).
        assert_eq!(eighths(720, 480, (384, 256)), 8);
        let jpeg = gradient_jpeg(720, 480, false);
        let photo = decode_photo(&jpeg, Path::new("p.jpg"), 256).unwrap();
        assert_eq!(photo.dimensions(), (720, 480));
        let photo = decode_photo(&jpeg, Path::new("p.jpg"), 240).unwrap();
        assert_eq!(photo.dimensions(), (360, 240));
    }

    #[test]
    fn progressive_photos_at_one_eighth_read_only_their_dc_scans() {
        let baseline = gradient_jpeg(640, 480, false);
        let progressive = gradient_jpeg(640, 480, true);
        assert!(progressive_dc_scans(&baseline).is_none());
        let dc = progressive_dc_scans(&progressive).expect("a progressive JPEG");
        assert!(
            dc.len() < progressive.len() / 2,
            "{} of {}",
            dc.len(),
            progressive.len()
        );
        let name = Path::new("p.jpg");
        let a = decode_tile(&baseline, name).unwrap();
        let b = decode_tile(&progressive, name).unwrap();
        let diff = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(&x, &y)| (i32::from(x) - i32::from(y)).abs())
            .max()
            .unwrap();
        assert!(diff <= 8, "largest difference {diff}");
        // At 1/2 the AC scans matter, and the whole JPEG is decoded.
        let half = decode_photo(&progressive, name, 240).unwrap();
        assert_eq!(half.dimensions(), (320, 240));
        // Truncated inside an AC scan: refused, not decoded from its DC scans.
        for cut in [
            progressive.len() / 3,
            progressive.len() - 100,
            progressive.len() - 2,
        ] {
            let e = decode_tile(&progressive[..cut], name)
                .unwrap_err()
                .to_string();
            assert!(e.contains("truncated"), "{cut}: {e}");
        }
    }

    #[test]
    fn damaged_photos_are_errors_not_panics() {
        let name = Path::new("d.jpg");
        for jpeg in [gradient_jpeg(96, 64, false), gradient_jpeg(96, 64, true)] {
            assert!(decode_tile(&jpeg, name).is_ok());
            let e = decode_tile(&jpeg[..jpeg.len() / 2], name)
                .unwrap_err()
                .to_string();
            assert!(e.contains("cannot decode the JPEG (truncated"), "{e}");
            let e = decode_tile(&jpeg[..40], name).unwrap_err().to_string();
            assert!(e.contains("cannot read the JPEG header"), "{e}");
            // Every byte overwritten in turn, with values that make markers and nonsense.
            for i in 2..jpeg.len() {
                for v in [0x00, 0xff, 0xd9, 0x7f] {
                    let mut bad = jpeg.clone();
                    bad[i] = v;
                    let _ = decode_tile(&bad, name);
                    let _ = decode_photo(&bad, name, 64);
                }
            }
        }
    }

    #[test]
    fn decoding_is_deterministic_across_threads() {
        let jpegs = [
            gradient_jpeg(640, 480, false),
            gradient_jpeg(640, 480, true),
        ];
        let once: Vec<RgbImage> = jpegs
            .iter()
            .map(|j| decode_tile(j, Path::new("a.jpg")).unwrap())
            .collect();
        let many: Vec<RgbImage> = (0..32)
            .into_par_iter()
            .map(|i| decode_tile(&jpegs[i % 2], Path::new("a.jpg")).unwrap())
            .collect();
        for (i, tile) in many.iter().enumerate() {
            assert_eq!(tile, &once[i % 2]);
        }
    }
}
