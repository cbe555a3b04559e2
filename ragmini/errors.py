"""The one exception family every stage raises for problems a user can fix.

The CLI turns a RagminiError into a one-line message and exit status 1; anything
else is a bug and keeps its traceback.
"""


class RagminiError(Exception):
    """A problem the user can fix; the message says how."""


class ModelUnavailable(RagminiError):
    """A model (or its packaged weights) cannot be loaded offline."""


class StoreError(RagminiError):
    """The store is missing, locked, of another schema version, or damaged."""


class IndexStale(RagminiError):
    """An index does not match the store or the query embedder."""


class QueryError(RagminiError):
    """A query cannot be answered as asked (empty, no known words, bad k)."""
