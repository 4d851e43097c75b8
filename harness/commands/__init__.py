"""CLI command modules; each exposes ``register(app)``. Commands stay thin: parse options, call the library."""
