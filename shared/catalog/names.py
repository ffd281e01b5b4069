"""How names are compared: one folding for the catalog's lookups and the news classifier's matching."""

from __future__ import annotations

import functools
import unicodedata

# Hyphens and slashes separate words ("Zuid-Afrika", "bauxite/alumina"); typographic quotes are one quote.
_TRANSLATE = str.maketrans(
    {
        "-": " ",
        "\u2010": " ",
        "\u2011": " ",
        "\u2012": " ",
        "\u2013": " ",
        "\u2014": " ",
        "_": " ",
        "/": " ",
        "\u2019": "'",
        "\u2018": "'",
        "`": "'",
        "\u00a0": " ",
    }
)


@functools.lru_cache(maxsize=4096)
def fold_char(char: str) -> str:
    """One character folded: accents dropped, case folded, separators made spaces; may be empty or longer."""
    decomposed = unicodedata.normalize("NFKD", char)
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    return kept.casefold().translate(_TRANSLATE)


def fold(text: str) -> str:
    """Case-, accent- and separator-insensitive form of a name, with single spaces."""
    return " ".join("".join(fold_char(c) for c in text).split())
