"""Pure core: plain data and pure functions. Imports no sqlite, Textual or runtime."""
