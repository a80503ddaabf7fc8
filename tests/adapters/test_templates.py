"""Templates: merge fields, the Jinja sandbox (escapes must fail, never run), limits, and HTML cleaning."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from ghl_adapters.messaging.templates import JinjaTemplateRenderer, Nh3HtmlSanitizer
from ghl_core.contacts.models import Contact
from ghl_core.conversations.templates import (
    HtmlSanitizer,
    SanitizingRenderer,
    TemplateError,
    TemplateRenderer,
    merge_context,
    off_loop,
)
from ghl_core.shared.errors import ValidationFailed
from ghl_core.tenancy.models import Location, PlanTier

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_location() -> Location:
    return Location(
        id=uuid.UUID("11111111-1111-4111-8111-111111111111"),
        agency_id=uuid.uuid4(),
        name="Sunrise Dental",
        timezone="America/New_York",
        country="US",
        tier=PlanTier.PRO,
        created_at=NOW,
        updated_at=NOW,
    )


def make_contact(**fields: Any) -> Contact:
    base: dict[str, Any] = {
        "id": uuid.UUID("22222222-2222-4222-8222-222222222222"),
        "location_id": uuid.UUID("11111111-1111-4111-8111-111111111111"),
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Contact(**(base | fields))


@pytest.fixture
def renderer() -> JinjaTemplateRenderer:
    return JinjaTemplateRenderer()


@pytest.fixture
def ada() -> dict[str, Any]:
    contact = make_contact(
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.com",
        phone="+14155550100",
        company_name="Analytical Engines",
        city="London",
        date_of_birth=date(1815, 12, 10),
        tags=["vip", "newsletter"],
        custom_fields={"favourite_color": "green", "items": "three widgets", "email": "shadowed"},
    )
    return merge_context(contact, make_location(), user={"name": "Grace Hopper", "email": "grace@ex.com"})


# --- merge_context --------------------------------------------------------------------------------------


def test_merge_context_fills_every_ghl_field() -> None:
    contact = make_contact(
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.com",
        phone="+14155550100",
        company_name="Analytical Engines",
        address1="12 St James's Square",
        city="London",
        state="LND",
        postal_code="SW1Y 4JH",
        country="GB",
        timezone="Europe/London",
        date_of_birth=date(1815, 12, 10),
        source="referral",
        tags=["vip", "newsletter"],
        custom_fields={"favourite_color": "green", "email": "custom wins not"},
    )
    context = merge_context(contact, make_location())

    assert context["contact"] == {
        "id": "22222222-2222-4222-8222-222222222222",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "name": "Ada Lovelace",
        "full_name": "Ada Lovelace",
        "email": "ada@example.com",  # a standard field shadows a custom field with the same key
        "phone": "+14155550100",
        "company_name": "Analytical Engines",
        "address1": "12 St James's Square",
        "city": "London",
        "state": "LND",
        "postal_code": "SW1Y 4JH",
        "country": "GB",
        "website": "",
        "timezone": "Europe/London",
        "date_of_birth": date(1815, 12, 10),
        "gender": "",
        "source": "referral",
        "tags": ["newsletter", "vip"],
        "favourite_color": "green",
    }
    assert context["location"] == {
        "id": "11111111-1111-4111-8111-111111111111",
        "name": "Sunrise Dental",
        "timezone": "America/New_York",
        "country": "US",
        # not on Location (yet): present and empty, so templates render ""
        "email": "",
        "phone": "",
        "website": "",
        "address1": "",
        "city": "",
        "state": "",
        "postal_code": "",
    }
    assert context["user"] == {"name": "", "first_name": "", "last_name": "", "email": "", "phone": ""}


def test_merge_context_missing_values_are_empty_strings() -> None:
    context = merge_context(make_contact(custom_fields={"plan": None}), make_location())
    assert context["contact"]["first_name"] == ""
    assert context["contact"]["name"] == ""
    assert context["contact"]["date_of_birth"] == ""
    assert context["contact"]["plan"] == ""
    assert context["contact"]["tags"] == []


def test_merge_context_user_names_and_extra() -> None:
    context = merge_context(
        make_contact(),
        make_location(),
        user={"name": "Grace Brewster Hopper", "email": "grace@example.com", "phone": None},
        extra={"appointment": {"start": "9:00"}, "contact": {"first_name": "Override"}},
    )
    assert context["user"] == {
        "name": "Grace Brewster Hopper",
        "first_name": "Grace",
        "last_name": "Brewster Hopper",
        "email": "grace@example.com",
        "phone": "",
    }
    assert context["appointment"] == {"start": "9:00"}
    assert context["contact"] == {"first_name": "Override"}  # extra wins, on purpose
    only_parts = merge_context(make_contact(), make_location(), user={"first_name": "Al", "last_name": "Bo"})
    assert only_parts["user"]["name"] == "Al Bo"


# --- rendering ------------------------------------------------------------------------------------------


def test_the_adapters_satisfy_the_ports(renderer: JinjaTemplateRenderer) -> None:
    port: TemplateRenderer = renderer
    sanitizer: HtmlSanitizer = Nh3HtmlSanitizer()
    assert port.render("ok", {}) == "ok"
    assert sanitizer.clean("<b>ok</b>") == "<b>ok</b>"


def test_merge_fields_render(renderer: JinjaTemplateRenderer, ada: dict[str, Any]) -> None:
    source = (
        "Hi {{contact.first_name}} from {{ location.name }}! Your rep is {{user.first_name}}. "
        "Colour: {{contact.favourite_color}}; items: {{ contact.items }}; tags: {{ contact.tags }}; "
        "email: {{ contact.email }}"
    )
    assert renderer.render(source, ada) == (
        "Hi Ada from Sunrise Dental! Your rep is Grace. Colour: green; items: three widgets; "
        "tags: newsletter, vip; email: ada@example.com"
    )


def test_missing_values_render_empty_and_default_works(renderer: JinjaTemplateRenderer) -> None:
    context = merge_context(make_contact(), make_location())
    assert renderer.render("Hi {{contact.first_name | default('there', true)}}!", context) == "Hi there!"
    assert renderer.render("[{{ contact.nope }}|{{ contact.nope.deeper[0].x }}|{{ nothing }}]", context) == (
        "[||]"
    )
    assert renderer.render("{{ user.name | default('our team', true) }}", context) == "our team"


def test_allowed_filters(renderer: JinjaTemplateRenderer, ada: dict[str, Any]) -> None:
    cases = {
        "{{ contact.first_name | upper }}": "ADA",
        "{{ contact.first_name | lower }}": "ada",
        "{{ 'ada lovelace' | title }}": "Ada Lovelace",
        "{{ 'hELLO' | capitalize }}": "Hello",
        "{{ '  x  ' | trim }}": "x",
        "{{ 'The quick brown fox' | truncate(9, true, '…', 0) }}": "The quic…",
        "{{ contact.company_name | replace('Engines', 'Co') }}": "Analytical Co",
        "{{ contact.tags | join(' & ') }}": "newsletter & vip",
        "{{ contact.date_of_birth | date('%d %B %Y') }}": "10 December 1815",
        "{{ '2024-05-01T09:30:00' | date('%H:%M') }}": "09:30",
        "{{ contact.missing | date }}": "",
        "{{ 'soon' | date('%Y') }}": "soon",
        "{{ contact.first_name.upper() }} {{ contact.get('city') }}": "ADA London",
    }
    for source, expected in cases.items():
        assert renderer.render(source, ada) == expected, source


def test_control_flow(renderer: JinjaTemplateRenderer, ada: dict[str, Any]) -> None:
    source = (
        "{% for tag in contact.tags %}{{ loop.index }}.{{ tag }}{{ loop.cycle('+', '') }}{% endfor %}"
        "{% if contact.city == 'London' %} UK{% else %} elsewhere{% endif %}"
        "{% set greeting = 'Hello' %} {{ greeting }}"
        "{% for i in range(3) if i > 0 %}{{ i }}{% else %}none{% endfor %}"
        "{% for x in [] %}{% else %} empty{% endfor %}"
        "{% for k, v in {'a': 1}.items() %} {{ k }}={{ v }}{% endfor %}"
    )
    assert renderer.render(source, ada) == "1.newsletter+2.vip UK Hello12 empty a=1"


def test_text_is_not_escaped_but_html_is(renderer: JinjaTemplateRenderer) -> None:
    context = merge_context(make_contact(first_name="<b>Tom & Jerry</b>"), make_location())
    assert renderer.render("Hi {{ contact.first_name }}", context) == "Hi <b>Tom & Jerry</b>"
    assert renderer.render_html("<p>Hi {{ contact.first_name }}</p>", context) == (
        "<p>Hi &lt;b&gt;Tom &amp; Jerry&lt;/b&gt;</p>"
    )


def test_check_accepts_a_good_template(renderer: JinjaTemplateRenderer) -> None:
    renderer.check("Hi {{ contact.first_name | default('there', true) }}", "/body")


@pytest.mark.parametrize(
    ("source", "line", "reason"),
    [
        ("Hello\n{{ contact.first_name ", 2, "unexpected end of template"),
        ("Hi\n\n{% if x %}no end", 3, "endif"),
        ("{{ x | safe }}", 1, "No filter named 'safe'"),
        ("a\n{{ x | attr('__class__') }}", 2, "No filter named 'attr'"),
        ("{{ x | format(1) }}", 1, "No filter named 'format'"),
        ("{% include 'other.txt' %}", 1, "'include' is not allowed"),
        ("{% extends 'base.html' %}", 1, "'extends' is not allowed"),
        ("{% import 'm.html' as m %}", 1, "'import' is not allowed"),
        ("{% from 'm.html' import x %}", 1, "'import' is not allowed"),
        ("\n{% macro f() %}{% endmacro %}", 2, "'macro' is not allowed"),
        ("{% block b %}{% endblock %}", 1, "'block' is not allowed"),
        ("{% autoescape false %}{{ x }}{% endautoescape %}", 1, "'autoescape' is not allowed"),
        ("{% for x in y recursive %}{{ loop(x) }}{% endfor %}", 1, "recursive loops"),
        ("x\ny\n{{ ''.__class__ }}", 3, "'__class__' is not allowed"),
        ("{{ _private }}", 1, "'_private' is not allowed"),
        ("{{ x['__globals__'] }}", 1, "'__globals__' is not allowed"),
    ],
)
def test_check_names_the_pointer_and_line(
    renderer: JinjaTemplateRenderer, source: str, line: int, reason: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        renderer.check(source, "/body")
    error = caught.value
    assert isinstance(error, ValidationFailed)  # the shells answer 422
    assert error.line == line
    assert error.extensions() == {"line": line}
    assert error.errors[0].pointer == "/body"
    assert error.errors[0].detail.startswith(f"line {line}: ")
    assert reason in error.errors[0].detail


def test_template_size_is_capped() -> None:
    small = JinjaTemplateRenderer(max_template_chars=50)
    small.check("x" * 50, "/body")
    with pytest.raises(TemplateError, match="longer than 50 characters"):
        small.check("x" * 51, "/body")
    with pytest.raises(TemplateError):
        small.render("x" * 51, {})


class Canary:
    """A context object whose methods must never run from a template."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def boom(self) -> str:
        self.calls.append("boom")
        return "ran"

    def __str__(self) -> str:
        return "canary"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ range.__self__ }}",
        "{{ self.__init__.__globals__ }}",
        "{{ x['__class__'] }}",
        "{% set k = '__cla' ~ 'ss__' %}{{ ''[k] }}",
        "{% set k = '__glo' ~ 'bals__' %}{{ canary.boom[k] }}",
        "{{ '{0.__class__}'.format('') }}",
        "{{ 'a'.format }}",
        "{{ '%s' % canary }}",
        "{{ canary.boom() }}",
        "{{ contact.tags.append('pwned') }}",
        "{{ contact.update({'first_name': 'x'}) }}",
        "{{ dict(a=1) }}",
        "{{ lipsum() }}",
        "{{ namespace() }}",
        "{{ joiner() }}",
    ],
)
def test_sandbox_escapes_fail_and_never_execute(renderer: JinjaTemplateRenderer, source: str) -> None:
    canary = Canary()
    context = {"canary": canary, "contact": {"first_name": "Ada", "tags": ["vip"]}, "x": "s"}
    with pytest.raises(TemplateError) as caught:
        renderer.render(source, context, pointer="/body")
    assert caught.value.errors[0].pointer == "/body"
    assert canary.calls == []
    assert context["contact"] == {"first_name": "Ada", "tags": ["vip"]}


def test_runtime_errors_name_the_line(renderer: JinjaTemplateRenderer) -> None:
    with pytest.raises(TemplateError) as caught:
        renderer.render("one\ntwo\n{{ 1 / 0 }}", {}, pointer="/message")
    assert caught.value.line == 3
    assert caught.value.errors[0].pointer == "/message"
    with pytest.raises(TemplateError, match="expected length"):
        renderer.render("{{ 'abc' | truncate(1) }}", {})


def test_range_is_capped(renderer: JinjaTemplateRenderer) -> None:
    assert len(renderer.render("{% for i in range(1000) %}x{% endfor %}", {})) == 1000
    with pytest.raises(TemplateError, match="range"):
        renderer.render("{% for i in range(1001) %}x{% endfor %}", {})


def test_total_loop_iterations_are_capped() -> None:
    renderer = JinjaTemplateRenderer(max_loop_iterations=100)
    assert renderer.render(
        "{% for i in range(10) %}{% for j in range(9) %}.{% endfor %}{% endfor %}", {}
    ) == ("." * 90)
    with pytest.raises(TemplateError, match="too many loop iterations"):
        renderer.render("{% for i in range(10) %}{% for j in range(10) %}{% endfor %}{% endfor %}", {})
    with pytest.raises(TemplateError, match="too many loop iterations"):
        renderer.render("{% for c in text %}{% endfor %}", {"text": "x" * 101})
    # the budget is per render, not per renderer
    assert renderer.render("{% for i in range(50) %}{% endfor %}ok", {}) == "ok"
    assert renderer.render("{% for i in range(50) %}{% endfor %}ok", {}) == "ok"


def test_output_size_is_capped() -> None:
    renderer = JinjaTemplateRenderer(max_output_chars=1_000)
    assert len(renderer.render("{% for i in range(10) %}{{ 'x' * 100 }}{% endfor %}", {})) == 1_000
    with pytest.raises(TemplateError, match="output is longer than 1000"):
        renderer.render("{% for i in range(11) %}{{ 'x' * 100 }}{% endfor %}", {})
    with pytest.raises(TemplateError, match="output is longer"):
        renderer.render_html("<p>{{ body }}</p>", {"body": "y" * 1_000})


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ 'x' * 2000000 }}", "repetition"),
        ("{{ 2000000 * [1] }}", "repetition"),
        ("{{ 9 ** 999999 }}", "power"),
        ("{{ 10 ** 1000 * 10 ** 1000 * 10 ** 1000 }}", "product"),
        ("{{ '%0999999999d' % 1 }}", "string formatting"),
        ("{{ ('x' * 1000) | replace('x', 'y' * 2000) }}", "replace"),
        ("{{ range(1000) | join('z' * 2000) }}", "join"),
        ("{{ x | date('%999999999Y') }}", "date format"),
    ],
)
def test_operations_that_would_blow_up_are_refused(
    renderer: JinjaTemplateRenderer, source: str, reason: str
) -> None:
    with pytest.raises(TemplateError, match=reason):
        renderer.render(source, {"x": date(2024, 1, 1)})


def test_arithmetic_within_limits_still_works(renderer: JinjaTemplateRenderer) -> None:
    assert renderer.render("{{ 2 ** 10 }} {{ 3 * 4 }} {{ 'ab' * 2 }} {{ 7 % 3 }} {{ 10 / 4 }}", {}) == (
        "1024 12 abab 1 2.5"
    )


def test_a_custom_field_named_like_a_dict_method_is_the_value(renderer: JinjaTemplateRenderer) -> None:
    contact = make_contact(custom_fields={"items": "3 boxes", "values": "honesty", "get": "it"})
    context = merge_context(contact, make_location())
    assert renderer.render("{{ contact.items }}/{{ contact.values }}/{{ contact.get }}", context) == (
        "3 boxes/honesty/it"
    )


# --- sanitizer ------------------------------------------------------------------------------------------


@pytest.fixture
def sanitizer() -> Nh3HtmlSanitizer:
    return Nh3HtmlSanitizer()


def test_sanitizer_keeps_email_layout(sanitizer: Nh3HtmlSanitizer) -> None:
    html = (
        '<table width="600" cellpadding="0" cellspacing="0" border="0" align="center" role="presentation">'
        '<tr><td style="color: #333; font-family: Arial; text-align: center; padding: 8px" valign="top">'
        '<h1>Hi</h1><p>Visit <a href="https://example.com/x?a=1&amp;b=2">us</a> or '
        '<a href="mailto:help@example.com">mail</a>.</p>'
        '<img src="https://cdn.example.com/logo.png" alt="Logo" width="120"></td></tr></table>'
    )
    cleaned = sanitizer.clean(html)
    assert '<table width="600" cellpadding="0" cellspacing="0" border="0" align="center"' in cleaned
    assert 'style="color:#333;font-family:Arial;text-align:center;padding:8px"' in cleaned
    assert 'valign="top"' in cleaned
    assert '<a href="https://example.com/x?a=1&amp;b=2" rel="noopener noreferrer">us</a>' in cleaned
    assert 'href="mailto:help@example.com"' in cleaned
    assert '<img src="https://cdn.example.com/logo.png" alt="Logo" width="120">' in cleaned
    assert "<h1>Hi</h1>" in cleaned


@pytest.mark.parametrize(
    ("html", "forbidden"),
    [
        ("<p>a</p><script>alert(1)</script>", ["script", "alert"]),
        ("<style>p { color: red }</style><p>a</p>", ["style", "color"]),
        ('<iframe src="https://evil.example"></iframe>', ["iframe", "evil"]),
        ('<form action="https://evil.example"><input name="pw"></form>', ["form", "input", "evil"]),
        ('<p onclick="alert(1)" onmouseover="x()">a</p>', ["onclick", "onmouseover", "alert"]),
        ('<img src="x.png" onerror="alert(1)">', ["onerror", "alert"]),
        ('<a href="javascript:alert(1)">x</a>', ["javascript", "alert"]),
        ('<a href="JaVaScRiPt:alert(1)">x</a>', ["alert"]),
        ('<a href="java&#x09;script:alert(1)">x</a>', ["alert"]),
        ('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', ["data:"]),
        ('<img src="data:image/png;base64,AAAA">', ["data:"]),
        ('<svg onload="alert(1)"><circle/></svg>', ["svg", "alert"]),
        ('<object data="x.swf"></object><embed src="x.swf">', ["object", "embed", "swf"]),
        ('<meta http-equiv="refresh" content="0;url=https://evil.example">', ["meta", "evil"]),
        ("<!-- secret note --><p>a</p>", ["secret"]),
        ('<p style="position: fixed; top: 0; color: red">a</p>', ["position", "fixed"]),
        ('<p style="background-color: url(https://t.example/p.gif)">a</p>', ["url(", "t.example"]),
        ('<p style="width: expression(alert(1))">a</p>', ["expression", "alert"]),
        ('<p style="width: ex/**/pression(alert(1))">a</p>', ["pression", "alert"]),
        ('<p style="color: \\72 ed">a</p>', ["\\72"]),
    ],
)
def test_sanitizer_removes_dangerous_content(
    sanitizer: Nh3HtmlSanitizer, html: str, forbidden: list[str]
) -> None:
    cleaned = sanitizer.clean(html)
    for needle in forbidden:
        assert needle.lower() not in cleaned.lower(), (needle, cleaned)


def test_sanitizer_keeps_safe_styles_next_to_dropped_properties(sanitizer: Nh3HtmlSanitizer) -> None:
    cleaned = sanitizer.clean('<p style="position: absolute; color: red; font-size: 14px">a</p>')
    assert cleaned == '<p style="color:red;font-size:14px">a</p>'


def test_rendered_html_then_sanitized_keeps_escaped_merge_values(
    renderer: JinjaTemplateRenderer, sanitizer: Nh3HtmlSanitizer
) -> None:
    context = merge_context(make_contact(first_name='<img src=x onerror="alert(1)">'), make_location())
    html = sanitizer.clean(renderer.render_html("<p>Hi {{ contact.first_name }}</p>", context))
    assert html == '<p>Hi &lt;img src=x onerror="alert(1)"&gt;</p>'


# --- what one render may cost (issue 14) ----------------------------------------------------------------

# The template: a million characters, then doubled ten times (1.7 GB on one preview).
DOUBLING = "{% set a = 'x' * 1000000 %}" + "{% set a = a ~ a %}" * 10
# A loop of split() over a long string (held the event loop for 12 s).
SPLITTING = "{% set big = 'a ' * 50000 %}{% for i in range(1000) %}{% set parts = big.split() %}{% endfor %}"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            "{% set a = 'x' * 1000 %}" + "{% set a = a ~ a %}" * 8,
            "the joined text would be longer than 100000",
        ),
        ("{% set a = 'x' * 1000 %}" + "{% set a = a + a %}" * 8, "the sum would be longer than 100000"),
        ("{% set rows = ['x' * 1000] * 200 %}", "the repetition would be longer than 100000"),
        ("{% set a = 'x' * 50000 %}{% set l = [a, a, a] %}", "a value would be longer than 100000"),
        ("{% set a = 'x' * 50000 %}{% set l = (a, a, a) %}", "a value would be longer than 100000"),
        ("{% set a = 'x' * 50000 %}{% set d = {'a': a, 'b': a, 'c': a} %}", "a value would be longer"),
        ("{% set a = 'x' * 50000 %}{% set b %}{{ a }}{{ a }}{{ a }}{% endset %}", "the block would be"),
        (
            "{% set a = 'x' * 40000 %}{% set b %}{% for i in range(9) %}{{ a ~ i }}{% endfor %}{% endset %}",
            "block",
        ),
        (
            "{% set a = 'x' * 50000 %}{% filter upper %}{{ a }}{{ a }}{{ a }}{% endfilter %}",
            "the block would be",
        ),
        ("{% set a = 'ß' * 60000 %}{{ a.upper() }}", "the call's result would be longer than 100000"),
        ("{{ ('x' * 1000) | replace('x', 'y' * 200) }}", "replace would be longer than 100000"),
        ("{% set a = 'x' * 60000 %}{{ [a, 'y'] | join(a) }}", "join would be longer than 100000"),
        (DOUBLING, "the repetition would be longer than 100000"),
    ],
)
def test_every_value_a_template_builds_is_capped(
    renderer: JinjaTemplateRenderer, source: str, reason: str
) -> None:
    """Memory: a value is refused when it is built (before the allocation where its size is known), not
    only the output and the loop counts."""
    for render in (renderer.render, renderer.render_html):
        with pytest.raises(TemplateError, match=reason) as caught:
            render(source, {}, pointer="/body")
        assert caught.value.errors[0].pointer == "/body"


def test_values_within_the_cap_still_render(renderer: JinjaTemplateRenderer) -> None:
    source = (
        "{% set a = 'x' * 25000 %}{% set a = a ~ a %}{% set a = a + a %}{% set rows = [a[:10]] * 3 %}"
        "{% set b %}{{ a[:3] }}{% endset %}{{ a | length if false }}{{ rows | join('-') }} {{ b }}"
        "{% filter upper %} {{ 'done' }}{% endfilter %}"
    )
    assert renderer.render(source, {}) == "xxxxxxxxxx-xxxxxxxxxx-xxxxxxxxxx xxx DONE"


def test_a_loop_of_split_over_a_long_string_runs_out_of_work(renderer: JinjaTemplateRenderer) -> None:
    """Work: each operation is charged what it builds, so the loop stops after a few dozen turns (by a
    count, whatever the machine's speed), long before its 1,000 iterations."""
    with pytest.raises(TemplateError, match="the template does too much work"):
        renderer.render(SPLITTING, {})


def test_the_work_budget_is_per_render_and_counts_what_is_built() -> None:
    renderer = JinjaTemplateRenderer(max_render_work=10_000)
    assert len(renderer.render("{{ 'x' * 4000 }}", {})) == 4000
    assert len(renderer.render("{{ 'x' * 4000 }}", {})) == 4000  # a fresh budget each time
    with pytest.raises(TemplateError, match="too much work"):
        renderer.render("{% set a = 'x' * 6000 %}{% set b = a.upper() %}", {})


def test_a_render_stops_at_its_time_limit() -> None:
    """Time: the backstop for work the charges do not see. A limit far below any real render's time."""
    renderer = JinjaTemplateRenderer(max_render_seconds=1e-9)
    with pytest.raises(TemplateError, match="took longer than 1e-09 s to render"):
        renderer.render("{% for i in range(1000) %}{{ i }}{% endfor %}", {})


def test_check_refuses_at_save_what_cannot_render_within_the_limits(renderer: JinjaTemplateRenderer) -> None:
    """`check` renders the template once with sample merge data: limits and sandbox breaches are refused
    with the field and line; an error that only the sample data causes is left to each recipient."""
    for source in (DOUBLING, SPLITTING, "Hi\n{{ contact.first_name.format() }}"):
        with pytest.raises(TemplateError) as caught:
            renderer.check(source, "/body")
        assert caught.value.errors[0].pointer == "/body"
    with pytest.raises(TemplateError, match="line 2"):
        renderer.check("<p>\n{% set a = contact.first_name * 50000 %}</p>", "/html", html=True)
    renderer.check(
        "{{ contact.score * 2 }} {{ contact.first_name | upper }}", "/body"
    )  # no score in the sample
    renderer.check("<p>{{ contact.first_name }}</p>", "/html", html=True)


async def test_off_loop_runs_template_work_in_a_worker_thread_and_stops_waiting_at_its_limit() -> None:
    assert await off_loop(threading.get_ident) != threading.get_ident()
    release = threading.Event()
    try:
        with pytest.raises(TemplateError, match=r"longer than 0\.01 s") as caught:
            await off_loop(lambda: release.wait(30), pointer="/html", wait_seconds=0.01)
    finally:
        release.set()
    assert caught.value.errors[0].pointer == "/html"


def test_rendered_email_html_is_sanitised_so_merge_values_bring_no_script_link() -> None:
    safe = SanitizingRenderer(JinjaTemplateRenderer(), Nh3HtmlSanitizer())
    contact = make_contact(
        first_name="Ada",
        website="javascript:alert(document.cookie)",  # stored before websites were checked
        custom_fields={"promo": "data:text/html;base64,PHNjcmlwdD4=", "page": "JaVaScRiPt:alert(1)"},
    )
    context = merge_context(contact, make_location())
    html = safe.render_html(
        '<p><a href="{{ contact.website }}">site</a> <img src="{{ contact.promo }}" alt="p">'
        ' <a href="{{ contact.page }}">page</a> <a href="tel:+14155550100">call</a>'
        ' <a href="https://shop.example/{{ contact.first_name }}">shop</a></p>',
        context,
    )
    assert "javascript" not in html.lower()
    assert "data:" not in html
    assert '<a href="tel:+14155550100" rel="noopener noreferrer">call</a>' in html
    assert '<a href="https://shop.example/Ada" rel="noopener noreferrer">shop</a>' in html
    # Text is not HTML: the SMS and the text part carry the value as it is.
    assert safe.render("{{ contact.website }}", context) == "javascript:alert(document.cookie)"
