//! The benchmark layouts checked against the published repositories (see each adapter's header), on
//! fixtures each test writes in that layout: the MATH-Vision Hub parquet form (`data/test-*.parquet`,
//! `decoded_image` embedded), DynaMath's Hub shard names (`data/sample<k>-*.parquet`) and its
//! parquet-converter form, and MathVerse's `image` field relative to the data folder
//! (`images_version_6/...`) with `question_for_eval`.
use std::path::Path;

use super::{copy_fixture, fixtures};

use r1lab::eval::bench::mathverse::eval_questions;
use r1lab::eval::bench::{BenchItem, Benchmark, load};
use r1lab::polars::prelude::{
    Column, DataFrame, IntoColumn, IntoSeries, NamedFrom, ParquetWriter, Series, StructChunked,
};

fn without_images(items: &[BenchItem]) -> Vec<BenchItem> {
    items.iter().map(|i| BenchItem { images: vec![], ..i.clone() }).collect()
}

/// A 1x1 PNG (the signature and IHDR are all the adapters look at).
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00";

/// `data/test-00000-of-00001-<hash>.parquet` with MATH-Vision's Hub columns, holding the rows of the JSON-lines
/// fixture; `decoded_image` embeds a PNG per row.
fn write_mathvision_parquet(root: &Path) {
    let text = std::fs::read_to_string(fixtures("mathvision/data/test.jsonl")).unwrap();
    let recs: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let s = |k: &str| recs.iter().map(|r| r[k].as_str().map(str::to_string)).collect::<Vec<Option<String>>>();
    let options: Vec<Series> = recs
        .iter()
        .map(|r| {
            let o: Vec<&str> = r["options"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
            Series::new("".into(), o)
        })
        .collect();
    let levels: Vec<i64> = recs.iter().map(|r| r["level"].as_i64().unwrap()).collect();
    let bytes: Vec<Option<&[u8]>> = recs.iter().map(|_| Some(PNG)).collect();
    let paths: Vec<Option<String>> = s("image");
    let fields = [Series::new("bytes".into(), bytes), Series::new("path".into(), paths.clone())];
    let decoded = StructChunked::from_series("decoded_image".into(), recs.len(), fields.iter()).unwrap();
    let mut df = DataFrame::new(
        recs.len(),
        vec![
            Column::new("id".into(), s("id")),
            Column::new("question".into(), s("question")),
            Series::new("options".into(), options).into_column(),
            Column::new("image".into(), paths),
            decoded.into_series().into_column(),
            Column::new("answer".into(), s("answer")),
            Column::new("solution".into(), s("solution")),
            Column::new("level".into(), levels),
            Column::new("subject".into(), s("subject")),
        ],
    )
    .unwrap();
    std::fs::create_dir_all(root.join("data")).unwrap();
    let f = std::fs::File::create(root.join("data/test-00000-of-00001-3532b8d3f1b4047a.parquet")).unwrap();
    ParquetWriter::new(f).finish(&mut df).unwrap();
}

#[test]
fn mathvision_hub_parquet_gives_the_jsonl_items() {
    let jsonl = load(Benchmark::MathVision, &fixtures("mathvision")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("MathVision");
    write_mathvision_parquet(&root);
    // A testmini shard beside it is not part of the test split.
    std::fs::copy(
        root.join("data/test-00000-of-00001-3532b8d3f1b4047a.parquet"),
        root.join("data/testmini-00000-of-00001-f8ff70fcb2f29b1d.parquet"),
    )
    .unwrap();
    let hub = load(Benchmark::MathVision, &root).unwrap();
    assert_eq!(without_images(&hub), without_images(&jsonl));
    assert_eq!(hub[0].images[0], root.join("r1lab_images/test/1.png"));
    assert_eq!(std::fs::read(&hub[1].images[0]).unwrap(), PNG);
    assert_eq!(hub[1].categories["level"], "2");

    // With the Hub's images.zip unpacked into the root, the named files are used.
    std::fs::create_dir_all(root.join("images")).unwrap();
    for id in ["1", "2"] {
        std::fs::copy(fixtures(&format!("mathvision/images/{id}.jpg")), root.join(format!("images/{id}.jpg"))).unwrap();
    }
    let unpacked = load(Benchmark::MathVision, &root).unwrap();
    assert_eq!(unpacked[0].images[0], root.join("images/1.jpg"));

    // No JSON lines and no test shard: the error names both forms.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(empty.join("data")).unwrap();
    let e = format!("{:#}", load(Benchmark::MathVision, &empty).unwrap_err());
    assert!(e.contains("test-*.parquet") && e.contains("data/test.jsonl"), "{e}");
}

#[test]
fn dynamath_hub_shard_names_and_the_converter_branch() {
    let reference = {
        let (_tmp, root) = copy_fixture("dynamath");
        without_images(&load(Benchmark::DynaMath, &root).unwrap())
    };
    // The Hub's main branch: data/sample<k>-00000-of-0000<k>.parquet.
    let (_tmp, root) = copy_fixture("dynamath");
    for k in 1..=10 {
        let from = root.join(format!("data/sample_variant{k}-00000-of-00001.parquet"));
        std::fs::rename(from, root.join(format!("data/sample{k}-00000-of-{k:05}.parquet"))).unwrap();
    }
    let hub = load(Benchmark::DynaMath, &root).unwrap();
    assert_eq!(without_images(&hub), reference);
    assert_eq!(hub[0].images[0], root.join("r1lab_images/sample_variant1/1.png"));
    // `sample1-` does not pick up `sample10-...`: variant 1 has exactly the two seeds.
    assert_eq!(hub.iter().filter(|i| i.categories["variant"] == "1").count(), 2);
    std::fs::remove_file(root.join("data/sample3-00000-of-00003.parquet")).unwrap();
    let e = format!("{:#}", load(Benchmark::DynaMath, &root).unwrap_err());
    assert!(e.contains("sample3-*.parquet"), "{e}");

    // The parquet-converter branch: default/sample_variant<k>/0000.parquet.
    let (_tmp2, conv) = copy_fixture("dynamath");
    for k in 1..=10 {
        let dir = conv.join(format!("default/sample_variant{k}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::rename(conv.join(format!("data/sample_variant{k}-00000-of-00001.parquet")), dir.join("0000.parquet"))
            .unwrap();
    }
    assert_eq!(without_images(&load(Benchmark::DynaMath, &conv).unwrap()), reference);
}

#[test]
fn mathverse_images_relative_to_the_data_folder_and_question_for_eval() {
    let (_tmp, root) = copy_fixture("mathverse");
    let path = root.join("testmini.json");
    let mut recs: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    // The published form: `images_version_6/image_3.png`, the archive unpacked into the data folder.
    recs[2]["image"] = "images_version_6/image_3.png".into();
    std::fs::create_dir_all(root.join("images_version_6")).unwrap();
    std::fs::rename(root.join("images/image_3.png"), root.join("images_version_6/image_3.png")).unwrap();
    // ... or under an `images/` folder.
    recs[1]["image"] = "images_version_5/image_2.png".into();
    std::fs::create_dir_all(root.join("images/images_version_5")).unwrap();
    std::fs::rename(root.join("images/image_2.png"), root.join("images/images_version_5/image_2.png")).unwrap();
    // Before April 2024 the records had no question_for_eval: the question stands in.
    recs[0].as_object_mut().unwrap().remove("question_for_eval");
    std::fs::write(&path, serde_json::to_vec(&recs).unwrap()).unwrap();

    let items = load(Benchmark::MathVerse, &root).unwrap();
    assert_eq!(items[2].images[0], root.join("images_version_6/image_3.png"));
    assert_eq!(items[1].images[0], root.join("images/images_version_5/image_2.png"));
    let q = eval_questions(&root).unwrap();
    assert_eq!(q.len(), 3);
    assert_eq!(q["1"], recs[0]["question"].as_str().unwrap());
    assert_eq!(q["3"], recs[2]["question_for_eval"].as_str().unwrap());
}
