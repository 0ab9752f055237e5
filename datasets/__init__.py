"""Registry of known datasets, shipped inside contrec as ``contrec.datasets``.

The data lives in ``movielens.json`` (URLs, checksums, formats); the parsers are in
``contrec/data/movielens.py``. ``sample.csv`` is a tiny interaction log for examples.
"""
