"""The email templates compiled ahead of time: what renders while they match their template, never once stale; their
bytecode first, for the Python it was made by."""

from __future__ import annotations

import importlib.util
import marshal

from lambda_function.report.mail import BYTECODE_TAG, TEMPLATES, compile_templates, make_environment


def _templates(tmp_path, text: str = "Hello {{ n | count }}\n"):
    templates = tmp_path / "templates"
    templates.mkdir(exist_ok=True)
    (templates / "hello.txt.j2").write_text(text, encoding="utf-8")
    return templates, tmp_path / "compiled"


def _render(templates, compiled) -> str:
    return make_environment(templates, compiled).get_template("hello.txt.j2").render(n=1234)


def _tamper(compiled, source: str = "Hi", bytecode: str | None = "Hi") -> None:
    """Make the compiled code (its Python source, its bytecode) say `source` (`bytecode`) where the template says
    'Hello': then only that code can say it. The keys the files are headed by are kept."""
    path = compiled / "hello.txt.j2.py"
    key, _, text = path.read_text(encoding="utf-8").partition("\n")
    assert "'Hello '" in text
    said = text.replace("'Hello '", f"'{source} '")
    path.write_text(f"{key}\n{said}", encoding="utf-8")
    if bytecode is not None:
        code_path = compiled / f"hello.txt.j2.{BYTECODE_TAG}"
        data = code_path.read_bytes()
        header = data[: data.index(b"\n") + 1 + len(importlib.util.MAGIC_NUMBER)]
        code = compile(text.replace("'Hello '", f"'{bytecode} '"), "hello.txt.j2", "exec")
        code_path.write_bytes(header + marshal.dumps(code))


def test_without_compiled_code_a_template_is_compiled_at_first_use(tmp_path):
    assert _render(*_templates(tmp_path)) == "Hello 1,234\n"


def test_the_compiled_code_is_what_renders(tmp_path):
    templates, compiled = _templates(tmp_path)
    written = compile_templates(templates, compiled)
    assert [path.name for path in written] == ["hello.txt.j2.py", f"hello.txt.j2.{BYTECODE_TAG}"]
    _tamper(compiled, source="Hi", bytecode="Hey")
    assert _render(templates, compiled) == "Hey 1,234\n"  # the bytecode
    env = make_environment(templates, compiled)
    assert env.get_template("hello.txt.j2").filename == str(templates / "hello.txt.j2")  # its own file, not the code's


def test_without_bytecode_for_this_python_the_compiled_source_renders(tmp_path):
    templates, compiled = _templates(tmp_path)
    compile_templates(templates, compiled)
    _tamper(compiled, source="Hi", bytecode="Hey")
    code_path = compiled / f"hello.txt.j2.{BYTECODE_TAG}"
    data = code_path.read_bytes()
    magic_at = data.index(b"\n") + 1
    other_python = bytes([data[magic_at] ^ 1]) + data[magic_at + 1 :]  # another Python's magic number
    code_path.write_bytes(data[:magic_at] + other_python)
    assert _render(templates, compiled) == "Hi 1,234\n"
    code_path.unlink()
    assert _render(templates, compiled) == "Hi 1,234\n"


def test_a_template_changed_since_it_was_compiled_is_compiled_anew(tmp_path):
    templates, compiled = _templates(tmp_path)
    compile_templates(templates, compiled)
    _tamper(compiled)
    _templates(tmp_path, "Hello again {{ n | count }}\n")
    assert _render(templates, compiled) == "Hello again 1,234\n"


def test_code_compiled_for_other_options_is_not_used(tmp_path):
    templates, compiled = _templates(tmp_path)
    compile_templates(templates, compiled)
    _tamper(compiled)
    env = make_environment(templates, compiled)
    env.trim_blocks = False  # another environment than the one the code was generated for
    assert env.get_template("hello.txt.j2").render(n=1234) == "Hello 1,234\n"


def test_every_template_of_the_product_is_compiled_and_renders_alike(tmp_path):
    written = compile_templates(TEMPLATES, tmp_path)
    expected = [f"{p.name}{ending}" for p in TEMPLATES.glob("*.j2") for ending in (".py", f".{BYTECODE_TAG}")]
    assert sorted(path.name for path in written) == sorted(expected)
    compiled, fresh = make_environment(TEMPLATES, tmp_path), make_environment(TEMPLATES, tmp_path / "none")
    for path in written[::2]:
        name = path.name.removesuffix(".py")
        # the code the product loads is the code Jinja generates for the template now
        assert compiled.get_template(name).root_render_func.__code__.co_code == (
            fresh.get_template(name).root_render_func.__code__.co_code
        )
