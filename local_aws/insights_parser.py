"""Logs Insights QL text -> tokens -> expression trees: commands split on `|`, `#` comments, backtick names,
/regex/ literals (Java-style named groups), time periods such as `5m`, and a Pratt parser for expressions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple


class MalformedQueryError(ValueError):
    """The query text is not valid Logs Insights QL; `start`/`end` are character offsets into the query."""

    def __init__(self, message: str, start: int = 0, end: int = 0):
        super().__init__(message)
        self.message = message
        self.start = start
        self.end = end


class UnsupportedQueryError(MalformedQueryError):
    """Valid Logs Insights QL that this double does not implement; raised loudly rather than answered wrongly."""


class Token(NamedTuple):
    kind: str  # ident, number, string, period, regex, op
    text: str
    value: Any
    start: int
    end: int
    quoted: bool = False  # a `backtick` identifier: always a field name, never a keyword


_UNITS = {
    "ms": 1, "msec": 1, "millisecond": 1,
    "s": 1000, "sec": 1000, "second": 1000,
    "m": 60_000, "min": 60_000, "minute": 60_000,
    "h": 3_600_000, "hr": 3_600_000, "hour": 3_600_000,
    "d": 86_400_000, "day": 86_400_000,
    "w": 604_800_000, "week": 604_800_000,
    "mo": "month", "mon": "month", "month": "month",
    "q": "quarter", "qtr": "quarter", "quarter": "quarter",
    "y": "year", "yr": "year", "year": "year",
}  # fmt: skip
_LEXEMES = re.compile(
    r"""(?P<ws>\s+)
      | (?P<comment>\#[^\n]*)
      | (?P<backtick>`[^`]*`)
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<period>\d+(?:\.\d+)?(?:[a-zA-Z]+)\b)
      | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<ident>[A-Za-z_@][A-Za-z0-9_@.]*)
      | (?P<op>=~|==|!=|<=|>=|[=<>+\-*/%^(),\[\]|!])""",
    re.VERBOSE | re.DOTALL,
)
KEYWORDS = {"and", "or", "not", "like", "in", "as", "by", "asc", "desc"}


def _unit(text: str) -> int | str | None:
    lowered = text.lower()
    if lowered in _UNITS:
        return _UNITS[lowered]
    # "adding s to pluralize is supported" for units longer than one character (stats docs)
    if lowered.endswith("s") and len(lowered) > 2 and lowered[:-1] in _UNITS:
        return _UNITS[lowered[:-1]]
    return None


def _regex_allowed(prev: Token | None, prev2: Token | None) -> bool:
    """Whether `/` starts a regex literal rather than dividing: not after an operand, except `parse <field> /re/`."""
    if prev is None:
        return True
    if prev.kind == "op":
        return prev.text not in (")", "]")
    if prev.kind == "ident" and not prev.quoted and prev.text.lower() in KEYWORDS | {"parse", "filter"}:
        return True
    return prev2 is not None and prev2.kind == "ident" and prev2.text.lower() == "parse"


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "/" and _regex_allowed(tokens[-1] if tokens else None, tokens[-2] if len(tokens) > 1 else None):
            tokens.append(_read_regex(text, pos))
            pos = tokens[-1].end
            continue
        match = _LEXEMES.match(text, pos)
        if match is None:
            if char in "\"'`":
                raise MalformedQueryError(f"unterminated quote {char} at offset {pos}", pos, len(text))
            raise MalformedQueryError(f"unexpected character {char!r} at offset {pos}", pos, pos + 1)
        kind = match.lastgroup or ""
        lexeme = match.group()
        start, pos = pos, match.end()
        if kind in ("ws", "comment"):
            continue
        if kind == "backtick":
            tokens.append(Token("ident", lexeme[1:-1], lexeme[1:-1], start, pos, quoted=True))
        elif kind == "string":
            tokens.append(Token("string", lexeme, _unquote(lexeme), start, pos))
        elif kind == "period":
            amount_text = re.match(r"\d+(?:\.\d+)?", lexeme).group()  # type: ignore[union-attr]
            unit = _unit(lexeme[len(amount_text) :])
            if unit is None:
                raise MalformedQueryError(f"unknown time unit in {lexeme!r}", start, pos)
            tokens.append(Token("period", lexeme, (float(amount_text), unit), start, pos))
        elif kind == "number":
            value: int | float = float(lexeme) if any(c in lexeme for c in ".eE") else int(lexeme)
            tokens.append(Token("number", lexeme, value, start, pos))
        else:
            tokens.append(Token(kind, lexeme, lexeme, start, pos))
    return tokens


def _unquote(lexeme: str) -> str:
    body = lexeme[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def _read_regex(text: str, start: int) -> Token:
    pos = start + 1
    chars: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            nxt = text[pos + 1]
            chars.append("/" if nxt == "/" else char + nxt)
            pos += 2
            continue
        if char == "/":
            return Token("regex", text[start : pos + 1], _compile_regex("".join(chars), start, pos + 1), start, pos + 1)
        chars.append(char)
        pos += 1
    raise MalformedQueryError(f"unterminated regular expression starting at offset {start}", start, len(text))


_INLINE_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")
_FLAG_BITS = {"i": re.I, "m": re.M, "s": re.S, "x": re.X, "a": re.A, "u": re.U, "L": re.L}


def _compile_regex(pattern: str, start: int = 0, end: int = 0) -> re.Pattern[str]:
    # Insights uses Java-style `(?<name>...)` groups and allows `(?i)` anywhere (`/^(?i)Exception$/` in the docs);
    # Python wants `(?P<name>...)` and global flags at the very start.
    translated = re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern)
    flags = 0
    for match in _INLINE_FLAGS.finditer(translated):
        for letter in match.group(1):
            flags |= _FLAG_BITS[letter]
    translated = _INLINE_FLAGS.sub("", translated)
    try:
        return re.compile(translated, flags)
    except re.error as err:
        raise MalformedQueryError(f"invalid regular expression /{pattern}/: {err}", start, end) from err


# -- parser -------------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    start: int
    end: int


@dataclass(eq=False)
class Lit(Node):
    value: Any


@dataclass(eq=False)
class FieldRef(Node):
    name: str


@dataclass(eq=False)
class Call(Node):
    name: str
    args: list[Node]


@dataclass(eq=False)
class Unary(Node):
    op: str
    operand: Node


@dataclass(eq=False)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(eq=False)
class Like(Node):
    operand: Node
    pattern: Node
    negate: bool


@dataclass(eq=False)
class InList(Node):
    operand: Node
    items: list[Node]
    negate: bool


@dataclass(eq=False)
class ListLit(Node):
    items: list[Node]


@dataclass(eq=False)
class RegexLit(Node):
    regex: re.Pattern[str]


@dataclass(eq=False)
class Period(Node):
    amount: float
    unit: int | str


@dataclass(eq=False)
class Star(Node):
    pass


@dataclass(eq=False)
class AggRef(Node):
    slot: int


COMPARISONS = {"=", "==", "!=", "<", "<=", ">", ">="}


class Parser:
    """A Pratt parser over one command's tokens: or < and < not < comparisons < + - < * / % < ^ < unary -."""

    def __init__(self, tokens: list[Token], text: str):
        self.tokens = tokens
        self.text = text
        self.i = 0

    # token helpers
    def peek(self, ahead: int = 0) -> Token | None:
        index = self.i + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            end = len(self.text)
            raise MalformedQueryError("the query ends where more was expected", end, end)
        self.i += 1
        return token

    def at_op(self, *ops: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "op" and token.text in ops

    def at_word(self, *words: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token is not None and token.kind == "ident" and not token.quoted and token.text.lower() in words

    def expect_op(self, op: str) -> Token:
        token = self.take()
        if token.kind != "op" or token.text != op:
            raise MalformedQueryError(f"expected {op!r} but found {token.text!r}", token.start, token.end)
        return token

    def done(self) -> bool:
        return self.i >= len(self.tokens)

    def source(self, node: Node) -> str:
        return node.name if isinstance(node, FieldRef) else self.text[node.start : node.end]

    # grammar
    def name(self) -> str:
        token = self.take()
        if token.kind != "ident":
            raise MalformedQueryError(f"expected a field name but found {token.text!r}", token.start, token.end)
        return token.text

    def expression(self, min_bp: int = 0) -> Node:
        token = self.peek()
        if token is None:
            end = len(self.text)
            raise MalformedQueryError("an expression was expected", end, end)
        left: Node
        if self.at_word("not") or self.at_op("!"):
            self.take()
            operand = self.expression(2)
            left = Unary(token.start, operand.end, "not", operand)
        elif self.at_op("-"):
            self.take()
            operand = self.expression(6)
            left = Unary(token.start, operand.end, "-", operand)
        else:
            left = self.primary()
        while True:
            infix = self.infix()
            if infix is None:
                return left
            op, bp, width = infix
            if bp <= min_bp:
                return left
            self.i += width
            if op in ("like", "not like", "=~"):
                pattern = self.expression(bp)
                left = Like(left.start, pattern.end, left, pattern, negate=op == "not like")
            elif op in ("in", "not in"):
                items = self.expression(bp)
                if not isinstance(items, ListLit):
                    raise MalformedQueryError('`in` needs a list such as ["a", "b"]', items.start, items.end)
                left = InList(left.start, items.end, left, items.items, negate=op == "not in")
            else:
                right = self.expression(bp - 1 if op == "^" else bp)
                left = Binary(left.start, right.end, op, left, right)

    def infix(self) -> tuple[str, int, int] | None:
        token = self.peek()
        if token is None:
            return None
        if token.kind == "op":
            if token.text in COMPARISONS:
                return ("=" if token.text == "==" else token.text), 4, 1
            if token.text == "=~":
                return "=~", 4, 1
            return {
                "+": ("+", 5, 1),
                "-": ("-", 5, 1),
                "*": ("*", 6, 1),
                "/": ("/", 6, 1),
                "%": ("%", 6, 1),
                "^": ("^", 7, 1),
            }.get(token.text)
        if token.kind == "ident" and not token.quoted:
            word = token.text.lower()
            if word in ("or", "and"):
                return word, 1 if word == "or" else 2, 1
            if word in ("like", "in"):
                return word, 4, 1
            if word == "not" and self.at_word("like", "in", ahead=1):
                return "not " + self.tokens[self.i + 1].text.lower(), 4, 2
        return None

    def primary(self) -> Node:
        token = self.take()
        if token.kind in ("number", "string"):
            return Lit(token.start, token.end, token.value)
        if token.kind == "regex":
            return RegexLit(token.start, token.end, token.value)
        if token.kind == "period":
            amount, unit = token.value
            return Period(token.start, token.end, amount, unit)
        if token.kind == "ident":
            if not token.quoted and self.at_op("("):
                return self.call(token)
            if not token.quoted and token.text.lower() in KEYWORDS:
                raise MalformedQueryError(f"unexpected keyword {token.text!r}", token.start, token.end)
            return FieldRef(token.start, token.end, token.text)
        if token.kind == "op" and token.text == "(":
            inner = self.expression()
            close = self.expect_op(")")
            inner.start, inner.end = token.start, close.end
            return inner
        if token.kind == "op" and token.text == "[":
            items: list[Node] = []
            while not self.at_op("]"):
                items.append(self.expression())
                if not self.at_op("]"):
                    self.expect_op(",")
            close = self.expect_op("]")
            return ListLit(token.start, close.end, items)
        raise MalformedQueryError(f"unexpected {token.text!r} at offset {token.start}", token.start, token.end)

    def call(self, name: Token) -> Call:
        self.expect_op("(")
        args: list[Node] = []
        if self.at_op("*") and (nxt := self.peek(1)) is not None and nxt.text == ")":
            star = self.take()
            args.append(Star(star.start, star.end))
        while not self.at_op(")"):
            args.append(self.expression())
            if not self.at_op(")"):
                self.expect_op(",")
        close = self.expect_op(")")
        return Call(name.start, close.end, name.text.lower(), args)

    def item_list(self, stop_words: tuple[str, ...] = ()) -> list[tuple[Node, str]]:
        """`expr [as alias], ...` -> (expression, output name)."""
        items = []
        while True:
            node = self.expression()
            alias = self.source(node)
            if self.at_word("as"):
                self.take()
                alias = self.name()
            items.append((node, alias))
            if not self.at_op(","):
                return items
            self.take()
            if self.done() or (stop_words and self.at_word(*stop_words)):
                token = self.peek() or self.tokens[-1]
                raise MalformedQueryError("a trailing comma", token.start, token.end)
