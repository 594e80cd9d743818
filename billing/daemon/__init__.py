"""Running the engine: one pass of every tick (``run_once``) and the long-lived daemon."""
