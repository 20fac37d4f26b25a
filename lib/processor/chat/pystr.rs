//! Printing values as Jinja2 does, i.e. with Python's `str()`: `{{ true }}` is `True`, `{{ none }}` is
//! `None`, lists and dicts print as Python literals (`['a', 1]`, `{'k': None}`), floats as `repr` (`1e-05`).
//! minijinja would print `true`, `none` and JSON-like containers. Installed as the environment's formatter,
//! so it governs `{{ ... }}` output only: the `string` filter and `~` concatenation keep minijinja's spelling.
//!
//! Strings inside containers are quoted as Python's `repr` does for printable text (single quotes unless the
//! text has a single and no double quote; `\\`, `\n`, `\r`, `\t` and other ASCII control characters
//! escaped); non-ASCII characters Python considers unprintable (e.g. U+2028) are written raw.

use minijinja::value::{Value, ValueKind};
use minijinja::{Error, Output, State, escape_formatter};

use super::tojson::python_float_repr;

/// The formatter: strings, safe strings and undefined print as minijinja prints them (raw, autoescape is
/// off); everything else as Python's `str()`.
pub fn python_formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    match value.kind() {
        ValueKind::String | ValueKind::Undefined => escape_formatter(out, state, value),
        _ => out.write_str(&python_str(value)).map_err(Error::from),
    }
}

/// Python's `str(value)`.
pub fn python_str(value: &Value) -> String {
    match value.kind() {
        ValueKind::String => value.as_str().unwrap_or_default().to_string(),
        _ => python_repr(value),
    }
}

/// Python's `repr(value)`.
pub fn python_repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(value, &mut out);
    out
}

fn write_repr(value: &Value, out: &mut String) {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::Number if value.is_integer() => out.push_str(&value.to_string()),
        ValueKind::Number => match f64::try_from(value.clone()) {
            Ok(x) if x.is_nan() => out.push_str("nan"),
            Ok(x) if x.is_infinite() => out.push_str(if x > 0.0 { "inf" } else { "-inf" }),
            Ok(x) => out.push_str(&python_float_repr(x)),
            Err(_) => out.push_str(&value.to_string()),
        },
        ValueKind::String => write_str_repr(value.as_str().unwrap_or_default(), out),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter().map(|it| it.collect()).unwrap_or_default();
            let (open, close) = if value.is_tuple() { ('(', ')') } else { ('[', ']') };
            out.push(open);
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(item, out);
            }
            if value.is_tuple() && items.len() == 1 {
                out.push(',');
            }
            out.push(close);
        }
        ValueKind::Map => {
            out.push('{');
            let keys: Vec<Value> = value.try_iter().map(|it| it.collect()).unwrap_or_default();
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(key, out);
                out.push_str(": ");
                write_repr(&value.get_item(key).unwrap_or_default(), out);
            }
            out.push('}');
        }
        _ => out.push_str(&value.to_string()),
    }
}

fn write_str_repr(s: &str, out: &mut String) {
    out.push_str(&crate::eval::python::repr_str(s));
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::Environment;

    #[test]
    fn prints_like_python_str() {
        let mut env = Environment::new();
        env.set_formatter(python_formatter);
        let render = |src: &str| env.render_str(src, Value::UNDEFINED).unwrap();
        // Expected strings from Jinja2 3.1 (transformers' environment).
        assert_eq!(render("{{ true }} {{ false }} {{ none }} {{ undefined_name }}|"), "True False None |");
        assert_eq!(
            render("{{ [1, 2.5, 'it\\'s', \"a\\nb\", none, (1,)] }}"),
            r#"[1, 2.5, "it's", 'a\nb', None, (1,)]"#
        );
        assert_eq!(
            render("{{ {'k': [true], 'x': {}} }} {{ 1e-5 }} {{ (1, 'b') }}"),
            "{'k': [True], 'x': {}} 1e-05 (1, 'b')"
        );
        assert_eq!(render("{{ 'plain' }} {{ 3 }}"), "plain 3");
    }
}
