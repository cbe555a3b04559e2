"""The one exception family every stage raises for problems a user can fix.

Callers turn a RagminiError into what their user sees: the CLI a one-line
message and exit status 1, the HTTP server a JSON error body. Anything else is
a bug and keeps its traceback.
"""


class RagminiError(Exception):
    """A problem the user can fix; the message says how.

    `param` names the argument at fault ("k", "temperature") when there is one:
    messages name the parameter, and each caller maps it to its own spelling (the
    CLI to `-k`, `--temperature`).
    """

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message)
        self.param = param


class ModelUnavailable(RagminiError):
    """A model (or its packaged weights) cannot be loaded offline."""


class StoreError(RagminiError):
    """The store is missing, locked, of another schema version, or damaged."""


class IndexStale(RagminiError):
    """An index does not match the store or the query embedder."""


class QueryError(RagminiError):
    """A query cannot be answered as asked (empty, no known words, bad k)."""


class NotFound(RagminiError):
    """No such thing in the store: a document id, a chunk, a source, a document's file."""


class Ambiguous(RagminiError):
    """A name that several things answer to (a document id several sources share);
    the message lists them and says how to pick one."""


class NoMatch(QueryError):
    """The query holds nothing the method can match (no word of it in the method's
    vocabulary or in the corpus), so nothing can be found. `ragmini.Store.search`
    returns an empty result with this message as its `reason`; the CLI and the
    HTTP server report it like any QueryError."""
