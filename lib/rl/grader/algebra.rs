//! The value domain of [`super::symbolic`]: rational functions over ℚ (or sympy's 53-bit
//! `Float` coefficients once a decimal literal takes part) in independent atoms π, symbols and
//! √p for primes p, with sympy's automatic simplifications (√p·√p = p, √(n/d) = √(nd)/d, square
//! factors pulled out of roots). Two expressions are equal exactly when the numerator of their
//! difference is the zero polynomial. Every operation is checked: i128 overflow, more than
//! [`MAX_TERMS`] terms or a degree above [`MAX_DEGREE`] make the expression unsupported, and term
//! products spend from the [`Budget`].
use std::collections::BTreeMap;

use super::Budget;
use super::symbolic::{Fail, R};

/// Most terms in one polynomial.
const MAX_TERMS: usize = 256;
/// Highest total degree of one monomial.
const MAX_DEGREE: u32 = 64;
/// Largest |exponent| of an integer power.
const MAX_POWER: i128 = 64;
/// Largest integer whose square root is factored (trial division up to 10^6).
const MAX_ROOT_ARG: i128 = 1_000_000_000_000;

/// An exact rational n/d in lowest terms with d > 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Q {
    n: i128,
    d: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs()
}

impl Q {
    pub(super) fn int(n: i128) -> Q {
        Q { n, d: 1 }
    }

    fn new(n: i128, d: i128) -> R<Q> {
        if d == 0 || n == i128::MIN || d == i128::MIN {
            return Err(Fail::Unsupported);
        }
        let g = gcd(n, d).max(1);
        let s = if d < 0 { -1 } else { 1 };
        Ok(Q { n: s * n / g, d: s * d / g })
    }

    fn add(self, o: Q) -> R<Q> {
        let n = self.n.checked_mul(o.d).zip(o.n.checked_mul(self.d)).and_then(|(a, b)| a.checked_add(b));
        Q::new(n.ok_or(Fail::Unsupported)?, self.d.checked_mul(o.d).ok_or(Fail::Unsupported)?)
    }

    fn mul(self, o: Q) -> R<Q> {
        let g1 = gcd(self.n, o.d).max(1);
        let g2 = gcd(o.n, self.d).max(1);
        let n = (self.n / g1).checked_mul(o.n / g2).ok_or(Fail::Unsupported)?;
        let d = (self.d / g2).checked_mul(o.d / g1).ok_or(Fail::Unsupported)?;
        Q::new(n, d)
    }

    fn recip(self) -> R<Q> {
        Q::new(self.d, self.n)
    }

    fn to_f64(self) -> f64 {
        self.n as f64 / self.d as f64
    }
}

/// A coefficient: exact, or a sympy `Float` (53 bits) once a decimal literal took part.
#[derive(Debug, Clone, Copy)]
pub(super) enum Coef {
    Exact(Q),
    Float(f64),
}

impl Coef {
    const ONE: Coef = Coef::Exact(Q { n: 1, d: 1 });

    fn f(self) -> f64 {
        match self {
            Coef::Exact(q) => q.to_f64(),
            Coef::Float(x) => x,
        }
    }

    fn float(x: f64) -> R<Coef> {
        if x.is_finite() { Ok(Coef::Float(x)) } else { Err(Fail::Unsupported) }
    }

    fn add(self, o: Coef) -> R<Coef> {
        match (self, o) {
            (Coef::Exact(a), Coef::Exact(b)) => Ok(Coef::Exact(a.add(b)?)),
            _ => Coef::float(self.f() + o.f()),
        }
    }

    fn mul(self, o: Coef) -> R<Coef> {
        match (self, o) {
            (Coef::Exact(a), Coef::Exact(b)) => Ok(Coef::Exact(a.mul(b)?)),
            _ => Coef::float(self.f() * o.f()),
        }
    }

    fn recip(self) -> R<Coef> {
        match self {
            Coef::Exact(q) => Ok(Coef::Exact(q.recip()?)),
            Coef::Float(x) => Coef::float(1.0 / x),
        }
    }

    fn neg(self) -> Coef {
        match self {
            Coef::Exact(q) => Coef::Exact(Q { n: -q.n, d: q.d }),
            Coef::Float(x) => Coef::Float(-x),
        }
    }

    fn is_zero(self) -> bool {
        self.f() == 0.0
    }

    fn is_one(self) -> bool {
        matches!(self, Coef::Exact(Q { n: 1, d: 1 }))
    }
}

// ---------------------------------------------------------------- polynomials

/// An independent atom: π, a symbol, or √p for a prime p or p = −1 (sympy's `I`); √p·√p reduces to p.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Atom {
    Pi,
    Root(i128),
    Sym(String),
}

/// A monomial: atoms with positive exponents, sorted.
pub(super) type Mono = Vec<(Atom, u32)>;

/// A polynomial with no zero coefficients.
#[derive(Debug, Clone, Default)]
pub(super) struct Poly(BTreeMap<Mono, Coef>);

impl Poly {
    fn constant(c: Coef) -> Poly {
        let mut p = Poly::default();
        if !c.is_zero() {
            p.0.insert(Vec::new(), c);
        }
        p
    }

    pub(super) fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn as_constant(&self) -> Option<Coef> {
        match self.0.len() {
            0 => Some(Coef::Exact(Q::int(0))),
            1 => self.0.get(&Vec::new()).copied(),
            _ => None,
        }
    }

    fn add_term(&mut self, m: Mono, c: Coef) -> R<()> {
        let sum = match self.0.get(&m) {
            Some(old) => old.add(c)?,
            None => c,
        };
        if sum.is_zero() {
            self.0.remove(&m);
        } else {
            self.0.insert(m, sum);
        }
        if self.0.len() > MAX_TERMS { Err(Fail::Unsupported) } else { Ok(()) }
    }

    fn add(&self, o: &Poly, b: &mut Budget) -> R<Poly> {
        b.spend((self.0.len() + o.0.len()) as u64 + 1)?;
        let mut out = self.clone();
        for (m, c) in &o.0 {
            out.add_term(m.clone(), *c)?;
        }
        Ok(out)
    }

    fn scale(&self, k: Coef) -> R<Poly> {
        let mut out = Poly::default();
        for (m, c) in &self.0 {
            out.add_term(m.clone(), c.mul(k)?)?;
        }
        Ok(out)
    }

    fn mul(&self, o: &Poly, b: &mut Budget) -> R<Poly> {
        b.spend((self.0.len() * o.0.len()) as u64 + 1)?;
        let mut out = Poly::default();
        for (m1, c1) in &self.0 {
            for (m2, c2) in &o.0 {
                let (m, k) = mono_mul(m1, m2)?;
                out.add_term(m, c1.mul(*c2)?.mul(k)?)?;
            }
        }
        Ok(out)
    }
}

/// The product of two monomials, with √p·√p reduced to the coefficient p.
fn mono_mul(a: &Mono, b: &Mono) -> R<(Mono, Coef)> {
    let mut exps: BTreeMap<Atom, u32> = a.iter().cloned().collect();
    for (atom, e) in b {
        *exps.entry(atom.clone()).or_insert(0) += e;
    }
    let mut k = Coef::ONE;
    let mut out = Vec::with_capacity(exps.len());
    let mut degree = 0u32;
    for (atom, mut e) in exps {
        if let Atom::Root(p) = atom {
            for _ in 0..e / 2 {
                k = k.mul(Coef::Exact(Q::int(p)))?;
            }
            e %= 2;
        }
        degree += e;
        if e > 0 {
            out.push((atom, e));
        }
    }
    if degree > MAX_DEGREE { Err(Fail::Unsupported) } else { Ok((out, k)) }
}

/// A rational function num/den (den never the zero polynomial).
#[derive(Debug, Clone)]
pub(super) struct Frac {
    pub(super) num: Poly,
    den: Poly,
}

impl Frac {
    pub(super) fn constant(c: Coef) -> Frac {
        Frac { num: Poly::constant(c), den: Poly::constant(Coef::ONE) }
    }

    pub(super) fn atom(a: Atom) -> Frac {
        let mut num = Poly::default();
        num.0.insert(vec![(a, 1)], Coef::ONE);
        Frac { num, den: Poly::constant(Coef::ONE) }
    }

    fn den_is_one(&self) -> bool {
        self.den.as_constant().is_some_and(Coef::is_one)
    }

    /// Folds a constant denominator into the numerator.
    fn normalized(self) -> R<Frac> {
        match self.den.as_constant() {
            Some(c) if !c.is_one() => {
                if c.is_zero() {
                    return Err(Fail::Unsupported);
                }
                Ok(Frac { num: self.num.scale(c.recip()?)?, den: Poly::constant(Coef::ONE) })
            }
            _ => Ok(self),
        }
    }

    pub(super) fn neg(self) -> Frac {
        let num = Poly(self.num.0.into_iter().map(|(m, c)| (m, c.neg())).collect());
        Frac { num, den: self.den }
    }

    pub(super) fn add(&self, o: &Frac, b: &mut Budget) -> R<Frac> {
        if self.den_is_one() && o.den_is_one() {
            return Ok(Frac { num: self.num.add(&o.num, b)?, den: self.den.clone() });
        }
        let num = self.num.mul(&o.den, b)?.add(&o.num.mul(&self.den, b)?, b)?;
        Frac { num, den: self.den.mul(&o.den, b)? }.normalized()
    }

    pub(super) fn mul(&self, o: &Frac, b: &mut Budget) -> R<Frac> {
        Frac { num: self.num.mul(&o.num, b)?, den: self.den.mul(&o.den, b)? }.normalized()
    }

    pub(super) fn div(&self, o: &Frac, b: &mut Budget) -> R<Frac> {
        if o.num.is_zero() {
            return Err(Fail::Unsupported); // sympy: zoo
        }
        Frac { num: self.num.mul(&o.den, b)?, den: self.den.mul(&o.num, b)? }.normalized()
    }

    /// `self ** exp` for an exact integer exponent.
    pub(super) fn pow(&self, exp: &Frac, b: &mut Budget) -> R<Frac> {
        let k = match (exp.den_is_one(), exp.num.as_constant()) {
            (true, Some(Coef::Exact(Q { n, d: 1 }))) if n.abs() <= MAX_POWER => n,
            _ => return Err(Fail::Unsupported),
        };
        let base = if k < 0 {
            if self.num.is_zero() {
                return Err(Fail::Unsupported);
            }
            Frac { num: self.den.clone(), den: self.num.clone() }
        } else {
            self.clone()
        };
        let mut out = Frac::constant(Coef::ONE);
        for _ in 0..k.abs() {
            out = out.mul(&base, b)?;
        }
        Ok(out)
    }
}

/// sympy's `sqrt` of a constant: √(n/d) = (s/d)·√p₁·…·√pₖ where |n|·d = s²·p₁⋯pₖ, times I when
/// n < 0; floats give floats.
pub(super) fn sqrt(v: &Frac, b: &mut Budget) -> R<Frac> {
    let value = match (v.num.as_constant(), v.den.as_constant()) {
        (Some(n), Some(d)) if !d.is_zero() => n.mul(d.recip()?)?,
        _ => return Err(Fail::Unsupported),
    };
    let q = match value {
        Coef::Float(x) if x >= 0.0 => return Ok(Frac::constant(Coef::float(x.sqrt())?)),
        Coef::Float(x) => {
            let root = Frac::constant(Coef::float((-x).sqrt())?);
            return root.mul(&Frac::atom(Atom::Root(-1)), b);
        }
        Coef::Exact(q) => q,
    };
    let mut m = q.n.abs().checked_mul(q.d).filter(|&m| m <= MAX_ROOT_ARG).ok_or(Fail::Unsupported)?;
    let mut square = 1i128;
    // √−1 = I first: atoms sort by value.
    let mut primes = if q.n < 0 { vec![-1] } else { Vec::new() };
    let mut p = 2i128;
    while p * p <= m {
        b.spend(1)?;
        let mut e = 0;
        while m % p == 0 {
            m /= p;
            e += 1;
        }
        square *= p.pow(e / 2);
        if e % 2 == 1 {
            primes.push(p);
        }
        p += if p == 2 { 1 } else { 2 };
    }
    if m > 1 {
        primes.push(m);
    }
    let coef = Coef::Exact(Q::new(square, q.d)?);
    let mut num = Poly::default();
    if q.n != 0 {
        num.0.insert(primes.into_iter().map(|p| (Atom::Root(p), 1)).collect(), coef);
    }
    Ok(Frac { num, den: Poly::constant(Coef::ONE) })
}

/// sympy's `factorial(n)` for an exact integer 0 ≤ n ≤ 30 (larger values overflow i128 soon after).
pub(super) fn factorial(v: &Frac, b: &mut Budget) -> R<Frac> {
    let n = match (v.den.as_constant(), v.num.as_constant()) {
        (Some(d), Some(Coef::Exact(Q { n, d: 1 }))) if d.is_one() && (0..=30).contains(&n) => n,
        _ => return Err(Fail::Unsupported),
    };
    b.spend(n as u64 + 1)?;
    Ok(Frac::constant(Coef::Exact(Q::int((1..=n).product()))))
}
