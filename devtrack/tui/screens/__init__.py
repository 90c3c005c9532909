"""One screen (or dialog) per module, each with its ``.tcss`` beside it."""
