//! mathruler's `are_equal_under_sympy(gt, given)` (`mathruler/grader.py`): the guard
//! `should_allow_eval` (at most two distinct letters once `sqrt`/`frac` are removed, no `^{`,
//! `^(`, `^<digits>^` or `^<two digits>`), then `sympy.simplify(parse_expr("(gt)-(given)")) == 0`
//! with `parse_expr`'s standard transformations plus `implicit_multiplication_application`.
//!
//! sympy is replaced by an exact evaluator. The text is tokenized as Python 3.11's `tokenize`
//! does (its number grammar included, so `2.5.1` is `2.5*.1` and `0012` is `00*12`; `4j` is
//! `4*I`; Unicode identifiers, kept as written since sympy builds `Symbol('ｘ')` from the token
//! text without Python's NFKC; no implicit `*` across a newline), names are resolved as sympy's
//! `auto_symbol` and `split_symbols` do (`xy` → `x*y`, `x2` → `x*2`, `pi` → π, Greek names and
//! names with `_` stay one symbol, `Number('02')` is a syntax error), `sqrt 5` is applied as
//! `implicit_application` does, `n!` is `factorial_notation`, `*` is inserted where
//! `implicit_multiplication` inserts it, and the expression is evaluated to a rational function whose coefficients are exact rationals or,
//! once a decimal literal is involved, 53-bit floats (sympy's `Float` at its default precision),
//! over the atoms π, symbols, I and √p for primes p ([`super::algebra`]). The difference is zero
//! exactly when sympy's `simplify` gives 0 for these expressions (a polynomial identity in
//! independent atoms, with sympy's automatic `sqrt` simplification).
//!
//! Outside this fragment the verdict is "not equal", as a sympy exception is in mathruler:
//! functions other than `sqrt`, powers that are not integer constants, roots of non-constants,
//! factorials other than `n!` of an integer 0 ≤ n ≤ 30 (`!!` included), `//`, `%`, comparisons,
//! sympy names such as `oo` or `re`, decimal literals with more than 15 significant digits (sympy
//! raises their precision), and results that overflow i128 or exceed the size caps of the algebra.
use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::algebra::{Atom, Coef, Frac, Q, factorial, sqrt};
use super::{Budget, Exhausted};

/// Longest `(gt)-(given)` text evaluated (characters).
const MAX_EXPR_CHARS: usize = 512;
/// Deepest nesting of unary operators, powers and parentheses.
const MAX_DEPTH: usize = 64;

static BAD_POWERS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\^[0-9]+\^|\^[0-9][0-9]+").expect("valid regex"));
/// Python 3.11 `tokenize.Number`: imaginary, then float, then integer literals.
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    let digits = r"[0-9](?:_?[0-9])*";
    let exponent = format!(r"[eE][-+]?{digits}");
    let point = format!(r"(?:{digits}\.(?:{digits})?|\.{digits})(?:{exponent})?");
    let float = format!(r"{point}|{digits}{exponent}");
    let imag = format!(r"{digits}[jJ]|(?:{float})[jJ]");
    let int = r"0[xX](?:_?[0-9a-fA-F])+|0[bB](?:_?[01])+|0[oO](?:_?[0-7])+|[1-9](?:_?[0-9])*|0(?:_?0)*";
    Regex::new(&format!(r"^(?:(?P<imag>{imag})|(?P<float>{float})|(?P<int>{int}))")).expect("valid regex")
});

/// Names that sympy's namespace, Python's builtins or keywords give a meaning other than a
/// symbol and that pass the two-letter guard; unsupported here.
const RESERVED: [&str; 24] = [
    "csc", "eye", "ff", "fft", "fu", "gff", "im", "jn", "li", "ln", "nan", "ntt", "oo", "re", "rf", "yn", "zoo", "all",
    "id", "as", "if", "in", "is", "or",
];
/// Greek letter names, which `split_symbols` keeps whole.
const GREEK: [&str; 23] = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu", "xi",
    "omicron", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
];

/// Why evaluation stopped: the budget, or a construct outside the supported fragment.
pub(super) enum Fail {
    Budget,
    Unsupported,
}

impl From<Exhausted> for Fail {
    fn from(_: Exhausted) -> Self {
        Fail::Budget
    }
}

pub(super) type R<T> = Result<T, Fail>;

/// `are_equal_under_sympy(ground_truth_normalized, given_normalized)`.
pub fn are_equal_under_sympy(truth: &str, given: &str, b: &mut Budget) -> Result<bool, Exhausted> {
    let expr = format!("({truth})-({given})");
    b.scan(&expr)?;
    if !should_allow_eval(&expr) || expr.chars().count() > MAX_EXPR_CHARS {
        return Ok(false);
    }
    match difference_is_zero(&expr, b) {
        Ok(zero) => Ok(zero),
        Err(Fail::Unsupported) => Ok(false),
        Err(Fail::Budget) => Err(Exhausted),
    }
}

/// `should_allow_eval(expr)`.
pub fn should_allow_eval(expr: &str) -> bool {
    let letters: BTreeSet<char> =
        expr.replace("sqrt", "").replace("frac", "").chars().filter(|c| c.is_alphabetic()).collect();
    letters.len() <= 2 && !expr.contains("^{") && !expr.contains("^(") && !BAD_POWERS.is_match(expr)
}

fn difference_is_zero(expr: &str, b: &mut Budget) -> R<bool> {
    let toks = implicit_multiplication(resolve_names(tokenize(&expr.replace('^', "**"), b)?)?)?;
    let mut p = Parser { toks: &toks, i: 0, depth: 0, b };
    let value = p.expr()?;
    if p.i != toks.len() {
        return Err(Fail::Unsupported);
    }
    Ok(value.num.is_zero())
}

// ---------------------------------------------------------------- tokens

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(i128),
    Float(f64),
    Name(String),
    Sym(String),
    Pi,
    /// sympy's `I` (from an imaginary literal such as `4j`).
    I,
    Sqrt,
    /// A newline: Python's NL token, across which no `*` is inserted.
    Nl,
    Plus,
    Minus,
    Star,
    Slash,
    Pow,
    /// `!`, sympy's `factorial_notation`.
    Bang,
    LParen,
    RParen,
}

fn tokenize(s: &str, b: &mut Budget) -> R<Vec<Tok>> {
    let mut toks = Vec::new();
    let mut i = 0;
    while i < s.len() {
        b.spend(1)?;
        let rest = &s[i..];
        let c = rest.chars().next().ok_or(Fail::Unsupported)?;
        if matches!(c, ' ' | '\t' | '\x0c') || rest.starts_with("\r\n") {
            i += 1;
            continue;
        }
        if c == '\n' {
            toks.push(Tok::Nl);
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && rest[1..].starts_with(|d: char| d.is_ascii_digit())) {
            let caps = NUMBER.captures(rest).ok_or(Fail::Unsupported)?;
            let m = caps.get(0).ok_or(Fail::Unsupported)?;
            toks.extend(number(&caps)?);
            i += m.end();
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let len = rest.find(|d: char| !(d.is_alphabetic() || d.is_ascii_digit() || d == '_')).unwrap_or(rest.len());
            toks.push(Tok::Name(rest[..len].to_string()));
            i += len;
            continue;
        }
        let (tok, len) = match c {
            '*' if rest.starts_with("**") => (Tok::Pow, 2),
            '/' if rest.starts_with("//") => return Err(Fail::Unsupported),
            '!' if rest.starts_with("!!") || rest.starts_with("!=") => return Err(Fail::Unsupported),
            '!' => (Tok::Bang, 1),
            '*' => (Tok::Star, 1),
            '/' => (Tok::Slash, 1),
            '+' => (Tok::Plus, 1),
            '-' => (Tok::Minus, 1),
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            _ => return Err(Fail::Unsupported),
        };
        toks.push(tok);
        i += len;
    }
    Ok(toks)
}

/// sympy's `auto_number` for one literal: `Integer`, `Float`, or either times `I` for `…j`.
fn number(caps: &regex::Captures) -> R<Vec<Tok>> {
    if let Some(m) = caps.name("imag") {
        let digits = &m.as_str()[..m.as_str().len() - 1];
        let value = if digits.contains(['.', 'e', 'E']) { float(digits)? } else { int(digits)? };
        return Ok(vec![value, Tok::Star, Tok::I]);
    }
    if let Some(m) = caps.name("float") {
        return Ok(vec![float(m.as_str())?]);
    }
    let text = caps.name("int").ok_or(Fail::Unsupported)?.as_str();
    if text.len() > 1 && text.as_bytes()[1].is_ascii_alphabetic() {
        return Err(Fail::Unsupported); // 0x.., 0b.., 0o..
    }
    Ok(vec![int(text)?])
}

fn int(text: &str) -> R<Tok> {
    text.replace('_', "").parse::<i128>().map(Tok::Int).map_err(|_| Fail::Unsupported)
}

/// A `Float` literal; more than 15 significant digits (sympy then raises the precision) is unsupported.
fn float(text: &str) -> R<Tok> {
    let text = text.replace('_', "");
    let mantissa = text.split(['e', 'E']).next().unwrap_or("");
    let significant = mantissa.chars().filter(char::is_ascii_digit).skip_while(|&d| d == '0').count();
    let x: f64 = text.parse().map_err(|_| Fail::Unsupported)?;
    let underflow = x == 0.0 && significant > 0;
    if significant > 15 || !x.is_finite() || underflow {
        return Err(Fail::Unsupported);
    }
    Ok(Tok::Float(x))
}

/// `auto_symbol` + `split_symbols`: names become π, `sqrt`, or symbols split into letters and
/// digit runs.
fn resolve_names(toks: Vec<Tok>) -> R<Vec<Tok>> {
    let mut out = Vec::with_capacity(toks.len());
    for tok in toks {
        let Tok::Name(name) = tok else {
            out.push(tok);
            continue;
        };
        match name.as_str() {
            "pi" => out.push(Tok::Pi),
            "sqrt" => out.push(Tok::Sqrt),
            n if RESERVED.contains(&n) => return Err(Fail::Unsupported),
            n if GREEK.contains(&n) || n.contains('_') || n.len() == 1 => out.push(Tok::Sym(name)),
            _ => {
                let chars: Vec<char> = name.chars().collect();
                let mut j = 0;
                while j < chars.len() {
                    if chars[j].is_ascii_digit() {
                        let start = j;
                        while j < chars.len() && chars[j].is_ascii_digit() {
                            j += 1;
                        }
                        // `Number('02')` is a Python syntax error; `Number('00')` is 0.
                        let run: String = chars[start..j].iter().collect();
                        if run.starts_with('0') && run.contains(|d: char| d != '0') {
                            return Err(Fail::Unsupported);
                        }
                        out.push(Tok::Int(run.parse().map_err(|_| Fail::Unsupported)?));
                    } else {
                        out.push(Tok::Sym(chars[j].to_string()));
                        j += 1;
                    }
                }
            }
        }
    }
    Ok(out)
}

/// `implicit_application` for `sqrt` followed by one value (`sqrt 5` → `sqrt(5)`; any other
/// argument is unsupported), then `implicit_multiplication`: `*` between a value, `)` or `!` and
/// a following value, `(` or `sqrt`.
fn implicit_multiplication(toks: Vec<Tok>) -> R<Vec<Tok>> {
    let is_value = |t: &Tok| matches!(t, Tok::Int(_) | Tok::Float(_) | Tok::Sym(_) | Tok::Pi | Tok::I);
    let mut applied = Vec::with_capacity(toks.len() + 2);
    let mut it = toks.into_iter().peekable();
    while let Some(tok) = it.next() {
        if tok == Tok::Sqrt && it.peek() != Some(&Tok::LParen) {
            let arg = it.next().filter(is_value).ok_or(Fail::Unsupported)?;
            applied.extend([Tok::Sqrt, Tok::LParen, arg, Tok::RParen]);
        } else {
            applied.push(tok);
        }
    }
    let toks = applied;
    let ends_value =
        |t: &Tok| matches!(t, Tok::RParen | Tok::Bang | Tok::Int(_) | Tok::Float(_) | Tok::Sym(_) | Tok::Pi | Tok::I);
    let starts_value =
        |t: &Tok| matches!(t, Tok::LParen | Tok::Int(_) | Tok::Float(_) | Tok::Sym(_) | Tok::Pi | Tok::I | Tok::Sqrt);
    let mut out = Vec::with_capacity(toks.len() * 2);
    for tok in &toks {
        if out.last().is_some_and(ends_value) && starts_value(tok) {
            out.push(Tok::Star);
        }
        out.push(tok.clone());
    }
    out.retain(|t| *t != Tok::Nl);
    Ok(out)
}

// ---------------------------------------------------------------- parser

struct Parser<'a, 'b> {
    toks: &'a [Tok],
    i: usize,
    depth: usize,
    b: &'b mut Budget,
}

impl Parser<'_, '_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.i += 1;
            return true;
        }
        false
    }

    fn deeper(&mut self) -> R<()> {
        self.depth += 1;
        self.b.spend(1)?;
        if self.depth > MAX_DEPTH { Err(Fail::Unsupported) } else { Ok(()) }
    }

    fn expr(&mut self) -> R<Frac> {
        let mut acc = self.term()?;
        loop {
            if self.eat(&Tok::Plus) {
                let t = self.term()?;
                acc = acc.add(&t, self.b)?;
            } else if self.eat(&Tok::Minus) {
                let t = self.term()?.neg();
                acc = acc.add(&t, self.b)?;
            } else {
                return Ok(acc);
            }
        }
    }

    fn term(&mut self) -> R<Frac> {
        let mut acc = self.unary()?;
        loop {
            if self.eat(&Tok::Star) {
                let t = self.unary()?;
                acc = acc.mul(&t, self.b)?;
            } else if self.eat(&Tok::Slash) {
                let t = self.unary()?;
                acc = acc.div(&t, self.b)?;
            } else {
                return Ok(acc);
            }
        }
    }

    fn unary(&mut self) -> R<Frac> {
        self.deeper()?;
        let v = if self.eat(&Tok::Minus) {
            self.unary()?.neg()
        } else if self.eat(&Tok::Plus) {
            self.unary()?
        } else {
            let mut base = self.atom()?;
            while self.eat(&Tok::Bang) {
                base = factorial(&base, self.b)?;
            }
            if self.eat(&Tok::Pow) {
                let exp = self.unary()?;
                base.pow(&exp, self.b)?
            } else {
                base
            }
        };
        self.depth -= 1;
        Ok(v)
    }

    fn atom(&mut self) -> R<Frac> {
        let tok = self.peek().cloned().ok_or(Fail::Unsupported)?;
        self.i += 1;
        match tok {
            Tok::Int(n) => Ok(Frac::constant(Coef::Exact(Q::int(n)))),
            Tok::Float(x) => Ok(Frac::constant(Coef::Float(x))),
            Tok::Sym(s) => Ok(Frac::atom(Atom::Sym(s))),
            Tok::Pi => Ok(Frac::atom(Atom::Pi)),
            Tok::I => Ok(Frac::atom(Atom::Root(-1))),
            Tok::LParen => {
                let v = self.expr()?;
                if self.eat(&Tok::RParen) { Ok(v) } else { Err(Fail::Unsupported) }
            }
            Tok::Sqrt => {
                if !self.eat(&Tok::LParen) {
                    return Err(Fail::Unsupported);
                }
                let v = self.expr()?;
                if !self.eat(&Tok::RParen) {
                    return Err(Fail::Unsupported);
                }
                sqrt(&v, self.b)
            }
            _ => Err(Fail::Unsupported),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(a: &str, b: &str) -> bool {
        are_equal_under_sympy(a, b, &mut Budget::new(1_000_000)).unwrap()
    }

    #[test]
    fn equal_like_sympy_simplify() {
        let equal = [
            ("1/2", "0.5"),
            ("3/2", "1.5"),
            ("sqrt(8)", "2sqrt(2)"),
            ("sqrt(2)/2", "1/sqrt(2)"),
            ("sqrt(12)", "2*sqrt(3)"),
            ("sqrt(1/2)", "sqrt(2)/2"),
            ("2pi", "pi*2"),
            ("x+1", "1+x"),
            ("0.5x", "x/2"),
            ("x^2-1", "(x-1)(x+1)"),
            ("(x^2-1)/(x-1)", "x+1"),
            ("2(3)", "6"),
            ("xy", "yx"),
            ("x2", "2x"),
            ("2.5.1", "0.25"),
            ("π2z", "2πz"), // Unicode identifiers split like ASCII ones
            ("北京", "京北"),
            ("1/2x", "x/2"),
            ("-2**2", "-4"),
            ("x**-1", "1/x"),
            ("x*0.1*10", "x"),
            ("2!", "2/2+2/2"),
            ("2sqrt\t5", "2sqrt(5)"), // implicit application
            ("4j", "+4j"),
            ("sqrt(-4)", "2j"),
            ("1j*1j", "-1"),
            ("sqrt(-2)", "sqrt(2)*1j"),
            ("2^3!", "64"),
            ("(1+2)!2", "12"),
        ];
        for (a, b) in equal {
            assert!(eq(a, b), "{a} = {b}");
        }
        let different = [
            ("0.1+0.2", "0.3"),            // Float rounding, as in sympy
            ("1/3", "0.333333333333333"),  // 15 digits: not equal
            ("2/3", "0.6666666666666666"), // 16 digits: sympy raises the precision
            ("pix", "pi*x"),               // split into p*i*x
            ("sqrt(x^2)", "x"),            // unsupported: sympy keeps sqrt(x**2)
            ("1/0", "1/0"),                // zoo - zoo = nan
            ("oo", "oo"),
            ("x", "y"),
            ("2^10", "1024"),   // guarded
            ("a+b+c", "c+b+a"), // three letters: guarded
            ("(1,2)", "(1,2)"),
            ("10\n0y", "10*0y"), // no implicit `*` across a newline: a syntax error in sympy
            ("89y02a0000", "809y02a0000"), // Number('02') is a syntax error
            ("𝐱", "x"),          // no NFKC: Symbol('𝐱') is not Symbol('x')
            ("31!", "31!"),      // unsupported (sympy: equal; never reached: equal strings match earlier)
            ("x==1", "x==1"),
        ];
        for (a, b) in different {
            assert!(!eq(a, b), "{a} != {b}");
        }
    }

    #[test]
    fn python_number_tokens() {
        let b = &mut Budget::new(10_000);
        assert_eq!(tokenize("0012", b).ok(), Some(vec![Tok::Int(0), Tok::Int(12)]));
        assert_eq!(tokenize("1_000", b).ok(), Some(vec![Tok::Int(1000)]));
        assert_eq!(tokenize("1.e2", b).ok(), Some(vec![Tok::Float(100.0)]));
        assert!(tokenize("0x10", b).is_err());
        assert_eq!(tokenize("2j", b).ok(), Some(vec![Tok::Int(2), Tok::Star, Tok::I]));
        assert_eq!(tokenize("1.5J", b).ok(), Some(vec![Tok::Float(1.5), Tok::Star, Tok::I]));
        assert!(tokenize("1\r2", b).is_err());
        assert!(tokenize("x%2", b).is_err());
    }
}
