"""The email templates compiled ahead of time: what renders while they match their template, never once stale."""

from __future__ import annotations

from lambda_function.report.mail import TEMPLATES, compile_templates, make_environment


def _templates(tmp_path, text: str = "Hello {{ n | count }}\n"):
    templates = tmp_path / "templates"
    templates.mkdir(exist_ok=True)
    (templates / "hello.txt.j2").write_text(text, encoding="utf-8")
    return templates, tmp_path / "compiled"


def _render(templates, compiled) -> str:
    return make_environment(templates, compiled).get_template("hello.txt.j2").render(n=1234)


def _tamper(compiled) -> None:
    """Make the compiled code say 'Hi' where the template says 'Hello': then only the compiled code can say it."""
    path = compiled / "hello.txt.j2.py"
    text = path.read_text(encoding="utf-8")
    assert "'Hello '" in text
    path.write_text(text.replace("'Hello '", "'Hi '"), encoding="utf-8")


def test_without_compiled_code_a_template_is_compiled_at_first_use(tmp_path):
    assert _render(*_templates(tmp_path)) == "Hello 1,234\n"


def test_the_compiled_code_is_what_renders(tmp_path):
    templates, compiled = _templates(tmp_path)
    assert [path.name for path in compile_templates(templates, compiled)] == ["hello.txt.j2.py"]
    _tamper(compiled)
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
    assert sorted(path.name for path in written) == sorted(f"{p.name}.py" for p in TEMPLATES.glob("*.j2"))
    compiled, fresh = make_environment(TEMPLATES, tmp_path), make_environment(TEMPLATES, tmp_path / "none")
    for path in written:
        name = path.name.removesuffix(".py")
        # the code the product loads is the code Jinja generates for the template now
        assert compiled.get_template(name).root_render_func.__code__.co_code == (
            fresh.get_template(name).root_render_func.__code__.co_code
        )
