"""Local source trees, archives and git repositories (packagesExtra and the project itself)."""
