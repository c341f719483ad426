//! Bad input never crashes appraise and never costs a user a file: every case runs through
//! the CLI and must exit non-zero with a message naming the file (and line and field for text
//! input), never panic, and leave every file in the working folder as it was.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use common::{appraise, text, tiny_dataset, trained_model};

/// Every file under `dir` with its size, modification time and bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime, Vec<u8>)> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                files.insert(path.clone(), (0, meta.modified().unwrap(), Vec::new()));
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                files.insert(path, (meta.len(), meta.modified().unwrap(), bytes));
            }
        }
    }
    files
}

/// Runs `args` in `dir`; it must exit with `code`, print `expect` (and every string of
/// `names`), not panic, and change nothing under `dir`.
fn refuses(dir: &Path, args: &[&str], code: i32, expect: &[&str]) {
    let before = snapshot(dir);
    let result = appraise(args, dir);
    let all = format!("{}{}", text(&result.stdout), text(&result.stderr));
    assert_eq!(result.status.code(), Some(code), "{args:?}\n{all}");
    for e in expect {
        assert!(all.contains(e), "expected {e:?} for {args:?} in:\n{all}");
    }
    assert!(!all.contains("panicked"), "{all}");
    assert!(
        snapshot(dir) == before,
        "{args:?} changed files under {}",
        dir.display()
    );
}

/// A training command on a dataset whose HousesInfo.txt holds `bytes`.
fn train_on(bytes: &[u8], expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_dataset(dir.path(), 40);
    std::fs::write(data.join("HousesInfo.txt"), bytes).unwrap();
    refuses(
        dir.path(),
        &[
            "train",
            "--dataset",
            "data",
            "--out",
            "out",
            "--epochs",
            "2",
        ],
        2,
        expect,
    );
}

#[test]
fn malformed_housesinfo_is_refused_naming_file_line_and_field() {
    let good = "4 4 4053 85255 869500\n";
    let cases: Vec<(String, Vec<&str>)> = vec![
        (String::new(), vec!["HousesInfo.txt", "contains no houses"]),
        (
            "\n   \n\r\n".into(),
            vec!["HousesInfo.txt", "contains no houses"],
        ),
        (
            format!("{good}4 3 3343 36372\n"),
            vec!["HousesInfo.txt:2: field 5", "expected 5 numbers", "found 4"],
        ),
        (
            format!("{good}4 3 3343 36372 1 7\n"),
            vec!["HousesInfo.txt:2: field 6", "found 6"],
        ),
        (
            format!("{good}4 3 abc 36372 1\n"),
            vec!["HousesInfo.txt:2: field 3: area: 'abc' is not a number"],
        ),
        (
            format!("{good}{good}NaN 3 1 36372 1\n"),
            vec!["HousesInfo.txt:3: field 1: bedrooms: 'NaN' is not a finite number"],
        ),
        (
            "4 inf 1 36372 1\n".to_string(),
            vec!["HousesInfo.txt:1: field 2: bathrooms: 'inf' is not a finite number"],
        ),
        (
            "4 3 -100 36372 1\n".to_string(),
            vec!["HousesInfo.txt:1: field 3: area: -100 is negative"],
        ),
        (
            "4 3 100 36372 0\n".to_string(),
            vec!["HousesInfo.txt:1: field 5: price: 0 must be greater than 0"],
        ),
        (
            "4 3 100 36372 -5\n".to_string(),
            vec!["HousesInfo.txt:1: field 5"],
        ),
        (
            "4 3 1e999 36372 5\n".to_string(),
            vec!["HousesInfo.txt:1: field 3"],
        ),
        (
            "4 3 100 99999999999 5\n".to_string(),
            vec!["HousesInfo.txt:1: field 4: zipcode"],
        ),
        (
            "bedrooms bathrooms area zipcode price\n4 3 100 92276 5\n".into(),
            vec!["HousesInfo.txt:1: field 1: looks like a header line"],
        ),
    ];
    for (content, expect) in cases {
        train_on(content.as_bytes(), &expect);
    }
    // Latin-1 bytes: not UTF-8.
    train_on(
        b"4 4 4053 85255 869500\n4 3 3343 9\xe9276 1\n",
        &["HousesInfo.txt:2", "not UTF-8"],
    );
}

#[test]
fn a_bom_and_crlf_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_dataset(dir.path(), 40);
    let original = std::fs::read(data.join("HousesInfo.txt")).unwrap();
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend(original);
    std::fs::write(data.join("HousesInfo.txt"), bom).unwrap();
    let result = appraise(
        &[
            "train",
            "--dataset",
            "data",
            "--out",
            "out",
            "--epochs",
            "1",
        ],
        dir.path(),
    );
    assert!(result.status.success(), "{}", text(&result.stderr));
}

#[test]
fn missing_or_wrong_dataset_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_dataset(dir.path(), 40);
    std::fs::remove_file(data.join("HousesInfo.txt")).unwrap();
    refuses(
        dir.path(),
        &["train", "--dataset", "data", "--out", "out"],
        2,
        &["HousesInfo.txt", "not found"],
    );
    std::fs::create_dir(data.join("HousesInfo.txt")).unwrap();
    refuses(
        dir.path(),
        &["train", "--dataset", "data", "--out", "out"],
        2,
        &["HousesInfo.txt", "is a directory"],
    );
    std::fs::write(dir.path().join("file"), "x").unwrap();
    refuses(
        dir.path(),
        &["train", "--dataset", "file", "--out", "out"],
        2,
        &["file", "is not a folder"],
    );
    refuses(
        dir.path(),
        &["train", "--dataset", "nowhere", "--out", "out"],
        2,
        &["nowhere", "does not exist"],
    );
    // No dataset anywhere and no downloads allowed (the cache folder lies outside `dir`,
    // which must stay unchanged).
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    for command in ["train", "cv", "ingest"] {
        let mut args = vec![command, "--offline", "--cache-dir", cache_dir];
        if command == "train" {
            args.extend(["--out", "out"]);
        }
        refuses(
            dir.path(),
            &args,
            2,
            &[
                "--offline forbids downloading",
                "appraise fetch",
                "git clone https://github.com/emanhamed/Houses-dataset",
            ],
        );
    }
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
}

#[test]
fn unreadable_housesinfo_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_dataset(dir.path(), 40);
    let info = data.join("HousesInfo.txt");
    std::fs::set_permissions(&info, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&info).is_ok() {
        eprintln!("running as root: permissions do not stop reads, skipping the unreadable case");
        return;
    }
    refuses(
        dir.path(),
        &["train", "--dataset", "data", "--out", "out"],
        1,
        &["HousesInfo.txt", "Permission denied"],
    );
}

#[test]
fn out_of_range_flags_and_impossible_splits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    tiny_dataset(dir.path(), 40);
    let train = |extra: &[&str], expect: &[&str]| {
        let mut args = vec![
            "train",
            "--dataset",
            "data",
            "--out",
            "out",
            "--epochs",
            "2",
        ];
        args.extend(extra);
        refuses(dir.path(), &args, 2, expect);
    };
    train(&["--epochs", "0"], &["--epochs must be at least 1"]);
    train(&["--batch-size", "0"], &["--batch-size must be at least 1"]);
    train(
        &["--learning-rate", "-0.1"],
        &["--learning-rate must be a positive number"],
    );
    train(
        &["--learning-rate", "NaN"],
        &["--learning-rate must be a positive number"],
    );
    train(
        &["--learning-rate", "0"],
        &["--learning-rate must be a positive number"],
    );
    for size in ["0", "1", "1.5", "-0.2"] {
        train(
            &["--test-size", size],
            &["--test-size must be a fraction strictly between 0 and 1"],
        );
    }
    train(
        &["--min-zip-count", "1000"],
        &["--min-zip-count", "at least 2 are needed"],
    );
    train(&["--test-size", "0.99"], &["leaves 0 for training"]);
    train(&["--epochs", "x"], &["invalid value 'x'"]);
    train(&["--seed", "-1"], &["invalid value '-1'"]);
    train(&["--model", "cnnx"], &["invalid value 'cnnx'"]);
    train(
        &["--device", "tpu"],
        &["unknown device 'tpu'", "cpu, wgpu, cuda"],
    );
    // A GPU backend this build lacks is refused before any work, saying how to get it.
    if !appraise::runtime::device::Compute::Wgpu.is_built() {
        train(&["--device", "wgpu"], &["--features wgpu", "--device cpu"]);
    }
    // Output inside a missing folder is fine for --out (it is created), not inside a file.
    std::fs::write(dir.path().join("afile"), "keep me").unwrap();
    train(&["--out", "afile/run"], &["afile", "is not a folder"]);
}

#[test]
fn a_diverging_run_stops_with_a_suggestion_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    tiny_dataset(dir.path(), 40);
    let args = [
        "train",
        "--dataset",
        "data",
        "--out",
        "out",
        "--learning-rate",
        "1e30",
    ];
    refuses(
        dir.path(),
        &args,
        1,
        &[
            "training diverged",
            "no model was written",
            "lower --learning-rate",
        ],
    );
}

#[test]
fn output_in_a_read_only_folder_is_refused_before_training() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    tiny_dataset(dir.path(), 40);
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(locked.join("probe"), "x").is_ok() {
        std::fs::remove_file(locked.join("probe")).unwrap();
        eprintln!("running as root: permissions do not stop writes, skipping the read-only case");
        return;
    }
    refuses(
        dir.path(),
        &["train", "--dataset", "data", "--out", "locked/run"],
        2,
        &["locked", "cannot write"],
    );
}

#[test]
fn damaged_model_files_are_refused_by_every_command() {
    let (dir, _data, run) = trained_model();
    let good = std::fs::read(run.join("model.appraise")).unwrap();
    let mut newer = good.clone();
    newer[8] = 99;
    // Weights whose shapes don't match the config: a header claiming wider layers.
    let json_len = u64::from_le_bytes(good[12..20].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&good[20..20 + json_len]).unwrap();
    header["network"]["hidden"] = serde_json::json!([16, 4]);
    let json = serde_json::to_vec(&header).unwrap();
    let mut mismatched = good[..12].to_vec();
    mismatched.extend((json.len() as u64).to_le_bytes());
    mismatched.extend(&json);
    mismatched.extend(&good[20 + json_len..]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.appraise", vec![], "is empty"),
        (
            "random.appraise",
            (0..500u32).map(|i| (i * 7919 % 256) as u8).collect(),
            "not an appraise model file",
        ),
        (
            "truncated.appraise",
            good[..good.len() / 2].to_vec(),
            "truncated",
        ),
        ("short.appraise", good[..good.len() - 1].to_vec(), "damaged"),
        ("newer.appraise", newer, "newer appraise"),
        ("mismatched.appraise", mismatched, "shape"),
    ];
    for (name, bytes, expect) in cases {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        let one = [
            "--bedrooms",
            "3",
            "--bathrooms",
            "2",
            "--area",
            "1500",
            "--zipcode",
            "92276",
        ];
        let commands: Vec<Vec<&str>> = vec![
            vec!["summary", "--model", name],
            [
                &["predict", "--model", name, "--output", "out.csv"][..],
                &one[..],
            ]
            .concat(),
            vec!["evaluate", "--model", name, "--dataset", "data"],
        ];
        for command in commands {
            refuses(dir.path(), &command, 2, &[name, expect]);
        }
    }
    refuses(
        dir.path(),
        &["summary", "--model", "nothing.appraise"],
        2,
        &["nothing.appraise", "not found"],
    );
    refuses(
        dir.path(),
        &["summary", "--model", "run"],
        2,
        &["run", "is a folder"],
    );
}

#[test]
fn bad_prediction_input_is_refused() {
    let (dir, _data, _run) = trained_model();
    let model = "run/model.appraise";
    let inputs: [(&str, &[&str]); 6] = [
        (
            "bedrooms,bathrooms,zipcode\n1,2,92276\n",
            &["in.csv", "no column \"area\""],
        ),
        (
            "bedrooms,bathrooms,area,zipcode\n1,2,abc,92276\n",
            &["in.csv:2: field area"],
        ),
        (
            "bedrooms,bathrooms,area,zipcode\n1,2,-5,92276\n",
            &["in.csv:2", "negative"],
        ),
        ("bedrooms,bathrooms,area,zipcode\n1,2,5\n", &["in.csv:2"]),
        ("bedrooms,bathrooms,area,zipcode\n", &["in.csv", "no rows"]),
        ("", &["in.csv"]),
    ];
    for (input, expect) in inputs {
        std::fs::write(dir.path().join("in.csv"), input).unwrap();
        refuses(
            dir.path(),
            &[
                "predict", "--model", model, "--input", "in.csv", "--output", "out.csv",
            ],
            2,
            expect,
        );
    }
    std::fs::write(
        dir.path().join("latin1.csv"),
        b"bedrooms,bathrooms,area,zipcode\n1,2,\xe9,92276\n",
    )
    .unwrap();
    refuses(
        dir.path(),
        &["predict", "--model", model, "--input", "latin1.csv"],
        2,
        &["latin1.csv", "UTF-8"],
    );
    refuses(
        dir.path(),
        &["predict", "--model", model, "--input", "missing.csv"],
        2,
        &["missing.csv", "not found"],
    );
    refuses(
        dir.path(),
        &["predict", "--model", model, "--bedrooms", "3"],
        2,
        &["--bathrooms"],
    );
    refuses(
        dir.path(),
        &[
            "predict",
            "--model",
            model,
            "--bedrooms",
            "NaN",
            "--bathrooms",
            "2",
            "--area",
            "5",
            "--zipcode",
            "92276",
        ],
        2,
        &["--bedrooms must be a non-negative number"],
    );
    refuses(
        dir.path(),
        &[
            "predict",
            "--model",
            model,
            "--bedrooms",
            "3",
            "--bathrooms",
            "2",
            "--area",
            "5",
            "--zipcode",
            "92276",
            "--output",
            "nowhere/out.csv",
        ],
        2,
        &["nowhere", "does not exist"],
    );
}

#[test]
fn ctrl_c_during_training_exits_130_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    tiny_dataset(dir.path(), 40);
    let before = snapshot(dir.path());
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_appraise"))
        .args([
            "train",
            "--dataset",
            "data",
            "--out",
            "out",
            "--epochs",
            "1000000",
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let training start, then press Ctrl-C.
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(snapshot(dir.path()) == before, "files changed after Ctrl-C");
}

/// A synthetic dataset with photos in `dir/photos`, and a valid JPEG's bytes.
fn photo_dataset(dir: &Path) -> Vec<u8> {
    let result = appraise(
        &["synth", "--houses", "12", "--photos", "--out", "photos"],
        dir,
    );
    assert!(result.status.success(), "{}", text(&result.stderr));
    std::fs::read(dir.join("photos/1_frontal.jpg")).unwrap()
}

fn ingest_args() -> Vec<&'static str> {
    vec![
        "ingest",
        "--dataset",
        "photos",
        "--min-zip-count",
        "1",
        "--cache-dir",
        "cache",
    ]
}

#[test]
fn bad_photos_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = photo_dataset(dir.path());
    let photo = dir.path().join("photos/5_kitchen.jpg");
    let mut huge = good.clone();
    // Claim 30000x30000 pixels in the frame header (SOF0: FF C0, length, precision, height, width).
    let sof = huge
        .windows(2)
        .position(|w| w == [0xff, 0xc0])
        .expect("a baseline JPEG");
    huge[sof + 5..sof + 7].copy_from_slice(&30000u16.to_be_bytes());
    huge[sof + 7..sof + 9].copy_from_slice(&30000u16.to_be_bytes());
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec();
    let cases: Vec<(Option<Vec<u8>>, &[&str])> = vec![
        (None, &["5_kitchen.jpg", "photo not found"]),
        (Some(vec![]), &["5_kitchen.jpg", "empty file"]),
        (
            Some(good[..good.len() / 3].to_vec()),
            &["5_kitchen.jpg", "decode"],
        ),
        (
            Some(b"this is not a photo\n".to_vec()),
            &["5_kitchen.jpg", "not a JPEG file"],
        ),
        (Some(png), &["5_kitchen.jpg", "is a PNG file named .jpg"]),
        (Some(huge), &["5_kitchen.jpg", "30000x30000", "limit"]),
    ];
    for (content, expect) in cases {
        match content {
            None => {
                let _ = std::fs::remove_file(&photo);
            }
            Some(bytes) => std::fs::write(&photo, bytes).unwrap(),
        }
        refuses(dir.path(), &ingest_args(), 2, expect);
        for model in ["cnn", "mixed"] {
            let train = [
                "train",
                "--dataset",
                "photos",
                "--model",
                model,
                "--min-zip-count",
                "1",
                "--epochs",
                "1",
                "--cache-dir",
                "cache",
                "--out",
                "run",
            ];
            refuses(dir.path(), &train, 2, expect);
        }
    }
    // Restored, the dataset's photos are embedded into the cache; the second run reads them.
    std::fs::write(&photo, &good).unwrap();
    let first = appraise(&ingest_args(), dir.path());
    assert!(
        text(&first.stdout).contains("12 houses, 48 photos: embedded"),
        "{}",
        text(&first.stdout)
    );
    let second = appraise(&ingest_args(), dir.path());
    assert!(
        text(&second.stdout).contains("read from the cache"),
        "{}",
        text(&second.stdout)
    );
    let mut no_cache = ingest_args();
    no_cache.push("--no-cache");
    assert!(text(&appraise(&no_cache, dir.path()).stdout).contains("embedded"));
}

#[test]
fn grayscale_and_cmyk_photos_are_converted_not_rejected() {
    let dir = tempfile::tempdir().unwrap();
    photo_dataset(dir.path());
    let encode = |pixels: &[u8], kind| {
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 90)
            .encode(pixels, 80, 60, kind)
            .unwrap();
        out
    };
    let gray = encode(&[100u8; 80 * 60], jpeg_encoder::ColorType::Luma);
    let cmyk = encode(
        &[[10u8, 200, 30, 220]; 80 * 60].concat(),
        jpeg_encoder::ColorType::Cmyk,
    );
    std::fs::write(dir.path().join("photos/2_bedroom.jpg"), gray).unwrap();
    std::fs::write(dir.path().join("photos/3_bathroom.jpg"), cmyk).unwrap();
    let result = appraise(&ingest_args(), dir.path());
    assert!(result.status.success(), "{}", text(&result.stderr));
}
