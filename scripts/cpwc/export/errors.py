"""The one error the export raises."""


class ExportError(RuntimeError):
    """The export or its self-check failed; the message says which output and by how much."""
