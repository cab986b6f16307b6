"""The filter and quantity expression language: parse, print, evaluate, and prune with it.

Filters such as ``"mag_i < 24.5 & extendedness == 0 & clean"`` and derived quantities such as
``"-2.5 * log10(psFlux_g) + 31.4"`` are written in one small language. Its grammar, from the
loosest-binding level to the tightest (binary operators are left-associative except ``**``)::

    or      := and (('|' | 'or') and)*
    and     := not (('&' | 'and') not)*
    not     := ('~' | 'not') not | compare
    compare := sum (('<' | '<=' | '>' | '>=' | '==' | '!=') sum)?    # never chained
    sum     := product (('+' | '-') product)*
    product := unary (('*' | '/') unary)*
    unary   := ('-' | '+') unary | power
    power   := atom ('**' unary)?                                   # right-associative
    atom    := number | True | False | true | false | nan | inf
             | name | function '(' or (',' or)* ')' | '(' or ')'

so ``a < 1 & b > 2`` means ``(a < 1) & (b > 2)``, ``-2**2`` is ``-4`` and ``10**-0.375`` is
legal. Functions come from the fixed whitelist :data:`FUNCTIONS`. Names are
``[A-Za-z_][A-Za-z0-9_]*``; colours such as ``g-r`` are single names only where the caller
lists them in ``hyphenated_names``.

Why a hand-written whitelist parser: filter strings come from users and configuration files,
so they must never reach ``eval``, ``exec`` or ``compile`` (``__import__('os')`` is one string
away). Python's ``ast`` is no help either: it binds ``&`` tighter than ``<``, so
``a < 1 & b > 2`` would be the chained ``a < (1 & b) > 2``. Every token here is checked against
the grammar, and anything else is a :class:`~skydask.errors.FilterSyntaxError` that shows the
expression with a caret under the fault.

Besides evaluation on NumPy arrays (:func:`evaluate`), :func:`may_be_true` evaluates an
expression on [min, max] intervals from Parquet row-group statistics, so that row groups that
cannot hold a matching row are never read.
"""

from __future__ import annotations

import keyword
import math
import numbers
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from skydask.errors import FilterSyntaxError

if TYPE_CHECKING:
    import pyarrow.compute as pc

__all__ = [
    "COMPARISONS",
    "FUNCTIONS",
    "BinOp",
    "Call",
    "Compare",
    "Expr",
    "Name",
    "Number",
    "UnaryOp",
    "conjuncts",
    "evaluate",
    "is_boolean",
    "may_be_true",
    "names",
    "parse",
    "substitute",
    "to_arrow",
    "to_text",
]

# --- Nodes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expr:
    """Base class of expression nodes (frozen, hashable, compared by value)."""


@dataclass(frozen=True, eq=False)
class Number(Expr):
    """A constant; ``bool`` values are the constants True and False."""

    value: float | int | bool

    def __post_init__(self) -> None:
        # Plain Python values, so that equality, hashing and printing need not know NumPy.
        v = self.value
        if isinstance(v, bool | np.bool_):
            v = bool(v)
        elif isinstance(v, numbers.Integral):
            v = int(v)
        elif isinstance(v, numbers.Real):
            v = float(v)
        else:
            raise TypeError(f"Number needs a real number or bool, not {v!r}")
        object.__setattr__(self, "value", v)

    def _key(self) -> tuple[object, ...]:
        # True must differ from 1 (it prints and types differently), and nan must equal nan so
        # that parse(to_text(e)) == e holds for expressions containing nan; 1 == 1.0 is fine.
        v = self.value
        if isinstance(v, bool):
            return ("bool", v)
        return ("nan",) if isinstance(v, float) and math.isnan(v) else ("num", v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Number) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


@dataclass(frozen=True)
class Name(Expr):
    """A column or quantity name."""

    id: str


@dataclass(frozen=True)
class UnaryOp(Expr):
    """``-x``, ``+x`` or the logical not ``~x``."""

    op: str
    operand: Expr


@dataclass(frozen=True)
class BinOp(Expr):
    """Arithmetic (``+ - * / **``) or logical (``& |``) binary operation."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Compare(Expr):
    """A single (never chained) comparison."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Call(Expr):
    """A call of a whitelisted function."""

    func: str
    args: tuple[Expr, ...]


# --- Interval arithmetic (for may_be_true) ---------------------------------------------------
# An interval is a closed [lo, hi] over the extended reals enclosing every non-NaN value an
# expression can take on the rows; None means "NaN on every row" (log10 of negatives, say).

_Interval = tuple[float, float] | None
_INF = math.inf
_FULL: tuple[float, float] = (-_INF, _INF)
# Computed endpoints are widened outwards: NumPy computes float32 columns in float32 and its
# SIMD log/exp/pow are a few ulp off, while the endpoints here are float64. 2**-20 is 8 float32
# ulp; _TINY covers float32 subnormals. The pruning this costs is negligible.
_EPS = 2.0**-20
_TINY = 1e-37


def _widen(v: float, sign: int) -> float:
    return v if math.isinf(v) else v + sign * (abs(v) * _EPS + _TINY)


def _fix(lo: float, hi: float) -> _Interval:
    if math.isnan(lo) or math.isnan(hi):  # inf - inf, 0 * inf: give up rather than guess
        return _FULL
    return (_widen(lo, -1), _widen(hi, 1))


def _hull(*parts: _Interval) -> _Interval:
    real = [p for p in parts if p is not None]
    return (min(p[0] for p in real), max(p[1] for p in real)) if real else None


def _np(f: Callable[..., Any], *xs: float) -> float:
    return float(f(*map(np.float64, xs)))  # NumPy's values: inf on overflow, -inf for log(0)


def _increasing(f: Callable[..., Any], nonneg: bool) -> Callable[[_Interval], _Interval]:
    """Interval version of a monotonically increasing f; `nonneg`: NaN for x < 0."""

    def interval(a: _Interval) -> _Interval:
        if a is None or (nonneg and a[1] < 0):
            return None
        return _fix(_np(f, max(a[0], 0.0) if nonneg else a[0]), _np(f, a[1]))

    return interval


def _iv_abs(a: _Interval) -> _Interval:
    if a is None or a[0] >= 0:
        return a
    return (-a[1], -a[0]) if a[1] <= 0 else (0.0, max(-a[0], a[1]))


def _iv_hypot(a: _Interval, b: _Interval) -> _Interval:
    if a is None or b is None:  # hypot(nan, inf) is inf: NaN does not simply propagate
        return _FULL
    near = [0.0 if i[0] <= 0 <= i[1] else min(abs(i[0]), abs(i[1])) for i in (a, b)]
    far = [max(abs(i[0]), abs(i[1])) for i in (a, b)]
    return _fix(_np(np.hypot, *near), _np(np.hypot, *far))


def _iv_arith(op: str, a: _Interval, b: _Interval) -> _Interval:
    if a is None or b is None:  # NaN propagates through + - * /
        return None
    if op == "/" and b[0] <= 0 <= b[1]:  # the divisor may be zero: anything, ±inf included
        return _FULL
    if op in "+-":
        c = [a[0] + b[0], a[1] + b[1]] if op == "+" else [a[0] - b[1], a[1] - b[0]]
    else:
        c = [x * y if op == "*" else x / y for x in a for y in b]
    return _FULL if any(math.isnan(v) for v in c) else _fix(min(c), max(c))


def _pow_corners(base: tuple[float, float], exp: tuple[float, float]) -> tuple[float, float]:
    # For a base >= 0, x**e is monotonic in x for each e and in e for each x, so its extremes
    # over the box are at the corners (0**-1 = inf, as NumPy has it).
    c = [_np(np.power, x, e) for x in base for e in exp]
    return (min(c), max(c))


def _iv_pow(base: _Interval, exp: _Interval) -> _Interval:
    if base is None or exp is None:  # nan**0 and 1**nan are 1, so not "never a number"
        return _FULL
    (blo, bhi), (elo, ehi) = base, exp
    parts: list[_Interval] = []
    if bhi >= 0:
        parts.append(_pow_corners((0.0 if blo <= 0 else blo, bhi), exp))
    if blo < 0 or (blo == 0 and elo < 0):  # a statistics 0 may be -0.0, and -0.0**-1 is -inf
        if elo == ehi and float(elo).is_integer():  # x**n is ±|x|**n for x < 0
            mag = _pow_corners((0.0 if bhi >= 0 else -bhi, abs(blo)), exp)
            parts.append(mag if int(elo) % 2 == 0 else (-mag[1], -mag[0]))
        elif blo == -_INF or math.isinf(elo) or math.isinf(ehi) or math.floor(ehi) >= elo:
            return _FULL  # C99's special cases: (-inf)**0.5 is inf, (-2)**inf is inf
        # else: a finite negative base to a non-integer power is NaN and adds no value
    hull = _hull(*parts)
    return None if hull is None else _fix(*hull)


# --- The function whitelist ------------------------------------------------------------------


class _Function(NamedTuple):
    numpy: Callable[..., Any]
    interval: Callable[..., _Interval]
    arity: int


def _trig(a: _Interval) -> _Interval:
    return None if a is None else (-1.0, 1.0)


def _both_increasing(f: Callable[[float, float], float]) -> Callable[..., _Interval]:
    # minimum/maximum: increasing in both arguments, and NaN propagates (np.fmin would not).
    def interval(a: _Interval, b: _Interval) -> _Interval:
        return None if a is None or b is None else (f(a[0], b[0]), f(a[1], b[1]))

    return interval


FUNCTIONS: Mapping[str, _Function] = MappingProxyType(
    {
        "isfinite": _Function(np.isfinite, lambda a: (0, 1), 1),
        "isnan": _Function(np.isnan, lambda a: (0, 1), 1),
        "log10": _Function(np.log10, _increasing(np.log10, nonneg=True), 1),
        "log": _Function(np.log, _increasing(np.log, nonneg=True), 1),
        "exp": _Function(np.exp, _increasing(np.exp, nonneg=False), 1),
        "sqrt": _Function(np.sqrt, _increasing(np.sqrt, nonneg=True), 1),
        "abs": _Function(np.abs, _iv_abs, 1),
        "sin": _Function(np.sin, _trig, 1),
        "cos": _Function(np.cos, _trig, 1),
        "arctan2": _Function(
            np.arctan2, lambda y, x: None if y is None or x is None else _fix(-math.pi, math.pi), 2
        ),
        "hypot": _Function(np.hypot, _iv_hypot, 2),
        # Each row takes one branch of where(); _interval() narrows this when it can.
        "where": _Function(np.where, lambda c, a, b: _hull(a, b), 3),
        "minimum": _Function(np.minimum, _both_increasing(min), 2),
        "maximum": _Function(np.maximum, _both_increasing(max), 2),
    }
)
"""Whitelisted functions: name -> (NumPy function, interval function, number of arguments)."""

_BOOLEAN_FUNCTIONS = frozenset({"isfinite", "isnan"})

# --- Tokenizer -------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|<=|>=|==|!=|[-+*/<>&|~(),])",
    re.ASCII,
)
_HYPHENATED_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*", re.ASCII)
_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_KEYWORD_OPS = {"and": "&", "or": "|", "not": "~"}
_CONSTANTS: dict[str, float] = {
    "True": True,
    "true": True,
    "False": False,
    "false": False,
    "nan": math.nan,
    "inf": math.inf,
}
# Other Python keywords (lambda, for, import, None, ...) are refused with a message that says
# so, rather than read as column names.
_PY_KEYWORDS = frozenset(keyword.kwlist) - {"True", "False", "and", "or", "not"}
_BAD_CHARS = {
    "'": "strings are not allowed",
    '"': "strings are not allowed",
    ".": "attribute access ('.') is not allowed",
    "[": "'[' is not allowed (no subscripts, lists or comprehensions)",
    "]": "']' is not allowed (no subscripts, lists or comprehensions)",
    "{": "'{' is not allowed (an unexpanded '{band}' template?)",
    "}": "'}' is not allowed (an unexpanded '{band}' template?)",
    "=": "'=' is not allowed (no assignment or keyword arguments); use '==' to compare",
    "!": "'!' is not allowed; use '~' or 'not' to negate, '!=' to compare",
    ";": "';' is not allowed: one expression only",
    ":": "':' is not allowed (no lambdas, slices or dicts)",
    "@": "'@' (matrix multiplication) is not supported",
    "^": "'^' is not allowed; use '**' for powers and '!=' for exclusive or",
    "%": "'%' (modulo) is not supported",
    "/": "'//' (floor division) is not supported",
}


class _Token(NamedTuple):
    kind: str  # "number", "name", "op", "end" or "error"
    text: str  # as written
    pos: int
    op: str = ""  # the canonical operator of an "op" token ("&" for "and")
    message: str = ""  # for an "error" token: what is wrong there


def _hyphenated_at(text: str, pos: int, longest_first: list[str]) -> str | None:
    if pos > 0 and text[pos - 1] in _WORD_CHARS:
        return None
    for h in longest_first:
        if text.startswith(h, pos) and text[pos + len(h) : pos + len(h) + 1] not in _WORD_CHARS:
            return h
    return None


def _tokenize(text: str, hyphenated: Collection[str]) -> list[_Token]:
    longest_first = sorted(hyphenated, key=len, reverse=True)
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if hy := _hyphenated_at(text, pos, longest_first):
            tokens.append(_Token("name", hy, pos))
            pos += len(hy)
            continue
        m = _TOKEN_RE.match(text, pos)
        kind, word = (m.lastgroup or "", m.group()) if m else ("", text[pos])
        if m is None or text.startswith("//", pos) or word in _PY_KEYWORDS:
            # Stop here: the parser reports this only if it gets this far, so that an earlier,
            # more telling error (an unknown function, say) wins.
            message = _BAD_CHARS.get(word, f"unexpected character {word!r}")
            if word in _PY_KEYWORDS:
                message = f"Python keyword {word!r} is not allowed in expressions"
            return [*tokens, _Token("error", word, pos, message=message)]
        if kind == "op" or word in _KEYWORD_OPS:
            tokens.append(_Token("op", word, pos, _KEYWORD_OPS.get(word, word)))
        elif kind != "space":
            tokens.append(_Token(kind, word, pos))
        pos = m.end()
    return [*tokens, _Token("end", "", len(text))]


# --- Parser ----------------------------------------------------------------------------------


def _describe(tok: _Token) -> str:
    return "the end of the expression" if tok.kind == "end" else repr(tok.text)


class _Parser:
    """Recursive descent, one method per level of the grammar in the module docstring."""

    def __init__(self, text: str, tokens: list[_Token]) -> None:
        self.text, self.tokens, self.i = text, tokens, 0

    def error(self, tok: _Token, message: str) -> FilterSyntaxError:
        shown = "".join(" " if c.isspace() else c for c in self.text)  # keeps the caret aligned
        caret = " " * tok.pos + "^"
        return FilterSyntaxError(f"{message} (position {tok.pos}) in:\n    {shown}\n    {caret}")

    def peek(self) -> _Token:
        tok = self.tokens[self.i]
        if tok.kind == "error":
            raise self.error(tok, tok.message)
        return tok

    def take(self, *ops: str) -> str | None:
        """Consume and return the next operator if it is one of `ops`."""
        tok = self.peek()
        if tok.kind == "op" and tok.op in ops:
            self.i += 1
            return tok.op
        return None

    def expression(self) -> Expr:
        if self.peek().kind == "end":
            raise self.error(self.peek(), "empty expression")
        expr = self.or_()
        tok = self.peek()
        if tok.kind != "end":
            what = "unmatched ')'" if tok.op == ")" else f"unexpected {_describe(tok)}"
            raise self.error(tok, f"{what}; expected an operator or the end of the expression")
        return expr

    def chain(self, ops: tuple[str, ...], operand: Callable[[], Expr]) -> Expr:
        """A left-associative run of binary operators `ops` between operands."""
        left = operand()
        while op := self.take(*ops):
            left = BinOp(op, left, operand())
        return left

    def or_(self) -> Expr:
        return self.chain(("|",), self.and_)

    def and_(self) -> Expr:
        return self.chain(("&",), self.not_)

    def not_(self) -> Expr:
        return UnaryOp("~", self.not_()) if self.take("~") else self.compare()

    def compare(self) -> Expr:
        ops = ("<", "<=", ">", ">=", "==", "!=")
        left = self.sum()
        if not (op := self.take(*ops)):
            return left
        right = self.sum()
        tok = self.peek()
        if self.take(*ops):  # Python would chain; say what to write instead
            try:
                third = to_text(self.sum())
            except FilterSyntaxError:
                third = "c"
            a, b = to_text(left), to_text(right)
            hint = f"({a} {op} {b}) & ({b} {tok.op} {third})"
            raise self.error(tok, f"comparisons cannot be chained; write {hint}")
        return Compare(op, left, right)

    def sum(self) -> Expr:
        return self.chain(("+", "-"), self.product)

    def product(self) -> Expr:
        return self.chain(("*", "/"), self.unary)

    def unary(self) -> Expr:
        op = self.take("-", "+")
        return UnaryOp(op, self.unary()) if op else self.power()

    def power(self) -> Expr:
        # unary() has taken any sign, so -2**2 is -(2**2); the exponent is itself a unary so
        # that 10**-0.375 parses.
        base = self.atom()
        return BinOp("**", base, self.unary()) if self.take("**") else base

    def atom(self) -> Expr:
        tok = self.peek()
        if tok.kind == "number":
            self.i += 1
            is_float = any(c in tok.text for c in ".eE")
            return Number(float(tok.text) if is_float else int(tok.text))
        if tok.kind == "name":
            self.i += 1
            if tok.text in _CONSTANTS:
                return Number(_CONSTANTS[tok.text])
            if self.take("("):
                return self.call(tok)
            if tok.text in FUNCTIONS:
                raise self.error(tok, f"{tok.text!r} is a function; call it as {tok.text}(...)")
            return Name(tok.text)
        if self.take("("):
            inner = self.or_()
            if not self.take(")"):
                found = _describe(self.peek())
                raise self.error(
                    self.peek(), f"expected ')' for the '(' at {tok.pos}, found {found}"
                )
            return inner
        if tok.op == "~":
            hint = "it negates a whole comparison, not arithmetic; put it in parentheses: (~...)"
            raise self.error(tok, f"{tok.text!r} cannot stand here: {hint}")
        after = f" after {self.tokens[self.i - 1].text!r}" if self.i else ""
        expected = f"expected a number, name, function call or '('{after}"
        raise self.error(tok, f"{expected}, found {_describe(tok)}")

    def call(self, name: _Token) -> Expr:
        if name.text not in FUNCTIONS:
            allowed = ", ".join(sorted(FUNCTIONS))
            raise self.error(name, f"unknown function {name.text!r}; allowed are {allowed}")
        args: list[Expr] = []
        if not self.take(")"):
            args.append(self.or_())
            while not self.take(")"):
                if not self.take(","):
                    found = _describe(self.peek())
                    raise self.error(
                        self.peek(), f"expected ',' or ')' in {name.text}(), found {found}"
                    )
                args.append(self.or_())
        arity = FUNCTIONS[name.text].arity
        if len(args) != arity:
            s = "s" if arity > 1 else ""
            raise self.error(name, f"{name.text}() takes {arity} argument{s}, got {len(args)}")
        return Call(name.text, tuple(args))


def parse(text: str, *, hyphenated_names: Collection[str] = ()) -> Expr:
    """Parse a filter or quantity expression.

    Parameters
    ----------
    text
        The expression, in the grammar of the module docstring.
    hyphenated_names
        Names containing ``-`` (colours such as ``g-r``), read as one name wherever one stands
        as a whole word; elsewhere ``-`` is subtraction.

    Raises
    ------
    FilterSyntaxError
        If `text` is not in the grammar; the message shows where, with a caret.

    Examples
    --------
    >>> parse("a < 1 & b > 2") == parse("(a < 1) & (b > 2)")
    True
    >>> parse("-2**2")
    UnaryOp(op='-', operand=BinOp(op='**', left=Number(value=2), right=Number(value=2)))
    >>> parse("g-r > 0.5", hyphenated_names={"g-r"}).left
    Name(id='g-r')
    >>> parse("a.b")
    Traceback (most recent call last):
    ...
    skydask.errors.FilterSyntaxError: attribute access ('.') is not allowed (position 1) in: ...
    """
    for h in hyphenated_names:
        if not _HYPHENATED_RE.fullmatch(h):
            raise ValueError(f"hyphenated name {h!r} is not words joined by '-'")
    return _Parser(text, _tokenize(text, hyphenated_names)).expression()


# --- Tree utilities --------------------------------------------------------------------------


def _children(expr: Expr) -> tuple[Expr, ...]:
    if isinstance(expr, UnaryOp):
        return (expr.operand,)
    if isinstance(expr, BinOp | Compare):
        return (expr.left, expr.right)
    return expr.args if isinstance(expr, Call) else ()


def names(expr: Expr) -> frozenset[str]:
    """The names (columns or quantities) an expression uses.

    >>> sorted(names(parse("sqrt(e1 ** 2 + e2 ** 2) < 0.3 & clean")))
    ['clean', 'e1', 'e2']
    """
    if isinstance(expr, Name):
        return frozenset({expr.id})
    return frozenset().union(*map(names, _children(expr)))


def substitute(expr: Expr, mapping: Mapping[str, Expr]) -> Expr:
    """Replace the names that are keys of `mapping` by their expressions.

    >>> to_text(substitute(parse("mag < 20"), {"mag": parse("-2.5 * log10(f) + 31.4")}))
    '-2.5 * log10(f) + 31.4 < 20'
    """
    if isinstance(expr, Name):
        return mapping.get(expr.id, expr)
    if isinstance(expr, UnaryOp):
        return UnaryOp(expr.op, substitute(expr.operand, mapping))
    if isinstance(expr, BinOp | Compare):
        return type(expr)(expr.op, substitute(expr.left, mapping), substitute(expr.right, mapping))
    if isinstance(expr, Call):
        return Call(expr.func, tuple(substitute(a, mapping) for a in expr.args))
    return expr


# Binding strength, as in the grammar: | & ~ compare +- */ unary ** atom.
_PREC = {"|": 1, "&": 2, "~": 3, "+": 5, "-": 5, "*": 6, "/": 6, "**": 8}
_COMPARE, _UNARY, _ATOM = 4, 7, 9


def _prec(expr: Expr) -> int:
    if isinstance(expr, BinOp):
        return _PREC[expr.op]
    if isinstance(expr, UnaryOp):
        return _PREC["~"] if expr.op == "~" else _UNARY
    if isinstance(expr, Compare):
        return _COMPARE
    if isinstance(expr, Number) and not isinstance(expr.value, bool):
        return _UNARY if math.copysign(1.0, expr.value) < 0 else _ATOM  # printed with a '-'
    return _ATOM


def to_text(expr: Expr) -> str:
    """Canonical text of an expression, which :func:`parse` reads back to an equal expression.

    Parentheses are added only where the grammar needs them, and around the operand of ``~``
    unless it is atomic (``~(x > 5)`` reads unambiguously to a Python eye, ``~x > 5`` does not).
    A negative :class:`Number` prints as ``-2.0``, which reads back as ``UnaryOp('-', 2.0)``.

    >>> to_text(parse("(a<1)&(b>2)|~(c==3)"))
    'a < 1 & b > 2 | ~(c == 3)'
    >>> to_text(parse("(2**3)**2 - -x"))
    '(2 ** 3) ** 2 - -x'
    """

    def wrap(e: Expr, below: int) -> str:  # parenthesise e if it binds looser than `below`
        return f"({to_text(e)})" if _prec(e) < below else to_text(e)

    if isinstance(expr, Number):
        v = expr.value
        return str(v) if isinstance(v, bool | int) else repr(v)  # repr(1e-05) reads back exactly
    if isinstance(expr, Name):
        return expr.id
    if isinstance(expr, Call):
        return f"{expr.func}({', '.join(map(to_text, expr.args))})"
    if isinstance(expr, UnaryOp) and expr.op != "~":
        return expr.op + wrap(expr.operand, _UNARY)
    if isinstance(expr, UnaryOp):
        nested = isinstance(expr.operand, UnaryOp) and expr.operand.op == "~"
        return "~" + (to_text(expr.operand) if nested else wrap(expr.operand, _ATOM))
    if isinstance(expr, Compare):
        return f"{wrap(expr.left, _COMPARE + 1)} {expr.op} {wrap(expr.right, _COMPARE + 1)}"
    if isinstance(expr, BinOp) and expr.op == "**":  # the base is an atom, the exponent a unary
        return f"{wrap(expr.left, _ATOM)} ** {wrap(expr.right, _UNARY)}"
    if isinstance(expr, BinOp):  # left-associative: equal strength needs parentheses on the right
        p = _PREC[expr.op]
        return f"{wrap(expr.left, p)} {expr.op} {wrap(expr.right, p + 1)}"
    raise TypeError(f"not an expression node: {expr!r}")


def conjuncts(expr: Expr) -> list[Expr]:
    """Split a top-level chain of ``&`` into its parts, left to right.

    >>> [to_text(c) for c in conjuncts(parse("a < 1 & (b > 2 & c)"))]
    ['a < 1', 'b > 2', 'c']
    >>> [to_text(c) for c in conjuncts(parse("a < 1 & b | d"))]
    ['a < 1 & b | d']
    """
    if isinstance(expr, BinOp) and expr.op == "&":
        return conjuncts(expr.left) + conjuncts(expr.right)
    return [expr]


def is_boolean(expr: Expr) -> bool:
    """Whether an expression is certainly boolean-valued (a name is unknown, so False).

    >>> is_boolean(parse("isfinite(x) & x > 0")), is_boolean(parse("x + 1")), is_boolean(parse("x"))
    (True, False, False)
    """
    if isinstance(expr, Compare):
        return True
    if isinstance(expr, BinOp | UnaryOp):
        return expr.op in ("&", "|", "~")
    if isinstance(expr, Number):
        return isinstance(expr.value, bool)
    if isinstance(expr, Call) and expr.func == "where":
        return is_boolean(expr.args[1]) and is_boolean(expr.args[2])
    return isinstance(expr, Call) and expr.func in _BOOLEAN_FUNCTIONS


# --- NumPy evaluation ------------------------------------------------------------------------

COMPARISONS: dict[str, Callable[..., Any]] = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
"""The NumPy function of each comparison operator (the reader compares with them directly)."""

_NUMPY_OPS: dict[str, Callable[..., Any]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
    "&": np.logical_and,  # logical, so that ~ & | act on truth values whatever the dtype
    "|": np.logical_or,
    **COMPARISONS,
}


def _column(value: Any) -> Any:
    if not hasattr(value, "to_numpy"):
        return np.asarray(value)
    dtype = value.dtype
    if not isinstance(dtype, np.dtype) and getattr(dtype, "kind", "O") in "biuf":
        # Nullable pandas/Arrow dtypes: a missing flag selects nothing, a missing number is NaN
        # (as in a float column); without missing values the exact dtype is kept.
        if dtype.kind == "b":
            return value.to_numpy(dtype=bool, na_value=False)
        if value.hasnans:
            return value.to_numpy(dtype=np.float64, na_value=np.nan)
        return value.to_numpy(dtype=dtype.numpy_dtype)
    return value.to_numpy()


def _eval(expr: Expr, columns: Mapping[str, Any]) -> Any:
    if isinstance(expr, Number):
        return expr.value
    if isinstance(expr, Name):
        if expr.id not in columns:
            raise KeyError(f"expression needs column {expr.id!r}, which was not given")
        return _column(columns[expr.id])
    if isinstance(expr, UnaryOp):
        v = _eval(expr.operand, columns)
        return np.logical_not(v) if expr.op == "~" else np.negative(v) if expr.op == "-" else v
    if isinstance(expr, BinOp | Compare):
        left, right = _eval(expr.left, columns), _eval(expr.right, columns)
        if expr.op != "**":
            return _NUMPY_OPS[expr.op](left, right)
        # NumPy refuses integers to negative integer powers (10**-2): integer powers are done
        # in float64 always, so that the result dtype does not depend on the data.
        if np.result_type(left, right).kind in "biu":
            left = np.asarray(left, dtype=np.float64)
        return np.power(left, right)
    if isinstance(expr, Call) and expr.func in FUNCTIONS:
        return FUNCTIONS[expr.func].numpy(*(_eval(a, columns) for a in expr.args))
    raise ValueError(f"cannot evaluate {expr!r}")


def evaluate(expr: Expr, columns: Mapping[str, Any]) -> Any:
    """Evaluate an expression on NumPy arrays or pandas Series.

    NaN and infinities arise silently (``log10`` of negatives, division by zero). Returns a
    NumPy array, or a scalar when the expression uses no names.

    Raises
    ------
    KeyError
        If a name of the expression is not in `columns`.

    Examples
    --------
    >>> evaluate(parse("-2.5 * log10(f) + 31.4"), {"f": np.array([1.0, 100.0])})
    array([31.4, 26.4])
    >>> evaluate(parse("x > 1 & ~flag"), {"x": np.array([0, 2, 3]),
    ...                                   "flag": np.array([False, False, True])})
    array([False,  True, False])
    """
    with np.errstate(all="ignore"):
        return _eval(expr, columns)


# --- Row-group pruning -----------------------------------------------------------------------


class _Truth(NamedTuple):
    may_be_false: bool
    may_be_true: bool


def _bound(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool | np.bool_ | numbers.Integral):
        return int(v)  # integers stay exact, so that objectId == N compares exactly
    try:
        f = float(v)
    except (TypeError, ValueError):  # strings, dates: nothing known numerically
        return None
    return None if math.isnan(f) else f


def _name_interval(bounds: Mapping[str, Any], name: str) -> _Interval:
    b = bounds.get(name)
    lo, hi = (None, None) if b is None else (_bound(b[0]), _bound(b[1]))
    # A NaN or missing bound makes the other suspect too (old writers got both wrong when a
    # column held NaN), so the column is then unknown; so it is if the bounds are inconsistent.
    return _FULL if lo is None or hi is None or lo > hi else (lo, hi)


def _loosen(v: float, sign: int) -> float:
    # NumPy compares a float32 column with float32(literal), which may differ from the literal
    # by half an ulp either way; integer endpoints (ints, bools) are exact and stay so.
    return v if isinstance(v, int) else _widen(v, sign)


def _compare_may_be_true(op: str, a: _Interval, b: _Interval) -> bool:
    if op == "!=":  # NaN != anything is true, and NaN rows are not in the statistics
        return True
    if a is None or b is None:  # NaN compares false
        return False
    alo, ahi, blo, bhi = _loosen(a[0], -1), _loosen(a[1], 1), _loosen(b[0], -1), _loosen(b[1], 1)
    if op in ("<", "<="):
        return alo < bhi or (op == "<=" and alo == bhi)
    if op in (">", ">="):
        return ahi > blo or (op == ">=" and ahi == blo)
    return alo <= bhi and blo <= ahi  # ==


def _truth(expr: Expr, bounds: Mapping[str, Any]) -> _Truth:
    # may_be_false is kept True wherever NaN or null rows could make something false.
    if isinstance(expr, Number):
        return _Truth(not expr.value, bool(expr.value))  # nan is truthy, as in NumPy
    if isinstance(expr, Name):
        # Taken as a boolean column (no NaN): it may be true unless all its values are 0/False.
        lo, hi = _name_interval(bounds, expr.id) or _FULL
        return _Truth(True, not lo == hi == 0)
    if isinstance(expr, Compare):
        left, right = _interval(expr.left, bounds), _interval(expr.right, bounds)
        return _Truth(True, _compare_may_be_true(expr.op, left, right))
    if isinstance(expr, UnaryOp) and expr.op == "~":
        t = _truth(expr.operand, bounds)
        return _Truth(t.may_be_true, t.may_be_false)
    if isinstance(expr, BinOp) and expr.op in ("&", "|"):
        a, b = _truth(expr.left, bounds), _truth(expr.right, bounds)
        if expr.op == "&":
            return _Truth(a.may_be_false or b.may_be_false, a.may_be_true and b.may_be_true)
        return _Truth(a.may_be_false and b.may_be_false, a.may_be_true or b.may_be_true)
    if isinstance(expr, Call) and expr.func == "where":
        cond = _truth(expr.args[0], bounds)
        taken = [(expr.args[1], cond.may_be_true), (expr.args[2], cond.may_be_false)]
        branches = [_truth(e, bounds) for e, possible in taken if possible]
        return _Truth(any(t.may_be_false for t in branches), any(t.may_be_true for t in branches))
    return _Truth(True, True)  # arithmetic as a truth value: NaN is truthy, so anything goes


def _interval(expr: Expr, bounds: Mapping[str, Any]) -> _Interval:
    if isinstance(expr, Number):
        v = expr.value
        return None if isinstance(v, float) and math.isnan(v) else (v, v)
    if isinstance(expr, Name):
        return _name_interval(bounds, expr.id)
    if isinstance(expr, UnaryOp) and expr.op != "~":
        a = _interval(expr.operand, bounds)
        return (-a[1], -a[0]) if a is not None and expr.op == "-" else a
    if isinstance(expr, BinOp) and expr.op not in ("&", "|"):
        left, right = _interval(expr.left, bounds), _interval(expr.right, bounds)
        return _iv_pow(left, right) if expr.op == "**" else _iv_arith(expr.op, left, right)
    if isinstance(expr, Call) and expr.func not in FUNCTIONS:
        return _FULL
    if isinstance(expr, Call) and expr.func == "where":
        cond = _truth(expr.args[0], bounds)
        a = _interval(expr.args[1], bounds) if cond.may_be_true else None
        return _hull(a, _interval(expr.args[2], bounds) if cond.may_be_false else None)
    if isinstance(expr, Call) and expr.func not in _BOOLEAN_FUNCTIONS:
        return FUNCTIONS[expr.func].interval(*(_interval(a, bounds) for a in expr.args))
    # A truth value used as a number: 0 or 1, as far as it may be false or true.
    t = _truth(expr, bounds)
    lo, hi = (0 if t.may_be_false else 1), (1 if t.may_be_true else 0)
    return (lo, hi) if lo <= hi else None


def may_be_true(expr: Expr, bounds: Mapping[str, tuple[Any, Any]]) -> bool:
    """Whether some row with values inside `bounds` may satisfy a boolean expression.

    Parameters
    ----------
    expr
        A boolean expression. A bare name used as a truth value (``clean``) is taken to be a
        boolean column.
    bounds
        ``name -> (min, max)`` of the non-null, non-NaN values of that column, as Parquet
        row-group statistics give them. Missing names, ``None`` and NaN mean "unknown".

    Returns
    -------
    bool
        False only if no such row can satisfy `expr`, so that the row group can be skipped;
        True whenever in doubt.

    Examples
    --------
    >>> may_be_true(parse("x > 5"), {"x": (0, 3)}), may_be_true(parse("x > 5"), {})
    (False, True)
    >>> may_be_true(parse("-2.5 * log10(f) + 31.4 < 20"), {"f": (1e3, 2e3)})
    False
    """
    try:
        with np.errstate(all="ignore"):
            return _truth(expr, bounds).may_be_true
    except (ArithmeticError, ValueError, TypeError):  # e.g. an int too large for a float
        return True


# --- Arrow translation -----------------------------------------------------------------------

_ARROW_FUNCTIONS = {
    "log10": "log10",
    "log": "ln",
    "exp": "exp",
    "sqrt": "sqrt",
    "abs": "abs",
    "sin": "sin",
    "cos": "cos",
    "isfinite": "is_finite",
    "isnan": "is_nan",
}
_ARROW_OPS = {
    "+": "add",
    "-": "subtract",
    "*": "multiply",
    "/": "divide",
    "**": "power",
    "<": "less",
    "<=": "less_equal",
    ">": "greater",
    ">=": "greater_equal",
    "==": "equal",
    "!=": "not_equal",
}


def to_arrow(expr: Expr) -> pc.Expression | None:
    """Translate a boolean expression over column names to a ``pyarrow.compute.Expression``.

    Null is treated as NumPy treats NaN (comparisons with it are false, ``isnan`` is true), so
    that a null row is kept or dropped as :func:`evaluate` would on the pandas column. Names
    used as truth values are taken to be boolean columns. Arrow promotes types its own way (a
    float32 column is compared with a float literal in float64), so a row exactly at a
    threshold may be classified differently from :func:`evaluate`.

    Returns
    -------
    pyarrow.compute.Expression or None
        None if the expression is not boolean or uses something with no Arrow equivalent.

    Examples
    --------
    >>> to_arrow(parse("a > 1 & ~flag"))
    <pyarrow.compute.Expression (coalesce((a > 1), false) and invert(coalesce(flag, false)))>
    >>> to_arrow(parse("hypot(a, b) > 1")) is None
    True
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    def boolean(e: Expr) -> Any:
        if isinstance(e, Name | Compare) or (isinstance(e, Call) and e.func == "isfinite"):
            return pc.coalesce(value(e), pc.scalar(False))  # null -> False, as NaN compares
        if isinstance(e, Call) and e.func == "isnan":  # a null reads into pandas as NaN
            return pc.coalesce(value(e), pc.scalar(True))
        if isinstance(e, UnaryOp) and e.op == "~":
            return ~boolean(e.operand)
        if isinstance(e, BinOp) and e.op in ("&", "|"):
            left, right = boolean(e.left), boolean(e.right)
            return left & right if e.op == "&" else left | right
        if isinstance(e, Number) and isinstance(e.value, bool):
            return pc.scalar(e.value)
        raise NotImplementedError

    def value(e: Expr) -> Any:
        if isinstance(e, Number):  # an Expression literal, so that every operand is lazy
            return pc.scalar(e.value)
        if isinstance(e, Name):
            return pc.field(e.id)
        if isinstance(e, UnaryOp) and e.op in ("-", "+"):
            return pc.negate(value(e.operand)) if e.op == "-" else value(e.operand)
        if isinstance(e, BinOp | Compare) and e.op in _ARROW_OPS:
            left = value(e.left)
            if e.op in ("/", "**"):  # NumPy's true division, and no integer negative powers
                left = left.cast(pa.float64())
            return getattr(pc, _ARROW_OPS[e.op])(left, value(e.right))
        if isinstance(e, Call) and e.func in _ARROW_FUNCTIONS:
            return getattr(pc, _ARROW_FUNCTIONS[e.func])(*map(value, e.args))
        return boolean(e)

    if not (is_boolean(expr) or isinstance(expr, Name)):
        return None
    try:
        return boolean(expr)
    except NotImplementedError:
        return None
