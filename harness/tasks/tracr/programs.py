"""The RASP programs of the tracr suite, each with a plain-Python reference.

Every program is a :class:`~harness.tasks.tracr.program.TracrProgram`: a RASP builder
(tracr is imported only inside it, to compile), its vocabulary and length, whether the
output is numerical, its source as text, a ``reference`` function written independently
of RASP (input values -> one output per position, ``None`` where the program defines
none), the valid inputs where the program needs constrained ones, the positions the task
reads and the corrupt-prompt recipe. Programs are either tracr-pypi's library
(``tracr.compiler.lib``) with chosen arguments or written here from published task
descriptions (running max, previous-token equality, counting, histograms, sorting).

Every prompt has the program's full length (``max_seq_len``): the converted models have
no padding mask, so a batch is one length. Programs whose output depends only on the
length (``make_length``) would have an empty resample circuit and are not members.

Example:
    >>> programs = all_programs()
    >>> len(SUITE) >= 20 and all(name in programs for name in SUITE)
    True
    >>> programs["hist"].reference(("a", "b", "a"))
    [2, 1, 2]
"""

from __future__ import annotations

import itertools
from functools import cache
from typing import Any

from harness.tasks.tracr.program import TracrProgram
from harness.util.did_you_mean import did_you_mean

# --- RASP builders (tracr imported lazily) -------------------------------------------


def _rasp() -> tuple[Any, Any]:
    from tracr.compiler import lib
    from tracr.rasp import rasp

    return rasp, lib


def _build_reverse() -> Any:
    from tracr.rasp import rasp

    length = rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.TRUE))
    opp_index = (length - rasp.indices) - 1
    flip = rasp.Select(rasp.indices, opp_index, rasp.Comparison.EQ)
    return rasp.Aggregate(flip, rasp.tokens)


def _build_proportion() -> Any:
    from tracr.compiler import lib
    from tracr.rasp import rasp

    return lib.make_frac_prevs(rasp.tokens == "x")


def _prefix() -> Any:
    rasp, _ = _rasp()
    return rasp.Select(rasp.indices, rasp.indices, rasp.Comparison.LEQ)


def _build_hist() -> Any:
    _, lib = _rasp()
    return lib.make_hist()


def _build_sort_unique() -> Any:
    rasp, lib = _rasp()
    return lib.make_sort_unique(rasp.tokens, rasp.tokens)


def _build_sort() -> Any:
    rasp, lib = _rasp()
    return lib.make_sort(rasp.tokens, rasp.tokens, max_seq_len=5, min_key=1)


def _build_sort_freq() -> Any:
    _, lib = _rasp()
    return lib.make_sort_freq(max_seq_len=5)


def _build_pair_balance() -> Any:
    rasp, lib = _rasp()
    return lib.make_pair_balance(rasp.tokens, "(", ")")


def _build_shuffle_dyck() -> Any:
    _, lib = _rasp()
    return lib.make_shuffle_dyck(["()"])


def _build_shuffle_dyck2() -> Any:
    _, lib = _rasp()
    return lib.make_shuffle_dyck2()


def _build_count_less_freq() -> Any:
    _, lib = _rasp()
    return lib.make_count_less_freq(2)


def _build_count_a() -> Any:
    rasp, lib = _rasp()
    return lib.make_count(rasp.tokens, "a")


def _build_shift_2() -> Any:
    rasp, lib = _rasp()
    return lib.shift_by(2, rasp.tokens)


def _build_detect_abc() -> Any:
    rasp, lib = _rasp()
    return lib.detect_pattern(rasp.tokens, "abc")


def _build_frac_prev_equal() -> Any:
    rasp, lib = _rasp()
    previous = lib.shift_by(1, rasp.tokens)
    equal = rasp.SequenceMap(lambda x, y: x == y, rasp.tokens, previous)
    return lib.make_frac_prevs(rasp.numerical(rasp.Map(lambda b: 1 if b else 0, equal)))


def _build_nary_mix() -> Any:
    rasp, lib = _rasp()
    return lib.make_nary_sequencemap(
        lambda x, i, h: (x + i + h) % 3, rasp.tokens, rasp.indices, lib.make_hist()
    )


def _build_prev_equal() -> Any:
    rasp, lib = _rasp()
    previous = lib.shift_by(1, rasp.tokens)
    return rasp.SequenceMap(lambda x, y: x == y, rasp.tokens, previous)


def _build_running_max() -> Any:
    rasp, _ = _rasp()
    seen = []
    for threshold in (2, 3, 4):
        at_least = rasp.numerical(rasp.Map(lambda x, t=threshold: 1 if x >= t else 0, rasp.tokens))
        frac = rasp.numerical(rasp.Aggregate(_prefix(), at_least, default=0))
        seen.append(rasp.Map(lambda f: 1 if f > 0 else 0, frac))
    pair = rasp.SequenceMap(lambda a, b: a + b, seen[0], seen[1])
    return rasp.SequenceMap(lambda s, c: 1 + s + c, pair, seen[2])


def _build_first_token() -> Any:
    rasp, _ = _rasp()
    first = rasp.Select(rasp.indices, rasp.indices, lambda key, query: key == 0)
    return rasp.Aggregate(first, rasp.tokens)


def _build_running_mean() -> Any:
    rasp, _ = _rasp()
    values = rasp.numerical(rasp.Map(lambda x: x / 4, rasp.tokens))
    return rasp.numerical(rasp.Aggregate(_prefix(), values, default=0))


def _build_sort_descending() -> Any:
    rasp, lib = _rasp()
    return lib.make_reverse(lib.make_sort_unique(rasp.tokens, rasp.tokens))


def _build_repeated() -> Any:
    rasp, lib = _rasp()
    return rasp.Map(lambda h: h > 1, lib.make_hist())


def _build_rank() -> Any:
    rasp, _ = _rasp()
    return rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, rasp.Comparison.LT))


def _build_sorted_duplicate() -> Any:
    rasp, lib = _rasp()
    ordered = lib.make_sort(rasp.tokens, rasp.tokens, max_seq_len=5, min_key=1)
    previous = lib.shift_by(1, ordered)
    return rasp.SequenceMap(lambda x, y: x == y, ordered, previous)


def _build_sort_freq_reverse() -> Any:
    _, lib = _rasp()
    return lib.make_reverse(lib.make_sort_freq(max_seq_len=5))


def _build_xor_prev() -> Any:
    rasp, lib = _rasp()
    previous = lib.shift_by(1, rasp.tokens)
    return rasp.SequenceMap(lambda x, y: (x + y) % 2, rasp.tokens, previous)


# --- plain-Python references (independent of RASP) ----------------------------------


def _ref_reverse(xs: tuple) -> list:
    return list(xs[::-1])


def _ref_proportion(xs: tuple) -> list:
    return [xs[: i + 1].count("x") / (i + 1) for i in range(len(xs))]


def _ref_hist(xs: tuple) -> list:
    return [xs.count(x) for x in xs]


def _ref_sorted(xs: tuple) -> list:
    return sorted(xs)


def _ref_sort_freq(xs: tuple) -> list:
    keyed = sorted((-xs.count(x), i, x) for i, x in enumerate(xs))
    return [x for _, _, x in keyed]


def _ref_pair_balance(xs: tuple) -> list:
    out, balance = [], 0
    for i, x in enumerate(xs):
        balance += (x == "(") - (x == ")")
        out.append(balance / (i + 1))
    return out


def _balanced(xs: tuple, pairs: tuple[str, ...]) -> bool:
    for opening, closing in pairs:
        depth = 0
        for x in xs:
            depth += (x == opening) - (x == closing)
            if depth < 0:
                return False
        if depth != 0:
            return False
    return True


def _ref_dyck(xs: tuple) -> list:
    return [_balanced(xs, ("()",))] * len(xs)


def _ref_dyck2(xs: tuple) -> list:
    return [_balanced(xs, ("()", "{}"))] * len(xs)


def _ref_count_less_freq(xs: tuple) -> list:
    return [sum(xs.count(x) <= 2 for x in xs)] * len(xs)


def _ref_count_a(xs: tuple) -> list:
    return [xs.count("a")] * len(xs)


def _ref_shift_2(xs: tuple) -> list:
    return [None, None, *xs[:-2]]


def _ref_detect_abc(xs: tuple) -> list:
    return [None, None] + [xs[i - 2 : i + 1] == ("a", "b", "c") for i in range(2, len(xs))]


def _ref_frac_prev_equal(xs: tuple) -> list:
    same = [0] + [int(xs[i] == xs[i - 1]) for i in range(1, len(xs))]
    return [sum(same[: i + 1]) / (i + 1) for i in range(len(xs))]


def _ref_nary_mix(xs: tuple) -> list:
    return [(x + i + xs.count(x)) % 3 for i, x in enumerate(xs)]


def _ref_prev_equal(xs: tuple) -> list:
    return [None] + [xs[i] == xs[i - 1] for i in range(1, len(xs))]


def _ref_running_max(xs: tuple) -> list:
    return [max(xs[: i + 1]) for i in range(len(xs))]


def _ref_first_token(xs: tuple) -> list:
    return [xs[0]] * len(xs)


def _ref_running_mean(xs: tuple) -> list:
    return [sum(xs[: i + 1]) / 4 / (i + 1) for i in range(len(xs))]


def _ref_sort_descending(xs: tuple) -> list:
    return sorted(xs, reverse=True)


def _ref_repeated(xs: tuple) -> list:
    return [xs.count(x) > 1 for x in xs]


def _ref_rank(xs: tuple) -> list:
    return [sum(y < x for y in xs) for x in xs]


def _ref_sorted_duplicate(xs: tuple) -> list:
    ordered = sorted(xs)
    return [None] + [ordered[i] == ordered[i - 1] for i in range(1, len(xs))]


def _ref_sort_freq_reverse(xs: tuple) -> list:
    return _ref_sort_freq(xs)[::-1]


def _ref_xor_prev(xs: tuple) -> list:
    return [None] + [(xs[i] + xs[i - 1]) % 2 for i in range(1, len(xs))]


def _distinct(vocab: tuple, length: int):
    """Inputs of ``length`` distinct values (programs that sort unique keys)."""

    def inputs() -> list[tuple]:
        return list(itertools.permutations(vocab, length))

    return inputs


_DISTINCT = "another input of distinct values (the program needs unique keys), drawn uniformly"


def _program(
    name: str,
    vocab: tuple,
    max_seq_len: int,
    build: Any,
    reference: Any,
    source: str,
    description: str,
    numerical: bool = False,
    **options: Any,
) -> TracrProgram:
    return TracrProgram(
        name=name,
        vocab=vocab,
        max_seq_len=max_seq_len,
        first_label_id=1,
        numerical=numerical,
        source=(source,),
        build=build,
        reference=reference,
        description=description,
        **options,
    )


# The programs with official circuits (the ACDC paper's, auto-circuit's): their first
# label ids reproduce the residual labels of those circuit files.
BASE_PROGRAMS: tuple[TracrProgram, ...] = (
    TracrProgram(
        name="reverse",
        vocab=(1, 2, 3),
        max_seq_len=5,
        first_label_id=1,
        numerical=False,
        source=(
            "length = SelectorWidth(Select(tokens, tokens, TRUE))",
            "opp_index = (length - indices) - 1",
            "flip = Select(indices, opp_index, EQ)",
            "reverse = Aggregate(flip, tokens)",
        ),
        build=_build_reverse,
        reference=_ref_reverse,
        description="reverse the sequence",
    ),
    TracrProgram(
        name="proportion",
        vocab=("w", "x", "y", "z"),
        max_seq_len=5,
        first_label_id=7,
        numerical=True,
        source=("frac_prevs = make_frac_prevs(tokens == 'x')",),
        build=_build_proportion,
        reference=_ref_proportion,
        description="fraction of 'x' so far (lib.make_frac_prevs)",
    ),
)

_ABC = ("a", "b", "c")
NEW_PROGRAMS: tuple[TracrProgram, ...] = (
    _program("hist", _ABC, 5, _build_hist, _ref_hist, "make_hist()",
             "how often each token occurs (lib.make_hist)"),
    _program("sort-unique", (1, 2, 3, 4, 5, 6), 4, _build_sort_unique, _ref_sorted,
             "make_sort_unique(tokens, tokens)", "sort distinct tokens (lib.make_sort_unique)",
             inputs=_distinct((1, 2, 3, 4, 5, 6), 4), corrupt=_DISTINCT),
    _program("sort", (1, 2, 3), 5, _build_sort, _ref_sorted,
             "make_sort(tokens, tokens, max_seq_len=5, min_key=1)",
             "sort with repeated tokens (lib.make_sort)"),
    _program("sort-freq", (1, 2, 3), 5, _build_sort_freq, _ref_sort_freq,
             "make_sort_freq(max_seq_len=5)",
             "tokens by descending frequency, stable (lib.make_sort_freq)"),
    _program("pair-balance", ("(", ")", "x"), 5, _build_pair_balance, _ref_pair_balance,
             "make_pair_balance(tokens, '(', ')')",
             "(opens - closes) / position so far (lib.make_pair_balance)", numerical=True),
    _program("shuffle-dyck", ("(", ")", "x"), 6, _build_shuffle_dyck, _ref_dyck,
             "make_shuffle_dyck(['()'])", "parentheses balanced (lib.make_shuffle_dyck)"),
    _program("shuffle-dyck2", ("(", ")", "{", "}"), 4, _build_shuffle_dyck2, _ref_dyck2,
             "make_shuffle_dyck2()", "two kinds of brackets balanced (lib.make_shuffle_dyck2)"),
    _program("count-less-freq", ("a", "b", "c", "d"), 5, _build_count_less_freq,
             _ref_count_less_freq, "make_count_less_freq(2)",
             "tokens whose value occurs at most twice (lib.make_count_less_freq)"),
    _program("count-a", _ABC, 5, _build_count_a, _ref_count_a, "make_count(tokens, 'a')",
             "how many 'a' (lib.make_count)"),
    _program("shift-2", (1, 2, 3, 4), 5, _build_shift_2, _ref_shift_2, "shift_by(2, tokens)",
             "the token two positions back (lib.shift_by)", output_positions=(3, 4, 5)),
    _program("detect-abc", _ABC, 6, _build_detect_abc, _ref_detect_abc,
             "detect_pattern(tokens, 'abc')", "'abc' ends here (lib.detect_pattern)",
             output_positions=(3, 4, 5, 6)),
    _program("frac-prev-equal", ("a", "b", "c"), 5, _build_frac_prev_equal,
             _ref_frac_prev_equal,
             "make_frac_prevs(Map(int, SequenceMap(==, tokens, shift_by(1, tokens))))",
             "fraction of positions so far equal to their predecessor", numerical=True),
    _program("nary-mix", (0, 1, 2), 5, _build_nary_mix, _ref_nary_mix,
             "make_nary_sequencemap(lambda x, i, h: (x + i + h) % 3, tokens, indices, hist)",
             "(token + position + count) mod 3 (lib.make_nary_sequencemap)"),
    _program("prev-equal", ("a", "b", "c", "d"), 5, _build_prev_equal, _ref_prev_equal,
             "SequenceMap(==, tokens, shift_by(1, tokens))",
             "token equals the previous token", output_positions=(2, 3, 4, 5)),
    _program("running-max", (1, 2, 3, 4), 5, _build_running_max, _ref_running_max,
             "1 + sum_t [frac_prevs(tokens >= t) > 0], t = 2, 3, 4",
             "largest token so far (three parallel heads)"),
    _program("first-token", (1, 2, 3, 4), 4, _build_first_token, _ref_first_token,
             "Aggregate(Select(indices, indices, k == 0), tokens)", "copy the first token"),
    _program("running-mean", (0, 1, 2, 3), 5, _build_running_mean, _ref_running_mean,
             "numerical Aggregate(Select(indices, indices, LEQ), tokens / 4)",
             "mean of tokens / 4 so far", numerical=True),
    _program("sort-descending", (1, 2, 3, 4, 5, 6), 4, _build_sort_descending,
             _ref_sort_descending, "make_reverse(make_sort_unique(tokens, tokens))",
             "sort distinct tokens, largest first", inputs=_distinct((1, 2, 3, 4, 5, 6), 4),
             corrupt=_DISTINCT),
    _program("repeated", ("a", "b", "c", "d"), 5, _build_repeated, _ref_repeated,
             "Map(h > 1, make_hist())", "the token occurs more than once"),
    _program("rank", (1, 2, 3, 4, 5), 5, _build_rank, _ref_rank,
             "SelectorWidth(Select(tokens, tokens, LT))", "how many tokens are smaller"),
    _program("sorted-duplicate", (1, 2, 3), 5, _build_sorted_duplicate, _ref_sorted_duplicate,
             "SequenceMap(==, s, shift_by(1, s)), s = make_sort(tokens, tokens, 5, 1)",
             "after sorting, the token equals its predecessor", output_positions=(2, 3, 4, 5)),
    _program("sort-freq-reverse", (1, 2, 3), 5, _build_sort_freq_reverse,
             _ref_sort_freq_reverse, "make_reverse(make_sort_freq(max_seq_len=5))",
             "tokens by ascending frequency (sort_freq reversed)"),
    _program("xor-prev", (0, 1), 8, _build_xor_prev, _ref_xor_prev,
             "SequenceMap((x + y) % 2, tokens, shift_by(1, tokens))",
             "parity of the token and the previous one", output_positions=tuple(range(2, 9))),
)  # fmt: skip

SUITE: tuple[str, ...] = tuple(p.name for p in (*BASE_PROGRAMS, *NEW_PROGRAMS))
SUITE_NAME = "tracr-suite"  # the named suite of every program above (harness.tasks.suites)


@cache
def builtin_programs() -> dict[str, TracrProgram]:
    """The suite's programs by name: reverse and proportion first, then the others.

    Example:
        >>> builtin_programs()["running-max"].reference((1, 3, 2))
        [1, 3, 3]
    """
    return {p.name: p for p in (*BASE_PROGRAMS, *NEW_PROGRAMS)}


_ADDED: dict[str, TracrProgram] = {}  # programs added in this process (add_program)


def all_programs() -> dict[str, TracrProgram]:
    """Every program by name: the suite's, then those added with :func:`add_program`.

    Example:
        >>> all_programs()["running-max"].reference((1, 3, 2))
        [1, 3, 3]
    """
    return {**builtin_programs(), **_ADDED}


def add_program(program: TracrProgram) -> None:
    """Make ``program`` known by its name in this process (after checking nothing of the
    suite has that name); :func:`harness.tasks.register_tracr_program` checks the rest.

    Example:
        >>> add_program(builtin_programs()["hist"])
        Traceback (most recent call last):
        ...
        ValueError: tracr program 'hist' is one of the suite's; give yours another name
    """
    if program.name in builtin_programs():
        raise ValueError(
            f"tracr program {program.name!r} is one of the suite's; give yours another name"
        )
    _ADDED[program.name] = program


def forget_program(name: str) -> None:
    """Undo :func:`add_program` (nothing if ``name`` was not added)."""
    _ADDED.pop(name, None)


def is_added(name: str) -> bool:
    """Whether ``name`` is a program added in this process (not one of the suite's)."""
    return name in _ADDED


def program_named(name: str) -> TracrProgram:
    """The program ``name`` (:func:`all_programs`); a one-line ValueError (with a
    did-you-mean) for an unknown one.

    Example:
        >>> program_named("revers")
        Traceback (most recent call last):
        ...
        ValueError: unknown tracr program 'revers' (known: reverse, ...); did you mean 'reverse'?
    """
    programs = all_programs()
    if name not in programs:
        hint = did_you_mean(name, programs)
        raise ValueError(f"unknown tracr program {name!r} (known: {', '.join(programs)}){hint}")
    return programs[name]
