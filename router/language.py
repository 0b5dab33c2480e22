"""Which language a customer wrote in, for rules that route on it (``match.language``).

A naive Bayes classifier over byte n-grams (py3langid, ~100 languages) answers with an
ISO 639-1 code. It is deterministic and needs no network. The model takes most of a
second to load, so it loads on the first call, once, under a lock: a daemon whose rules
never ask for a language never pays for it. Classifying a message takes well under a
millisecond; a long e-mail is cut to its first ``MAX_CHARS`` characters, which carry the
language as well as the whole body does.

Short texts ("ok thanks", "Hola") are guessed no better than a coin toss, so ``detect``
answers None rather than a confident-looking wrong code: a rule on language then simply
does not match.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

MIN_LETTERS = 12
"""Fewer letters than this: no answer."""
MIN_CONFIDENCE = 0.5
"""Normalized probability of the best language below this: no answer."""
MAX_CHARS = 2000
"""Only this much of a long text is classified."""

_lock = threading.Lock()
_identifier: LanguageIdentifier | None = None


def detect(text: str) -> str | None:
    """The ISO 639-1 code of ``text``'s language, or None when too short or unsure."""
    sample = text[:MAX_CHARS]
    if not _has_letters(sample, MIN_LETTERS):
        return None
    code, confidence = _model().classify(sample)
    # The model also knows "zxx" (no linguistic content) and some ISO 639-3 codes.
    if confidence < MIN_CONFIDENCE or len(code) != 2:
        return None
    return str(code)


def load() -> None:
    """Load the model now (at start-up, when rules use the language) instead of on the
    first message that needs it."""
    _model()


def _has_letters(text: str, needed: int) -> bool:
    for char in text:
        if char.isalpha():
            needed -= 1
            if needed <= 0:
                return True
    return False


def _model() -> LanguageIdentifier:
    """The shared classifier, loaded on first use; classifying only reads it."""
    global _identifier  # noqa: PLW0603 — the lazily loaded, process-wide model
    if _identifier is None:
        with _lock:
            if _identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return _identifier
