"""The Lock, the contract between resolving and rendering, and what can be read off it."""
