"""Template rendering with Jinja2's immutable sandbox (`template_sandbox.py`), and HTML sanitizing with
nh3 (ammonia).

Templates are written by tenants, so they are untrusted code that runs in the shared process. The
sandbox and the limits of one render (memory, work, time) are described in `template_sandbox.py`. `check`
(at save) compiles the template and renders it once with sample merge data: a template that breaks a
limit or the sandbox there is refused; one that only fails on the sample data (a custom field it does
arithmetic on) is left to fail, with a reason, per recipient."""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Mapping
from functools import lru_cache
from typing import Any, Final, cast

import nh3
from jinja2 import Template, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError

from ghl_core.conversations.templates import TemplateError, sample_context

from .template_sandbox import (
    BUDGET_NAME,
    CURRENT_BUDGET,
    MAX_LOOP_ITERATIONS,
    MAX_OUTPUT_CHARS,
    MAX_RANGE,
    MAX_RENDER_SECONDS,
    MAX_RENDER_WORK,
    MAX_TEMPLATE_CHARS,
    MAX_VALUE_CHARS,
    RUNTIME_ERRORS,
    Budget,
    LimitExceeded,
    SandboxEnvironment,
    forbidden,
    template_line,
)


class JinjaTemplateRenderer:
    """The TemplateRenderer port on Jinja2's immutable sandbox, with the limits in `template_sandbox`."""

    def __init__(
        self,
        *,
        max_template_chars: int = MAX_TEMPLATE_CHARS,
        max_value_chars: int = MAX_VALUE_CHARS,
        max_output_chars: int = MAX_OUTPUT_CHARS,
        max_range: int = MAX_RANGE,
        max_loop_iterations: int = MAX_LOOP_ITERATIONS,
        max_render_work: int = MAX_RENDER_WORK,
        max_render_seconds: float = MAX_RENDER_SECONDS,
        cache_size: int = 256,
    ) -> None:
        self.max_template_chars = max_template_chars
        self.max_value_chars = max_value_chars
        self.max_output_chars = max_output_chars
        self.max_loop_iterations = max_loop_iterations
        self.max_render_work = max_render_work
        self.max_render_seconds = max_render_seconds
        self._text_env = SandboxEnvironment(autoescape=False, max_range=max_range)
        self._html_env = SandboxEnvironment(autoescape=True, max_range=max_range)
        self._compile: Callable[[str, bool, str], Template] = lru_cache(maxsize=cache_size)(
            self._compile_uncached
        )

    def check(self, source: str, pointer: str, *, html: bool = False) -> None:
        template = self._compile(source, html, pointer)
        try:
            self._generate(template, sample_context())
        except SecurityError as exc:  # a limit or the sandbox: it would fail for every recipient
            raise TemplateError(pointer, str(exc), template_line(exc)) from None
        except RUNTIME_ERRORS:
            pass  # fails on the sample data only: each recipient's render reports its own error

    def render(self, source: str, context: Mapping[str, Any], *, pointer: str = "") -> str:
        return self._render(source, context, html=False, pointer=pointer)

    def render_html(self, source: str, context: Mapping[str, Any], *, pointer: str = "") -> str:
        return self._render(source, context, html=True, pointer=pointer)

    def _compile_uncached(self, source: str, html: bool, pointer: str) -> Template:
        if len(source) > self.max_template_chars:
            raise TemplateError(pointer, f"the template is longer than {self.max_template_chars} characters")
        env = self._html_env if html else self._text_env
        try:
            tree = env.parse(source)
            for node in tree.find_all(nodes.Node):
                reason = forbidden(node)
                if reason is not None:
                    raise TemplateError(pointer, reason, node.lineno)
            for loop in list(tree.find_all(nodes.For)):
                # Every loop draws from the render's iteration budget.
                loop.iter = nodes.Call(
                    nodes.Name(BUDGET_NAME, "load", lineno=loop.lineno),
                    [loop.iter],
                    [],
                    None,
                    None,
                    lineno=loop.lineno,
                )
            code = env.compile(tree)
        except TemplateSyntaxError as exc:
            raise TemplateError(pointer, exc.message or "syntax error", exc.lineno) from None
        return env.template_class.from_code(env, code, env.make_globals(None), None)

    def _render(self, source: str, context: Mapping[str, Any], *, html: bool, pointer: str) -> str:
        template = self._compile(source, html, pointer)
        try:
            return self._generate(template, context)
        except RUNTIME_ERRORS as exc:
            raise TemplateError(pointer, str(exc) or type(exc).__name__, template_line(exc)) from None

    def _generate(self, template: Template, context: Mapping[str, Any]) -> str:
        """Render within a fresh budget; raises what the template raised (SecurityError for a limit)."""
        budget = Budget(
            loops=self.max_loop_iterations,
            work=self.max_render_work,
            seconds=self.max_render_seconds,
            max_value=self.max_value_chars,
        )
        token = CURRENT_BUDGET.set(budget)
        stream = cast(Generator[str, None, None], template.generate({**context, BUDGET_NAME: budget.iterate}))
        chunks: list[str] = []
        size = 0
        try:
            for chunk in stream:
                size += len(chunk)
                if size > self.max_output_chars:
                    raise LimitExceeded(f"the output is longer than {self.max_output_chars} characters")
                chunks.append(chunk)
        finally:
            stream.close()
            CURRENT_BUDGET.reset(token)
        return "".join(chunks)


# Tags an email body can use: text structure, tables (the layout tool of email), images, links.
EMAIL_TAGS: Final = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "col", "colgroup", "dd", "del",
        "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins",
        "li", "ol", "p", "pre", "s", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody",
        "td", "tfoot", "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
_TABLE_ATTRS: Final = frozenset({"width", "height", "align", "valign", "bgcolor", "border"})
EMAIL_ATTRIBUTES: Final[dict[str, set[str]]] = {
    "*": {"style", "align", "dir", "lang", "title", "class"},
    "a": {"href", "name", "target"},
    "img": {"src", "alt", "width", "height", "border"},
    "table": {*_TABLE_ATTRS, "cellpadding", "cellspacing", "role", "summary"},
    "tr": set(_TABLE_ATTRS),
    "td": {*_TABLE_ATTRS, "colspan", "rowspan"},
    "th": {*_TABLE_ATTRS, "colspan", "rowspan", "scope"},
    "col": {"width", "span", "align", "valign"},
    "colgroup": {"width", "span"},
    "font": {"color", "face", "size"},
    "ol": {"start", "type"},
    "ul": {"type"},
}
# Inline CSS properties kept; anything else (position, behaviours, url()-bearing shorthands) is dropped.
EMAIL_STYLE_PROPERTIES: Final = frozenset(
    {
        "color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight",
        "line-height", "letter-spacing", "text-align", "text-decoration", "text-transform", "text-indent",
        "vertical-align", "white-space", "width", "min-width", "max-width", "height", "min-height",
        "max-height", "margin", "margin-top", "margin-right", "margin-bottom", "margin-left", "padding",
        "padding-top", "padding-right", "padding-bottom", "padding-left", "border", "border-top",
        "border-right", "border-bottom", "border-left", "border-color", "border-style", "border-width",
        "border-collapse", "border-spacing", "border-radius", "display", "list-style-type",
    }
)  # fmt: skip
# URL schemes kept in href and src: web links (our tracking and unsubscribe links are https, added after
# this runs), mail and phone. Relative URLs pass, so a saved template's `href="{{ contact.website }}"`
# survives until it is rendered and sanitised again.
EMAIL_URL_SCHEMES: Final = frozenset({"http", "https", "mailto", "tel"})
# nh3 filters CSS property names, not values: a style that loads or runs anything is dropped whole.
_RISKY_CSS = re.compile(r"url\s*\(|expression\s*\(|script\s*:|behavior|binding|@import|\\", re.IGNORECASE)
_CSS_COMMENT = re.compile(r"/\*.*?(\*/|$)", re.DOTALL)


def _drop_risky_style(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "style" and _RISKY_CSS.search(_CSS_COMMENT.sub("", value)):
        return None
    return value


class Nh3HtmlSanitizer:
    """The HtmlSanitizer port on nh3: an email-safe allow-list of tags, attributes, CSS and URL schemes.

    Scripts, styles, iframes, forms, event handlers and URLs of any scheme but http, https, mailto and
    tel (javascript:, data:) are removed; the content of <script> and <style> goes too, not just the
    tags. Inline styles keep only listed properties, and a style attribute that could load a URL or run
    script (url(), expression(), escapes) is dropped. It runs on a template when it is saved and on each
    rendered email body (a merge value can bring a link the saved template did not have)."""

    def __init__(self) -> None:
        self._cleaner = nh3.Cleaner(
            tags=EMAIL_TAGS,
            clean_content_tags={"script", "style"},
            attributes=EMAIL_ATTRIBUTES,
            url_schemes=EMAIL_URL_SCHEMES,
            filter_style_properties=EMAIL_STYLE_PROPERTIES,
            strip_comments=True,
            link_rel="noopener noreferrer",
            attribute_filter=_drop_risky_style,
        )

    def clean(self, html: str) -> str:
        return self._cleaner.clean(html)
