"""The materials and countries mews knows: data files validated on load, and lookups over them."""

from shared.catalog.loader import COUNTRIES_FILE, MATERIALS_FILE, CatalogError, load_catalog
from shared.catalog.models import Catalog, Country, Material
from shared.catalog.names import fold

__all__ = [
    "COUNTRIES_FILE",
    "MATERIALS_FILE",
    "Catalog",
    "CatalogError",
    "Country",
    "Material",
    "fold",
    "load_catalog",
]
