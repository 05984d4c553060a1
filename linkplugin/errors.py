"""The one exception type the library raises for bad input or a failed job.

The command line turns it into a one-line message and exit status 2; anything
else escaping is a bug in linkplugin, not in the user's file.
"""


class LinkpluginError(Exception):
    """Bad input, an unwritable output, or a worker that died."""
