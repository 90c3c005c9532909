"""``devtrack demo``: a real workspace built offline from a small real model and data set."""
