"""The cut-down Jinja2 sandbox that tenants' templates render in, and the budget that bounds one render.

Used by `templates.JinjaTemplateRenderer`, whose docstring says why.

Templates are written by tenants, so they are untrusted code that runs in the shared process. The sandbox
alone renders an escape attempt such as `{{ ''.__class__ }}` as an empty string; here every such attempt
is an error instead, and the engine is cut down further:

- no loader (no include/import/extends), no macros, blocks or call blocks, no `{% autoescape %}` switch;
- a short filter list, one global (`range`, capped), and method calls only on an allow-list of string and
  mapping methods;
- undefined values render as "" (ChainableUndefined), as GoHighLevel merge fields do.

What one render may cost is bounded (the constants below), because the same template renders for every
recipient of a campaign or workflow:

- memory: every value the template builds is checked for size when it is built, before the big
  allocation where that can be known (`*`, `+`, `~`, `join`, `replace`) and after it otherwise (method
  calls, filters): strings, lists and mappings (measured as the text they would print as, so a list of a
  thousand references to one long string counts a thousand times), list and mapping literals, and the
  body of a `{% set %}...{% endset %}` or `{% filter %}` block, counted as it is written. The output is
  counted as it streams. A value over MAX_VALUE_CHARS or an output over MAX_OUTPUT_CHARS stops the render.
- work: loop iterations are counted across the render (MAX_LOOP_ITERATIONS), and every operation is
  charged its own step plus the size of what it builds (MAX_RENDER_WORK): a loop of `split()` over a long
  string runs out of work after a few dozen turns, deterministically, whatever the machine's speed.
- time: a deadline (MAX_RENDER_SECONDS) checked at every charge is the backstop for work the charges do not
  see. Callers in the event loop run renders in a worker thread (ghl_core's `off_loop`), so a slow render
  holds a thread, not every tenant.

The limits are carried by one `_Budget` per render, reached through a context variable: the render may
run in any thread, and Jinja's compiled code calls back into the environment (operators, calls, filters,
`~`, buffers), where the checks are. `check` (at save) compiles the template and renders it once with
sample merge data: a template that breaks a limit or the sandbox there is refused; one that only fails on
the sample data (a custom field it does arithmetic on) is left to fail, with a reason, per recipient.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from contextvars import ContextVar
from datetime import date, datetime
from typing import Any, Final, NoReturn, cast

from jinja2 import ChainableUndefined, nodes, pass_context
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.compiler import CodeGenerator, Frame
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
from jinja2.runtime import Context, LoopContext, Undefined, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_TEMPLATE_CHARS: Final = 100_000
# Every string, list or mapping a template builds, as the text it would print as.
MAX_VALUE_CHARS: Final = 100_000
MAX_OUTPUT_CHARS: Final = 1_000_000  # the largest email body (conversations.models.MAX_EMAIL_BODY)
MAX_RANGE: Final = 1_000
MAX_LOOP_ITERATIONS: Final = 10_000
# One render's work: a step per operation plus the characters of every value it builds.
MAX_RENDER_WORK: Final = 5_000_000
MAX_RENDER_SECONDS: Final = 2.0
MAX_INT_BITS: Final = 4_096

BUDGET_NAME: Final = "_ghl_loop_budget"  # injected per render; user templates cannot name "_" variables
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
_COLLECTIONS: Final = (list, tuple, set, frozenset, range, KeysView, ValuesView)
_CONTAINERS: Final = (*_COLLECTIONS, Mapping, ItemsView)
_TEXT: Final = frozenset({str})
# Work charged for each item of a list or mapping a template builds, on top of its characters: making the
# item's object costs more than a character does (a `split()` of 100,000 characters makes 50,000).
_ITEM_WORK: Final = 16


class LimitExceeded(SecurityError):
    """A render went over one of its limits (size, work, time): refused at save, like a sandbox breach."""


def _size(value: Any, limit: int) -> int:
    """How many characters `value` prints as, roughly (a container adds one per item for its
    separators); counting stops once past `limit`, so a check costs at most about `limit` steps."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return abs(value).bit_length() // 3 + 1  # decimal digits, rounded up
    if isinstance(value, Mapping | ItemsView):
        pairs: Iterable[Any] = value.items() if isinstance(value, Mapping) else value
        total = 0
        for key, item in pairs:
            total += 2 + _size(key, limit - total) + _size(item, limit - total)
            if total > limit:
                break
        return total
    if isinstance(value, _COLLECTIONS):
        total = len(value)
        if total > limit:
            return total
        if set(map(type, value)) <= _TEXT:  # all text (split, tags): counted at C speed
            return total + sum(map(len, value))
        for item in value:
            total += _size(item, limit - total)
            if total > limit:
                break
        return total
    if isinstance(value, Undefined):
        return 0
    return 32  # a float, a date: short when printed


class Budget:
    """What one render may still do: loop iterations, work (steps and characters built) and time."""

    __slots__ = ("deadline", "loops_left", "max_value", "seconds", "work_left")

    def __init__(self, *, loops: int, work: int, seconds: float, max_value: int) -> None:
        self.loops_left = loops
        self.work_left = work
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.max_value = max_value

    def charge(self, units: int) -> None:
        self.work_left -= units
        if self.work_left < 0:
            raise LimitExceeded("the template does too much work")
        if time.monotonic() > self.deadline:
            raise LimitExceeded(f"the template took longer than {self.seconds:g} s to render")

    def iterate(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Every loop draws from the render's iterations, so nested loops cannot spin the CPU."""
        for item in iterable:
            self.loops_left -= 1
            if self.loops_left < 0:
                raise LimitExceeded("the template runs too many loop iterations")
            self.charge(1)
            yield item

    def ensure_room(self, size: int, what: str) -> None:
        """Refuse, before building it, a value of `size` characters."""
        if size > self.max_value:
            raise LimitExceeded(f"{what} would be longer than {self.max_value} characters")

    def built(self, value: Any, what: str = "a value") -> Any:
        """Check and charge a value the template has just built; answers it."""
        size = _size(value, self.max_value)
        self.ensure_room(size, what)
        items = len(value) if isinstance(value, _CONTAINERS) else 0
        self.charge(size + 1 + _ITEM_WORK * items)
        return value


CURRENT_BUDGET: ContextVar[Budget | None] = ContextVar("ghl_template_budget", default=None)


def _budget() -> Budget:
    """The running render's budget. Outside a render (Jinja folding constants while compiling) a fresh
    default one, so the size checks still hold."""
    current = CURRENT_BUDGET.get()
    if current is None:
        return Budget(
            loops=MAX_LOOP_ITERATIONS,
            work=MAX_RENDER_WORK,
            seconds=MAX_RENDER_SECONDS,
            max_value=MAX_VALUE_CHARS,
        )
    return current


class _SizedBuffer(list[Any]):
    """The buffer Jinja collects a `{% set %}` or `{% filter %}` block's output in: the block becomes one
    value, so its size is checked as it is written, not after it has all been held."""

    def __init__(self, budget: Budget) -> None:
        super().__init__()
        self._budget = budget
        self._size = 0

    def append(self, item: Any) -> None:
        size = _size(item, self._budget.max_value)
        self._size += size
        self._budget.ensure_room(self._size, "the block")
        self._budget.charge(size + 1)
        super().append(item)

    def extend(self, items: Iterable[Any]) -> None:
        for item in items:
            self.append(item)


class _CheckedCodeGenerator(CodeGenerator):
    """Jinja's code generator with the values it builds inline routed through the environment's checks:
    `~`, list, tuple and dict literals, and block buffers."""

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.new_buffer()")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.join_checked(context.eval_ctx, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def _checked_literal(self, visit: Callable[[], None]) -> None:
        self.write("environment.built(")
        visit()
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._checked_literal(lambda: super(_CheckedCodeGenerator, self).visit_List(node, frame))

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._checked_literal(lambda: super(_CheckedCodeGenerator, self).visit_Dict(node, frame))

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":  # an assignment target (`for k, v in ...`) is not a value
            super().visit_Tuple(node, frame)
            return
        self._checked_literal(lambda: super(_CheckedCodeGenerator, self).visit_Tuple(node, frame))


def _finalize(value: Any) -> Any:
    """How a `{{ }}` value prints: None as "", lists (tags) as "a, b"."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | set | frozenset):
        _budget().built(value)
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


def _join(eval_ctx: EvalContext, value: Any, d: str = "", attribute: Any = None) -> str:
    budget = _budget()
    items = list(value)
    budget.ensure_room(
        sum(_size(i, budget.max_value) for i in items) + len(str(d)) * max(len(items) - 1, 0), "join"
    )
    return str(do_join(eval_ctx, items, d, attribute))


def _replace(eval_ctx: EvalContext, s: Any, old: str, new: str, count: int | None = None) -> str:
    text, old, new = str(s), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    _budget().ensure_room(len(text) + hits * (len(new) - len(old)), "replace")
    return do_replace(eval_ctx, s, old, new, count)


def _checked_filter(apply: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose result is checked and charged. Context-passing, so Jinja never runs it while
    compiling (constant folding), only inside a render's budget."""

    @pass_context
    def checked(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.charge(1)
        return budget.built(apply(context, value, *args, **kwargs), "the filter's result")

    return checked


def _filters() -> dict[str, Callable[..., Any]]:
    plain: dict[str, Callable[..., Any]] = {
        "default": do_default,
        "d": do_default,
        "upper": do_upper,
        "lower": do_lower,
        "title": do_title,
        "capitalize": do_capitalize,
        "trim": do_trim,
        "date": _date,
    }
    filters = {
        name: _checked_filter(lambda _c, v, *a, _f=f, **k: _f(v, *a, **k)) for name, f in plain.items()
    }
    filters["truncate"] = _checked_filter(lambda c, v, *a, **k: do_truncate(c.environment, v, *a, **k))
    filters["join"] = _checked_filter(lambda c, v, *a, **k: _join(c.eval_ctx, v, *a, **k))
    filters["replace"] = _checked_filter(lambda c, v, *a, **k: _replace(c.eval_ctx, v, *a, **k))
    return filters


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, made strict: unsafe access raises, and what a template builds is checked
    against the running render's budget (operators, calls, filters, `~`, literals, block buffers)."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _CheckedCodeGenerator

    def __init__(self, *, autoescape: bool, max_range: int) -> None:
        super().__init__(
            autoescape=autoescape,
            undefined=ChainableUndefined,
            finalize=_finalize,
            auto_reload=False,
            cache_size=0,
        )
        self.max_range = max_range
        self.globals.clear()
        self.globals["range"] = self.capped_range
        self.filters = _filters()

    def capped_range(self, *args: int) -> range:
        rng = range(*args)
        if len(rng) > self.max_range:
            raise LimitExceeded(f"range() is limited to {self.max_range} items")
        return rng

    def new_buffer(self) -> _SizedBuffer:
        return _SizedBuffer(_budget())

    def built(self, value: Any) -> Any:
        return _budget().built(value)

    def join_checked(self, eval_ctx: EvalContext, parts: tuple[Any, ...]) -> str:
        """`a ~ b`: refused before joining when the parts are already too long together."""
        budget = _budget()
        size = 0
        for part in parts:
            size += _size(part, budget.max_value - size)
            budget.ensure_room(size, "the joined text")
        joined = markup_join(parts) if eval_ctx.autoescape else str_join(parts)
        return cast(str, budget.built(joined, "the joined text"))

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
        if obj == self.capped_range or isinstance(getattr(obj, "__self__", None), Budget):
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
        budget = _budget()
        budget.charge(1)
        return budget.built(super().call(__context, __obj, *args, **kwargs), "the call's result")

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = _budget()
        budget.charge(1)
        if operator == "%" and isinstance(left, str):
            raise SecurityError("string formatting with % is not allowed; use filters")
        if (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and max(abs(left).bit_length(), 1) * right > MAX_INT_BITS
        ):
            raise LimitExceeded("the power is too large")
        if operator == "*":
            _check_product(left, right, budget)
        if operator == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            size = _size(left, budget.max_value)
            budget.ensure_room(size + _size(right, budget.max_value - size), "the sum")
        return budget.built(super().call_binop(context, operator, left, right))


def _check_product(left: Any, right: Any, budget: Budget) -> None:
    sequences = (str, list, tuple)
    if isinstance(left, int) and isinstance(right, sequences):
        left, right = right, left
    if isinstance(left, sequences) and isinstance(right, int):
        if right > 0:
            budget.ensure_room(_size(left, budget.max_value) * right, "the repetition")
    elif (
        isinstance(left, int)
        and isinstance(right, int)
        and abs(left).bit_length() + abs(right).bit_length() > 2 * MAX_INT_BITS
    ):
        raise LimitExceeded("the product is too large")


def forbidden(node: nodes.Node) -> str | None:
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


def template_line(exc: BaseException) -> int | None:
    """The template line of a runtime error (Jinja rewrites tracebacks to point into the template)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


# What a render may raise besides Jinja's own errors: Python's, from operators and allowed methods.
RUNTIME_ERRORS: Final = (
    JinjaTemplateError,
    TypeError,
    ValueError,
    ArithmeticError,
    LookupError,
    AttributeError,
    RecursionError,
    AssertionError,  # Jinja's own filters assert on bad arguments (truncate's length)
)
