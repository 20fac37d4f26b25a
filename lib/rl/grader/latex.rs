//! mathruler's `_parse_latex` (`mathruler/grader.py`): `\tfrac`/`\dfrac` → `\frac`, a space
//! before every `\frac` (so `7\frac{3}{4}` becomes the mixed number `7 3/4`), pylatexenc 2.10's
//! `LatexNodes2Text().latex_to_text`, then `√`→`sqrt`, `π`→`pi`, `∞`→`inf`, `∪`→`U`, `·`/`×`→`*`.
//!
//! The pylatexenc part is reimplemented for what answers contain, matching its output:
//! `\frac{a}{b}` → `a/b` (no parentheses), `\sqrt[n]{x}` → `√(x)`, groups → their content,
//! symbol macros → their Unicode character, `\mathbf` → bold letters, accents → combining marks,
//! `\\` → newline, `~` → no-break space, `--`/`---` → dashes, whitespace after a letter macro
//! dropped, an unknown macro → nothing (its `{}` argument then renders as a plain group). Quirks
//! kept: a `\frac` missing an argument at the end prints `%s/%s`; a `\sqrt` missing one raises
//! (so `_parse_latex` keeps the input). Deviations: macros outside the table below render as
//! nothing even where pylatexenc knows a symbol for them; accents stay decomposed where
//! pylatexenc composes them (NFC, `\'e` → `é`); `\mathbb`-style alphabets and environments render
//! as a marker that equals nothing else.
use super::{Budget, Exhausted};

/// Deeper brace nesting is treated as a parse failure.
const MAX_DEPTH: usize = 100;
/// Stands in for output pylatexenc produces but this port does not reproduce.
const UNSUPPORTED: char = '\u{FFFF}';

/// `_parse_latex(expr)`; `None` where pylatexenc raises (mathruler then keeps `expr` as it is).
pub fn parse_latex(expr: &str, b: &mut Budget) -> Result<Option<String>, Exhausted> {
    let e = expr.replace("\\tfrac", "\\frac").replace("\\dfrac", "\\frac").replace("\\frac", " \\frac");
    b.scan(&e)?;
    let chars: Vec<char> = e.chars().collect();
    let mut p = Parser { s: &chars, i: 0, b };
    let Some(text) = p.nodes(0, false)? else {
        return Ok(None);
    };
    let text =
        text.replace('√', "sqrt").replace('π', "pi").replace('∞', "inf").replace('∪', "U").replace(['·', '×'], "*");
    Ok(Some(crate::eval::python::strip(&text).to_string()))
}

/// `latex_to_text(s)`; `None` where pylatexenc raises.
pub fn latex_to_text(s: &str, b: &mut Budget) -> Result<Option<String>, Exhausted> {
    let chars: Vec<char> = s.chars().collect();
    Parser { s: &chars, i: 0, b }.nodes(0, false)
}

/// Symbol macros and their text, as pylatexenc renders them.
fn symbol(name: &str) -> Option<&'static str> {
    Some(match name {
        "pi" => "π",
        "infty" => "∞",
        "cup" => "∪",
        "cap" => "∩",
        "cdot" => "·",
        "times" => "×",
        "div" => "÷",
        "pm" => "±",
        "mp" => "∓",
        "le" | "leq" => "≤",
        "ge" | "geq" => "≥",
        "leqslant" => "⩽",
        "geqslant" => "⩾",
        "neq" => "≠",
        "approx" => "≈",
        "sim" => "∼",
        "equiv" => "≡",
        "cong" => "≅",
        "propto" => "∝",
        "circ" => "∘",
        "angle" => "∠",
        "to" | "rightarrow" => "→",
        "leftarrow" => "←",
        "Rightarrow" => "⇒",
        "leftrightarrow" => "↔",
        "in" => "∈",
        "emptyset" | "varnothing" => "∅",
        "perp" => "⊥",
        "parallel" => "∥",
        "ldots" | "dots" => "…",
        "cdots" => "⋯",
        "prime" => "'",
        "mid" | "vert" | "lvert" | "rvert" => "|",
        "lbrace" => "{",
        "rbrace" => "}",
        "langle" => "⟨",
        "rangle" => "⟩",
        "lfloor" => "⌊",
        "rfloor" => "⌋",
        "lceil" => "⌈",
        "rceil" => "⌉",
        "quad" => "  ",
        "qquad" => "    ",
        "exists" => "∃",
        "forall" => "∀",
        "partial" => "∂",
        "nabla" => "∇",
        "int" => "∫",
        "sum" => "∑",
        "prod" => "∏",
        "star" => "⋆",
        "ast" => "∗",
        "bullet" => "∙",
        "dagger" => "†",
        "setminus" => "∖",
        "subset" => "⊂",
        "subseteq" => "⊆",
        "supset" => "⊃",
        "supseteq" => "⊇",
        "vee" => "∨",
        "wedge" => "∧",
        "oplus" => "⊕",
        "otimes" => "⊗",
        "hbar" => "ħ",
        "ell" => "ℓ",
        "aleph" => "ℵ",
        "therefore" => "∴",
        "because" => "∵",
        "square" => "□",
        "textdegree" => "°",
        "textbackslash" => "\\",
        "i" => "ı",
        "j" => "ȷ",
        "l" => "ł",
        "L" => "Ł",
        "o" => "ø",
        "O" => "Ø",
        "ss" => "ß",
        "ae" => "æ",
        "AE" => "Æ",
        "oe" => "œ",
        "OE" => "Œ",
        "aa" => "å",
        "AA" => "Å",
        "sin" | "cos" | "tan" | "arcsin" | "arccos" | "arctan" | "sinh" | "cosh" | "tanh" | "log" | "ln" | "exp"
        | "lim" | "max" | "min" | "inf" | "sup" => return Some(static_name(name)),
        "alpha" => "α",
        "beta" => "β",
        "gamma" => "γ",
        "delta" => "δ",
        "epsilon" => "ϵ",
        "varepsilon" => "ε",
        "zeta" => "ζ",
        "eta" => "η",
        "theta" => "θ",
        "vartheta" => "ϑ",
        "iota" => "ι",
        "kappa" => "κ",
        "lambda" => "λ",
        "mu" => "μ",
        "nu" => "ν",
        "xi" => "ξ",
        "rho" => "ρ",
        "varrho" => "ϱ",
        "sigma" => "σ",
        "varsigma" => "ς",
        "tau" => "τ",
        "upsilon" => "υ",
        "phi" => "ϕ",
        "varphi" => "φ",
        "chi" => "χ",
        "psi" => "ψ",
        "omega" => "ω",
        "varpi" => "ϖ",
        "Gamma" => "Γ",
        "Delta" => "Δ",
        "Theta" => "Θ",
        "Lambda" => "Λ",
        "Xi" => "Ξ",
        "Pi" => "Π",
        "Sigma" => "Σ",
        "Upsilon" => "Υ",
        "Phi" => "Φ",
        "Psi" => "Ψ",
        "Omega" => "Ω",
        _ => return None,
    })
}

fn static_name(name: &str) -> &'static str {
    const NAMES: [&str; 17] = [
        "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "log", "ln", "exp", "lim", "max",
        "min", "inf", "sup",
    ];
    NAMES.iter().find(|n| **n == name).copied().unwrap_or("")
}

/// The combining mark an accent macro puts after each character of its argument.
fn accent(name: &str) -> Option<char> {
    Some(match name {
        "hat" => '\u{302}',
        "tilde" => '\u{303}',
        "bar" => '\u{305}',
        "dot" => '\u{307}',
        "ddot" => '\u{308}',
        "acute" => '\u{301}',
        "grave" => '\u{300}',
        "vec" => '\u{20d7}',
        "check" => '\u{30c}',
        "breve" | "u" => '\u{306}',
        "'" => '\u{301}',
        "`" => '\u{300}',
        "^" => '\u{302}',
        "\"" => '\u{308}',
        "~" => '\u{303}',
        "=" => '\u{304}',
        "." => '\u{307}',
        "v" => '\u{30c}',
        "H" => '\u{30b}',
        "c" => '\u{327}',
        "d" => '\u{323}',
        "k" => '\u{328}',
        "r" => '\u{30a}',
        "b" => '\u{331}',
        _ => return None,
    })
}

/// pylatexenc's `fmt_math_text_style`: ASCII letters of a `\\mathbf`-style argument become
/// Unicode mathematical alphanumerics (capital and small base code points, then the letters that
/// live in the Letterlike Symbols block); everything else is unchanged.
fn math_style(style: &str, text: &str) -> String {
    let (capital, small, exceptions): (u32, u32, &[(char, char)]) = match style {
        "mathbf" => (0x1D400, 0x1D41A, &[]),
        "mathit" => (0x1D434, 0x1D44E, &[('h', 'ℎ')]),
        "mathsf" => (0x1D5A0, 0x1D5BA, &[]),
        "mathtt" => (0x1D670, 0x1D68A, &[]),
        "mathbb" => {
            (0x1D538, 0x1D552, &[('C', 'ℂ'), ('H', 'ℍ'), ('N', 'ℕ'), ('P', 'ℙ'), ('Q', 'ℚ'), ('R', 'ℝ'), ('Z', 'ℤ')])
        }
        "mathcal" | "mathscr" => (
            0x1D49C,
            0x1D4B6,
            &[
                ('B', 'ℬ'),
                ('E', 'ℰ'),
                ('F', 'ℱ'),
                ('H', 'ℋ'),
                ('I', 'ℐ'),
                ('L', 'ℒ'),
                ('M', 'ℳ'),
                ('R', 'ℛ'),
                ('e', 'ℯ'),
                ('g', 'ℊ'),
                ('o', 'ℴ'),
            ],
        ),
        "mathfrak" => (0x1D504, 0x1D51E, &[('C', 'ℭ'), ('H', 'ℌ'), ('I', 'ℑ'), ('R', 'ℜ'), ('Z', 'ℨ')]),
        _ => return text.to_string(),
    };
    text.chars()
        .map(|c| {
            if let Some(&(_, e)) = exceptions.iter().find(|(from, _)| *from == c) {
                return e;
            }
            let code = match c {
                'A'..='Z' => capital + (c as u32 - 'A' as u32),
                'a'..='z' => small + (c as u32 - 'a' as u32),
                _ => return c,
            };
            char::from_u32(code).unwrap_or(c)
        })
        .collect()
}

/// One macro argument: `Some(Ok(text))`, `Some(Err(()))` when the input ended where an argument
/// was expected, `None` when pylatexenc would raise.
type Arg = Option<Result<String, ()>>;

struct Parser<'a, 'b> {
    s: &'a [char],
    i: usize,
    b: &'b mut Budget,
}

impl Parser<'_, '_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }

    /// Nodes up to the end (or, inside a group, up to its `}`), rendered. `None`: pylatexenc raises.
    fn nodes(&mut self, depth: usize, in_group: bool) -> Result<Option<String>, Exhausted> {
        if depth > MAX_DEPTH {
            return Ok(None);
        }
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.b.spend(1)?;
            match c {
                '}' if in_group => {
                    self.i += 1;
                    return Ok(Some(out));
                }
                '}' | '$' => self.i += 1,
                '{' => {
                    self.i += 1;
                    match self.nodes(depth + 1, true)? {
                        Some(t) => out.push_str(&t),
                        None => return Ok(None),
                    }
                }
                '\\' => match self.macro_node(depth)? {
                    Some(t) => out.push_str(&t),
                    None => return Ok(None),
                },
                '~' => {
                    self.i += 1;
                    out.push('\u{a0}');
                }
                '&' => {
                    self.i += 1;
                    out.push_str("   ");
                }
                '-' if self.s.get(self.i + 1) == Some(&'-') => {
                    let em = self.s.get(self.i + 2) == Some(&'-');
                    self.i += if em { 3 } else { 2 };
                    out.push(if em { '—' } else { '–' });
                }
                '`' if self.s.get(self.i + 1) == Some(&'`') => {
                    self.i += 2;
                    out.push('“');
                }
                '\'' if self.s.get(self.i + 1) == Some(&'\'') => {
                    self.i += 2;
                    out.push('”');
                }
                _ => {
                    self.i += 1;
                    out.push(c);
                }
            }
        }
        Ok(Some(out))
    }

    /// A macro's argument: a group, a bare macro (rendered without its own arguments), or one character.
    fn arg(&mut self, depth: usize) -> Result<Arg, Exhausted> {
        self.skip_ws();
        match self.peek() {
            None => Ok(Some(Err(()))),
            Some('}') => Ok(Some(Ok(String::new()))),
            Some('{') => {
                self.i += 1;
                Ok(self.nodes(depth + 1, true)?.map(Ok))
            }
            Some('\\') => {
                self.i += 1;
                let name = self.macro_name();
                Ok(match name.as_str() {
                    "sqrt" => None,
                    "frac" => Some(Ok("%s/%s".to_string())),
                    _ => Some(Ok(symbol(&name).unwrap_or("").to_string())),
                })
            }
            Some(c) => {
                self.i += 1;
                Ok(Some(Ok(c.to_string())))
            }
        }
    }

    /// The name after a backslash: letters (`str.isalpha`, so `\πx` is one unknown macro), or one
    /// other character (empty at the end).
    fn macro_name(&mut self) -> String {
        let start = self.i;
        while self.peek().is_some_and(char::is_alphabetic) {
            self.i += 1;
        }
        if self.i == start {
            if let Some(c) = self.peek() {
                self.i += 1;
                return c.to_string();
            }
            return String::new();
        }
        let name: String = self.s[start..self.i].iter().collect();
        self.skip_ws();
        name
    }

    /// An optional `[...]` argument, skipped (a `]` inside braces does not close it); `false`
    /// when it does not close.
    fn skip_optional(&mut self) -> bool {
        let save = self.i;
        self.skip_ws();
        if self.peek() != Some('[') {
            self.i = save;
            return true;
        }
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                ']' if depth == 0 => return true,
                _ => {}
            }
        }
        false
    }

    fn macro_node(&mut self, depth: usize) -> Result<Option<String>, Exhausted> {
        self.i += 1; // the backslash
        let name = self.macro_name();
        let after_name = self.i;
        let text = match name.as_str() {
            "frac" => {
                let Some(first) = self.arg(depth)? else {
                    return Ok(None);
                };
                let second = match first {
                    Ok(_) => match self.arg(depth)? {
                        Some(a) => a,
                        None => return Ok(None),
                    },
                    Err(()) => Err(()),
                };
                match (first, second) {
                    (Ok(x), Ok(y)) => format!("{x}/{y}"),
                    _ => {
                        // pylatexenc prints the unformatted template and reads the arguments again as text.
                        self.i = after_name;
                        "%s/%s".to_string()
                    }
                }
            }
            "sqrt" => {
                if !self.skip_optional() {
                    return Ok(None);
                }
                match self.arg(depth)? {
                    Some(Ok(x)) => format!("√({x})"),
                    _ => return Ok(None),
                }
            }
            "mathbf" | "mathit" | "mathsf" | "mathtt" | "mathbb" | "mathcal" | "mathscr" | "mathfrak" => {
                match self.arg(depth)? {
                    Some(Ok(x)) => math_style(&name, &x),
                    Some(Err(())) => String::new(),
                    None => return Ok(None),
                }
            }
            "begin" | "end" => UNSUPPORTED.to_string(),
            "mbox" | "ensuremath" | "hspace" | "label" | "vspace" => match self.arg(depth)? {
                Some(_) if name == "vspace" => "\n".to_string(),
                Some(_) => String::new(),
                None => return Ok(None),
            },
            "{" | "}" | "%" | "$" | "&" | "#" | "_" => name.clone(),
            "," | ":" | ";" | " " => " ".to_string(),
            "-" => "\u{ad}".to_string(),
            "\\" => {
                self.skip_optional();
                "\n".to_string()
            }
            _ => match accent(&name) {
                Some(mark) => match self.arg(depth)? {
                    Some(Ok(x)) => crate::eval::python::strip(&x).chars().flat_map(|c| [c, mark]).collect(),
                    Some(Err(())) => format!(" {mark}"),
                    None => return Ok(None),
                },
                None => symbol(&name).unwrap_or("").to_string(),
            },
        };
        Ok(Some(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Option<String> {
        latex_to_text(s, &mut Budget::new(1_000_000)).unwrap()
    }

    #[test]
    fn renders_like_pylatexenc() {
        let cases = [
            (" \\frac{1}{2}", " 1/2"),
            ("\\frac12", "1/2"),
            (" \\frac{a+b}{c}", " a+b/c"),
            ("\\sqrt{2}", "√(2)"),
            ("\\sqrt[3]{8}", "√(8)"),
            ("2\\sqrt{3}", "2√(3)"),
            ("\\sqrt2 3", "√(2) 3"),
            ("\\text{cm}", "cm"),
            ("\\left(1,2\\right)", "(1,2)"),
            ("\\{1,2\\}", "{1,2}"),
            ("\\foo{3}", "3"),
            ("\\pi r", "πr"),
            ("2 \\pi", "2 π"),
            ("\\, x", "  x"),
            ("\\mbox{ cm}", ""),
            ("\\frac{1}", "%s/%s1"),
            (" \\frac{1}{", " 1/"),
            ("\\frac}{2}", "/2"),
            ("{\\frac}", "/"),
            ("\\sqrt}", "√()"),
            ("\\sqrt{2", "√(2)"),
            ("\\sqrt\\frac12", "√(%s/%s)12"),
            ("\\frac\\pi2", "π/2"),
            ("\\mathbf{ab}", "𝐚𝐛"),
            ("\\mathbb{RZab1}", "ℝℤ𝕒𝕓1"),
            ("\\mathcal{BEego}", "ℬℰℯℊℴ"),
            ("\\mathit{hx}", "ℎ𝑥"),
            ("\\mathfrak{CHa}", "ℭℌ𝔞"),
            ("\\mathtt{Az}", "𝙰𝚣"),
            ("\\mathsf{Az}", "𝖠𝗓"),
            ("\\hat{ab}", "a\u{302}b\u{302}"),
            ("a--b", "a–b"),
            ("a\\\\b", "a\nb"),
            ("\\", ""),
            ("a}b", "ab"),
            ("\\πtext{C}", "C"),
            ("\\sqrt[{]}]{3}", "√(3)"),
            ("\\t{5}", "5"),
            ("y\\'", "y \u{301}"),
            ("6p\\i", "6pı"),
            ("\\hat{ a b}", "a\u{302} \u{302}b\u{302}"),
            ("\\hat{\t", ""),
        ];
        for (input, want) in cases {
            assert_eq!(text(input).as_deref(), Some(want), "{input:?}");
        }
        for raises in ["\\sqrt", "\\sqrt[3", "\\sqrt[3]", "\\frac\\sqrt2 3", "4\\sqrt[2{]5}"] {
            assert_eq!(text(raises), None, "{raises:?}");
        }
    }

    #[test]
    fn parse_latex_maps_symbols_to_sympy_names() {
        let b = &mut Budget::new(1_000_000);
        assert_eq!(parse_latex("7\\frac{3}{4}", b).unwrap().as_deref(), Some("7 3/4"));
        assert_eq!(parse_latex("\\dfrac{\\sqrt{2}}{2}", b).unwrap().as_deref(), Some("sqrt(2)/2"));
        assert_eq!(parse_latex("2\\pi\\times 3\\cdot\\infty", b).unwrap().as_deref(), Some("2pi*3*inf"));
        assert_eq!(parse_latex("\\sqrt", b).unwrap(), None);
    }
}
