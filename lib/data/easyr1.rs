//! RL records in EasyR1's parquet layout (papers_spec §1.4, §2.2): one row per prompt with
//! - `images`: `list<struct<bytes: binary, path: string>>`, the encoding Hugging Face `datasets`
//!   writes for a `Sequence(Image())` column and that EasyR1's `process_image` opens
//!   (`Image.open(BytesIO(image["bytes"]))`); an empty list for a text-only row;
//! - `problem`: the prompt, with one `<image>` placeholder per image (EasyR1 splits on it);
//! - `answer`: the ground truth as a string;
//! - `id`: an extra column EasyR1 ignores, kept for traceability.
//!
//! Checked with `datasets` 5.2 / pyarrow: `load_dataset("parquet", ...)` yields each image as a
//! `{"bytes", "path"}` dict (polars stores the strings and bytes as arrow view types), which every
//! EasyR1-family `process_image` opens; `cast_column("images", Sequence(Image()))` turns them into
//! PIL images. No `huggingface` features metadata is written: pyarrow takes the schema from
//! polars' `ARROW:schema` entry and would not see it.
//!
//! [`read_parquet`] also accepts `images` as `list<binary>` or `list<string>` (paths), and files
//! without `id` (ids become the row numbers), so released data sets load through the same path.
use std::path::Path;

use anyhow::{Context, Result, bail};
use polars::prelude::{
    Column, DataFrame, DataType, Field, IntoColumn, IntoSeries, NamedFrom, ParquetReader, ParquetWriter, SerReader,
    Series, StructChunked,
};
use serde::{Deserialize, Serialize};

use super::synthetic::Problem;
use crate::io::write_atomic_with;

/// One image of a record: its encoded bytes, its path, or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    pub bytes: Option<Vec<u8>>,
    pub path: Option<String>,
}

/// One RL prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RlRecord {
    pub id: String,
    pub images: Vec<ImageRef>,
    pub problem: String,
    pub answer: String,
}

impl RlRecord {
    /// The multimodal record of a synthetic problem (PNG bytes inline, path `{id}.png`).
    pub fn from_problem(p: &Problem) -> Self {
        RlRecord {
            id: p.id.clone(),
            images: vec![ImageRef { bytes: Some(p.png.clone()), path: Some(format!("{}.png", p.id)) }],
            problem: p.problem(),
            answer: p.answer.clone(),
        }
    }

    /// The text-only twin of a synthetic problem (no image, facts in the text; id suffixed `-text`).
    pub fn text_twin(p: &Problem) -> Self {
        RlRecord { id: format!("{}-text", p.id), images: vec![], problem: p.text_twin(), answer: p.answer.clone() }
    }
}

fn image_dtype() -> DataType {
    DataType::Struct(vec![Field::new("bytes".into(), DataType::Binary), Field::new("path".into(), DataType::String)])
}

/// The records as a DataFrame with columns `images`, `problem`, `answer`, `id`.
pub fn to_frame(records: &[RlRecord]) -> Result<DataFrame> {
    let mut lists = Vec::with_capacity(records.len());
    for r in records {
        let bytes: Vec<Option<&[u8]>> = r.images.iter().map(|i| i.bytes.as_deref()).collect();
        let paths: Vec<Option<&str>> = r.images.iter().map(|i| i.path.as_deref()).collect();
        let fields = [Series::new("bytes".into(), bytes), Series::new("path".into(), paths)];
        let s = StructChunked::from_series("".into(), r.images.len(), fields.iter())
            .with_context(|| format!("building the images of record {}", r.id))?;
        lists.push(s.into_series());
    }
    let images = if lists.is_empty() {
        Series::new_empty("images".into(), &DataType::List(Box::new(image_dtype())))
    } else {
        Series::new("images".into(), lists)
    };
    let col = |name: &str, f: &dyn Fn(&RlRecord) -> &str| {
        Column::new(name.into(), records.iter().map(f).collect::<Vec<&str>>())
    };
    let df = DataFrame::new(
        records.len(),
        vec![
            images.into_column(),
            col("problem", &|r| &r.problem),
            col("answer", &|r| &r.answer),
            col("id", &|r| &r.id),
        ],
    )?;
    Ok(df)
}

/// Writes `records` to `path` (atomically) in EasyR1's layout.
pub fn write_parquet(path: &Path, records: &[RlRecord]) -> Result<()> {
    let mut df = to_frame(records)?;
    write_atomic_with(path, |w| {
        ParquetWriter::new(w).finish(&mut df)?;
        Ok(())
    })
    .with_context(|| format!("writing EasyR1 parquet {}", path.display()))
}

/// Reads an EasyR1 parquet file (see the module header for the accepted `images` encodings).
pub fn read_parquet(path: &Path) -> Result<Vec<RlRecord>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("opening {}: write it with `r1lab data synth` or check the path", path.display()))?;
    let df = ParquetReader::new(file).finish().with_context(|| format!("reading parquet {}", path.display()))?;
    from_frame(&df).with_context(|| format!("reading EasyR1 records from {}", path.display()))
}

/// The records of a DataFrame in EasyR1's layout.
pub fn from_frame(df: &DataFrame) -> Result<Vec<RlRecord>> {
    let need = |name: &str| {
        df.column(name).with_context(|| format!("no `{name}` column: an EasyR1 file needs images, problem, answer"))
    };
    let problems = need("problem")?.str().context("`problem` must be a string column")?;
    let answers = need("answer")?.str().context("`answer` must be a string column")?;
    let images = need("images")?.list().context("`images` must be a list column")?;
    let ids = match df.column("id") {
        Ok(c) => Some(c.str().context("`id` must be a string column")?),
        Err(_) => None,
    };
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let imgs = match images.get_as_series(i) {
            None => vec![],
            Some(s) => images_of(&s).with_context(|| format!("row {i}"))?,
        };
        out.push(RlRecord {
            id: ids.and_then(|c| c.get(i)).map_or_else(|| i.to_string(), str::to_string),
            images: imgs,
            problem: problems.get(i).unwrap_or_default().to_string(),
            answer: answers.get(i).unwrap_or_default().to_string(),
        });
    }
    Ok(out)
}

fn images_of(s: &Series) -> Result<Vec<ImageRef>> {
    Ok(match s.dtype() {
        DataType::Struct(_) => {
            let st = s.struct_()?;
            let bytes = st.field_by_name("bytes").ok();
            let paths = st.field_by_name("path").ok();
            let bytes = bytes.as_ref().map(|b| b.binary()).transpose()?;
            let paths = paths.as_ref().map(|p| p.str()).transpose()?;
            (0..s.len())
                .map(|j| ImageRef {
                    bytes: bytes.and_then(|b| b.get(j)).map(<[u8]>::to_vec),
                    path: paths.and_then(|p| p.get(j)).map(str::to_string),
                })
                .collect()
        }
        DataType::Binary => {
            let b = s.binary()?;
            (0..s.len()).map(|j| ImageRef { bytes: b.get(j).map(<[u8]>::to_vec), path: None }).collect()
        }
        DataType::String => {
            let p = s.str()?;
            (0..s.len()).map(|j| ImageRef { bytes: None, path: p.get(j).map(str::to_string) }).collect()
        }
        DataType::Null => vec![],
        other => bail!("unsupported `images` element type {other}: expected struct{{bytes, path}}, binary or string"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, n_img: usize) -> RlRecord {
        RlRecord {
            id: id.into(),
            images: (0..n_img)
                .map(|k| ImageRef { bytes: Some(vec![k as u8, 1, 2]), path: Some(format!("{k}.png")) })
                .collect(),
            problem: format!("{}Q{id}", "<image>".repeat(n_img)),
            answer: "7".into(),
        }
    }

    #[test]
    fn round_trip_with_text_only_rows_and_empty_files() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("train.parquet");
        let recs = vec![rec("a", 1), rec("b", 0), rec("c", 2)];
        write_parquet(&path, &recs).unwrap();
        assert_eq!(read_parquet(&path).unwrap(), recs);
        write_parquet(&path, &[]).unwrap();
        assert!(read_parquet(&path).unwrap().is_empty());
        write_parquet(&path, &[rec("t", 0)]).unwrap();
        assert_eq!(read_parquet(&path).unwrap(), vec![rec("t", 0)]);
    }

    #[test]
    fn reads_path_lists_without_ids_and_names_missing_columns() {
        let images = Series::new("images".into(), [Series::new("".into(), ["x.png"])]);
        let df = DataFrame::new_infer_height(vec![
            images.into_column(),
            Column::new("problem".into(), ["<image>q"]),
            Column::new("answer".into(), ["B"]),
        ])
        .unwrap();
        let r = from_frame(&df).unwrap();
        assert_eq!(r[0].id, "0");
        assert_eq!(r[0].images, vec![ImageRef { bytes: None, path: Some("x.png".into()) }]);
        let err = from_frame(&df.drop("answer").unwrap()).unwrap_err();
        assert!(format!("{err:#}").contains("`answer`"), "{err:#}");
    }
}
