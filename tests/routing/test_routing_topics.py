"""Topic patterns: `*` is exactly one word, `#` zero or more; the trie finds the same matches as direct matching."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verdict_server.routing.topics import TopicPattern, TopicPatternError, TopicTrie


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("order.status.paid", "order.status.paid", True),
        ("order.status.paid", "order.status.refunded", False),
        ("order.status.*", "order.status.paid", True),
        ("order.status.*", "order.status", False),  # '*' needs exactly one word
        ("order.status.*", "order.status.paid.late", False),
        ("order.*.paid", "order.status.paid", True),
        ("order.#", "order", True),  # '#' matches zero words
        ("order.#", "order.status", True),
        ("order.#", "order.status.paid.late", True),
        ("order.#", "orders.status", False),
        ("#.paid", "paid", True),
        ("#.paid", "order.status.paid", True),
        ("#.paid", "order.status.paid.x", False),
        ("order.#.paid", "order.paid", True),
        ("order.#.paid", "order.a.b.c.paid", True),
        ("order.#.paid", "order.a.b.c.refunded", False),
        ("#", "anything.at.all", True),
        ("#.#", "a", True),
        ("*.#", "a", True),
        ("#.*", "a.b.c", True),
        ("*.*", "a", False),
        ("a.#.b.#.c", "a.b.c", True),
        ("a.#.b.#.c", "a.x.b.y.z.c", True),
        ("a.#.b.#.c", "a.x.c.y.b", False),
    ],
)
def test_pattern_matching(pattern, topic, expected):
    assert TopicPattern.parse(pattern).matches(topic) is expected
    assert (TopicTrie([(0, TopicPattern.parse(pattern))]).match(topic) == [0]) is expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("order..paid", "word 2 is empty"),
        (".order", "word 1 is empty"),
        ("order.", "word 2 is empty"),
        ("order.sta*", "must be whole words"),
        ("order.#x", "must be whole words"),
        ("order. paid", "white space"),
    ],
)
def test_invalid_patterns_say_which_word(pattern, message):
    with pytest.raises(TopicPatternError, match=message):
        TopicPattern.parse(pattern)


def test_trie_returns_each_matching_pattern_once():
    patterns = ["order.#", "order.#.#", "#", "order.status.*", "order.*.paid", "order.status.paid", "user.#", "*"]
    trie = TopicTrie(enumerate(TopicPattern.parse(p) for p in patterns))
    assert sorted(trie.match("order.status.paid")) == [0, 1, 2, 3, 4, 5]
    assert sorted(trie.match("order")) == [0, 1, 2, 7]
    assert sorted(trie.match("user")) == [2, 6, 7]
    assert sorted(trie.match("user.login")) == [2, 6]


words = st.sampled_from(["a", "b", "c", "*", "#"])
topic_words = st.sampled_from(["a", "b", "c"])


@settings(derandomize=True, max_examples=300, deadline=None)
@given(
    patterns=st.lists(st.lists(words, min_size=1, max_size=5), min_size=1, max_size=8),
    topic=st.lists(topic_words, min_size=1, max_size=6),
)
def test_trie_agrees_with_direct_matching(patterns, topic):
    parsed = [TopicPattern.parse(".".join(p)) for p in patterns]
    text = ".".join(topic)
    expected = [n for n, pattern in enumerate(parsed) if pattern.matches(text)]
    assert sorted(TopicTrie(enumerate(parsed)).match(text)) == expected


@settings(derandomize=True, max_examples=300, deadline=None)
@given(pattern=st.lists(words, min_size=1, max_size=5), topic=st.lists(topic_words, min_size=1, max_size=6))
def test_direct_matching_agrees_with_a_regular_expression(pattern, topic):
    import re

    # An independent oracle: '#' as a run of zero or more '.'-terminated words, '*' as one word.
    regex = "".join({"#": r"(?:[^.]+\.)*", "*": r"[^.]+\."}.get(w, re.escape(w) + r"\.") for w in pattern)
    expected = re.fullmatch(regex, ".".join(topic) + ".") is not None
    assert TopicPattern.parse(".".join(pattern)).matches(".".join(topic)) is expected
