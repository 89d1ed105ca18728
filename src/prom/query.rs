//! What PromQL queries return: the `resultType`/`result` envelope of `/api/v1/query` and
//! `/api/v1/query_range` as typed values, sample values parsed from the strings Prometheus
//! sends (`"0.25"`, `"NaN"`, `"+Inf"`, `"-Inf"`).
//!
//! It does not evaluate or build PromQL, and it does not decode native histograms (a sample
//! that carries `histogram` instead of `value` is a parse error naming the endpoint).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// A series' labels, `__name__` included when the query kept it.
pub type Labels = BTreeMap<String, String>;

/// An answer with the warnings (and, from Prometheus 3, infos) Prometheus attached to it: a
/// query over partial data says so here, and a caller judging an SLO should say so too.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    pub data: T,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

/// The result of an instant query.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
pub enum Data {
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
    Scalar(Point),
    String(Text),
}

impl Data {
    /// The `resultType` Prometheus named.
    pub fn kind(&self) -> &'static str {
        match self {
            Data::Vector(_) => "vector",
            Data::Matrix(_) => "matrix",
            Data::Scalar(_) => "scalar",
            Data::String(_) => "string",
        }
    }

    /// The samples of a vector result.
    pub fn vector(&self) -> Option<&[Sample]> {
        match self {
            Data::Vector(v) => Some(v),
            _ => None,
        }
    }

    /// The series of a matrix result.
    pub fn matrix(&self) -> Option<&[Series]> {
        match self {
            Data::Matrix(m) => Some(m),
            _ => None,
        }
    }

    /// The value of a scalar result.
    pub fn scalar(&self) -> Option<f64> {
        match self {
            Data::Scalar(p) => Some(p.value),
            _ => None,
        }
    }
}

/// The result of a range query: always a matrix.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
pub(super) enum Range {
    Matrix(Vec<Series>),
}

/// One series' value at the query's time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Sample {
    pub metric: Labels,
    pub value: Point,
}

/// One series' values over a range.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Series {
    pub metric: Labels,
    #[serde(default)]
    pub values: Vec<Point>,
}

/// A value at a time: `[1716406929.82, "0.25"]` on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Unix time in seconds (millisecond precision).
    pub time: f64,
    pub value: f64,
}

impl<'de> Deserialize<'de> for Point {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Point, D::Error> {
        let (time, value) = <(f64, String)>::deserialize(d)?;
        Ok(Point {
            time,
            value: parse_value(&value).map_err(serde::de::Error::custom)?,
        })
    }
}

/// A string result: `[1716406929.82, "text"]` on the wire.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "(f64, String)")]
pub struct Text {
    pub time: f64,
    pub value: String,
}

impl From<(f64, String)> for Text {
    fn from((time, value): (f64, String)) -> Text {
        Text { time, value }
    }
}

/// A sample value as Prometheus writes it (Go's shortest float form, `NaN`, `+Inf`, `-Inf`).
pub fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        // Rust would also take `inf`, `infinity` and `nan` in any case; Prometheus sends none
        // of them, and a value that is not Prometheus' is better refused than guessed.
        _ if text
            .chars()
            .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E') =>
        {
            Err(format!("sample value `{text}` is not a number"))
        }
        _ => text
            .parse()
            .map_err(|_| format!("sample value `{text}` is not a number")),
    }
}

/// `serde(deserialize_with)` for a value in its string form.
pub(super) fn value<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let text = String::deserialize(d)?;
    parse_value(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(json: &str) -> Data {
        serde_json::from_str(json).expect(json)
    }

    #[test]
    fn values_in_prometheus_string_form() {
        for (text, want) in [
            ("1", 1.0),
            ("0.25", 0.25),
            ("-3", -3.0),
            ("1e+06", 1e6),
            ("2.5e-05", 2.5e-5),
            ("+Inf", f64::INFINITY),
            ("-Inf", f64::NEG_INFINITY),
        ] {
            assert_eq!(parse_value(text), Ok(want), "{text}");
        }
        assert!(parse_value("NaN").expect("NaN").is_nan());
        for bad in ["", "one", "inf", "nan", "1,5", "0x10"] {
            let err = parse_value(bad).expect_err(bad);
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn a_vector() {
        let d = data(
            r#"{"resultType":"vector","result":[
                {"metric":{"__name__":"up","job":"prometheus"},"value":[1716406929.82,"1"]},
                {"metric":{},"value":[1716406929.82,"NaN"]}]}"#,
        );
        assert_eq!(d.kind(), "vector");
        let v = d.vector().expect("a vector");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].metric["job"], "prometheus");
        assert_eq!(
            v[0].value,
            Point {
                time: 1716406929.82,
                value: 1.0
            }
        );
        assert!(v[1].value.value.is_nan());
        assert!(d.matrix().is_none() && d.scalar().is_none());
    }

    #[test]
    fn a_matrix_a_scalar_and_a_string() {
        let d = data(
            r#"{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1,"+Inf"],[2,"-Inf"]]}]}"#,
        );
        let m = d.matrix().expect("a matrix");
        let values: Vec<_> = m[0].values.iter().map(|p| (p.time, p.value)).collect();
        assert_eq!(values, [(1.0, f64::INFINITY), (2.0, f64::NEG_INFINITY)]);
        assert_eq!(
            data(r#"{"resultType":"scalar","result":[3.5,"42"]}"#).scalar(),
            Some(42.0)
        );
        assert_eq!(
            data(r#"{"resultType":"string","result":[3.5,"hello"]}"#),
            Data::String(Text {
                time: 3.5,
                value: "hello".into()
            })
        );
    }

    #[test]
    fn a_value_that_is_not_a_number_is_refused() {
        let err = serde_json::from_str::<Data>(
            r#"{"resultType":"vector","result":[{"metric":{},"value":[1,"many"]}]}"#,
        )
        .expect_err("not a number");
        assert!(err.to_string().contains("`many`"), "{err}");
        let err = serde_json::from_str::<Data>(r#"{"resultType":"histogram","result":[]}"#)
            .expect_err("no such type");
        assert!(err.to_string().contains("histogram"), "{err}");
    }
}
