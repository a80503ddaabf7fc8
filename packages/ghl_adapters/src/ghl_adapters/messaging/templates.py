"""Template rendering with Jinja2's immutable sandbox, and HTML sanitizing with nh3 (ammonia).

Templates are written by tenants, so they are untrusted code. The sandbox alone renders an escape attempt
such as `{{ ''.__class__ }}` as an empty string; here every such attempt is an error instead, and the
engine is cut down further:

- no loader (no include/import/extends), no macros, blocks or call blocks, no `{% autoescape %}` switch;
- a short filter list, one global (`range`, capped), and method calls only on an allow-list of string and
  mapping methods;
- bounded work: template size, output size, `range()` length, total loop iterations, and the operators
  that can blow up memory or CPU (`*`, `**`, `%`) are all checked;
- undefined values render as "" (ChainableUndefined), as GoHighLevel merge fields do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Final, NoReturn, cast

import nh3
from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, nodes, pass_eval_context
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.exceptions import SecurityError
from jinja2.filters import (
    do_capitalize,
    do_default,
    do_join,
    do_lower,
    do_replace,
    do_title,
    do_trim,
    do_truncate,
    do_upper,
)
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, LoopContext, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ghl_core.conversations.templates import TemplateError

MAX_TEMPLATE_CHARS: Final = 100_000
MAX_OUTPUT_CHARS: Final = 1_000_000
MAX_RANGE: Final = 1_000
MAX_LOOP_ITERATIONS: Final = 10_000
MAX_INT_BITS: Final = 4_096

_BUDGET_NAME: Final = "_ghl_loop_budget"  # injected per render; user templates cannot name "_" variables
_SAFE_STR_METHODS: Final = frozenset(
    {
        "upper",
        "lower",
        "title",
        "capitalize",
        "strip",
        "lstrip",
        "rstrip",
        "startswith",
        "endswith",
        "split",
        "isdigit",
        "isalpha",
        "isspace",
    }
)
_SAFE_MAPPING_METHODS: Final = frozenset({"items", "keys", "values", "get"})
_SAFE_LOOP_METHODS: Final = frozenset({"cycle", "changed"})
_FORBIDDEN_STATEMENTS: Final[tuple[tuple[type[nodes.Node], str], ...]] = (
    (nodes.Extends, "extends"),
    (nodes.Include, "include"),
    (nodes.Import, "import"),
    (nodes.FromImport, "import"),
    (nodes.Macro, "macro"),
    (nodes.CallBlock, "call"),
    (nodes.Block, "block"),
    (nodes.EvalContextModifier, "autoescape"),
)
# strftime directives the `date` filter accepts: no flags or widths (glibc pads "%999999999Y").
_DATE_FORMAT = re.compile(r"(?:[^%]|%[aAbBdHIjmMpSyYZzeuwGVU%])*")


class _LoopBudget:
    """Counts loop iterations across one render, so nested loops cannot spin the CPU unboundedly."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def iterate(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.left -= 1
            if self.left < 0:
                raise SecurityError("the template runs too many loop iterations")
            yield item


def _finalize(value: Any) -> Any:
    """How a `{{ }}` value prints: None as "", lists (tags) as "a, b"."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(_finalize(v)) for v in value)
    return value


def _date(value: Any, fmt: str = "%Y-%m-%d") -> Any:
    """Format a date, datetime or ISO-8601 string; "" and undefined stay ""; other text is left as is."""
    if not _DATE_FORMAT.fullmatch(fmt) or len(fmt) > 200:
        raise SecurityError(f"date format {fmt!r} uses an unsupported directive")
    if isinstance(value, Undefined) or value in ("", None):
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, date):
        return value.strftime(fmt)
    return value


def _size_limited_filters(max_output: int) -> dict[str, Callable[..., Any]]:
    @pass_eval_context
    def join(eval_ctx: EvalContext, value: Any, d: str = "", attribute: Any = None) -> str:
        items = list(value)
        if sum(len(str(i)) for i in items) + len(str(d)) * max(len(items) - 1, 0) > max_output:
            raise SecurityError("join would exceed the output size limit")
        return str(do_join(eval_ctx, items, d, attribute))

    @pass_eval_context
    def replace(eval_ctx: EvalContext, s: Any, old: str, new: str, count: int | None = None) -> str:
        text, old, new = str(s), str(old), str(new)
        hits = text.count(old) if old else len(text) + 1
        if count is not None and count >= 0:
            hits = min(hits, count)
        if len(text) + hits * (len(new) - len(old)) > max_output:
            raise SecurityError("replace would exceed the output size limit")
        return do_replace(eval_ctx, s, old, new, count)

    return {"join": join, "replace": replace}


class _SandboxEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, made strict: unsafe access raises, calls and big operators are checked."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, *, autoescape: bool, max_output: int, max_range: int) -> None:
        super().__init__(
            autoescape=autoescape,
            undefined=ChainableUndefined,
            finalize=_finalize,
            auto_reload=False,
            cache_size=0,
        )
        self.max_output = max_output
        self.max_range = max_range
        self.globals.clear()
        self.globals["range"] = self.capped_range
        self.filters = {
            "default": do_default,
            "d": do_default,
            "upper": do_upper,
            "lower": do_lower,
            "title": do_title,
            "capitalize": do_capitalize,
            "trim": do_trim,
            "truncate": do_truncate,
            "date": _date,
            **_size_limited_filters(max_output),
        }

    def capped_range(self, *args: int) -> range:
        rng = range(*args)
        if len(rng) > self.max_range:
            raise SecurityError(f"range() is limited to {self.max_range} items")
        return rng

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} is not allowed")

    def wrap_str_format(self, value: Any) -> None:
        # str.format reaches attributes through its own mini-language and pads to any width: filters only.
        if super().wrap_str_format(value) is not None:
            raise SecurityError("str.format is not allowed in templates; use filters")
        return

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Merge data are mappings: a custom field called "items" or "values" is the value, not the method.
        if isinstance(obj, Mapping) and not attribute.startswith("_") and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def _callable_allowed(self, obj: Any) -> bool:
        if obj == self.capped_range or isinstance(getattr(obj, "__self__", None), _LoopBudget):
            return True
        owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
        if isinstance(owner, str):
            return name in _SAFE_STR_METHODS
        if isinstance(owner, Mapping):
            return name in _SAFE_MAPPING_METHODS
        if isinstance(owner, LoopContext):
            return name in _SAFE_LOOP_METHODS
        return False

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if not __self._callable_allowed(__obj):
            name = getattr(__obj, "__name__", type(__obj).__name__)
            raise SecurityError(f"calling {name!r} is not allowed")
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and isinstance(left, str):
            raise SecurityError("string formatting with % is not allowed; use filters")
        if (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and max(abs(left).bit_length(), 1) * right > MAX_INT_BITS
        ):
            raise SecurityError("the power is too large")
        if operator == "*":
            _check_product(left, right, self.max_output)
        return super().call_binop(context, operator, left, right)


def _check_product(left: Any, right: Any, max_output: int) -> None:
    sequences = (str, list, tuple)
    if isinstance(left, int) and isinstance(right, sequences):
        left, right = right, left
    if isinstance(left, sequences) and isinstance(right, int):
        if len(left) * right > max_output:
            raise SecurityError("the repetition would exceed the output size limit")
    elif (
        isinstance(left, int)
        and isinstance(right, int)
        and abs(left).bit_length() + abs(right).bit_length() > 2 * MAX_INT_BITS
    ):
        raise SecurityError("the product is too large")


def _forbidden(node: nodes.Node) -> str | None:
    """Why `node` is not allowed in a tenant template, or None."""
    for kind, label in _FORBIDDEN_STATEMENTS:
        if isinstance(node, kind):
            return f"'{label}' is not allowed in templates"
    if isinstance(node, nodes.For) and node.recursive:
        return "recursive loops are not allowed in templates"
    if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
        return f"attribute {node.attr!r} is not allowed"
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
        and node.arg.value.startswith("_")
    ):
        return f"item {node.arg.value!r} is not allowed"
    if isinstance(node, nodes.Name) and node.name.startswith("_"):
        return f"name {node.name!r} is not allowed"
    return None


def _template_line(exc: BaseException) -> int | None:
    """The template line of a runtime error (Jinja rewrites tracebacks to point into the template)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class JinjaTemplateRenderer:
    """The TemplateRenderer port on Jinja2's immutable sandbox, with the limits in the module docstring."""

    def __init__(
        self,
        *,
        max_template_chars: int = MAX_TEMPLATE_CHARS,
        max_output_chars: int = MAX_OUTPUT_CHARS,
        max_range: int = MAX_RANGE,
        max_loop_iterations: int = MAX_LOOP_ITERATIONS,
        cache_size: int = 256,
    ) -> None:
        self.max_template_chars = max_template_chars
        self.max_output_chars = max_output_chars
        self.max_loop_iterations = max_loop_iterations
        self._text_env = _SandboxEnvironment(
            autoescape=False, max_output=max_output_chars, max_range=max_range
        )
        self._html_env = _SandboxEnvironment(
            autoescape=True, max_output=max_output_chars, max_range=max_range
        )
        self._compile: Callable[[str, bool, str], Template] = lru_cache(maxsize=cache_size)(
            self._compile_uncached
        )

    def check(self, source: str, pointer: str) -> None:
        self._compile(source, False, pointer)

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
                reason = _forbidden(node)
                if reason is not None:
                    raise TemplateError(pointer, reason, node.lineno)
            for loop in list(tree.find_all(nodes.For)):
                # Every loop draws from the render's iteration budget.
                loop.iter = nodes.Call(
                    nodes.Name(_BUDGET_NAME, "load", lineno=loop.lineno),
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
        budget = _LoopBudget(self.max_loop_iterations)
        variables = {**context, _BUDGET_NAME: budget.iterate}
        chunks: list[str] = []
        size = 0
        stream = cast(Generator[str, None, None], template.generate(variables))
        try:
            for chunk in stream:
                size += len(chunk)
                if size > self.max_output_chars:
                    raise TemplateError(
                        pointer, f"the output is longer than {self.max_output_chars} characters"
                    )
                chunks.append(chunk)
        except (
            JinjaTemplateError,
            TypeError,
            ValueError,
            ArithmeticError,
            LookupError,
            AttributeError,
            RecursionError,
            AssertionError,  # Jinja's own filters assert on bad arguments (truncate's length)
        ) as exc:
            raise TemplateError(pointer, str(exc) or type(exc).__name__, _template_line(exc)) from None
        finally:
            stream.close()
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
EMAIL_URL_SCHEMES: Final = frozenset({"http", "https", "mailto"})
# nh3 filters CSS property names, not values: a style that loads or runs anything is dropped whole.
_RISKY_CSS = re.compile(r"url\s*\(|expression\s*\(|script\s*:|behavior|binding|@import|\\", re.IGNORECASE)
_CSS_COMMENT = re.compile(r"/\*.*?(\*/|$)", re.DOTALL)


def _drop_risky_style(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "style" and _RISKY_CSS.search(_CSS_COMMENT.sub("", value)):
        return None
    return value


class Nh3HtmlSanitizer:
    """The HtmlSanitizer port on nh3: an email-safe allow-list of tags, attributes, CSS and URL schemes.

    Scripts, styles, iframes, forms, event handlers and javascript:/data: URLs are removed; the content
    of <script> and <style> goes too, not just the tags. Inline styles keep only listed properties, and a
    style attribute that could load a URL or run script (url(), expression(), escapes) is dropped."""

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
