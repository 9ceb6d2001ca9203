"""A challenge as a YAML file: read (yamlfile), checked (schema), applied (apply) and written back (export).
See docs/challenge-yaml.md."""
