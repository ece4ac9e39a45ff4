"""Render the report email from the Jinja2 templates and build the MIME message (no AWS calls here)."""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from decimal import Decimal
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache
from pathlib import Path
from types import CodeType
from typing import Any, cast

import jinja2
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape

from lambda_function.config import PACKAGE_ROOT
from lambda_function.report.identities import friendly_identity
from lambda_function.report.rows import cost_label, money

TEMPLATES = PACKAGE_ROOT / "templates"
# Headers go out with RFC 5322's 998-character line limit (SES's RawMessage: no line over 1,000 characters): at
# the default 78, Python folds a long Subject before its first word ("Subject:" then " Bedrock usage ..." on the
# next line), which some clients show with a leading space. Bodies are encoded when the message is built, with
# RFC 2045's 76-character lines (Python's default would allow 78), so the wire policy changes header folding only.
BUILD_POLICY = policy.default.clone(max_line_length=76)
WIRE_POLICY = policy.default.clone(max_line_length=998)


# The templates' Python as Jinja generates it, and its bytecode, written ahead of time by `compile_templates` (`make
# templates`, which `make demo` and `make bench` run, and `make package`): a cold start then skips Jinja's parser and
# code generator (0.08 s for the report's three templates) and, running the Python that made the bytecode, Python's
# compiler (0.015 s). Absent or stale, a template is compiled at first use, as Jinja does.
COMPILED = TEMPLATES / "compiled"
BYTECODE_TAG = f"{sys.implementation.cache_tag}.bytecode"  # a template's bytecode: <name>.cpython-311.bytecode
_KEY_LINE = "# template key: "
# The environment's settings Jinja's code generator reads.
_CODEGEN_SETTINGS = [
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
    "optimized",
    "is_async",
    "finalize",
]


def _template_key(environment: Environment, name: str, source: str) -> str:
    """What the generated code depends on: the template's source and name, Jinja's version, the environment's
    settings and autoescaping, and each filter's and test's calling convention."""
    autoescape = environment.autoescape
    parts = [
        jinja2.__version__,
        name,
        source,
        *(repr(getattr(environment, setting)) for setting in _CODEGEN_SETTINGS),
        repr(autoescape(name) if callable(autoescape) else autoescape),
        repr(sorted(environment.extensions)),
        *(
            repr(sorted((key, str(getattr(function, "jinja_pass_arg", ""))) for key, function in functions.items()))
            for functions in (environment.filters, environment.tests)
        ),
    ]
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


class _PrecompiledLoader(FileSystemLoader):
    """Templates from `searchpath`, each from its code compiled ahead of time in `compiled` while that was made for
    the same key (`_template_key`): its bytecode for this Python, else its Python source; else compiled here."""

    def __init__(self, searchpath: Path, compiled: Path):
        super().__init__(str(searchpath))
        self.compiled = compiled

    def load(self, environment: Environment, name: str, globals: MutableMapping[str, Any] | None = None) -> Template:
        source, filename, uptodate = self.get_source(environment, name)
        key = _KEY_LINE + _template_key(environment, name, source)
        code = self._bytecode(name, key) or self._generated(name, key, filename or name)
        if code is None:
            code = environment.compile(source, name, filename)
        template = environment.template_class.from_code(environment, code, globals or {}, uptodate)
        template.filename = filename  # (bytecode names the file it was compiled from, perhaps on another machine)
        return template

    def _bytecode(self, name: str, key: str) -> CodeType | None:
        try:
            data = (self.compiled / f"{name}.{BYTECODE_TAG}").read_bytes()
        except OSError:
            return None
        header = _bytecode_header(key)
        return cast(CodeType, marshal.loads(data[len(header) :])) if data.startswith(header) else None

    def _generated(self, name: str, key: str, filename: str) -> CodeType | None:
        try:
            header, _, generated = (self.compiled / f"{name}.py").read_text(encoding="utf-8").partition("\n")
        except OSError:
            return None
        return compile(generated, filename, "exec") if header == key else None


def _bytecode_header(key: str) -> bytes:
    """The key a template's bytecode was made for, and the Python it was made by (marshal's format is its own)."""
    return f"{key}\n".encode() + importlib.util.MAGIC_NUMBER


def make_environment(templates: Path = TEMPLATES, compiled: Path = COMPILED) -> Environment:
    """A Jinja environment: HTML autoescaped, undefined names are errors rather than blanks."""
    env = Environment(
        loader=_PrecompiledLoader(templates, compiled),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["money"] = money
    env.filters["cost"] = cost_label
    env.filters["signed_money"] = lambda amount: ("+" if amount > 0 else "-" if amount < 0 else "") + money(abs(amount))
    env.filters["count"] = lambda n: f"{int(n):,}"
    # the JSON's exact decimal strings, shown to the cent: -$4.00, not $-4.00
    env.filters["usd"] = lambda text: ("-" if Decimal(text) < 0 else "") + money(abs(Decimal(text)))
    env.filters["identity"] = friendly_identity
    return env


@lru_cache(maxsize=1)
def template_environment() -> Environment:
    """The one Jinja environment of the product (the templates in templates/)."""
    return make_environment()


def compile_templates(templates: Path = TEMPLATES, compiled: Path = COMPILED, bytecode: bool = True) -> list[Path]:
    """Each template's generated Python into `compiled`, headed by the key it was made for, and (`bytecode`) that
    Python compiled by this Python, marshalled: run by the same Python, a cold start skips its compiler too."""
    env = make_environment(templates, compiled)
    assert env.loader is not None
    compiled.mkdir(parents=True, exist_ok=True)
    written = []
    for name in env.list_templates(extensions=["j2"]):
        source, filename, _ = env.loader.get_source(env, name)
        generated = env.compile(source, name, filename, raw=True)
        key = _KEY_LINE + _template_key(env, name, source)
        path = compiled / f"{name}.py"
        path.write_text(f"{key}\n{generated}", encoding="utf-8")
        written.append(path)
        if bytecode:
            code_path = compiled / f"{name}.{BYTECODE_TAG}"
            code_path.write_bytes(_bytecode_header(key) + marshal.dumps(compile(generated, filename or name, "exec")))
            written.append(code_path)
    return written


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_email(context: dict[str, Any]) -> RenderedEmail:
    env = template_environment()
    subject = env.get_template("subject.txt.j2").render(**context).strip()
    return RenderedEmail(
        subject=subject,
        text=env.get_template("report_email.txt.j2").render(**context),
        html=env.get_template("report_email.html.j2").render(**context),
    )


def build_message(
    rendered: RenderedEmail,
    *,
    sender: str,
    recipients: tuple[str, ...],
    attachment: bytes | None,
    attachment_name: str,
) -> EmailMessage:
    """multipart/mixed: (text | html alternatives) + the CSV, byte-identical to the S3 object (or, named `.zip`,
    the CSV zipped)."""
    message = EmailMessage(policy=BUILD_POLICY)
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].rstrip(">"))
    # Quoted-printable always: left to itself, Python sends short-lined non-ASCII text as 8bit, and SES's RawMessage
    # reference asks for content outside 7-bit ASCII to be encoded.
    message.set_content(rendered.text, cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    if attachment is not None and attachment_name.endswith(".zip"):
        message.add_attachment(attachment, maintype="application", subtype="zip", filename=attachment_name)
    elif attachment is not None:
        message.add_attachment(attachment, maintype="text", subtype="csv", filename=attachment_name)
    return message


def message_bytes(message: EmailMessage) -> bytes:
    """The message as sent to SES (and written to out/)."""
    return message.as_bytes(policy=WIRE_POLICY)
