"""Clean/corrupt prompt generators for IOI, Greater-Than and Docstring.

Each generator follows the recipe the ACDC paper used (Conmy et al. 2023), draw for draw,
so that with the same seed it yields the same prompts (checked in the tests against values
computed with ACDC's code). Generators return text; :func:`to_batches` tokenizes it into
:class:`~harness.engine.batches.PromptBatch` objects.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from harness.engine.batches import PromptBatch


@dataclass(frozen=True)
class TextPrompt:
    """One clean/corrupt pair in text form.

    Attributes:
        clean: The prompt the model should complete.
        corrupt: Its counterfactual, of the same token length.
        answers: Correct next tokens (text, each one token).
        wrong_answers: Incorrect next tokens the metric compares against.
    """

    clean: str
    corrupt: str
    answers: tuple[str, ...]
    wrong_answers: tuple[str, ...]


def _word_list(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# --- IOI (Wang et al. 2023; ACDC's IOIDataset) ------------------------------------------

IOI_NAMES = _word_list(
    """
Michael Christopher Jessica Matthew Ashley Jennifer Joshua Amanda Daniel David James Robert
John Joseph Andrew Ryan Brandon Jason Justin Sarah William Jonathan Stephanie Brian Nicole
Nicholas Anthony Heather Eric Elizabeth Adam Megan Melissa Kevin Steven Thomas Timothy
Christina Kyle Rachel Laura Lauren Amber Brittany Danielle Richard Kimberly Jeffrey Amy
Crystal Michelle Tiffany Jeremy Benjamin Mark Emily Aaron Charles Rebecca Jacob Stephen
Patrick Sean Erin Jamie Kelly Samantha Nathan Sara Dustin Paul Angela Tyler Scott Katherine
Andrea Gregory Erica Mary Travis Lisa Kenneth Bryan Lindsey Kristen Jose Alexander Jesse
Katie Lindsay Shannon Vanessa Courtney Christine Alicia Cody Allison Bradley Samuel
"""
)
IOI_PLACES = _word_list("store garden restaurant school hospital office house station")
IOI_OBJECTS = _word_list("ring kiss bone basketball computer necklace drink snack")
# [B] = subject, [A] = indirect object (the answer). ABBA forms swap the first [B] and [A].
IOI_BABA_TEMPLATES = (
    "Then, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to [A]",
    "Then, [B] and [A] had a lot of fun at the [PLACE]. [B] gave a [OBJECT] to [A]",
    "Then, [B] and [A] were working at the [PLACE]. [B] decided to give a [OBJECT] to [A]",
    "Then, [B] and [A] were thinking about going to the [PLACE]. [B] wanted to give a "
    "[OBJECT] to [A]",
    "Then, [B] and [A] had a long argument, and afterwards [B] said to [A]",
    "After [B] and [A] went to the [PLACE], [B] gave a [OBJECT] to [A]",
    "When [B] and [A] got a [OBJECT] at the [PLACE], [B] decided to give it to [A]",
    "When [B] and [A] got a [OBJECT] at the [PLACE], [B] decided to give the [OBJECT] to [A]",
    "While [B] and [A] were working at the [PLACE], [B] gave a [OBJECT] to [A]",
    "While [B] and [A] were commuting to the [PLACE], [B] gave a [OBJECT] to [A]",
    "After the lunch, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to [A]",
    "Afterwards, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to [A]",
    "Then, [B] and [A] had a long argument. Afterwards [B] said to [A]",
    "The [PLACE] [B] and [A] went to had a [OBJECT]. [B] gave it to [A]",
    "Friends [B] and [A] found a [OBJECT] at the [PLACE]. [B] gave it to [A]",
)


def ioi_template(index: int = 0, order: str = "ABBA") -> str:
    """IOI template ``index`` (0..14) in ``"ABBA"`` or ``"BABA"`` name order.

    Example:
        >>> ioi_template(0)
        'Then, [A] and [B] went to the [PLACE]. [B] gave a [OBJECT] to [A]'
    """
    template = IOI_BABA_TEMPLATES[index]
    if order == "BABA":
        return template
    if order != "ABBA":
        raise ValueError(f"IOI order must be 'ABBA' or 'BABA', got {order!r}")
    return template.replace("[B]", "[X]", 1).replace("[A]", "[B]", 1).replace("[X]", "[A]", 1)


def ioi_prompts(n: int, seed: int = 0, template: int = 0, order: str = "ABBA") -> list[TextPrompt]:
    """IOI prompts as in the ACDC paper (ABBA template 0, seed 0), with the 'ABC' corruption.

    Per prompt: a template (``random.choice``), three distinct names (IO, S and one
    unused, redrawn together until distinct), a place and an object. The corrupt prompt
    replaces IO (both occurrences), then S (both), then the first S again with random
    names (numpy RNG, one seed per replacement), so IO, S1 and S2 all differ from the
    clean names. The final IO is the answer and is cut from both prompts.

    Args:
        n: Number of prompts.
        seed: ACDC's dataset seed.
        template: Template index 0..14.
        order: ``"ABBA"``, ``"BABA"`` or ``"mixed"`` (each prompt picks one of the two
            orders of the template; both have the same token length).

    Example:
        >>> ioi_prompts(1)[0].clean
        'Then, Mary and Jeffrey went to the restaurant. Jeffrey gave a bone to'
    """
    import numpy as np

    orders = ("ABBA", "BABA") if order == "mixed" else (order,)
    templates = [ioi_template(template, o) for o in orders]
    rng = random.Random((seed + 987654321) % 123456789)
    clean = []
    for _ in range(n):
        text = rng.choice(templates)
        names = ("", "", "")
        while len(set(names)) < 3:
            names = (rng.choice(IOI_NAMES), rng.choice(IOI_NAMES), rng.choice(IOI_NAMES))
        place, obj = rng.choice(IOI_PLACES), rng.choice(IOI_OBJECTS)
        text = text.replace("[A]", names[0]).replace("[B]", names[1])
        text = text.replace("[PLACE]", place).replace("[OBJECT]", obj)
        clean.append({"IO": names[0], "S": names[1], "words": text.split(" ")})

    corrupt = [dict(p) for p in clean]
    first_flip_seed = (seed + 1 + 345467) % 5432
    for offset, role in enumerate(("IO", "S", "S1")):
        np_rng = np.random.RandomState(first_flip_seed + offset)
        for prompt in corrupt:
            name = IOI_NAMES[np_rng.randint(len(IOI_NAMES))]
            while name in (prompt["IO"], prompt["S"]):
                name = IOI_NAMES[np_rng.randint(len(IOI_NAMES))]
            words = list(prompt["words"])
            if role == "S1":
                words[words.index(prompt["S"])] = name
            else:
                words = [name if w == prompt[role] else w for w in words]
                prompt[role] = name
            prompt["words"] = words
    return [
        TextPrompt(
            clean=" ".join(c["words"][:-1]),
            corrupt=" ".join(k["words"][:-1]),
            answers=(" " + c["IO"],),
            wrong_answers=(" " + c["S"],),
        )
        for c, k in zip(clean, corrupt, strict=True)
    ]


# --- Greater-Than (Hanna et al. 2023) ---------------------------------------------------

GREATERTHAN_NOUNS = _word_list(
    """
abduction accord affair agreement appraisal assaults assessment attack attempts campaign
captivity case challenge chaos clash collaboration coma competition confrontation consequence
conspiracy construction consultation contact contract convention cooperation custody deal
decline decrease demonstrations development disagreement disorder dispute domination dynasty
effect effort employment endeavor engagement epidemic evaluation exchange existence expansion
expedition experiments fall fame flights friendship growth hardship hostility illness impact
imprisonment improvement incarceration increase insurgency invasion investigation journey
kingdom marriage modernization negotiation notoriety obstruction operation order outbreak
outcome overhaul patrols pilgrimage plague plan practice process program progress project
pursuit quest raids reforms reign relationship retaliation riot rise rivalry romance rule
sanctions shift siege slump stature stint strikes study test testing tests therapy tour
tradition treaty trial trip unemployment voyage warfare work
"""
)


def greaterthan_years(tokenizer: Any, recipe: str = "acdc") -> list[str]:
    """Start years whose ``" XXYY"`` is two tokens ``" XX"``, ``"YY"`` (centuries 11..17).

    Years XX02..XX98 are kept if they split that way; ``"autocircuit"`` keeps only YY > 40
    (auto-circuit's choice, so that the corrupt XX01 lowers the answers' logits); then the
    first and last kept year of each century are dropped. GPT-2's tokenizer gives 604 years
    (``"acdc"``) and 373 (``"autocircuit"``).
    """
    years = []
    for century in range(11, 18):
        kept = []
        for yy in range(2, 99):
            if recipe == "autocircuit" and yy <= 40:
                continue
            year = f"{century}{yy:02d}"
            pieces = [tokenizer.decode([t]) for t in _encode(tokenizer, " " + year)]
            if pieces == [f" {century}", f"{yy:02d}"]:
                kept.append(year)
        years += kept[1:-1]
    return years


def greaterthan_prompts(
    n: int, tokenizer: Any, recipe: str = "acdc", seed: int = 54, pool: int | None = None
) -> list[TextPrompt]:
    """Greater-Than prompts ``"The {noun} lasted from the year {XXYY} to {XX}"``.

    There is no second "the year" (as in ACDC's and auto-circuit's data). Nouns and years
    are drawn with ``torch.randint`` after ``torch.manual_seed(seed)``: all noun indices
    of the pool first, then all year indices, so the pool size changes the years. The
    reference pools are 200 prompts (``"acdc"``) and 1000 (``"autocircuit"``, which also
    spells "statute" for "stature"). The corrupt prompt starts in year XX01. Answers are
    the two-digit tokens YY' > YY, wrong answers YY' <= YY.

    Example:
        >>> from harness.tasks.gpt2.tokenizer import gpt2_tokenizer
        >>> greaterthan_prompts(1, gpt2_tokenizer())[0].clean
        'The demonstrations lasted from the year 1289 to 12'
    """
    if recipe not in ("acdc", "autocircuit"):
        raise ValueError(f"Greater-Than recipe must be 'acdc' or 'autocircuit', got {recipe!r}")
    nouns = list(GREATERTHAN_NOUNS)
    if recipe == "autocircuit":
        nouns[nouns.index("stature")] = "statute"
    years = greaterthan_years(tokenizer, recipe)
    size = max(n, pool or (200 if recipe == "acdc" else 1000))
    generator = torch.Generator().manual_seed(seed)
    noun_idx = torch.randint(0, len(nouns), (size,), generator=generator)  # [size]
    year_idx = torch.randint(0, len(years), (size,), generator=generator)  # [size]
    prompts = []
    for i in range(n):
        noun, year = nouns[int(noun_idx[i])], years[int(year_idx[i])]
        century, yy = year[:2], int(year[2:])
        prefix = f"The {noun} lasted from the year "
        prompts.append(
            TextPrompt(
                clean=f"{prefix}{year} to {century}",
                corrupt=f"{prefix}{century}01 to {century}",
                answers=tuple(f"{v:02d}" for v in range(yy + 1, 100)),
                wrong_answers=tuple(f"{v:02d}" for v in range(yy + 1)),
            )
        )
    return prompts


# --- Docstring (Heimersheim & Janiak 2023) ----------------------------------------------

DOCSTRING_VARIABLE_NAMES = _word_list(
    """
data name file value test new result line user key default request path output node item url
model response text version function log string field start number values sub index error
current context image message check json create size event state row obj parser end files
form query fields instance label run action target array code num table source msg config
first required options ret update module status group content client filename results last
read command val base format color settings order found count match tag title parent call
session token server host date description mode expected project info valid page header
option task shape load names port old resource root
"""
)
# Description words. ACDC draws them from its own list of 687 nouns (not reproduced here),
# so descriptions differ from ACDC's; names, arguments and the corruption match draw for draw.
DOCSTRING_NOUNS = _word_list(
    """
account action answer apple area army art baby bank bar bed bird board boat body book bottle
box boy bread bridge brother car card case cat chair chance child church city class clock
cloud coat coffee college corner country course cup day deal desk detail dinner doctor dog
door dream driver earth egg energy engine face fact family farm father field film fire fish
floor flower food foot force forest friend fruit future game garden gap girl glass gold
ground group growth hair hand head heart hill hole home horse hotel hour house idea island
job key king lake land law leader letter level life light line list lunch machine man map
market meal meeting memory message metal mind mine minute moment money month morning mother
mountain mouth movie music name nation nature news night noise note number ocean office oil
paper park party path pen people phone picture piece plane plant plate point population
power price problem queen question radio rain rate reason record river road rock room rule
salt school sea season sector seat sense ship shop side sign skin sky snow son song sound
space speed spring square star station step stone store story street student sugar summer
sun system table tea teacher team test thing tree trip truth unit value view village voice
wall war water wave way week window wine winter woman wood word world year youth
"""
)


def docstring_prompt(seed: int, nouns: Sequence[str] = DOCSTRING_NOUNS) -> TextPrompt:
    """Docstring prompt ``seed`` of the ACDC paper (rest style, 3 matching arguments).

    ``random.seed(seed)``, then 15 distinct names: the method, 1 unused answer, 3 and 2
    random arguments for the corrupt definition and docstring, 2 unused, the matching
    A, B, C, 2 definition prefixes and 1 suffix; then 3 description words and 2 for each of
    A and B. The corrupt prompt ('random_random') replaces A, B, C in the definition and
    A, B in the docstring by the random arguments. The answer is C; the wrong answers
    are the other 13 arguments.

    Example:
        >>> docstring_prompt(0).clean.split(":")[0]
        '\\ndef old(self, first, files, page, names, size, read)'
    """
    rng = random.Random(seed)
    met, *args = rng.sample(DOCSTRING_VARIABLE_NAMES, 15)
    mid_def, mid_doc = args[1:4], args[4:6]
    a, b, c = args[8:11]
    prefix, suffix = args[11:13], args[13]
    description = rng.sample(list(nouns), 3)
    a_words, b_words = rng.sample(list(nouns), 2), rng.sample(list(nouns), 2)

    def text(def_args: Sequence[str], doc_a: str, doc_b: str) -> str:
        return (
            f"\ndef {met}(self, {', '.join([*prefix, *def_args, suffix])}):\n"
            f'    """{" ".join(description)}\n\n'
            f"    :param {doc_a}: {' '.join(a_words)}\n"
            f"    :param {doc_b}: {' '.join(b_words)}\n"
            f"    :param"
        )

    return TextPrompt(
        clean=text((a, b, c), a, b),
        corrupt=text(mid_def, *mid_doc),
        answers=(" " + c,),
        wrong_answers=tuple(" " + x for x in args if x != c),
    )


def docstring_prompts(n: int, tokenizer: Any, first_seed: int = 0) -> list[TextPrompt]:
    """``n`` Docstring prompts from seeds ``first_seed, first_seed + 1, ...``.

    A seed is skipped when one of its words is not a single token after a space under
    ``tokenizer`` (so that every prompt has the same length); with the model's own
    tokenizer none is, with GPT-2's some are.
    """
    prompts, seed = [], first_seed
    single = {}

    def one_token(word: str) -> bool:
        if word not in single:
            single[word] = len(_encode(tokenizer, " " + word)) == 1
        return single[word]

    while len(prompts) < n:
        prompt = docstring_prompt(seed)
        words = {w for t in (prompt.clean, prompt.corrupt) for w in _words(t)}
        if all(one_token(w) for w in words):
            prompts.append(prompt)
        seed += 1
        if seed - first_seed > 100 * n + 1000:
            raise ValueError("too few Docstring prompts tokenize to single-token words")
    return prompts


def _words(text: str) -> list[str]:
    cleaned = text.replace("(", " ").replace(")", " ").replace(",", " ").replace(":", " ")
    return [w for w in cleaned.replace('"', " ").split() if w not in ("def", "self", "param")]


# --- tokenization -----------------------------------------------------------------------


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def _answer_ids(tokenizer: Any, answers: Sequence[str]) -> list[int]:
    ids = []
    for answer in answers:
        tokens = _encode(tokenizer, answer)
        if len(tokens) != 1:
            raise ValueError(f"answer {answer!r} is {len(tokens)} tokens, not one")
        ids.append(tokens[0])
    return ids


def to_batches(
    prompts: Sequence[TextPrompt],
    tokenizer: Any,
    key: str,
    batch_size: int,
    prepend_bos: bool = False,
) -> tuple[PromptBatch, ...]:
    """Tokenize prompts into batches keyed ``f"{key}-{i}"``.

    Clean and corrupt prompts must tokenize to one common length. Answers become
    ``[batch, 1, n_answers]`` (``-1`` pads where prompts have fewer), read at the last
    position.

    Example:
        >>> from harness.tasks.gpt2.tokenizer import gpt2_tokenizer
        >>> batches = to_batches(ioi_prompts(3), gpt2_tokenizer(), "ioi", batch_size=2)
        >>> [tuple(b.clean.shape) for b in batches]
        [(2, 15), (1, 15)]
    """
    bos = [tokenizer.bos_token_id] if prepend_bos else []
    clean = [bos + _encode(tokenizer, p.clean) for p in prompts]
    corrupt = [bos + _encode(tokenizer, p.corrupt) for p in prompts]
    lengths = {len(t) for t in clean + corrupt}
    if len(lengths) != 1:
        raise ValueError(f"{key}: clean and corrupt prompts have token lengths {sorted(lengths)}")
    answers = [_answer_ids(tokenizer, p.answers) for p in prompts]
    wrong = [_answer_ids(tokenizer, p.wrong_answers) for p in prompts]
    batches = []
    for i, start in enumerate(range(0, len(prompts), batch_size)):
        part = slice(start, start + batch_size)
        batches.append(
            PromptBatch.create(
                f"{key}-{i}",
                torch.tensor(clean[part]),  # [batch, seq]
                torch.tensor(corrupt[part]),  # [batch, seq]
                answers=_padded(answers[part]),  # [batch, n_answers]
                wrong_answers=_padded(wrong[part]),  # [batch, n_wrong]
            )
        )
    return tuple(batches)


def _padded(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([list(r) + [-1] * (width - len(r)) for r in rows], dtype=torch.long)
