"""Files: image formats, atomic writes, caches, where the shipped weights live."""
