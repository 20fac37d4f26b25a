//! transformers' `tojson` template filter: Python's `json.dumps(x, ensure_ascii=False, indent=indent,
//! separators=separators, sort_keys=sort_keys)` (transformers replaces Jinja's HTML-escaping `tojson` with it).
//! minijinja's own `tojson` escapes `<`, `>`, `&`, `'` and spaces differently, so chat templates that print
//! tools or arguments as JSON (Qwen2.5's tool calling) need this one.
//!
//! Floats are written as Python's `repr` does (shortest round-trip digits, exponent form below 1e-4 and from
//! 1e16, `NaN`/`Infinity`); undefined values are written as `null`.
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Error, ErrorKind};

/// The filter: `{{ x | tojson }}`, `{{ x | tojson(indent=2) }}`, `separators=(",", ":")`, `sort_keys=true`.
pub fn tojson(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<Value> = kwargs.get("indent")?;
    let separators: Option<Value> = kwargs.get("separators")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    if ensure_ascii == Some(true) {
        return Err(Error::new(ErrorKind::InvalidOperation, "tojson(ensure_ascii=true) is not supported"));
    }
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => match v.as_str() {
            Some(s) => Some(s.to_string()),
            None => Some(" ".repeat(usize::try_from(v)?)),
        },
    };
    let (item_sep, key_sep) = match separators {
        Some(v) if !v.is_none() => {
            let item = v.get_item_by_index(0)?;
            let key = v.get_item_by_index(1)?;
            match (item.as_str(), key.as_str()) {
                (Some(i), Some(k)) => (i.to_string(), k.to_string()),
                _ => return Err(Error::new(ErrorKind::InvalidOperation, "tojson separators must be two strings")),
            }
        }
        _ if indent.is_some() => (",".to_string(), ": ".to_string()),
        _ => (", ".to_string(), ": ".to_string()),
    };
    let opts = Opts { indent, item_sep, key_sep, sort_keys: sort_keys.unwrap_or(false) };
    let mut out = String::new();
    write_value(value, &opts, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

struct Opts {
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

fn newline(opts: &Opts, level: usize, out: &mut String) {
    if let Some(indent) = &opts.indent {
        out.push('\n');
        for _ in 0..level {
            out.push_str(indent);
        }
    }
}

fn write_value(value: &Value, opts: &Opts, level: usize, out: &mut String) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number if value.is_integer() => out.push_str(&value.to_string()),
        ValueKind::Number => out.push_str(&python_float_repr(f64::try_from(value.clone())?)),
        ValueKind::String => write_string(value.as_str().unwrap_or_default(), out),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            write_container(out, opts, level, ('[', ']'), &items, |item, out| write_value(item, opts, level + 1, out))?;
        }
        ValueKind::Map => {
            let mut pairs: Vec<(String, Value)> = Vec::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                let key = match key.as_str() {
                    Some(s) => s.to_string(),
                    None if key.is_none() => "null".to_string(),
                    None => {
                        let mut k = String::new();
                        write_value(&key, opts, level, &mut k)?;
                        k
                    }
                };
                pairs.push((key, item));
            }
            if opts.sort_keys {
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
            }
            write_container(out, opts, level, ('{', '}'), &pairs, |(key, item), out| {
                write_string(key, out);
                out.push_str(&opts.key_sep);
                write_value(item, opts, level + 1, out)
            })?;
        }
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: a value of kind {} is not JSON serializable", value.kind()),
            ));
        }
    }
    Ok(())
}

fn write_container<T>(
    out: &mut String,
    opts: &Opts,
    level: usize,
    (open, close): (char, char),
    items: &[T],
    mut write_item: impl FnMut(&T, &mut String) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(open);
    if items.is_empty() {
        out.push(close);
        return Ok(());
    }
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&opts.item_sep);
        }
        newline(opts, level + 1, out);
        write_item(item, out)?;
    }
    newline(opts, level, out);
    out.push(close);
    Ok(())
}

/// A JSON string as Python's encoder writes it with `ensure_ascii=False`.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `float.__repr__`: shortest digits that round-trip, positional for exponents -4..16, otherwise
/// `d.ddde+XX`.
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e-5".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if (point as usize) >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{body}")
    } else {
        let frac = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits };
        format!("{sign}{frac}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::Environment;

    fn render(template: &str, ctx: Value) -> String {
        let mut env = Environment::new();
        env.add_filter("tojson", tojson);
        env.render_str(template, ctx).unwrap()
    }

    #[test]
    fn floats_like_python_repr() {
        for (x, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (123456789012345.6, "123456789012345.6"),
            (-2.5e-7, "-2.5e-07"),
            (1.5e300, "1.5e+300"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(python_float_repr(x), want, "{x}");
        }
    }

    #[test]
    fn dumps_like_python() {
        // json.dumps(x, ensure_ascii=False): insertion order, then sort_keys + compact separators, then indent.
        let set = r#"{% set x = {"name": "f", "b": [1, 2.5, true, none, "a\"<b>\n é"], "a": {}, "e": []} %}"#;
        let ctx = Value::UNDEFINED;
        assert_eq!(
            render(&format!("{set}{{{{ x | tojson }}}}"), ctx.clone()),
            r#"{"name": "f", "b": [1, 2.5, true, null, "a\"<b>\n é"], "a": {}, "e": []}"#
        );
        assert_eq!(
            render(&format!("{set}{{{{ x | tojson(sort_keys=true, separators=(',', ':')) }}}}"), ctx.clone()),
            r#"{"a":{},"b":[1,2.5,true,null,"a\"<b>\n é"],"e":[],"name":"f"}"#
        );
        assert_eq!(render(&format!("{set}{{{{ x.b[:2] | tojson(indent=2) }}}}"), ctx), "[\n  1,\n  2.5\n]");
    }
}
