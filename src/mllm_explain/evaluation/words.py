"""Word classes for the TAM evaluation protocol (DESIGN §6), with no download at run time.

TAM tags each caption word on its own with NLTK's perceptron tagger (which must be downloaded) and
calls a word a *function word* when its Penn tag is CC, DT, EX, MD, POS, PRP, PRP$, UH, WDT, WP,
WP$ or WRB -- prepositions (IN) and numbers (CD) are deliberately not function words.  Here those
closed classes are a hand-written list, nouns come from the lexicon that `lemminflect` ships, and a
noun is an *object noun* when its lemma matches a category name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from lemminflect import getAllLemmas, getLemma

WordKind = Literal["object", "function", "other_noun", "other"]

DETERMINERS = frozenset(
    "a an the this that these those some any each every all both either neither no another such half".split())
PRONOUNS = frozenset(
    "i me you he him she her it we us they them thee thou ye myself yourself himself herself itself oneself "
    "ourselves yourselves themselves someone somebody something anyone anybody anything everyone everybody "
    "everything noone nobody nothing".split())
POSSESSIVES = frozenset("my your his her its our their mine yours hers ours theirs 's".split())
CONJUNCTIONS = frozenset("and or but nor yet plus & and/or".split())  # coordinating only (Penn CC)
MODALS = frozenset("can cannot could may might must shall should will would ought 'll 'd".split())
EXISTENTIAL = frozenset({"there"})
WH_WORDS = frozenset(
    "what which who whom whose where when why how whatever whichever whoever whomever wherever whenever "
    "however whence whereby wherein whereas".split())
INTERJECTIONS = frozenset(
    "oh ah aha uh um umm hmm wow hey hello hi yes yeah yep nope okay ok please oops alas hooray yay eh huh "
    "ouch bye goodbye thanks".split())
FUNCTION_WORDS: frozenset[str] = (DETERMINERS | PRONOUNS | POSSESSIVES | CONJUNCTIONS | MODALS | EXISTENTIAL
                                  | WH_WORDS | INTERJECTIONS)

_NOT_NOUN_TAGS = ("ADJ", "ADV")


@dataclass(frozen=True)
class WordClass:
    """A caption word's class; `category` is the matched category id for object nouns, else None."""

    kind: WordKind
    category: int | None = None

    @property
    def is_noun(self) -> bool:
        return self.kind in ("object", "other_noun")


def normalise(word: str) -> str:
    """Lower-case letters, digits and apostrophes only (TAM also drops hyphens: 'teddy-bear')."""
    return re.sub(r"[^a-z0-9'&/]", "", word.lower())


def lemmas(word: str) -> set[str]:
    """The word itself and its noun lemmas ('circles' -> {'circles', 'circle'}; "dog's" -> 'dog')."""
    word = re.sub(r"'s?$", "", normalise(word))
    return {word, *getLemma(word, upos="NOUN")} if word.isalpha() else {word}


def _category_words(categories: dict[str, int]) -> list[tuple[list[set[str]], int]]:
    """Each category name as a list of per-word lemma sets, longest names first, then dict order."""
    names = [([lemmas(part) for part in name.split()], cid) for name, cid in categories.items()]
    return sorted(names, key=lambda item: -len(item[0]))


def _match_objects(words: list[str], categories: dict[str, int]) -> dict[int, int]:
    """Word index -> category id.

    A category name matches a run of consecutive caption words, all of which become its object
    words ('traffic light', 'hot dog'; they are later merged into one mention, as in TAM, which
    labels every word of a name and merges neighbours with the same label).  A single word also
    matches the *head* (last word) of a longer name ('table' -> 'dining table', 'phone' -> 'cell
    phone').  Priority: full multi-word names, then single-word names ('dog' is a dog, not a
    'hot dog'; 'bear' is a bear, not a 'teddy bear'), then heads; ties go to the first name in the
    dictionary.  TAM instead lets any word of a name match and the last matching name win, which
    labels every 'dog' in COCO as 'hot dog' and every 'table' via 'dining' as well.
    """
    word_lemmas = [lemmas(w) for w in words]
    names = _category_words(categories)
    found: dict[int, int] = {}
    for parts, cid in names:  # exact names, longest first
        for start in range(len(words) - len(parts) + 1):
            span = range(start, start + len(parts))
            if any(i in found for i in span):
                continue
            if all(word_lemmas[i] & part for i, part in zip(span, parts)):
                found.update({i: cid for i in span})
    for parts, cid in names:
        if len(parts) > 1:
            for i, candidates in enumerate(word_lemmas):
                if i not in found and candidates & parts[-1]:
                    found[i] = cid
    return found


def looks_like_noun(words: list[str], index: int) -> bool:
    """Heuristic noun test without a tagger (used only for the Func-IoU threshold's 'other nouns').

    A word is a noun when lemminflect's lexicon lists it as a NOUN and not as an ADJ or ADV
    ('image', 'street', 'background').  A word that can also be an adjective or adverb ('left',
    'front', 'middle') counts as a noun only after a determiner or possessive and not before another
    noun-capable word ('the left .' yes, 'the red circle' no).  A present participle whose verb
    lemma differs ('sitting' -> 'sit') is a verb unless a determiner precedes it ('a painting').
    Out-of-lexicon words are not nouns.
    """
    word = normalise(words[index])
    if not word.isalpha() or word in FUNCTION_WORDS:
        return False
    tags = getAllLemmas(word)
    if "NOUN" not in tags:
        return False
    previous = normalise(words[index - 1]) if index > 0 else ""
    after_determiner = previous in DETERMINERS or previous in POSSESSIVES
    if any(tag in tags for tag in _NOT_NOUN_TAGS):
        following = normalise(words[index + 1]) if index + 1 < len(words) else ""
        return after_determiner and "NOUN" not in getAllLemmas(following)
    if word.endswith("ing") and word not in tags.get("VERB", (word,)):
        return after_determiner
    return True


def classify_words(words: list[str], categories: dict[str, int]) -> list[WordClass]:
    """The class of each caption word: object noun (with its category id), function word, other
    noun, or other.  Object matching comes first, so a category name is never a function word."""
    objects = _match_objects(words, categories)
    classes = []
    for i, word in enumerate(words):
        if i in objects:
            classes.append(WordClass("object", objects[i]))
        elif normalise(word) in FUNCTION_WORDS:
            classes.append(WordClass("function"))
        elif looks_like_noun(words, i):
            classes.append(WordClass("other_noun"))
        else:
            classes.append(WordClass("other"))
    return classes


def synthetic_lexicon() -> dict[str, str]:
    """Finer classes for the synthetic captions' modifiers: colour, size, count and relation words."""
    from mllm_explain.data.synth import COLOURS, NUMBER_WORDS

    classes = {w: "colour" for w in COLOURS}
    classes.update({w: "size" for w in ("small", "large")})
    classes.update({w: "count" for w in NUMBER_WORDS.values()})
    classes.update({w: "relation" for w in ("left", "right", "above", "below", "top", "bottom", "center")})
    return classes
