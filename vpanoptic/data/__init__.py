"""Package data: category tables (JSON). A regular package, so `importlib.resources` finds it from any folder."""
