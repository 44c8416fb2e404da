"""The configuration: its schema (schema.py: the Config dataclass, TOML in and out), the names a value may
take (config/choices.py, torch-free) and the named presets (presets/*.toml, `vaelab configs`)."""
