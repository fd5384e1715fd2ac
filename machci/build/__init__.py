"""Running untrusted sdist build backends: the sandbox, their build environment and what they report."""
