"""Running untrusted sdist build backends: the sandbox, their environment, their reports."""
