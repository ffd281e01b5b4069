"""Supply news classifier: materials, countries, export measure, supply topic, figures and relevance, and why."""

from services.ingest.classify.classifier import classify_item
from services.ingest.classify.lexicon import Lexicon, LexiconError, load_lexicon
from services.ingest.classify.models import Classification, Evidence, Measure

__all__ = ["Classification", "Evidence", "Lexicon", "LexiconError", "Measure", "classify_item", "load_lexicon"]
