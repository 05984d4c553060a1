"""Compression of debug sections (codec.py); the codec names, for the command line's choices
without loading the codecs."""

CODECS = ("zlib", "zstd")
