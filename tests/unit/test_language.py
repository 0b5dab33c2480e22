from __future__ import annotations

import threading

import pytest

from router import language
from router.language import detect


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Hello, I would like a refund for my last order please.", "en"),
        ("Hola, mi pedido no ha llegado todavía y necesito ayuda.", "es"),
        ("Bonjour, je voudrais être remboursé pour ma dernière commande.", "fr"),
        ("Hallo, ich möchte eine Rückerstattung für meine letzte Bestellung.", "de"),
        ("Olá, gostaria de um reembolso do meu último pedido, por favor.", "pt"),
    ],
)
def test_sentences_get_their_language(text: str, code: str) -> None:
    assert detect(text) == code


@pytest.mark.parametrize("text", ["", "   ", "ok thanks", "Hola", "12345 67890 !!!! ???", "👍👍👍"])
def test_short_or_letterless_text_gets_no_answer(text: str) -> None:
    assert detect(text) is None


def test_gibberish_is_not_given_a_language() -> None:
    assert detect("asdf qwer zxcv uiop hjkl") is None


def test_detection_is_deterministic() -> None:
    text = "Necesito cambiar la dirección de envío de mi pedido."
    assert {detect(text) for _ in range(5)} == {"es"}


def test_load_loads_the_model_ahead_of_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(language, "_identifier", None)
    language.load()
    assert language._identifier is not None


def test_a_long_text_is_classified_from_its_beginning() -> None:
    assert detect("Mi pedido no ha llegado todavía. " * 500) == "es"


def test_concurrent_first_calls_load_the_model_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from py3langid.langid import LanguageIdentifier

    loads: list[object] = []
    load = LanguageIdentifier.from_model_file

    def counting_load(*args: object, **kwargs: object) -> object:
        loads.append(args)
        return load(*args, **kwargs)

    monkeypatch.setattr(LanguageIdentifier, "from_model_file", counting_load)
    monkeypatch.setattr(language, "_identifier", None)
    results: list[str | None] = []
    threads = [
        threading.Thread(target=lambda: results.append(detect("Where is my order, please?")))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["en"] * 4
    assert len(loads) == 1
