"""entrepot: a container image registry on Distribution's storage layout."""

from entrepot.descriptor import Descriptor, Platform
from entrepot.digest import Digest

__all__ = ["Descriptor", "Digest", "Platform", "__version__"]

__version__ = "0.1.0"
