"""Raw news-beyond-wall posts -> a clean, credited, dated Parquet dataset.

`from pipeline import load, load_credits` for analysts; `python -m pipeline build` to build.
"""

from __future__ import annotations

from pipeline.schema import PIPELINE_VERSION

__version__ = PIPELINE_VERSION
__all__ = ["load", "load_credits", "__version__"]


# Bound eagerly: `pipeline.load` is both a submodule and a function, so a lazy __getattr__
# would return the module once anything imported it. pipeline.load imports only pyarrow;
# pandas loads inside the functions, so `python -m pipeline build` stays light.
from pipeline.load import load, load_credits  # noqa: E402
