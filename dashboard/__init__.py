"""Web pages where a shop owner reads results and runs the experiment lifecycle."""
