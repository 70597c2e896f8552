"""Topic patterns (AMQP topic-exchange style) and the trie that finds every pattern matching a topic.

A topic is a sequence of '.'-separated words. In a pattern, `*` stands for exactly one word and `#` for zero or more
words; every other word must be equal. With many route tables, trying every pattern on every message would cost
O(tables); the trie shares literal words between patterns so one walk over the topic's words finds all matches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ONE_WORD = "*"
ANY_WORDS = "#"
MAX_PATTERN_WORDS = 64


class TopicPatternError(ValueError):
    """A topic pattern that cannot be used; the message says what is wrong, for the document's problem list."""


@dataclass(frozen=True)
class TopicPattern:
    text: str
    words: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> TopicPattern:
        words = tuple(text.split("."))
        if len(words) > MAX_PATTERN_WORDS:
            raise TopicPatternError(f"a topic pattern has at most {MAX_PATTERN_WORDS} words, got {len(words)}")
        for position, word in enumerate(words, 1):
            _check_word(word, position)
        return cls(text, words)

    def matches(self, topic: str) -> bool:
        """Direct matching without an index: used to check one pattern and as the benchmark's baseline."""
        return matches_words(self.words, topic.split("."))


def _check_word(word: str, position: int) -> None:
    if not word:
        raise TopicPatternError(f"word {position} is empty: words are separated by single dots, with none at the ends")
    if any(ch.isspace() for ch in word):
        raise TopicPatternError(f"word {position} ({word!r}) contains white space")
    if word not in (ONE_WORD, ANY_WORDS) and (ONE_WORD in word or ANY_WORDS in word):
        raise TopicPatternError(
            f"word {position} ({word!r}) mixes a wildcard with letters: '*' and '#' must be whole words"
        )


def matches_words(pattern: tuple[str, ...] | list[str], words: list[str]) -> bool:
    """Wildcard matching with backtracking to the last `#`, like glob matching (`#` ~ glob `*`, `*` ~ glob `?`)."""
    p = w = 0
    resume_pattern, resume_word = -1, 0
    while w < len(words):
        if p < len(pattern) and pattern[p] == ANY_WORDS:
            resume_pattern, resume_word = p, w
            p += 1
        elif p < len(pattern) and (pattern[p] == ONE_WORD or pattern[p] == words[w]):
            p += 1
            w += 1
        elif resume_pattern >= 0:
            # Let the last `#` swallow one more word and retry from there.
            resume_word += 1
            p, w = resume_pattern + 1, resume_word
        else:
            return False
    while p < len(pattern) and pattern[p] == ANY_WORDS:
        p += 1
    return p == len(pattern)


class _Node:
    __slots__ = ("literal", "one_word", "any_words", "loops", "values", "closure")

    def __init__(self, loops: bool = False) -> None:
        self.literal: dict[str, _Node] = {}
        self.one_word: _Node | None = None
        self.any_words: _Node | None = None
        self.loops = loops  # a node reached by `#`: it may consume any number of further words and stay here
        self.values: list[int] = []
        # This node plus the nodes after a `#` matching zero words (`a.#` also ends at `a`), filled in when built.
        self.closure: tuple[_Node, ...] = ()


class TopicTrie:
    """Maps topics to the numbers of the patterns that match them. Immutable once built."""

    def __init__(self, patterns: Iterable[tuple[int, TopicPattern]]) -> None:
        self._root = _Node()
        for number, pattern in patterns:
            self._insert(pattern.words, number)
        _fill_closures(self._root)

    def _insert(self, words: tuple[str, ...], number: int) -> None:
        node = self._root
        for word in words:
            if word == ONE_WORD:
                node.one_word = node.one_word or _Node()
                node = node.one_word
            elif word == ANY_WORDS:
                node.any_words = node.any_words or _Node(loops=True)
                node = node.any_words
            else:
                node = node.literal.setdefault(word, _Node())
        node.values.append(number)

    def match(self, topic: str) -> list[int]:
        """The numbers of every pattern matching topic, each once, in no particular order."""
        states = self._root.closure
        for word in topic.split("."):
            following: list[_Node] = []
            for node in states:
                if node.loops:
                    following.extend(node.closure)
                child = node.literal.get(word)
                if child is not None:
                    following.extend(child.closure)
                if node.one_word is not None:
                    following.extend(node.one_word.closure)
            if not following:
                return []
            # Only `#` can make two paths meet in one node; dropping the duplicates keeps the walk linear.
            states = tuple(dict.fromkeys(following)) if len(following) > 1 else following
        found: list[int] = []
        for node in states:
            found.extend(node.values)
        return found


def _fill_closures(root: _Node) -> None:
    pending = [root]
    while pending:
        node = pending.pop()
        chain, step = [node], node.any_words
        while step is not None:
            chain.append(step)
            step = step.any_words
        node.closure = tuple(chain)
        pending.extend(node.literal.values())
        pending.extend(child for child in (node.one_word, node.any_words) if child is not None)
