"""machci.yaml: its schema, loading it, the Config it describes, and the settings digest."""
