"""Export-control news classifier: which materials, countries and trade measure an item is about, and why."""

from services.ingest.classify.classifier import classify_item
from services.ingest.classify.lexicon import Lexicon, LexiconError, load_lexicon
from services.ingest.classify.models import Classification, Evidence, Measure

__all__ = ["Classification", "Evidence", "Lexicon", "LexiconError", "Measure", "classify_item", "load_lexicon"]
